"""Talking to chat models: an OpenAI-compatible client with retries, cache and audit; extracting programs from answers.

Names are imported on first use, so that ``app.llm.extraction`` does not pay for importing ``openai``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Completion": "client",
    "Ledger": "client",
    "LLMClient": "client",
    "LLMConfig": "client",
    "LLMError": "client",
    "Usage": "client",
    "Extracted": "extraction",
    "ExtractionError": "extraction",
    "extract_program": "extraction",
    "ExchangeStore": "store",
    "MemoryStore": "store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
