"""A fitness program measured on random-policy episodes, in this process and as a sandbox job."""

from __future__ import annotations

import re

import numpy as np
import pytest

import envs
from envs.fitness import METRICS
from tests.workers.program.hostile import SLOW
from workers.engine.cost import FITNESS_FLOOR_SECONDS, CostBudget
from workers.engine.evaluate import sandbox_measure
from workers.engine.measure import measure_fitness
from workers.engine.rollout import episode_fitness, rollout
from workers.program.policy import ProgramRejected
from workers.program.program import ProgramError, load_program
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


def test_a_fitness_slow_on_real_episodes_is_refused_with_the_figures() -> None:
    source = SLOW["slow on full-length episodes of distinct states"].source
    with pytest.raises(ProgramRejected) as info:
        measure_fitness("HalfCheetah-v5", source, episodes=2, max_steps=300, cost_ratio=10.0)
    message = str(info.value)
    assert re.search(r"compute_fitness (has taken [\d.]+ s in its first|took [\d.]+ s for) ", message), message
    assert "300-step episodes" in message


def test_every_fitness_call_of_a_training_is_charged_to_one_budget() -> None:
    spec = envs.get_spec("HalfCheetah-v5")
    rng = np.random.default_rng(0)
    layout, episodes = rollout(spec, lambda obs: rng.uniform(-1, 1, size=(2, 6)), [1, 2], max_steps=300)
    assert all(ep.seconds > 0 for ep in episodes)
    budget = CostBudget("compute_fitness", ratio=10.0, floor_seconds=FITNESS_FLOOR_SECONDS)
    honest = load_program(METRICS["forward_distance"].source, "fitness")
    for _ in range(20):
        episode_fitness(honest, layout, episodes, budget)
    assert budget.calls == 40 and budget.spent < budget.allowed
    slow = load_program(SLOW["slow on full-length episodes of distinct states"].source, "fitness")
    fresh = CostBudget("compute_fitness", ratio=10.0, floor_seconds=FITNESS_FLOOR_SECONDS)
    with pytest.raises(
        ProgramError, match=r"compute_fitness (has taken [\d.]+ s in its first 1 call|took [\d.]+ s) (of|for) 300-step"
    ):
        episode_fitness(slow, layout, episodes, fresh)


def test_a_fitness_beyond_its_bound_is_refused_when_measured() -> None:
    huge = "def compute_fitness(traj):\n    return 1.5e308\n"
    with pytest.raises(ProgramRejected, match=r"beyond ±1e\+09"):
        measure_fitness("Hopper-v5", huge, episodes=2, max_steps=20)


def test_a_fitness_that_barely_moves_between_behaviours_says_it_cannot_tell() -> None:
    """The issue's case: max height on Hopper 'varies between episodes (1.246 to 1.253)', 7 mm around standing."""
    m = measure_fitness("Hopper-v5", METRICS["max_height"].source, episodes=3, max_steps=100)
    assert m["varies"] is True and set(m["behaviours"]) == {"standing still", "flailing"}
    assert (
        m["tells_apart"] == "cannot tell"
        and "cannot show" in m["verdict"]
        and "can tell them apart" not in m["verdict"]
    )


def test_a_fitness_that_different_behaviours_move_a_lot_says_it_tells_them_apart() -> None:
    m = measure_fitness("HalfCheetah-v5", METRICS["forward_distance"].source, episodes=3, max_steps=100)
    assert m["tells_apart"] == "yes" and "can tell them apart" in m["verdict"]
    constant = measure_fitness("Hopper-v5", CONSTANT, episodes=3, max_steps=20)
    assert constant["tells_apart"] == "no" and "standing still and flailing included" in constant["verdict"]
