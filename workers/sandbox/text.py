"""Bounded text: what a program or a process printed, cut to a size a person (or an LLM prompt) can take."""

from __future__ import annotations


def clip(text: str, limit: int = 500) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"
