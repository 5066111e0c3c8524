"""Thin Celery tasks: take ids, call one step of the search; what a dead worker held, the sweep sends again."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.orm import sessionmaker

from app.artifacts.base import StoreUnavailable
from app.config import Settings, get_settings
from app.db import session_factory
from app.jobs.celery_app import (
    TASK_DESIGN,
    TASK_PROPOSE,
    TASK_RESUME,
    TASK_START,
    TASK_SWEEP,
    TASK_TRAIN,
    celery_app,
)
from app.jobs.dispatch import CeleryDispatcher
from app.search.machine import steps
from app.search.machine.factory import designer_factory, proposer_factory
from workers.sandbox.lifeline import SandboxStopped


def _deps() -> tuple[sessionmaker, CeleryDispatcher, Settings]:
    settings = get_settings()
    return session_factory(settings.resolved_database_url), CeleryDispatcher(), settings


@celery_app.task(name=TASK_START)
def start_run(run_id: int) -> None:
    sf, dispatcher, settings = _deps()
    steps.start_step(sf, run_id, dispatcher, settings)


@celery_app.task(name=TASK_RESUME)
def resume_run(run_id: int) -> None:
    sf, dispatcher, settings = _deps()
    steps.resume_step(sf, run_id, dispatcher, settings)


@celery_app.task(name=TASK_DESIGN)
def design_iteration(run_id: int) -> None:
    sf, dispatcher, settings = _deps()
    with contextlib.suppress(SandboxStopped):  # the worker stops: the sweep sends the design to the next one
        steps.design_step(sf, run_id, dispatcher, settings, designer_factory(sf, settings))


@celery_app.task(name=TASK_PROPOSE)
def propose_fitness(run_id: int) -> None:
    sf, _, settings = _deps()
    with contextlib.suppress(SandboxStopped):  # the worker stops: the sweep starts the proposal again
        steps.propose_step(sf, run_id, settings, proposer_factory(sf, settings))


@celery_app.task(name=TASK_TRAIN, bind=True)
def train_candidate(self: Any, training_id: int) -> str:
    """Train; an unreachable artifact store is retried, backing off, before the run fails with why."""
    sf, dispatcher, settings = _deps()
    tries = self.request.retries
    try:
        return steps.train_step(sf, training_id, dispatcher, settings, last_try=tries >= settings.artifacts_retries)
    except StoreUnavailable as e:
        wait = settings.artifacts_retry_seconds * 2**tries
        raise self.retry(exc=e, countdown=wait, max_retries=settings.artifacts_retries) from None


@celery_app.task(name=TASK_SWEEP)
def sweep() -> int:
    """Start runs whose start message was lost; re-dispatch trainings whose worker died."""
    sf, dispatcher, settings = _deps()
    return steps.sweep_step(sf, dispatcher, settings)
