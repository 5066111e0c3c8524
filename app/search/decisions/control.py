"""Stopping a run and starting it again."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db import after_commit
from app.db.models import Run
from app.errors import Conflict
from app.search.decisions.approval import resume_unapproved
from app.search.records.dispatch import Dispatcher
from app.search.records.ledger import cancel_unfinished
from app.search.records.runs import set_status
from app.search.rules.fitness import awaits_fitness
from app.search.rules.states import RunPhase, RunStatus


def cancel_run(session: Session, *, run: Run) -> Run:
    """Stop a run: queued trainings will not start, running ones are stopped at their next checkpoint; what waited for
    a training is shown cancelled, not 'queued' or 'training'."""
    set_status(run, RunStatus.CANCELLED)
    cancel_unfinished(session, run.id)
    return run


def resume_run(session: Session, *, run: Run, dispatcher: Dispatcher) -> Run:
    """Continue a run that waits for feedback, was cancelled, or failed; nothing done so far is redone."""
    if run.status == RunStatus.QUEUED:
        raise Conflict(
            f"run {run.id} is queued: it starts by itself as soon as a worker takes it; there is nothing to resume"
        )
    if run.status == RunStatus.FAILED and run.phase == RunPhase.DONE:
        raise Conflict(
            f"run {run.id} ended with no candidate that could be trained, so there is nothing left to "
            "resume: submit the task again, perhaps with another description, designer or budget"
        )
    if awaits_fitness(run.task):  # no fitness approved yet: back to the decision, or propose again
        return resume_unapproved(session, run=run, dispatcher=dispatcher)
    set_status(run, RunStatus.RUNNING)
    run_id = run.id
    after_commit(session, lambda: dispatcher.resume(run_id))
    return run
