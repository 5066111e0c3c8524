"""Run one training of the search: claim it, train in the sandbox, record the outcome, call the completion hook.

Idempotent and safe to deliver twice: a training is claimed with a conditional update,
and one that is 'running' is only taken over when its heartbeat has gone stale (its
worker died); a finished one is never run again.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Run, Training, utcnow
from app.search.machine.iterations import record_training, training_finished
from app.search.records.dispatch import Dispatcher
from app.search.rules.fitness import fitness_of
from app.search.rules.options import options_of
from app.search.rules.states import TRAINING_TERMINAL, CandidateStatus, Purpose, RunStatus, TrainingStatus
from workers.engine.evaluate import evaluate_reward
from workers.engine.result import TrainingResult, stored
from workers.program.text import clip

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The run was cancelled while this training ran."""


@dataclass(frozen=True)
class TrainingJob:
    """Everything the sandbox needs for one claimed training, read in the claim's transaction."""

    training_id: int
    run_id: int
    env: str
    reward_source: str
    fitness_name: str
    fitness_source: str | None
    """The task's own fitness program; None for a built-in metric (named by ``fitness_name``)."""
    timesteps: int
    seed: int
    out: Path
    options: dict[str, Any]
    """Training options as the engine takes them (``TrainOptions.engine_options``), resume_from included."""


def artifacts_dir(settings: Settings, t: Training) -> Path:
    return settings.data_dir / "artifacts" / f"run-{t.run_id}" / f"candidate-{t.candidate_id}" / f"training-{t.id}"


def _claim(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> TrainingJob | None:
    """Mark the training running and return what the sandbox needs; None when there is nothing to train."""
    stale = utcnow() - timedelta(seconds=settings.training_lease_seconds)
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        if t is None or (t.status in TRAINING_TERMINAL and t.status != TrainingStatus.CANCELLED):
            return None
        run = s.get(Run, t.run_id)
        assert run is not None
        if run.status != RunStatus.RUNNING:
            t.status = TrainingStatus.CANCELLED
            return None
        res = s.execute(
            update(Training)
            .where(
                Training.id == training_id,
                or_(
                    Training.status.in_((TrainingStatus.QUEUED, TrainingStatus.CANCELLED)),
                    (Training.status == TrainingStatus.RUNNING)
                    & or_(Training.heartbeat_at.is_(None), Training.heartbeat_at < stale),
                ),
            )
            .values(
                status=TrainingStatus.RUNNING,
                attempts=Training.attempts + 1,
                heartbeat_at=utcnow(),
                started_at=utcnow(),
                worker=f"{socket.gethostname()}:{threading.get_ident()}",
            )
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return None
        s.refresh(t)
        if t.attempts > settings.training_max_attempts:
            t.status = TrainingStatus.FAILED
            t.error = (
                f"the training was interrupted {t.attempts - 1} times (its worker died each time); "
                "check the workers' memory and logs, then resume the run"
            )
            t.finished_at = utcnow()
            record_training(t, run.task)
            after_commit(s, lambda: training_finished(sf, training_id, dispatcher, settings))
            return None
        if t.purpose in (Purpose.SCREEN, Purpose.FULL, Purpose.BASELINE):
            t.candidate.status = CandidateStatus.TRAINING
        task = run.task
        fname, _, _ = fitness_of(task)
        options = options_of(task).train.engine_options()
        resume = s.get(Training, t.resume_from_id) if t.resume_from_id else None
        if resume is not None and resume.artifacts_dir:
            options["resume_from"] = resume.artifacts_dir
        return TrainingJob(
            training_id=t.id,
            run_id=run.id,
            env=task.env,
            reward_source=t.candidate.code or "",
            fitness_name=fname,
            fitness_source=task.fitness_source,
            timesteps=t.timesteps,
            seed=t.seed,
            out=artifacts_dir(settings, t),
            options=options,
        )


class _Heartbeat:
    """Refreshes the training's heartbeat while it runs, and notices when its run is cancelled."""

    def __init__(self, sf: sessionmaker, job: TrainingJob, settings: Settings) -> None:
        self.sf, self.job, self.settings = sf, job, settings
        self.stop = threading.Event()
        self.cancelled = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.settings.training_heartbeat_seconds):
            try:
                with session_scope(self.sf) as s:
                    s.execute(update(Training).where(Training.id == self.job.training_id).values(heartbeat_at=utcnow()))
                    run = s.get(Run, self.job.run_id)
                    if run is None or run.status != RunStatus.RUNNING:
                        self.cancelled.set()
            except Exception:  # a missed heartbeat is not worth failing the training for
                log.exception("heartbeat of training %s failed", self.job.training_id)

    def on_event(self, event: dict) -> None:
        """Called for every progress event of the sandbox; raising stops the job."""
        if self.cancelled.is_set():
            raise Cancelled()
        if event.get("event") == "checkpoint":
            with session_scope(self.sf) as s:
                t = s.get(Training, self.job.training_id)
                if t is not None:
                    progress = {k: event.get(k) for k in ("timesteps", "total", "fitness")}
                    t.result = TrainingResult(**{**(t.result or {}), "progress": progress})  # type: ignore[typeddict-item]
                    t.heartbeat_at = utcnow()


def _train(
    job: TrainingJob, heart: _Heartbeat, settings: Settings
) -> tuple[TrainingStatus, str | None, TrainingResult]:
    """Train in the sandbox; every way this can end is an outcome, never an exception."""
    options = dict(job.options)
    try:
        result = evaluate_reward(
            env=job.env,
            reward_source=job.reward_source,
            fitness_name=None if job.fitness_source else job.fitness_name,
            fitness_source=job.fitness_source,
            timesteps=job.timesteps,
            seed=job.seed,
            out=job.out,
            limits=settings.sandbox_limits(),
            video=bool(options.pop("video", False)),
            options=options,
            on_event=heart.on_event,
        )
    except Cancelled:
        return TrainingStatus.CANCELLED, "the run was cancelled while this training ran", TrainingResult()
    except Exception as e:  # a fault of ours (the artifacts disk, a bad option): record it on the training
        log.exception("training %s failed outside the sandbox", job.training_id)
        return TrainingStatus.FAILED, f"internal error: {type(e).__name__}: {clip(str(e), 500)}", TrainingResult()
    return TrainingStatus(result["status"]), result.get("error"), result


def record_outcome(
    sf: sessionmaker,
    training_id: int,
    *,
    status: TrainingStatus,
    error: str | None,
    result: TrainingResult,
    artifacts_dir: Path,
) -> None:
    """Store how the training ended and carry it to its candidate, in one transaction: a sibling's completion hook
    that finds every training of the iteration ended must also find every candidate's fitness."""
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        assert t is not None
        t.status = status
        t.error = error
        t.result = stored(result)
        t.artifacts_dir = str(artifacts_dir)
        t.finished_at = utcnow()
        if status != TrainingStatus.CANCELLED:
            record_training(t, t.candidate.run.task)


def run_training(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> str:
    """Claim, train, record, hook. Returns what happened ('skipped', or the training's status)."""
    job = _claim(sf, training_id, dispatcher, settings)
    if job is None:
        return "skipped"
    heart = _Heartbeat(sf, job, settings)
    heart.thread.start()
    started = time.monotonic()
    try:
        status, error, result = _train(job, heart, settings)
    finally:
        heart.stop.set()
    result["wall_seconds"] = time.monotonic() - started
    record_outcome(sf, training_id, status=status, error=error, result=result, artifacts_dir=job.out)
    if status != TrainingStatus.CANCELLED:
        training_finished(sf, training_id, dispatcher, settings)
    return status.value
