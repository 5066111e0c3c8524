"""What a task will cost: every training its run does (search, screening, baselines, final seeds) and their steps.

The service refuses a task above the caps with these figures, and the dashboard's estimate
shows the same ones, so the number a user sees is the number that is enforced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.search.options import MIN_TIMESTEPS, TaskOptions
from app.search.states import Origin
from envs import get_spec
from envs.fitness import METRICS


def baseline_programs(env: str, fitness_name: str, fitness_source: str | None) -> list[tuple[Origin, str]]:
    """(origin, code) of the baselines of a task: the env's reference reward and the fitness used as reward.

    Only for built-in metrics the reference reward was made for, which have a sparse form.
    """
    spec = get_spec(env)
    metric = METRICS.get(fitness_name)
    if fitness_source or fitness_name not in spec.reference_fitness or metric is None or not metric.sparse_reward:
        return []
    return [(Origin.BASELINE_REFERENCE, spec.reference_reward), (Origin.BASELINE_SPARSE, metric.sparse_reward)]


def screen_steps(timesteps: int, fraction: float) -> int:
    """The budget of a screening training under successive halving."""
    return max(MIN_TIMESTEPS, int(timesteps * fraction))


def kept_after_screening(samples: int) -> int:
    """How many screened candidates continue to the full budget: the better half, rounded up."""
    return math.ceil(samples / 2)


@dataclass(frozen=True)
class Budget:
    """The trainings a run will do at most, and their PPO steps, by purpose."""

    search_trainings: int
    search_steps: int
    search_formula: str
    """How the search's steps add up, in words (iterations × samples × timesteps)."""
    baseline_trainings: int
    baseline_steps: int
    final_trainings: int
    final_steps: int

    @property
    def trainings(self) -> int:
        return self.search_trainings + self.baseline_trainings + self.final_trainings

    @property
    def timesteps(self) -> int:
        return self.search_steps + self.baseline_steps + self.final_steps

    def explain(self) -> str:
        """The sum in words, for error messages and the dashboard."""
        parts = [f"search {self.search_steps:,} = {self.search_formula}"]
        if self.baseline_trainings:
            parts.append(f"{self.baseline_trainings} baselines {self.baseline_steps:,}")
        if self.final_trainings:
            parts.append(f"{self.final_trainings} final seeds {self.final_steps:,}")
        return " + ".join(parts)


def plan(*, iterations: int, samples: int, timesteps: int, options: TaskOptions, baselines: int) -> Budget:
    """The most a run of these settings trains; ``baselines`` is how many baseline programs the task has."""
    if options.successive_halving and samples > 1:
        screen = screen_steps(timesteps, options.screen_fraction)
        kept = kept_after_screening(samples)
        # a continued training resumes from its screening, so it adds only the rest of the budget
        per_iteration = samples * screen + kept * max(0, timesteps - screen)
        trainings = samples + kept
        formula = (
            f"{iterations} iterations × ({samples} screenings × {screen:,} + {kept} continued × "
            f"{max(0, timesteps - screen):,})"
        )
    else:
        per_iteration, trainings = samples * timesteps, samples
        formula = f"{iterations} iterations × {samples} samples × {timesteps:,} steps"
    n_baselines = baselines if options.baselines else 0
    return Budget(
        search_trainings=iterations * trainings,
        search_steps=iterations * per_iteration,
        search_formula=formula,
        baseline_trainings=n_baselines,
        baseline_steps=n_baselines * timesteps,
        final_trainings=options.final_seeds,
        final_steps=options.final_seeds * timesteps,
    )
