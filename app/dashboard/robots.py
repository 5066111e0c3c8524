"""Dashboard pages for users' robots: upload one, see its description, settings and picture, share or remove it.

Uploading goes through ``add_robot`` as the API's does (the sandbox compiles, measures and draws it);
a refusal comes back on the form with the reason. The picture is the PNG the sandbox drew, checked
when it was stored and again when it is served.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

import app.search.records.robots as robots
import envs
from app.dashboard.render import templates
from app.dashboard.session import PageUser, csrf_protect
from app.db.models import User
from app.errors import RewardsmithError
from app.search.service import add_robot, remove_robot, robot_or_404, share_robot
from app.web.deps import SessionDep, SettingsDep, sound_form_and_query
from app.web.robots import SETTING_FIELDS, picture_response, read_upload, settings_from_fields
from envs.describe import describe, describe_fitness
from envs.robot_data import RobotSettings
from envs.upload import FILE_TYPES, MAX_FILES

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect), Depends(sound_form_and_query)])


def env_choices(session: Session, user: User) -> list[envs.EnvSpec]:
    """The envs a new task may use: the built-in ones, then the robots ``user`` may use."""
    mine = robots.visible_robots(session, robots.Viewer.of(user))
    return [envs.get_spec(n) for n in envs.names()] + [robots.described_spec(r) for r in mine]


def _list_page(
    request: Request,
    session: Session,
    user: User,
    *,
    error: str | None = None,
    values: dict | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    listed = [(r, robots.described_spec(r)) for r in robots.visible_robots(session, robots.Viewer.of(user))]
    return templates.TemplateResponse(
        request,
        "robots.html",
        {
            "user": user,
            "robots": listed,
            "error": error,
            "values": values or {},
            "defaults": RobotSettings().to_dict(),
            "setting_fields": SETTING_FIELDS,
            "file_types": ", ".join(FILE_TYPES),
            "max_files": MAX_FILES,
        },
        status_code=status_code,
    )


@router.get("/robots", response_class=HTMLResponse)
def robots_page(request: Request, user: PageUser, session: SessionDep) -> HTMLResponse:
    return _list_page(request, session, user)


Setting = Annotated[str, Form(max_length=40)]


@router.post("/robots")
def upload_robot(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=48)] = "",
    model: Annotated[UploadFile | None, File()] = None,
    assets: Annotated[list[UploadFile | str] | None, File()] = None,  # (an empty file input may come as text)
    frame_skip: Setting = "",
    episode_steps: Setting = "",
    reset_noise: Setting = "",
    termination: Setting = "",
    min_height: Setting = "",
    max_height: Setting = "",
    min_upright: Setting = "",
) -> Response:
    values = {
        "name": name,
        "frame_skip": frame_skip,
        "episode_steps": episode_steps,
        "reset_noise": reset_noise,
        "termination": termination,
        "min_height": min_height,
        "max_height": max_height,
        "min_upright": min_upright,
    }
    try:
        files, root_file = read_upload(model, [a for a in assets or [] if not isinstance(a, str) and a.filename])
        chosen = settings_from_fields(dict(values))
        add_robot(
            session,
            name=name.strip(),
            files=files,
            root_file=root_file,
            robot_settings=chosen,
            owner_id=user.id,
            settings=settings,
        )
    except RewardsmithError as e:
        session.rollback()
        where = f"{e.field}: " if e.field else ""
        return _list_page(request, session, user, error=where + e.message, values=values, status_code=e.status_code)
    return RedirectResponse(f"/robots/{name.strip()}", status_code=303)


@router.get("/robots/{name}", response_class=HTMLResponse)
def robot_page(name: str, request: Request, user: PageUser, session: SessionDep) -> HTMLResponse:
    viewer = robots.Viewer.of(user)
    robot = robot_or_404(session, name=name, viewer=viewer)
    spec = robots.described_spec(robot)
    owner = session.get(User, robot.owner_id) if robot.owner_id else None
    return templates.TemplateResponse(
        request,
        "robot.html",
        {
            "user": user,
            "robot": robot,
            "owner": owner.name if owner else None,
            "spec": spec,
            "description": describe(spec),
            "metrics": describe_fitness(spec),
            "may_remove": robots.may_remove(robot, viewer),
        },
    )


@router.get("/robots/{name}/picture.png")
def robot_picture(name: str, user: PageUser, session: SessionDep) -> Response:
    return picture_response(robot_or_404(session, name=name, viewer=robots.Viewer.of(user)))


@router.post("/robots/{name}/share")
async def robot_share(name: str, request: Request, user: PageUser, session: SessionDep) -> Response:
    shared = (await request.form()).get("shared") == "yes"
    share_robot(session, name=name, shared=shared, viewer=robots.Viewer.of(user))
    return RedirectResponse(f"/robots/{name}", status_code=303)


@router.post("/robots/{name}/remove")
def robot_remove(name: str, user: PageUser, session: SessionDep) -> Response:
    remove_robot(session, name=name, viewer=robots.Viewer.of(user))
    return RedirectResponse("/robots", status_code=303)
