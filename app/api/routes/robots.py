"""POST /envs, PATCH and DELETE /envs/{name}, GET /envs/{name}/picture: users' robots.

A robot is uploaded as multipart form data: its name, the MJCF (``model``), its meshes and textures
(``assets``, each sent with the path the MJCF names it by) and optional settings. It is compiled,
measured and drawn in the sandbox before it is stored; a refusal says what was wrong.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

import app.search.records.robots as robots
from app.db.models import Robot, User
from app.search.service import add_robot, remove_robot, robot_or_404, share_robot
from app.web.deps import CurrentUser, SessionDep, SettingsDep
from app.web.robots import (
    RobotOut,
    ShareIn,
    api_picture_url,
    picture_response,
    read_upload,
    robot_out,
    settings_from_fields,
)
from app.web.schemas import UNAUTHORIZED, ErrorOut

router = APIRouter(prefix="/envs", tags=["envs"], responses=UNAUTHORIZED)

Setting = Annotated[str | None, Form(max_length=40)]


def _out(session: SessionDep, robot: Robot) -> RobotOut:
    owner = session.get(User, robot.owner_id) if robot.owner_id else None
    return robot_out(robot, owner, picture_url=api_picture_url(robot.name))


@router.post(
    "",
    status_code=201,
    response_model=RobotOut,
    responses={
        409: {"model": ErrorOut, "description": "the name is taken"},
        413: {"model": ErrorOut, "description": "the upload is too large"},
        422: {"model": ErrorOut, "description": "a bad name, file or setting, or a model the sandbox refused"},
        429: {"model": ErrorOut, "description": "too many sandbox jobs at once"},
    },
)
def add_env(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=48, description="the env name: letters, digits, '_', '-'")],
    model: Annotated[UploadFile, File(description="the robot's MJCF (.xml)")],
    assets: Annotated[
        list[UploadFile] | None, File(description="meshes (.stl, .obj, .msh), textures (.png), included MJCFs")
    ] = None,
    frame_skip: Setting = None,
    episode_steps: Setting = None,
    reset_noise: Setting = None,
    termination: Setting = None,
    min_height: Setting = None,
    max_height: Setting = None,
    min_upright: Setting = None,
) -> RobotOut:
    """Add a robot of your own from its MJCF: compiled from the uploaded files only, in the sandbox, checked to
    simulate stably, its initial pose drawn. Settings left out get defaults (`GET /envs/{name}` shows them).
    Only you (and admins) can see and use it until an admin shares it."""
    files, root_file = read_upload(model, assets or [])
    chosen = settings_from_fields(
        {
            "frame_skip": frame_skip,
            "episode_steps": episode_steps,
            "reset_noise": reset_noise,
            "termination": termination,
            "min_height": min_height,
            "max_height": max_height,
            "min_upright": min_upright,
        }
    )
    robot = add_robot(
        session, name=name, files=files, root_file=root_file, robot_settings=chosen, owner_id=user.id, settings=settings
    )
    return _out(session, robot)


@router.patch(
    "/{name}",
    response_model=RobotOut,
    responses={403: {"model": ErrorOut, "description": "not an admin"}, 404: {"description": "no such robot"}},
)
def share_env(name: str, body: ShareIn, user: CurrentUser, session: SessionDep) -> RobotOut:
    """Share a robot with every user, or stop sharing it (admins only)."""
    return _out(session, share_robot(session, name=name, shared=body.shared, viewer=robots.Viewer.of(user)))


@router.delete(
    "/{name}",
    status_code=204,
    responses={
        403: {"model": ErrorOut, "description": "shared with you, not yours"},
        404: {"description": "no such robot"},
        409: {"model": ErrorOut, "description": "unfinished runs use it"},
    },
)
def delete_env(name: str, user: CurrentUser, session: SessionDep) -> Response:
    """Remove a robot of yours (admins: any), with its files; refused while an unfinished run uses it."""
    remove_robot(session, name=name, viewer=robots.Viewer.of(user))
    return Response(status_code=204)


@router.get(
    "/{name}/picture",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"description": "no such robot, or no picture"}},
)
def env_picture(name: str, user: CurrentUser, session: SessionDep) -> Response:
    """The robot in its initial pose (PNG), drawn in the sandbox when it was added."""
    return picture_response(robot_or_404(session, name=name, viewer=robots.Viewer.of(user)))
