"""The chat client against a real loopback server that speaks the OpenAI API (the openai package is not patched)."""

from __future__ import annotations

import socket
import time

import pytest

from app.errors import LLMError
from app.llm.client import Completion, Ledger, LLMClient, LLMConfig
from app.llm.store import MemoryStore
from tests.support.fake_openai import FakeOpenAI, Reply, count_tokens
from tests.support.fixtures import load_fixture

MESSAGES = [
    {"role": "system", "content": "You write reward functions for MuJoCo robots as batched numpy code."},
    {"role": "user", "content": "HalfCheetah-v5: make the cheetah run forward as fast as it can."},
]
ANSWERS = [load_fixture(n) for n in ("cheetah_forward", "cheetah_forward_v2", "cheetah_helpers", "hopper_backflip")]
EXCHANGE_KEYS = {
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
    "created_at",
}


def make_client(server: FakeOpenAI, store: MemoryStore | None = None, **overrides) -> LLMClient:
    settings = dict(
        base_url=server.base_url,
        api_key=None,
        model="fake-coder",
        temperature=0.7,
        timeout_seconds=5.0,
        max_retries=2,
        backoff_seconds=0.01,
    )
    config = LLMConfig(**(settings | overrides))
    return LLMClient(config, store if store is not None else MemoryStore())


def exchanges(client: LLMClient) -> list[dict]:
    return client.store.exchanges  # type: ignore[attr-defined]


def test_n_samples_come_from_one_request(fake_llm: FakeOpenAI) -> None:
    fake_llm.script(ANSWERS[:3])
    client = make_client(fake_llm)
    completion = client.complete(MESSAGES, n=3, purpose="design", run_id=7)
    assert completion.texts == ANSWERS[:3]
    assert (completion.cached, completion.attempts) == (False, 1)
    [body] = fake_llm.requests
    assert body["n"] == 3 and body["model"] == "fake-coder" and body["temperature"] == 0.7
    assert body["messages"] == MESSAGES
    assert client.supports_n is True
    [record] = exchanges(client)
    assert set(record) == EXCHANGE_KEYS
    assert record["status"] == "ok" and record["run_id"] == 7 and record["purpose"] == "design"
    assert record["response"]["texts"] == ANSWERS[:3] and record["response"]["finish_reasons"] == ["stop"] * 3
    assert record["request"]["messages"] == MESSAGES and record["request"]["params"]["n"] == 3


def test_a_server_that_ignores_n_gets_the_rest_as_parallel_single_requests() -> None:
    with FakeOpenAI(supports_n=False) as server:
        server.script([ANSWERS[0], Reply(content=ANSWERS[1], delay=0.5), Reply(content=ANSWERS[2], delay=0.5)])
        client = make_client(server)
        start = time.monotonic()
        completion = client.complete(MESSAGES, n=3, purpose="design")
        elapsed = time.monotonic() - start
        assert len(completion.texts) == 3 and sorted(completion.texts) == sorted(ANSWERS[:3])
        assert completion.texts[0] == ANSWERS[0]
        assert [b.get("n", 1) for b in server.requests] == [3, 1, 1]
        assert elapsed < 0.9, "the two delayed single requests should run at the same time"
        assert client.supports_n is False

        # Now known: the next multi-sample request goes straight to single requests.
        server.script(ANSWERS[:2])
        other = [*MESSAGES, {"role": "user", "content": "Faster, please."}]
        assert sorted(client.complete(other, n=2, purpose="design").texts) == sorted(ANSWERS[:2])
        assert [b.get("n", 1) for b in server.requests[3:]] == [1, 1]


def test_identical_parallel_requests_are_not_collapsed_and_replay_in_order(fake_llm: FakeOpenAI) -> None:
    store = MemoryStore()
    client = make_client(fake_llm, store, supports_n=False)
    fake_llm.script(ANSWERS[:3])
    first = client.complete(MESSAGES, n=3, purpose="design")
    assert len(fake_llm.requests) == 3 and sorted(first.texts) == sorted(ANSWERS[:3])
    keys = [e["request"]["key"] for e in exchanges(client)]
    assert len(set(keys)) == 3

    # A re-run (a new client on the same store) replays every sample, in the same order, without HTTP.
    again = make_client(fake_llm, store, supports_n=False).complete(MESSAGES, n=3, purpose="design")
    assert again.texts == first.texts and again.cached and again.attempts == 0
    assert len(fake_llm.requests) == 3


