"""The signed-in user's webhook: set it (a new signing secret, shown once), see it with its recent deliveries,
remove it. See ``app.webhooks`` for what is sent and how to check a signature."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

import app.webhooks as webhooks
from app.db.models import Webhook, WebhookDelivery
from app.errors import NotFound
from app.search.records.webhooks import Event
from app.web.deps import CurrentUser, SessionDep, SettingsDep
from app.web.schemas import UNAUTHORIZED

router = APIRouter(prefix="/webhook", tags=["webhook"], responses=UNAUTHORIZED)

RECENT = 20


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., max_length=webhooks.MAX_URL_CHARS, description="http(s) URL that receives the events")
    events: list[Event] = Field(
        default_factory=lambda: list(Event), max_length=len(Event), description="events to send (default: all)"
    )


class DeliveryOut(BaseModel):
    id: int
    run_id: int | None
    event: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookOut(BaseModel):
    url: str
    events: list[str]
    secret: str | None = Field(None, description="the signing secret: shown only in the answer that set it")
    deliveries: list[DeliveryOut] = Field(default_factory=list, description=f"the last {RECENT} deliveries")


def _hook(session: SessionDep, user: CurrentUser) -> Webhook:
    hook = session.scalar(select(Webhook).where(Webhook.user_id == user.id))
    if hook is None:
        raise NotFound("you have no webhook; set one with PUT /api/v1/webhook")
    return hook


@router.put("", response_model=WebhookOut, responses={422: {"description": "a URL rewardsmith may not send to"}})
def put_webhook(body: WebhookIn, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> WebhookOut:
    """Set your webhook (replacing the one you had) and get a new signing secret, shown this once."""
    url = webhooks.check_url(body.url, allow_private=settings.webhook_allow_private)
    hook = session.scalar(select(Webhook).where(Webhook.user_id == user.id))
    secret = webhooks.new_secret()
    events = sorted({e.value for e in body.events})
    if hook is None:
        session.add(Webhook(user_id=user.id, url=url, secret=secret, events=events))
    else:
        hook.url, hook.secret, hook.events = url, secret, events
    session.flush()
    return WebhookOut(url=url, events=events, secret=secret)


@router.get("", response_model=WebhookOut, responses={404: {"description": "no webhook set"}})
def get_webhook(user: CurrentUser, session: SessionDep) -> WebhookOut:
    """Your webhook and its last deliveries (the secret is not shown again)."""
    hook = _hook(session, user)
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(RECENT)
    )
    return WebhookOut(
        url=hook.url,
        events=list(hook.events or []),
        deliveries=[
            DeliveryOut(
                id=d.id,
                run_id=d.run_id,
                event=d.event,
                status=d.status,
                attempts=d.attempts,
                response_status=d.response_status,
                last_error=d.last_error,
                created_at=d.created_at,
                delivered_at=d.delivered_at,
            )
            for d in rows
        ],
    )


@router.delete("", status_code=204, responses={404: {"description": "no webhook set"}})
def delete_webhook(user: CurrentUser, session: SessionDep) -> None:
    """Remove your webhook; deliveries not sent yet are dropped with it."""
    session.delete(_hook(session, user))
