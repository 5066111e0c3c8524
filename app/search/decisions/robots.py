"""Adding, sharing and removing a user's robot: the one way the API, the dashboard and the CLI do each.

Adding checks the name and the upload's names and sizes here, then compiles, measures and draws
the robot in the sandbox through the capped gateway (``sandbox_jobs.compile_robot_for_person``,
which ends the caller's transaction first: nothing sits in a transaction while a sandbox runs),
and stores what came back with the files. Every refusal is InvalidInput naming the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import app.search.decisions.sandbox_jobs as sandbox_jobs
import app.search.records.robots as robots
import envs
from app.config import Settings
from app.db import after_commit
from app.db.models import Robot, Run, Task
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.search.rules.states import RUN_TERMINAL
from envs.robot_data import RobotSettings
from envs.upload import check_files


def robot_or_404(session: Session, *, name: str, viewer: robots.Viewer) -> Robot:
    """The robot ``name`` if ``viewer`` may see it; NotFound otherwise (another user's robot is not theirs to know)."""
    robot = robots.visible_robot(session, name, viewer)
    if robot is None:
        raise NotFound(f"no robot named '{name[:60]}' (or it belongs to another user); GET /api/v1/envs lists yours")
    return robot


def add_robot(
    session: Session,
    *,
    name: str,
    files: Mapping[str, bytes],
    root_file: str | None,
    robot_settings: Mapping[str, Any] | None,
    owner_id: int | None,
    settings: Settings,
) -> Robot:
    """Compile, measure and store the robot ``name`` for ``owner_id`` (None: the command line).

    InvalidInput for a bad name, upload or setting and for a model the sandbox refused (with its reason); Conflict
    when the name is taken; RateLimited when the user, or the machine, already runs as many sandbox jobs as allowed.
    """
    try:
        envs.check_robot_name(name)
    except envs.RobotRefused as e:
        raise InvalidInput(str(e), field="name") from None
    if session.scalar(select(Robot.id).where(Robot.name == name)) is not None:
        raise Conflict(f"a robot named '{name}' already exists; choose another name (or remove that robot first)")
    try:
        checked, root = check_files(dict(files), root_file)
    except envs.RobotRefused as e:
        raise InvalidInput(str(e), field="files") from None
    try:
        chosen = RobotSettings.from_dict(robot_settings).to_dict()
    except (envs.RobotRefused, TypeError) as e:
        raise InvalidInput(f"robot settings: {e}", field="settings") from None
    try:
        done = sandbox_jobs.compile_robot_for_person(
            session,
            settings=settings,
            user_id=owner_id,
            name=name,
            files=dict(checked),
            robot_settings=chosen,
            root_file=root,
        )
    except envs.RobotRefused as e:
        raise InvalidInput(f"the robot was refused: {e}", field="model") from None
    compiled = done.compiled
    try:  # (the gateway committed what came before: a rollback here loses nothing else)
        return robots.store(
            session,
            name=name,
            owner_id=owner_id,
            files=compiled.files,
            root_file=compiled.root_file,
            settings=compiled.settings,
            description=compiled.description,
            picture=done.picture,
            picture_error=done.picture_error,
        )
    except IntegrityError:  # added under the same name while this one compiled
        raise Conflict(f"a robot named '{name}' was added meanwhile; choose another name") from None


def share_robot(session: Session, *, name: str, shared: bool, viewer: robots.Viewer) -> Robot:
    """Share the robot with every user (or stop sharing it): admins only."""
    robot = robot_or_404(session, name=name, viewer=viewer)
    if not viewer.is_admin:
        raise Forbidden("only an admin may share a robot with every user (or stop sharing it)")
    robot.shared = shared
    return robot


def remove_robot(session: Session, *, name: str, viewer: robots.Viewer) -> None:
    """Remove the robot and its files: its owner or an admin, and not while a run on it is unfinished."""
    robot = robot_or_404(session, name=name, viewer=viewer)
    if not robots.may_remove(robot, viewer):
        raise Forbidden(f"the robot '{name}' is shared with you, not yours: only its owner or an admin may remove it")
    active = session.scalars(
        select(Run.id).join(Task, Run.task_id == Task.id).where(Task.env == name, Run.status.not_in(RUN_TERMINAL))
    ).all()
    if active:
        shown = ", ".join(str(i) for i in active[:10])
        raise Conflict(
            f"the robot '{name}' is used by unfinished runs ({shown}); cancel them, or wait for them to end, then "
            "remove it"
        )
    session.delete(robot)
    after_commit(session, lambda: robots.forget(name))
