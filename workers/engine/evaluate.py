"""Evaluate one reward program end to end: static check, sandboxed dry run and training, result.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envs import get_spec
from envs.fitness import get_metric
from workers.engine.result import TrainingResult
from workers.program.policy import ProgramRejected, check_source
from workers.sandbox.jobs import DryRunJob, MeasureFitnessJob, ScreenJob, TrainJob
from workers.sandbox.runner import Limits, Outcome, SandboxResult, run_job

MIN_TIMESTEPS = 1_000


class BudgetError(ValueError):
    """A training budget that cannot work."""


def resolve_fitness(name: str | None, source: str | None) -> tuple[str, str]:
    """(name, source) of the fitness: a built-in metric by name, or a user's program."""
    if source is not None:
        check_source(source, "fitness")
        return (name or "custom"), source
    metric = get_metric(name or "forward_distance")
    return metric.name, metric.source


def check_budget(timesteps: int, maximum: int) -> None:
    if timesteps < MIN_TIMESTEPS:
        raise BudgetError(
            f"--timesteps {timesteps} is too small: PPO needs at least {MIN_TIMESTEPS} steps to make one update."
        )
    if timesteps > maximum:
        raise BudgetError(
            f"--timesteps {timesteps:,} is above this installation's cap of {maximum:,} steps per training "
            "(REWARDSMITH_MAX_TIMESTEPS_PER_TRAINING)."
        )


def sandbox_check(
    env: str,
    source: str,
    kind: str,
    limits: Limits,
    *,
    trajectories: list[Path] | None = None,
    parent: str | None = None,
) -> SandboxResult:
    """Static check here, then a dry run in the sandbox; the result's outcome is ok or rejected (or a limit). With
    ``trajectories`` (a reward's), the same sandboxed process then screens it on those recorded episodes, beside its
    ``parent`` reward's source where it has one: ``payload["screen"]`` holds the verdict (``workers.engine.screen``),
    which the caller acts on."""
    get_spec(env)
    try:
        check_source(source, kind)
    except ProgramRejected as e:
        return SandboxResult(Outcome.REJECTED, str(e))
    job: DryRunJob = {
        "type": "dry_run",
        "env": env,
        "kind": "fitness" if kind == "fitness" else "reward",
        "source": source,
    }
    if trajectories:
        job["trajectories"] = [str(p.resolve()) for p in trajectories]
        if parent:
            job["parent"] = parent
    return run_job(job, limits)


def sandbox_measure(
    env: str, source: str, limits: Limits, *, episodes: int = 5, seed: int = 0, max_steps: int | None = None
) -> SandboxResult:
    """A fitness program's static check here, then its dry run and its values on ``episodes`` random-policy
    episodes in the sandbox (``payload["report"]``, ``payload["measurement"]``)."""
    get_spec(env)
    try:
        check_source(source, "fitness")
    except ProgramRejected as e:
        return SandboxResult(Outcome.REJECTED, str(e))
    job: MeasureFitnessJob = {
        "type": "measure_fitness",
        "env": env,
        "source": source,
        "episodes": episodes,
        "seed": seed,
        "max_steps": max_steps,
    }
    return run_job(job, limits)


def sandbox_screen(
    env: str, source: str, trajectories: list[Path], limits: Limits, *, parent: str | None = None
) -> SandboxResult:
    """Screen a reward on recorded episodes in the sandbox (``workers.engine.screen``), beside its ``parent`` reward's
    source where it has one: ``payload["screen"]`` holds the verdict. The trajectory files are read inside the
    sandbox only."""
    get_spec(env)
    try:
        check_source(source, "reward")
    except ProgramRejected as e:
        return SandboxResult(Outcome.REJECTED, str(e))
    job: ScreenJob = {
        "type": "screen",
        "env": env,
        "source": source,
        "trajectories": [str(p.resolve()) for p in trajectories],
    }
    if parent:
        job["parent"] = parent
    return run_job(job, limits)


def engine_config(explicit: dict[str, Any], options: dict[str, Any] | None) -> dict[str, Any]:
    """The training config: the task's ``options`` (defaults of a whole search) under the arguments the caller gave
    explicitly. An option never overrides an explicit argument: ``video=True`` asked for by ``evaluate --video`` is
    not undone by the options' ``video: False`` default."""
    return {**(options or {}), **explicit}


def evaluate_reward(
    *,
    env: str,
    reward_source: str,
    fitness_name: str | None,
    fitness_source: str | None,
    timesteps: int,
    seed: int,
    out: Path,
    limits: Limits,
    video: bool | None = None,
    options: dict | None = None,
    on_event: Callable[[dict], None] | None = None,
) -> TrainingResult:
    """Train PPO with ``reward_source`` in the sandbox and write ``out/result.json``; returns the result.

    The keyword arguments win over ``options`` (see ``engine_config``); ``video`` left out, the options decide."""
    started = time.monotonic()
    get_spec(env)
    if timesteps < MIN_TIMESTEPS:
        raise BudgetError(
            f"timesteps {timesteps} is too small: PPO needs at least {MIN_TIMESTEPS} steps to make one update."
        )
    fname, fsource = resolve_fitness(fitness_name, fitness_source)  # a bad fitness leaves nothing behind
    out.mkdir(parents=True, exist_ok=True)
    result: TrainingResult
    try:
        check_source(reward_source, "reward")
    except ProgramRejected as e:
        result = TrainingResult(status=Outcome.REJECTED, error=str(e))
    else:
        explicit = {
            "env": env,
            "reward_source": reward_source,
            "fitness_source": fsource,
            "fitness_name": fname,
            "timesteps": timesteps,
            "seed": seed,
        }
        if video is not None:  # left out, the options decide (no video by default)
            explicit["video"] = video
        config = engine_config(explicit, options)
        sb = run_job(TrainJob(type="train", config=config), limits, on_event=on_event, artifacts_to=out)
        result = TrainingResult(**sb.payload)  # what the sandbox decided is set after: a payload cannot pass for it
        result["status"], result["error"], result["isolation"] = sb.outcome, sb.error, sb.isolation
        if sb.outcome != Outcome.OK and sb.stderr_tail and "traceback" not in result:
            result["stderr_tail"] = sb.stderr_tail[-4000:]
    result.setdefault("env", env)
    result.setdefault("fitness_name", fname)
    result.setdefault("fitness", None)
    result.setdefault("components", {})
    result.setdefault("timesteps", 0)
    result.setdefault("steps_per_second", None)
    result.setdefault("isolation", {})
    result["seconds"] = time.monotonic() - started
    (out / "reward.py").write_text(reward_source)
    (out / "result.json").write_text(json.dumps(result, indent=2, default=float, allow_nan=False))
    return result
