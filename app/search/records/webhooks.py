"""A user's webhook as the search sees it: when a run of theirs ends or stops to wait for a person, one delivery
is written in the same transaction as the status move (an outbox), to be sent afterwards by ``app.webhooks``. Writing
it costs the search one query; sending never holds it up."""

from __future__ import annotations

import json
import logging
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Run, Webhook, WebhookDelivery, utcnow
from app.search.rules.states import RUN_TERMINAL, RunStatus

log = logging.getLogger(__name__)


class Event(StrEnum):
    RUN_FINISHED = "run.finished"
    """The run succeeded, failed or was cancelled."""
    RUN_WAITING = "run.waiting"
    """The run waits for a person: feedback, a choice, or a fitness to approve."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


MAX_PENDING = 100
"""Deliveries one webhook may have waiting; beyond that new events are dropped (and logged): a receiver that has been
down for long does not grow the table without bound."""


def event_of(status: RunStatus) -> Event | None:
    if status in RUN_TERMINAL:
        return Event.RUN_FINISHED
    if status in (RunStatus.WAITING_FEEDBACK, RunStatus.WAITING_FITNESS):
        return Event.RUN_WAITING
    return None


def enqueue(session: Session, run: Run, *, summary: str) -> WebhookDelivery | None:
    """The delivery telling the run owner's webhook of ``run``'s new status, if it wants that event."""
    event = event_of(RunStatus(run.status))
    owner = run.task.owner_id if run.task is not None else None
    if event is None or owner is None:
        return None
    hook = session.scalar(select(Webhook).where(Webhook.user_id == owner))
    if hook is None or event not in (hook.events or []):
        return None
    waiting = session.scalar(
        select(func.count(WebhookDelivery.id)).where(
            WebhookDelivery.webhook_id == hook.id, WebhookDelivery.status == DeliveryStatus.PENDING
        )
    )
    if (waiting or 0) >= MAX_PENDING:
        log.warning(
            "webhook %s has %s deliveries waiting; the %s of run %s is not sent", hook.id, waiting, event, run.id
        )
        return None
    body = {
        "event": event.value,
        "run_id": run.id,
        "task_id": run.task_id,
        "status": str(run.status),
        "summary": summary[:2000],
        "best_candidate_id": run.best_candidate_id,
        "at": utcnow().isoformat(),
    }
    delivery = WebhookDelivery(
        webhook_id=hook.id,
        run_id=run.id,
        event=event.value,
        body=json.dumps(body, allow_nan=False, sort_keys=True),
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(delivery)
    return delivery
