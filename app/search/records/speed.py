"""How fast one training runs here: what time estimates (dashboard, CLI) divide a budget by."""

from __future__ import annotations

import statistics

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.models import Training
from app.search.rules.states import TrainingStatus

RECENT = 20
"""The measured rate is the median of this many recent finished trainings (of the env, when one is given)."""


def training_rate(session: Session, settings: Settings, *, env: str | None = None) -> tuple[float, str]:
    """Steps/s of one training on one worker slot, and where the figure comes from.

    The median ``steps_per_second`` the last finished trainings measured (of ``env`` when it has
    any), since the engine's speed depends on the machine, the env and REWARDSMITH_TRAIN_THREADS;
    REWARDSMITH_TRAIN_STEPS_PER_SECOND until some have finished.
    """
    rows = session.scalars(
        select(Training.result)
        .where(Training.status == TrainingStatus.OK)
        .order_by(Training.finished_at.desc())
        .limit(10 * RECENT)
    ).all()
    rates = [(r.get("env"), r.get("steps_per_second")) for r in rows if r]
    measured = [float(s) for e, s in rates if s and (env is None or e == env)][:RECENT]
    if not measured and env is not None:
        measured = [float(s) for _, s in rates if s][:RECENT]
    if not measured:
        return settings.train_steps_per_second, "REWARDSMITH_TRAIN_STEPS_PER_SECOND"
    return statistics.median(measured), f"the median of the last {len(measured)} trainings here"
