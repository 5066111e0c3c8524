"""A chat client for any OpenAI-compatible endpoint (OpenAI, Azure-compatible URLs, vLLM, Ollama, llama.cpp, LiteLLM).

It asks for ``n`` samples in one request and falls back to parallel single requests where the server ignores ``n``;
retries 429, 5xx, timeouts, connection errors and unusable 200 answers with exponential backoff; replays identical
requests from a cache; and records every attempt in an ``ExchangeStore`` for audit and the token ledger.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import openai

from app.config import Settings
from app.errors import LLMError
from app.llm.store import (
    CachedAnswer,
    Exchange,
    ExchangeRequest,
    ExchangeResponse,
    ExchangeStatus,
    ExchangeStore,
    MemoryStore,
    Purpose,
)

log = logging.getLogger(__name__)

ADVICE = (
    "check OPENAI_BASE_URL, REWARDSMITH_LLM_MODEL and OPENAI_API_KEY, or submit the task with designer "
    "'offline' (no LLM)"
)
_REFUSED = {
    400: "the server rejected the request as invalid (HTTP 400); check that the model accepts these parameters "
    "(temperature, n, max_tokens) and that the prompt fits its context",
    401: "the API key was refused (HTTP 401); set OPENAI_API_KEY to a key this server accepts",
    403: "the API key has no access to this model (HTTP 403); check the key's permissions and the model name",
    404: "the endpoint or the model was not found (HTTP 404); OPENAI_BASE_URL usually ends in /v1, and the model "
    "must be one this server serves",
    422: "the server rejected the request as invalid (HTTP 422); check the model name and the parameters",
}


@dataclass
class LLMConfig:
    """Where the chat model is and how to talk to it."""

    base_url: str | None = None
    """OpenAI-compatible base URL (ends in /v1); None: the openai package's default (OPENAI_BASE_URL or OpenAI)."""
    api_key: str | None = None
    """None for local servers that need none (a placeholder is sent)."""
    model: str = ""
    temperature: float | None = 1.0
    """None: not sent (for models that only accept their default)."""
    timeout_seconds: float = 120.0
    """Per HTTP attempt."""
    max_retries: int = 4
    """Retries after the first attempt, for 408/409/429/5xx, timeouts, connection errors and unusable answers."""
    backoff_seconds: float = 1.0
    """First retry delay; doubles per retry, plus up to 25 % jitter, capped at ``max_backoff_seconds``."""
    max_backoff_seconds: float = 30.0
    retry_after_cap_seconds: float = 60.0
    """A server's Retry-After is honoured up to this many seconds."""
    price_per_1k_input: float | None = None
    price_per_1k_output: float | None = None
    """Prices for the cost column; with neither set, costs are None."""
    supports_n: bool | None = None
    """Whether the server honours ``n``; None: detect on the first multi-sample request (and remember it)."""
    max_tokens: int | None = None
    extra_body: dict = field(default_factory=dict)
    """Extra request fields for a particular server (e.g. ``{"top_k": 40}``); part of the cache key."""
    max_parallel: int = 8
    """Parallel single-sample requests when the server ignores ``n``."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig:
        """The LLM the installation is configured with (OPENAI_* and REWARDSMITH_LLM_* variables)."""
        return cls(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.llm_model or "",
            temperature=settings.llm_temperature,
            timeout_seconds=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            backoff_seconds=settings.llm_backoff_seconds,
            price_per_1k_input=settings.llm_price_per_1k_input,
            price_per_1k_output=settings.llm_price_per_1k_output,
        )


@dataclass
class Usage:
    """Tokens charged by HTTP requests (cache hits charge none), and their cost when prices are set."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost is None and other.cost is None else (self.cost or 0.0) + (other.cost or 0.0)
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens, cost)


@dataclass
class Completion:
    """The answer to one ``complete()``: exactly ``n`` texts."""

    texts: list[str]
    usage: Usage
    cached: bool
    """True when every text was replayed from the cache (no HTTP request)."""
    attempts: int
    """HTTP requests sent, failed ones included (0 when all came from the cache)."""
    finish_reasons: list[str | None] = field(default_factory=list)


