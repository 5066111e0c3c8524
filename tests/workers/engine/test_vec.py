"""The training vec env: rows recorded before auto-reset, equal to the single-env capture, and only what is read."""

from __future__ import annotations

import numpy as np

import envs
from envs.make import layout_of, make_env, make_gym_env
from envs.state import build_state
from workers.engine.vec import CaptureVecEnv
from workers.engine.wrapper import ContractReward
from workers.sandbox.program import load_program


def _vec(env: str, n: int, needs=None, episode_steps: int | None = None) -> tuple[CaptureVecEnv, np.ndarray]:
    spec = envs.get_spec(env)
    layout = layout_of(spec)
    buffer = np.zeros((n, layout.size))
    vec = CaptureVecEnv([lambda: make_gym_env(spec, max_episode_steps=episode_steps)] * n, layout, buffer, needs)
    return vec, buffer


def test_rows_equal_what_a_single_captured_env_records_for_the_same_seed_and_actions() -> None:
    spec = envs.get_spec("HalfCheetah-v5")  # never terminates, so neither side resets in between
    vec, buffer = _vec("HalfCheetah-v5", 1)
    vec.seed(7)
    vec.reset()
    single = make_env(spec)
    single.reset(seed=7)
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.uniform(-1, 1, size=(1, 6)).astype(np.float32)
        vec.step(a)
        single.step(a[0])
        np.testing.assert_array_equal(buffer[0], single.row)


def test_the_step_that_ends_an_episode_is_recorded_before_the_auto_reset() -> None:
    vec, buffer = _vec("HalfCheetah-v5", 2, episode_steps=5)
    vec.reset()
    for _t in range(1, 6):
        _, _, dones, infos = vec.step(np.zeros((2, 6), dtype=np.float32))
    assert dones.all() and all(i["TimeLimit.truncated"] for i in infos)
    state = build_state(vec.recorders[0].layout, buffer)
    assert state.step.tolist() == [5, 5], "the row holds the last step of the episode, not the reset"
    vec.step(np.zeros((2, 6), dtype=np.float32))
    assert build_state(vec.recorders[0].layout, buffer).step.tolist() == [1, 1]


def test_data_no_program_reads_is_not_captured() -> None:
    lean, lean_buffer = _vec("Ant-v5", 2, needs=frozenset({"x_velocity"}))
    full, full_buffer = _vec("Ant-v5", 2)
    for vec in (lean, full):
        vec.seed(3)
        vec.reset()
        for _ in range(20):
            vec.step(np.full((2, 8), 0.5, dtype=np.float32))
    layout = lean.recorders[0].layout
    forces = slice(layout.forces_at, layout.feet_at)
    assert np.any(full_buffer[:, forces] != 0) and np.all(lean_buffer[:, forces] == 0)
    np.testing.assert_array_equal(
        build_state(layout, lean_buffer).x_velocity, build_state(layout, full_buffer).x_velocity
    )


def test_the_contract_reward_equals_the_envs_own_reward_through_the_training_stack() -> None:
    spec = envs.get_spec("Walker2d-v5")
    program = load_program(spec.reference_reward)
    vec, buffer = _vec("Walker2d-v5", 4, needs=program.attributes & layout_of(spec).fields)
    wrapped = ContractReward(vec, program, vec.recorders[0].layout, buffer)
    wrapped.seed(1)
    wrapped.reset()
    rng = np.random.default_rng(1)
    for _ in range(200):
        _, reward, _, infos = wrapped.step(rng.uniform(-1, 1, size=(4, 6)).astype(np.float32))
        np.testing.assert_allclose(reward, [i["env_reward"] for i in infos], atol=1e-5)
