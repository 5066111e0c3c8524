"""Diagnostics, named once: the codes, the stored shapes, and the one way to read them from a row.

A training's diagnostics (``app.search.design.reflection``) say what went wrong in it; a run's
(``app.search.design.run_diagnosis``) say what went wrong with the search as a whole. Both are
stored as JSON on their row, ``{"items": [...]}``: a candidate's items are ``Finding``s, a
run's are ``RunFinding``s. The designer's prompt (``prompts/designer_iteration.j2``) is given
``STUCK`` rather than a list of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, NotRequired, Protocol, TypedDict, cast


class Code(StrEnum):
    """Every diagnostic there is: a training's (stored as a candidate's ``kind``) and a run's (its ``code``)."""

    # one training
    CONSTANT = "constant"
    """A reward component that never changed: it carries no learning signal."""
    DOMINANT = "dominant"
    """A component that makes up most of the reward: the others barely matter."""
    REWARD_HACKING = "reward_hacking"
    """The return rose while the fitness fell."""
    FLAT_FITNESS = "flat_fitness"
    EARLY_TERMINATION = "early_termination"
    EVAL_TERMINATION = "eval_termination"
    # one training's learner (``app.search.design.learner``): the reward may be fine
    LEARNER_STALLED = "learner_stalled"
    """The updates hardly moved the policy (approx KL near 0) and the return did not rise."""
    VALUE_NOT_LEARNING = "value_not_learning"
    """The value function predicted the returns worse than their mean late in training (explained variance < 0)."""
    PREMATURE_CONVERGENCE = "premature_convergence"
    """The policy's action spread collapsed early: it stopped exploring."""
    LEARNER_DIVERGED = "learner_diverged"
    """Updates far outside PPO's trust region (approx KL exploding, most samples clipped) or non-finite statistics."""
    # the whole search
    INDISTINGUISHABLE = "candidates_indistinguishable"
    NEVER_ROSE = "fitness_never_rose"
    BUDGET_TOO_SMALL = "budget_too_small"
    REWARD_HACKING_SUSPECTED = "reward_hacking_suspected"
    NEEDS_WARM_START = "needs_warm_start"
    """The best lineage policy (started from its parent's) beat the same reward trained from scratch by far: the reward
    works as a stage of a curriculum, not on its own."""


_CODES = frozenset(Code)
STUCK = frozenset({Code.INDISTINGUISHABLE, Code.NEVER_ROSE})
"""Run diagnostics that mean the search learned nothing: the run's summary leads with them, the offline designer
mutates further from its parent, and the LLM's prompt tells it to stop making small changes."""
LEARNER = frozenset({Code.LEARNER_STALLED, Code.VALUE_NOT_LEARNING, Code.PREMATURE_CONVERGENCE, Code.LEARNER_DIVERGED})
"""A training's diagnostics that blame the learner rather than the reward (``app.search.design.learner.verdict``)."""


class Finding(TypedDict):
    """One diagnostic of a training, as its candidate stores it and the API shows it."""

    kind: Code
    text: str
    """What went wrong and what to change, for a person and the designer."""
    component: NotRequired[str]
    """The reward component it is about (``constant`` and ``dominant``)."""


class RunFinding(TypedDict):
    """One diagnostic of a run, as the run stores it and ``run.json``, the API and the dashboard show it."""

    code: Code
    message: str
    numbers: dict[str, Any]
    """The figures behind the message."""
    advice: str


class HasDiagnostics(Protocol):
    """A ``Candidate`` or a ``Run`` row: its diagnostics column."""

    @property
    def diagnostics(self) -> Mapping[str, Any] | None: ...


def _items(row: HasDiagnostics) -> list[Any]:
    return list((row.diagnostics or {}).get("items") or [])


def findings(candidate: HasDiagnostics) -> list[Finding]:
    """A candidate's diagnostics (none for a row stored before it was trained)."""
    return cast(list[Finding], _items(candidate))


def run_findings(run: HasDiagnostics) -> list[RunFinding]:
    """A run's diagnostics (none before its first iteration closed)."""
    return cast(list[RunFinding], _items(run))


def stored(items: Iterable[Finding] | Iterable[RunFinding]) -> dict[str, Any]:
    """The JSON a row stores its diagnostics as."""
    return {"items": list(items)}


def kinds(candidate: HasDiagnostics) -> set[Code]:
    """The codes of a candidate's diagnostics (an unknown code in an old row is left out)."""
    return {Code(f["kind"]) for f in findings(candidate) if f["kind"] in _CODES}
