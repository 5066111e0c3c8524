"""The trajectory screen (CARD's idea): before a candidate reward trains, does it prefer the recorded episodes that
the fitness prefers?

Runs inside the sandbox: the candidate's ``compute_reward`` is called on the state rows of the run's stored
evaluation episodes (``trajectories.npz``), its return on each is ranked against each episode's fitness (Spearman's
rho), and the verdict says in words which episode the reward wrongly prefers, so that a designer can repair it:
"this reward pays more for the episode that fell over at step 80 than for the one that ran 40.3 m".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from envs import get_spec
from envs.state import build_state
from workers.engine.batched import BatchedEnv
from workers.engine.ranks import spearman
from workers.engine.trajectories import Trajectory, read_trajectories
from workers.program.policy import ProgramRejected
from workers.program.program import Program, ProgramError, call_reward, load_program

MIN_EPISODES = 4
"""Fewer stored episodes than this tell nothing: the screen lets the candidate through."""
PASS_RHO = 0.1
"""On episodes that separate, a reward whose returns rank them with |rho| below this cannot tell them apart."""
Z_ONE_SIDED = 1.645
"""A rank correlation counts when it is beyond this many standard errors (1/sqrt(n-1)) of zero: 5 %, one-sided."""
PARENT_MARGIN = 0.3
"""A candidate that ranks the episodes against the fitness, or at random, is still trained when its rho is within
this of the parent reward's: the parent trained the policy the search builds on, so agreeing with it is no evidence
of a wrong reward. (On hopper_hop_high the unconditional screen refused the parent's own children, which, trained
anyway, beat every candidate the run trained: a reward that pays for staying up ranks early episodes against a
peak-height fitness yet trains a better hopper.)"""
MAX_FILES = 32
"""Trajectory files one screen reads (the run's most recent trainings)."""
REFUSED = "the trajectory screen refused it: "
"""How a screened-out candidate's error begins (a designer reads the rest: which episode it wrongly prefers)."""


class ScreenVerdict(StrEnum):
    """What the screen concluded about one candidate reward."""

    PASS = "pass"
    AGAINST = "ranks_against_fitness"
    FLAT = "cannot_tell_apart"
    INCONCLUSIVE = "inconclusive"
    """Too few stored episodes, or their fitness all alike: nothing to screen on; the candidate trains."""

    @property
    def trains(self) -> bool:
        """Whether a candidate with this verdict goes on to train."""
        return self in (ScreenVerdict.PASS, ScreenVerdict.INCONCLUSIVE)

    @staticmethod
    def trains_on(report: dict) -> bool:
        """Whether a stored verdict (``ScreenReport.to_dict``, or a critic note) lets its candidate train; an unknown
        one does (the screen only ever keeps a candidate from training with a verdict it gives)."""
        try:
            return ScreenVerdict(str(report.get("verdict"))).trains
        except ValueError:
            return True


@dataclass
class ScreenReport:
    """The screen's verdict on one reward, with the numbers behind it and the sentence for the designer."""

    verdict: ScreenVerdict
    text: str
    rho: float | None
    episodes: int
    returns: list[float]
    fitness: list[float]
    parent_rho: float | None = None
    """The parent reward's rho on the same episodes (None: no parent, or it could not rank them)."""

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict.value}


def describe(t: Trajectory, dt: float, x_velocity: np.ndarray, upright: np.ndarray) -> str:
    """What the robot did in an episode, in a few words ("fell over at step 80", "ran 40.3 m in 1,000 steps")."""
    if t.terminated:
        return f"fell over at step {t.steps:,}"
    distance = float(np.sum(x_velocity) * dt * t.stride)
    moved = f"ran {distance:.1f} m" if distance >= 0 else f"went {-distance:.1f} m backwards"
    if float(np.mean(upright < 0.0)) > 0.5:
        return f"spent most of its {t.steps:,} steps on its back ({moved.replace('ran', 'moved')})"
    return f"{moved} in {t.steps:,} steps"


def significant(n: int) -> float:
    """The smallest |rho| over ``n`` episodes that is not chance (``Z_ONE_SIDED`` standard errors)."""
    return max(PASS_RHO, Z_ONE_SIDED / float(np.sqrt(max(1, n - 1))))


