"""Warm start (ROSKA's idea): a child candidate's training starts from its parent's trained policy.

The parent's ``policy.zip`` and ``vecnormalize.pkl`` are read inside the sandbox through the restricted loaders of
``workers.engine.saved`` (nothing unpickled that a program could have written). The observation statistics are the
parent's (the policy was trained on them); the reward's running statistics are reset, since the reward changed.
Because the value function learned the parent's reward, it first gets a short warm-up with the policy frozen
(``value_warmup``): PPO's updates then move only the value network, and the policy stays where the parent left it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from workers.engine.saved import load_normalization, load_parameters, saved_timesteps
from workers.engine.wrapper import ContractReward

WARMUP_ROLLOUTS = 2
"""Rollouts (n_envs x n_steps each) of value-only updates before the policy learns, by default."""
WARMUP_SHARE = 0.2
"""The most of a training's own budget the value warm-up may take."""


def warmup_steps(total: int, per_rollout: int, rollouts: int = WARMUP_ROLLOUTS) -> int:
    """Steps of value warm-up for a warm-started training of ``total`` own steps: ``rollouts`` whole rollouts, at most
    ``WARMUP_SHARE`` of the budget (rounded down to whole rollouts; 0 when not even one fits)."""
    cap = int(total * WARMUP_SHARE) // per_rollout * per_rollout
    return max(0, min(rollouts * per_rollout, cap))


def warm_normalization(directory: Path, contract: ContractReward, gamma: float) -> VecNormalize:
    """The parent's VecNormalize on ``contract``: its observation statistics, fresh reward statistics."""
    venv = load_normalization(directory / "vecnormalize.pkl", contract)
    venv.ret_rms = RunningMeanStd(shape=())
    venv.returns = np.zeros(venv.num_envs)
    venv.gamma = gamma
    return venv


def load_parent(model: PPO, directory: Path) -> int:
    """Load the parent's networks into ``model`` (same shapes); returns the steps the parent's saved policy says it
    trained (its own)."""
    load_parameters(model, directory / "policy.zip")
    return saved_timesteps(directory / "policy.zip")


def policy_parameters(model: PPO) -> list[nn.Parameter]:
    """The parameters that choose actions: the policy's own MLP, its action head and the action log-std (the value
    network and head are the rest)."""
    policy = model.policy
    modules: list[nn.Module] = [policy.mlp_extractor.policy_net, policy.action_net]
    if not policy.share_features_extractor:
        modules.append(policy.pi_features_extractor)
    params = [p for m in modules for p in m.parameters()]
    log_std = getattr(policy, "log_std", None)
    if isinstance(log_std, nn.Parameter):
        params.append(log_std)
    return params


@contextmanager
def frozen_policy(model: PPO) -> Iterator[None]:
    """Inside the block PPO's updates change only the value function: the policy's parameters take no gradient."""
    params = policy_parameters(model)
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, before, strict=True):
            p.requires_grad_(flag)
