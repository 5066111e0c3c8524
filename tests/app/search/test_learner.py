"""The learner's diagnostics: constructed training results (the engine's shape) that trigger each one, the verdict the
reflection ends with, what the designer's prompt says, and what the offline designer does on a learner problem."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import app.search.design.learner as learner
import envs
from app.search.design.designers import LLMDesigner, OfflineDesigner, Parent
from app.search.design.diagnostics import Code
from app.search.design.learner import diagnose_learner
from app.search.design.offline import seed_genome
from app.search.design.reflection import diagnose, reflect
from app.search.design.verdict import Verdict, verdict, verdict_text
from envs.fitness import get_metric
from tests.app.search.test_offline import context
from workers.engine.train import TrainConfig, train

HEALTHY_UPDATE = {
    "approx_kl": 0.005,
    "clip_fraction": 0.05,
    "explained_variance": 0.6,
    "entropy": 2.4,
    "policy_loss": -0.01,
    "value_loss": 0.2,
    "std": 0.36,
    "learning_rate": 3e-4,
    "updates": 4,
}
"""What SB3 PPO logged for a learning HalfCheetah (measured: approx_kl 0.002-0.006, clip fraction 0.001-0.03)."""


def trained(
    updates: list[dict],
    *,
    returns: list[float] | None = None,
    fitness: list[float] | None = None,
    ppo: dict | None = None,
    **fields,
) -> dict:
    """A result of len(updates) checkpoints, 1,000 steps apart; each checkpoint's learner statistics are
    ``HEALTHY_UPDATE`` with that update's changes; returns and fitness rise unless given."""
    n = len(updates)
    returns = returns or [10.0 * (i + 1) for i in range(n)]
    fitness = fitness or [1.0 * (i + 1) for i in range(n)]
    cps = [
        {
            "timesteps": 1000 * (i + 1),
            "fitness": fitness[i],
            "episode_return": returns[i],
            "reward": {"mean": returns[i] / 100, "min": 0.0, "max": 1.0},
            "terminated": 0,
            "truncated": 4,
            "learner": HEALTHY_UPDATE | u,
        }
        for i, u in enumerate(updates)
    ]
    out = {"timesteps": 1000 * n, "checkpoints": cps, "ppo": {"log_std_init": -1.0, **(ppo or {})}}
    return out | fields


def codes(result: dict) -> list[str]:
    return [f["kind"] for f in diagnose_learner(result)]


def test_a_learning_trainings_learner_is_healthy() -> None:
    result = trained([{}] * 6)
    assert diagnose_learner(result) == [] and diagnose(result) == []
    assert "the learner trained normally" in verdict_text([], recorded=True)


def test_approx_kl_near_zero_with_a_return_that_does_not_rise_is_a_stalled_learner() -> None:
    flat = [-34.2, -34.1, -33.1, -30.1, -27.7, -32.6]  # a real training at learning rate 1e-5 (KL ~1e-6)
    stalled = trained([{"approx_kl": 1e-6, "clip_fraction": 0.0, "learning_rate": 1e-5}] * 6, returns=flat)
    found = diagnose_learner(stalled)
    assert [f["kind"] for f in found] == [Code.LEARNER_STALLED]
    text = found[0]["text"]
    assert "approx_kl averaged 1e-06" in text and "-34.2 → -30.1" in text and "learning rate 1e-05" in text
    assert "The reward may be fine" in text
    # the same updates while the return rises: the learner is learning, however slowly
    assert codes(trained([{"approx_kl": 1e-6}] * 6)) == []
    # healthy updates and a flat return: not the learner's problem
    assert codes(trained([{}] * 6, returns=flat)) == []


def test_a_stalled_learner_explains_a_flat_fitness_so_the_reward_is_not_blamed_for_it() -> None:
    flat = dict(returns=[5.0] * 6, fitness=[2.0] * 6)
    assert [f["kind"] for f in diagnose(trained([{}] * 6, **flat))] == [Code.FLAT_FITNESS]
    found = diagnose(trained([{"approx_kl": 0.0}] * 6, **flat))
    assert [f["kind"] for f in found] == [Code.LEARNER_STALLED]
    assert verdict(found) == Verdict.LEARNER


def test_explained_variance_below_zero_late_in_training_is_a_value_function_that_did_not_learn() -> None:
    early_only = [{"explained_variance": v} for v in (-1.8, -0.9, -0.2, 0.1, 0.5, 0.6)]  # measured, healthy
    assert codes(trained(early_only)) == []
    late = [{"explained_variance": v} for v in (-1.8, -0.9, -0.4, -0.3, -0.2, -0.3)]
    [found] = diagnose_learner(trained(late))
    assert found["kind"] == Code.VALUE_NOT_LEARNING
    assert "explained variance was -0.25 over the last third" in found["text"]
    assert "cannot observe" in found["text"]  # what it can mean for the reward after all
    few = [u | {"updates": 1} for u in late]  # six policy updates in all: too short to have a 'late'
    assert codes(trained(few)) == []


