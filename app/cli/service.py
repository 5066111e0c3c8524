"""`rewardsmith serve`, `worker` and `users`: running the service."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import typer

from app.cli.common import console, fail, plain
from app.config import Settings, get_settings
from app.db import session_factory, session_scope
from app.db.migrate import upgrade
from app.errors import RewardsmithError

PR_SET_PDEATHSIG = 1
users_app = typer.Typer(help="Manage users and their API tokens.", no_args_is_help=True)


def worker_command(queues: str, concurrency: int, *, pool: str = "prefork", name: str | None = None) -> list[str]:
    """The command line of a Celery worker for ``queues``."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "app.jobs.celery_app:celery_app",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-P",
        pool,
        "-l",
        "warning",
        "--without-gossip",
        "--without-mingle",
    ]
    if name:
        cmd += ["-n", name]
    return cmd


def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="Parallel trainings of the embedded worker (default: cores / REWARDSMITH_TRAIN_THREADS).",
    ),
    embedded_worker: bool = typer.Option(
        True,
        "--embedded-worker/--no-embedded-worker",
        help="Also run Celery workers here (off when workers run elsewhere).",
    ),
    api_workers: int = typer.Option(1, "--api-workers", help="API processes (more serve more requests at once)."),
) -> None:
    """Run the API and the dashboard (and, by default, Celery workers) on this machine."""
    import uvicorn

    from app.jobs.celery_app import TASK_SWEEP, celery_app
    from app.main import create_app

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    first_token = _first_admin(settings)
    stop = threading.Event()

    def sweeper() -> None:
        while not stop.wait(settings.sweep_seconds):
            try:
                celery_app.send_task(TASK_SWEEP)
            except Exception as e:  # the broker may be down for a moment; the next sweep retries
                console.print(f"[yellow]sweep not sent:[/] {e}")

    threading.Thread(target=sweeper, daemon=True).start()
    designer = f"LLM {settings.llm_model}" if settings.llm_configured else "offline designer (no LLM configured)"
    console.print(
        f"rewardsmith on http://{host}:{port}  (API http://{host}:{port}/api/v1/docs); data in "
        f"{settings.data_dir}; database {settings.resolved_database_url.split('@')[-1]}; default designer: "
        f"{designer}",
        highlight=False,
    )
    if first_token:
        console.print(
            f"first start: created the admin user 'admin'. Log in at http://{host}:{port}/login with the "
            f"token below (shown once; more with `rewardsmith users create NAME`):\n{first_token}",
            highlight=False,
        )
    else:
        console.print("log in with your token; create users with: rewardsmith users create NAME", highlight=False)
    with supervised(settings.shutdown_grace_seconds) as children:  # stopped on return, SIGTERM or SIGINT
        if embedded_worker:
            children.append(start_worker(worker_command("llm", 2, pool="threads", name="llm@%h")))
            children.append(start_worker(worker_command("train", workers or settings.train_slots, name="train@%h")))
        if api_workers > 1:  # each process builds the app from the same environment
            uvicorn.run(
                "app.main:create_app", factory=True, host=host, port=port, workers=api_workers, log_level="warning"
            )
        else:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    stop.set()


def _first_admin(settings: Settings) -> str | None:
    """On a local installation's first start, an admin user so that the dashboard can be used at once."""
    from sqlalchemy import func, select

    from app.auth import create_user
    from app.db.models import User

    if settings.environment == "production":
        return None
    with session_scope(session_factory(settings.resolved_database_url)) as s:
        if s.scalar(select(func.count(User.id))):
            return None
        _, token = create_user(s, name="admin", admin=True)
    return token


def start_worker(cmd: list[str]) -> subprocess.Popen:
    """Start ``cmd`` in a process group of its own (so that stopping it reaches its pool's processes too), which
    the kernel sends SIGTERM if `serve` dies, however it dies (SIGKILL included)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the forked child only calls it

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent)


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def stop_children(children: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM each child's process group (Celery's warm shutdown), wait up to ``grace`` seconds, then SIGKILL what
    is left (a training cut short is redelivered: tasks are acknowledged late)."""
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
    for child in children:
        _signal_group(child, signal.SIGKILL)  # the group's other processes (the pool) even if its leader is gone
        child.wait()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def supervised(grace: float) -> Iterator[list[subprocess.Popen]]:
    """The processes started in the block (append them to the list) are stopped when it ends, on SIGTERM and SIGINT
    too. uvicorn answers SIGTERM by shutting down and raising the signal again, which by default kills this process
    before any cleanup; here it raises SystemExit instead, so the block's ``finally`` runs."""
    children: list[subprocess.Popen] = []
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield children
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        try:
            stop_children(children, grace)
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, signal.default_int_handler)


def worker(
    queues: str = typer.Option("llm,train", "--queues", help="Comma-separated: llm, train."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="Tasks at once, one training each (default: cores / REWARDSMITH_TRAIN_THREADS)."
    ),
) -> None:
    """Run a Celery worker (one per machine; set REWARDSMITH_DATABASE_URL and REWARDSMITH_BROKER_URL)."""
    bad = set(queues.split(",")) - {"llm", "train"}
    if bad:
        fail(f"unknown queues {sorted(bad)}; use llm, train or llm,train")
    settings = get_settings()
    upgrade(settings.resolved_database_url)
    os.execv(sys.executable, worker_command(queues, concurrency or settings.train_slots))


@users_app.command("create")
def users_create(name: str, admin: bool = typer.Option(False, "--admin", help="May see every user's tasks.")) -> None:
    """Create a user; the token is printed once, as the last word of the last line."""
    from app.auth import create_user

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    try:
        with session_scope(session_factory(settings.resolved_database_url)) as s:
            user, token = create_user(s, name=name, admin=admin)
            role = "admin" if user.is_admin else "user"
    except RewardsmithError as e:
        fail(e.message)
    print(f"created {role} '{name}'. Send 'Authorization: Bearer <token>', or log in to the dashboard with it.")
    print(f"token: {token}")


@users_app.command("token")
def users_token(name: str) -> None:
    """Issue another token for an existing user (printed as the last word)."""
    from sqlalchemy import select

    from app.auth import new_token
    from app.db.models import User

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    with session_scope(session_factory(settings.resolved_database_url)) as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            fail(f"no user named '{name}'; create one with `rewardsmith users create {name}`")
        token = new_token(s, user=user)
    print(f"token: {token}")


@users_app.command("list")
def users_list() -> None:
    """List users."""
    from sqlalchemy import select

    from app.db.models import User

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    with session_scope(session_factory(settings.resolved_database_url)) as s:
        for u in s.scalars(select(User).order_by(User.id)):
            print(f"{u.id}\t{plain(u.name)}\t{'admin' if u.is_admin else 'user'}\t{len(u.tokens)} token(s)")


def register(cli: typer.Typer) -> None:
    cli.command()(serve)
    cli.command()(worker)
    cli.add_typer(users_app, name="users")
