"""Dashboard routes where a person decides: the proposed fitness (approve, edit, ask for another) and human selection
(choose the best of a group of videos). Each is a plain form POST that answers with a redirect, or with the page and
the error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.config import Settings
from app.dashboard import views
from app.dashboard.people_views import choose_view
from app.dashboard.render import templates
from app.dashboard.session import PageUser, csrf_protect
from app.db.models import Run, User
from app.errors import InvalidInput, RateLimited, RewardsmithError
from app.search.service import choose, decide
from app.web import access
from app.web.deps import DispatcherDep, SessionDep, SettingsDep, sound_form_and_query

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect), Depends(sound_form_and_query)])


def _run_page(
    request: Request, session: Session, run: Run, user: User, settings: Settings, error: RewardsmithError, **extra: Any
) -> Response:
    """The run's page again, with the error and what the person had typed."""
    session.rollback()
    session.refresh(run)
    ctx = {"user": user, **views.run_view(session, run, settings), "fitness_error": error.message, **extra}
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    return templates.TemplateResponse(request, "run.html", ctx, status_code=error.status_code, headers=headers)


@router.post("/runs/{run_id}/fitness/{action}")
def fitness_decision(
    run_id: int,
    action: str,
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    source: str = Form(""),
    note: str = Form(""),
) -> Response:
    """Approve the proposed fitness, replace it with an edited program, or ask for another."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    try:
        if action not in ("approve", "edit", "repropose"):
            raise InvalidInput(f"unknown decision '{action[:40]}': approve, edit or repropose", field="action")
        decide(
            session,
            run=run,
            approve_it=action == "approve",
            source=source if action == "edit" else None,
            again=action == "repropose",
            note=(note or None) if action == "repropose" else None,
            user_id=user.id,
            who=user.name,
            settings=settings,
            dispatcher=dispatcher,
        )
    except RewardsmithError as e:
        return _run_page(request, session, run, user, settings, e, edit_source=source or None)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.get("/runs/{run_id}/choose", response_class=HTMLResponse)
def choose_page(run_id: int, request: Request, user: PageUser, session: SessionDep, settings: SettingsDep) -> Response:
    """The first group of candidates that waits for a choice; the run page when none waits."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    view = choose_view(session, run, settings)
    if view is None:
        return RedirectResponse(f"/runs/{run_id}", status_code=303)
    return templates.TemplateResponse(request, "choose.html", {"user": user, **view})


def _ids(values: list[str], what: str) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise InvalidInput(f"{what} must be candidate ids", field=what) from None


@router.post("/runs/{run_id}/choose")
async def choose_submit(
    run_id: int,
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> Response:
    """Record the choice; the next group, or the run page once the iteration's groups are done (the run goes on)."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    form = await request.form()
    text = str(form.get("text") or "")
    try:
        group = _ids([str(v) for v in form.getlist("group")][:8], "group")
        none_right = form.get("none_right") == "1"  # the "none of these is right" button: any radio ticked is moot
        best = _ids([str(form.get("best") or "")], "best")[0] if form.get("best") and not none_right else None
        choose(
            session,
            run=run,
            group=group,
            best=best,
            text=text,
            none_right=none_right,
            user_id=user.id,
            who=user.name,
            dispatcher=dispatcher,
        )
    except RewardsmithError as e:
        session.rollback()
        session.refresh(run)
        view = choose_view(session, run, settings)
        if view is None:
            return RedirectResponse(f"/runs/{run_id}", status_code=303)
        ctx = {"user": user, **view, "error": e.message, "text": text}
        return templates.TemplateResponse(request, "choose.html", ctx, status_code=e.status_code)
    session.flush()
    target = f"/runs/{run_id}/choose" if choose_view(session, run, settings) is not None else f"/runs/{run_id}"
    return RedirectResponse(target, status_code=303)