def test_an_action_spread_that_collapses_early_is_premature_convergence() -> None:
    start = math.exp(-1.0)  # the std of log_std_init -1
    collapsed = [{"std": s} for s in (0.3, 0.08, 0.05, 0.04, 0.04, 0.04)]  # below a quarter of 0.37 by step 2,000
    [found] = diagnose_learner(trained(collapsed))
    assert found["kind"] == Code.PREMATURE_CONVERGENCE
    assert f"fell from {start:.3g} to 0.08 by step 2,000, 33% of the training" in found["text"]
    assert "ent_coef" in found["text"]
    late = [{"std": s} for s in (0.36, 0.34, 0.3, 0.2, 0.08, 0.05)]  # converging late, as training should
    assert codes(trained(late)) == []
    # a continued training is judged from where it resumed, not from log_std_init
    resumed = trained([{"std": s} for s in (0.08, 0.07, 0.07, 0.06)], resumed_from_timesteps=500)
    assert codes(resumed) == []


@pytest.mark.parametrize(
    ("update", "shown"),
    [
        ({"approx_kl": 160.0, "clip_fraction": 0.93}, "approx_kl reached 160"),  # measured at learning rate 0.05
        ({"approx_kl": 0.04, "clip_fraction": 0.62}, "up to 62% of the samples were clipped"),
    ],
)
def test_an_exploding_kl_or_most_samples_clipped_is_a_diverged_learner(update: dict, shown: str) -> None:
    updates = [{}, update, {}, {}]
    found = diagnose_learner(trained(updates))
    assert [f["kind"] for f in found] == [Code.LEARNER_DIVERGED]
    assert shown in found[0]["text"] and "lower the learning_rate" in found[0]["text"]
    # a learning rate ten times SB3's default learns fine (measured: approx_kl 0.04, clip fraction 0.3)
    assert codes(trained([{"approx_kl": 0.045, "clip_fraction": 0.32}] * 4)) == []


def test_non_finite_statistics_are_a_diverged_learner() -> None:
    found = diagnose_learner(trained([{}, {"value_loss": float("nan"), "approx_kl": float("inf")}, {}]))
    assert [f["kind"] for f in found] == [Code.LEARNER_DIVERGED]
    assert "approx_kl, value_loss became NaN or infinite" in found[0]["text"]


def test_a_linear_clip_range_is_judged_by_its_first_half_only() -> None:
    late_clipping = [{}, {}, {}, {"clip_fraction": 0.7}]  # a lin_ clip range near 0 clips most samples at the end
    assert codes(trained(late_clipping, ppo={"clip_range": "lin_0.2"})) == []
    assert codes(trained(late_clipping)) == [Code.LEARNER_DIVERGED]


def test_a_result_without_learner_statistics_is_judged_by_the_reward_alone() -> None:
    result = trained([{}] * 4)
    for cp in result["checkpoints"]:
        del cp["learner"]
    assert diagnose_learner(result) == [] and learner.series(result) == {}
    text = reflect(result, fitness_name="forward_distance").text
    assert "The learner (SB3 PPO)" not in text
    assert "nothing diagnosed (the learner's statistics were not recorded)" in text


def test_the_verdict_says_which_side_the_findings_point_at() -> None:
    stalled = {"kind": Code.LEARNER_STALLED, "text": "..."}
    dominant = {"kind": Code.DOMINANT, "text": "...", "component": "alive"}
    assert verdict([]) == Verdict.NONE
    assert verdict([{"kind": "retired_code", "text": "from an old row"}]) == Verdict.NONE  # type: ignore[list-item]
    assert verdict([dominant]) == Verdict.REWARD
    assert verdict([stalled]) == Verdict.LEARNER
    assert verdict([stalled, dominant]) == Verdict.BOTH
    assert verdict_text([stalled], recorded=True).startswith(
        "a learner problem, not necessarily the reward's: the reward may be fine; the learner stalled"
    )
    both = verdict_text([stalled, dominant], recorded=True)
    assert "the learner stalled (learner_stalled), and the reward's own diagnostics (dominant)" in both
    assert "what went wrong is the reward's" in verdict_text([dominant], recorded=True)
    # a diverged learner's policy says nothing about the reward: only a finding about the program itself counts
    diverged = {"kind": Code.LEARNER_DIVERGED, "text": "..."}
    constant = {"kind": Code.CONSTANT, "text": "...", "component": "bonus"}
    assert verdict([diverged, dominant]) == Verdict.LEARNER
    assert verdict([diverged, dominant, constant]) == Verdict.BOTH
    assert "the reward's own diagnostics (constant)" in verdict_text([diverged, dominant, constant], recorded=True)


