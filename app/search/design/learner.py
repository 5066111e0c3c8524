"""The learner's side of a training: SB3 PPO's own statistics, what they say, and which side a problem is on.

A training can end badly because the reward is wrong, or because the learner did not learn from it: updates that
hardly move the policy, a value function that predicts nothing, a policy that stops exploring early, updates far
outside PPO's trust region. ``diagnose_learner`` finds those in the checkpoints' ``learner`` statistics
(``workers.engine.result.LearnerStats``, means over the policy updates of each window); ``app.search.design.verdict``
says which side a training's findings point at. Thresholds follow SB3 and RL Zoo practice and what the engine
measured; each says where it comes from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from app.search.design.diagnostics import Code, Finding
from workers.engine.result import Checkpoint, TrainingResult

STATS: dict[str, str] = {
    "approx_kl": "how far each update moved the policy",
    "clip_fraction": "share of samples whose update PPO clipped",
    "explained_variance": "how well the value function predicts the returns: 1 perfectly, below 0 worse than their mean",
    "entropy": "of the action distribution: how much the policy still explores",
    "std": "standard deviation of the actions",
    "policy_loss": "PPO's clipped surrogate loss",
    "value_loss": "the value function's error",
    "learning_rate": "the learning rate the updates used",
}
"""The learner statistics a checkpoint holds, in the order pages and prompts show them, with what each means."""
PROMPT_STATS = ("approx_kl", "clip_fraction", "explained_variance", "entropy", "std")
"""The ones the designer reads (the losses' scale depends on the reward's normalisation and says little to it)."""

STALLED_KL = 1e-4
"""Mean approx KL per update below this: the updates hardly move the policy. Healthy SB3 PPO updates on MuJoCo move
it by about 1e-3 to 2e-2 (Spinning Up's target_kl is 0.01, RL Zoo's configs that set one use 0.01–0.05). Measured
here, 50k steps with the envs' defaults: HalfCheetah 0.013–0.024, Hopper 0.008–0.016; HalfCheetah with 4 envs x 256
steps and 4 epochs: 0.002–0.006 at learning rate 3e-4, under 1e-5 at 1e-5 and 1e-7."""
RISE_SHARE = 0.25
"""With updates that small, a return that rose by less than this share of its magnitude did not really rise: an
unchanging policy's return drifts by 10–15 % between windows (measured at learning rate 1e-5: -34 → -30)."""
DIVERGED_KL = 0.1
"""Approx KL above this in any window: an update left PPO's trust region by far (ten times the usual target_kl of
0.01, which SB3 would stop at 1.5x); measured here at learning rate 0.05: 1 to 235."""
DIVERGED_CLIP = 0.5
"""More than half of the samples clipped in a window. Healthy PPO clips about 0.02–0.3 (measured with the defaults:
HalfCheetah 0.19–0.26, Hopper 0.09–0.16; at ten times SB3's learning rate, still learning: 0.26–0.32); at learning
rate 0.05: 0.7–0.93. With a ``lin_`` clip range, which shrinks towards 0, only the first half of training is
judged."""
LATE_SHARE = 1 / 3
"""'Late in training': the last third of the checkpoints ..."""
VALUE_MIN_UPDATES = 10
"""... of a training of at least this many policy updates: the value function starts out predicting nothing
(explained variance measured at the first checkpoints: -0.2 to -1.8), and crossed 0 after 2 updates with
HalfCheetah's defaults, after 12 with 4 envs x 256 steps; a training of a few updates has no 'late'."""
COLLAPSE_SHARE = 0.25
"""The action standard deviation fell below this share of its initial value (exp(log_std_init)) ..."""
EARLY_SHARE = 0.5
"""... within this share of the training: the policy stopped exploring before it could find much."""
MIN_CHECKPOINTS = 3
"""Trends need at least this many checkpoints with learner statistics."""


