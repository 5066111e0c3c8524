"""`rewardsmith serve`, `worker` and `users`: running the service."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

import typer

import app.cli.lock as lock
from app.cli.common import console, fail
from app.cli.supervise import supervised
from app.cli.users import users_app
from app.config import Settings, get_settings
from app.db import session_factory, session_scope
from app.db.migrate import upgrade
from workers.sandbox.lifeline import dies_with_parent

if TYPE_CHECKING:
    from fastapi import FastAPI


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
    workers_count: int | None = typer.Option(
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

    from app.cli.http import uvicorn_options
    from app.jobs.celery_app import TASK_SWEEP, celery_app
    from app.main import create_app

    settings = get_settings()
    held = lock.hold(settings.data_dir, "rewardsmith serve")  # one serve per data dir; its workers inherit the lock
    upgrade(settings.resolved_database_url)
    first_token = _first_admin(settings)
    stop = threading.Event()

    def sweep() -> None:
        try:
            celery_app.send_task(TASK_SWEEP)
        except Exception as e:  # the broker may be down for a moment; the next sweep retries
            console.print(f"[yellow]sweep not sent:[/] {e}")

    def sweeper() -> None:  # at once (work a killed serve left behind), then every sweep_seconds
        sweep()
        while not stop.wait(settings.sweep_seconds):
            sweep()

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
    # the workers are stopped on return, SIGTERM or SIGINT, restarted when one dies (then the sweep runs at once)
    with supervised(settings.shutdown_grace_seconds, keep_fds=(held,), on_restart=lambda _: sweep()) as workers:
        if embedded_worker:
            workers.add("llm", worker_command("llm", 2, pool="threads", name="llm@%h"))
            workers.add("train", worker_command("train", workers_count or settings.train_slots, name="train@%h"))
        if api_workers > 1:  # each process builds the app from the same environment, and dies with this one
            os.environ[SERVE_PID] = str(os.getpid())
            uvicorn.run(
                "app.cli.service:api_process_app",
                factory=True,
                host=host,
                port=port,
                workers=api_workers,
                log_level="warning",
                **uvicorn_options(settings),
            )
        else:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", **uvicorn_options(settings))
    stop.set()


SERVE_PID = "REWARDSMITH_SERVE_PID"
"""Set by `serve` for the API processes uvicorn starts (``--api-workers`` > 1): the parent they die with."""


def api_process_app() -> FastAPI:
    """The app of one of uvicorn's API processes: it gets SIGKILL when `serve` dies, however serve dies."""
    from app.main import create_app

    dies_with_parent(signal.SIGKILL, parent=int(os.environ.get(SERVE_PID, "0")))()
    return create_app()


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


def worker(
    queues: str = typer.Option("llm,train", "--queues", help="Comma-separated: llm, train."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="Tasks at once, one training each (default: cores / REWARDSMITH_TRAIN_THREADS)."
    ),
) -> None:
    """Run a Celery worker (one per machine; set REWARDSMITH_DATABASE_URL and REWARDSMITH_BROKER_URL). SIGTERM or
    SIGINT stops it within REWARDSMITH_SHUTDOWN_GRACE_SECONDS, its running trainings handed back to the queue."""
    bad = set(queues.split(",")) - {"llm", "train"}
    if bad:
        fail(f"unknown queues {sorted(bad)}; use llm, train or llm,train")
    settings = get_settings()
    if settings.resolved_broker_url.startswith("sqla+"):  # the embedded broker: this data dir's own, single worker
        os.set_inheritable(lock.hold(settings.data_dir, "rewardsmith worker"), True)  # held across the exec
    upgrade(settings.resolved_database_url)
    os.execv(sys.executable, worker_command(queues, concurrency or settings.train_slots))


def register(cli: typer.Typer) -> None:
    cli.command()(serve)
    cli.command()(worker)
    cli.add_typer(users_app, name="users")
