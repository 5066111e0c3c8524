"""What a fitness program measures before anything trains: its values on a few random-policy episodes.

A proposed fitness is shown to a person with these values, so that they see whether it
varies at all (a fitness that gives every episode the same number cannot rank policies)
and whether its sign and scale are what they expect. Random episodes all look alike, so
their spread alone does not say that the fitness tells a behaving policy from another: it is
compared with two deliberate behaviours (standing still: no torque; flailing: full torque,
flipping sign) and with the values' own size, and ``tells_apart`` says yes, no, or that
these episodes cannot tell. Runs inside the sandbox, as a job next to the dry run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from envs import get_spec
from workers.engine.batched import BatchedEnv
from workers.engine.cost import FITNESS_FLOOR_SECONDS, CostBudget
from workers.engine.rollout import episode_fitness, rollout
from workers.program.policy import ProgramRejected, Violation
from workers.program.program import Program, ProgramError, fitness_stats, load_program

MEASURE_SEED_BASE = 7_000_001
"""Random-policy episodes use seeds from here: apart from training and evaluation seeds."""
VARIES_TOLERANCE = 1e-9
"""Values that differ by less than this (relative to their magnitude) count as the same."""
MEANINGFUL_SPREAD = 0.05
"""Values that move by less than this share of their size, across random, still and flailing episodes, cannot show
that the fitness would tell a policy doing the task from one that does not."""
BEHAVIOUR_SEED_OFFSET = 500
"""The still and flailing episodes use seeds apart from the random-policy ones."""


@dataclass
class Measurement:
    """A fitness program's values on random-policy episodes, and whether they vary."""

    episodes: int
    seeds: list[int]
    steps: list[int]
    """Length of each episode (an env that ends on a fall gives short ones)."""
    values: list[float]
    mean: float
    std: float
    min: float
    max: float
    varies: bool
    notes: list[str] = field(default_factory=list)
    behaviours: dict[str, float] = field(default_factory=dict)
    """Its value on one episode of each deliberate behaviour: 'still' (no torque), 'flailing' (full torque)."""
    tells_apart: str = "cannot tell"
    """'yes': different behaviours give clearly different values; 'no': every episode gives the same value;
    'cannot tell': the values move by less than ``MEANINGFUL_SPREAD`` of their size."""
    verdict: str = ""
    """``tells_apart`` as a sentence for a person, with the figures behind it."""

    def to_dict(self) -> dict:
        return asdict(self)


def _random_policy(env: str, count: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    bounds = BatchedEnv(get_spec(env), [seed])
    low, high = bounds.action_low, bounds.action_high
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(low, high, size=(count, low.shape[0]))


def _still_and_flailing(env: str, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Row 0 applies no torque; row 1 full torque on every joint, each joint flipping sign every few steps."""
    bounds = BatchedEnv(get_spec(env), [seed])
    low, high = bounds.action_low, bounds.action_high
    flips = np.random.default_rng(seed).integers(3, 9, size=low.shape[0])
    step = [0]

    def policy(obs: np.ndarray) -> np.ndarray:
        step[0] += 1
        phase = (step[0] // flips) % 2 == 0
        return np.stack([np.clip(np.zeros_like(low), low, high), np.where(phase, high, low)])

    return policy


def judge(values: list[float], behaviours: dict[str, float]) -> tuple[bool, str, str]:
    """(varies, tells_apart, verdict) of a fitness from its random-episode ``values`` and the ``behaviours``'."""
    every = np.asarray(values + list(behaviours.values()), dtype=np.float64)
    size = float(np.max(np.abs(every))) if every.size else 0.0
    spread = float(np.ptp(every)) if every.size else 0.0
    random_spread = float(np.ptp(values)) if values else 0.0
    varies = random_spread > VARIES_TOLERANCE * max(1.0, size)
    shown = ", ".join(f"{name} {v:.4g}" for name, v in behaviours.items())
    if spread <= VARIES_TOLERANCE * max(1.0, size):
        return (
            varies,
            "no",
            (
                f"It gives every episode the same value ({every[0]:.4g}), standing still and flailing included: it "
                "cannot tell a better policy from a worse one."
            ),
        )
    share = spread / size
    figures = (
        f"random episodes {min(values):.4g} to {max(values):.4g}, {shown}: a spread of {spread:.3g}, "
        f"{100 * share:.3g}% of its size"
    )
    if share >= MEANINGFUL_SPREAD:
        return (
            varies,
            "yes",
            f"Different behaviours give clearly different values ({figures}), so it can tell them apart.",
        )
    return (
        varies,
        "cannot tell",
        (
            f"It barely moves between very different behaviours ({figures}). These episodes cannot show that a policy "
            "doing the task would score differently; check that it measures what you asked for."
        ),
    )


def measure_fitness(
    env: str,
    source: str,
    *,
    episodes: int = 5,
    seed: int = 0,
    max_steps: int | None = None,
    cost_ratio: float | None = None,
) -> dict:
    """The values of the fitness program ``source`` on ``episodes`` random-policy episodes of ``env``.

    Raises ``ProgramRejected`` when the program breaks the rules, fails on an episode (with the line), or
    costs more than ``cost_ratio`` times simulating its episodes (None: not enforced).
    """
    program = load_program(source, "fitness")
    seeds = [MEASURE_SEED_BASE + 1000 * seed + i for i in range(episodes)]
    layout, eps = rollout(get_spec(env), _random_policy(env, episodes, seed), seeds, max_steps=max_steps)
    budget = CostBudget("compute_fitness", ratio=cost_ratio or np.inf, floor_seconds=FITNESS_FLOOR_SECONDS)
    try:
        values = episode_fitness(program, layout, eps, budget)
        mean, std = fitness_stats(values)
    except ProgramError as e:
        where = Violation("random-policy episode", e.line or 0, e.column or 1, str(e))
        raise ProgramRejected("measurement on random-policy episodes", [where], "fitness") from None
    behaviours = _behaviours(env, program, seed, max_steps, budget)
    varies, tells_apart, verdict = judge([float(v) for v in values], behaviours)
    arr = np.asarray(values, dtype=np.float64)
    notes = []
    if not varies and arr.size > 1:
        notes.append(
            f"it gives every random-policy episode the same value ({arr[0]:.4g}): it may not be able to tell a "
            "better policy from a worse one"
        )
    return Measurement(
        episodes=len(values),
        seeds=seeds,
        steps=[len(ep.rows) for ep in eps],
        values=[float(v) for v in values],
        mean=mean,
        std=std,
        min=float(np.min(arr)),
        max=float(np.max(arr)),
        varies=bool(varies),
        notes=notes,
        behaviours=behaviours,
        tells_apart=tells_apart,
        verdict=verdict,
    ).to_dict()


def _behaviours(env: str, program: Program, seed: int, max_steps: int | None, budget: CostBudget) -> dict[str, float]:
    """The fitness of one still and one flailing episode (see ``_still_and_flailing``)."""
    seeds = [MEASURE_SEED_BASE + 1000 * seed + BEHAVIOUR_SEED_OFFSET + i for i in range(2)]
    layout, eps = rollout(get_spec(env), _still_and_flailing(env, seed), seeds, max_steps=max_steps)
    try:
        still, flailing = episode_fitness(program, layout, eps, budget)
    except ProgramError as e:
        where = Violation("still or flailing episode", e.line or 0, e.column or 1, str(e))
        raise ProgramRejected("measurement on deliberate behaviours", [where], "fitness") from None
    return {"standing still": float(still), "flailing": float(flailing)}
