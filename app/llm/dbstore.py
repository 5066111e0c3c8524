"""The LLM client's cache and audit log in the database (the ExchangeStore protocol of app.llm.store)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import LLMCacheEntry, LLMExchange

_COLUMNS = {
    "run_id",
    "purpose",
    "request",
    "response",
    "status",
    "error",
    "attempt",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cached",
}


class DatabaseStore:
    """Stores every exchange in ``llm_exchanges`` and cached answers in ``llm_cache``; each call is its own transaction."""

    def __init__(self, sf: sessionmaker) -> None:
        self.sf = sf

    def cache_get(self, key: str) -> dict | None:
        with session_scope(self.sf) as s:
            entry = s.get(LLMCacheEntry, key)
            return dict(entry.value) if entry is not None else None

    def cache_put(self, key: str, value: dict) -> None:
        try:
            with session_scope(self.sf) as s:
                if s.get(LLMCacheEntry, key) is None:
                    s.add(LLMCacheEntry(key=key, value=value))
        except IntegrityError:  # another worker stored the same answer first
            pass

    def record(self, exchange: dict) -> None:
        values = {k: v for k, v in exchange.items() if k in _COLUMNS}
        values.setdefault("purpose", "design")
        values.setdefault("status", "ok")
        with session_scope(self.sf) as s:
            s.add(LLMExchange(**values))
