"""Where the LLM client keeps its answer cache and its audit log: a protocol, and an in-memory store for tests."""

from __future__ import annotations

import threading
from typing import Protocol


class ExchangeStore(Protocol):
    """Cache and audit log of the LLM client. Implementations must be safe to call from several threads.

    ``cache_get(key)`` / ``cache_put(key, value)``: ``key`` is a 64-character sha256 hex digest of the exact request;
    ``value`` a JSON-able dict (``texts``, ``finish_reasons``, ``usage``); a second ``cache_put`` of a key may be
    ignored. The client also keeps one capability flag per endpoint and model there (``{"supports_n": bool}``).

    ``record(exchange)``: one dict per HTTP attempt or cache hit, with the keys

    - ``run_id`` (int | None), ``purpose`` (str: "design", "repair", "critic", ...)
    - ``request`` (dict: ``base_url``, ``model``, ``messages``, ``params`` (temperature, n, ...), ``sample``, ``key``)
    - ``response`` (dict: ``texts``, ``finish_reasons``, ``choices``, ``usage`` as the server sent it, ``http_status``;
      for an error ``http_status`` and the start of ``body``)
    - ``status`` ("ok" | "error" | "cached"), ``error`` (str | None: what went wrong, for people)
    - ``attempt`` (int: 1, 2, ... for the tries of one request; 0 for a cache hit), ``latency_ms`` (float)
    - ``prompt_tokens``, ``completion_tokens`` (int: tokens charged by this exchange; 0 for errors and cache hits)
    - ``cost`` (float | None: from the configured prices; None when no price is set), ``cached`` (bool)
    - ``created_at`` (timezone-aware datetime)
    """

    def cache_get(self, key: str) -> dict | None: ...

    def cache_put(self, key: str, value: dict) -> None: ...

    def record(self, exchange: dict) -> None: ...


class MemoryStore:
    """An ``ExchangeStore`` in dicts and lists (tests, one-off scripts); ``exchanges`` holds every record in order."""

    def __init__(self) -> None:
        self.cache: dict[str, dict] = {}
        self.exchanges: list[dict] = []
        self._lock = threading.Lock()

    def cache_get(self, key: str) -> dict | None:
        with self._lock:
            value = self.cache.get(key)
            return dict(value) if value is not None else None

    def cache_put(self, key: str, value: dict) -> None:
        with self._lock:
            self.cache.setdefault(key, dict(value))

    def record(self, exchange: dict) -> None:
        with self._lock:
            self.exchanges.append(dict(exchange))
