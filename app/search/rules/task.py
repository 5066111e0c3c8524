"""A task, declared once: ``TaskSpec`` is the API's body, the dashboard form's defaults and the CLI's options.

Bounds that do not depend on the machine (iterations, samples, the seed, every option) are
pydantic constraints on the fields, enforced wherever a ``TaskSpec`` is made; ``columns``
adds the rules that need the settings or the registry (the env, the fitness program, the
designer, the caps on one training and on the whole task) and turns the spec into a task's
column values. ``create_task`` (``app.search.decisions.tasks``), which every entry point
goes through, calls it.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import envs
from app.config import Settings
from app.errors import InvalidInput
from app.search.rules.budget import Budget, baseline_programs, plan
from app.search.rules.fitness import FitnessKind
from app.search.rules.hyperparams import check_rollout
from app.search.rules.options import (
    DESCRIPTION_CHARS,
    FITNESS_PROGRAM_CHARS,
    ITERATIONS,
    MIN_TIMESTEPS,
    SAMPLES,
    SEED,
    TaskOptions,
    invalid_input,
)
from app.search.rules.states import DesignerKind, Selection
from envs.fitness import METRICS, metrics_for
from workers.program.policy import ProgramRejected, check_source


class TaskSpec(BaseModel):
    """What a user asks for. Make one with ``TaskSpec.parse`` from raw values (InvalidInput names the field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str = Field(
        ...,
        max_length=64,
        examples=["HalfCheetah-v5"],
        description=f"a built-in env ({', '.join(envs.names())}) or the name of a user robot you may use "
        "(GET /api/v1/envs lists both)",
    )
    description: str = Field(
        ...,
        max_length=DESCRIPTION_CHARS,
        examples=["make the cheetah run backwards"],
        description="the behaviour in words (an empty one is refused with what to write)",
    )
    fitness: str = Field(
        "forward_distance",
        max_length=FITNESS_PROGRAM_CHARS,
        examples=[*METRICS, FitnessKind.PROPOSE.value],
        description="a built-in metric name, a fitness program defining compute_fitness(traj), or 'propose': the "
        "designer proposes one from the description and the run waits (waiting_fitness) for a person to approve it",
    )
    designer: DesignerKind | None = Field(None, description="llm or offline (default: llm when one is configured)")
    iterations: int = Field(3, ge=ITERATIONS[0], le=ITERATIONS[1], description="rounds of design, training, reflection")
    samples: int = Field(4, ge=SAMPLES[0], le=SAMPLES[1], description="candidates per round (K)")
    timesteps: int = Field(
        50_000,
        ge=MIN_TIMESTEPS,
        description="PPO steps per training (capped by REWARDSMITH_MAX_TIMESTEPS_PER_TRAINING)",
    )
    seed: int = Field(0, ge=SEED[0], le=SEED[1])
    wait_for_feedback: bool = Field(False, description="after each iteration, wait for a person's feedback")
    options: TaskOptions = Field(default_factory=TaskOptions)
    selection: Selection = Field(
        Selection.FITNESS,
        description="'human': after each iteration the run waits while a person chooses between the candidates' "
        "videos (GET /runs/{id}/comparisons, POST /runs/{id}/choices); their choices pick the next parent",
    )

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> TaskSpec:
        """``raw`` as a spec, or InvalidInput naming the first field that is wrong and why."""
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            raise invalid_input(e, cls) from None

    @classmethod
    def of_task(cls, task: StoredTask, **changes: Any) -> TaskSpec:
        """The spec of a stored task (its fitness as the user gave it), with ``changes``."""
        raw = {name: getattr(task, name) for name in cls.model_fields if name != "fitness"}
        return cls.parse(raw | {"fitness": task.fitness_source or task.fitness_name} | changes)


class StoredTask(Protocol):
    """A ``Task`` row as far as its spec goes."""

    @property
    def env(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def fitness_name(self) -> str: ...
    @property
    def fitness_source(self) -> str | None: ...
    @property
    def designer(self) -> str: ...
    @property
    def iterations(self) -> int: ...
    @property
    def samples(self) -> int: ...
    @property
    def timesteps(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def wait_for_feedback(self) -> bool: ...
    @property
    def options(self) -> dict[str, Any]: ...
    @property
    def selection(self) -> str: ...


def default(name: str) -> Any:
    """The default of the spec's field ``name``, or of an option (``options.final_seeds``,
    ``options.train.eval_episodes``): the dashboard form and the CLI start from these."""
    model: type[BaseModel] = TaskSpec
    *path, last = name.split(".")
    for part in path:
        inner = model.model_fields[part].annotation
        assert isinstance(inner, type) and issubclass(inner, BaseModel), f"{part} is not a group of options"
        model = inner
    return model.model_fields[last].get_default(call_default_factory=True)


def resolve_designer(requested: DesignerKind | None, settings: Settings) -> DesignerKind:
    """The designer a task gets: the one it asked for (the LLM only when one is configured), else the LLM if
    configured, else the offline designer."""
    if requested is None:
        return DesignerKind.LLM if settings.llm_configured else DesignerKind.OFFLINE
    if requested == DesignerKind.LLM and not settings.llm_configured:
        raise InvalidInput(
            "designer 'llm' needs an LLM: set REWARDSMITH_LLM_MODEL and OPENAI_BASE_URL (or OPENAI_API_KEY), "
            "or choose designer 'offline'",
            field="designer",
        )
    return requested


def fitness_columns(spec: TaskSpec) -> tuple[str, str | None]:
    """(fitness_name, fitness_source) of the task: a built-in metric, a checked fitness program, or 'propose' (a
    program proposed from the description, which a person approves before the search starts)."""
    fitness = spec.fitness.strip()
    if fitness in METRICS or fitness == FitnessKind.PROPOSE:
        return fitness, None
    if "def compute_fitness" in fitness:
        try:
            check_source(fitness, "fitness")
        except ProgramRejected as e:
            raise InvalidInput(str(e), field="fitness") from None
        return FitnessKind.CUSTOM, fitness
    raise InvalidInput(
        f"unknown fitness '{fitness[:60]}': give a built-in metric ({', '.join(METRICS)}), a fitness program "
        f"defining compute_fitness(traj), or '{FitnessKind.PROPOSE}' to have one proposed from the description",
        field="fitness",
    )


def task_budget(spec: TaskSpec, settings: Settings) -> Budget:
    """Every training the task's run would do and their steps; InvalidInput for an unknown env, PPO settings whose
    rollout does not fit the env's defaults, a training above the settings' cap or a fitness that is not one."""
    try:
        env = envs.get_spec(spec.env)
    except envs.UnknownEnvError as e:
        raise InvalidInput(str(e), field="env") from None
    check_rollout(spec.options.train.ppo, env.ppo, env=env.name)
    most = settings.max_timesteps_per_training
    if spec.timesteps > most:
        raise InvalidInput(
            f"timesteps must be an integer from {MIN_TIMESTEPS:,} to {most:,}, got {spec.timesteps}", field="timesteps"
        )
    name, source = fitness_columns(spec)
    if source is None and name in METRICS and not METRICS[name].applies_to(env):
        offered = ", ".join(m.name for m in metrics_for(env))
        raise InvalidInput(
            f"the fitness metric '{name}' reads bodies that {env.name} lacks ({', '.join(METRICS[name].bodies)}); "
            f"choose one of {env.name}'s metrics ({offered}), write a fitness program, or '{FitnessKind.PROPOSE}'",
            field="fitness",
        )
    return plan(
        iterations=spec.iterations,
        samples=spec.samples,
        timesteps=spec.timesteps,
        options=spec.options,
        baselines=len(baseline_programs(env.name, name, source)),
    )


def columns(spec: TaskSpec, settings: Settings) -> dict[str, Any]:
    """The task's column values, or InvalidInput naming the field and what to do."""
    description = spec.description.strip()
    if not description:
        raise InvalidInput(
            "describe the behaviour in words, e.g. 'make the cheetah run backwards'", field="description"
        )
    budget = task_budget(spec, settings)
    if budget.timesteps > settings.max_task_timesteps:
        raise InvalidInput(
            f"this task would train {budget.timesteps:,} steps ({budget.explain()}), above the cap of "
            f"{settings.max_task_timesteps:,} (REWARDSMITH_MAX_TASK_TIMESTEPS); lower the iterations, samples, "
            "timesteps or final seeds, or turn baselines off",
            field="timesteps",
        )
    fitness_name, fitness_source = fitness_columns(spec)
    options = spec.options
    if spec.selection == Selection.HUMAN and not options.train.video:  # a person chooses by watching videos
        options = options.model_copy(update={"train": options.train.model_copy(update={"video": True})})
    return {
        "env": spec.env,
        "description": description,
        "fitness_name": fitness_name,
        "fitness_source": fitness_source,
        "designer": resolve_designer(spec.designer, settings),
        "iterations": spec.iterations,
        "samples": spec.samples,
        "timesteps": spec.timesteps,
        "seed": spec.seed,
        "wait_for_feedback": spec.wait_for_feedback,
        "options": options.model_dump(mode="json"),
        "selection": spec.selection,
    }
