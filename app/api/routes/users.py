"""The admin API for users and tokens: list, revoke, rotate, delete (the same as `rewardsmith users …`). Admins
only: anyone else gets 403."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

import app.users as users
from app.db.models import User
from app.errors import Forbidden
from app.web.deps import CurrentUser, SessionDep
from app.web.schemas import UNAUTHORIZED, Responses


def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden(f"only admins manage users; '{user.name}' is not an admin")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
ADMIN: Responses = {**UNAUTHORIZED, 403: {"description": "not an admin"}}
NOT_FOUND: Responses = {404: {"description": "no such user (or token)"}}

router = APIRouter(prefix="/users", tags=["users (admin)"], responses=ADMIN)


class TokenOut(BaseModel):
    id: int
    prefix: str = Field(description="the token's first characters (the token itself is never stored)")
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class UserOut(BaseModel):
    id: int
    name: str
    admin: bool
    created_at: datetime
    tokens: list[TokenOut]
    tasks: int
    unfinished_runs: list[int] = Field(description="runs that keep the user from being deleted until cancelled")


class RevokeIn(BaseModel):
    prefix: str | None = Field(None, max_length=16, description="revoke only this token (its first 10 characters)")


class RevokedOut(BaseModel):
    revoked: int = Field(description="tokens revoked now; the dashboard sessions they opened ended with them")
    user: UserOut


class RotatedOut(BaseModel):
    token: str = Field(description="the new token, shown once; every earlier token of the user is revoked")
    user: UserOut


class DeletedOut(BaseModel):
    deleted: str
    tasks_kept: int = Field(description="the user's tasks, kept and owned by nobody (only admins see them)")
    runs_kept: int


def _out(info: users.UserInfo) -> UserOut:
    return UserOut(
        id=info.id,
        name=info.name,
        admin=info.admin,
        created_at=info.created_at,
        tokens=[TokenOut(**vars(t)) for t in info.tokens],
        tasks=info.tasks,
        unfinished_runs=info.unfinished_runs,
    )


@router.get("", response_model=list[UserOut])
def list_users(admin: AdminUser, session: SessionDep) -> list[UserOut]:
    """Every user with their tokens (first characters only), their number of tasks and their unfinished runs."""
    return [_out(u) for u in users.list_users(session)]


@router.post("/{user_id}/revoke", response_model=RevokedOut, responses=NOT_FOUND)
def revoke(
    user_id: int, admin: AdminUser, session: SessionDep, body: Annotated[RevokeIn | None, Body()] = None
) -> RevokedOut:
    """Revoke the user's tokens (or one, by `prefix`); the dashboard sessions they opened end at once."""
    user = users.user_with_id(session, user_id)
    count = users.revoke(session, user, prefix=users.check_prefix(body.prefix if body else None))
    return RevokedOut(revoked=count, user=_out(users.describe(session, user)))


@router.post("/{user_id}/rotate", response_model=RotatedOut, responses=NOT_FOUND)
def rotate(user_id: int, admin: AdminUser, session: SessionDep) -> RotatedOut:
    """Revoke every token of the user (ending their sessions) and issue a new one, shown once in the answer."""
    user = users.user_with_id(session, user_id)
    token = users.rotate(session, user)
    return RotatedOut(token=token, user=_out(users.describe(session, user)))


@router.delete(
    "/{user_id}",
    response_model=DeletedOut,
    responses={**NOT_FOUND, 409: {"description": "the user has unfinished runs, or it is you"}},
)
def delete(user_id: int, admin: AdminUser, session: SessionDep) -> DeletedOut:
    """Delete the user with their tokens and sessions; refused (409) while any of their runs is unfinished. Their
    tasks and runs are kept, owned by nobody."""
    gone = users.delete_user(session, users.user_with_id(session, user_id), acting=admin)
    return DeletedOut(deleted=gone.name, tasks_kept=gone.tasks_kept, runs_kept=gone.runs_kept)
