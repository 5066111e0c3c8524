"""Dashboard pages: login, runs, new task, run, candidate, compare."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

import envs
from app.api import access
from app.api.deps import COOKIE_MAX_AGE, SESSION_COOKIE, DispatcherDep, SessionDep, SettingsDep, cookie_serializer
from app.auth import user_for_token
from app.dashboard import views
from app.dashboard.render import PageUser, templates
from app.errors import InvalidInput, RewardsmithError
from app.search.service import add_feedback, create_task
from app.search.states import RUN_ACTIVE, RunStatus
from envs.fitness import METRICS

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"next": _safe_next(next), "error": None, "user": None})


@router.post("/login")
def login(request: Request, session: SessionDep, settings: SettingsDep, token: str = Form(""), next: str = Form("/")):
    user = user_for_token(session, token=token.strip()) if token.strip() else None
    if user is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {
                "next": _safe_next(next),
                "user": None,
                "error": "That token is not valid. Paste the token printed by `rewardsmith users create NAME`.",
            },
            status_code=401,
        )
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        cookie_serializer(settings).dumps(token.strip()),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return resp


@router.post("/logout")
def logout() -> RedirectResponse:
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


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
    rows = views.run_rows(session, user, status=status, env=env, q=q, model=settings.llm_model)
    return templates.TemplateResponse(
        request,
        "runs.html",
        {
            "user": user,
            "rows": rows,
            "filters": {"status": status, "env": env, "q": q},
            "envs": envs.names(),
            "statuses": [s.value for s in RunStatus],
            "active": any(r["status"] in RUN_ACTIVE for r in rows),
        },
    )


def _form_context(user, settings, values: dict, error: str | None = None, field: str | None = None) -> dict:
    return {
        "user": user,
        "envs": [envs.get_spec(n) for n in envs.names()],
        "metrics": list(METRICS.values()),
        "values": values,
        "error": error,
        "field": field,
        "llm": settings.llm_configured,
        "llm_model": settings.llm_model,
        "max_timesteps": settings.max_timesteps_per_training,
    }


@router.get("/tasks/new", response_class=HTMLResponse)
def new_task_form(request: Request, user: PageUser, settings: SettingsDep, env: str = "HalfCheetah-v5") -> HTMLResponse:
    values = {
        **views.DEFAULT_FORM,
        "env": env if env in envs.names() else "HalfCheetah-v5",
        "designer": "llm" if settings.llm_configured else "offline",
    }
    return templates.TemplateResponse(request, "task_new.html", _form_context(user, settings, values))


@router.post("/tasks/new")
async def create_task_page(
    request: Request, user: PageUser, session: SessionDep, settings: SettingsDep, dispatcher: DispatcherDep
):
    values = views.form_values(dict(await request.form()))
    try:
        spec = views.task_spec_from_form(values)
        _task, run = create_task(session, spec=spec, owner_id=user.id, settings=settings, dispatcher=dispatcher)
    except RewardsmithError as e:
        session.rollback()
        return templates.TemplateResponse(
            request,
            "task_new.html",
            _form_context(user, settings, values, e.message, e.field),
            status_code=e.status_code,
        )
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: int, request: Request, user: PageUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    run = access.run_or_404(session, run_id=run_id, user=user)
    return templates.TemplateResponse(
        request, "run.html", {"user": user, **views.run_view(session, run, settings.llm_model)}
    )


@router.get("/candidates/{candidate_id}", response_class=HTMLResponse)
def candidate_page(
    candidate_id: int, request: Request, user: PageUser, session: SessionDep, sent: int = 0
) -> HTMLResponse:
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    return templates.TemplateResponse(
        request, "candidate.html", {"user": user, "sent": bool(sent), **views.candidate_view(session, c)}
    )


@router.post("/candidates/{candidate_id}/feedback")
def candidate_feedback(
    candidate_id: int,
    request: Request,
    user: PageUser,
    session: SessionDep,
    text: str = Form(""),
    rating: str = Form(""),
):
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    try:
        add_feedback(session, candidate=c, text=text, rating=int(rating) if rating else None, user_id=user.id)
    except InvalidInput as e:
        session.rollback()
        ctx = views.candidate_view(session, c)
        return templates.TemplateResponse(
            request,
            "candidate.html",
            {"user": user, "sent": False, "feedback_error": e.message, "feedback_text": text, **ctx},
            status_code=422,
        )
    return RedirectResponse(f"/candidates/{candidate_id}?sent=1#feedback", status_code=303)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, user: PageUser, session: SessionDep, a: int = Query(...), b: int = Query(...)
) -> HTMLResponse:
    ca = access.candidate_or_404(session, candidate_id=a, user=user)
    cb = access.candidate_or_404(session, candidate_id=b, user=user)
    return templates.TemplateResponse(request, "compare.html", {"user": user, **views.compare_view(session, ca, cb)})
