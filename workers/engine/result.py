"""What a training reports: the shapes of ``result.json``, from the engine to the database, reflection and reports.

These are ``TypedDict``s because the result travels as JSON (the sandbox's result file, the
training's database column); the types give every reader the same names.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

from workers.program.program import ProgramError
from workers.sandbox.runner import Outcome


class Stats(TypedDict):
    """Mean, minimum and maximum of a stream of values."""

    mean: float
    min: float
    max: float


class Fitness(TypedDict):
    """The fitness of the final policy over the evaluation episodes."""

    mean: float
    std: float
    per_episode: list[float]


class LearnerStats(TypedDict, total=False):
    """SB3 PPO's own statistics, means over the policy updates since the previous checkpoint (absent from results
    written before SB3 was the learner)."""

    approx_kl: float
    """How far each update moved the policy; near 0 with flat returns: the learner has stalled."""
    clip_fraction: float
    explained_variance: float
    """How well the value function predicts the returns; below 0 it predicts worse than their mean."""
    entropy: float
    """Of the action distribution; a collapse means the policy stopped exploring."""
    policy_loss: float
    value_loss: float
    std: float
    """Mean standard deviation of the actions."""
    learning_rate: float
    """The learning rate the updates used (it falls over the training with a ``lin_`` schedule)."""
    updates: int
    """Policy updates (rollouts learned from) the means are over."""


class Checkpoint(TypedDict, total=False):
    """What happened in training since the previous checkpoint, and the policy's fitness at this one."""

    timesteps: int
    fitness: float
    components: dict[str, Stats]
    """Per-step statistics of each reward component over the window."""
    reward: Stats
    """Per-step statistics of this reward over the window (exists at any budget, unlike an episode return)."""
    env_reward: Stats
    """Per-step statistics of the env's own reward over the same steps."""
    episodes: int
    episode_return: float | None
    """Mean return of this reward over the episodes that ended in the window."""
    episode_env_return: float | None
    """Mean return of the env's own reward over the same episodes."""
    episode_length: float | None
    terminated: int
    truncated: int
    learner: LearnerStats
    """The learner's statistics over the same window (see ``LearnerStats``)."""


class EpisodeSummary(TypedDict, total=False):
    """What the robot did in one evaluation episode, in numbers (trajectory analysis)."""

    seed: int
    steps: int
    ended: str
    env_return: float
    distance_x: float
    distance_y: float
    mean_x_velocity: float
    height: Stats
    upright_mean: float
    upside_down_fraction: float
    pitch_turns: float
    healthy_fraction: float
    action_magnitude: float
    feet_contact_fraction: dict[str, float]
    at_end: dict[str, float]
    reward_return: float
    component_returns: dict[str, float]


class Progress(TypedDict, total=False):
    """The last checkpoint a running training reported."""

    timesteps: int
    total: int
    fitness: float


class WarmStart(TypedDict):
    """A training that started from its parent's policy (``workers.engine.start``)."""

    ancestor_timesteps: int
    """Steps the parent's saved policy says it trained: the parent's own (a warm-started training counts from 0, so
    the service adds the parent's ancestors' from its records)."""
    value_warmup_steps: int
    """Of this training's own steps, those spent on the value function alone, the policy frozen."""


class VideoInfo(TypedDict):
    """What a training's video shows: the episode's steps and simulated seconds, the frames kept and their rate."""

    steps: int
    seconds: float
    frames: int
    fps: float
    stride: int
    """Control steps per frame (1: every step)."""


class TrainingResult(TypedDict, total=False):
    """One training's outcome and measurements (``result.json``; the ``result`` column of a training)."""

    status: Outcome
    error: str | None
    env: str
    fitness_name: str
    fitness: Fitness | None
    checkpoints: list[Checkpoint]
    components: dict[str, list[Stats | None]]
    """Each component's statistics at each checkpoint (None where it was not returned)."""
    episodes: list[EpisodeSummary]
    dry_run: dict[str, Any]
    warnings: list[str]
    timesteps: int
    """Steps trained in total, including those of the training this one continued."""
    resumed_from_timesteps: int
    warm_start: WarmStart
    """Set when the training started from its parent's policy; ``timesteps`` are then this training's own."""
    trajectory_screen: dict[str, Any]
    """Set on a candidate's record by the service: the trajectory screen's verdict (``workers.engine.screen``)."""
    seconds: float
    learn_seconds: float
    steps_per_second: float | None
    ppo: dict[str, Any]
    seeds: dict[str, list[int]]
    episode_steps: int | None
    """The cap on episode length the training and its evaluation ran with (None: the env's own limit)."""
    artifacts: dict[str, str | None]
    video: VideoInfo
    """What the video (``artifacts["video"]``) shows: the whole episode, its length and frame rate."""
    isolation: dict[str, Any]
    traceback: str
    stderr_tail: str
    progress: Progress
    """Set on the database row while the training runs."""
    wall_seconds: float
    """Set by the service: the training's whole wall-clock time, sandbox start-up included."""


