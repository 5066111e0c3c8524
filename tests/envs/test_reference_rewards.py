"""Reference rewards: Gymnasium's own reward, rewritten in the reward contract, to 1e-6 on the same transitions."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import envs
from envs.make import make_env
from envs.state import build_state
from workers.engine.dryrun import dry_run_reward
from workers.program.program import call_reward, load_program

ALL = envs.names()
ENDING = [n for n in ALL if envs.get_spec(n).dynamics.terminates]


@functools.cache
def _transitions(name: str, steps: int = 400):
    """Random transitions over several episodes; every other episode uses large actions so that robots fall."""
    spec = envs.get_spec(name)
    env = make_env(spec)
    rng = np.random.default_rng(7)
    env.reset(seed=7)
    env.action_space.seed(7)
    rows, actions, rewards, healthy, ended = [], [], [], [], []
    episode = 0
    for _ in range(steps):
        action = env.action_space.sample()
        if episode % 2:
            action = np.clip(3.0 * action, env.action_space.low, env.action_space.high)
        _, reward, terminated, truncated, _ = env.step(action)
        rows.append(env.row.copy())
        actions.append(action)
        rewards.append(reward)
        healthy.append(bool(getattr(env.unwrapped, "is_healthy", not terminated)))  # the pendulums have none
        ended.append(terminated)
        if terminated or truncated or len(rows) % 100 == 0:
            episode += 1
            env.reset(seed=int(rng.integers(1 << 30)))
    layout = env.layout
    env.close()
    return layout, np.stack(rows), np.stack(actions), np.array(rewards), np.array(healthy), np.array(ended)


@pytest.mark.parametrize("name", ALL)
def test_the_reference_reward_equals_gymnasiums_on_the_same_transitions(name: str) -> None:
    spec = envs.get_spec(name)
    layout, rows, actions, env_rewards, _healthy, ended = _transitions(name)
    if name in ENDING:
        assert ended.sum() >= 2, "the sample should include steps where the env terminates"
    program = load_program(spec.reference_reward)
    # one batched call over every transition, as the contract asks
    reward, components, warnings = call_reward(program, build_state(layout, rows), actions)
    assert warnings == []
    np.testing.assert_allclose(reward, env_rewards, rtol=0, atol=1e-6)
    np.testing.assert_allclose(reward[ended], env_rewards[ended], rtol=0, atol=1e-6)
    np.testing.assert_allclose(sum(components.values()), reward, atol=1e-9)
    # and one env at a time gives the same
    for i in [*np.flatnonzero(ended)[:3].tolist(), 0, len(rows) - 1]:
        single, _, _ = call_reward(program, build_state(layout, rows[i : i + 1]), actions[i : i + 1])
        assert single[0] == pytest.approx(env_rewards[i], abs=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_the_vectorised_health_test_is_the_envs_own(name: str) -> None:
    layout, rows, _, _, healthy, ended = _transitions(name)
    state = build_state(layout, rows)
    np.testing.assert_array_equal(state.is_healthy, healthy)
    if name not in ENDING:
        assert state.is_healthy.all()
    else:
        assert not state.is_healthy[ended].any()  # the step that ends an episode is an unhealthy one
        assert state.is_healthy.any()


@pytest.mark.parametrize("name", ALL)
def test_the_reference_reward_passes_the_dry_run_cleanly(name: str) -> None:
    spec = envs.get_spec(name)
    report = dry_run_reward(name, spec.reference_reward)
    assert report.warnings == []
    assert report.components
    if "forward" in spec.reference_reward:
        assert "forward" in report.components and "ctrl_cost" in report.components
