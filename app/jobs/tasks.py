"""Thin Celery tasks: take ids, call one step of the search; what a dead worker held, the sweep sends again."""

from __future__ import annotations

import contextlib

from sqlalchemy.orm import sessionmaker

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


@celery_app.task(name=TASK_TRAIN)
def train_candidate(training_id: int) -> str:
    sf, dispatcher, settings = _deps()
    return steps.train_step(sf, training_id, dispatcher, settings)


@celery_app.task(name=TASK_SWEEP)
def sweep() -> int:
    """Start runs whose start message was lost; re-dispatch trainings whose worker died."""
    sf, dispatcher, settings = _deps()
    return steps.sweep_step(sf, dispatcher, settings)