STORED_KEYS: frozenset[str] = frozenset(TrainingResult.__annotations__) - {"status", "error", "env"}
"""What the database keeps of a result (status and error have columns of their own; the env is the task's)."""


def stored(result: TrainingResult) -> TrainingResult:
    """The part of ``result`` the database keeps."""
    return TrainingResult(**{k: v for k, v in result.items() if k in STORED_KEYS})  # type: ignore[typeddict-item]


def steps_trained(result: TrainingResult) -> int:
    """The PPO steps this training ran itself (a continued training only adds its own)."""
    return int(result.get("timesteps") or 0) - int(result.get("resumed_from_timesteps") or 0)


MAX_LIVE_CHECKPOINTS = 64
"""Checkpoints a running training's row keeps at most (a training records ~10; more is a sandbox misbehaving)."""
MAX_LIVE_COMPONENTS = 32
"""Components of one live checkpoint kept at most."""
MAX_NAME_CHARS = 64
"""Longest component name a live checkpoint keeps."""
_MAX_STEPS = 2**53


def _number(value: object) -> float | None:
    """A finite float, or None (booleans, strings, NaN and infinities are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _count(value: object) -> int | None:
    """A whole number of steps or episodes in [0, 2**53], or None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_STEPS:
        return None
    return value


def _stats(value: object) -> Stats | None:
    if not isinstance(value, dict):
        return None
    mean, low, high = (_number(value.get(k)) for k in ("mean", "min", "max"))
    if mean is None or low is None or high is None:
        return None
    return Stats(mean=mean, min=low, max=high)


def _name(value: object) -> str | None:
    ok = isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS and value.isprintable()
    return value if ok else None  # type: ignore[return-value]


def live_checkpoint(raw: object) -> Checkpoint | None:
    """The checkpoint a sandbox reported while training, rebuilt from its known fields only: numbers finite,
    counts whole, component names short and printable, at most ``MAX_LIVE_COMPONENTS``; None when it has no
    step count. What a sandbox sends is untrusted; this is what the worker lets through to the database."""
    if not isinstance(raw, dict):
        return None
    timesteps = _count(raw.get("timesteps"))
    if timesteps is None:
        return None
    out = Checkpoint(timesteps=timesteps, fitness=_number(raw.get("fitness")))  # type: ignore[typeddict-item]
    for key in ("reward", "env_reward"):
        stats = _stats(raw.get(key))
        if stats is not None:
            out[key] = stats
    components = raw.get("components")
    if isinstance(components, dict):
        kept: dict[str, Stats] = {}
        for name, value in list(components.items())[:MAX_LIVE_COMPONENTS]:
            stats, good = _stats(value), _name(name)
            if stats is not None and good is not None:
                kept[good] = stats
        out["components"] = kept
    for key in ("episodes", "terminated", "truncated"):
        n = _count(raw.get(key))
        if n is not None:
            out[key] = n  # type: ignore[literal-required]
    for key in ("episode_return", "episode_env_return", "episode_length"):
        out[key] = _number(raw.get(key))  # type: ignore[literal-required]
    learner = raw.get("learner")
    if isinstance(learner, dict):
        stats_out: dict[str, float | int] = {}
        for key in LearnerStats.__annotations__:
            v = _count(learner.get(key)) if key == "updates" else _number(learner.get(key))
            if v is not None:
                stats_out[key] = v
        out["learner"] = LearnerStats(**stats_out)  # type: ignore[typeddict-item]
    return out


def live_progress(raw: dict) -> Progress:
    """The progress fields of a sandbox's event, checked as ``live_checkpoint`` checks a checkpoint."""
    out = Progress()
    for key in ("timesteps", "total"):
        n = _count(raw.get(key))
        if n is not None:
            out[key] = n
    fitness = _number(raw.get("fitness"))
    if fitness is not None:
        out["fitness"] = fitness
    return out


class TrainingFailed(ProgramError):
    """The reward or fitness program failed during training; ``partial`` holds what was recorded until then."""

    def __init__(self, message: str, partial: TrainingResult) -> None:
        super().__init__(message)
        self.partial = partial


class SavedFileError(ValueError):
    """A saved training's file (policy.zip, vecnormalize.pkl) that cannot be continued from: refused unread."""
