"""Managing users and their API tokens: list, revoke, rotate, delete (`rewardsmith users …` and the admin API under
/api/v1/users use these and nothing else).

Revoking a token ends the dashboard sessions it opened at once (their rows are deleted, and a session of a revoked
token is refused anyway). Deleting a user is refused while any of their runs is not finished (queued, running, or
waiting for their decision): cancel those first. Their tasks and runs are kept, owned by nobody (only admins see
them); what they wrote (feedback, choices, proposals) keeps their name in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.auth import new_token
from app.db.locks import hold_user
from app.db.models import ApiToken, DashboardSession, Run, Task, User
from app.errors import Conflict, InvalidInput, NotFound
from app.search.rules.states import RUN_TERMINAL
from app.web.access import MAX_ID


@dataclass(frozen=True)
class TokenInfo:
    """A token as an admin sees it: never the token, only its first characters."""

    id: int
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    admin: bool
    created_at: datetime
    tokens: list[TokenInfo]
    tasks: int
    unfinished_runs: list[int]
    """Runs that keep the user from being deleted (queued, running, or waiting for a decision)."""


@dataclass(frozen=True)
class Deleted:
    """What deleting a user did: their tasks and runs are kept, owned by nobody."""

    name: str
    tasks_kept: int
    runs_kept: int


def user_named(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named '{name[:64]}' (`rewardsmith users list` shows them)")
    return user


def user_with_id(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFound(f"user {user_id} does not exist (GET /api/v1/users lists them)")
    return user


def unfinished_runs(session: Session, user: User) -> list[int]:
    """The user's runs that are not finished (succeeded, failed or cancelled), oldest first."""
    q = (
        select(Run.id)
        .join(Task, Run.task_id == Task.id)
        .where(Task.owner_id == user.id, Run.status.not_in(list(RUN_TERMINAL)))
        .order_by(Run.id)
    )
    return list(session.scalars(q))


def describe(session: Session, user: User) -> UserInfo:
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    return UserInfo(
        id=user.id,
        name=user.name,
        admin=user.is_admin,
        created_at=user.created_at,
        tokens=[TokenInfo(t.id, t.prefix, t.created_at, t.last_used_at, t.revoked) for t in tokens],
        tasks=session.scalar(select(func.count(Task.id)).where(Task.owner_id == user.id)) or 0,
        unfinished_runs=unfinished_runs(session, user),
    )


def list_users(session: Session) -> list[UserInfo]:
    return [describe(session, u) for u in session.scalars(select(User).order_by(User.id))]


def revoke(session: Session, user: User, *, prefix: str | None = None) -> int:
    """Revoke the user's tokens (or the one whose prefix is ``prefix``) and end the dashboard sessions they opened,
    at once; the number of tokens revoked. NotFound when ``prefix`` names none of the user's live tokens."""
    live = [t for t in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)) if not t.revoked]
    if prefix is not None:
        live = [t for t in live if t.prefix == prefix]
        if not live:
            raise NotFound(
                f"'{user.name}' has no live token starting with '{prefix[:16]}' (`rewardsmith users list` shows "
                "each token's first characters)"
            )
    for t in live:
        t.revoked = True
    if live:
        session.execute(delete(DashboardSession).where(DashboardSession.token_id.in_([t.id for t in live])))
    session.flush()
    return len(live)


def rotate(session: Session, user: User) -> str:
    """Revoke every token of the user (ending their sessions) and issue a new one, returned once."""
    revoke(session, user)
    return new_token(session, user=user)


def delete_user(session: Session, user: User, *, acting: User | None = None) -> Deleted:
    """Delete ``user``, their tokens and sessions; their tasks and runs stay, owned by nobody. Conflict while any of
    their runs is unfinished, or when ``acting`` (an admin through the API) would delete themselves."""
    if acting is not None and acting.id == user.id:
        raise Conflict(
            "you cannot delete your own account through the API (you would lock yourself out); ask another admin, "
            "or use `rewardsmith users delete` on the server"
        )
    hold_user(session, user.id)  # no task of theirs can be created between the check and the delete
    unfinished = unfinished_runs(session, user)
    if unfinished:
        shown = ", ".join(str(r) for r in unfinished[:10]) + (" …" if len(unfinished) > 10 else "")
        raise Conflict(
            f"'{user.name}' has {len(unfinished)} unfinished run(s) ({shown}); cancel them first "
            "(POST /api/v1/runs/{id}/cancel, or the run's page), then delete the user. Their finished tasks and runs "
            "are kept, owned by nobody."
        )
    tasks = session.scalar(select(func.count(Task.id)).where(Task.owner_id == user.id)) or 0
    runs = session.scalar(select(func.count(Run.id)).join(Task, Run.task_id == Task.id).where(Task.owner_id == user.id))
    name = user.name
    session.execute(delete(DashboardSession).where(DashboardSession.user_id == user.id))
    session.delete(user)  # its tokens with it; the database sets the owner of its tasks (and authors) to NULL
    session.flush()
    return Deleted(name, tasks, runs or 0)


def check_prefix(prefix: str | None) -> str | None:
    """A token prefix as given by a person: the token's first 10 characters (``rs_`` and 7 more)."""
    if prefix is None:
        return None
    prefix = prefix.strip()
    if not prefix.startswith("rs_") or len(prefix) != 10:
        raise InvalidInput("a token prefix is the token's first 10 characters, starting with 'rs_'", field="prefix")
    return prefix
