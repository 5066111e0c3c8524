"""A task with a fitness program trains the env's reference reward as its yardstick and reports it on fresh seeds."""

from __future__ import annotations

import pytest

from app.search.rules.budget import baseline_programs
from app.search.rules.fitness_terms import signal_reward
from envs import get_spec
from tests.app.search.harness import Search, task_spec

HOP_HIGH = "import numpy as np\n\n\ndef compute_fitness(traj):\n    return float(np.max(traj.z_position))\n"


def test_every_task_gets_the_reference_reward_and_a_fitness_program_its_per_step_form() -> None:
    programs = dict(baseline_programs("Hopper-v5", "custom", HOP_HIGH))
    assert programs["baseline-reference"] == get_spec("Hopper-v5").reference_reward
    assert programs["baseline-sparse"] == signal_reward("(state.z_position)")
    no_form = "def compute_fitness(traj):\n    z = traj.z_position\n    return float(z[-1] - z[0])\n"
    assert [o for o, _ in baseline_programs("Hopper-v5", "custom", no_form)] == ["baseline-reference"]
    # a built-in metric the reference reward was not made for gets the reference too
    assert [o for o, _ in baseline_programs("HalfCheetah-v5", "flips", None)] == ["baseline-reference"]


@pytest.mark.slow
def test_a_run_with_a_fitness_program_trains_and_reports_the_reference_baseline(sqlite_sf, tmp_path) -> None:
    search = Search(sqlite_sf, tmp_path)
    spec = task_spec(
        env="Hopper-v5",
        description="hop as high as you can",
        fitness=HOP_HIGH,
        designer="offline",
        samples=2,
        options={"baselines": True, "final_seeds": 1},
    )
    run_id, status = search.run(spec)
    doc = search.doc(run_id)
    assert status == "succeeded", doc["error"]
    base = {b["origin"]: b for b in doc["baselines"]}
    assert set(base) == {"baseline-reference", "baseline-sparse"}
    assert all(b["status"] == "trained" and b["fitness"] is not None for b in base.values())
    # the reference is re-trained on the same fresh seed as the best candidate
    ref_purposes = [t["purpose"] for t in base["baseline-reference"]["trainings"]]
    assert ref_purposes == ["baseline", "final"]
    assert [t["seed"] for t in doc["best_candidate"]["trainings"] if t["purpose"] == "final"] == [1000]
    yard = doc["final"]["yardstick"]
    assert yard["seeds"] == [1000] and len(yard["best_per_seed"]) == len(yard["reference_per_seed"]) == 1
    assert yard["best_mean"] == yard["best_per_seed"][0] and yard["reference_mean"] == yard["reference_per_seed"][0]
    reference = yard["reference_mean"]
    assert yard["ratio"] == (yard["best_mean"] / reference if reference > 0 else None)
    # the first round used the fitness's height terms
    first = doc["iterations"][0]["candidates"][0]
    assert "HEIGHT_WEIGHT" in first["code"] and "FITNESS_SIGNAL_WEIGHT" in first["code"]
