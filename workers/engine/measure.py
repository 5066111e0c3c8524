"""What a fitness program measures before anything trains: its values on a few random-policy episodes.

A proposed fitness is shown to a person with these values, so that they see whether it
varies at all (a fitness that gives every episode the same number cannot rank policies)
and whether its sign and scale are what they expect. Runs inside the sandbox, as a job
next to the dry run.
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
from workers.program.program import ProgramError, fitness_stats, load_program

MEASURE_SEED_BASE = 7_000_001
"""Random-policy episodes use seeds from here: apart from training and evaluation seeds."""
VARIES_TOLERANCE = 1e-9
"""Values that differ by less than this (relative to their magnitude) count as the same."""


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

    def to_dict(self) -> dict:
        return asdict(self)


def _random_policy(env: str, count: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    bounds = BatchedEnv(get_spec(env), [seed])
    low, high = bounds.action_low, bounds.action_high
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(low, high, size=(count, low.shape[0]))


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
    arr = np.asarray(values, dtype=np.float64)
    spread = float(np.ptp(arr)) if arr.size else 0.0
    varies = spread > VARIES_TOLERANCE * max(1.0, float(np.max(np.abs(arr))) if arr.size else 1.0)
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
    ).to_dict()
