"""Creating envs with state capture, and sampling states for dry runs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.capture import Layout, StateCapture, action_box, quiet_mujoco
from envs.spec import EnvSpec


def make_gym_env(spec: EnvSpec, *, render_mode: str | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """The plain Gymnasium env of ``spec`` (MuJoCo warnings go to logging, not to MUJOCO_LOG.TXT)."""
    quiet_mujoco()
    if max_episode_steps:
        return gym.make(spec.gym_id, render_mode=render_mode, max_episode_steps=max_episode_steps)
    return gym.make(spec.gym_id, render_mode=render_mode)


def make_env(
    spec: EnvSpec,
    *,
    row: np.ndarray | None = None,
    render_mode: str | None = None,
    max_episode_steps: int | None = None,
) -> StateCapture:
    """One Gymnasium env of ``spec`` wrapped so that each step records its raw state in ``row``."""
    env = make_gym_env(spec, render_mode=render_mode, max_episode_steps=max_episode_steps)
    return StateCapture(env, Layout.from_env(spec, env), row)


def layout_of(spec: EnvSpec) -> Layout:
    """The raw-row layout of ``spec`` (builds one env to read its model)."""
    env = make_env(spec)
    try:
        return env.layout
    finally:
        env.close()


def episode_limit(spec: EnvSpec) -> int:
    """The env's own cap on episode length (Gymnasium's ``max_episode_steps``)."""
    return int(gym.spec(spec.gym_id).max_episode_steps or 1000)


def sample_rows(
    spec: EnvSpec, *, count: int = 256, seed: int = 0, episode_steps: int = 120, every: int = 1
) -> tuple[Layout, np.ndarray]:
    """Raw rows of states visited under random actions, spread over several episodes of at most ``episode_steps``.

    Dry runs call candidate programs on these, so that a program sees the values it will
    meet early in training (including fallen and unhealthy states). ``every`` keeps one
    step in that many, so that a few rows can span whole episodes.
    """
    env = make_env(spec)
    rng = np.random.default_rng(seed)
    rows = np.zeros((count, env.layout.size))
    env.action_space.seed(seed)
    episode = 0
    env.reset(seed=seed)
    steps = 0
    for i in range(count * every):
        action = env.action_space.sample()
        # Bias some episodes towards large actions so that falls and flips appear.
        if episode % 2:
            action = np.clip(action * 3.0, action_box(env).low, action_box(env).high)
        _, _, terminated, truncated, _ = env.step(action)
        if i % every == every - 1:
            rows[i // every] = env.row
        steps += 1
        if terminated or truncated or steps >= episode_steps:
            episode += 1
            steps = 0
            env.reset(seed=int(rng.integers(2**31)))
    layout = env.layout
    env.close()
    return layout, rows
