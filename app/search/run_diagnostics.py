"""Diagnostics of a whole run: whether the search could tell its candidates apart and learned anything at all.

Per-candidate diagnostics (``app.search.reflection.diagnose``) say what went wrong in one
training; these say what went wrong with the search: every candidate scored the same, the
fitness never rose above where training started, training ended while fitness still rose,
or the rewards were gamed. Each is ``{code, message, numbers, advice}``; they are stored on
the run, shown in ``run.json``, the API and the dashboard, and read by the designer.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from app.db.models import Candidate, Run
from app.search.states import CandidateStatus, Origin, RunStatus

REL_NOISE = 0.01
"""Fitness values closer than this share of their magnitude are not told apart, whatever the episodes' spread."""
ABS_NOISE = 1e-6
LEVEL_SHARE = 0.05
"""A last step up bigger than this share of the whole curve's range (and the noise) means it had not levelled off."""


class Code(StrEnum):
    INDISTINGUISHABLE = "candidates_indistinguishable"
    NEVER_ROSE = "fitness_never_rose"
    BUDGET_TOO_SMALL = "budget_too_small"
    REWARD_HACKING = "reward_hacking_suspected"


STUCK = frozenset({Code.INDISTINGUISHABLE, Code.NEVER_ROSE})
"""Codes that mean the search learned nothing: the run's summary leads with them."""


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


def diagnose_run(scored: list[Scored], *, best_id: int | None) -> list[dict]:
    """The run's diagnostics from its trained candidates (``best_id``: the run's best). Empty when all is well."""
    if not scored:
        return []
    out: list[dict] = []
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
                "code": Code.REWARD_HACKING,
                "message": f"{len(hacked)} of {len(scored)} candidates"
                + (" (the best among them)" if best.hacking else "")
                + " earned more reward while their fitness fell: the rewards pay for something other than the task",
                "numbers": {"candidates": hacked, "of": len(scored), "best_hacked": best.hacking},
                "advice": "read those candidates' reflections; drop or cap the terms that grew while the fitness fell",
            }
        )
    return out


def scored_of(candidates: Iterable[Candidate]) -> list[Scored]:
    """The designed candidates that were trained and have a fitness (baselines and failures left out)."""
    from app.search.report import describing_training

    out = []
    for c in candidates:
        if Origin(c.origin).is_baseline or c.status != CandidateStatus.TRAINED or c.fitness is None:
            continue
        t = describing_training(c)
        cps = (t.result or {}).get("checkpoints", []) if t is not None else []
        curve = [float(cp["fitness"]) for cp in cps if cp.get("fitness") is not None]
        kinds = {d.get("kind") for d in (c.diagnostics or {}).get("items", [])}
        out.append(Scored(c.id, float(c.fitness), float(c.fitness_std or 0.0), curve, "reward_hacking" in kinds))
    return out


def update_run(run: Run) -> None:
    """Recompute and store the run's diagnostics (when an iteration closes and when the run ends)."""
    run.diagnostics = {"items": diagnose_run(scored_of(run.candidates), best_id=run.best_candidate_id)}


def items_of(run: Run) -> list[dict]:
    return list((run.diagnostics or {}).get("items", []))


def summary(run: Run) -> str:
    """One line on how the run ended; a run that learned nothing says so first, not 'succeeded'."""
    stuck = [d for d in items_of(run) if d.get("code") in STUCK]
    if run.status == RunStatus.SUCCEEDED and stuck:
        return "the search learned nothing: " + "; and ".join(d["message"] for d in stuck)
    if run.status == RunStatus.SUCCEEDED:
        head = f"succeeded, best candidate {run.best_candidate_id}"
        ratio = (run.final or {}).get("yardstick", {}).get("ratio")
        return head + (f" ({ratio:.2f}x the reference reward on fresh seeds)" if isinstance(ratio, float) else "")
    return f"{run.status}" + (f": {run.error}" if run.error else "")
