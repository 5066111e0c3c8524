"""The offline designer: no LLM, valid programs by construction, evolution from the best parent, labelled as such."""

from __future__ import annotations

import json
import random

import pytest

from app.search.design import offline, steering
from app.search.design.designers import DesignContext, OfflineDesigner, Parent
from envs import get_spec
from envs.describe import describe
from tests.app.search.harness import Search, task_spec
from workers.engine.evaluate import sandbox_check
from workers.engine.screen import REFUSED
from workers.program.policy import check_source
from workers.sandbox.runner import Limits


def context(
    env: str = "HalfCheetah-v5",
    *,
    task: str = "run forward",
    fitness: str = "forward_distance",
    parent: Parent | None = None,
    iteration: int = 0,
) -> DesignContext:
    return DesignContext(
        run_id=1,
        iteration=iteration,
        seed=0,
        env=env,
        env_description=describe(get_spec(env)),
        task=task,
        fitness_name=fitness,
        fitness_meaning="",
        fitness_source="",
        eval_episodes=1,
        parent=parent,
    )


def test_the_first_genome_follows_the_fitness_then_the_words_of_the_task() -> None:
    assert offline.seed_genome("HalfCheetah-v5", "backward_distance", "anything")["weights"] == {
        "backward": 1.0,
        "ctrl_cost": 0.1,
    }
    custom = offline.seed_genome("HalfCheetah-v5", "custom", "make it do a backflip, smoothly")["weights"]
    assert set(custom) == {"pitch_spin", "ctrl_cost"} and custom["ctrl_cost"] == 0.3
    assert "backward" not in custom  # 'backflip' is not 'backwards'
    assert set(offline.seed_genome("Hopper-v5", "forward_distance", "hop")["weights"]) == {
        "forward",
        "ctrl_cost",
        "healthy",
    }


def test_terms_the_env_cannot_offer_are_left_out() -> None:
    planar = offline.seed_genome("HalfCheetah-v5", "custom", "walk sideways")["weights"]
    assert "sideways" not in planar
    assert "sideways" in offline.seed_genome("Ant-v5", "custom", "walk sideways")["weights"]
    rng = random.Random(0)
    genome = {"weights": {"forward": 1.0}, "saturation": {}}
    for _ in range(200):
        genome = offline.mutate(genome, "HalfCheetah-v5", rng)
        assert not {"sideways", "lateral_drift"} & set(genome["weights"])


def test_every_program_passes_the_static_check_and_its_components_sum_to_the_reward() -> None:
    rng = random.Random(1)
    genome = offline.seed_genome("Ant-v5", "forward_distance", "run")
    for _ in range(30):
        genome = offline.mutate(genome, "Ant-v5", rng)
        source = offline.render_program(genome)
        check_source(source, "reward")
        assert source.startswith("# Written by the offline designer (no LLM)")
        for name in genome["weights"]:
            assert f'"{name}": {name}' in source
        assert "    reward = " + " + ".join(genome["weights"]) in source


def test_a_program_with_saturation_runs_in_the_sandbox() -> None:
    genome = {"weights": {"forward": 2.0, "ctrl_cost": 0.1, "feet_contact": 0.2}, "saturation": {"forward": 3.0}}
    source = offline.render_program(genome)
    assert "FORWARD_SCALE * np.tanh((state.x_velocity) / FORWARD_SCALE)" in source
    res = sandbox_check("HalfCheetah-v5", source, "reward", Limits(wall_seconds=60, memory_mb=4096, max_file_mb=64))
    assert res.outcome == "ok", res.error
    assert res.payload["report"]["components"] == ["forward", "ctrl_cost", "feet_contact"]


def test_weights_stay_in_range_and_mutation_changes_them() -> None:
    rng = random.Random(2)
    genome = {"weights": {"forward": 1.0, "ctrl_cost": 0.1}, "saturation": {}}
    children = [offline.mutate(genome, "HalfCheetah-v5", rng) for _ in range(50)]
    assert all(offline.WEIGHT_RANGE[0] <= w <= offline.WEIGHT_RANGE[1] for c in children for w in c["weights"].values())
    assert all(c["weights"] for c in children)
    assert len({json.dumps(c, sort_keys=True) for c in children}) > 45


def test_the_first_round_starts_from_the_seed_genome_and_labels_itself() -> None:
    proposals = OfflineDesigner().propose(context(), 3)
    assert len(proposals) == 3
    assert proposals[0].design["genome"] == offline.seed_genome("HalfCheetah-v5", "forward_distance", "run forward")
    for p in proposals:
        assert p.origin == "offline" and p.error is None and p.code == p.answer
        assert p.design["designer"] == "offline designer (no LLM)"
        assert (
            p.code.splitlines()[0]
            == "# Written by the offline designer (no LLM): weighted reward terms evolved towards the fitness."
        )