WHAT: dict[Code, str] = {
    Code.LEARNER_STALLED: "stalled",
    Code.VALUE_NOT_LEARNING: "did not learn a value function",
    Code.PREMATURE_CONVERGENCE: "stopped exploring early",
    Code.LEARNER_DIVERGED: "diverged",
}
UNLESS: dict[Code, str] = {
    Code.VALUE_NOT_LEARNING: "a reward that pays for something the policy cannot observe (an absolute x or y position, "
    "which the locomotion envs leave out of the observation) or that is very noisy; pay for velocities and states "
    "the robot sees",
    Code.PREMATURE_CONVERGENCE: "a reward that pays so well for something easy (staying alive, a constant bonus) "
    "that exploring does not pay; make the task's term worth more than merely surviving",
    Code.LEARNER_DIVERGED: "a reward with rare huge values; keep every term bounded (clip it, or squash it with tanh)",
}
"""What a learner problem can mean for the reward after all (a stall has no such cause: the updates are normalised,
so only their size, the learning rate's, can make them vanish)."""


def values(cps: list[Checkpoint], name: str) -> list[float | None]:
    """Statistic ``name`` at each checkpoint (None where it was not recorded or is not a finite number)."""
    out: list[float | None] = []
    for c in cps:
        v = (c.get("learner") or {}).get(name)
        out.append(float(v) if isinstance(v, int | float) and math.isfinite(v) else None)
    return out


def series(result: TrainingResult) -> dict[str, list[float | None]]:
    """Every learner statistic recorded in ``result``, at each checkpoint, in ``STATS``'s order."""
    cps = result.get("checkpoints") or []
    out = {name: values(cps, name) for name in STATS}
    return {name: vs for name, vs in out.items() if any(v is not None for v in vs)}


def final(result: TrainingResult) -> dict[str, Any] | None:
    """The learner's statistics at the training's last checkpoint that has them (None before any)."""
    return next((dict(c["learner"]) for c in reversed(result.get("checkpoints") or []) if c.get("learner")), None)


