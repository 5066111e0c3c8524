"""A user's webhook: told when a run of theirs ends or waits for a person, signed (HMAC-SHA256 of the timestamp and
the body with the user's secret), retried with backoff up to a bound, never holding up the search, and never sent
into the service's own network unless an operator allows it."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

import app.webhooks as webhooks
from app.db import session_scope
from app.db.models import Run, WebhookDelivery
from app.search.machine import steps
from app.search.records.runs import set_status
from app.search.records.webhooks import MAX_PENDING
from tests.app.api.harness import API, Api, make_api, seed_finished_run
from tests.support.db import committing_database
from tests.support.dispatch import RecordingDispatcher


class Receiver:
    """An HTTP server on loopback that records what it is sent and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(owner.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> object:
    r = Receiver()
    yield r
    r.close()


def loopback_api(sf: sessionmaker, tmp_path: Path, **settings: object) -> Api:
    """The API with internal addresses allowed (the receiver is on loopback)."""
    return make_api(sf, tmp_path, **({"webhook_allow_private": True, "webhook_backoff_seconds": 0.0} | settings))


def test_an_internal_url_is_refused_unless_the_operator_allows_it(api: Api, receiver: Receiver) -> None:
    alice = api.user("alice")
    for url in (receiver.url, "http://10.0.0.8/x", "http://169.254.169.254/latest/meta-data", "http://[::1]:8/"):
        r = api.client.put(f"{API}/webhook", headers=alice, json={"url": url})
        assert r.status_code == 422 and "internal address" in r.text, (url, r.text)
    for url, words in (("ftp://example.com/x", "http:// or https://"), ("http://u:p@example.com/", "user or password")):
        r = api.client.put(f"{API}/webhook", headers=alice, json={"url": url})
        assert r.status_code == 422 and words in r.text
    assert api.client.get(f"{API}/webhook", headers=alice).status_code == 404


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_run_that_ends_is_told_to_its_owners_webhook_signed(kind: str, tmp_path: Path, receiver: Receiver) -> None:
    with committing_database(kind, tmp_path) as sf:  # the delivery thread and the requests: connections of their own
        told_signed(loopback_api(sf, tmp_path), receiver)


def told_signed(api: Api, receiver: Receiver) -> None:
    alice = api.user("alice")
    r = api.client.put(f"{API}/webhook", headers=alice, json={"url": receiver.url, "events": ["run.finished"]})
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    assert len(secret) >= 40 and api.client.get(f"{API}/webhook", headers=alice).json()["secret"] is None
    seeded = seed_finished_run(api, owner="alice", status="running")
    with session_scope(api.sf) as s:
        set_status(s.get(Run, seeded.run_id), "waiting_feedback")  # not an event this webhook wants
    with session_scope(api.sf) as s:
        set_status(s.get(Run, seeded.run_id), "cancelled")
    steps.sweep_step(api.sf, RecordingDispatcher(), api.settings)  # sends in a thread of its own
    deadline = time.monotonic() + 10
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    [(headers, body)] = receiver.requests
    doc = json.loads(body)
    assert (doc["event"], doc["run_id"], doc["status"]) == ("run.finished", seeded.run_id, "cancelled")
    timestamp = headers["x-rewardsmith-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-rewardsmith-signature"], f"sha256={expected}")
    assert headers["x-rewardsmith-event"] == "run.finished" and headers["content-type"] == "application/json"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        [d] = api.client.get(f"{API}/webhook", headers=alice).json()["deliveries"]
        if d["status"] == "delivered":
            break
        time.sleep(0.05)
    assert (d["status"], d["attempts"], d["response_status"]) == ("delivered", 1, 200)


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(db_sf: sessionmaker, tmp_path: Path) -> None:
    receiver = Receiver(status=500)
    try:
        api = loopback_api(db_sf, tmp_path, webhook_max_attempts=3, webhook_backoff_seconds=30.0)
        alice = api.user("alice")
        api.client.put(f"{API}/webhook", headers=alice, json={"url": receiver.url})
        seeded = seed_finished_run(api, owner="alice", status="running")
        with session_scope(api.sf) as s:
            set_status(s.get(Run, seeded.run_id), "failed", error="boom")
            [delivery_id] = s.scalars(select(WebhookDelivery.id))
        assert webhooks.attempt(api.sf, api.settings, delivery_id) == "pending"
        assert webhooks.attempt(api.sf, api.settings, delivery_id) is None  # not due: it waits 30 s first
        with session_scope(api.sf) as s:
            d = s.get(WebhookDelivery, delivery_id)
            assert d.attempts == 1 and d.last_error == "the receiver answered 500"
            assert 25 < (d.next_attempt_at - d.created_at).total_seconds() < 40
            d.next_attempt_at = d.created_at  # time passes
        assert webhooks.attempt(api.sf, api.settings, delivery_id) == "pending"
        with session_scope(api.sf) as s:
            d = s.get(WebhookDelivery, delivery_id)
            assert 55 < (d.next_attempt_at - d.created_at).total_seconds() < 75  # doubled
            d.next_attempt_at = d.created_at
        assert webhooks.attempt(api.sf, api.settings, delivery_id) == "failed"  # the third and last
        assert len(receiver.requests) == 3
    finally:
        receiver.close()


def test_deliveries_waiting_are_bounded(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = loopback_api(db_sf, tmp_path)
    alice = api.user("alice")
    api.client.put(f"{API}/webhook", headers=alice, json={"url": "http://127.0.0.1:9/none"})
    seeded = seed_finished_run(api, owner="alice", status="running")
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded.run_id)
        for _ in range(MAX_PENDING + 5):
            run.status = "running"
            set_status(run, "waiting_feedback")
            s.flush()
        assert len(list(s.scalars(select(WebhookDelivery.id)))) == MAX_PENDING
