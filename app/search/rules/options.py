"""A task's search and training options, with their bounds: the one schema the API, the dashboard and the CLI use.

Every number a user can set is bounded here, so that no entry point can ask the workers for
a million evaluation episodes or a thousand parallel envs.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import InvalidInput
from app.search.rules.hyperparams import PPOOverrides
from workers.engine.evaluate import MIN_TIMESTEPS

__all__ = [
    "MIN_TIMESTEPS",
    "PPOOverrides",
    "TaskOptions",
    "TrainOptions",
    "invalid_input",
    "options_of",
    "parse_options",
]

ITERATIONS = (1, 50)
SAMPLES = (1, 32)
SEED = (0, 2**31 - 1)
"""Seeds are 32-bit integer columns; training seeds add offsets to them, still within 64 bits."""
DESCRIPTION_CHARS = 4000
FEEDBACK_CHARS = 4000
FITNESS_PROGRAM_CHARS = 20_000
NOTE_CHARS = 2000
"""A person's reason for asking for another fitness proposal."""


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainOptions(_Options):
    """How each training runs and is measured."""

    eval_episodes: int = Field(5, ge=1, le=100, description="deterministic episodes of the final evaluation")
    episode_steps: int | None = Field(None, ge=10, le=1000, description="cap on episode length (default: the env's)")
    checkpoints: int = Field(10, ge=1, le=50, description="times during training to record statistics and fitness")
    checkpoint_episodes: int = Field(1, ge=1, le=10, description="deterministic episodes per checkpoint")
    video: bool = Field(False, description="record an mp4 of the trained policy")
    video_steps: int = Field(
        300,
        ge=10,
        le=1000,
        description="most frames in the video: it shows the whole episode, skipping steps to keep within this",
    )
    ppo: PPOOverrides = Field(default_factory=PPOOverrides, description="SB3's or RL Zoo's PPO hyperparameters")

    def engine_options(self) -> dict[str, Any]:
        """The options as the engine's training config takes them (unset PPO settings left out)."""
        out = self.model_dump(exclude={"ppo"})
        out["ppo"] = self.ppo.changes()
        return out


class TaskOptions(_Options):
    """How the search runs."""

    successive_halving: bool = Field(
        False, description="train every candidate on screen_fraction of the budget, continue the better half"
    )
    screen_fraction: float = Field(0.25, strict=True, ge=0.05, le=0.9)
    final_seeds: int = Field(3, ge=0, le=10, description="extra seeds the best candidate is re-trained on")
    baselines: bool = Field(True, description="train the env's reference reward (and the fitness as reward)")
    max_repairs: int = Field(2, ge=0, le=5, description="times a rejected program goes back to the designer")
    critic_review: bool = Field(False, description="let the LLM review each candidate before training")
    start_from: int | None = Field(
        None,
        ge=1,
        description="a candidate (of one of your runs, of the same env) whose reward program the first iteration "
        "starts from, as its parent: a new run from an earlier one's best",
    )
    continue_from_parent: bool = Field(
        True,
        description="from the second iteration on, a candidate's training starts from its parent's trained policy "
        "(a value warm-up, then PPO) instead of from scratch",
    )
    warm_start_budget: float = Field(
        0.5,
        ge=0.1,
        le=1.0,
        description="share of the task's timesteps a candidate trains when it starts from its parent's policy: 1 "
        "trains it as long as a candidate from scratch; less spends fewer steps on a policy that starts trained "
        "(ROSKA's 'less data'; at 0.5 the task suite kept its wins with 22 % fewer search steps). The task's cap "
        "still counts every training at the full budget",
    )
    trajectory_screen: bool = Field(
        True,
        description="before a candidate trains, its reward is screened on the run's recorded evaluation episodes; "
        "one that ranks them against the fitness, or cannot tell them apart, is not trained",
    )
    train: TrainOptions = Field(default_factory=TrainOptions)


def invalid_input(error: ValidationError, model: type[BaseModel], *, prefix: tuple[str, ...] = ()) -> InvalidInput:
    """The first error of validating ``model`` as InvalidInput naming the field (dotted, under ``prefix``) and what
    is wrong with it; an unknown field lists the ones known at its place."""
    first = error.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    where = ".".join([*prefix, *loc])
    if first.get("type") == "extra_forbidden":
        for part in loc[:-1]:
            annotation = model.model_fields[part].annotation if part in model.model_fields else None
            for inner in (annotation, *get_args(annotation)):  # a group of options, or an optional one
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    model = inner
        known = ", ".join(model.model_fields)
        what = "option" if where.startswith("options.") else "field"
        return InvalidInput(f"unknown {what} {where}; known here: {known}", field=where)
    return InvalidInput(f"{where}: {first.get('msg', 'invalid value')}", field=where)


def parse_options(raw: dict[str, Any] | None) -> TaskOptions:
    """``raw`` as validated options, or InvalidInput naming the option and its bounds."""
    try:
        return TaskOptions.model_validate(raw or {})
    except ValidationError as e:
        raise invalid_input(e, TaskOptions, prefix=("options",)) from None


def options_of(task: Any) -> TaskOptions:
    """A stored task's options (validated when the task was created; older rows get today's defaults)."""
    return TaskOptions.model_validate(task.options or {})
