"""A fitness program measured on random-policy episodes, in this process and as a sandbox job."""

from __future__ import annotations

import pytest

from envs.fitness import METRICS
from workers.engine.evaluate import sandbox_measure
from workers.engine.measure import measure_fitness
from workers.program.policy import ProgramRejected
from workers.sandbox.runner import Limits, Outcome

CONSTANT = "def compute_fitness(traj):\n    return 1.0\n"


def test_the_same_episodes_give_backward_distance_as_minus_forward_distance() -> None:
    forward = measure_fitness("HalfCheetah-v5", METRICS["forward_distance"].source, episodes=3, max_steps=50)
    backward = measure_fitness("HalfCheetah-v5", METRICS["backward_distance"].source, episodes=3, max_steps=50)
    assert forward["seeds"] == backward["seeds"] and forward["steps"] == [50, 50, 50]
    assert backward["values"] == pytest.approx([-v for v in forward["values"]])
    assert backward["varies"] and backward["notes"] == []
    assert backward["min"] <= backward["mean"] <= backward["max"]
    other_seed = measure_fitness("HalfCheetah-v5", METRICS["forward_distance"].source, episodes=3, max_steps=50, seed=1)
    assert other_seed["values"] != forward["values"]


def test_a_fitness_that_never_varies_says_so() -> None:
    m = measure_fitness("Hopper-v5", CONSTANT, episodes=3, max_steps=20)
    assert m["values"] == [1.0, 1.0, 1.0] and m["varies"] is False
    assert "the same value (1)" in m["notes"][0]


def test_a_fitness_that_fails_on_an_episode_is_rejected_with_its_line() -> None:
    source = "import numpy as np\n\ndef compute_fitness(traj):\n    return float(traj.z_position[5000])\n"
    with pytest.raises(ProgramRejected) as e:
        measure_fitness("Hopper-v5", source, episodes=2, max_steps=20)
    assert "measurement on random-policy episodes" in str(e.value) and "line 4" in str(e.value)


def test_the_sandbox_job_dry_runs_then_measures() -> None:
    limits = Limits(wall_seconds=120)
    ok = sandbox_measure("HalfCheetah-v5", METRICS["max_height"].source, limits, episodes=2, max_steps=30)
    assert ok.outcome == Outcome.OK, ok.error
    assert ok.payload["report"]["kind"] == "fitness" and len(ok.payload["measurement"]["values"]) == 2
    refused = sandbox_measure("HalfCheetah-v5", "import os\ndef compute_fitness(traj):\n    return 0.0\n", limits)
    assert refused.outcome == Outcome.REJECTED and "importing `os` is not allowed" in refused.error
