"""What a training reports: the shapes of ``result.json``, from the engine to the database, reflection and reports.

These are ``TypedDict``s because the result travels as JSON (the sandbox's result file, the
training's database column); the types give every reader the same names.
"""

from __future__ import annotations

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


class TrainingFailed(ProgramError):
    """The reward or fitness program failed during training; ``partial`` holds what was recorded until then."""

    def __init__(self, message: str, partial: TrainingResult) -> None:
        super().__init__(message)
        self.partial = partial


class SavedFileError(ValueError):
    """A saved training's file (policy.zip, vecnormalize.pkl) that cannot be continued from: refused unread."""
