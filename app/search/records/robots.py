"""Users' robots in the database, and this process's env registry kept in step with them.

A robot is stored with its files (``Robot``, ``RobotFile``), so a worker on any host can use it:
every process that handles a job, a request or a command naming a user env calls
``register_from_db`` (through ``usable_env`` where a person names it) before anything reads the
env. Registering compiles nothing (the stored description is read back strictly), and what a
process registered is kept under the robot's content hash: a robot that changed is registered
again, one that was removed is forgotten, and one that did neither costs a single small query.

Who may use a robot: its owner; everyone once an admin has shared it; admins always. The command
line (no user) is the operator of the database and sees every robot.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

import envs
from app.db import session_scope
from app.db.models import Robot, RobotFile, Run, Task, Training, User
from envs.robot import make_spec
from envs.robot_data import RobotDescription, RobotModel, RobotSettings

_REGISTERED: dict[str, str] = {}
"""The user robots this process registered from the database, by name: the content hash registered."""
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Viewer:
    """Who asks: a user (an admin or not), or the command line (``user_id`` None), which sees everything."""

    user_id: int | None
    is_admin: bool

    @classmethod
    def of(cls, user: User | None) -> Viewer:
        return COMMAND_LINE if user is None else cls(user.id, bool(user.is_admin))


COMMAND_LINE = Viewer(None, True)


def viewer_of(session: Session, user_id: int | None) -> Viewer:
    """The viewer for ``user_id`` (None: the command line)."""
    return Viewer.of(session.get(User, user_id) if user_id is not None else None)


def may_see(robot: Robot, viewer: Viewer) -> bool:
    """Its owner, every user once it is shared, and admins (the command line included) may see and use it."""
    return viewer.is_admin or robot.shared or (viewer.user_id is not None and robot.owner_id == viewer.user_id)


def may_remove(robot: Robot, viewer: Viewer) -> bool:
    """Only its owner or an admin (a shared robot stays its owner's)."""
    return viewer.is_admin or (viewer.user_id is not None and robot.owner_id == viewer.user_id)


def visible_robots(session: Session, viewer: Viewer) -> list[Robot]:
    """The robots ``viewer`` may see, by name."""
    q = select(Robot).order_by(Robot.name)
    if not viewer.is_admin:
        q = q.where(or_(Robot.shared.is_(True), Robot.owner_id == viewer.user_id))
    return list(session.scalars(q))


def visible_robot(session: Session, name: str, viewer: Viewer) -> Robot | None:
    """The robot ``name`` if ``viewer`` may see it (None both when there is none and when it is another's)."""
    robot = session.scalar(select(Robot).where(Robot.name == name)) if len(name) <= 48 else None
    return robot if robot is not None and may_see(robot, viewer) else None


def described_spec(robot: Robot) -> envs.EnvSpec:
    """The env of ``robot`` as its stored settings and description make it, for listing and describing it: nothing
    registered, no file loaded (``register_from_db`` registers the env that runs)."""
    model = RobotModel(
        MappingProxyType({}),
        robot.root_file,
        RobotSettings.from_dict(robot.settings),
        RobotDescription.from_json(robot.description),
    )
    return make_spec(robot.name, model)


def content_hash(files: Mapping[str, bytes], root_file: str, settings: Any, description: Any) -> str:
    """SHA-256 of everything a robot's env is built from (files by path, root file, settings, description)."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(f"{path}\0{hashlib.sha256(files[path]).hexdigest()}\0".encode())
    h.update(json.dumps([root_file, settings, description], sort_keys=True, allow_nan=False).encode())
    return h.hexdigest()


def register_from_db(session: Session, name: str) -> bool:
    """Make this process's registry agree with the database about the user robot ``name``; True when it is one.

    A built-in env is left alone. A robot already registered under its current content hash costs one query;
    one that changed is registered again from its stored files; one that is gone is unregistered here.
    """
    if name in envs.REGISTRY or len(name) > 48:
        return False
    stored = session.execute(select(Robot.id, Robot.content_hash).where(Robot.name == name)).one_or_none()
    with _LOCK:
        if stored is None:
            if _REGISTERED.pop(name, None) is not None:
                envs.unregister_user_env(name)
            return False
        if _REGISTERED.get(name) == stored.content_hash and name in envs.user_names():
            return True
        robot = session.get(Robot, stored.id)
        assert robot is not None
        rows = session.execute(select(RobotFile.path, RobotFile.content).where(RobotFile.robot_id == robot.id))
        files = {path: bytes(content) for path, content in rows}
        envs.register_user_env(name, files, robot.settings, description=robot.description, root_file=robot.root_file)
        _REGISTERED[name] = robot.content_hash
        return True


def register_env_of(sf: sessionmaker, *, run_id: int | None = None, training_id: int | None = None) -> None:
    """Register the user robot (if any) that the run ``run_id``, or the run of training ``training_id``, works on:
    what every step of the search does before it reads the env."""
    with session_scope(sf) as s:
        q = select(Task.env).join(Run, Run.task_id == Task.id)
        q = q.where(Run.id == run_id) if training_id is None else q.join(Training).where(Training.id == training_id)
        env = s.scalar(q)
        if env is not None:
            register_from_db(s, env)


def forget(name: str) -> None:
    """Unregister the user robot ``name`` from this process (it was removed)."""
    with _LOCK:
        if _REGISTERED.pop(name, None) is not None:
            envs.unregister_user_env(name)


def usable_env(session: Session, *, name: str, viewer: Viewer) -> envs.EnvSpec:
    """The env ``name`` as ``viewer`` may use it: a built-in env, or a user robot they may see (registered here
    first). ``envs.UnknownEnvError`` otherwise, naming the closest env they may use and listing them all; another
    user's robot is unknown, as if it did not exist."""
    if name in envs.REGISTRY:
        return envs.get_spec(name)
    robot = visible_robot(session, name, viewer)
    if robot is not None and register_from_db(session, name):
        return envs.get_spec(name)
    known = [*envs.names(), *(r.name for r in visible_robots(session, viewer))]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise envs.UnknownEnvError(
        f"unknown env '{name[:60]}'.{hint} Known envs: {', '.join(known)} (a robot of your own: add it with "
        "POST /api/v1/envs or `rewardsmith envs add`)."
    )


def store(
    session: Session,
    *,
    name: str,
    owner_id: int | None,
    files: Mapping[str, bytes],
    root_file: str,
    settings: dict[str, Any],
    description: dict[str, Any],
    picture: bytes | None,
    picture_error: str | None,
) -> Robot:
    """A new robot row with its files (flushed; the caller commits)."""
    robot = Robot(
        name=name,
        owner_id=owner_id,
        shared=False,
        root_file=root_file,
        settings=settings,
        description=description,
        content_hash=content_hash(files, root_file, settings, description),
        picture=picture,
        picture_error=picture_error,
        files=[RobotFile(path=path, size=len(content), content=content) for path, content in sorted(files.items())],
    )
    session.add(robot)
    session.flush()
    return robot