def test_the_reflection_shows_the_learners_statistics_and_ends_with_the_verdict() -> None:
    updates = [{"approx_kl": 1e-6, "clip_fraction": 0.0, "explained_variance": v} for v in (-2.5, -3.4, -3.2)]
    result = trained(updates, returns=[-34.0, -34.5, -32.0], fitness=[0.0, 0.0, 0.0])
    r = reflect(result, fitness_name="forward_distance")
    assert [d["kind"] for d in r.diagnostics] == [Code.LEARNER_STALLED, Code.VALUE_NOT_LEARNING]
    lines = r.text.splitlines()
    assert "The learner (SB3 PPO), mean over its policy updates up to each checkpoint:" in lines
    assert "- approx_kl: [1e-06, 1e-06, 1e-06] (how far each update moved the policy)" in lines
    assert any(line.startswith("- explained_variance: [-2.5, -3.4, -3.2] (how well the value") for line in lines)
    assert any(line.startswith("- std: [0.36, 0.36, 0.36]") for line in lines)
    assert not any(line.startswith(("- policy_loss", "- value_loss")) for line in lines)
    assert lines[-1] == (
        "What the diagnostics point at: a learner problem, not necessarily the reward's: the reward may be fine; the "
        "learner stalled and did not learn a value function (learner_stalled, value_not_learning), so the fitness "
        "this training reached says little about the reward."
    )


def _parent(findings: list[dict], env: str = "HalfCheetah-v5") -> Parent:
    genome = seed_genome(env, "forward_distance", "run forward")
    return Parent(7, "def compute_reward(state, action): ...", 1.5, "(the reflection)", {"genome": genome}, findings)


STALLED = {"kind": Code.LEARNER_STALLED, "text": "the learner stalled"}
DOMINANT = {"kind": Code.DOMINANT, "text": "component 'forward' makes up 90%", "component": "forward"}


def _prompt(parent: Parent) -> str:
    messages = LLMDesigner(client=None, model="m")._messages(context(parent=parent, iteration=1))  # type: ignore[arg-type]
    return messages[1]["content"]


def test_the_designers_prompt_says_the_reward_may_be_fine_on_a_learner_problem() -> None:
    prompt = _prompt(_parent([STALLED]))
    assert "## The learner, not only the reward" in prompt
    assert "The reward may be fine; the learner stalled (learner_stalled)." in prompt
    assert "do not drop terms or start over because the fitness is low" in prompt
    assert "a learner problem can come from the reward after all" not in prompt  # a stall has no reward-side cause
    value = _prompt(_parent([{"kind": Code.VALUE_NOT_LEARNING, "text": "..."}]))
    assert "can come from the reward after all: value_not_learning: a reward that pays for something the policy" in (
        " ".join(value.split())
    )
    assert "whether the diagnostics point at the reward or at the" in prompt
    assert "## The learner, not only the reward" not in _prompt(_parent([DOMINANT]))
    both = _prompt(_parent([STALLED, DOMINANT]))  # a reward problem too: the note stays, the reward's findings count
    assert "## The learner, not only the reward" in both and "where its own diagnostics" in both


def test_the_offline_designer_keeps_the_reward_on_a_learner_problem_alone() -> None:
    stuck = [{"code": Code.NEVER_ROSE, "message": "...", "numbers": {}, "advice": "..."}]
    parent = _parent([STALLED])
    weights = parent.design["genome"]["weights"]
    ctx = context(parent=parent, iteration=1)
    ctx.run_diagnostics = stuck
    proposals = OfflineDesigner().propose(ctx, 4)
    for p in proposals:
        child = p.design["genome"]["weights"]
        assert set(child) == set(weights), "no term added or dropped"
        assert all(0.3 < child[k] / weights[k] < 3.0 for k in weights), (child, weights)
        assert "# learner problem in the parent's training (learner_stalled): the reward may be fine" in p.code
        assert "no boost for fitness_never_rose" in p.code
    assert len({p.code for p in proposals}) == 4, "four different programs, none a copy of the parent"
    # a reward problem beside it: the search steers and mutates as before
    ctx = context(parent=_parent([STALLED, DOMINANT]), iteration=1)
    ctx.run_diagnostics = stuck
    both = OfflineDesigner().propose(ctx, 4)
    assert "task terms doubled" in both[0].code and "learner problem" not in both[0].code


@pytest.mark.slow
@pytest.mark.parametrize(
    ("learning_rate", "expected"),
    [(1e-7, Code.LEARNER_STALLED), (0.05, Code.LEARNER_DIVERGED)],
)
def test_real_trainings_with_a_learning_rate_far_too_small_or_too_large_are_the_learners_problem(
    tmp_path: Path, learning_rate: float, expected: Code
) -> None:
    """The thresholds hold on what SB3 really logs, not only on constructed numbers."""
    spec = envs.get_spec("HalfCheetah-v5")
    config = TrainConfig(
        env=spec.name,
        reward_source=spec.reference_reward,
        fitness_source=get_metric("forward_distance").source,
        timesteps=12_288,  # 12 updates of 4 envs x 256 steps
        checkpoints=6,
        episode_steps=200,
        eval_episodes=1,
        ppo={"n_envs": 4, "n_steps": 256, "batch_size": 256, "n_epochs": 4, "net_arch": [32, 32],
             "learning_rate": learning_rate},
    )  # fmt: skip
    found = diagnose(train(config, tmp_path, lambda e: None))
    assert expected in {f["kind"] for f in found}, found
    assert verdict(found) == Verdict.LEARNER, found
