"""Exports of a reward: a Gymnasium wrapper module, and the bundle a user runs without rewardsmith.

The bundle (a zip) holds the reward as a Gymnasium wrapper, the trained policy (policy.zip,
vecnormalize.pkl) and ``enjoy.py``, which runs that policy with plain Gymnasium and
Stable-Baselines3 and prints its fitness. It needs gymnasium[mujoco], numpy and stable-baselines3
only: the state view and the reward contract's static check are copies of rewardsmith's own
modules (``app.copysource``), made when the bundle is. The policy files are packed as bytes,
never loaded here.
"""

from __future__ import annotations

import io
import sys
import zipfile
from dataclasses import dataclass

import envs
from app.copysource import copy_modules
from app.errors import Conflict
from prompts import _env

STATE_PACKAGE = "rewardsmith_state"
CHECK_PACKAGE = "rewardsmith_check"
POLICY_FILES = ("policy.zip", "vecnormalize.pkl")


@dataclass(frozen=True)
class TrainedPolicy:
    """A training's policy files and what its evaluation measured (read from the training's stored result)."""

    files: dict[str, bytes]
    """policy.zip and vecnormalize.pkl, by name, as read from the artifact store."""
    eval_seeds: list[int]
    episode_steps: int | None
    measured: list[float] | None


def env_module(env: str) -> str:
    """The registry module that defines ``env``'s spec as ``SPEC`` (e.g. 'envs.hopper'); Conflict for a user robot,
    whose env no bundle can carry yet (it would need the robot's files and rewardsmith's env builder)."""
    if env not in envs.REGISTRY:
        raise Conflict(
            f"'{env[:60]}' is a user robot: an export bundle holds one of Gymnasium's envs only; download the reward "
            "(reward.py) and the trained policy's files (policy.zip, vecnormalize.pkl) instead"
        )
    spec = envs.get_spec(env)
    for name, module in sorted(sys.modules.items()):
        if name.startswith("envs.") and getattr(module, "SPEC", None) is spec:
            return name
    raise ValueError(f"{env} is not defined by a registry module with a SPEC; it cannot be exported as a bundle")


def wrapper_module(code: str, *, env: str, candidate_id: int) -> str:
    """A Python module that wraps ``env`` with the reward ``code`` (see prompts/wrapper_module.py.j2); it imports
    the bundle's copies of the state view and the static check."""
    name = env_module(env).removeprefix("envs.")
    return (
        _env()
        .get_template("wrapper_module.py.j2")
        .render(code=code, env=env, candidate_id=candidate_id, env_module=name)
        + "\n"
    )


def bundle_files(
    code: str, *, env: str, candidate_id: int, fitness_name: str, fitness_source: str, policy: TrainedPolicy | None
) -> dict[str, bytes | str]:
    """Every file of the bundle by its path in it (the policy files as their bytes)."""
    module = env_module(env)
    files: dict[str, bytes | str] = {
        "reward_wrapper.py": wrapper_module(code, env=env, candidate_id=candidate_id),
        "reward.py": code,
        "fitness.py": fitness_source,
        **copy_modules([module, "envs.state", "envs.capture"], "envs", STATE_PACKAGE),
        **copy_modules(["workers.program.policy"], "workers.program", CHECK_PACKAGE),
    }
    template = _env().get_template
    context = {"env": env, "candidate_id": candidate_id, "fitness_name": fitness_name, "trained": policy is not None}
    files["README.md"] = template("bundle_readme.md.j2").render(**context) + "\n"
    if policy is not None:
        files["enjoy.py"] = (
            template("enjoy.py.j2").render(  # Python literals of plain ints and floats, never text
                **context,
                eval_seeds=repr([int(s) for s in policy.eval_seeds]),
                episode_steps=repr(None if policy.episode_steps is None else int(policy.episode_steps)),
                measured=repr(None if policy.measured is None else [float(v) for v in policy.measured]),
            )
            + "\n"
        )
        files.update(policy.files)
    return files


def bundle_zip(files: dict[str, bytes | str], *, folder: str) -> bytes:
    """The files as a zip, under one top folder."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in sorted(files.items()):
            archive.writestr(f"{folder}/{path}", content)
    return out.getvalue()
