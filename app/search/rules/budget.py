"""What a task will cost: every training its run does (search, screening, baselines, final seeds) and their steps.

The service refuses a task above the caps with these figures, and the dashboard's estimate
shows the same ones, so the number a user sees is the number that is enforced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.search.rules.fitness_terms import read_fitness, signal_reward
from app.search.rules.options import MIN_TIMESTEPS, TaskOptions
from app.search.rules.states import Origin
from envs import get_spec
from envs.fitness import METRICS


def baseline_programs(env: str, fitness_name: str, fitness_source: str | None) -> list[tuple[Origin, str]]:
    """(origin, code) of the baselines of a task: the env's reference reward (the yardstick of every task) and,
    where the fitness has a per-step form, the fitness used as reward.

    A built-in metric brings its own per-step form; a fitness program's is read from its source
    (``app.search.rules.fitness_terms``), and a program without one gets the reference alone.
    """
    spec = get_spec(env)
    metric = None if fitness_source else METRICS.get(fitness_name)
    out = [(Origin.BASELINE_REFERENCE, spec.reference_reward)]
    if metric is not None and metric.sparse_reward:
        out.append((Origin.BASELINE_SPARSE, metric.sparse_reward))
    elif fitness_source:
        signal = read_fitness(fitness_source, {f.name for f in spec.fields()}).signal
        if signal:
            out.append((Origin.BASELINE_SPARSE, signal_reward(signal)))
    return out


def final_programs(options: TaskOptions, baselines: int) -> int:
    """Programs re-trained on each final seed: the best candidate and, with baselines, the reference reward
    (the yardstick is measured on seeds neither was selected on)."""
    return 2 if options.baselines and baselines else 1


def screen_steps(timesteps: int, fraction: float) -> int:
    """The budget of a screening training under successive halving."""
    return max(MIN_TIMESTEPS, int(timesteps * fraction))


def added_steps(timesteps: int, options: TaskOptions, warm: bool) -> int:
    """The full budget of a candidate's training: the task's ``timesteps``, or its ``warm_start_budget`` share when
    the training starts from the parent's policy (``warm``)."""
    if not warm or not options.continue_from_parent:
        return timesteps
    return max(MIN_TIMESTEPS, min(timesteps, int(timesteps * options.warm_start_budget)))


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
    final_programs: int = 1
    """Programs re-trained on each final seed: the best, and the reference reward when baselines are on."""
    lineage_trainings: int = 0
    """The reference's baseline policy trained on to the best lineage's total steps, one per final seed."""
    lineage_steps: int = 0
    """At most: the steps a lineage can have beyond one training's, on each final seed."""

    @property
    def trainings(self) -> int:
        return self.search_trainings + self.baseline_trainings + self.final_trainings + self.lineage_trainings

    @property
    def timesteps(self) -> int:
        return self.search_steps + self.baseline_steps + self.final_steps + self.lineage_steps

    def explain(self) -> str:
        """The sum in words, for error messages and the dashboard."""
        parts = [f"search {self.search_steps:,} = {self.search_formula}"]
        if self.baseline_trainings:
            parts.append(f"{self.baseline_trainings} baselines {self.baseline_steps:,}")
        if self.final_trainings:
            seeds = self.final_trainings // max(1, self.final_programs)
            both = " × 2 (best and reference)" if self.final_programs == 2 else ""
            parts.append(f"{seeds} final {'seed' if seeds == 1 else 'seeds'}{both} {self.final_steps:,}")
        if self.lineage_trainings:
            parts.append(f"reference to the lineage's steps at most {self.lineage_steps:,}")
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
    programs = final_programs(options, baselines)
    finals = options.final_seeds * programs
    # a lineage of warm starts can reach iterations × timesteps; the reference is trained on to match it
    lineage = options.final_seeds if programs == 2 and options.continue_from_parent and iterations > 1 else 0
    return Budget(
        search_trainings=iterations * trainings,
        search_steps=iterations * per_iteration,
        search_formula=formula,
        baseline_trainings=n_baselines,
        baseline_steps=n_baselines * timesteps,
        final_trainings=finals,
        final_steps=finals * timesteps,
        final_programs=programs,
        lineage_trainings=lineage,
        lineage_steps=lineage * (iterations - 1) * added_steps(timesteps, options, warm=True),
    )
