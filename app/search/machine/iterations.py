"""An iteration's trainings end: their outcome goes to the candidates, and the iteration continues or closes.

A training that ends is recorded on its candidate (``record_training``) in the same
transaction; its completion hook (``training_finished``) then advances the iteration once
every training of it has ended: the screened better half continues, or the iteration closes,
the best so far becomes the parent, and the run designs the next iteration, waits for a
person, or finishes. Each move is claimed with a conditional update, so a redelivered hook
changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session, sessionmaker

from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Candidate, Iteration, Run, Task, Training, utcnow
from app.search.decisions.selection import waits_for_choices
from app.search.design.diagnostics import stored
from app.search.design.reflection import reflect
from app.search.machine.finish import finalize, maybe_finish
from app.search.records.dispatch import Dispatcher
from app.search.records.ledger import dispatch_after_commit, new_training, refresh_usage
from app.search.records.runs import set_status, update_diagnostics
from app.search.rules.budget import added_steps, kept_after_screening
from app.search.rules.options import options_of
from app.search.rules.states import (
    TRAINING_TERMINAL,
    CandidateStatus,
    IterationStatus,
    Purpose,
    RunStatus,
    TrainingStatus,
)


def record_training(t: Training, task: Task) -> None:
    """Carry a finished training's outcome to its candidate (fitness, status, reflection).

    Call it in the transaction that makes the training terminal: the completion hook of a sibling training
    closes the iteration as soon as every training is terminal, and must then find every candidate recorded.
    """
    c = t.candidate
    if t.purpose in (Purpose.FINAL, Purpose.LINEAGE):
        return
    if t.status == TrainingStatus.OK:
        fit = t.result.get("fitness")
        c.fitness, c.fitness_std = (fit["mean"], fit["std"]) if fit else (None, None)
        c.status = CandidateStatus.SCREENED if t.purpose == Purpose.SCREEN else CandidateStatus.TRAINED
        c.error = None
        r = reflect(t.result, fitness_name=task.fitness_name)
        c.reflection, c.diagnostics = r.text, stored(r.diagnostics)
        record_lineage(t)
        if t.result.get("dry_run"):
            c.dry_run = t.result["dry_run"]
    else:
        c.status = CandidateStatus(t.status.value)
        c.error = t.error


def record_lineage(t: Training) -> None:
    """The steps behind the candidate's policy: its own (this training's, a continued one's included), and its
    ancestors' when it started from its parent's policy (the parent's own and the parent's ancestors')."""
    c = t.candidate
    c.steps_own = int(t.result.get("timesteps") or 0)
    session = object_session(t)
    first = t
    while first.resume_from_id is not None and session is not None:  # a continued screen: where it started
        before = session.get(Training, first.resume_from_id)
        if before is None:
            break
        first = before
    source = session.get(Training, first.warm_start_from_id) if first.warm_start_from_id and session else None
    if source is None or "warm_start" not in (first.result or {}):  # from scratch (or the parent's files did not fit)
        c.steps_ancestors = 0
        return
    parent = source.candidate
    c.steps_ancestors = (parent.steps_own or 0) + (parent.steps_ancestors or 0)


def training_finished(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """The completion hook of one training (already recorded on its candidate): advance the iteration or the run."""
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        if t is None or t.status not in TRAINING_TERMINAL:
            return
        run = s.get(Run, t.run_id)
        assert run is not None
        refresh_usage(s, run)
        iteration_id = t.candidate.iteration_id
        purpose = t.purpose
        run_id = t.run_id
    if purpose in (Purpose.SCREEN, Purpose.FULL) and iteration_id is not None:
        advance(sf, iteration_id, dispatcher, settings)
    else:
        maybe_finish(sf, run_id)


def claim_iteration(s: Session, iteration_id: int, expected: IterationStatus, target: IterationStatus) -> bool:
    """Move the iteration from ``expected`` to ``target`` unless someone else already did (one conditional update:
    of two deliveries of a step, only one gets True, on SQLite too, whose reads take no lock)."""
    res = s.execute(
        update(Iteration).where(Iteration.id == iteration_id, Iteration.status == expected).values(status=target)
    )
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
            if claim_iteration(
                s, it.id, IterationStatus.SCREENING, IterationStatus.TRAINING
            ) and not _continue_best_half(s, it, run, dispatcher):
                after_commit(s, lambda: advance(sf, iteration_id, dispatcher, settings))
            return
        if it.status != IterationStatus.TRAINING or not claim_iteration(
            s, it.id, IterationStatus.TRAINING, IterationStatus.DONE
        ):
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
    update_diagnostics(run)
    refresh_usage(s, run)


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
        full = added_steps(run.task.timesteps, options_of(run.task), warm=screen.warm_start_from_id is not None)
        made.append(new_training(s, c, purpose=Purpose.FULL, timesteps=full, seed=run.task.seed, resume_from=screen))
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
