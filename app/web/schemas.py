"""Request and response bodies of the REST API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.search.design.verdict import Verdict
from app.search.rules.options import (
    FEEDBACK_CHARS,
    FITNESS_PROGRAM_CHARS,
    NOTE_CHARS,
)
from app.search.rules.states import (
    CandidateStatus,
    Origin,
    ProposalStatus,
    Purpose,
    RunPhase,
    RunStatus,
    Selection,
    TrainingStatus,
)
from app.web.robots import RobotOut


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
    user_robot: bool = False
    """A user's robot (an uploaded MJCF), not one of Gymnasium's envs."""


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
    """The built-in metrics that apply to this env (``envs.fitness.metrics_for``)."""
    reference_reward: str
    robot: RobotOut | None = None
    """For a user robot: its owner, settings, files and what compiling it found."""


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
    selection: Selection
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
    """Trainings the run will do at most (its budget, fixed when the task was made); for an ended run, those it
    did."""
    timesteps_trained: int
    timesteps_total: int = 0
    """Steps the run will train at most; for an ended run, those it trained."""
    elapsed_seconds: float | None = None
    eta_seconds: float | None = None
    """Time left at ``rate`` steps/s; None once the run has ended."""
    rate: float | None = None
    rate_source: str = ""
    """Where ``rate`` comes from: this run's own rate so far, or the trainings of its env measured here."""
    tokens: int | None = None
    """LLM tokens charged so far; None for a run without an LLM designer."""
    cost: float | None = None


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
    summary: str = ""
    """One line on how the run ended; a run whose search learned nothing says so first."""
    diagnostics: list[dict] = []
    """Run diagnostics, each {code, message, numbers, advice} (see app.search.design.run_diagnosis)."""
    selection: Selection = Selection.FITNESS
    proposed_fitness: ProposalOut | None = None
    """The newest fitness proposal (a task whose fitness is 'propose'); all of them: GET /runs/{id}/fitness."""


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
    learner: dict[str, float] | None = None
    """SB3 PPO's statistics over the last window of this training (approx_kl, clip_fraction, explained_variance,
    entropy, std, policy_loss, value_loss, learning_rate; ``updates``: how many policy updates they are means of)."""
    continue_from_parent: bool | None = None
    """The task's continue_from_parent option when the training was made (None: made before the option existed)."""
    warm_start_from_training: int | None = None
    """The parent's training whose policy this one started from (None: from scratch)."""
    warm_start: dict | None = None
    """When it started from the parent's policy: ancestor_timesteps (steps that policy had trained) and
    value_warmup_steps (of its own steps, those that trained the value function alone, the policy frozen)."""


class ScreenOut(BaseModel):
    """The trajectory screen's verdict on a candidate's reward before it trained."""

    verdict: str
    """pass, ranks_against_fitness, cannot_tell_apart (those two are not trained), or inconclusive (too few
    recorded episodes to tell: trained)."""
    text: str
    """Why, in words: which recorded episode the reward prefers to which."""
    rho: float | None
    """Spearman's rank correlation of the reward's returns with the episodes' fitness."""
    parent_rho: float | None = None
    """The parent reward's rho on the same episodes: a candidate is refused only when it ranks them clearly worse."""
    episodes: int


class LineageOut(BaseModel):
    """The PPO steps behind a candidate's policy."""

    steps_own: int
    steps_ancestors: int
    """Steps its ancestors' policies had trained before its own started from them (0: from scratch)."""
    steps_total: int
    started_from: str


class LearnerOut(BaseModel):
    """The learner's statistics over the describing training, and which side its diagnostics point at."""

    timesteps: list[int]
    """The checkpoints' training steps."""
    stats: dict[str, list[float | None]]
    """Each SB3 PPO statistic at each checkpoint (means over the policy updates since the previous one)."""
    verdict: Verdict
    """reward: the learner trained normally, the reward is at fault; learner: the reward may be fine, the learner
    stalled, diverged or stopped exploring; both; none."""
    verdict_text: str


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
    learner: LearnerOut
    episodes: list
    trainings: list[TrainingOut]
    artifacts: list[ArtifactLink]
    feedback: list[FeedbackOut]
    duplicate_of: int | None
    screen: ScreenOut | None = None
    lineage: LineageOut | None = None


class ContinueIn(BaseModel):
    """Continue a run that succeeded for more iterations; the feedback given since it ended goes into the next
    iteration's prompt."""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(1, ge=1, le=50, description="iterations to add")


class NewRunIn(BaseModel):
    """A new run of the same task with these settings changed; its first iteration starts from this run's best."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    iterations: int | None = None
    samples: int | None = None
    timesteps: int | None = None
    seed: int | None = None
    wait_for_feedback: bool | None = None
    options: dict[str, Any] | None = Field(None, description="options to change (merged into the task's)")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


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


class ProposalOut(BaseModel):
    """A proposed fitness program, what it measured on random-policy episodes, and the decision on it."""

    id: int
    status: ProposalStatus
    origin: Origin
    author: str
    name: str
    meaning: str
    source: str | None
    error: str | None
    """Why the checks refused it (status 'broken')."""
    measurement: dict
    """Its values on random-policy episodes (values, mean, std, min, max, varies) and on deliberate behaviours
    (behaviours), with whether it tells them apart (tells_apart: yes, no, cannot tell) and why (verdict)."""
    note: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime | None
    answer: str | None


class FitnessDecision(BaseModel):
    """Exactly one of: approve the proposal as it is, replace it with an edited program, or ask for another."""

    model_config = ConfigDict(extra="forbid")

    approve: bool = False
    source: str | None = Field(None, max_length=FITNESS_PROGRAM_CHARS, description="an edited fitness program")
    repropose: bool = False
    note: str | None = Field(None, max_length=NOTE_CHARS, description="why another proposal (with repropose)")


class ComparedCandidate(BaseModel):
    id: int
    label: str
    """Its round and place ('1.2'), as prompts name it."""
    iteration: int | None
    fitness: float | None
    score: float | None
    """Its Bradley–Terry score from the choices so far (None before any)."""
    incumbent: bool
    """The iteration's parent, compared with the new candidates."""
    video_url: str | None
    video_seconds: float | None = None
    """How long the episode in the video is, simulated seconds (the whole episode; None for older videos)."""


class ComparisonGroup(BaseModel):
    iteration: int
    round: int
    position: int
    candidates: list[ComparedCandidate]


class ChoiceIn(BaseModel):
    """The best of one pending group (or the whole group ranked, best first), with an optional sentence."""

    model_config = ConfigDict(extra="forbid")

    group: list[int] = Field(..., min_length=2, max_length=4, description="the ids of the group, as listed")
    best: int | None = None
    ranking: list[int] | None = Field(None, min_length=2, max_length=4)
    text: str | None = Field(None, max_length=FEEDBACK_CHARS, description="what you saw; the next prompt carries it")
    none_right: bool = Field(
        False, description="none of the group is right: leave out best and ranking, and say why in text"
    )


class ChoiceOut(BaseModel):
    id: int
    iteration: int
    round: int
    position: int
    group: list[int]
    best_id: int
    ranking: list[int]
    ranked: bool
    none_right: bool = False
    text: str | None
    scores: dict[int, float]
    """Bradley–Terry scores of the run's candidates after this choice."""
    chosen_by: str
    created_at: datetime | None


class ComparisonsOut(BaseModel):
    run_id: int
    status: RunStatus
    selection: Selection
    pending: list[ComparisonGroup]
    choices: list[ChoiceOut]
    scores: dict[int, float]
    best_candidate_id: int | None


CandidateOut.model_rebuild()
RunOut.model_rebuild()
