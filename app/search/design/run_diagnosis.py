"""Diagnostics of a whole search: whether it could tell its candidates apart and learned anything at all.

A training's diagnostics (``app.search.design.reflection``) say what went wrong in one
training; these say what went wrong with the search: every candidate scored the same, the
fitness never rose above where training started, training ended while fitness still rose,
or the rewards were gamed. Each is a ``RunFinding``; they are stored on the run, shown in
``run.json``, the API and the dashboard, and read by the designer. Pure: the rows are read
into ``Scored`` by ``app.search.records.runs``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from app.search.design.diagnostics import Code, RunFinding

REL_NOISE = 0.01
"""Fitness values closer than this share of their magnitude are not told apart, whatever the episodes' spread."""
ABS_NOISE = 1e-6
LEVEL_SHARE = 0.05
"""A last step up bigger than this share of the whole curve's range (and the noise) means it had not levelled off."""


@dataclass(frozen=True)
class Scored:
    """One trained candidate as the run diagnostics see it."""

    id: int
    fitness: float
    std: float = 0.0
    curve: list[float] = field(default_factory=list)
    """Fitness at each checkpoint of its training."""
    hacking: bool = False
    """Its own diagnostics suspected reward hacking."""


def _noise(scored: list[Scored]) -> float:
    """The evaluation noise: the median spread over episodes, or ``REL_NOISE`` of the magnitude if larger."""
    spread = statistics.median(s.std for s in scored)
    scale = max(abs(s.fitness) for s in scored)
    return max(spread, REL_NOISE * scale, ABS_NOISE)


def _g(x: float) -> str:
    return f"{x + 0.0:.4g}"


def diagnose_run(scored: list[Scored], *, best_id: int | None) -> list[RunFinding]:
    """The run's diagnostics from its trained candidates (``best_id``: the run's best). Empty when all is well."""
    if not scored:
        return []
    out: list[RunFinding] = []
    noise = _noise(scored)
    values = [s.fitness for s in scored]
    low, high = min(values), max(values)
    if len(scored) >= 2 and high - low <= noise:
        out.append(
            {
                "code": Code.INDISTINGUISHABLE,
                "message": f"all {len(scored)} candidates scored within the evaluation noise of each other "
                f"(fitness {_g(low)} to {_g(high)}, noise {_g(noise)}): the search could not tell them apart, "
                "so its choice of a best candidate means nothing",
                "numbers": {"candidates": len(scored), "min": low, "max": high, "noise": noise},
                "advice": "check that the fitness varies with the behaviour (a fitness that a standing robot already "
                "scores well on cannot separate rewards); train longer; or try rewards further from the parent",
            }
        )
    starts = [s.curve[0] for s in scored if s.curve]
    if starts:
        start = statistics.median(starts)
        if high <= start + noise:
            out.append(
                {
                    "code": Code.NEVER_ROSE,
                    "message": f"the best fitness ({_g(high)}) never rose above its value at the first checkpoint "
                    f"({_g(start)}, the median over candidates; noise {_g(noise)}): the policies stand still, "
                    "fall, or the budget is too small to learn the task",
                    "numbers": {"best": high, "start": start, "noise": noise},
                    "advice": "raise the timesteps per training; pay for the task's behaviour more than for staying "
                    "alive (an alive bonus can make standing still the best policy); watch the best candidate's video",
                }
            )
    best = next((s for s in scored if s.id == best_id), None) or max(scored, key=lambda s: s.fitness)
    curve = best.curve
    rise = max(noise, LEVEL_SHARE * (max(curve) - min(curve))) if curve else 0.0
    if len(curve) >= 3 and curve[-1] >= max(curve[:-1]) and curve[-1] - curve[-2] > rise:
        out.append(
            {
                "code": Code.BUDGET_TOO_SMALL,
                "message": f"the best candidate's fitness was still rising at its last checkpoint "
                f"({', '.join(_g(x) for x in curve[-3:])}): its training ended before it levelled off",
                "numbers": {"last_checkpoints": curve[-3:], "noise": noise},
                "advice": "raise the timesteps per training (fewer samples or iterations keep the total the same)",
            }
        )
    hacked = [s.id for s in scored if s.hacking]
    if hacked and (best.hacking or len(hacked) * 2 >= len(scored)):
        out.append(
            {
                "code": Code.REWARD_HACKING_SUSPECTED,
                "message": f"{len(hacked)} of {len(scored)} candidates"
                + (" (the best among them)" if best.hacking else "")
                + " earned more reward while their fitness fell: the rewards pay for something other than the task",
                "numbers": {"candidates": hacked, "of": len(scored), "best_hacked": best.hacking},
                "advice": "read those candidates' reflections; drop or cap the terms that grew while the fitness fell",
            }
        )
    return out
