"""Dashboard sessions: a random id in the cookie, only its SHA-256 in the database, idle and absolute expiry.

A stolen cookie is not an API token: it works only in the dashboard, only until logout or expiry, and only while
the API token that signed in is neither revoked nor deleted. CSRF tokens are derived from the cookie (HMAC with the
secret key), so each session has its own and nothing more is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from app.auth import active_token, hash_token
from app.config import Settings
from app.db.models import ApiToken, DashboardSession, User, utcnow

TOUCH_SECONDS = 60
"""``last_seen_at`` is written at most once a minute per session (idle expiry is counted in hours)."""


@dataclass(frozen=True)
class SignedIn:
    """A live dashboard session and what the request needs from it."""

    row: DashboardSession
    user: User
    csrf: str


def csrf_token(settings: Settings, *, purpose: str, secret: str) -> str:
    """The CSRF token bound to ``secret`` (a session id, or a pre-session id for the login form)."""
    key = settings.resolved_secret_key.encode()
    return hmac.new(key, f"{purpose}:{secret}".encode(), hashlib.sha256).hexdigest()


def start_session(session: Session, *, token: str, settings: Settings) -> tuple[User, str] | None:
    """Sign in with an API token: the user and the new session id for the cookie, or None for a bad token."""
    row = active_token(session, token=token) if token else None
    if row is None:
        return None
    _drop_expired(session, settings)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        DashboardSession(
            id_hash=hash_token(secret),
            user_id=row.user_id,
            token_id=row.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=settings.session_max_seconds),
        )
    )
    session.flush()
    return row.user, secret


def signed_in(session: Session, *, secret: str, settings: Settings) -> SignedIn | None:
    """The live session behind a cookie's id, or None (unknown, logged out, idle too long, past its end, or its
    API token revoked)."""
    row = session.scalar(
        select(DashboardSession)
        .join(ApiToken, DashboardSession.token_id == ApiToken.id)
        .where(DashboardSession.id_hash == hash_token(secret), ApiToken.revoked.is_(False))
    )
    if row is None:
        return None
    now = utcnow()
    if row.expires_at <= now or (now - row.last_seen_at).total_seconds() > settings.session_idle_seconds:
        session.delete(row)
        session.flush()
        return None
    if (now - row.last_seen_at).total_seconds() > TOUCH_SECONDS:
        row.last_seen_at = now
    return SignedIn(row, row.user, csrf_token(settings, purpose="session", secret=secret))


def end_session(session: Session, *, secret: str) -> None:
    """Log out: the session id stops working at once, wherever the cookie is."""
    session.execute(delete(DashboardSession).where(DashboardSession.id_hash == hash_token(secret)))


def _drop_expired(session: Session, settings: Settings) -> None:
    now = utcnow()
    idle_since = now - timedelta(seconds=settings.session_idle_seconds)
    session.execute(
        delete(DashboardSession).where(
            or_(DashboardSession.expires_at <= now, DashboardSession.last_seen_at < idle_since)
        )
    )
