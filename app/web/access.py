"""Who may see what: tasks belong to their owner; other users get 404; admins see everything."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.db.models import Candidate, Run, Task, User
from app.errors import NotFound

Row = TypeVar("Row", Task, Run, Candidate)

MAX_ID = 2**31 - 1
"""Ids are 32-bit integer columns; a larger (or non-positive) id names nothing, and the database must not see it
(SQLite raises OverflowError on integers above 64 bits)."""


def _visible(task: Task | None, user: User) -> bool:
    return task is not None and (user.is_admin or task.owner_id == user.id)


def _get(session: Session, model: type[Row], row_id: int) -> Row | None:
    """The row ``row_id`` of ``model``; None for an id no row can have (never sent to the database)."""
    return session.get(model, row_id) if 0 < row_id <= MAX_ID else None


def task_or_404(session: Session, *, task_id: int, user: User) -> Task:
    task = _get(session, Task, task_id)
    if task is None or not _visible(task, user):
        raise NotFound(f"task {task_id} does not exist (or belongs to another user)")
    return task


def run_or_404(session: Session, *, run_id: int, user: User) -> Run:
    run = _get(session, Run, run_id)
    if run is None or not _visible(run.task, user):
        raise NotFound(f"run {run_id} does not exist (or belongs to another user)")
    return run


def candidate_or_404(session: Session, *, candidate_id: int, user: User) -> Candidate:
    c = _get(session, Candidate, candidate_id)
    if c is None or not _visible(c.run.task, user):
        raise NotFound(f"candidate {candidate_id} does not exist (or belongs to another user)")
    return c


def visible_tasks(user: User) -> Select:
    q = select(Task).order_by(Task.id.desc())
    return q if user.is_admin else q.where(Task.owner_id == user.id)
