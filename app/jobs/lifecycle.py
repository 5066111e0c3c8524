"""A Celery worker's stop: bounded, and its running work handed back to the queue instead of lost or waited for.

Celery answers SIGTERM and SIGINT with a warm shutdown, which waits for the running tasks: an
hour for a long training. Here, on the first shutdown signal, the worker instead stops every
sandboxed job it and its pool processes run (``lifeline.stop_all``): a training so stopped
goes back to the queue (``trainer.hand_back``), a design releases its run; the next sweep (at
once when `serve` starts again) sends them to a worker. Whatever still runs
``shutdown_grace_seconds`` later is cut short: the worker exits, and its pool processes and
their sandboxes die with it (parent-death signals); the sweep recovers what they held.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from celery import signals

from app.config import get_settings
from workers.sandbox import lifeline

_deadline: threading.Timer | None = None


def _stop_sandboxes(signum: int, frame: object) -> None:
    lifeline.stop_all()


@signals.task_prerun.connect
def _before_task(**_: object) -> None:
    """A pool process at work answers SIGTERM by stopping its sandboxed job, so that its task ends by handing the
    training back rather than dying half-way through a write. (Installed before each task: billiard sets its own
    handler, an exit, after Celery's process-init hook; an idle pool process may keep exiting on SIGTERM.)"""
    if threading.current_thread() is threading.main_thread():  # a threads pool: the main process handles signals
        signal.signal(signal.SIGTERM, _stop_sandboxes)


@signals.worker_shutting_down.connect
def _on_shutdown(**_: object) -> None:
    """In the worker's main process, on the first SIGTERM, SIGINT or SIGQUIT: stop the sandboxed jobs of this process
    and of its pool processes (they share the flag), then set a deadline."""
    global _deadline
    if _deadline is not None:
        return
    lifeline.stop_all()
    grace = get_settings().shutdown_grace_seconds
    _deadline = threading.Timer(grace, _exit_now, args=(grace,))
    _deadline.daemon = True
    _deadline.start()


def _exit_now(grace: float) -> None:
    print(
        f"worker: still busy {grace:g} s after the shutdown signal (REWARDSMITH_SHUTDOWN_GRACE_SECONDS); exiting now. "
        "What it still ran is recovered by the sweep.",
        file=sys.__stderr__,
        flush=True,
    )
    os._exit(1)