@dataclass
class Ledger:
    """Totals over exchange records (``Ledger.add(exchange)``); the client keeps one per run (``LLMClient.ledger``)."""

    requests: int = 0
    """HTTP requests sent, successful and failed."""
    errors: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, exchange: Exchange) -> None:
        """Count one exchange record (what ``ExchangeStore.record`` was given)."""
        if exchange["status"] == ExchangeStatus.CACHED:
            self.cache_hits += 1
            return
        self.requests += 1
        self.errors += exchange["status"] == ExchangeStatus.ERROR
        self.prompt_tokens += exchange["prompt_tokens"]
        self.completion_tokens += exchange["completion_tokens"]
        if exchange["cost"] is not None:
            self.cost = (self.cost or 0.0) + exchange["cost"]


@dataclass
class _Answer:
    texts: list[str]
    finish_reasons: list[str | None]
    choices: int
    usage: Usage
    cached: bool
    attempts: int


class _Failure(Exception):
    """One failed attempt: what happened, and whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        http_status: int | None = None,
        retry_after: float | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.message, self.retryable, self.http_status = message, retryable, http_status
        self.retry_after, self.body = retry_after, body


def _digest(value: object) -> str:
    canonical = json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None when absent or unreadable."""
    if headers.get("retry-after-ms"):
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def _server_message(body: object, text: str) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str):
            return inner[:300]
    return text.strip()[:300]


def _parse(text: str) -> tuple[list[str], list[str | None], int, dict]:
    """Texts, finish reasons, number of choices and raw usage of a 200 body; ``_Failure`` when it has no answer."""
    try:
        data = json.loads(text)
    except ValueError:
        raise _Failure(
            f"the server answered HTTP 200 with a body that is not JSON: {text[:120]!r}",
            retryable=True,
            http_status=200,
            body=text[:2000],
        ) from None
    if not isinstance(data, dict):
        raise _Failure(
            "the server answered HTTP 200 with JSON that is not a chat completion",
            retryable=True,
            http_status=200,
            body=text[:2000],
        )
    if data.get("error"):
        raise _Failure(
            f"the server answered HTTP 200 with an error: {_server_message(data, text)}",
            retryable=True,
            http_status=200,
            body=text[:2000],
        )
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Failure(
            "the server answered HTTP 200 with no choices", retryable=True, http_status=200, body=text[:2000]
        )
    texts: list[str] = []
    reasons: list[str | None] = []
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
        if isinstance(content, str) and content.strip():
            texts.append(content)
            reasons.append(choice.get("finish_reason"))
    if not texts:
        finish = sorted({str(c.get("finish_reason")) for c in choices if isinstance(c, dict)})
        hint = "; the model ran out of tokens before answering (raise max_tokens)" if "length" in finish else ""
        raise _Failure(
            f"the server answered HTTP 200 but its {len(choices)} choice(s) have no content "
            f"(finish_reason {', '.join(finish)}){hint}",
            retryable=True,
            http_status=200,
            body=text[:2000],
        )
    usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
    return texts, reasons, len(choices), usage


