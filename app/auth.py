"""Users and API tokens: tokens are shown once and stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import ApiToken, User, utcnow
from app.errors import Conflict, InvalidInput

TOKEN_PREFIX = "rs_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(session: Session, *, user: User) -> str:
    """Issue a token for ``user``; the plain token is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:10]))
    session.flush()
    return token


def create_user(session: Session, *, name: str, admin: bool = False) -> tuple[User, str]:
    """A new user with a first token."""
    name = name.strip()
    if not name or len(name) > 64 or not all(ch.isalnum() or ch in "-_." for ch in name):
        raise InvalidInput("user names are 1-64 letters, digits, '-', '_' or '.'", field="name")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"a user named '{name}' already exists; use `rewardsmith users token {name}` for a new token")
    user = User(name=name, is_admin=admin)
    session.add(user)
    session.flush()
    return user, new_token(session, user=user)


def active_token(session: Session, *, token: str) -> ApiToken | None:
    """The stored row of a token that is known and not revoked (its last use recorded, to the minute)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False)))
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    return row


def user_for_token(session: Session, *, token: str) -> User | None:
    """The user a token belongs to, or None for an unknown or revoked token."""
    row = active_token(session, token=token)
    return row.user if row is not None else None
