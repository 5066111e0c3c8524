"""Warm start: a child training starts where its parent's policy was (its first checkpoint's fitness is the
parent's, not a fresh policy's), learns the new reward's value function first, and counts only its own steps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import envs
from workers.engine.batched import BatchedEnv
from workers.engine.model import build_model, save
from workers.engine.start import frozen_policy, policy_parameters, warmup_steps
from workers.engine.train import TrainConfig, train
from workers.engine.wrapper import ContractReward
from workers.program.program import load_program

ENV = "HalfCheetah-v5"
SMALL: dict[str, Any] = {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 2, "net_arch": [16, 16]}
# The first joint's mean angle over the episode: a policy that pushes every joint to its upper limit scores far
# above one that barely moves (a fresh policy's deterministic actions are near 0).
FITNESS = "import numpy as np\n\n\ndef compute_fitness(traj):\n    return float(np.mean(traj.joint_positions[:, 0]))\n"
# Another reward than the parent's: pays for height (the child's reward changed).
HEIGHT = "import numpy as np\n\n\ndef compute_reward(state, action):\n    h = state.z_position\n    return h, {'height': h}\n"


def parent(directory: Path, *, push: float, steps: int = 50_000) -> Path:
    """A parent training's saved files: a PPO whose deterministic action is ``push`` on every joint, saved as if it
    had trained ``steps`` steps."""
    spec = envs.get_spec(ENV)
    program = load_program(spec.reference_reward)
    contract = ContractReward(BatchedEnv(spec, [0, 1], needs=program.attributes), program)
    model = build_model(contract, replace(spec.ppo, **SMALL), seed=0)
    with torch.no_grad():
        action_net = model.ppo.policy.action_net
        assert isinstance(action_net, torch.nn.Linear)
        action_net.weight.zero_()
        action_net.bias.fill_(push)
    model.ppo.num_timesteps = steps
    model.venv.reset()
    directory.mkdir()
    save(model, directory)
    return directory


def config(**kw: object) -> TrainConfig:
    base: dict = {
        "env": ENV,
        "reward_source": HEIGHT,
        "fitness_source": FITNESS,
        "episode_steps": 100,
        "eval_episodes": 1,
        "checkpoints": 4,
        "ppo": SMALL,
        "timesteps": 1024,
    }
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_a_child_starts_where_its_parents_policy_was(tmp_path: Path) -> None:
    saved = parent(tmp_path / "parent", push=3.0)
    (tmp_path / "warm").mkdir()
    (tmp_path / "cold").mkdir()
    warm = train(config(warm_start_from=str(saved)), tmp_path / "warm", lambda e: None)
    cold = train(config(), tmp_path / "cold", lambda e: None)
    upper = envs.get_spec(ENV)
    assert upper is not None
    first_warm, first_cold = warm["checkpoints"][0]["fitness"], cold["checkpoints"][0]["fitness"]
    # the parent holds its first joint at the limit (about 0.5 rad on the cheetah's back thigh); a fresh policy not
    assert first_warm > 0.3, warm["checkpoints"]
    assert abs(first_cold) < 0.2, cold["checkpoints"]
    assert warm["warm_start"] == {"ancestor_timesteps": 50_000, "value_warmup_steps": 128}
    assert warm["timesteps"] == 1024 and warm["resumed_from_timesteps"] == 0, "only its own steps count"
    assert "warm_start" not in cold


def test_the_value_warmup_moves_no_policy_parameter(tmp_path: Path) -> None:
    spec = envs.get_spec(ENV)
    program = load_program(spec.reference_reward)
    contract = ContractReward(BatchedEnv(spec, [0, 1], needs=program.attributes), program)
    model = build_model(contract, replace(spec.ppo, **SMALL), seed=0)
    before = [p.detach().clone() for p in policy_parameters(model.ppo)]
    value_before = [p.detach().clone() for p in model.ppo.policy.value_net.parameters()]
    with frozen_policy(model.ppo):
        model.ppo.learn(128)
    assert all(torch.equal(a, b) for a, b in zip(before, policy_parameters(model.ppo), strict=True))
    assert not all(
        torch.equal(a, b) for a, b in zip(value_before, model.ppo.policy.value_net.parameters(), strict=True)
    )
    assert all(p.requires_grad for p in policy_parameters(model.ppo)), "the policy learns again after the block"


def test_warmup_takes_whole_rollouts_and_at_most_a_fifth_of_the_budget() -> None:
    assert warmup_steps(1024, 128) == 128  # a fifth of 1,024 holds one whole rollout of 128
    assert warmup_steps(100_000, 4096) == 8192
    assert warmup_steps(1000, 4096) == 0
    assert np.isclose(warmup_steps(100_000, 4096, rollouts=10) / 100_000, 0.16384)


def test_a_parent_with_other_network_sizes_is_said_and_the_child_trains_from_scratch(tmp_path: Path) -> None:
    saved = parent(tmp_path / "parent", push=1.0)
    (tmp_path / "child").mkdir()
    result = train(
        config(warm_start_from=str(saved), ppo={**SMALL, "net_arch": [8]}, timesteps=1024, checkpoints=1),
        tmp_path / "child",
        lambda e: None,
    )
    assert "warm_start" not in result
    assert any("could not start from the parent's policy" in w for w in result["warnings"]), result["warnings"]
