"""The Celery application: named queues, long-task settings, task names as constants."""

from __future__ import annotations

from celery import Celery

from app.config import Settings, get_settings
from app.db import private_sqlite

QUEUE_LLM = "llm"
"""Designing iterations and proposing fitness programs (LLM calls, critic, dry runs), and short orchestration steps."""
QUEUE_TRAIN = "train"
"""One sandboxed PPO training per worker process."""

TASK_START = "rewardsmith.start_run"
TASK_RESUME = "rewardsmith.resume_run"
TASK_DESIGN = "rewardsmith.design_iteration"
TASK_PROPOSE = "rewardsmith.propose_fitness"
TASK_TRAIN = "rewardsmith.train_candidate"
TASK_SWEEP = "rewardsmith.sweep"


def configure(app: Celery, settings: Settings) -> Celery:
    """Apply ``settings`` to ``app``: broker, acks_late, prefetch 1, time limit below the visibility timeout."""
    url = settings.resolved_broker_url
    if url.startswith("sqla+sqlite"):
        private_sqlite(url)  # the embedded broker's file, created 0600 like the database
    # Redis and SQS redeliver unacknowledged messages after the visibility timeout; AMQP on connection loss.
    options = (
        {"visibility_timeout": settings.broker_visibility_timeout} if url.startswith(("redis", "rediss", "sqs")) else {}
    )
    app.conf.update(
        broker_url=url,
        broker_connection_retry_on_startup=True,
        broker_transport_options=options,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE_LLM,
        task_routes={
            TASK_TRAIN: {"queue": QUEUE_TRAIN},
            TASK_DESIGN: {"queue": QUEUE_LLM},
            TASK_PROPOSE: {"queue": QUEUE_LLM},
            TASK_START: {"queue": QUEUE_LLM},
            TASK_RESUME: {"queue": QUEUE_LLM},
            TASK_SWEEP: {"queue": QUEUE_LLM},
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


celery_app = configure(
    Celery("rewardsmith", include=["app.jobs.tasks", "app.jobs.lifecycle", "app.jobs.watchdog"]), get_settings()
)
"""A worker imports the tasks, the lifecycle that makes its stop bounded and hands running work back, and the watchdog
that stops it when its consumer has stalled."""


def broker_reachable(timeout: float = 2.0, app: Celery | None = None) -> str:
    """'ok' when the broker of ``app`` (default: the configured one) answers within ``timeout`` seconds, else what
    went wrong."""
    try:
        with (app or celery_app).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return "ok"
    except Exception as e:  # any transport error means "not ready"
        return f"unreachable: {type(e).__name__}: {str(e)[:200]}"
