"""time_to_fitness's figures: a median time that most seeds never reached is a lower bound, not a number; the
ratios between the sides follow from the medians."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import time_to_fitness as ttf


def run(reach_at: float | None, cap: float = 110.0, steps: int = 330_000) -> dict:
    """A run whose return jumps from 0 to 1,500 at ``reach_at`` seconds (never: None), evaluated every 10 s."""
    curve = [
        [t, int(steps * t / cap), 1500.0 if reach_at is not None and t >= reach_at else 0.0] for t in range(10, 111, 10)
    ]
    return {"curve": curve, "steps": steps, "seconds": cap}


def test_a_median_most_seeds_never_reached_is_reported_as_at_least_the_cap() -> None:
    out = ttf.summarise([run(None), run(60), run(None)], (1000.0,))["time_to"]["1000"]
    assert out["median"] is None and out["median_at_least"] == 110.0 and out["reached"] == "1/3"
    reached = ttf.summarise([run(30), run(20), run(None)], (1000.0,))["time_to"]["1000"]
    assert reached["median"] == 30.0 and reached["median_at_least"] is None  # the seed that never got there is slowest


def test_the_ratios_say_how_much_shorter_and_give_a_bound_where_the_slow_side_never_got_there() -> None:
    ceiling = {"steps_per_second": 20_000.0, "n_envs": 8}
    runs = {
        "sb3": [run(None), run(60), run(None)],
        "engine": [run(40), run(20), run(30)],
        "sb3_same": [run(50), run(60), run(50)],
    }
    ratios = ttf.env_result(runs, ceiling, (1000.0,))["ratios"]
    assert ratios["time_to_threshold_sb3_over_engine"] == {"1000": None}
    assert abs(ratios["time_to_threshold_sb3_over_engine_at_least"]["1000"] - 110 / 30) < 1e-9
    assert ratios["time_to_threshold_sb3_same_over_engine"] == {"1000": 50 / 30}
    assert ratios["engine_over_sb3_same_steps_per_second"] == 1.0  # the same steps in the same seconds
