"""Webhooks: a user's URL told when a run of theirs ends or waits for a person, signed, retried, and kept out of the
service's own network.

Each request carries the JSON body, ``X-Rewardsmith-Event``, ``X-Rewardsmith-Delivery`` (the delivery's id: a
receiver drops one it has seen), ``X-Rewardsmith-Timestamp`` (Unix seconds) and ``X-Rewardsmith-Signature``:
``sha256=`` + HMAC-SHA256, with the user's secret, of ``"{timestamp}." + body``. A receiver recomputes it, compares
in constant time, and refuses a timestamp older than a few minutes (a replayed request).

Deliveries are written with the status move they tell of (``app.search.records.webhooks``) and sent here, after the
step that wrote them, in a thread of their own (``send_soon``) and by the periodic sweep (``deliver_due``): a slow
or dead receiver never holds up a search. A failed attempt (no answer within ``webhook_timeout_seconds``, or a
status other than 2xx) is retried after ``webhook_backoff_seconds``, doubling, ``webhook_max_attempts`` times.

SSRF: a URL is refused at registration and again before each attempt when its host resolves to a loopback,
private, link-local, multicast, reserved or unspecified address (``webhook_allow_private`` lets an operator allow
them), redirects are not followed, and only http(s) on any port is sent to. What is left: a name that resolves
differently between the check and the connection (DNS rebinding) within the same attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db import session_scope
from app.db.models import WebhookDelivery, utcnow
from app.errors import InvalidInput
from app.search.records.webhooks import DeliveryStatus
from workers.program.text import clip

log = logging.getLogger(__name__)

MAX_URL_CHARS = 2000
CLAIM_SECONDS = 60.0
"""An attempt in flight holds its delivery this long; a sender that died holding it lets it go after that."""


def new_secret() -> str:
    """A signing secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: str) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body.encode(), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if rewardsmith may send to it; InvalidInput saying why not (and what to do) otherwise."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"the webhook URL must have 1 to {MAX_URL_CHARS} characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise InvalidInput(f"the webhook URL is not one: {e}", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the webhook URL must be http:// or https:// with a host", field="url")
    if parts.username or parts.password:
        raise InvalidInput(
            "the webhook URL must not carry a user or password; the signature authenticates", field="url"
        )
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError) as e:
        raise InvalidInput(
            f"the webhook host '{clip(parts.hostname, 100)}' does not resolve: {e}", field="url"
        ) from None
    internal = sorted(a for a in addresses if _internal(str(a)))
    if internal and not allow_private:
        raise InvalidInput(
            f"the webhook host '{clip(parts.hostname, 100)}' resolves to an internal address ({', '.join(internal)}): "
            "give a public URL (an operator may allow internal ones with REWARDSMITH_WEBHOOK_ALLOW_PRIVATE)",
            field="url",
        )
    return url


def _claim(sf: sessionmaker, delivery_id: int) -> bool:
    """Take the delivery for one attempt (a conditional update: two senders never send the same attempt)."""
    now = utcnow()
    with session_scope(sf) as s:
        res = s.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
                or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now),
            )
            .values(attempts=WebhookDelivery.attempts + 1, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
        )
        return res.rowcount == 1  # type: ignore[attr-defined]


def attempt(sf: sessionmaker, settings: Settings, delivery_id: int) -> str | None:
    """One attempt at ``delivery_id`` if it is due; its status afterwards (None when it was not due)."""
    if not _claim(sf, delivery_id):
        return None
    with session_scope(sf) as s:
        d = s.get(WebhookDelivery, delivery_id)
        assert d is not None
        hook = d.webhook
        url, secret, body, event, attempts = hook.url, hook.secret, d.body, d.event, d.attempts
    timestamp = int(time.time())
    error, code = None, None
    try:
        check_url(url, allow_private=settings.webhook_allow_private)
        response = httpx.post(
            url,
            content=body.encode(),
            headers={
                "Content-Type": "application/json",
                "User-Agent": "rewardsmith-webhook",
                "X-Rewardsmith-Event": event,
                "X-Rewardsmith-Delivery": str(delivery_id),
                "X-Rewardsmith-Timestamp": str(timestamp),
                "X-Rewardsmith-Signature": sign(secret, timestamp, body),
            },
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
        )
        code = response.status_code
        if not 200 <= code < 300:
            error = f"the receiver answered {code}"
    except InvalidInput as e:
        error = e.message
    except httpx.HTTPError as e:
        error = f"{type(e).__name__}: {clip(str(e), 300)}"
    with session_scope(sf) as s:
        d = s.get(WebhookDelivery, delivery_id)
        assert d is not None
        d.response_status, d.last_error = code, error
        if error is None:
            d.status, d.delivered_at, d.next_attempt_at = DeliveryStatus.DELIVERED, utcnow(), None
        elif attempts >= settings.webhook_max_attempts:
            d.status, d.next_attempt_at = DeliveryStatus.FAILED, None
            log.warning("webhook delivery %s failed after %s attempts: %s", delivery_id, attempts, error)
        else:
            wait = settings.webhook_backoff_seconds * 2 ** (attempts - 1)
            d.next_attempt_at = utcnow() + timedelta(seconds=wait)
        return str(d.status)


def deliver_due(sf: sessionmaker, settings: Settings, *, limit: int = 50) -> int:
    """Attempt every delivery that is due (at most ``limit``); how many were attempted."""
    with session_scope(sf) as s:
        due = list(
            s.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= utcnow())
                .order_by(WebhookDelivery.id)
                .limit(limit)
            )
        )
    done = 0
    for delivery_id in due:
        try:
            done += attempt(sf, settings, delivery_id) is not None
        except Exception:  # one broken delivery must not keep the others
            log.exception("webhook delivery %s could not be attempted", delivery_id)
    return done


def send_soon(sf: sessionmaker, settings: Settings) -> None:
    """Send what is due now in a daemon thread, when anything is (one indexed query): the caller (a step of the
    search, the sweep) goes on at once."""
    with session_scope(sf) as s:
        due = s.scalar(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= utcnow())
            .limit(1)
        )
    if due is not None:
        threading.Thread(target=deliver_due, args=(sf, settings), name="webhooks", daemon=True).start()