def test_later_rounds_mutate_the_parent_genome() -> None:
    parent_genome = {"weights": {"forward": 3.0, "ctrl_cost": 0.2, "upright": 0.4}, "saturation": {"forward": 2.0}}
    parent = Parent(
        id=7, code=offline.render_program(parent_genome), fitness=1.0, reflection="", design={"genome": parent_genome}
    )
    for p in OfflineDesigner().propose(context(parent=parent, iteration=1), 4):
        child = p.design["genome"]
        assert child != parent_genome
        # one structural change at most: a term added or dropped, or a saturation toggled
        assert len(set(child["weights"]) ^ set(parent_genome["weights"])) <= 1
        assert len(set(child["weights"]) & set(parent_genome["weights"])) >= 2


def test_components_diagnosed_as_constant_are_dropped_and_never_come_back() -> None:
    parent_genome = {"weights": {"forward": 1.0, "ctrl_cost": 0.1, "healthy": 0.5}, "saturation": {}}
    parent = Parent(
        id=7,
        code=offline.render_program(parent_genome),
        fitness=1.0,
        reflection="",
        design={"genome": parent_genome},
        diagnostics=[
            {"kind": "constant", "component": "healthy", "text": "..."},
            {"kind": "dominant", "component": "forward", "text": "..."},
        ],
    )
    children = []
    for seed in range(40):  # many rounds, so that the 'add a term' mutation gets its chances
        ctx = context(parent=parent, iteration=1)
        ctx.seed = seed
        children += [p.design["genome"] for p in OfflineDesigner().propose(ctx, 4)]
    assert all("healthy" not in c["weights"] for c in children)
    assert any("forward" in c["weights"] for c in children)


def test_the_offline_designer_needs_no_repairs_or_reviews() -> None:
    designer = OfflineDesigner()
    [p] = designer.propose(context(), 1)
    assert designer.repair(context(), p, "error") is None
    assert designer.review(context(), p.code, "dry run") is None


def test_the_offline_designer_repairs_a_reward_the_trajectory_screen_refused() -> None:
    """It mutates again, from the parent's genome where there is one, and the new program's header says why."""
    designer = OfflineDesigner()
    [refused] = designer.propose(context(), 1)
    why = "ranks the recorded episodes against the fitness: this reward prefers the episode that fell over at step 80"
    parent = _parent(offline.seed_genome("HalfCheetah-v5", "forward_distance", "run forward"))
    repaired = designer.repair(context(parent=parent, iteration=1), refused, REFUSED + why)
    assert repaired is not None and repaired.code != refused.code
    assert f"# mutated again: {why}" in (repaired.code or "")
    check_source(repaired.code or "", "reward")
    assert set(repaired.design["genome"]["weights"]) <= set(parent.design["genome"]["weights"]) | set(offline.TERMS)


@pytest.mark.slow
def test_an_offline_search_runs_without_an_llm_and_evolves_from_the_best(sqlite_sf, tmp_path) -> None:
    search = Search(sqlite_sf, tmp_path)  # no server, no model: the LLM is not configured at all
    assert not search.settings().llm_configured
    run_id, status = search.run(task_spec(designer=None, iterations=2, samples=2))
    assert status == "succeeded"
    doc = search.doc(run_id)
    assert doc["designer"] == "offline designer (no LLM)"
    assert doc["usage"]["requests"] == 0 and doc["usage"]["total_tokens"] == 0
    assert search.exchanges(run_id) == []
    first, second = doc["iterations"]
    for c in first["candidates"] + second["candidates"]:
        assert c["origin"] == "offline" and c["status"] == "trained" and c["fitness"] is not None
        assert c["code"].startswith("# Written by the offline designer (no LLM)")
        assert search.candidate(c["id"]).design["designer"] == "offline designer (no LLM)"
    best_first = max(first["candidates"], key=lambda c: c["fitness"])
    assert second["parent_id"] == best_first["id"]
    assert all(c["parent_id"] == best_first["id"] for c in second["candidates"])
    parent_terms = set(search.candidate(best_first["id"]).design["genome"]["weights"])
    for c in second["candidates"]:
        child = search.candidate(c["id"]).design["genome"]["weights"]
        assert len(set(child) ^ parent_terms) <= 1, (child, parent_terms)
    best = doc["best_candidate"]
    assert best["fitness"] == max(c["fitness"] for c in first["candidates"] + second["candidates"])


# ------------------------------------------------------------------------- reading the fitness, feedback, diagnostics

HOP_HIGH = "import numpy as np\n\n\ndef compute_fitness(traj):\n    return float(np.max(traj.z_position))\n"
HEIGHT_TERMS = {"height", "jump", "jump_power", "airborne"}


def hopper(**fields) -> DesignContext:
    ctx = context("Hopper-v5", task="hop as high as you can", fitness="custom", **fields)
    ctx.fitness_source = HOP_HIGH
    return ctx


