"""A run's row: its status moves, its failure, the feedback it has yet to use, its diagnostics and summary."""

from __future__ import annotations

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session, object_session

import app.search.records.webhooks as webhooks
from app.db.models import Feedback, Run, utcnow
from app.search.design.diagnostics import STUCK, run_findings, stored
from app.search.design.run_diagnosis import diagnose_run
from app.search.records.candidates import scored_of
from app.search.records.ledger import refresh_usage
from app.search.records.webhooks import event_of
from app.search.rules.states import RUN_TERMINAL, RunStatus, check_transition


def set_status(run: Run, target: RunStatus, *, error: str | None = None) -> None:
    """Move ``run`` along its state machine (IllegalTransition → 409 otherwise)."""
    check_transition(f"run {run.id}", run.status, target)
    run.status = target
    if target == RunStatus.RUNNING:
        run.started_at = run.started_at or utcnow()
        run.error = None
        run.finished_at = None
    if target in RUN_TERMINAL:
        run.finished_at = utcnow()
    if error is not None:
        run.error = error
    session = object_session(run)
    if session is not None and event_of(target) is not None:
        webhooks.enqueue(session, run, summary=summary(run))


def fail_run(session: Session, *, run_id: int, error: str) -> None:
    """Mark a running or queued run failed with ``error`` (what happened and what to do); a settled run is left."""
    run = session.get(Run, run_id)
    if run is not None and run.status in (RunStatus.RUNNING, RunStatus.QUEUED):
        set_status(run, RunStatus.FAILED, error=error)
        refresh_usage(session, run)


def pending_feedback(session: Session, *, run_id: int, iteration: int | None = None) -> list[Feedback]:
    """Feedback no iteration has used yet; with ``iteration``, also what that iteration took (so that designing it
    again, after a failed LLM call, still carries it)."""
    unused = Feedback.used_in_iteration.is_(None)
    taken = Feedback.used_in_iteration == iteration if iteration is not None else false()
    query = select(Feedback).where(Feedback.run_id == run_id, or_(unused, taken)).order_by(Feedback.id)
    return list(session.scalars(query))


def update_diagnostics(run: Run) -> None:
    """Recompute and store the run's diagnostics (when an iteration closes and when the run ends)."""
    run.diagnostics = stored(diagnose_run(scored_of(run.candidates), best_id=run.best_candidate_id))


def summary(run: Run) -> str:
    """One line on how the run ended; a run that learned nothing says so first, not 'succeeded'."""
    stuck = [d for d in run_findings(run) if d["code"] in STUCK]
    if run.status == RunStatus.SUCCEEDED and stuck:
        return "the search learned nothing: " + "; and ".join(d["message"] for d in stuck)
    if run.status == RunStatus.SUCCEEDED:
        head = f"succeeded, best candidate {run.best_candidate_id}"
        ratio = (run.final or {}).get("yardstick", {}).get("ratio")
        return head + (f" ({ratio:.2f}x the reference reward on fresh seeds)" if isinstance(ratio, float) else "")
    return f"{run.status}" + (f": {run.error}" if run.error else "")
