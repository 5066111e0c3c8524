"""User robots registered in this process: by name, like a built-in env, and as a Gymnasium id.

A service stores what a robot is (its files, its settings, the description a sandboxed
compile returned, ``workers.engine.robot.compile_robot``) and registers it with
``register_user_env`` in each process that uses it; a sandboxed job that names a user env
carries the same data (``job_payload``) and its child registers it again (``from_payload``).
Registering with a description compiles nothing; without one it compiles and measures the
model (``envs.derive``), which only a sandboxed child (or a test) may do.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from envs.derive import derive
from envs.robot import make_spec
from envs.robot_data import RobotDescription, RobotModel, RobotSettings
from envs.robot_env import UserRobotEnv
from envs.spec import EnvSpec
from envs.upload import RobotRefused, check_files

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,47}$")

USER_ENVS: dict[str, EnvSpec] = {}


def check_name(name: object, reserved: frozenset[str] = frozenset()) -> str:
    """``name`` when a robot may be called so (not one of ``reserved``); refuses anything else with the rule."""
    if not isinstance(name, str) or not NAME.match(name) or name in reserved:
        raise RobotRefused(
            f"the robot name '{str(name)[:60]}' is not accepted: use 1 to 48 letters, digits, '_' or '-', starting "
            "with a letter, and not the name of a built-in env"
        )
    return name


def register_user_env(
    name: str,
    files: Mapping[str, bytes],
    settings: RobotSettings | Mapping[str, Any] | None = None,
    *,
    description: RobotDescription | Mapping[str, Any] | None = None,
    root_file: str | None = None,
    reserved: frozenset[str] = frozenset(),
) -> EnvSpec:
    """Register (or replace) the user robot ``name`` from its uploaded ``files`` and ``settings``.

    ``description``: what ``compile_robot`` returned (read back strictly; nothing is compiled);
    None compiles and measures the model here (only inside a sandbox). ``reserved``: names that
    may not be used (the built-in envs). Raises ``RobotRefused`` with the reason.
    """
    check_name(name, reserved)
    files, root = check_files(files, root_file)
    chosen = settings if isinstance(settings, RobotSettings) else RobotSettings.from_dict(settings)
    if description is None:
        found, resolved = derive(files, chosen, root)
    else:
        found = description if isinstance(description, RobotDescription) else RobotDescription.from_json(description)
        resolved = chosen.resolved(found.timestep, found.root_height)
        if resolved.termination != "none" and not found.free:
            raise RobotRefused(f"termination '{resolved.termination}' needs a free-floating root; use 'none'")
    spec = make_spec(name, RobotModel(files, root, resolved, found))
    gym.registry.pop(spec.gym_id, None)
    gym.register(  # the spec is bound here: Gymnasium deep-copies kwargs, and a spec holds functions
        id=spec.gym_id, entry_point=functools.partial(UserRobotEnv, spec), max_episode_steps=resolved.episode_steps
    )
    USER_ENVS[name] = spec
    return spec


def unregister_user_env(name: str) -> None:
    """Forget the user robot ``name`` in this process (nothing happens when it is not registered)."""
    spec = USER_ENVS.pop(name, None)
    if spec is not None:
        gym.registry.pop(spec.gym_id, None)


def job_payload(name: str) -> dict[str, Any] | None:
    """What a sandboxed job needs to rebuild the user robot ``name`` (None for any other env): JSON-ready."""
    spec = USER_ENVS.get(name)
    if spec is None or spec.robot is None:
        return None
    robot = spec.robot
    return {
        "name": name,
        "files": {k: base64.b64encode(v).decode("ascii") for k, v in robot.files.items()},
        "root_file": robot.root_file,
        "settings": robot.settings.to_dict(),
        "description": robot.description.to_json(),
    }


def from_payload(payload: Mapping[str, Any], *, reserved: frozenset[str] = frozenset()) -> EnvSpec:
    """Register the user robot a sandboxed job carries (``job_payload``)."""
    files = {str(k): base64.b64decode(v, validate=True) for k, v in dict(payload["files"]).items()}
    return register_user_env(
        str(payload["name"]),
        files,
        payload.get("settings"),
        description=payload["description"],
        root_file=payload.get("root_file"),
        reserved=reserved,
    )
