"""Run and training states, and the transitions that are legal between them."""

from __future__ import annotations

from app.errors import Conflict

RUN_STATUSES = ("queued", "running", "waiting_feedback", "succeeded", "failed", "cancelled")
RUN_TERMINAL = {"succeeded", "failed", "cancelled"}

RUN_TRANSITIONS: dict[str, set[str]] = {
    "queued": {"running", "cancelled", "failed"},
    "running": {"waiting_feedback", "succeeded", "failed", "cancelled"},
    "waiting_feedback": {"running", "cancelled", "failed"},
    "succeeded": set(),
    "failed": {"running"},  # resume retries from the last finished iteration
    "cancelled": {"running"},  # resume continues where it stopped
}

TRAINING_TERMINAL = {"ok", "rejected", "failed", "timeout", "resource_limit", "cancelled"}
CANDIDATE_TERMINAL = {"trained", "rejected", "duplicate", "failed", "timeout", "resource_limit", "cancelled"}


class IllegalTransition(Conflict):
    """A state change the run's state machine does not allow (HTTP 409)."""

    def __init__(self, what: str, current: str, target: str) -> None:
        allowed = sorted(RUN_TRANSITIONS.get(current, ()))
        hint = f"from '{current}' it can go to: {', '.join(allowed)}" if allowed else f"'{current}' is final"
        super().__init__(f"cannot move {what} from '{current}' to '{target}'; {hint}")
        self.current = current
        self.target = target


def check_transition(what: str, current: str, target: str) -> None:
    if target not in RUN_TRANSITIONS.get(current, set()):
        raise IllegalTransition(what, current, target)
