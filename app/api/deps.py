"""Request dependencies as Annotated aliases: the session (the request owns the transaction), the user, the rest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from app.auth import user_for_token
from app.config import Settings
from app.db import session_scope
from app.db.models import User
from app.errors import Unauthorized
from app.search.dispatch import Dispatcher

SESSION_COOKIE = "rewardsmith_session"
COOKIE_MAX_AGE = 14 * 24 * 3600


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the handler returns (before the response is sent), rolled back on error."""
    with session_scope(request.app.state.sf) as session:
        yield session


def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


def cookie_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.resolved_secret_key, salt="rewardsmith-session")


def token_from_cookie(request: Request, settings: Settings) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        return cookie_serializer(settings).loads(raw, max_age=COOKIE_MAX_AGE)
    except BadSignature:
        return None


bearer = HTTPBearer(
    auto_error=False, scheme_name="token", description="An API token: `rewardsmith users create NAME` prints one."
)
"""Declares the Bearer scheme in the OpenAPI document (so /api/v1/docs can authorize); never refuses by itself."""


def optional_user(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User | None:
    """The user behind the Bearer token or the dashboard's session cookie, if any."""
    token = credentials.credentials.strip() if credentials else None
    if not token:
        token = token_from_cookie(request, settings)
    return user_for_token(session, token=token) if token else None


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized(
            "missing or invalid API token: send 'Authorization: Bearer <token>' "
            "(create one with `rewardsmith users create NAME`)"
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
