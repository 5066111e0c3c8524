"""Run a search in this process: designs in the calling thread, trainings in a pool.

``run_local`` is how `rewardsmith run`, the benchmarks and the tests submit a task and work it
off. It drives the same idempotent step functions as the Celery workers, against the same
database schema, so a local run and a served run behave alike.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import sessionmaker

import app.search.machine.steps as steps
from app.config import Settings
from app.db import make_engine, session_scope
from app.db.migrate import upgrade
from app.db.models import Run
from app.search.decisions.tasks import create_task
from app.search.machine.designing import DesignerFactory
from app.search.machine.factory import designer_factory, proposer_factory
from app.search.machine.proposing import ProposerFactory
from app.search.records.run_json import run_dict
from app.search.rules.states import RUN_SETTLED, RunStatus
from app.search.rules.task import TaskSpec

log = logging.getLogger(__name__)


class LocalDispatcher:
    """A dispatcher whose queue is in memory; ``run_until_settled`` works it off."""

    def __init__(
        self,
        sf: sessionmaker,
        settings: Settings,
        designer_for: DesignerFactory,
        max_parallel: int | None = None,
        proposer_for: ProposerFactory | None = None,
    ) -> None:
        self.sf = sf
        self.settings = settings
        self.designer_for = designer_for
        self.proposer_for = proposer_for or proposer_factory(sf, settings)
        self.steps: queue.Queue = queue.Queue()
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self.pool: ThreadPoolExecutor | None = None
        """Made when the first training is dispatched and shut down when a run settles (so that the dispatcher can
        work off a resumed run afterwards)."""
        self._lock = threading.Lock()
        self.running: set[Future] = set()
        self.errors: list[BaseException] = []

    def start(self, run_id: int) -> None:
        self.steps.put(("start", run_id))

    def resume(self, run_id: int) -> None:
        self.steps.put(("resume", run_id))

    def design(self, run_id: int) -> None:
        self.steps.put(("design", run_id))

    def propose_fitness(self, run_id: int) -> None:
        self.steps.put(("propose", run_id))

    def train(self, training_id: int) -> None:
        with self._lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="train")
            fut = self.pool.submit(steps.train_step, self.sf, training_id, self, self.settings)
            self.running.add(fut)  # trainings dispatch trainings from pool threads: guarded by the lock
        fut.add_done_callback(self._done)

    def _done(self, fut: Future) -> None:
        error = fut.exception()
        if error is not None:
            self.errors.append(error)
            log.error("training step failed", exc_info=error)
        self.steps.put(("tick", None))

    def run_until_settled(self, run_id: int, on_tick: Callable[[], None] | None = None, poll: float = 1.0) -> RunStatus:
        """Work off steps until the run is final or waits for a person; returns its status."""
        self.errors.clear()
        try:
            while True:
                try:
                    step, arg = self.steps.get(timeout=poll)
                except queue.Empty:
                    step, arg = "tick", None
                if step == "start":
                    steps.start_step(self.sf, arg, self, self.settings)
                elif step == "resume":
                    steps.resume_step(self.sf, arg, self, self.settings)
                elif step == "design":
                    steps.design_step(self.sf, arg, self, self.settings, self.designer_for)
                elif step == "propose":
                    steps.propose_step(self.sf, arg, self.settings, self.proposer_for)
                if on_tick is not None:
                    on_tick()
                with self._lock:
                    self.running = {f for f in self.running if not f.done()}
                    idle = not self.running
                if self.errors:
                    raise self.errors[0]
                with session_scope(self.sf) as s:
                    run = s.get(Run, run_id)
                    assert run is not None
                    status = run.status
                if status in RUN_SETTLED and idle and self.steps.empty():
                    return status
        finally:
            with self._lock:
                pool, self.pool = self.pool, None
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


_MIGRATING = threading.Lock()
"""Alembic is not thread-safe: searches started at once in one process (the benchmarks' --jobs) migrate in turn."""


@dataclass
class LocalRun:
    """A run worked off in this process: its database, its dispatcher, and where it stands."""

    sf: sessionmaker
    settings: Settings
    dispatcher: LocalDispatcher
    run_id: int
    status: RunStatus | None = None
    """Where the run stood when it last settled (None before it was worked off)."""

    @classmethod
    def attach(cls, sf: sessionmaker, settings: Settings, run_id: int, *, max_parallel: int | None = None) -> LocalRun:
        """An existing run, to work off here (after a person's decision, say)."""
        return cls(sf, settings, LocalDispatcher(sf, settings, designer_factory(sf, settings), max_parallel), run_id)

    def settle(self, *, on_tick: Callable[[LocalRun], None] | None = None, poll: float = 1.0) -> RunStatus:
        """Work the run off until it is final or waits for a person (``on_tick`` after each step); its status."""
        tick = (lambda: on_tick(self)) if on_tick is not None else None
        self.status = self.dispatcher.run_until_settled(self.run_id, on_tick=tick, poll=poll)
        return self.status

    def close(self) -> None:
        """Close the database's connections (a benchmark deletes the database afterwards)."""
        self.sf.kw["bind"].dispose()

    def doc(self) -> dict[str, Any]:
        """The run as ``run.json`` has it."""
        with session_scope(self.sf) as s:
            run = s.get(Run, self.run_id)
            assert run is not None
            return run_dict(s, run, model=self.settings.llm_model, settings=self.settings)


def local_database(settings: Settings) -> sessionmaker:
    """Sessions on the settings' database, migrated to the latest schema (``LocalRun.close`` lets it go)."""
    url = settings.resolved_database_url
    with _MIGRATING:
        upgrade(url)
    return sessionmaker(bind=make_engine(url), expire_on_commit=False)


def run_local(
    spec: TaskSpec,
    settings: Settings,
    *,
    sf: sessionmaker | None = None,
    max_parallel: int | None = None,
    on_start: Callable[[LocalRun], None] | None = None,
    on_tick: Callable[[LocalRun], None] | None = None,
    poll: float = 1.0,
) -> LocalRun:
    """Submit ``spec`` as the command line does (no user, so no rate limit) and work it off in this process until it
    is final or waits for a person.

    ``sf``: the database (default: the settings' own, migrated first). ``on_start`` is called once the task is
    stored, before any work; ``on_tick`` after each step. InvalidInput when the task is refused.
    """
    sf = sf or local_database(settings)
    local = LocalRun(sf, settings, LocalDispatcher(sf, settings, designer_factory(sf, settings), max_parallel), 0)
    with session_scope(sf) as s:
        _, run = create_task(s, spec=spec, owner_id=None, settings=settings, dispatcher=local.dispatcher)
        local.run_id = run.id
    if on_start is not None:
        on_start(local)
    local.settle(on_tick=on_tick, poll=poll)
    return local
