"""Reward reflection: turn one training's statistics into diagnostics and the text the designer reads next."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import app.search.design.learner as learner
import app.search.design.verdict as verdict
from app.search.design.diagnostics import Code, Finding
from prompts import render
from workers.engine.result import TrainingResult

CONSTANT_TOLERANCE = 1e-9
DOMINANCE_SHARE = 0.8
EARLY_TERMINATION_SHARE = 0.5
LEARNER_EXPLAINS_FLAT = frozenset({Code.LEARNER_STALLED, Code.LEARNER_DIVERGED})
"""Learner problems that by themselves keep the fitness from changing."""


@dataclass
class Reflection:
    text: str
    diagnostics: list[Finding] = field(default_factory=list)


def fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    x = x + 0.0  # no "-0"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.4g}"


def series(xs: list[float | None]) -> str:
    return "[" + ", ".join(fmt(x) for x in xs) + "]"


def diagnose(result: TrainingResult) -> list[Finding]:
    """Find what commonly goes wrong: dead or dominant components, reward hacking, early terminations, and the
    learner's own problems (``app.search.design.learner``); a fitness that stayed flat because the learner stalled
    or diverged is the learner's finding, not the reward's."""
    found = learner.diagnose_learner(result)
    codes = {f["kind"] for f in found}
    return [
        f for f in _reward_findings(result) if not (f["kind"] == Code.FLAT_FITNESS and codes & LEARNER_EXPLAINS_FLAT)
    ] + found


def _reward_findings(result: TrainingResult) -> list[Finding]:
    """What the reward's statistics say: dead or dominant components, reward hacking, a flat fitness, falls."""
    out: list[Finding] = []
    cps = result.get("checkpoints") or []
    comps = result.get("components") or {}
    for name, series in comps.items():
        stats = [s for s in series if s]
        if not stats:
            continue
        low = min(s["min"] for s in stats)
        high = max(s["max"] for s in stats)
        if high - low <= CONSTANT_TOLERANCE * max(1.0, abs(high)):
            out.append(
                {
                    "kind": Code.CONSTANT,
                    "component": name,
                    "text": f"component '{name}' stayed constant at {fmt(high)} for the whole training: it carries no "
                    "learning signal; remove it or make it depend on the state",
                }
            )
    last = {k: v[-1] for k, v in comps.items() if v and v[-1]}
    if len(last) > 1:
        total = sum(abs(s["mean"]) for s in last.values())
        for name, s in last.items():
            share = abs(s["mean"]) / total if total > 0 else 0.0
            if share > DOMINANCE_SHARE:
                out.append(
                    {
                        "kind": Code.DOMINANT,
                        "component": name,
                        "text": f"component '{name}' makes up {share:.0%} of the reward's magnitude: the other terms "
                        "barely matter; rescale them or it",
                    }
                )
    fit = learner.ends([c.get("fitness") for c in cps])
    ret = learner.ends([c.get("episode_return") for c in cps])
    if ret is None:
        ret = learner.ends([c["reward"]["mean"] if "reward" in c else None for c in cps])
    if fit and ret:
        (f0, f1), (r0, r1) = fit, ret
        if r1 > r0 + 0.05 * max(abs(r0), 1e-6) and f1 < f0 - 0.05 * max(abs(f0), 1e-6):
            out.append(
                {
                    "kind": Code.REWARD_HACKING,
                    "text": f"suspected reward hacking: the return of this reward rose ({fmt(r0)} → {fmt(r1)}) while "
                    f"the fitness fell ({fmt(f0)} → {fmt(f1)}); the policy found a way to collect reward "
                    "without doing the task",
                }
            )
        elif abs(f1 - f0) <= 0.02 * max(abs(f0), abs(f1), 1e-6):
            out.append(
                {
                    "kind": Code.FLAT_FITNESS,
                    "text": f"the fitness hardly changed during training ({fmt(f0)} → {fmt(f1)}): the reward may not "
                    "point towards the task, or its scale is too small to learn from",
                }
            )
    ended = sum(c.get("terminated", 0) for c in cps)
    total_eps = ended + sum(c.get("truncated", 0) for c in cps)
    if total_eps and ended / total_eps > EARLY_TERMINATION_SHARE:
        mean_len = np.mean([c["episode_length"] for c in cps if c.get("episode_length")] or [0])
        out.append(
            {
                "kind": Code.EARLY_TERMINATION,
                "text": f"{ended} of {total_eps} training episodes ended early (the robot became unhealthy) after "
                f"{mean_len:.0f} steps on average: reward staying healthy, or stop paying for what leads to falls",
            }
        )
    eps = result.get("episodes") or []
    early = [e for e in eps if str(e.get("ended", "")).startswith("terminated")]
    if eps and len(early) == len(eps):
        out.append(
            {
                "kind": Code.EVAL_TERMINATION,
                "text": f"every evaluation episode ended early (after {fmt(float(np.mean([e['steps'] for e in eps])))} "
                "steps on average)",
            }
        )
    return out


def reflect(result: TrainingResult, *, fitness_name: str) -> Reflection:
    """The reflection on one training result (see ``workers.engine.train`` for its shape)."""
    cps = result.get("checkpoints") or []
    comps = result.get("components") or {}
    last = {k: v[-1] for k, v in comps.items() if v and v[-1]}
    total = sum(abs(s["mean"]) for s in last.values()) or None
    components = []
    for name, stats in comps.items():
        seen = [s for s in stats if s]
        components.append(
            {
                "name": name,
                "means": [s["mean"] if s else None for s in stats],
                "min": min((s["min"] for s in seen), default=None),
                "max": max((s["max"] for s in seen), default=None),
                "share": abs(last[name]["mean"]) / total if total and name in last else None,
            }
        )
    diagnostics = diagnose(result)
    curves = learner.series(result)
    text = render(
        "reflection",
        timesteps=result.get("timesteps", 0),
        checkpoints=cps,
        fitness_name=fitness_name,
        fitness=result.get("fitness") or {"mean": None, "std": None, "per_episode": []},
        fitness_curve=[c.get("fitness") for c in cps],
        return_curve=[c.get("episode_return") for c in cps],
        env_return_curve=[c.get("episode_env_return") for c in cps],
        length_curve=[c.get("episode_length") for c in cps],
        components=components,
        diagnostics=diagnostics,
        learner=[
            {"name": n, "curve": curves[n], "meaning": learner.STATS[n]} for n in learner.PROMPT_STATS if n in curves
        ],
        verdict=verdict.verdict_text(diagnostics, recorded=bool(curves)),
        episodes=result.get("episodes") or [],
        fmt=fmt,
        series=series,
    )
    return Reflection(text, diagnostics)
