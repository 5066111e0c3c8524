"""The per-user task rate limit holds under concurrent requests: counting the user's recent tasks and adding the new
one is one step (the user's row is held for the rest of the transaction), so 30 requests at once create at most the
limit. On a real database of the test's own (PostgreSQL, and an SQLite file), never a rolled-back one: every request
commits for real, as in production."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.db.models import Task
from tests.app.api.harness import API, Api, make_api
from tests.support.db import committing_database
from tests.support.tasks import TINY

REQUESTS = 30
LIMIT = 10


def concurrently(api: Api, headers: dict, count: int) -> Counter:
    """``count`` POST /tasks released together (a barrier), each from its own thread; their status codes."""
    gate = threading.Barrier(count)
    codes: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        gate.wait(timeout=60)
        code = api.client.post(f"{API}/tasks", json=TINY, headers=headers).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request never came back"
    return Counter(codes)


@pytest.mark.parametrize("kind", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def test_thirty_concurrent_task_requests_create_at_most_the_limit(kind: str, tmp_path: Path) -> None:
    with committing_database(kind, tmp_path, connections=REQUESTS) as sf:
        api = make_api(sf, tmp_path, task_rate_per_minute=LIMIT)
        alice = api.user("alice")
        # one request first: the token's last use is recorded, so the concurrent ones below write nothing to it
        # (a write to the token's row would serialise them by accident and hide a race)
        assert api.client.get(f"{API}/tasks", headers=alice).status_code == 200
        codes = concurrently(api, alice, REQUESTS)
        with session_scope(sf) as s:
            stored = s.scalar(select(func.count(Task.id)))
        assert codes == Counter({201: LIMIT, 429: REQUESTS - LIMIT}), codes
        assert stored == LIMIT
        assert len(api.dispatcher.calls) == LIMIT, "only the created tasks' runs are started"
