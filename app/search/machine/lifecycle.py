"""A run's life in the database: started, and resumed from where it stopped.

The search is a state machine in the database: design → (screen →) train → reflect → next
iteration → final. Each step is a function of ids that reads the database, does its work,
and records the outcome; completion hooks are idempotent (guarded by conditional updates),
so a redelivered or duplicated message changes nothing. Long work (LLM calls, training)
runs outside any open transaction. This module starts a run (its baselines and its first
design) and resumes one from where it stopped (``app.search.machine.recovery`` sweeps up what a lost
message or a dead worker left behind); ``app.search.machine.iterations`` carries trainings' outcomes on.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Candidate, Run, Training, utcnow
from app.search.design.dedupe import normalised_hash
from app.search.machine.finish import finalize, maybe_finish
from app.search.machine.iterations import advance
from app.search.records.dispatch import Dispatcher
from app.search.records.ledger import dispatch_after_commit, new_training, requeue
from app.search.records.proposals import schedule_proposal
from app.search.records.runs import set_status
from app.search.rules.budget import baseline_programs
from app.search.rules.fitness import awaits_fitness
from app.search.rules.options import options_of
from app.search.rules.states import CandidateStatus, IterationStatus, Purpose, RunPhase, RunStatus, TrainingStatus

log = logging.getLogger(__name__)


def start(sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """queued → running; schedule the baselines and the first design."""
    with session_scope(sf) as s:
        # Locked: the start message and a sweep that finds the run still queued may both get here at once; without
        # the lock both would schedule baselines and a design.
        run = s.get(Run, run_id, with_for_update=True)
        if run is None or run.status != RunStatus.QUEUED:
            return
        if awaits_fitness(run.task):  # its fitness is proposed first, and a person approves it
            schedule_proposal(s, run, dispatcher)
            return
        set_status(run, RunStatus.RUNNING)
        task = run.task
        if options_of(task).baselines:
            made = []
            for origin, code in baseline_programs(task.env, task.fitness_name, task.fitness_source):
                c = Candidate(
                    run_id=run.id,
                    origin=origin,
                    code=code,
                    code_hash=normalised_hash(code),
                    status=CandidateStatus.QUEUED,
                )
                s.add(c)
                s.flush()
                made.append(new_training(s, c, purpose=Purpose.BASELINE, timesteps=task.timesteps, seed=task.seed))
            dispatch_after_commit(s, dispatcher, made)
        after_commit(s, lambda: dispatcher.design(run_id))


def _stale(t: Training, settings: Settings) -> bool:
    """A running training whose heartbeat is older than the lease: its worker died."""
    stale_before = utcnow().timestamp() - settings.training_lease_seconds
    return t.heartbeat_at is None or t.heartbeat_at.timestamp() <= stale_before


def resume(sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """Continue a run that was set running again: re-dispatch its queued, cancelled and orphaned trainings, and
    schedule whatever step it waits for (a design, the close of an iteration, the final evaluation, the finish)."""
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None or run.status != RunStatus.RUNNING:
            return
        unfinished = s.scalars(
            select(Training).where(
                Training.run_id == run_id,
                Training.status.in_((TrainingStatus.QUEUED, TrainingStatus.CANCELLED, TrainingStatus.RUNNING)),
            )
        )
        pending = [t for t in unfinished if t.status != TrainingStatus.RUNNING or _stale(t, settings)]
        for t in pending:
            if t.status == TrainingStatus.CANCELLED:
                requeue(t)
        dispatch_after_commit(s, dispatcher, pending)
        _schedule_next_step(s, sf, run, dispatcher, settings, waiting=bool(pending))


def _schedule_next_step(
    s: Session, sf: sessionmaker, run: Run, dispatcher: Dispatcher, settings: Settings, *, waiting: bool
) -> None:
    """What a resumed run does next, from where it stopped; ``waiting``: trainings were just re-dispatched."""
    run_id = run.id
    last = run.iterations[-1] if run.iterations else None
    if run.phase == RunPhase.FINAL:
        if not waiting:
            after_commit(s, lambda: maybe_finish(sf, run_id))
    elif run.phase != RunPhase.SEARCH:
        return
    elif last is not None and last.status == IterationStatus.DONE and last.index + 1 >= run.task.iterations:
        finalize(s, run, dispatcher, sf)  # the last iteration ended while the run was stopped
    elif last is None or last.status in (IterationStatus.DESIGNING, IterationStatus.DONE):
        after_commit(s, lambda: dispatcher.design(run_id))
    elif not waiting:
        last_id = last.id
        after_commit(s, lambda: advance(sf, last_id, dispatcher, settings))