def judge(
    returns: list[float],
    fitness: list[float],
    words: list[str],
    reference: list[float] | None = None,
    parent: list[float] | None = None,
) -> ScreenReport:
    """The verdict on a reward whose returns on the recorded episodes are ``returns``, whose fitness is ``fitness``
    and which did what ``words`` say.

    ``reference``: the env's own reward's returns on the same episodes. The episodes separate only where that reward
    ranks them (with or against the fitness) beyond chance: episodes of policies that barely learned differ by noise,
    and a reward ranked on noise is neither refused nor passed (inconclusive, it trains).

    ``parent``: the parent reward's returns on them. A candidate is refused only when it also ranks the episodes
    worse than its parent by ``PARENT_MARGIN``: the screen catches rewards that broke what worked, not the shaping a
    trained reward already had."""
    r, f = np.asarray(returns, dtype=np.float64), np.asarray(fitness, dtype=np.float64)
    n = len(r)
    span = float(np.ptp(f)) if n else 0.0
    if n < MIN_EPISODES or span <= 1e-9 * (1.0 + float(np.max(np.abs(f)))):
        text = (
            f"not screened: {n} recorded episode(s) whose fitness differs too little to rank"
            if n
            else "not screened: no recorded episodes yet"
        )
        return ScreenReport(ScreenVerdict.INCONCLUSIVE, text, None, n, list(returns), list(fitness))
    needed = significant(n)
    rho_ref = spearman(np.asarray(reference, dtype=np.float64), f) if reference is not None else None
    if reference is not None and (rho_ref is None or abs(rho_ref) < needed):
        shown = "cannot rank them" if rho_ref is None else f"ranks them with rho {rho_ref:+.2f}"
        text = (
            f"not screened: the {n} recorded episodes do not separate (the env's own reward {shown}, within chance "
            f"of |rho| {needed:.2f}): their policies differ too little yet"
        )
        return ScreenReport(ScreenVerdict.INCONCLUSIVE, text, None, n, list(returns), list(fitness))
    best, worst = int(np.argmax(f)), int(np.argmin(f))
    flat = float(np.ptp(r)) <= 1e-6 * (1.0 + float(np.max(np.abs(r))))
    rho = None if flat else spearman(r, f)
    rho_parent = spearman(np.asarray(parent, dtype=np.float64), f) if parent is not None else None

    def report(verdict: ScreenVerdict, text: str) -> ScreenReport:
        return ScreenReport(verdict, text, rho, n, list(returns), list(fitness), rho_parent)

    if rho is not None and rho >= PASS_RHO:
        how = "with the fitness" if rho >= needed else "weakly with the fitness"
        text = f"passed: its returns rank the {n} recorded episodes {how} (Spearman's rho {rho:+.2f})"
        return report(ScreenVerdict.PASS, text)
    if rho is not None and rho_parent is not None and rho > rho_parent - PARENT_MARGIN:
        text = (
            f"passed: its returns rank the {n} recorded episodes {'against' if rho <= -needed else 'unlike'} the "
            f"fitness (Spearman's rho {rho:+.2f}), but about as its parent reward does ({rho_parent:+.2f}), which "
            "trained the policy this search builds on: the disagreement is the parent's shaping, not a new fault"
        )
        return report(ScreenVerdict.PASS, text)
    worse = "" if rho_parent is None else f"; its parent reward ranks them with rho {rho_parent:+.2f}"
    if rho is not None and rho <= -needed:
        # the pair the reward gets most wrong: the largest fitness gap the reward ranks the other way
        gaps = (f[:, None] - f[None, :]) * (r[None, :] > r[:, None])
        i, j = np.unravel_index(int(np.argmax(gaps)), gaps.shape)
        text = (
            f"ranks the recorded episodes against the fitness (Spearman's rho {rho:+.2f} over {n} episodes{worse}): "
            f"this reward prefers the episode that {words[j]} (return {r[j]:.4g}, fitness {f[j]:.4g}) to the one "
            f"that {words[i]} (return {r[i]:.4g}, fitness {f[i]:.4g}). Change what it pays for so that the "
            "second scores higher; it was not trained"
        )
        return report(ScreenVerdict.AGAINST, text)
    why = (
        "gives them all nearly the same return" if flat else f"ranks them almost at random (Spearman's rho {rho:+.2f})"
    )
    text = (
        f"cannot tell the recorded episodes apart: over {n} episodes it {why}{worse} "
        f"({float(np.min(r)):.4g} to {float(np.max(r)):.4g}), yet the one that {words[best]} has fitness "
        f"{f[best]:.4g} and the one that {words[worst]} has {f[worst]:.4g}. Make it pay for what the fitness "
        "measures; it was not trained"
    )
    return report(ScreenVerdict.FLAT, text)


def episode_return(program: Program, state: object, actions: np.ndarray, stride: int) -> float:
    """A reward program's return on one recorded episode, whose rows were kept every ``stride`` steps."""
    return float(np.sum(call_reward(program, state, actions)[0])) * stride


def screen_reward(env: str, source: str, paths: list[Path], parent: str | None = None) -> ScreenReport:
    """Load ``source`` and the trajectory files ``paths`` (at most ``MAX_FILES``), and judge the reward on them,
    beside the ``parent`` reward's source where the candidate has one. Runs in the sandbox: the programs are called
    here."""
    spec = get_spec(env)
    program = load_program(source, "reward")
    own = load_program(spec.reference_reward, "reward") if spec.reference_reward else None
    try:
        elder = load_program(parent, "reward") if parent else None
    except ProgramRejected:
        elder = None
    by_parent: list[float] = []
    probe = BatchedEnv(spec, [0], auto_reset=False)
    layout, act_dim = probe.layout, probe.act_dim
    returns: list[float] = []
    reference: list[float] = []
    fitness: list[float] = []
    words: list[str] = []
    for path in paths[:MAX_FILES]:
        for t in read_trajectories(path, layout, act_dim):
            state = build_state(layout, t.rows)
            actions = t.actions.astype(np.float32)
            actions.flags.writeable = False  # as in training
            returns.append(episode_return(program, state, actions, t.stride))
            if own is not None:
                reference.append(episode_return(own, state, actions, t.stride))
            if elder is not None:
                try:
                    by_parent.append(episode_return(elder, state, actions, t.stride))
                except ProgramError:  # the parent trained, so this is rare; without it the screen judges alone
                    elder = None
            fitness.append(t.fitness)
            words.append(describe(t, layout.dt, np.asarray(state.x_velocity), np.asarray(state.upright)))
    return judge(
        returns, fitness, words, reference if own is not None else None, by_parent if elder is not None else None
    )
