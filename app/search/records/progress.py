"""How far a run has come and how long it has left, measured: elapsed time, trainings and steps done out of what the
run will do at most (its budget, fixed when the task was made, so the total does not grow as iterations start), an
ETA from the steps left at a measured rate, and its LLM tokens and cost.

The rate is this run's own (steps done over time elapsed, LLM calls and start-ups included) once it has trained
something; until then the rate one training of this env measured here (``speed.training_rate``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.config import Settings
from app.db.models import Run, Training, utcnow
from app.search.records.ledger import run_usage
from app.search.records.speed import training_rate
from app.search.rules.budget import Budget, baseline_programs, plan
from app.search.rules.options import options_of
from app.search.rules.states import RUN_TERMINAL, TRAINING_PENDING, DesignerKind, TrainingStatus
from workers.engine.result import steps_trained


@dataclass(frozen=True)
class RunProgress:
    """What a run's page, run.json and the CLI say about its progress."""

    elapsed_seconds: float | None
    """Since the run started (until it ended, for an ended run); None before it started."""
    eta_seconds: float | None
    """Time left at ``rate``; None once the run has ended or when nothing can be estimated."""
    rate: float | None
    """Steps per second the ETA divides by."""
    rate_source: str
    trainings_done: int
    trainings_total: int
    """Trainings the run will do at most (its budget); for an ended run, those it did."""
    timesteps_done: int
    """Steps trained so far, the running trainings' reported progress included."""
    timesteps_total: int
    """Steps the run will train at most (its budget); for an ended run, those it trained."""
    tokens: int | None
    """LLM tokens charged so far; None when the run has no LLM designer."""
    cost: float | None
    """Their cost, where prices are configured."""

    def as_dict(self) -> dict:
        return asdict(self)


def run_budget(run: Run) -> Budget | None:
    """The budget of ``run``'s task, as ``task_budget`` computed it when the task was made; None when its env is no
    longer known here."""
    task = run.task
    try:
        baselines = len(baseline_programs(task.env, task.fitness_name, task.fitness_source))
    except Exception:  # an env unknown to this process (a robot removed since) still gets its counts
        baselines = 1
    return plan(
        iterations=task.iterations,
        samples=task.samples,
        timesteps=task.timesteps,
        options=options_of(task),
        baselines=baselines,
    )


def _steps(t: Training) -> int:
    result = t.result or {}
    if t.status == TrainingStatus.RUNNING:
        progress = result.get("progress") or {}
        return max(0, int(progress.get("timesteps") or 0) - int(result.get("resumed_from_timesteps") or 0))
    return steps_trained(result) if t.status == TrainingStatus.OK else 0


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def run_progress(session: Session, run: Run, settings: Settings, *, now: datetime | None = None) -> RunProgress:
    """``run``'s progress now (see the module's docstring for how each figure is measured)."""
    trainings = [t for c in run.candidates for t in c.trainings]
    done = sum(1 for t in trainings if t.status not in TRAINING_PENDING)
    steps = sum(_steps(t) for t in trainings)
    ended = run.status in RUN_TERMINAL
    budget = run_budget(run)
    if ended or budget is None:
        total_trainings, total_steps = len(trainings), steps
    else:
        total_trainings, total_steps = max(budget.trainings, len(trainings)), max(budget.timesteps, steps)
    elapsed = None
    if run.started_at is not None:
        end = _aware(run.finished_at) if ended and run.finished_at else _aware(now or utcnow())
        elapsed = max(0.0, (end - _aware(run.started_at)).total_seconds())
    rate: float | None
    if ended:
        rate, source = None, "the run has ended"
    elif done and steps and elapsed:
        rate, source = steps / elapsed, "this run's own rate so far"
    else:
        rate, source = training_rate(session, settings, env=run.task.env)
    eta = None if ended or not rate else max(0, total_steps - steps) / rate
    llm = run.task.designer != DesignerKind.OFFLINE
    usage = run_usage(session, run.id) if llm else {}
    return RunProgress(
        elapsed_seconds=elapsed,
        eta_seconds=eta,
        rate=rate,
        rate_source=source,
        trainings_done=done,
        trainings_total=total_trainings,
        timesteps_done=steps,
        timesteps_total=total_steps,
        tokens=usage.get("total_tokens") if llm else None,
        cost=usage.get("cost") if llm else None,
    )


def duration(seconds: float | None) -> str:
    """A duration as a person reads it: '45 s', '3 min 20 s', '1 h 05 min'; '—' when unknown."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"
