"""The jobs a sandboxed child runs: one ``TypedDict`` per kind, told apart by ``type``.

A job travels as JSON (``job.json`` in the child's working directory), so its shape is a
``TypedDict`` like the results in ``workers.engine.result``: the builders in ``workers.engine``
and the dispatch in ``workers.sandbox.child`` read the same names, and mypy narrows ``Job`` by
its ``type``. The parent adds ``parent_netns`` and ``limits`` (``SentJob``) and, for a job on a
user robot, the robot's files (``robot``).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict, cast


class CompileRobotJob(TypedDict):
    """Check, compile and measure an uploaded MJCF robot from its own files only."""

    type: Literal["compile_robot"]
    files: dict[str, str]
    """File name to base64 of its bytes."""
    root_file: str
    settings: dict[str, Any]
    robot: NotRequired[dict[str, Any]]


class RenderRobotJob(TypedDict):
    """Draw a user robot's initial pose as a PNG the parent checks before keeping it."""

    type: Literal["render_robot"]
    robot: dict[str, Any]
    """``envs.user_env_payload``'s form."""
    width: int
    height: int


class DryRunJob(TypedDict):
    """A reward or fitness program's dry run on random-policy steps."""

    type: Literal["dry_run"]
    env: str
    kind: Literal["reward", "fitness"]
    source: str
    seed: NotRequired[int]
    trajectories: NotRequired[list[str]]
    """A reward's dry run then screens it on these recorded episodes (``trajectories.npz`` files)."""
    parent: NotRequired[str]
    """The parent reward's source, which the screen ranks the episodes with beside the candidate."""
    robot: NotRequired[dict[str, Any]]


class ScreenJob(TypedDict):
    """A candidate reward's returns on a run's recorded episodes, ranked against their fitness."""

    type: Literal["screen"]
    env: str
    source: str
    trajectories: list[str]
    parent: NotRequired[str]
    robot: NotRequired[dict[str, Any]]


class MeasureFitnessJob(TypedDict):
    """A proposed fitness: its dry run, then its values on random-policy episodes."""

    type: Literal["measure_fitness"]
    env: str
    source: str
    episodes: int
    seed: int
    max_steps: int | None
    robot: NotRequired[dict[str, Any]]


class TrainJob(TypedDict):
    """One PPO training; ``config`` holds ``workers.engine.train.TrainConfig``'s fields."""

    type: Literal["train"]
    config: dict[str, Any]
    robot: NotRequired[dict[str, Any]]


Job = CompileRobotJob | RenderRobotJob | DryRunJob | ScreenJob | MeasureFitnessJob | TrainJob
"""Every job a sandboxed child runs."""

KINDS = ("compile_robot", "render_robot", "dry_run", "screen", "measure_fitness", "train")
"""The values of ``type``, one per member of ``Job``."""


def as_job(sent: dict[str, Any]) -> Job:
    """The job a child was sent, once its ``type`` is known (the parent built it from the types above)."""
    if sent.get("type") not in KINDS:
        raise ValueError(f"unknown job type {str(sent.get('type'))[:40]!r}; the kinds are {', '.join(KINDS)}")
    return cast(Job, sent)


def env_of(job: Job) -> str:
    """The env a job runs on ("" for a job that names none): a user robot's files travel with such a job."""
    if job["type"] == "dry_run" or job["type"] == "screen" or job["type"] == "measure_fitness":
        return job["env"]
    if job["type"] == "train":
        name = job["config"].get("env")
        return name if isinstance(name, str) else ""
    return ""
