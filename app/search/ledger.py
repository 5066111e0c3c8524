"""Bookkeeping shared by the search's steps: new trainings, their dispatch, sandbox limits, the usage ledger."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import after_commit
from app.db.models import Candidate, LLMExchange, Training
from app.search.dispatch import Dispatcher
from workers.sandbox.runner import Limits


def sandbox_limits(settings: Settings, wall: float | None = None) -> Limits:
    """The sandbox limits of the settings (``wall`` overrides the wall-clock limit, e.g. for dry runs)."""
    return Limits(
        wall_seconds=wall or settings.sandbox_wall_seconds,
        memory_mb=settings.sandbox_memory_mb,
        max_file_mb=settings.sandbox_max_file_mb,
        progress_seconds=settings.sandbox_progress_seconds,
        reward_cost_ratio=settings.sandbox_reward_cost_ratio,
    )


def new_training(
    session: Session, c: Candidate, *, purpose: str, timesteps: int, seed: int, resume_from: Training | None = None
) -> Training:
    """A queued training of ``c`` (dispatch it after the commit)."""
    t = Training(
        candidate_id=c.id,
        run_id=c.run_id,
        purpose=purpose,
        timesteps=timesteps,
        seed=seed,
        resume_from_id=resume_from.id if resume_from else None,
        status="queued",
        result={},
    )
    session.add(t)
    session.flush()
    return t


def dispatch_after_commit(session: Session, dispatcher: Dispatcher, trainings: list[Training]) -> None:
    """Send ``trainings`` to the workers once the rows that describe them are committed."""
    ids = [t.id for t in trainings]
    after_commit(session, lambda: [dispatcher.train(i) for i in ids])


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
        int(r.get("timesteps", 0)) - int(r.get("resumed_from_timesteps") or 0)
        for r in s.scalars(select(Training.result).where(Training.run_id == run_id, Training.status == "ok"))
    )
    return {
        "requests": int(row[0]),
        "prompt_tokens": int(row[1]),
        "completion_tokens": int(row[2]),
        "total_tokens": int(row[1]) + int(row[2]),
        "cost": float(row[3]) if row[3] is not None else None,
        "cached_requests": int(cached or 0),
        "failed_requests": int(errors or 0),
        "timesteps_trained": int(steps or 0),
    }
