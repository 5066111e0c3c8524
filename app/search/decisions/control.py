"""Stopping a run and starting it again."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import after_commit
from app.db.models import Run, Task
from app.errors import Conflict, InvalidInput
from app.search.decisions.approval import resume_unapproved
from app.search.decisions.tasks import create_task
from app.search.records.dispatch import Dispatcher
from app.search.records.ledger import cancel_unfinished
from app.search.records.runs import set_status
from app.search.rules.fitness import awaits_fitness
from app.search.rules.options import ITERATIONS
from app.search.rules.states import RunPhase, RunStatus
from app.search.rules.task import TaskSpec, columns


def continue_run(session: Session, *, run: Run, iterations: int, settings: Settings, dispatcher: Dispatcher) -> Run:
    """Continue a run that succeeded for ``iterations`` more: its best so far is the next iteration's parent, the
    feedback given since it ended goes into that iteration's prompt, and the best is re-evaluated on the final
    seeds again at the end (seeds already trained are not trained twice). The task's whole budget, continued
    iterations included, stays under the same caps as a new task's."""
    if run.status != RunStatus.SUCCEEDED:
        raise Conflict(
            f"run {run.id} is {run.status}: only a run that succeeded is continued for more iterations"
            + ("; resume it instead" if run.status in (RunStatus.FAILED, RunStatus.CANCELLED) else "")
        )
    low, high = ITERATIONS
    total = run.task.iterations + iterations
    if not low <= iterations or total > high:
        raise InvalidInput(
            f"iterations must be from {low} to {high - run.task.iterations} (a run has at most {high} iterations; "
            f"this one has {run.task.iterations})",
            field="iterations",
        )
    columns(TaskSpec.of_task(run.task, iterations=total), settings)  # the caps of a new task (InvalidInput)
    run.task.iterations = total
    run.phase = RunPhase.SEARCH
    run.final = {}  # figured again when the continued run ends: its best may change
    set_status(run, RunStatus.RUNNING)
    run_id = run.id
    after_commit(session, lambda: dispatcher.resume(run_id))
    return run


def new_run_from(
    session: Session, *, run: Run, changes: dict[str, Any], owner_id: int | None, settings: Settings,
    dispatcher: Dispatcher,
) -> tuple[Task, Run]:  # fmt: skip
    """A new task and run like ``run``'s task with ``changes`` (the task's fields; ``options`` merged), whose first
    iteration starts from ``run``'s best program; created as any task is (``create_task``: rate, caps, access)."""
    if run.best_candidate_id is None:
        raise Conflict(f"run {run.id} has no best candidate to start from; submit its task again instead")
    task = run.task
    options = {**(task.options or {}), **(changes.pop("options", None) or {}), "start_from": run.best_candidate_id}
    spec = TaskSpec.of_task(task, **changes, options=options)
    return create_task(session, spec=spec, owner_id=owner_id, settings=settings, dispatcher=dispatcher)


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
    if run.status == RunStatus.SUCCEEDED:
        raise Conflict(
            f"run {run.id} has succeeded, so there is nothing to resume: continue it for more iterations "
            f"(POST /api/v1/runs/{run.id}/continue, or 'Continue' on its page), or start a new run from its best"
        )
    if awaits_fitness(run.task):  # no fitness approved yet: back to the decision, or propose again
        return resume_unapproved(session, run=run, dispatcher=dispatcher)
    set_status(run, RunStatus.RUNNING)
    run_id = run.id
    after_commit(session, lambda: dispatcher.resume(run_id))
    return run
