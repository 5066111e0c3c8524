"""htmx fragments: live parts of pages, the env picker, the fitness check, the compute estimate, run controls."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

import app.search.records.robots as robots
import envs
from app.dashboard import views
from app.dashboard.render import templates
from app.dashboard.session import PageUser, csrf_protect
from app.errors import InvalidInput, NotFound, RewardsmithError
from app.search.service import (
    ProgramKind,
    cancel_run,
    check_for_person,
    continue_run,
    new_run_from,
    resume_run,
    task_budget,
    training_rate,
)
from app.web import access
from app.web.deps import DispatcherDep, SessionDep, SettingsDep, sound_form_and_query
from envs.describe import describe

router = APIRouter(
    prefix="/ui", include_in_schema=False, dependencies=[Depends(csrf_protect), Depends(sound_form_and_query)]
)


def message(request: Request, text: str, *, kind: str = "muted") -> HTMLResponse:
    """A one-line fragment; ``text`` may echo input, so it goes through the autoescaped template."""
    return templates.TemplateResponse(request, "_message.html", {"text": text, "kind": kind})


@router.get("/env/{env}", response_class=HTMLResponse)
def env_info(env: str, request: Request, user: PageUser, session: SessionDep) -> HTMLResponse:
    try:
        spec = robots.usable_env(session, name=env, viewer=robots.Viewer.of(user))
    except envs.UnknownEnvError as e:
        raise NotFound(str(e), field="env") from None
    return templates.TemplateResponse(request, "_env_info.html", {"spec": spec, "description": describe(spec)})


@router.post("/check-fitness", response_class=HTMLResponse)
def check_fitness(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    env: str = Form(...),
    fitness_program: str = Form(""),
) -> HTMLResponse:
    if not fitness_program.strip():
        return message(request, "Write a fitness program to check it.")
    res = check_for_person(
        session, settings=settings, user_id=user.id, env=env, source=fitness_program, kind=ProgramKind.FITNESS
    )
    return templates.TemplateResponse(request, "_fitness_check.html", {"res": res})


@router.get("/compute", response_class=HTMLResponse)
def compute(request: Request, user: PageUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """What the task in the form would train, by the same rules the service enforces when it is submitted."""
    values = views.form_values(dict(request.query_params))
    try:
        robots.usable_env(session, name=values.get("env", ""), viewer=robots.Viewer.of(user))
    except envs.UnknownEnvError as e:
        return templates.TemplateResponse(request, "_compute.html", {"error": str(e)})
    try:
        budget = task_budget(views.task_spec_from_form(values), settings)
    except InvalidInput as e:
        return templates.TemplateResponse(request, "_compute.html", {"error": e.message})
    rate, rate_source = training_rate(session, settings, env=values.get("env"))
    return templates.TemplateResponse(
        request,
        "_compute.html",
        {
            "budget": budget,
            "over": budget.timesteps > settings.max_task_timesteps,
            "cap": settings.max_task_timesteps,
            "rate": rate,
            "rate_source": rate_source,
            "seconds": budget.timesteps / rate,
        },
    )


@router.get("/runs-table", response_class=HTMLResponse)
def runs_table(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    status: str = "",
    env: str = "",
    q: str = "",
) -> HTMLResponse:
    listing = views.runs_list(session, user, status=status, env=env, q=q, settings=settings)
    return templates.TemplateResponse(request, "_runs_table.html", listing)


@router.get("/runs/{run_id}/live", response_class=HTMLResponse)
def run_live(run_id: int, request: Request, user: PageUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    run = access.run_or_404(session, run_id=run_id, user=user)
    return templates.TemplateResponse(request, "_run_live.html", views.run_view(session, run, settings))


@router.get("/candidates/{candidate_id}/live", response_class=HTMLResponse)
def candidate_live(candidate_id: int, request: Request, user: PageUser, session: SessionDep) -> HTMLResponse:
    """The candidate page's charts and learner table, redrawn while its training streams checkpoints."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    return templates.TemplateResponse(request, "_candidate_live.html", views.candidate_live(c))


@router.post("/runs/{run_id}/new-run", response_class=HTMLResponse)
def new_run(
    run_id: int,
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    iterations: str = Form(""),
    samples: str = Form(""),
    timesteps: str = Form(""),
    description: str = Form(""),
) -> Response:
    """A new run of this run's task with the settings typed in, starting from its best; htmx goes to its page."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    changes: dict = {"description": description.strip()} if description.strip() else {}
    try:
        for name, raw, label in (
            ("iterations", iterations, "Iterations"),
            ("samples", samples, "Candidates per iteration"),
            ("timesteps", timesteps, "Timesteps"),
        ):
            if raw.strip():
                changes[name] = views.form_int(raw, field=name, label=label)
        _, new = new_run_from(
            session, run=run, changes=changes, owner_id=user.id, settings=settings, dispatcher=dispatcher
        )
    except RewardsmithError as e:
        return message(request, e.message, kind="error")
    session.flush()
    return Response(status_code=204, headers={"HX-Redirect": f"/runs/{new.id}"})


@router.post("/runs/{run_id}/{action}", response_class=HTMLResponse)
def run_action(
    run_id: int,
    action: str,
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    iterations: str = Form("1"),
) -> HTMLResponse:
    run = access.run_or_404(session, run_id=run_id, user=user)
    note = None
    try:
        if action == "cancel":
            cancel_run(session, run=run)
        elif action == "resume":
            resume_run(session, run=run, dispatcher=dispatcher)
        elif action == "continue":
            more = views.form_int(iterations, field="iterations", label="Iterations")
            continue_run(session, run=run, iterations=more, settings=settings, dispatcher=dispatcher)
        else:
            note = f"unknown action '{action}'"
    except RewardsmithError as e:
        note = e.message
    session.flush()
    ctx = views.run_view(session, run, settings)
    return templates.TemplateResponse(request, "_run_live.html", {**ctx, "message": note})
