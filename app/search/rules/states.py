"""The names of the search's states, and the transitions that are legal between them.

Every status, phase, purpose and origin the search stores or compares is one of these
``StrEnum`` members; the database keeps their values as plain strings.
"""

from __future__ import annotations

from enum import StrEnum

from app.errors import Conflict
from workers.sandbox.runner import Outcome


class RunStatus(StrEnum):
    """Where a run is, as the user sees it."""

    QUEUED = "queued"
    WAITING_FITNESS = "waiting_fitness"
    """A fitness was proposed from the task's sentence; a person approves, edits or asks for another."""
    RUNNING = "running"
    WAITING_FEEDBACK = "waiting_feedback"
    """After an iteration: for a person's feedback, or (human selection) for their choices between candidates."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunPhase(StrEnum):
    """Where a running run is inside the search; guards the completion hook."""

    SEARCH = "search"
    FINAL = "final"
    """Re-evaluating the best candidate on more seeds."""
    DONE = "done"


class IterationStatus(StrEnum):
    DESIGNING = "designing"
    SCREENING = "screening"
    """Successive halving: every candidate trains on a fraction of the budget first."""
    TRAINING = "training"
    DONE = "done"


class CandidateStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    TRAINING = "training"
    SCREENED = "screened"
    TRAINED = "trained"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    TIMEOUT = "timeout"
    RESOURCE_LIMIT = "resource_limit"
    CANCELLED = "cancelled"


class TrainingStatus(StrEnum):
    """queued → running → one of the sandbox's outcomes, or cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    OK = Outcome.OK.value
    REJECTED = Outcome.REJECTED.value
    FAILED = Outcome.FAILED.value
    TIMEOUT = Outcome.TIMEOUT.value
    RESOURCE_LIMIT = Outcome.RESOURCE_LIMIT.value
    CANCELLED = "cancelled"


class Purpose(StrEnum):
    """Why a training runs."""

    SCREEN = "screen"
    FULL = "full"
    FINAL = "final"
    BASELINE = "baseline"
    LINEAGE = "lineage"
    """The best candidate's own policy (its ancestors' steps included) evaluated on a fresh seed; it trains no step."""


class Origin(StrEnum):
    """Who wrote a candidate's program."""

    LLM = "llm"
    OFFLINE = "offline"
    REPAIR = "repair"
    CRITIC = "critic"
    BASELINE_REFERENCE = "baseline-reference"
    """The env's own reward, rewritten in the reward contract."""
    BASELINE_SPARSE = "baseline-sparse"
    """The fitness itself used as the reward."""
    PERSON = "person"
    """A person's own program (an edited fitness proposal)."""

    @property
    def is_baseline(self) -> bool:
        return self in (Origin.BASELINE_REFERENCE, Origin.BASELINE_SPARSE)


class ProposalStatus(StrEnum):
    """A proposed fitness program: proposing → proposed (checked) or broken → approved, rejected or replaced."""

    PROPOSING = "proposing"
    PROPOSED = "proposed"
    """It passed the static check, the dry run and the measurement; it waits for a person."""
    BROKEN = "broken"
    """The checks refused it; ``error`` says why."""
    APPROVED = "approved"
    REJECTED = "rejected"
    """A person asked for another proposal instead."""
    REPLACED = "replaced"
    """A person's edited program took its place."""


PROPOSAL_OPEN = frozenset({ProposalStatus.PROPOSED, ProposalStatus.BROKEN})
"""What a person decides on: the run waits for an approval, an edit or a request for another proposal."""


class DesignerKind(StrEnum):
    """Who writes a task's candidates (a task's ``designer``)."""

    LLM = "llm"
    """A chat model behind an OpenAI-compatible endpoint."""
    OFFLINE = "offline"
    """No LLM: evolution over the env's reward terms."""


class Selection(StrEnum):
    """How the search picks the next parent."""

    FITNESS = "fitness"
    """The best fitness so far."""
    HUMAN = "human"
    """A person watches the candidates' videos and chooses; the choices become scores (Bradley–Terry)."""


RUN_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
RUN_ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
"""Work is scheduled or under way: pages that show the run refresh themselves."""
RUN_SETTLED = RUN_TERMINAL | {RunStatus.WAITING_FEEDBACK, RunStatus.WAITING_FITNESS}
"""Nothing happens in the run until someone acts."""
TRAINING_TERMINAL = frozenset(TrainingStatus) - {TrainingStatus.QUEUED, TrainingStatus.RUNNING}
TRAINING_PENDING = frozenset({TrainingStatus.QUEUED, TrainingStatus.RUNNING})
CANDIDATE_ERRORS = frozenset(
    {CandidateStatus.REJECTED, CandidateStatus.FAILED, CandidateStatus.TIMEOUT, CandidateStatus.RESOURCE_LIMIT}
)
"""A candidate that ended with an error the next round's designer should learn from."""

RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.WAITING_FITNESS, RunStatus.CANCELLED, RunStatus.FAILED}),
    # approved (or another proposal asked for): queued again, and started (or proposed) by the same start step
    RunStatus.WAITING_FITNESS: frozenset({RunStatus.QUEUED, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.WAITING_FEEDBACK, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
    ),
    RunStatus.WAITING_FEEDBACK: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    # continued for more iterations (``continue_run``): the feedback given since goes into the next prompt
    RunStatus.SUCCEEDED: frozenset({RunStatus.RUNNING}),
    # resume retries from the last finished iteration, or (no fitness approved yet) waits or proposes again
    RunStatus.FAILED: frozenset({RunStatus.RUNNING, RunStatus.WAITING_FITNESS, RunStatus.QUEUED}),
    RunStatus.CANCELLED: frozenset({RunStatus.RUNNING, RunStatus.WAITING_FITNESS, RunStatus.QUEUED}),
}


class IllegalTransition(Conflict):
    """A state change the run's state machine does not allow (HTTP 409)."""

    def __init__(self, what: str, current: RunStatus, target: RunStatus) -> None:
        allowed = sorted(RUN_TRANSITIONS.get(current, ()))
        hint = f"from '{current}' it can go to: {', '.join(allowed)}" if allowed else f"'{current}' is final"
        super().__init__(f"cannot move {what} from '{current}' to '{target}'; {hint}")
        self.current = current
        self.target = target


def check_transition(what: str, current: RunStatus, target: RunStatus) -> None:
    if target not in RUN_TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(what, current, target)