def test_a_rate_limit_then_success_is_survived_and_both_attempts_recorded(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([Reply(status=429, headers={"Retry-After": "0"}), ANSWERS[0]])
    client = make_client(fake_llm)
    completion = client.complete(MESSAGES, purpose="design", run_id=3)
    assert completion.texts == [ANSWERS[0]] and completion.attempts == 2
    failed, ok = exchanges(client)
    assert (failed["status"], failed["attempt"], failed["response"]["http_status"]) == ("error", 1, 429)
    assert "HTTP 429" in failed["error"] and failed["prompt_tokens"] == 0
    assert (ok["status"], ok["attempt"], ok["error"]) == ("ok", 2, None)
    assert client.ledger(3) == Ledger(
        requests=2, errors=1, cache_hits=0, prompt_tokens=ok["prompt_tokens"], completion_tokens=ok["completion_tokens"]
    )


def test_retry_after_is_honoured_up_to_its_cap(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([Reply(status=429, headers={"Retry-After": "0.6"}), ANSWERS[0]])
    start = time.monotonic()
    make_client(fake_llm).complete(MESSAGES, purpose="design")
    assert 0.55 <= time.monotonic() - start < 2.0, "the backoff (0.01 s) should have given way to Retry-After"

    fake_llm.script([Reply(status=503, headers={"Retry-After": "3600"}), ANSWERS[1]])
    start = time.monotonic()
    completion = make_client(fake_llm, retry_after_cap_seconds=0.2).complete(MESSAGES, purpose="design")
    assert completion.texts == [ANSWERS[1]]
    assert time.monotonic() - start < 1.0


def test_a_server_error_then_success_is_survived(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([Reply(status=500, message="upstream exploded"), Reply(status=502), ANSWERS[0]])
    client = make_client(fake_llm)
    completion = client.complete(MESSAGES, purpose="design")
    assert completion.texts == [ANSWERS[0]] and completion.attempts == 3
    assert [e["status"] for e in exchanges(client)] == ["error", "error", "ok"]
    assert "upstream exploded" in exchanges(client)[0]["error"]


def test_a_timeout_is_survived(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([Reply(content="too late", delay=3.0), ANSWERS[0]])
    client = make_client(fake_llm, timeout_seconds=0.5)
    start = time.monotonic()
    completion = client.complete(MESSAGES, purpose="design")
    assert completion.texts == [ANSWERS[0]]
    assert time.monotonic() - start < 2.5
    assert "timeout" in exchanges(client)[0]["error"]


@pytest.mark.parametrize(
    "garbage",
    [
        Reply(raw_body="not json"),
        Reply(raw_body="<html>Bad gateway</html>", content_type="text/html"),
        Reply(body={"id": "x", "object": "chat.completion", "choices": []}),
        Reply(content=""),
        Reply(body={"error": {"message": "model is loading"}}),
    ],
    ids=["not-json", "html", "no-choices", "empty-content", "error-body"],
)
def test_a_garbage_answer_is_retried(fake_llm: FakeOpenAI, garbage: Reply) -> None:
    fake_llm.script([garbage, ANSWERS[0]])
    client = make_client(fake_llm)
    completion = client.complete(MESSAGES, purpose="design")
    assert completion.texts == [ANSWERS[0]] and completion.attempts == 2
    failed = exchanges(client)[0]
    assert failed["status"] == "error" and "HTTP 200" in failed["error"]


def test_persistent_failure_raises_a_clear_error(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([Reply(status=500, message="GPU fell off the bus")] * 3)
    client = make_client(fake_llm, max_retries=2)
    with pytest.raises(LLMError) as err:
        client.complete(MESSAGES, purpose="design", run_id=1)
    message = str(err.value)
    assert "after 3 attempt(s)" in message and "HTTP 500" in message and "GPU fell off the bus" in message
    assert fake_llm.base_url in message and "'fake-coder'" in message
    assert "OPENAI_BASE_URL" in message and "'offline'" in message
    assert err.value.http_status == 500 and err.value.attempts == 3
    assert len(fake_llm.requests) == 3
    assert [e["attempt"] for e in exchanges(client)] == [1, 2, 3]
    assert client.ledger(1).errors == 3


def test_garbage_forever_raises(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([Reply(content="   ")] * 2)
    with pytest.raises(LLMError, match="no content"):
        make_client(fake_llm, max_retries=1).complete(MESSAGES, purpose="design")


def test_a_refused_key_fails_at_once(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([Reply(status=401, message="Incorrect API key provided"), ANSWERS[0]])
    client = make_client(fake_llm, max_retries=3, api_key="sk-wrong")
    with pytest.raises(LLMError, match="the API key was refused") as err:
        client.complete(MESSAGES, purpose="design")
    assert "Incorrect API key provided" in str(err.value) and "OPENAI_API_KEY" in str(err.value)
    assert len(fake_llm.requests) == 1 and err.value.http_status == 401
    assert fake_llm.calls[0].headers["authorization"] == "Bearer sk-wrong"


def test_a_wrong_base_url_fails_at_once_and_says_where_to_look(fake_llm: FakeOpenAI) -> None:
    client = LLMClient(LLMConfig(base_url=fake_llm.url + "/api", model="m", max_retries=3, backoff_seconds=0.01))
    with pytest.raises(LLMError, match=r"HTTP 404.*OPENAI_BASE_URL usually ends in /v1"):
        client.complete(MESSAGES, purpose="design")


def test_an_unreachable_server_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    client = LLMClient(
        LLMConfig(
            base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, backoff_seconds=0.01, timeout_seconds=2
        )
    )
    with pytest.raises(LLMError, match=r"after 2 attempt.*could not connect"):
        client.complete(MESSAGES, purpose="design")


def test_no_model_configured_says_so() -> None:
    with pytest.raises(LLMError, match="REWARDSMITH_LLM_MODEL"):
        LLMClient(LLMConfig(base_url="http://127.0.0.1:9/v1")).complete(MESSAGES, purpose="design")


def test_an_identical_request_is_replayed_from_the_cache(fake_llm: FakeOpenAI) -> None:
    fake_llm.script(ANSWERS[:2])
    client = make_client(fake_llm)
    first = client.complete(MESSAGES, n=2, purpose="design", run_id=5)
    again = client.complete(MESSAGES, n=2, purpose="design", run_id=5)
    assert len(fake_llm.requests) == 1
    assert again.texts == first.texts and again.cached and not first.cached
    assert again.usage.total == 0 and again.attempts == 0
    assert exchanges(client)[-1]["status"] == "cached" and exchanges(client)[-1]["cached"] is True
    ledger = client.ledger(5)
    assert (ledger.requests, ledger.cache_hits, ledger.total_tokens) == (1, 1, first.usage.total)

    # Anything else in the request is a different request.
    fake_llm.script(ANSWERS[2:])
    other = make_client(fake_llm, client.store, temperature=0.2).complete(MESSAGES, n=2, purpose="design")
    assert other.texts == ANSWERS[2:] and not other.cached
    assert len(fake_llm.requests) == 2 and fake_llm.requests[1]["temperature"] == 0.2


def test_the_ledger_adds_up_tokens_and_cost(fake_llm: FakeOpenAI) -> None:
    fake_llm.script(ANSWERS)
    client = make_client(fake_llm, price_per_1k_input=0.5, price_per_1k_output=2.0)
    prompt = "".join(m["content"] for m in MESSAGES)
    completions: list[Completion] = [
        client.complete(MESSAGES, n=3, purpose="design", run_id=9),
        client.complete(MESSAGES[:1], purpose="repair", run_id=9),
    ]
    assert completions[0].usage.prompt_tokens == count_tokens(prompt)
    assert completions[0].usage.completion_tokens == sum(count_tokens(a) for a in ANSWERS[:3])
    assert completions[0].usage.cost == pytest.approx(
        (count_tokens(prompt) * 0.5 + sum(count_tokens(a) for a in ANSWERS[:3]) * 2.0) / 1000
    )
    ledger = client.ledger(9)
    assert ledger.prompt_tokens == sum(c.usage.prompt_tokens for c in completions) > 0
    assert ledger.completion_tokens == sum(c.usage.completion_tokens for c in completions) > 0
    assert ledger.cost == pytest.approx(sum(c.usage.cost for c in completions))
    assert ledger.requests == 2 and client.ledger(None) == Ledger()
    assert [e["cost"] for e in exchanges(client)] == [c.usage.cost for c in completions]


def test_without_prices_costs_are_none(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([ANSWERS[0]])
    client = make_client(fake_llm)
    assert client.complete(MESSAGES, purpose="design").usage.cost is None
    assert client.ledger().cost is None


def test_a_server_that_refuses_n_is_asked_one_sample_at_a_time(fake_llm: FakeOpenAI) -> None:
    fake_llm.script([Reply(status=400, message="n must be 1"), ANSWERS[0], ANSWERS[1]])
    client = make_client(fake_llm)
    completion = client.complete(MESSAGES, n=2, purpose="design")
    assert sorted(completion.texts) == sorted(ANSWERS[:2])
    assert [b.get("n", 1) for b in fake_llm.requests] == [2, 1, 1]
    assert client.supports_n is False
