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
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, update
from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db import session_scope
from app.db.models import Run, Training, utcnow
from app.search.context import fitness_of
from app.search.dispatch import Dispatcher
from app.search.ledger import sandbox_limits
from app.search.orchestrator import training_finished
from app.search.states import TRAINING_TERMINAL
from workers.engine.evaluate import evaluate_reward

log = logging.getLogger(__name__)

KEEP_IN_DB = (
    "fitness",
    "checkpoints",
    "components",
    "episodes",
    "dry_run",
    "warnings",
    "timesteps",
    "seconds",
    "learn_seconds",
    "steps_per_second",
    "ppo",
    "seeds",
    "artifacts",
    "isolation",
    "resumed_from_timesteps",
    "fitness_name",
    "traceback",
    "stderr_tail",
)


class Cancelled(Exception):
    """The run was cancelled while this training ran."""


def artifacts_dir(settings: Settings, t: Training) -> Path:
    return settings.data_dir / "artifacts" / f"run-{t.run_id}" / f"candidate-{t.candidate_id}" / f"training-{t.id}"


def _claim(sf: sessionmaker, training_id: int, settings: Settings) -> dict | None:
    """Mark the training running and return what the sandbox needs; None when there is nothing to do."""
    stale = utcnow() - timedelta(seconds=settings.training_lease_seconds)
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        if t is None or (t.status in TRAINING_TERMINAL and t.status != "cancelled"):
            return None
        run = s.get(Run, t.run_id)
        if run.status != "running":
            t.status = "cancelled"
            return None
        res = s.execute(
            update(Training)
            .where(
                Training.id == training_id,
                or_(
                    Training.status.in_(("queued", "cancelled")),
                    (Training.status == "running")
                    & or_(Training.heartbeat_at.is_(None), Training.heartbeat_at < stale),
                ),
            )
            .values(
                status="running",
                attempts=Training.attempts + 1,
                heartbeat_at=utcnow(),
                started_at=utcnow(),
                worker=f"{socket.gethostname()}:{threading.get_ident()}",
            )
        )
        if res.rowcount != 1:
            return None
        s.refresh(t)
        if t.attempts > settings.training_max_attempts:
            t.status = "failed"
            t.error = (
                f"the training was interrupted {t.attempts - 1} times (its worker died each time); "
                "check the workers' memory and logs, then resume the run"
            )
            t.finished_at = utcnow()
            return {"finished": True}
        if t.purpose in ("screen", "full", "baseline"):
            t.candidate.status = "training"
        task = run.task
        fname, _, fsource = fitness_of(task)
        resume = s.get(Training, t.resume_from_id) if t.resume_from_id else None
        out = artifacts_dir(settings, t)
        options = dict(task.options.get("train", {}))
        if resume is not None and resume.artifacts_dir:
            options["resume_from"] = resume.artifacts_dir
        return {
            "env": task.env,
            "reward_source": t.candidate.code,
            "fitness_name": fname,
            "fitness_source": fsource if task.fitness_source else None,
            "builtin": None if task.fitness_source else fname,
            "timesteps": t.timesteps,
            "seed": t.seed,
            "out": out,
            "options": options,
            "run_id": run.id,
        }


def run_training(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> str:
    """Claim, train, record, hook. Returns what happened ('done', 'skipped', or the outcome)."""
    job = _claim(sf, training_id, settings)
    if job is None:
        return "skipped"
    if job.get("finished"):
        training_finished(sf, training_id, dispatcher, settings)
        return "failed"
    stop = threading.Event()
    cancelled = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.training_heartbeat_seconds):
            try:
                with session_scope(sf) as s:
                    s.execute(update(Training).where(Training.id == training_id).values(heartbeat_at=utcnow()))
                    if s.get(Run, job["run_id"]).status != "running":
                        cancelled.set()
            except Exception:  # a missed heartbeat is not worth failing the training for
                log.exception("heartbeat of training %s failed", training_id)

    def on_event(event: dict) -> None:
        if cancelled.is_set():
            raise Cancelled()
        if event.get("event") == "checkpoint":
            with session_scope(sf) as s:
                t = s.get(Training, training_id)
                t.result = {
                    **(t.result or {}),
                    "progress": {k: event.get(k) for k in ("timesteps", "total", "fitness")},
                }
                t.heartbeat_at = utcnow()

    heart = threading.Thread(target=beat, daemon=True)
    heart.start()
    started = time.monotonic()
    try:
        result = evaluate_reward(
            env=job["env"],
            reward_source=job["reward_source"],
            fitness_name=job["builtin"],
            fitness_source=job["fitness_source"],
            timesteps=job["timesteps"],
            seed=job["seed"],
            out=job["out"],
            limits=sandbox_limits(settings),
            video=bool(job["options"].pop("video", False)),
            options=job["options"],
            on_event=on_event,
        )
        status, error = result["status"], result.get("error")
    except Cancelled:
        result, status, error = {}, "cancelled", "the run was cancelled while this training ran"
    finally:
        stop.set()
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        t.status = status
        t.error = error
        t.result = {k: result[k] for k in KEEP_IN_DB if k in result}
        t.result["wall_seconds"] = time.monotonic() - started
        t.artifacts_dir = str(job["out"])
        t.finished_at = utcnow()
    if status != "cancelled":
        training_finished(sf, training_id, dispatcher, settings)
    return status
