"""Dashboard pages: login, runs, new task, run, candidate, compare."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

import envs
from app.config import Settings
from app.dashboard import robots as robot_pages
from app.dashboard import views
from app.dashboard.render import CODE_CSS, templates
from app.dashboard.session import (
    PageUser,
    clear_session_cookie,
    csrf_protect,
    finish_login_form,
    session_secret,
    set_session_cookie,
    start_login_form,
)
from app.db.models import User
from app.errors import InvalidInput, RewardsmithError
from app.search.rules.states import RunStatus
from app.search.rules.task import resolve_designer
from app.search.service import add_feedback, create_task
from app.sessions import end_session, start_session
from app.web import access
from app.web.deps import DispatcherDep, SessionDep, SettingsDep, sound_form_and_query
from envs.fitness import METRICS

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect), Depends(sound_form_and_query)])


def _safe_next(target: str | None) -> str:
    """A path on this site to go to after logging in; anything that could leave the site becomes '/'."""
    if not target or not target.startswith("/") or any(ch == "\\" or ord(ch) < 33 for ch in target):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and not target.startswith("//") else "/"


def _login_page(
    request: Request, settings: Settings, next_path: str, error: str | None, status_code: int = 200
) -> Response:
    """The login form with its CSRF token (bound to a pre-session cookie set here when not signed in)."""
    presession = start_login_form(request, settings)
    page = templates.TemplateResponse(
        request,
        "login.html",
        {"next": _safe_next(next_path), "error": error, "user": None},
        status_code=status_code,
    )
    return finish_login_form(page, request, presession)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep, next: str = "/") -> Response:
    return _login_page(request, settings, next, None)


@router.post("/login")
def login(
    request: Request, session: SessionDep, settings: SettingsDep, token: str = Form(""), next: str = Form("/")
) -> Response:
    started = start_session(session, token=token.strip(), settings=settings)
    if started is None:
        error = "That token is not valid. Paste the token printed by `rewardsmith users create NAME`."
        return _login_page(request, settings, next, error, status_code=401)
    _user, secret = started
    previous = session_secret(request)
    if previous:  # signing in again replaces this browser's session
        end_session(session, secret=previous)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(resp, request, secret, settings)
    return resp


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    secret = session_secret(request)
    if secret:
        end_session(session, secret=secret)
    resp = RedirectResponse("/login", status_code=303)
    clear_session_cookie(resp, request)
    return resp


@router.get("/code.css")
def code_css() -> Response:
    """The code highlighter's colours (a stylesheet: the CSP allows no inline styles)."""
    return Response(CODE_CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/", response_class=HTMLResponse)
def runs_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    status: str = "",
    env: str = "",
    q: str = "",
) -> HTMLResponse:
    listing = views.runs_list(session, user, status=status, env=env, q=q, settings=settings)
    return templates.TemplateResponse(
        request,
        "runs.html",
        {"user": user, **listing, "envs": envs.names(), "statuses": [s.value for s in RunStatus]},
    )


def _form_context(
    session: Session,
    user: User,
    settings: Settings,
    values: dict[str, Any],
    error: str | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    return {
        "user": user,
        "envs": robot_pages.env_choices(session, user),
        "metrics": list(METRICS.values()),
        "values": values,
        "error": error,
        "field": field,
        "llm": settings.llm_configured,
        "llm_model": settings.llm_model,
        "max_timesteps": settings.max_timesteps_per_training,
    }


@router.get("/tasks/new", response_class=HTMLResponse)
def new_task_form(
    request: Request, user: PageUser, session: SessionDep, settings: SettingsDep, env: str = "HalfCheetah-v5"
) -> HTMLResponse:
    context = _form_context(session, user, settings, {})
    known = [e.name for e in context["envs"]]
    values = {**views.DEFAULT_FORM, "env": env if env in known else "HalfCheetah-v5"}
    context["values"] = {**values, "designer": resolve_designer(None, settings)}
    return templates.TemplateResponse(request, "task_new.html", context)


@router.post("/tasks/new")
async def create_task_page(
    request: Request, user: PageUser, session: SessionDep, settings: SettingsDep, dispatcher: DispatcherDep
) -> Response:
    submitted = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}  # uploaded files are not fields
    values = views.form_values(submitted)
    try:
        spec = views.task_spec_from_form(values)
        _task, run = create_task(session, spec=spec, owner_id=user.id, settings=settings, dispatcher=dispatcher)
    except RewardsmithError as e:
        session.rollback()
        return templates.TemplateResponse(
            request,
            "task_new.html",
            _form_context(session, user, settings, values, e.message, e.field),
            status_code=e.status_code,
        )
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: int, request: Request, user: PageUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    run = access.run_or_404(session, run_id=run_id, user=user)
    return templates.TemplateResponse(request, "run.html", {"user": user, **views.run_view(session, run, settings)})


@router.get("/candidates/{candidate_id}", response_class=HTMLResponse)
def candidate_page(
    candidate_id: int, request: Request, user: PageUser, session: SessionDep, settings: SettingsDep, sent: int = 0
) -> HTMLResponse:
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    return templates.TemplateResponse(
        request, "candidate.html", {"user": user, "sent": bool(sent), **views.candidate_view(session, c, settings)}
    )


@router.post("/candidates/{candidate_id}/feedback")
def candidate_feedback(
    candidate_id: int,
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    text: str = Form(""),
    rating: str = Form(""),
) -> Response:
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    try:
        value = views.form_int(rating, field="rating", label="Rating") if rating.strip() else None
        add_feedback(session, candidate=c, text=text, rating=value, user_id=user.id)
    except InvalidInput as e:
        session.rollback()
        ctx = views.candidate_view(session, c, settings)
        return templates.TemplateResponse(
            request,
            "candidate.html",
            {"user": user, "sent": False, "feedback_error": e.message, "feedback_text": text, **ctx},
            status_code=422,
        )
    return RedirectResponse(f"/candidates/{candidate_id}?sent=1#feedback", status_code=303)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    a: int = Query(...),
    b: int = Query(...),
) -> HTMLResponse:
    ca = access.candidate_or_404(session, candidate_id=a, user=user)
    cb = access.candidate_or_404(session, candidate_id=b, user=user)
    return templates.TemplateResponse(
        request, "compare.html", {"user": user, **views.compare_view(session, ca, cb, settings)}
    )