class LLMClient:
    """``complete()`` against one OpenAI-compatible endpoint and model, with retries, a cache and an audit log."""

    def __init__(self, config: LLMConfig, store: ExchangeStore | None = None) -> None:
        self.config = config
        self.store: ExchangeStore = store if store is not None else MemoryStore()
        # max_retries=0: our loop retries, so that every failed attempt is recorded and backs off our way.
        self._openai = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "not-needed",
            timeout=config.timeout_seconds,
            max_retries=0,
        )
        self.base_url = str(self._openai.base_url)
        self.endpoint = self.base_url.rstrip("/") + "/chat/completions"
        self._lock = threading.Lock()
        self._ledgers: dict[int | None, Ledger] = {}
        self._supports_n = config.supports_n
        self._flag_key = _digest({"capability": "supports_n", "base_url": self.base_url, "model": config.model})

    @property
    def supports_n(self) -> bool | None:
        """Whether the server honours ``n`` (configured, remembered in the store, or detected); None: not known yet."""
        if self._supports_n is None:
            flag = self.store.cache_get(self._flag_key)
            if flag is not None:
                self._supports_n = bool(flag.get("supports_n"))
        return self._supports_n

    def _learn_n(self, honoured: bool) -> None:
        if self._supports_n is None:
            self._supports_n = honoured
            self.store.cache_put(self._flag_key, {"supports_n": honoured})

    def ledger(self, run_id: int | None = None) -> Ledger:
        """A copy of the totals of this client's exchanges for ``run_id`` (this process only; the store has all)."""
        with self._lock:
            return replace(self._ledgers.get(run_id) or Ledger())

    def complete(self, messages: list[dict], *, n: int = 1, purpose: Purpose, run_id: int | None = None) -> Completion:
        """``n`` answers to ``messages``; raises ``LLMError`` when the endpoint gives none after the retries."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if not self.config.model:
            raise LLMError(
                f"no LLM model is configured for {self.endpoint}: set REWARDSMITH_LLM_MODEL, or submit "
                "the task with designer 'offline'"
            )
        messages = [dict(m) for m in messages]
        parts: list[_Answer] = []
        refused_n = False
        if n > 1:
            first = self._cached(messages, n, 0, purpose, run_id)
            if first is None and self.supports_n is not False:
                try:
                    first = self._request(messages, n, 0, purpose, run_id)
                except LLMError as e:
                    if e.http_status not in (400, 422) or self._supports_n is not None:
                        raise
                    log.warning("the server refused n=%d (%s); asking for one sample per request", n, e)
                    refused_n = True  # learnt only once single samples work: the 400 may have had another cause
                else:
                    self._learn_n(first.choices >= n)
            if first is not None:
                first.texts, first.finish_reasons = first.texts[:n], first.finish_reasons[:n]
                parts.append(first)
        rest = range(len(parts[0].texts) if parts else 0, n)
        if len(rest) == 1:
            parts.append(self._sample(messages, rest[0], purpose, run_id))
        elif rest:
            with ThreadPoolExecutor(max_workers=min(len(rest), max(1, self.config.max_parallel))) as pool:
                parts.extend(pool.map(lambda i: self._sample(messages, i, purpose, run_id), rest))
        if refused_n:
            self._learn_n(False)
        usage = Usage(cost=0.0 if self._priced else None)
        for p in parts:
            usage = usage + p.usage
        return Completion(
            texts=[t for p in parts for t in p.texts],
            usage=usage,
            cached=all(p.cached for p in parts),
            attempts=sum(p.attempts for p in parts),
            finish_reasons=[r for p in parts for r in p.finish_reasons],
        )

    # -- one request ------------------------------------------------------------------------------------------------

    @property
    def _priced(self) -> bool:
        return self.config.price_per_1k_input is not None or self.config.price_per_1k_output is not None

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if not self._priced:
            return None
        return (
            prompt_tokens * (self.config.price_per_1k_input or 0.0)
            + completion_tokens * (self.config.price_per_1k_output or 0.0)
        ) / 1000

    def _params(self, n: int) -> dict:
        params: dict = {"model": self.config.model}
        if n > 1:
            params["n"] = n
        if self.config.temperature is not None:
            params["temperature"] = self.config.temperature
        if self.config.max_tokens is not None:
            params["max_tokens"] = self.config.max_tokens
        return params

    def _request_record(self, messages: list[dict], n: int, sample: int) -> ExchangeRequest:
        params = self._params(n) | ({"extra_body": self.config.extra_body} if self.config.extra_body else {})
        request = {
            "base_url": self.base_url,
            "model": self.config.model,
            "messages": messages,
            "params": {k: v for k, v in params.items() if k != "model"} | {"n": n},
            "sample": sample,
        }
        return ExchangeRequest(**request, key=_digest(request))  # type: ignore[typeddict-item]

    def _sample(self, messages: list[dict], sample: int, purpose: Purpose, run_id: int | None) -> _Answer:
        return self._cached(messages, 1, sample, purpose, run_id) or self._request(messages, 1, sample, purpose, run_id)

    def _record(
        self,
        *,
        run_id: int | None,
        purpose: Purpose,
        request: ExchangeRequest,
        status: ExchangeStatus,
        response: ExchangeResponse,
        attempt: int,
        latency_ms: float,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float | None = None,
        error: str | None = None,
    ) -> None:
        """Store one exchange (the audit log) and count it in the run's ledger."""
        exchange = Exchange(
            run_id=run_id,
            purpose=purpose,
            request=request,
            response=response,
            status=status,
            error=error,
            attempt=attempt,
            latency_ms=latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            cached=status == ExchangeStatus.CACHED,
            created_at=datetime.now(UTC),
        )
        self.store.record(exchange)
        with self._lock:
            self._ledgers.setdefault(run_id, Ledger()).add(exchange)

    def _cached(
        self, messages: list[dict], n: int, sample: int, purpose: Purpose, run_id: int | None
    ) -> _Answer | None:
        request = self._request_record(messages, n, sample)
        hit = self.store.cache_get(request["key"])
        if hit is None:
            return None
        texts = list(hit["texts"])
        reasons = list(hit.get("finish_reasons") or [None] * len(texts))
        self._record(
            run_id=run_id,
            purpose=purpose,
            request=request,
            status=ExchangeStatus.CACHED,
            attempt=0,
            response=ExchangeResponse(
                texts=texts,
                finish_reasons=reasons,
                usage=hit.get("usage") or {},
                choices=hit.get("choices", len(texts)),
            ),
            latency_ms=0.0,
            cost=self._cost(0, 0),
        )
        return _Answer(texts, reasons, int(hit.get("choices", len(texts))), Usage(cost=self._cost(0, 0)), True, 0)

    def _request(self, messages: list[dict], n: int, sample: int, purpose: Purpose, run_id: int | None) -> _Answer:
        request = self._request_record(messages, n, sample)
        kwargs = self._params(n) | ({"extra_body": self.config.extra_body} if self.config.extra_body else {})
        tries = max(0, self.config.max_retries) + 1
        for attempt in range(1, tries + 1):
            start = time.perf_counter()
            try:
                raw = self._openai.chat.completions.with_raw_response.create(
                    messages=messages,  # type: ignore[arg-type]
                    **kwargs,
                )
                texts, reasons, choices, usage = _parse(raw.text)
            except _Failure as f:
                failure = f
            except openai.APIStatusError as e:
                status = e.status_code
                text = e.response.text if e.response is not None else ""
                failure = _Failure(
                    f"HTTP {status}: {_server_message(e.body, text) or e.message}",
                    retryable=status in (408, 409, 429) or status >= 500,
                    http_status=status,
                    retry_after=_retry_after(e.response.headers),
                    body=text[:2000],
                )
            except openai.APITimeoutError:
                failure = _Failure(f"no answer within {self.config.timeout_seconds:g} s (timeout)", retryable=True)
            except openai.APIConnectionError as e:
                failure = _Failure(f"could not connect ({e.__cause__ or e})", retryable=True)
            else:
                latency = (time.perf_counter() - start) * 1000
                p, c = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                answer = _Answer(texts, reasons, choices, Usage(p, c, self._cost(p, c)), False, attempt)
                cached = CachedAnswer(texts=texts, finish_reasons=reasons, usage=usage, choices=choices)
                self.store.cache_put(request["key"], dict(cached))
                self._record(
                    run_id=run_id,
                    purpose=purpose,
                    request=request,
                    status=ExchangeStatus.OK,
                    response=ExchangeResponse(**cached, http_status=raw.status_code),
                    attempt=attempt,
                    latency_ms=latency,
                    prompt_tokens=p,
                    completion_tokens=c,
                    cost=answer.usage.cost,
                )
                return answer
            self._record(
                run_id=run_id,
                purpose=purpose,
                request=request,
                status=ExchangeStatus.ERROR,
                error=failure.message,
                attempt=attempt,
                response=ExchangeResponse(http_status=failure.http_status, body=failure.body),
                latency_ms=(time.perf_counter() - start) * 1000,
            )
            if not failure.retryable or attempt == tries:
                raise LLMError(self._explain(failure, attempt), http_status=failure.http_status, attempts=attempt)
            delay = self._delay(attempt, failure.retry_after)
            log.warning(
                "LLM attempt %d/%d at %s failed: %s; retrying in %.2f s",
                attempt,
                tries,
                self.endpoint,
                failure.message,
                delay,
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.config.retry_after_cap_seconds)
        delay = self.config.backoff_seconds * 2 ** (attempt - 1)
        return min(delay * (1 + 0.25 * random.random()), self.config.max_backoff_seconds)

    def _explain(self, failure: _Failure, attempts: int) -> str:
        where = f"{self.endpoint} (model {self.config.model!r})"
        if not failure.retryable:
            what = _REFUSED.get(failure.http_status or 0, f"the request was refused ({failure.message})")
            if failure.http_status == 401 and not self.config.api_key:
                what = "the server wants an API key and none is set (HTTP 401); set OPENAI_API_KEY"
            detail = f"; the server said: {failure.message}" if failure.http_status in _REFUSED else ""
            return f"the LLM at {where} failed at once: {what}{detail}. If that does not help, {ADVICE}."
        hint = ""
        if failure.http_status == 429:
            hint = " (rate limited: wait, ask for fewer samples, or raise the account's quota)"
        return (
            f"the LLM at {where} gave no usable answer after {attempts} attempt(s); the last one: "
            f"{failure.message}{hint}. Try again later, {ADVICE}."
        )
