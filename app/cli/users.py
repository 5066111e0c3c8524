"""`rewardsmith users create|token|list|revoke|rotate|delete`: users and their API tokens, on this data dir's
database (the admin API under /api/v1/users does the same over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.orm import Session

from app.cli.common import fail, plain
from app.config import get_settings
from app.db import session_factory, session_scope
from app.db.migrate import upgrade
from app.errors import RewardsmithError

users_app = typer.Typer(help="Manage users and their API tokens.", no_args_is_help=True)


@contextmanager
def _database() -> Iterator[Session]:
    """A session on the configured database (migrated first); a refusal is printed as an error (exit 2)."""
    settings = get_settings()
    upgrade(settings.resolved_database_url)
    try:
        with session_scope(session_factory(settings.resolved_database_url)) as s:
            yield s
    except RewardsmithError as e:
        fail(e.message)


@users_app.command("create")
def users_create(name: str, admin: bool = typer.Option(False, "--admin", help="May see every user's tasks.")) -> None:
    """Create a user; the token is printed once, as the last word of the last line."""
    from app.auth import create_user

    with _database() as s:
        user, token = create_user(s, name=name, admin=admin)
        role = "admin" if user.is_admin else "user"
    print(f"created {role} '{name}'. Send 'Authorization: Bearer <token>', or log in to the dashboard with it.")
    print(f"token: {token}")


@users_app.command("token")
def users_token(name: str) -> None:
    """Issue another token for an existing user (printed as the last word); earlier tokens keep working."""
    import app.users as users
    from app.auth import new_token

    with _database() as s:
        token = new_token(s, user=users.user_named(s, name))
    print(f"token: {token}")


@users_app.command("list")
def users_list() -> None:
    """List users: id, name, role, tokens (live and revoked, with each live one's first characters), tasks and the
    runs that keep them from being deleted."""
    import app.users as users

    with _database() as s:
        rows = users.list_users(s)
    for u in rows:
        live = [t.prefix for t in u.tokens if not t.revoked]
        revoked = len(u.tokens) - len(live)
        unfinished = f"\tunfinished runs: {', '.join(map(str, u.unfinished_runs))}" if u.unfinished_runs else ""
        print(
            f"{u.id}\t{plain(u.name)}\t{'admin' if u.admin else 'user'}\t{len(live)} token(s) "
            f"({', '.join(live) or 'none'}), {revoked} revoked\t{u.tasks} task(s){unfinished}"
        )


@users_app.command("revoke")
def users_revoke(
    name: str,
    prefix: str | None = typer.Option(
        None, "--prefix", help="Revoke only this token: its first 10 characters, as `users list` shows them."
    ),
) -> None:
    """Revoke a user's tokens (or one); the dashboard sessions they opened end at once."""
    import app.users as users

    with _database() as s:
        count = users.revoke(s, users.user_named(s, name), prefix=users.check_prefix(prefix))
    print(f"revoked {count} token(s) of '{plain(name)}'; the dashboard sessions they opened have ended.")


@users_app.command("rotate")
def users_rotate(name: str) -> None:
    """Revoke every token of a user (ending their sessions) and print a new one, as the last word."""
    import app.users as users

    with _database() as s:
        token = users.rotate(s, users.user_named(s, name))
    print(f"revoked every earlier token of '{plain(name)}' and ended their dashboard sessions.")
    print(f"token: {token}")


@users_app.command("delete")
def users_delete(
    name: str, yes: bool = typer.Option(False, "--yes", help="Delete without asking (the default only explains).")
) -> None:
    """Delete a user with their tokens and sessions. Refused while any of their runs is unfinished (cancel those
    first); their tasks and runs are kept, owned by nobody (admins see them)."""
    import app.users as users

    if not yes:
        fail(
            f"deleting '{name}' removes the user, their tokens and their dashboard sessions; their tasks and runs are "
            "kept, owned by nobody (only admins see them), and it is refused while any of their runs is unfinished. "
            f"Run `rewardsmith users delete {name} --yes` to do it."
        )
    with _database() as s:
        gone = users.delete_user(s, users.user_named(s, name))
    print(
        f"deleted user '{plain(gone.name)}'; {gone.tasks_kept} task(s) and {gone.runs_kept} run(s) are kept, owned "
        "by nobody (admins see them)."
    )
