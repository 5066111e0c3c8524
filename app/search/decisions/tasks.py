"""Creating a task: the one way the API, the dashboard and the CLI start a search."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import app.search.records.robots as robots
import envs
from app.config import Settings
from app.db import after_commit
from app.db.locks import hold_user
from app.db.models import Candidate, Run, Task, utcnow
from app.errors import InvalidInput, RateLimited
from app.search.records.dispatch import Dispatcher
from app.search.rules.states import RunStatus
from app.search.rules.task import TaskSpec, columns


def check_task_rate(session: Session, *, owner_id: int, settings: Settings) -> None:
    """RateLimited when the user created ``task_rate_per_minute`` tasks in the last minute.

    The user's row is held from here to the end of the transaction, so that concurrent requests count one after
    the other, each after the previous one's task is committed (count and insert are one step)."""
    hold_user(session, owner_id)
    since = utcnow() - timedelta(seconds=60)
    recent = session.scalar(select(func.count(Task.id)).where(Task.owner_id == owner_id, Task.created_at >= since))
    if (recent or 0) >= settings.task_rate_per_minute:
        raise RateLimited(
            f"at most {settings.task_rate_per_minute} tasks per minute (REWARDSMITH_TASK_RATE_PER_MINUTE); "
            "wait a minute and submit again",
            retry_after=60,
        )


def check_start_from(session: Session, *, spec: TaskSpec, owner_id: int | None) -> None:
    """InvalidInput unless ``options.start_from`` (when given) names a candidate with a program, of the same env, in
    a run of the same owner (the local command line, without users, may name any)."""
    wanted = spec.options.start_from
    if wanted is None:
        return
    c = session.get(Candidate, wanted)
    if c is None or (owner_id is not None and c.run.task.owner_id != owner_id):
        raise InvalidInput(f"options.start_from: candidate {wanted} is not one of yours", field="options.start_from")
    if not c.code or c.run.task.env != spec.env:
        raise InvalidInput(
            f"options.start_from: candidate {wanted} has no program for {spec.env} to start from; name a trained "
            f"candidate of a {spec.env} run",
            field="options.start_from",
        )


def create_task(
    session: Session, *, spec: TaskSpec, owner_id: int | None, settings: Settings, dispatcher: Dispatcher
) -> tuple[Task, Run]:
    """The one way to create a task (API, dashboard, CLI): the rate limit, every bound and the whole budget are
    checked here (``spec`` was checked against its own bounds when it was made); the task is stored with its first
    run, which starts once the transaction commits.

    ``owner_id`` None is the local command line, which has no user and no rate limit.
    """
    if owner_id is not None:
        check_task_rate(session, owner_id=owner_id, settings=settings)
    try:  # a user robot must be one the owner may use, registered here before the rules read it
        robots.usable_env(session, name=spec.env, viewer=robots.viewer_of(session, owner_id))
    except envs.UnknownEnvError as e:
        raise InvalidInput(str(e), field="env") from None
    check_start_from(session, spec=spec, owner_id=owner_id)
    task = Task(owner_id=owner_id, **columns(spec, settings))
    run = Run(task=task, status=RunStatus.QUEUED, usage={}, final={})
    session.add_all([task, run])
    session.flush()
    run_id = run.id
    after_commit(session, lambda: dispatcher.start(run_id))
    return task, run
