"""``Model.policy``, the evaluation episodes' deterministic actions: the same actions as SB3's
``PPO.predict(deterministic=True)`` after the rollout's clip, for the Gaussian policies every env trains and for
one with state-dependent exploration (which takes SB3's own path)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from stable_baselines3 import PPO

import envs
from workers.engine.batched import BatchedEnv
from workers.engine.model import Model, build_model
from workers.engine.wrapper import ContractReward
from workers.program.program import load_program


def model_for(env: str, sde: bool) -> Model:
    spec = envs.get_spec(env)
    program = load_program(spec.reference_reward)
    contract = ContractReward(BatchedEnv(spec, [0, 1], needs=program.attributes), program)
    model = build_model(contract, replace(spec.ppo, n_envs=2, n_steps=64, batch_size=64), seed=3)
    if sde:  # no env's settings ask for it: SB3's own PPO on the same normalising env
        model = replace(model, ppo=PPO("MlpPolicy", model.venv, n_steps=64, batch_size=64, use_sde=True, seed=3))
    model.venv.reset()
    for _ in range(20):  # observation statistics away from the identity, so that normalising matters
        model.venv.step(np.random.default_rng(0).uniform(-1, 1, (2, contract.action_space.shape[0])))
    return model


@pytest.mark.parametrize(("env", "sde"), [("HalfCheetah-v5", False), ("Hopper-v5", False), ("Ant-v5", True)])
def test_the_deterministic_actions_are_ppo_predicts(env: str, sde: bool) -> None:
    model = model_for(env, sde)
    space = model.venv.action_space
    rng = np.random.default_rng(1)
    for n in (1, 5):
        obs = rng.normal(0.0, 3.0, (n, *model.venv.observation_space.shape))
        ours = np.clip(model.policy(obs), space.low, space.high)
        theirs, _ = model.ppo.predict(model.venv.normalize_obs(obs), deterministic=True)
        assert ours.shape == theirs.shape == (n, *space.shape)
        np.testing.assert_array_equal(ours, theirs)
        assert np.abs(theirs).max() > 1e-3, "a policy whose actions are all 0 would prove nothing"
