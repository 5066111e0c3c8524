"""The search's steps as a dispatcher runs them: one function per message, each keyed by an id.

Celery's tasks (``app.jobs.tasks``) and the in-process dispatcher (``app.search.machine.local``)
call these and nothing else. Each first registers the user robot its run works on, if any, from
the database (``records.robots``), so a worker on any host can run it. A step that raises marks
its run failed with the reason, instead of leaving it 'running' with nothing scheduled; the run
can be resumed once the cause is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import sessionmaker

import app.search.machine.lifecycle as lifecycle
import app.search.machine.proposing as proposing
import app.search.machine.recovery as recovery
import app.search.records.robots as robots
import app.webhooks as webhooks
from app.artifacts.base import StoreUnavailable
from app.config import Settings
from app.db import session_scope
from app.db.models import Training
from app.db.transient import is_transient
from app.search.machine.designing import DesignerFactory, design
from app.search.machine.proposing import ProposerFactory
from app.search.machine.training import run_training
from app.search.records.dispatch import Dispatcher
from app.search.records.runs import fail_run
from workers.program.text import clip

log = logging.getLogger(__name__)


def _tell(sf: sessionmaker, settings: Settings) -> None:
    """Send the webhooks a step's status moves wrote (in a thread of their own; never failing the step)."""
    try:
        webhooks.send_soon(sf, settings)
    except Exception:
        log.exception("webhooks could not be sent; the sweep tries again")


@contextmanager
def _failing_run_on_error(sf: sessionmaker, run_id: int, step: str) -> Iterator[None]:
    try:
        yield
    except Exception as e:
        if is_transient(e):  # the database went away for a moment: the sweep sends the step again, nothing fails
            log.warning("the %s step of run %s met an unreachable database; it will be sent again", step, run_id)
            raise
        log.exception("the %s step of run %s failed", step, run_id)
        error = (
            f"the {step} step failed with {type(e).__name__}: {clip(str(e), 300)}. This is a fault of rewardsmith "
            "or of its database, not of your task: tell the operator, and resume the run once it is fixed "
            f"(POST /api/v1/runs/{run_id}/resume, or the Resume button); nothing done so far is redone."
        )
        with session_scope(sf) as s:
            fail_run(s, run_id=run_id, error=error)


def start_step(sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    with _failing_run_on_error(sf, run_id, "start"):
        robots.register_env_of(sf, run_id=run_id)
        lifecycle.start(sf, run_id, dispatcher, settings)
    _tell(sf, settings)


def resume_step(sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    with _failing_run_on_error(sf, run_id, "resume"):
        robots.register_env_of(sf, run_id=run_id)
        lifecycle.resume(sf, run_id, dispatcher, settings)
    _tell(sf, settings)


def design_step(
    sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings, designer_for: DesignerFactory
) -> None:
    with _failing_run_on_error(sf, run_id, "design"), recovery.holding(sf, run_id, settings):
        robots.register_env_of(sf, run_id=run_id)
        design(sf, run_id, dispatcher, settings, designer_for)
    _tell(sf, settings)


def propose_step(sf: sessionmaker, run_id: int, settings: Settings, proposer_for: ProposerFactory) -> None:
    """Propose the run's fitness from its description (a 'propose' task, before its search starts)."""
    with _failing_run_on_error(sf, run_id, "fitness proposal"):
        robots.register_env_of(sf, run_id=run_id)
        proposing.propose(sf, run_id, settings, proposer_for)
    _tell(sf, settings)


def train_step(
    sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings, *, last_try: bool = True
) -> str:
    """One training; its own faults are recorded on the training (see ``run_training``). When the artifact store
    cannot be reached the training is handed back, and ``StoreUnavailable`` raised for the caller to try again later;
    on the ``last_try`` the run fails instead, saying why (nothing recorded or stored is lost: resume it once the
    store is back)."""
    robots.register_env_of(sf, training_id=training_id)  # what the sandbox job carries to its child
    try:
        return run_training(sf, training_id, dispatcher, settings)
    except StoreUnavailable as e:
        if not last_try:
            raise
        store_unreachable(sf, training_id, e)
        return "store unreachable"
    finally:
        _tell(sf, settings)


def store_unreachable(sf: sessionmaker, training_id: int, e: StoreUnavailable) -> None:
    """Fail the run of ``training_id`` because the artifact store stayed unreachable."""
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        if t is None:
            return
        run_id = t.run_id
        error = (
            f"{e.message}. Training {training_id} waits in the queue, and nothing recorded or stored so far is lost: "
            f"once the store answers, resume the run (POST /api/v1/runs/{run_id}/resume, or the Resume button)."
        )
        log.error("run %s failed: %s", run_id, error)
        fail_run(s, run_id=run_id, error=error)


def sweep_step(sf: sessionmaker, dispatcher: Dispatcher, settings: Settings) -> int:
    """Start runs whose start was lost, and send again what running runs wait for and nobody holds."""
    seen = recovery.sweep(sf, dispatcher, settings)
    _tell(sf, settings)
    return seen
