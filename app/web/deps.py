"""Request dependencies as Annotated aliases: the session (the request owns the transaction), the user, the rest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.auth import user_for_token
from app.config import Settings
from app.db import session_scope
from app.db.models import User
from app.errors import Unauthorized
from app.search.records.dispatch import Dispatcher
from app.web.inputs import check_json, check_text


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the handler returns (before the response is sent), rolled back on error."""
    with session_scope(request.app.state.sf) as session:
        yield session


def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher


async def sound_json_body(request: Request) -> None:
    """Refuse a JSON body the API could not store or answer (NaN, lone surrogates, NUL, deep nesting) with a 422,
    before it is validated (attached to the API's routers)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.endswith(("/json", "+json")):
        body = await request.body()
        if body:
            check_json(body)


async def sound_form_and_query(request: Request) -> None:
    """Refuse query parameters and form fields holding text no database can store (NUL characters) with a 422,
    before a handler uses them (attached to the dashboard's routers)."""
    for name, value in request.query_params.multi_items():
        check_text(value, field=name)
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
        for name, field in (await request.form()).multi_items():
            if isinstance(field, str):  # an uploaded file is not text
                check_text(field, field=name)


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


bearer = HTTPBearer(
    auto_error=False, scheme_name="token", description="An API token: `rewardsmith users create NAME` prints one."
)
"""Declares the Bearer scheme in the OpenAPI document (so /api/v1/docs can authorize); never refuses by itself."""


def optional_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User | None:
    """The user behind the Bearer token, if any. The API never reads the dashboard's cookie: a cookie-authenticated
    API would be open to cross-site requests, and a stolen dashboard session would become an API token."""
    token = credentials.credentials.strip() if credentials else None
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