def ends(xs: Iterable[float | None]) -> tuple[float, float] | None:
    """Means of the first and the last third of the known values (None for fewer than three)."""
    vals = [x for x in xs if x is not None]
    if len(vals) < 3:
        return None
    k = max(1, len(vals) // 3)
    return sum(vals[:k]) / k, sum(vals[-k:]) / k


def _g(x: float) -> str:
    return f"{x + 0.0:.3g}"


def _returns(cps: list[Checkpoint]) -> tuple[float, float] | None:
    ret = ends(c.get("episode_return") for c in cps)
    return ret if ret is not None else ends(c["reward"]["mean"] if c.get("reward") else None for c in cps)


def _non_finite(cps: list[Checkpoint]) -> list[str]:
    bad = {k for c in cps for k, v in (c.get("learner") or {}).items() if isinstance(v, float) and not math.isfinite(v)}
    return sorted(bad)


def _diverged(result: TrainingResult, cps: list[Checkpoint]) -> Finding | None:
    bad = _non_finite(cps)
    if bad:
        return {
            "kind": Code.LEARNER_DIVERGED,
            "text": f"the learner diverged: its {', '.join(bad)} became NaN or infinite, so the policy it left says "
            "nothing about the reward. The reward may be fine; the learner's updates blew up (a lower learning "
            "rate, a smaller max_grad_norm) — " + f"unless it is {UNLESS[Code.LEARNER_DIVERGED]}",
        }
    kl = [v for v in values(cps, "approx_kl") if v is not None]
    total = max(1, int(result.get("timesteps") or 0))
    scheduled = isinstance((result.get("ppo") or {}).get("clip_range"), str)
    clip = [
        v
        for c, v in zip(cps, values(cps, "clip_fraction"), strict=True)
        if v is not None and not (scheduled and int(c.get("timesteps") or 0) > total * 0.5)
    ]
    peak_kl, peak_clip = max(kl, default=0.0), max(clip, default=0.0)
    if peak_kl <= DIVERGED_KL and peak_clip <= DIVERGED_CLIP:
        return None
    return {
        "kind": Code.LEARNER_DIVERGED,
        "text": f"the learner diverged: approx_kl reached {_g(peak_kl)} (healthy updates stay below about 0.02; "
        f"alarm above {DIVERGED_KL:g}) and up to {peak_clip:.0%} of the samples were clipped: each update moved the "
        "policy far outside PPO's trust region, so what it learned says little about the reward. The reward may be "
        "fine; the learner's steps are too large (lower the learning_rate or use lin_<rate>, fewer n_epochs, or set "
        f"target_kl 0.01–0.02) — unless it is {UNLESS[Code.LEARNER_DIVERGED]}",
    }


def _stalled(cps: list[Checkpoint]) -> Finding | None:
    kl = [v for v in values(cps, "approx_kl") if v is not None]
    ret = _returns(cps)
    if len(kl) < MIN_CHECKPOINTS or ret is None:
        return None
    mean_kl = sum(kl) / len(kl)
    r0, r1 = ret
    if mean_kl >= STALLED_KL or r1 - r0 > RISE_SHARE * max(abs(r0), abs(r1), 1e-6):
        return None
    lr = values(cps, "learning_rate")[-1]
    return {
        "kind": Code.LEARNER_STALLED,
        "text": f"the learner stalled: approx_kl averaged {_g(mean_kl)} per update (healthy updates move the policy "
        f"by about 1e-3 to 2e-2) and the return did not rise ({_g(r0)} → {_g(r1)}): the policy hardly changed, so "
        "this reward was never really tried. The reward may be fine; the learner barely learned"
        + (f" (learning rate {_g(lr)} at the end)" if lr is not None else "")
        + " — suspect a learning rate too small for the budget before the reward",
    }


def _value_not_learning(cps: list[Checkpoint]) -> Finding | None:
    ev = [v for v in values(cps, "explained_variance") if v is not None]
    updates = sum(int((c.get("learner") or {}).get("updates") or 0) for c in cps)
    if len(ev) < MIN_CHECKPOINTS or updates < VALUE_MIN_UPDATES:
        return None
    late = ev[-max(1, round(len(ev) * LATE_SHARE)) :]
    mean = sum(late) / len(late)
    if mean >= 0.0:
        return None
    return {
        "kind": Code.VALUE_NOT_LEARNING,
        "text": f"the value function did not learn: its explained variance was {_g(mean)} over the last third of "
        "training (1 predicts the returns perfectly, below 0 is worse than predicting their mean), so the advantages "
        "PPO followed were mostly noise. The reward may be fine; the learner needs more steps or a larger vf_coef "
        f"— or it is {UNLESS[Code.VALUE_NOT_LEARNING]}",
    }


def _premature(result: TrainingResult, cps: list[Checkpoint]) -> Finding | None:
    std = values(cps, "std")
    known = [(c, s) for c, s in zip(cps, std, strict=True) if s is not None]
    if len(known) < MIN_CHECKPOINTS:
        return None
    start = int(result.get("resumed_from_timesteps") or 0)
    log_std = (result.get("ppo") or {}).get("log_std_init")
    initial = math.exp(log_std) if isinstance(log_std, int | float) and not start else known[0][1]
    end = int(result.get("timesteps") or int(known[-1][0].get("timesteps") or 0))
    early = start + EARLY_SHARE * (end - start)
    for c, s in known:
        step = int(c.get("timesteps") or 0)
        if step <= early and s < COLLAPSE_SHARE * initial:
            return {
                "kind": Code.PREMATURE_CONVERGENCE,
                "text": f"the policy stopped exploring early: the spread of its actions (std) fell from {_g(initial)} "
                f"to {_g(s)} by step {step:,}, {(step - start) / max(1, end - start):.0%} of the training, so PPO "
                "settled on the first behaviour it found. The reward may be fine; the learner converged prematurely "
                "(ent_coef 0.001–0.01 or a higher log_std_init keep it exploring) — unless it is "
                f"{UNLESS[Code.PREMATURE_CONVERGENCE]}",
            }
    return None


def diagnose_learner(result: TrainingResult) -> list[Finding]:
    """What went wrong with the learner itself, from the checkpoints' learner statistics (none when not recorded)."""
    cps = [c for c in result.get("checkpoints") or [] if c.get("learner")]
    if not cps:
        return []
    diverged = _diverged(result, cps)
    found = [diverged] if diverged else [f for f in (_stalled(cps),) if f]
    found += [f for f in (_value_not_learning(cps), _premature(result, cps)) if f]
    return found
