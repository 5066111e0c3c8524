"""The search as a state machine in the database: design → (screen →) train → reflect → next iteration → final.

Each step is a function of ids that reads the database, does its work, and records
the outcome; completion hooks are idempotent (guarded by conditional updates), so a
redelivered or duplicated message changes nothing. Long work (LLM calls, training)
runs outside any open transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Candidate, Iteration, Run, Task, Training, utcnow
from app.search.budget import baseline_programs, kept_after_screening
from app.search.dedupe import normalised_hash
from app.search.dispatch import Dispatcher
from app.search.finish import finalize, maybe_finish
from app.search.ledger import dispatch_after_commit, new_training, run_usage
from app.search.options import options_of
from app.search.proposals import awaits_fitness, schedule_proposal
from app.search.reflection import reflect
from app.search.run_diagnostics import update_run as update_run_diagnostics
from app.search.selection import waits_for_choices
from app.search.service import set_status
from app.search.states import (
    TRAINING_TERMINAL,
    CandidateStatus,
    IterationStatus,
    Purpose,
    RunPhase,
    RunStatus,
    TrainingStatus,
)

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ start, resume
# (the sweep that recovers lost work is app.search.recovery)


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
                t.status = TrainingStatus.QUEUED
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


# ------------------------------------------------------------------------------------ training results


def record_training(t: Training, task: Task) -> None:
    """Carry a finished training's outcome to its candidate (fitness, status, reflection).

    Call it in the transaction that makes the training terminal: the completion hook of a sibling training
    closes the iteration as soon as every training is terminal, and must then find every candidate recorded.
    """
    c = t.candidate
    if t.purpose == Purpose.FINAL:
        return
    if t.status == TrainingStatus.OK:
        fit = t.result.get("fitness")
        c.fitness, c.fitness_std = (fit["mean"], fit["std"]) if fit else (None, None)
        c.status = CandidateStatus.SCREENED if t.purpose == Purpose.SCREEN else CandidateStatus.TRAINED
        c.error = None
        r = reflect(t.result, fitness_name=task.fitness_name)
        c.reflection, c.diagnostics = r.text, {"items": r.diagnostics}
        if t.result.get("dry_run"):
            c.dry_run = t.result["dry_run"]
    else:
        c.status = CandidateStatus(t.status.value)
        c.error = t.error


def training_finished(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """The completion hook of one training (already recorded on its candidate): advance the iteration or the run."""
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        if t is None or t.status not in TRAINING_TERMINAL:
            return
        run = s.get(Run, t.run_id)
        assert run is not None
        run.usage = run_usage(s, run.id)
        iteration_id = t.candidate.iteration_id
        purpose = t.purpose
        run_id = t.run_id
    if purpose in (Purpose.SCREEN, Purpose.FULL) and iteration_id is not None:
        advance(sf, iteration_id, dispatcher, settings)
    else:
        maybe_finish(sf, run_id)


def _claim(s: Session, it: Iteration, expected: IterationStatus, target: IterationStatus) -> bool:
    """Move the iteration from ``expected`` to ``target`` unless someone else already did (conditional update)."""
    res = s.execute(update(Iteration).where(Iteration.id == it.id, Iteration.status == expected).values(status=target))
    return res.rowcount == 1  # type: ignore[attr-defined]


def advance(sf: sessionmaker, iteration_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """When every training of an iteration has ended: continue the screened best half, or close the iteration."""
    with session_scope(sf) as s:
        it = s.get(Iteration, iteration_id)
        if it is None:
            return
        run = it.run
        trainings = list(s.scalars(select(Training).join(Candidate).where(Candidate.iteration_id == it.id)))
        # a cancelled training is trained again when the run resumes: until then the iteration is not over
        if any(t.status not in TRAINING_TERMINAL or t.status == TrainingStatus.CANCELLED for t in trainings):
            return
        if it.status == IterationStatus.SCREENING:
            if _claim(s, it, IterationStatus.SCREENING, IterationStatus.TRAINING) and not _continue_best_half(
                s, it, run, dispatcher
            ):
                after_commit(s, lambda: advance(sf, iteration_id, dispatcher, settings))
            return
        if it.status != IterationStatus.TRAINING or not _claim(s, it, IterationStatus.TRAINING, IterationStatus.DONE):
            return
        s.refresh(it)
        _close_iteration(s, it, run)
        if run.status != RunStatus.RUNNING or waits_for_choices(s, run, it):
            return
        run_id = run.id
        if it.index + 1 >= run.task.iterations:
            finalize(s, run, dispatcher, sf)
        elif run.task.wait_for_feedback:
            set_status(run, RunStatus.WAITING_FEEDBACK)
        else:
            after_commit(s, lambda: dispatcher.design(run_id))


def _close_iteration(s: Session, it: Iteration, run: Run) -> None:
    """The iteration is done: its screened candidates count as trained; the best so far becomes the parent."""
    it.finished_at = utcnow()
    for c in it.candidates:
        if c.status == CandidateStatus.SCREENED:
            c.status = CandidateStatus.TRAINED
    scored = [
        c
        for c in run.candidates
        if c.status == CandidateStatus.TRAINED and c.iteration_id is not None and c.fitness is not None
    ]
    # A candidate stopped after screening was measured on a fraction of the budget: it only wins when
    # no candidate reached the full budget.
    full = [c for c in scored if any(t.purpose == Purpose.FULL and t.status == TrainingStatus.OK for t in c.trainings)]
    scored = full or scored
    if scored:
        run.best_candidate_id = max(scored, key=lambda c: c.fitness or 0.0).id
    update_run_diagnostics(run)
    run.usage = run_usage(s, run.id)


def _continue_best_half(s: Session, it: Iteration, run: Run, dispatcher: Dispatcher) -> bool:
    """Continue the better half of the screened candidates to the full budget; False when none is left to train."""
    screened = sorted(
        (c for c in it.candidates if c.status == CandidateStatus.SCREENED),
        key=lambda c: c.fitness or 0.0,
        reverse=True,
    )
    keep = screened[: kept_after_screening(len(screened))]
    made = []
    for c in keep:
        screen = next(t for t in reversed(c.trainings) if t.purpose == Purpose.SCREEN and t.status == TrainingStatus.OK)
        c.status = CandidateStatus.QUEUED
        made.append(
            new_training(
                s, c, purpose=Purpose.FULL, timesteps=run.task.timesteps, seed=run.task.seed, resume_from=screen
            )
        )
    for c in screened[len(keep) :]:
        c.status = CandidateStatus.TRAINED
        c.critic = [
            *(c.critic or []),
            {
                "stage": "successive halving",
                "verdict": "stopped",
                "text": "stopped after screening: its fitness was in the lower half",
            },
        ]
    if run.status != RunStatus.RUNNING:
        for t in made:
            t.status = TrainingStatus.CANCELLED
        return True
    dispatch_after_commit(s, dispatcher, made)
    return bool(made)
