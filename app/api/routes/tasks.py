"""POST /tasks, GET /tasks, GET /tasks/{id}."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.db.models import User
from app.search.service import TaskSpec, create_task
from app.web import access, present
from app.web.deps import CurrentUser, DispatcherDep, SessionDep, SettingsDep
from app.web.schemas import UNAUTHORIZED, TaskOut

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=UNAUTHORIZED)


@router.post(
    "",
    status_code=201,
    response_model=TaskOut,
    responses={422: {"description": "invalid task or budget above the cap"}, 429: {"description": "rate limited"}},
)
def post_task(
    body: TaskSpec, user: CurrentUser, session: SessionDep, settings: SettingsDep, dispatcher: DispatcherDep
) -> TaskOut:
    """Submit a task; its run starts at once (status 'queued', then 'running')."""
    task, _ = create_task(session, spec=body, owner_id=user.id, settings=settings, dispatcher=dispatcher)
    session.refresh(task)
    return present.task_out(task, user)


@router.get("", response_model=list[TaskOut])
def list_tasks(
    user: CurrentUser,
    session: SessionDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=access.MAX_ID),
) -> list[TaskOut]:
    """Your tasks, newest first (admins: everyone's)."""
    tasks = session.scalars(access.visible_tasks(user).limit(limit).offset(offset))
    return [present.task_out(t, session.get(User, t.owner_id) if t.owner_id else None) for t in tasks]


@router.get("/{task_id}", response_model=TaskOut, responses={404: {"description": "no such task"}})
def get_task(task_id: int, user: CurrentUser, session: SessionDep) -> TaskOut:
    task = access.task_or_404(session, task_id=task_id, user=user)
    return present.task_out(task, session.get(User, task.owner_id) if task.owner_id else None)
