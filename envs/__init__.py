"""The env registry: every MuJoCo env rewardsmith can design rewards for.

Gymnasium's eleven MuJoCo v5 envs are built in; a user robot joins by name at run time
(``register_user_env``, see ``envs.user``) and is then found like any other.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from envs import (
    ant,
    halfcheetah,
    hopper,
    humanoid,
    humanoidstandup,
    inverted_double_pendulum,
    inverted_pendulum,
    pusher,
    reacher,
    swimmer,
    walker2d,
)
from envs import user as _user
from envs.robot_data import RobotDescription, RobotSettings
from envs.spec import EnvSpec
from envs.upload import RobotRefused

REGISTRY: dict[str, EnvSpec] = {
    m.SPEC.name: m.SPEC
    for m in (
        halfcheetah,
        hopper,
        walker2d,
        ant,
        humanoid,
        reacher,
        pusher,
        swimmer,
        inverted_pendulum,
        inverted_double_pendulum,
        humanoidstandup,
    )
}
"""The built-in envs (Gymnasium's MuJoCo v5 envs)."""

__all__ = [
    "REGISTRY",
    "EnvSpec",
    "RobotRefused",
    "UnknownEnvError",
    "check_robot_name",
    "get_spec",
    "names",
    "rebuild_user_env",
    "register_user_env",
    "unregister_user_env",
    "user_env_payload",
    "user_names",
]


class UnknownEnvError(ValueError):
    """An env name that is not in the registry."""


def get_spec(name: str) -> EnvSpec:
    """The env ``name`` (built in, or a user robot registered in this process); the error names the closest
    match and lists all."""
    spec = REGISTRY.get(name) or _user.USER_ENVS.get(name)
    if spec is not None:
        return spec
    known = [*REGISTRY, *_user.USER_ENVS]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UnknownEnvError(f"unknown env '{name}'.{hint} Known envs: {', '.join(known)} (see `rewardsmith envs`).")


def names() -> list[str]:
    """The built-in envs' names."""
    return list(REGISTRY)


def user_names() -> list[str]:
    """The user robots registered in this process."""
    return list(_user.USER_ENVS)


def check_robot_name(name: str) -> str:
    """``name`` when a user robot may be called so; refuses a bad or built-in name with the rule."""
    return _user.check_name(name, frozenset(REGISTRY))


def register_user_env(
    name: str,
    files: Mapping[str, bytes],
    settings: RobotSettings | Mapping[str, Any] | None = None,
    *,
    description: RobotDescription | Mapping[str, Any] | None = None,
    root_file: str | None = None,
) -> EnvSpec:
    """Register the user robot ``name`` in this process; see ``envs.user.register_user_env``."""
    return _user.register_user_env(
        name, files, settings, description=description, root_file=root_file, reserved=frozenset(REGISTRY)
    )


def user_env_payload(name: str) -> dict[str, Any] | None:
    """What a sandboxed job needs to rebuild the user robot ``name`` (None when ``name`` is not one)."""
    return _user.job_payload(name)


def rebuild_user_env(payload: Mapping[str, Any]) -> EnvSpec:
    """Register the user robot a sandboxed job carries (``user_env_payload``); compiles nothing."""
    return _user.from_payload(payload, reserved=frozenset(REGISTRY))


def unregister_user_env(name: str) -> None:
    """Forget the user robot ``name`` in this process (nothing happens when it is not registered)."""
    _user.unregister_user_env(name)
