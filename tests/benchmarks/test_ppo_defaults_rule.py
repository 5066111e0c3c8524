"""ppo_defaults's rule: an alternative replaces an env's defaults only when it is better beyond the seeds' spread on
the late evaluations (not one noisy last one), and not worse by Gymnasium's return beyond the spread."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import ppo_defaults as pd

ENV = "Humanoid-v5"


def run(config: str, seed: int, fitness: list[float], returns: list[float]) -> dict:
    """A 120 s run evaluated every 5 s (24 evaluations): ``fitness`` and ``returns`` per evaluation."""
    curve = [[5.0 * (i + 1), 1000 * (i + 1), f, r] for i, (f, r) in enumerate(zip(fitness, returns, strict=True))]
    return {
        "config": config,
        "seed": seed,
        "curve": curve,
        "steps": 24_000,
        "seconds": 120.0,
        "steps_per_second": 200.0,
    }


def flat(value: float) -> list[float]:
    return [value] * 24


def test_the_late_mean_decides_not_one_noisy_last_evaluation() -> None:
    runs = [
        run("default", 0, [0.5] * 23 + [-0.1], flat(500.0)),  # a bad last evaluation on both seeds
        run("default", 1, [0.5] * 23 + [0.1], flat(500.0)),
        run("narrow", 0, flat(0.4), flat(500.0)),
        run("narrow", 1, flat(0.4), flat(500.0)),
    ]
    out = pd.summarise(ENV, {"default": {}, "narrow": {"log_std_init": -2.0}}, runs)
    assert out["configs"]["narrow"]["final_fitness"]["min"] > out["configs"]["default"]["final_fitness"]["max"]
    assert out["configs"]["default"]["late_fitness"]["min"] == (6 * 0.5 - 0.1) / 7  # the evaluations from 90 s on
    assert out["verdicts"]["narrow"]["better"] is False and out["chosen"] == "default"


def test_better_fitness_with_a_return_worse_beyond_the_spread_is_not_chosen() -> None:
    """A humanoid that falls forward travels farther than one that stays up longer: the fitness says better, the
    return says worse, and the curves choose nothing."""
    runs = [
        run("default", 0, flat(0.3), flat(520.0)),
        run("default", 1, flat(0.4), flat(500.0)),
        run("falls_forward", 0, flat(0.8), flat(400.0)),
        run("falls_forward", 1, flat(0.7), flat(420.0)),
        run("stays_up", 0, flat(0.6), flat(510.0)),
        run("stays_up", 1, flat(0.55), flat(490.0)),
    ]
    configs = {"default": {}, "falls_forward": {"log_std_init": 0.0}, "stays_up": {"net_arch": [64, 64]}}
    out = pd.summarise(ENV, configs, runs)
    falls = out["verdicts"]["falls_forward"]
    assert falls["fitness_beyond_spread"] and falls["return_worse_beyond_spread"] and not falls["better"]
    assert out["verdicts"]["stays_up"]["better"] and out["chosen"] == "stays_up"
