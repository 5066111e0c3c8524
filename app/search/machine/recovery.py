"""Recovery: the database is the truth, a message only a hint.

The sweep sends again every step a running run waits for that no live worker holds, so a
message lost with a killed worker, a restarted broker or a failed send costs time, never
work. Who holds what: a running training holds its heartbeat (``Training.heartbeat_at``,
refreshed by its worker); a queued training, the time it was last sent (``heartbeat_at``
again, else its creation); a design at work, the run's ``updated_at``, which ``holding``
refreshes while the step runs (a worker that stops hands its trainings back and
releases its runs, so that the next sweep sends them at once). What is older than ``training_lease_seconds`` (or whose
worker process is known dead) is taken back by a conditional update and sent again, so
two sweeps at once send it once; every step is idempotent, so a message that was only
late does no harm either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Run, Training, utcnow
from app.search.machine.finish import finalize, maybe_finish
from app.search.machine.iterations import advance
from app.search.machine.lifecycle import start
from app.search.records.dispatch import Dispatcher
from app.search.records.ledger import dispatch_after_commit
from app.search.rules.states import (
    TRAINING_TERMINAL,
    CandidateStatus,
    IterationStatus,
    RunPhase,
    RunStatus,
    TrainingStatus,
)
from workers.sandbox.lifeline import SandboxStopped, is_gone

log = logging.getLogger(__name__)

RELEASED = datetime(2000, 1, 1, tzinfo=UTC)
"""A run's ``updated_at`` when the step that held it gave it up: older than any lease."""
OPEN = (TrainingStatus.QUEUED, TrainingStatus.RUNNING, TrainingStatus.CANCELLED)
"""Trainings a running run still has to train (a cancelled one is trained again once its run runs again)."""


def sweep(sf: sessionmaker, dispatcher: Dispatcher, settings: Settings) -> int:
    """Start runs whose start message was lost, and send again what running runs wait for; returns the runs seen."""
    waited = utcnow().timestamp() - settings.sweep_seconds
    with session_scope(sf) as s:
        running = list(s.scalars(select(Run.id).where(Run.status == RunStatus.RUNNING)))
        queued = [
            r.id
            for r in s.scalars(select(Run).where(Run.status == RunStatus.QUEUED))
            if r.created_at.timestamp() < waited
        ]
    for run_id in queued:
        start(sf, run_id, dispatcher, settings)
    for run_id in running:
        try:
            kick(sf, run_id, dispatcher, settings)
        except Exception:  # one run's fault (or a database blip) must not keep the others waiting
            log.exception("the sweep could not recover run %s; the next sweep tries again", run_id)
    return len(running) + len(queued)


def kick(sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """Send again what ``run_id`` waits for and nobody holds: trainings whose worker died or whose message was lost,
    a design whose message or worker was lost, a completion hook that never ran."""
    stale = utcnow() - timedelta(seconds=settings.training_lease_seconds)
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None or run.status != RunStatus.RUNNING:
            return
        open_ = s.scalars(select(Training).where(Training.run_id == run_id, Training.status.in_(OPEN)))
        dispatch_after_commit(s, dispatcher, [t for t in open_ if _take_back(s, t, stale)])
        _next_step(s, sf, run, stale, dispatcher, settings)


def _take_back(s: Session, t: Training, stale: datetime) -> bool:
    """Mark ``t`` queued and sent now, if nobody holds it; True when this call did (the caller sends it)."""
    if t.status == TrainingStatus.RUNNING:
        dead = is_gone(t.worker)
        if not dead and t.heartbeat_at is not None and t.heartbeat_at >= stale:
            return False
        fence = [Training.status == TrainingStatus.RUNNING, Training.attempts == t.attempts]
        if not dead:
            fence.append(or_(Training.heartbeat_at.is_(None), Training.heartbeat_at < stale))
        values: dict = {"status": TrainingStatus.QUEUED, "heartbeat_at": utcnow(), "worker": None}
    else:
        if (t.heartbeat_at or t.created_at) >= stale:
            return False
        fence = [Training.status == t.status, func.coalesce(Training.heartbeat_at, Training.created_at) < stale]
        values = {"status": TrainingStatus.QUEUED, "heartbeat_at": utcnow()}
    taken = s.execute(update(Training).where(Training.id == t.id, *fence).values(**values)).rowcount == 1  # type: ignore[attr-defined]
    if taken and t.candidate.status == CandidateStatus.TRAINING:
        t.candidate.status = CandidateStatus.QUEUED
    if taken:
        log.warning("training %s (%s, attempt %s) was not held by any worker: sent again", t.id, t.status, t.attempts)
    return taken


def _next_step(
    s: Session, sf: sessionmaker, run: Run, stale: datetime, dispatcher: Dispatcher, settings: Settings
) -> None:
    """Schedule the step ``run`` waits for, when it waits for one that is not on its way."""
    run_id = run.id
    if run.phase == RunPhase.FINAL:  # idempotent, and cheap: finishes a run whose last completion hook was lost
        after_commit(s, lambda: maybe_finish(sf, run_id))
        return
    if run.phase != RunPhase.SEARCH:
        return
    last = run.iterations[-1] if run.iterations else None
    if last is not None and last.status in (IterationStatus.SCREENING, IterationStatus.TRAINING):
        trainings = [t for c in last.candidates for t in c.trainings]
        if all(t.status in TRAINING_TERMINAL and t.status != TrainingStatus.CANCELLED for t in trainings):
            last_id = last.id
            after_commit(s, lambda: advance(sf, last_id, dispatcher, settings))
        return
    # It waits for a design (none yet, one at work, or the next one), or for the final step after its last iteration.
    held = s.execute(update(Run).where(Run.id == run_id, Run.updated_at < stale).values(updated_at=utcnow())).rowcount  # type: ignore[attr-defined]
    if held != 1:
        return
    log.warning("run %s waited for a step that no worker held: sent again", run_id)
    if last is not None and last.status == IterationStatus.DONE and last.index + 1 >= run.task.iterations:
        finalize(s, run, dispatcher, sf)
    else:
        after_commit(s, lambda: dispatcher.design(run_id))


@contextmanager
def holding(sf: sessionmaker, run_id: int, settings: Settings) -> Iterator[None]:
    """Hold ``run_id``'s lease while the block works on it (a design can take minutes of LLM calls): its
    ``updated_at`` is refreshed every heartbeat, so the sweep does not send the step again meanwhile."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.training_heartbeat_seconds):
            try:
                with session_scope(sf) as s:
                    s.execute(update(Run).where(Run.id == run_id).values(updated_at=utcnow()))
            except Exception:  # a missed beat only risks the step being sent twice, which is harmless
                log.warning("the lease of run %s was not refreshed", run_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"lease-run-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    except SandboxStopped:  # the worker shuts down: release the lease, so that the next sweep sends the step again
        stop.set()
        with session_scope(sf) as s:
            s.execute(update(Run).where(Run.id == run_id).values(updated_at=RELEASED))
        raise
    finally:
        stop.set()
