"""Adding a user's robot: its MJCF compiled and measured in the sandbox, and what to keep of it.

The trusted side never parses or compiles an uploaded model. ``compile_robot`` checks the
upload's names and sizes, sends the files to a sandboxed child (job ``compile_robot``: time
and memory limits, a private empty directory, no network) that checks what the MJCF says,
compiles it from its own files only and runs it for 1,000 random steps (``envs.derive``), and
reads back only the JSON the child wrote, strictly. A service stores the ``CompiledRobot``
(files, settings, description) and calls ``register`` in every process that uses the robot;
any sandboxed job that names it then carries its files to the child.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import envs
from envs.robot_data import RobotDescription, RobotSettings
from envs.spec import EnvSpec
from envs.upload import RobotRefused, check_files
from workers.sandbox.jobs import CompileRobotJob
from workers.sandbox.runner import Limits, Outcome, run_job

ROBOT_LIMITS = Limits(wall_seconds=120.0, memory_mb=2048, max_processes=64, max_file_mb=64, progress_seconds=None)
"""A compile job's limits (it runs in 768 MiB; the rest is room for meshes and textures up to their caps)."""


@dataclass(frozen=True)
class CompiledRobot:
    """What to store of a robot that compiled: everything a worker needs to rebuild its env."""

    name: str
    files: Mapping[str, bytes]
    root_file: str
    settings: dict[str, Any]
    """Its settings with every default resolved (as ``envs show`` prints them)."""
    description: dict[str, Any]
    """What the sandboxed compile found (``RobotDescription.to_json``)."""

    def payload(self) -> dict[str, Any]:
        """The robot as a sandboxed job carries it (``envs.user_env_payload``'s form), without registering it here."""
        return {
            "name": self.name,
            "files": {k: base64.b64encode(v).decode("ascii") for k, v in self.files.items()},
            "root_file": self.root_file,
            "settings": self.settings,
            "description": self.description,
        }

    def register(self) -> EnvSpec:
        """Register the robot in this process (compiles nothing); then ``envs.get_spec(name)`` finds it."""
        return envs.register_user_env(
            self.name, self.files, self.settings, description=self.description, root_file=self.root_file
        )


def compile_robot(
    name: str,
    files: Mapping[str, bytes],
    settings: Mapping[str, Any] | None = None,
    *,
    root_file: str | None = None,
    limits: Limits = ROBOT_LIMITS,
) -> CompiledRobot:
    """Check, compile and measure an uploaded robot in the sandbox; raises ``RobotRefused`` with the reason."""
    envs.check_robot_name(name)
    files, root = check_files(files, root_file)
    chosen = RobotSettings.from_dict(settings)
    job: CompileRobotJob = {
        "type": "compile_robot",
        "files": {k: base64.b64encode(v).decode("ascii") for k, v in files.items()},
        "root_file": root,
        "settings": chosen.to_dict(),
    }
    result = run_job(job, limits)
    if result.outcome == Outcome.REJECTED:
        raise RobotRefused(result.error or "the robot was refused")
    if result.outcome == Outcome.TIMEOUT:
        raise RobotRefused(
            f"checking the model took longer than {limits.wall_seconds:g} s and was stopped; simplify the model "
            "(fewer bodies and contacts, coarser meshes)"
        )
    if result.outcome == Outcome.RESOURCE_LIMIT:
        raise RobotRefused(
            f"checking the model needed more than {limits.memory_mb} MiB of memory and was stopped; simplify the "
            "model (coarser meshes, smaller textures)"
        )
    if result.outcome != Outcome.OK:
        raise RobotRefused(f"the model could not be checked: {result.error}")
    description = RobotDescription.from_json(result.payload.get("description"))
    resolved = RobotSettings.from_dict(result.payload.get("settings"))
    return CompiledRobot(name, files, root, resolved.to_dict(), description.to_json())
