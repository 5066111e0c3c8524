"""Request and response bodies of the REST API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import envs
from app.search.options import (
    DESCRIPTION_CHARS,
    FEEDBACK_CHARS,
    FITNESS_PROGRAM_CHARS,
    ITERATIONS,
    MIN_TIMESTEPS,
    SAMPLES,
    SEED,
    TaskOptions,
)
from app.search.states import CandidateStatus, Origin, Purpose, RunPhase, RunStatus, TrainingStatus
from envs.fitness import METRICS


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


Responses = dict[int | str, dict[str, Any]]
"""What FastAPI's ``responses=`` takes: extra answers of a route, by status code, for the OpenAPI document."""

UNAUTHORIZED: Responses = {401: {"model": ErrorOut, "description": "no API token, or an unknown or revoked one"}}
"""Documented on every router whose routes need a user."""


class EnvSummary(BaseModel):
    name: str
    title: str
    summary: str
    planar: bool
    reference_fitness: list[str]


class FieldOut(BaseModel):
    name: str
    shape: str
    unit: str
    meaning: str


class MetricOut(BaseModel):
    name: str
    meaning: str


class EnvDetail(EnvSummary):
    description: str
    """The compact text the designer sees."""
    fields: list[FieldOut]
    action: str
    termination: str
    fitness_metrics: list[MetricOut]
    reference_reward: str


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: str = Field(
        ..., max_length=64, examples=["HalfCheetah-v5"], json_schema_extra={"enum": list[Any](envs.names())}
    )
    description: str = Field(
        ..., min_length=1, max_length=DESCRIPTION_CHARS, examples=["make the cheetah run backwards"]
    )
    fitness: str = Field(
        "forward_distance",
        max_length=FITNESS_PROGRAM_CHARS,
        examples=list(METRICS),
        description="a built-in metric name, or a fitness program defining compute_fitness(traj)",
    )
    designer: Literal["llm", "offline"] | None = None
    iterations: int = Field(3, ge=ITERATIONS[0], le=ITERATIONS[1])
    samples: int = Field(4, ge=SAMPLES[0], le=SAMPLES[1])
    timesteps: int = Field(
        50_000,
        ge=MIN_TIMESTEPS,
        description="PPO steps per training (capped by REWARDSMITH_MAX_TIMESTEPS_PER_TRAINING)",
    )
    seed: int = Field(0, ge=SEED[0], le=SEED[1])
    wait_for_feedback: bool = False
    options: TaskOptions = Field(default_factory=TaskOptions)


class TaskOut(BaseModel):
    id: int
    run_id: int | None
    env: str
    description: str
    fitness: str
    fitness_source: str | None
    designer: str
    iterations: int
    samples: int
    timesteps: int
    seed: int
    wait_for_feedback: bool
    options: dict
    owner: str | None
    status: RunStatus | None
    created_at: datetime


class Progress(BaseModel):
    iteration: int
    """Iterations started so far."""
    iterations: int
    candidates: dict[str, int]
    trainings_done: int
    trainings_total: int
    timesteps_trained: int


class RunOut(BaseModel):
    id: int
    task_id: int
    status: RunStatus
    phase: RunPhase
    error: str | None
    progress: Progress
    best_candidate_id: int | None
    best_fitness: float | None
    designer: str
    usage: dict
    final: dict
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ArtifactLink(BaseModel):
    training_id: int
    purpose: Purpose
    name: str
    url: str


class TrainingOut(BaseModel):
    id: int
    purpose: Purpose
    seed: int
    timesteps: int
    status: TrainingStatus
    attempts: int
    error: str | None
    fitness: dict | None
    progress: dict | None
    steps_per_second: float | None


class CandidateSummary(BaseModel):
    id: int
    run_id: int
    iteration: int | None
    index: int
    origin: Origin
    parent_id: int | None
    status: CandidateStatus
    fitness: float | None
    fitness_std: float | None
    error: str | None


class CandidateOut(CandidateSummary):
    code: str | None
    answer: str | None
    critic: list
    dry_run: dict
    reflection: str | None
    diagnostics: list
    components: dict
    checkpoints: list
    episodes: list
    trainings: list[TrainingOut]
    artifacts: list[ArtifactLink]
    feedback: list[FeedbackOut]
    duplicate_of: int | None


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., min_length=1, max_length=FEEDBACK_CHARS)
    rating: int | None = Field(None, ge=1, le=5)


class FeedbackOut(BaseModel):
    id: int
    candidate_id: int
    text: str
    rating: int | None
    user: str | None
    used_in_iteration: int | None
    created_at: datetime


CandidateOut.model_rebuild()
