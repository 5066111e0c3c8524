"""The LLM client's cache and audit log in the database (the ExchangeStore protocol of app.llm.store)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import LLMCacheEntry, LLMExchange
from app.llm.store import Exchange

_COLUMNS = frozenset(Exchange.__annotations__) - {"created_at"}
"""An exchange's keys that are columns of ``llm_exchanges`` (its time is the row's own)."""


class DatabaseStore:
    """Stores every exchange in ``llm_exchanges`` and cached answers in ``llm_cache``; each call is its own transaction."""

    def __init__(self, sf: sessionmaker) -> None:
        self.sf = sf

    def cache_get(self, key: str) -> dict[str, Any] | None:
        with session_scope(self.sf) as s:
            entry = s.get(LLMCacheEntry, key)
            return dict(entry.value) if entry is not None else None

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        try:
            with session_scope(self.sf) as s:
                if s.get(LLMCacheEntry, key) is None:
                    s.add(LLMCacheEntry(key=key, value=value))
        except IntegrityError:  # another worker stored the same answer first
            pass

    def record(self, exchange: Exchange) -> None:
        values = {k: v for k, v in exchange.items() if k in _COLUMNS}
        with session_scope(self.sf) as s:
            s.add(LLMExchange(**values))
