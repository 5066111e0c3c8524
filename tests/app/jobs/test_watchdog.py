"""A worker whose consumer has stopped taking work stops itself, so that its supervisor starts a fresh one; a busy or
idle worker, or one whose broker is down, is left alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from pydantic import ValidationError

from app.jobs.celery_app import QUEUE_LLM, TASK_SWEEP, configure
from app.jobs.watchdog import EXIT_STALLED, StallClock, queue_sizes
from tests.app.jobs.test_celery_e2e import CLI, ROOT, Processes, redis_db  # noqa: F401 (a fixture)
from tests.support.db import make_settings
from tests.support.server import free_port


def test_a_stall_is_waiting_work_and_a_free_slot_in_every_look_for_the_whole_period() -> None:
    clock = StallClock(stall_seconds=30)
    assert not clock.observe(0, free_slots=1, waiting={"train": 2})
    assert not clock.observe(20, free_slots=1, waiting={"train": 1, "llm": 0})
    assert clock.observe(30, free_slots=1, waiting={"train": 1})
    assert clock.waiting == {"train": 1}


def test_a_worker_that_takes_tasks_has_not_stalled_even_with_a_backlog_and_a_free_slot_at_every_look() -> None:
    clock = StallClock(stall_seconds=30)
    for t in range(0, 100, 10):
        assert not clock.observe(t, free_slots=1, waiting={"llm": 500 - t}, taken=t)
    assert not clock.observe(120, free_slots=1, waiting={"llm": 400}, taken=100)
    assert clock.observe(150, free_slots=1, waiting={"llm": 400}, taken=100)  # then it took nothing for 30 s


@pytest.mark.parametrize(
    ("free", "waiting"),
    [
        (0, {"train": 3}),  # every slot busy: the work waits for a slot, not for a stuck consumer
        (1, {"train": 0}),  # the queue was emptied in between: the consumer took it
        (1, None),  # the broker did not answer (restarting): the consumer's own reconnection handles that
    ],
)
def test_anything_else_in_between_starts_the_period_again(free: int, waiting: dict[str, int] | None) -> None:
    clock = StallClock(stall_seconds=30)
    clock.observe(0, 1, {"train": 1})
    assert not clock.observe(20, free, waiting)
    assert not clock.observe(40, 1, {"train": 1})  # 40 s after the first look, but only 0 s into a new period
    assert clock.observe(70, 1, {"train": 1})


def test_the_setting_is_off_or_long_enough_to_fetch_a_message(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"REWARDSMITH_WORKER_STALL_SECONDS \(3\) must be 0 \(off\) or at least"):
        make_settings(tmp_path, worker_stall_seconds=3)
    assert make_settings(tmp_path, worker_stall_seconds=0).worker_stall_seconds == 0
    assert make_settings(tmp_path).worker_stall_seconds == 180


def _waiting_in_llm(app: Celery, n: int) -> None:
    for _ in range(n):
        app.send_task(TASK_SWEEP, queue=QUEUE_LLM)


@pytest.mark.redis
def test_queue_sizes_come_from_redis(tmp_path: Path, redis_db: str) -> None:  # noqa: F811
    app = configure(Celery("sizes"), make_settings(tmp_path, broker_url=redis_db))
    assert queue_sizes(app, ["llm", "train"]) == {"llm": 0, "train": 0}  # never declared: nothing waits
    _waiting_in_llm(app, 3)
    assert queue_sizes(app, ["llm", "train"]) == {"llm": 3, "train": 0}
    app.close()


def test_queue_sizes_come_from_the_embedded_broker(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    app = configure(Celery("sizes"), make_settings(tmp_path))
    assert app.conf.broker_url.startswith("sqla+sqlite")
    _waiting_in_llm(app, 2)
    assert queue_sizes(app, ["llm", "train"]) == {"llm": 2, "train": 0}
    app.close()


def test_a_broker_that_does_not_answer_gives_no_sizes(tmp_path: Path) -> None:
    app = configure(Celery("sizes"), make_settings(tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    assert queue_sizes(app, ["llm"], timeout=1) is None
    assert time.monotonic() - started < 15
    app.close()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(180)
def test_a_worker_that_stopped_consuming_exits_for_its_supervisor_and_its_work_stays_queued(
    tmp_path: Path,
    redis_db: str,  # noqa: F811
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        REWARDSMITH_DATA_DIR=str(tmp_path / "data"),
        REWARDSMITH_BROKER_URL=redis_db,
        REWARDSMITH_WORKER_STALL_SECONDS="10",
    )
    processes = Processes(tmp_path)
    probe = Celery("watchdog-probe", broker=redis_db)
    try:
        worker = processes.start("worker", [*CLI, "worker", "--queues", "llm", "--concurrency", "1"], env)
        deadline = time.monotonic() + 90
        names: list[str] = []
        while not names and time.monotonic() < deadline:
            assert worker.poll() is None, processes.tails()
            names = [name for reply in probe.control.ping(timeout=1.0) for name in reply]
        assert names, f"the worker did not answer a ping\n{processes.tails()}"
        # The symptom of Celery's stalled consumer, made on purpose: connected and answering, taking no work.
        probe.control.cancel_consumer(QUEUE_LLM, destination=names, reply=True, timeout=5)
        probe.send_task(TASK_SWEEP, queue=QUEUE_LLM)
        stopped = time.monotonic()
        code = worker.wait(timeout=90)
        log = processes.tails()
        assert code == EXIT_STALLED, log
        assert 10 <= time.monotonic() - stopped < 60
        assert "1 in 'llm'" in log and "has stopped taking work" in log and "starts a fresh worker" in log
        assert redis.Redis.from_url(redis_db).llen(QUEUE_LLM) == 1  # the work waits for the fresh worker
    finally:
        processes.kill_all()
        probe.close()


def test_a_worker_imports_the_watchdog() -> None:
    from app.jobs.celery_app import celery_app

    assert "app.jobs.watchdog" in celery_app.conf.include
