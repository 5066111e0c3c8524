"""Thin Celery tasks: take ids, call one service function, let Celery redeliver on a lost worker."""

from __future__ import annotations

from app.config import get_settings
from app.db import session_factory
from app.search import orchestrator
from app.search.design import design
from app.search.factory import designer_factory
from app.search.trainer import run_training
from workers.celery_app import TASK_DESIGN, TASK_KICK, TASK_START, TASK_SWEEP, TASK_TRAIN, celery_app
from workers.dispatch import CeleryDispatcher


def _deps():
    settings = get_settings()
    return session_factory(settings.resolved_database_url), CeleryDispatcher(), settings


@celery_app.task(name=TASK_START)
def start_run(run_id: int) -> None:
    sf, dispatcher, settings = _deps()
    orchestrator.start(sf, run_id, dispatcher, settings)


@celery_app.task(name=TASK_KICK)
def kick_run(run_id: int) -> None:
    sf, dispatcher, settings = _deps()
    orchestrator.kick(sf, run_id, dispatcher, settings)


@celery_app.task(name=TASK_DESIGN)
def design_iteration(run_id: int) -> None:
    sf, dispatcher, settings = _deps()
    design(sf, run_id, dispatcher, settings, designer_factory(sf, settings))


@celery_app.task(name=TASK_TRAIN)
def train_candidate(training_id: int) -> str:
    sf, dispatcher, settings = _deps()
    return run_training(sf, training_id, dispatcher, settings)


@celery_app.task(name=TASK_SWEEP)
def sweep() -> int:
    """Kick every running run (recovers trainings whose worker died and whose message was lost)."""
    sf, dispatcher, settings = _deps()
    return orchestrator.sweep(sf, dispatcher, settings)
