"""The candidate reward on the batched env: rows recorded before auto-reset, only what is read, the env's reward kept."""

from __future__ import annotations

import numpy as np

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
        step = contract.step(rng.uniform(-1, 1, size=(4, 6)).astype(np.float32))
        np.testing.assert_allclose(step.reward, step.env_reward, atol=1e-5)
        ended += int(step.done.sum())
    window = contract.take_window()
    assert ended > 0 and len(window.episode_lengths) == ended == window.terminated + window.truncated
    np.testing.assert_allclose(window.episode_returns, window.episode_env_returns, atol=1e-3)