def test_a_fitness_program_reading_z_position_makes_the_first_round_use_height_terms() -> None:
    proposals = OfflineDesigner().propose(hopper(), 4)
    first = proposals[0].design["genome"]
    assert set(first["weights"]) >= HEIGHT_TERMS and first["signal"] == "(state.z_position)"
    assert "forward" not in first["weights"] and "reverse_pitch_spin" not in first["weights"]
    assert all(offline.SIGNAL in p.design["genome"]["weights"] for p in proposals)
    # the header says why
    assert "# the fitness wants z_position high (max): height, upward speed" in proposals[0].code
    for p in proposals:
        check_source(p.code, "reward")
    # a built-in fitness keeps its own seed: the same terms as before
    assert set(offline.seed_genome("Hopper-v5", "forward_distance", "hop")["weights"]) == {
        "forward",
        "ctrl_cost",
        "healthy",
    }


def _parent(genome: dict) -> Parent:
    return Parent(id=3, code=offline.render_program(genome), fitness=1.0, reflection="", design={"genome": genome})


def test_feedback_text_changes_the_next_rounds_terms_and_the_header_says_why() -> None:
    genome = {"weights": {"forward": 1.0, "ctrl_cost": 0.1, "healthy": 0.5}, "saturation": {"forward": 2.0}}
    quiet = OfflineDesigner().propose(context("Hopper-v5", parent=_parent(genome), iteration=1), 2)
    hostile = "It is too slow and keeps falling over.\nimport os  # </script><b>"
    ctx = context("Hopper-v5", parent=_parent(genome), iteration=1)
    ctx.feedback = [{"candidate": "1.1", "rating": 2, "text": hostile}]
    steered = OfflineDesigner().propose(ctx, 2)
    first = steered[0].design["genome"]
    assert first["weights"]["forward"] == pytest.approx(1.5) and first["weights"]["healthy"] == pytest.approx(1.0)
    assert first["weights"]["upright"] == offline.TERMS["upright"].default_weight  # added for "falls over"
    assert "forward" not in first["saturation"] and first["weights"]["ctrl_cost"] == pytest.approx(0.07)
    assert first != quiet[0].design["genome"]
    header = steered[0].code.split("import numpy")[0]
    assert "feedback said 'too slow': more reward for speed" in header
    assert "feedback said 'falls over': more reward for staying healthy and upright" in header
    assert "import os" not in steered[0].code and "<b>" not in steered[0].code  # the text itself is never copied
    for p in steered:
        check_source(p.code, "reward")


def test_jittery_and_on_its_back_raise_costs_and_the_upright_bonus() -> None:
    genome = {"weights": {"pitch_spin": 1.0, "ctrl_cost": 0.1}, "saturation": {}}
    ctx = context("HalfCheetah-v5", parent=_parent(genome), iteration=1)
    ctx.feedback = [{"text": "very jittery, and it ends up on its back"}]
    first = OfflineDesigner().propose(ctx, 1)[0].design["genome"]["weights"]
    assert first["ctrl_cost"] == pytest.approx(0.2) and first["joint_speed_cost"] > 0
    assert first["upright"] > 0 and first["pitch_spin"] == pytest.approx(0.5)


def test_a_stuck_search_moves_further_from_the_parent() -> None:
    genome = offline.seed_genome("Hopper-v5", "custom", "hop", steering.read_intent("Hopper-v5", HOP_HIGH))
    calm = context("Hopper-v5", parent=_parent(genome), iteration=1)
    stuck = context("Hopper-v5", parent=_parent(genome), iteration=1)
    stuck.run_diagnostics = [{"code": "candidates_indistinguishable", "message": "", "advice": ""}]
    first = OfflineDesigner().propose(stuck, 4)[0].design["genome"]
    assert first["weights"]["height"] == pytest.approx(2 * genome["weights"]["height"])
    assert first["weights"]["healthy"] == pytest.approx(genome["weights"]["healthy"] / 2)
    assert "candidates_indistinguishable" in OfflineDesigner().propose(stuck, 1)[0].code.split("import numpy")[0]
    assert OfflineDesigner().propose(calm, 1)[0].design["genome"].get("notes") is None


def test_the_first_rounds_programs_differ_even_when_the_fitness_terms_are_its_signal() -> None:
    ctx = context("HalfCheetah-v5", task="run backwards", fitness="custom")
    ctx.fitness_source = (
        "import numpy as np\n\n\ndef compute_fitness(traj):\n    return float(-np.sum(traj.x_velocity))\n"
    )
    seed, plain = (p.design["genome"]["weights"] for p in OfflineDesigner().propose(ctx, 2))
    assert seed == {"backward": 1.0, offline.SIGNAL: 1.0, "ctrl_cost": 0.05}  # -2 x_velocity - 0.05 |a|^2
    assert plain == {offline.SIGNAL: 1.0, "ctrl_cost": 0.1}  # -x_velocity - 0.1 |a|^2: another trade-off
