"""A short mp4 of a deterministic episode, rendered offscreen (MUJOCO_GL=egl)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from envs.capture import action_box, mujoco_env
from envs.make import make_env
from envs.spec import EnvSpec


def record_video(
    spec: EnvSpec,
    policy: Callable[[np.ndarray], np.ndarray],
    path: Path,
    *,
    seed: int,
    steps: int = 300,
    max_steps: int | None = None,
) -> str | None:
    """Render up to ``steps`` frames of one episode to ``path``; returns the file name, or None when rendering is unavailable."""
    import imageio

    try:
        env = make_env(spec, render_mode="rgb_array", max_episode_steps=max_steps)
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
    except Exception:  # no EGL/OSMesa on this machine: training results stand without a video
        return None
    for _ in range(steps - 1):
        action = policy(obs[None])[0]
        box = action_box(env)
        obs, _, terminated, truncated, _ = env.step(np.clip(action, box.low, box.high))
        frames.append(env.render())
        if terminated or truncated:
            break
    env.close()
    fps = round(1.0 / mujoco_env(env).dt)
    imageio.mimwrite(path, frames, fps=min(fps, 60), codec="libx264", macro_block_size=1)  # type: ignore[arg-type]
    return path.name
