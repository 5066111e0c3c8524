"""How fast one training of an env runs here: what time estimates (dashboard, CLI, a run's ETA) divide a budget by."""

from __future__ import annotations

import statistics

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.models import Run, Task, Training
from app.search.rules.states import TrainingStatus
from workers.engine.result import TrainingResult, steps_trained

RECENT = 20
"""The measured rate is the median of this many recent finished trainings of the env."""


def measured_rate(result: TrainingResult) -> float | None:
    """Steps/s one finished training took from start to end (sandbox start-up, dry run, checkpoints and the final
    evaluation included: what a person waits for); its learning rate alone where the whole time was not recorded."""
    steps, wall = steps_trained(result), result.get("wall_seconds")
    if steps > 0 and isinstance(wall, int | float) and wall > 0:
        return steps / wall
    rate = result.get("steps_per_second")
    return float(rate) if isinstance(rate, int | float) and rate > 0 else None


def training_rate(session: Session, settings: Settings, *, env: str | None = None) -> tuple[float, str]:
    """Steps/s of one training of ``env`` on one worker slot, and where the figure comes from.

    The median rate (``measured_rate``) of the last finished trainings of ``env`` itself: the engine's speed
    depends on the env as much as on the machine (a Humanoid steps ~10× slower than a HalfCheetah), so other envs'
    trainings say nothing about it. REWARDSMITH_TRAIN_STEPS_PER_SECOND until one of the env has finished.
    """
    query = (
        select(Training.result)
        .join(Run, Run.id == Training.run_id)
        .join(Task, Task.id == Run.task_id)
        .where(Training.status == TrainingStatus.OK)
        .order_by(Training.finished_at.desc())
        .limit(10 * RECENT)
    )
    if env is not None:  # the env is the task's: a stored result does not repeat it
        query = query.where(Task.env == env)
    measured = [rate for r in session.scalars(query) if r for rate in [measured_rate(r)] if rate][:RECENT]
    if not measured:
        return settings.train_steps_per_second, "REWARDSMITH_TRAIN_STEPS_PER_SECOND"
    of = f" of {env}" if env else ""
    return statistics.median(measured), f"the median of the last {len(measured)} trainings{of} here"
