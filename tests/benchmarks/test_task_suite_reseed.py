"""More fresh seeds for a stored task-suite result (benchmarks/task_suite_reseed.py): what it trains, how it judges."""

from __future__ import annotations

import pytest

from benchmarks import task_suite, task_suite_reseed

TASK = next(t for t in task_suite.TASKS if t.name == "cheetah_backward")


def test_the_baselines_are_the_programs_the_run_trains() -> None:
    codes = task_suite_reseed.baseline_codes(TASK)
    assert set(codes) == {"reference", "fitness_as_reward"}
    assert "def compute_reward" in codes["reference"] and "x_velocity" in codes["fitness_as_reward"]


def test_added_seeds_join_each_series_and_the_verdicts_follow() -> None:
    row = {
        "task": {"name": TASK.name},
        "fresh_seeds": [1000, 1001, 1002],
        "best": {"mean": 190.0, "per_seed": [200.0, 180.0, 190.0], "selected_on": {"id": 5}},
        "reference": {"mean": -100.0, "per_seed": [-100.0, -90.0, -110.0]},
        "fitness_as_reward": {"mean": 185.0, "per_seed": [190.0, 170.0, 195.0]},
        "better_baseline": 185.0,
        "beats_better_baseline": True,
        "success": True,
    }
    added = {"best": [150.0, None], "reference": [-95.0, -105.0], "fitness_as_reward": [200.0, 190.0]}
    out = task_suite_reseed.rejudge(row, TASK, added, [1003, 1004])
    assert out["fresh_seeds"] == [1000, 1001, 1002, 1003, 1004]
    assert out["best"]["per_seed"] == [200.0, 180.0, 190.0, 150.0, None]  # a failed training stays visible
    assert out["best"]["mean"] == pytest.approx(180.0)  # over the seeds that trained
    assert out["fitness_as_reward"]["mean"] == pytest.approx(189.0)
    assert out["better_baseline"] == pytest.approx(189.0)
    assert not out["beats_better_baseline"] and out["success"]  # 180 below 189; the threshold is 10 m
    assert out["best"]["selected_on"] == {"id": 5} and row["best"]["mean"] == 190.0  # the stored row is left as is
