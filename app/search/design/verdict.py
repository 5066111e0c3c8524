"""Which side a training's diagnostics point at: the reward, or the learner (``app.search.design.learner``).

The verdict ends the reflection; on a learner problem the designer's prompt adds ``designer_note`` ("the reward may
be fine; the learner ..."), and the offline designer changes only the parent's weights; the API, ``run.json`` and
the dashboard show it beside the learner's statistics (``summary``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from app.search.design.diagnostics import LEARNER, Code, Finding
from app.search.design.learner import UNLESS, WHAT, series
from workers.engine.result import TrainingResult


class Verdict(StrEnum):
    """Which side a training's diagnostics point at (what the designer is told)."""

    REWARD = "reward"
    """The learner trained normally: what went wrong is the reward's."""
    LEARNER = "learner"
    """The reward may be fine; the learner stalled, diverged or stopped exploring."""
    BOTH = "both"
    NONE = "none"
    """Nothing diagnosed (or, without learner statistics, nothing in the reward)."""


KNOWN = frozenset(Code)
STRUCTURAL = frozenset({Code.CONSTANT})
"""Reward findings about the program itself rather than about what a policy did with it."""


def _sides(found: Iterable[Finding]) -> tuple[set[Code], set[Code]]:
    """The learner's problems and the reward's findings that count against it. After a diverged learner, what its
    policy did says nothing about the reward (measured: a policy whose action spread blew up makes the control cost
    'dominant'), so only a finding about the program itself still counts."""
    codes = {Code(f["kind"]) for f in found if f["kind"] in KNOWN}  # an old row may hold a code no longer known
    learner, reward = codes & LEARNER, codes - LEARNER
    if Code.LEARNER_DIVERGED in learner:
        reward &= STRUCTURAL
    return learner, reward


def verdict(found: Iterable[Finding]) -> Verdict:
    """Which side ``found`` points at (without learner statistics, only the reward's findings can count)."""
    learner, reward = _sides(found)
    if learner and reward:
        return Verdict.BOTH
    if learner:
        return Verdict.LEARNER
    return Verdict.REWARD if reward else Verdict.NONE


def learner_codes(found: Iterable[Finding]) -> list[Code]:
    """The learner problems in ``found``, in ``WHAT``'s order."""
    codes = {f["kind"] for f in found}
    return [c for c in WHAT if c in codes]


def verdict_text(found: list[Finding], *, recorded: bool) -> str:
    """The verdict in one sentence, as the reflection ends with it."""
    problems = learner_codes(found)
    what = " and ".join(WHAT[c] for c in problems)
    names = ", ".join(problems)
    reward = sorted(str(c) for c in _sides(found)[1])
    match verdict(found):
        case Verdict.LEARNER:
            return (
                f"a learner problem, not necessarily the reward's: the reward may be fine; the learner {what} "
                f"({names}), so the fitness this training reached says little about the reward"
            )
        case Verdict.BOTH:
            return (
                f"both: the learner {what} ({names}), and the reward's own diagnostics ({', '.join(reward)}) point at "
                "the reward; fix those, and do not read the low fitness as proof that the rest of the reward is wrong"
            )
        case Verdict.REWARD if recorded:
            return (
                "the reward: the learner trained normally (its updates moved the policy without leaving the trust "
                "region, the value function learned, the policy kept exploring), so what went wrong is the reward's"
            )
        case Verdict.REWARD:
            return "the reward, by its own diagnostics (the learner's statistics were not recorded)"
        case _:
            if not recorded:
                return "nothing diagnosed (the learner's statistics were not recorded)"
            return "nothing wrong found: the learner trained normally and the reward's statistics look sound"


def designer_note(found: list[Finding]) -> str | None:
    """What the designer's prompt adds when the parent's training had a learner problem (None otherwise)."""
    problems = learner_codes(found)
    if not problems:
        return None
    what = " and ".join(WHAT[c] for c in problems)
    unless = "; ".join(f"{c}: {UNLESS[c]}" for c in problems if c in UNLESS)
    return (
        f"The reward may be fine; the learner {what} ({', '.join(problems)}). The fitness it reached then measures "
        "the learner more than the reward, and the learner's settings are the task's, not yours. Keep the reward's "
        "structure and the terms that work; do not drop terms or start over because the fitness is low. Change the "
        "reward where its own diagnostics, its components or the episodes show a problem"
        + (f", and where a learner problem can come from the reward after all: {unless}." if unless else ".")
    )


def summary(result: TrainingResult, found: list[Finding]) -> dict[str, Any]:
    """The learner's statistics and the verdict as the API, ``run.json`` and the dashboard show them: ``timesteps``
    of the checkpoints, ``stats`` (each statistic at each checkpoint), ``verdict`` and ``verdict_text``."""
    stats = series(result)
    return {
        "timesteps": [int(c.get("timesteps") or 0) for c in result.get("checkpoints") or []],
        "stats": stats,
        "verdict": verdict(found),
        "verdict_text": verdict_text(found, recorded=bool(stats)),
    }
