"""Where the LLM client keeps its answer cache and its audit log: a protocol, and an in-memory store for tests."""

from __future__ import annotations

import threading
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypedDict


class Purpose(StrEnum):
    """Why the search asked the LLM (an exchange's ``purpose``)."""

    DESIGN = "design"
    """A round's candidate reward programs."""
    REPAIR = "repair"
    """A rejected program sent back with the checker's message."""
    CRITIC = "critic"
    """The optional review of a candidate before it trains."""
    FITNESS = "fitness"
    """A fitness program proposed from the task's sentence."""


class ExchangeStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    CACHED = "cached"
    """Replayed from the cache: no HTTP request, no tokens charged."""


class ExchangeRequest(TypedDict):
    """What was asked: the endpoint, the conversation and the sampling parameters; ``key`` is the cache's key (the
    sha256 of the rest)."""

    base_url: str
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    """temperature, n, max_tokens, extra_body: what was sent besides the model and the messages."""
    sample: int
    key: str


class CachedAnswer(TypedDict):
    """What the cache keeps of an answer (the value of ``cache_put``)."""

    texts: list[str]
    finish_reasons: list[str | None]
    usage: dict[str, Any]
    """As the server sent it."""
    choices: int


class ExchangeResponse(TypedDict, total=False):
    """What came back: the answer (``CachedAnswer``'s keys and the HTTP status), or for an error the HTTP status and
    the start of the body."""

    texts: list[str]
    finish_reasons: list[str | None]
    usage: dict[str, Any]
    choices: int
    http_status: int | None
    body: str


class Exchange(TypedDict):
    """One HTTP attempt or cache hit of the LLM client, as the audit log stores it (``llm_exchanges``)."""

    run_id: int | None
    purpose: Purpose
    request: ExchangeRequest
    response: ExchangeResponse
    status: ExchangeStatus
    error: str | None
    """What went wrong, for people (None unless the status is 'error')."""
    attempt: int
    """1, 2, ... for the tries of one request; 0 for a cache hit."""
    latency_ms: float
    prompt_tokens: int
    """Tokens charged by this exchange: 0 for errors and cache hits."""
    completion_tokens: int
    cost: float | None
    """From the configured prices; None when no price is set."""
    cached: bool
    created_at: datetime
    """Timezone-aware."""


class ExchangeStore(Protocol):
    """Cache and audit log of the LLM client. Implementations must be safe to call from several threads.

    ``cache_get(key)`` / ``cache_put(key, value)``: ``key`` is a 64-character sha256 hex digest of the exact request;
    ``value`` a ``CachedAnswer``; a second ``cache_put`` of a key may be ignored. The client also keeps one capability
    flag per endpoint and model there (``{"supports_n": bool}``). ``record(exchange)``: one ``Exchange`` per HTTP
    attempt or cache hit.
    """

    def cache_get(self, key: str) -> dict[str, Any] | None: ...

    def cache_put(self, key: str, value: dict[str, Any]) -> None: ...

    def record(self, exchange: Exchange) -> None: ...


class MemoryStore:
    """An ``ExchangeStore`` in dicts and lists (tests, one-off scripts); ``exchanges`` holds every record in order."""

    def __init__(self) -> None:
        self.cache: dict[str, dict[str, Any]] = {}
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def cache_get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            value = self.cache.get(key)
            return dict(value) if value is not None else None

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self.cache.setdefault(key, dict(value))

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(Exchange(**exchange))
