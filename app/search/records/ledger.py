"""Bookkeeping shared by the search's steps: new trainings, their dispatch, the usage ledger."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import after_commit
from app.db.locks import hold_run
from app.db.models import Candidate, LLMExchange, Run, Training
from app.search.records.dispatch import Dispatcher
from app.search.rules.states import CandidateStatus, Purpose, TrainingStatus
from workers.engine.result import steps_trained
from workers.engine.screen import ScreenVerdict


def new_training(
    session: Session,
    c: Candidate,
    *,
    purpose: Purpose,
    timesteps: int,
    seed: int,
    resume_from: Training | None = None,
    warm_start_from: Training | None = None,
    continue_from_parent: bool | None = None,
) -> Training:
    """A queued training of ``c`` (dispatch it after the commit); with ``warm_start_from``, it starts from the policy
    that training left (the parent candidate's), and ``continue_from_parent`` records the task's option."""
    t = Training(
        candidate_id=c.id,
        run_id=c.run_id,
        purpose=purpose,
        timesteps=timesteps,
        seed=seed,
        resume_from_id=resume_from.id if resume_from else None,
        warm_start_from_id=warm_start_from.id if warm_start_from else None,
        continue_from_parent=continue_from_parent,
        status=TrainingStatus.QUEUED,
        result={},
    )
    session.add(t)
    session.flush()
    return t


def policy_of(c: Candidate | None) -> Training | None:
    """The training whose policy stands for candidate ``c``: its last successful search training (full budget, or
    screen when it was stopped there) that stored its files; None when there is none."""
    if c is None:
        return None
    kept = [
        t
        for t in c.trainings
        if t.purpose in (Purpose.FULL, Purpose.SCREEN) and t.status == TrainingStatus.OK and t.artifacts_key
    ]
    full = [t for t in kept if t.purpose == Purpose.FULL]
    chosen = full or kept
    return chosen[-1] if chosen else None


def dispatch_after_commit(session: Session, dispatcher: Dispatcher, trainings: list[Training]) -> None:
    """Send ``trainings`` to the workers once the rows that describe them are committed."""
    ids = [t.id for t in trainings]

    def send() -> None:
        for i in ids:
            dispatcher.train(i)

    after_commit(session, send)


def run_usage(s: Session, run_id: int) -> dict:
    """Tokens, requests and cost of the run's LLM exchanges, and the PPO steps its trainings actually ran."""
    row = s.execute(
        select(
            func.count(LLMExchange.id),
            func.coalesce(func.sum(LLMExchange.prompt_tokens), 0),
            func.coalesce(func.sum(LLMExchange.completion_tokens), 0),
            func.sum(LLMExchange.cost),
        ).where(LLMExchange.run_id == run_id, LLMExchange.cached.is_(False), LLMExchange.status == "ok")
    ).one()
    cached = s.scalar(
        select(func.count(LLMExchange.id)).where(LLMExchange.run_id == run_id, LLMExchange.cached.is_(True))
    )
    errors = s.scalar(
        select(func.count(LLMExchange.id)).where(LLMExchange.run_id == run_id, LLMExchange.status == "error")
    )
    # Steps actually trained: PPO rounds up to whole rollouts, and a continued training only adds its own.
    steps = sum(
        steps_trained(r)
        for r in s.scalars(
            select(Training.result).where(Training.run_id == run_id, Training.status == TrainingStatus.OK)
        )
    )
    screens = [
        (status, screen)
        for status, screen in s.execute(
            select(Candidate.status, Candidate.screen).where(Candidate.run_id == run_id, Candidate.screen.is_not(None))
        ).all()
        if isinstance(screen, dict)
    ]
    refused = [x for x in screens if x[0] == CandidateStatus.REJECTED and not ScreenVerdict.trains_on(x[1])]
    return {
        "requests": int(row[0]),
        "prompt_tokens": int(row[1]),
        "completion_tokens": int(row[2]),
        "total_tokens": int(row[1]) + int(row[2]),
        "cost": float(row[3]) if row[3] is not None else None,
        "cached_requests": int(cached or 0),
        "failed_requests": int(errors or 0),
        "timesteps_trained": int(steps or 0),
        "screened": len(screens),
        "trainings_saved_by_screen": len(refused),
    }


def refresh_usage(s: Session, run: Run) -> None:
    """Sum the run's usage again and store it, holding the run first: two trainings that record at once would
    otherwise each sum before the other's commit, and the later write would lose a training's steps."""
    hold_run(s, run.id)
    run.usage = run_usage(s, run.id)


CANCELLED_BEFORE_START = "the run was cancelled before this training started"
UNFINISHED_CANDIDATE = frozenset({CandidateStatus.QUEUED, CandidateStatus.TRAINING})


def cancel_unfinished(session: Session, run_id: int) -> None:
    """A cancelled run's queued trainings, and its candidates (baselines included) waiting for or in a training, say
    'cancelled'; a running training is stopped at its next checkpoint and recorded cancelled by its worker."""
    queued = select(Training).where(Training.run_id == run_id, Training.status == TrainingStatus.QUEUED)
    for t in session.scalars(queued):
        t.status, t.error = TrainingStatus.CANCELLED, CANCELLED_BEFORE_START
    waiting = select(Candidate).where(Candidate.run_id == run_id, Candidate.status.in_(UNFINISHED_CANDIDATE))
    for c in session.scalars(waiting):
        c.status = CandidateStatus.CANCELLED


def requeue(t: Training) -> None:
    """A cancelled (or interrupted) training queued again: its old error no longer applies, and its candidate waits
    for it again."""
    t.status, t.error, t.finished_at = TrainingStatus.QUEUED, None, None
    if t.candidate.status == CandidateStatus.CANCELLED:
        t.candidate.status = CandidateStatus.QUEUED
