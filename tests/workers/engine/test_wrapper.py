"""The candidate reward on the batched env: rows recorded before auto-reset, only what is read, the env's reward kept."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.state import build_state
from workers.engine.batched import BatchedEnv
from workers.engine.wrapper import ContractReward
from workers.program.program import load_program


def test_the_step_that_ends_an_episode_is_recorded_before_the_auto_reset() -> None:
    env = BatchedEnv(envs.get_spec("HalfCheetah-v5"), [0, 1], max_episode_steps=5)
    env.reset()
    for _ in range(5):
        t = env.step(np.zeros((2, 6), dtype=np.float32))
    assert t.truncated.all() and not t.terminated.any()
    assert build_state(env.layout, env.rows).step.tolist() == [5, 5], "the row holds the last step, not the reset"
    assert not np.array_equal(t.final_obs, t.obs), "the final observation is the episode's, obs the next one's"
    env.step(np.zeros((2, 6), dtype=np.float32))
    assert build_state(env.layout, env.rows).step.tolist() == [1, 1]


def test_data_no_program_reads_is_not_written() -> None:
    spec = envs.get_spec("Ant-v5")
    lean = BatchedEnv(spec, [3, 4], needs=frozenset({"x_velocity"}))
    full = BatchedEnv(spec, [3, 4])
    for env in (lean, full):
        env.reset()
        for _ in range(20):
            env.step(np.full((2, 8), 0.5, dtype=np.float32))
    lay = full.layout
    forces = slice(lay.forces_at, lay.feet_at)
    assert np.any(full.rows[:, forces] != 0) and np.all(lean.rows[:, forces] == 0)
    np.testing.assert_array_equal(build_state(lay, lean.rows).x_velocity, build_state(lay, full.rows).x_velocity)


def test_the_contract_reward_equals_the_envs_own_reward_through_the_training_stack() -> None:
    spec = envs.get_spec("Walker2d-v5")
    program = load_program(spec.reference_reward)
    contract = ContractReward(BatchedEnv(spec, [1, 2, 3, 4], needs=program.attributes), program)
    contract.reset()
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(200):
        step = contract.reward_step(rng.uniform(-1, 1, size=(4, 6)).astype(np.float32))
        np.testing.assert_allclose(step.reward, step.env_reward, atol=1e-5)
        ended += int(step.done.sum())
    window = contract.take_window()
    assert ended > 0 and len(window.episode_lengths) == ended == window.terminated + window.truncated
    np.testing.assert_allclose(window.episode_returns, window.episode_env_returns, atol=1e-3)


def test_as_sb3s_vecenv_an_ended_episode_carries_its_terminal_observation_and_whether_time_ran_out() -> None:
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize

    spec = envs.get_spec("Hopper-v5")
    program = load_program(spec.reference_reward)
    contract = ContractReward(BatchedEnv(spec, [5, 6, 7], max_episode_steps=30, needs=program.attributes), program)
    assert isinstance(contract, VecEnv) and contract.observation_space.shape == (11,)
    venv = VecNormalize(contract, gamma=0.99)
    venv.reset()
    rng = np.random.default_rng(0)
    seen = {"terminated": 0, "truncated": 0}
    returns: list[float] = []  # SB3's Monitor record: this reward's return
    for _ in range(60):
        actions = rng.uniform(-1, 1, size=(3, 3)).astype(np.float32)
        obs, reward, done, infos = venv.step(actions)
        assert obs.shape == (3, 11) and reward.shape == (3,) and done.dtype == bool
        assert all(isinstance(i["env_reward"], float) for i in infos)
        for i in np.flatnonzero(done):
            info = infos[i]
            raw = venv.unnormalize_obs(info["terminal_observation"])  # VecNormalize normalised it, as SB3 reads it
            assert raw.shape == (11,) and not np.allclose(raw, venv.get_original_obs()[i])
            assert info["episode"]["l"] == 30 if info["TimeLimit.truncated"] else info["episode"]["l"] <= 30
            seen["truncated" if info["TimeLimit.truncated"] else "terminated"] += 1
            returns.append(info["episode"]["r"])
        assert not any("terminal_observation" in infos[i] for i in np.flatnonzero(~done))
    window = contract.take_window()
    assert seen["truncated"] == window.truncated > 0 and seen["terminated"] == window.terminated > 0
    np.testing.assert_allclose(window.episode_returns, window.episode_env_returns, atol=1e-3)
    np.testing.assert_allclose(returns, window.episode_returns, rtol=1e-5)


def test_a_window_without_any_ended_episode_still_has_per_step_rewards() -> None:
    """64 envs × 30k steps end no episode: the window's per-step means of this reward and the env's own are what
    a curve can show then (the episode return is None)."""
    spec = envs.get_spec("HalfCheetah-v5")
    program = load_program(spec.reference_reward)
    contract = ContractReward(BatchedEnv(spec, [1, 2], needs=program.attributes), program)
    contract.reset()
    rewards, env_rewards = [], []
    for _ in range(10):
        step = contract.reward_step(np.full((2, 6), 0.3, dtype=np.float32))
        rewards.extend(step.reward.tolist())
        env_rewards.extend(step.env_reward.tolist())
    summary = contract.take_window().summary()
    assert summary["episodes"] == 0 and summary["episode_return"] is None
    assert summary["reward"]["mean"] == pytest.approx(np.mean(rewards))
    assert summary["env_reward"]["mean"] == pytest.approx(np.mean(env_rewards))
    assert set(summary["components"]) == {"forward", "ctrl_cost"}
