"""An mp4 of one whole deterministic episode, rendered offscreen (MUJOCO_GL=egl) by a camera that follows the robot.

A person chooses between policies by watching them, so the clip must show the robot for the
whole episode: the camera tracks the root body (MuJoCo's tracking camera, ``trackbodyid``), and
every step of the episode is simulated, with frames skipped where needed so that the clip keeps
to ``max_frames`` and at most ``MAX_FPS``. The clip plays in real time; ``VideoInfo`` says how
long the episode was and how many steps one frame stands for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from envs.capture import action_box, mujoco_env
from envs.make import episode_limit, make_env
from envs.spec import EnvSpec
from workers.engine.result import VideoInfo

MAX_FPS = 60
"""Players show no more; an env stepped faster (Hopper: 125 steps/s) keeps one step in several."""
SHADOW_MAP = 1024
"""Side of the shadow map in pixels (Gymnasium's models ask for 4,096, drawn on the CPU for every frame)."""


def follow_root(env: gym.Env, spec: EnvSpec) -> None:
    """Make ``env``'s offscreen camera track the root body of the robot (``spec.torso``), keeping the env's own
    distance and angles; call before the first ``render``."""
    u = mujoco_env(env)
    renderer: Any = u.mujoco_renderer
    config = dict(renderer.default_cam_config or {})
    config.pop("lookat", None)  # a tracking camera looks at the body, wherever it goes
    config["type"] = mujoco.mjtCamera.mjCAMERA_TRACKING
    config["trackbodyid"] = int(u.model.body(spec.torso).id)
    config.setdefault("distance", max(1.0, 3.0 * float(u.model.stat.extent)))
    config.setdefault("elevation", -20.0)
    renderer.default_cam_config = config
    renderer.camera_id = None  # else every render sets the camera back to a free one (camera_id -1)


def render_cheaply(env: gym.Env) -> None:
    """Draw ``env``'s frames at a quarter of the CPU: a 1,024-pixel shadow map instead of 4,096, no floor reflection
    and no multisampling (HalfCheetah, 480 x 480: 0.024 s a frame instead of 0.105 on this project's 2-core machine).
    The robot keeps its shadow, which shows how high it is. Call before the first ``render``: the viewer's buffers
    follow the quality settings when it is made. Visual settings only: the physics is the same."""
    model = mujoco_env(env).model
    model.vis.quality.shadowsize = min(int(model.vis.quality.shadowsize), SHADOW_MAP)
    model.vis.quality.offsamples = 0
    model.mat_reflectance[:] = 0  # MuJoCo draws a reflection only for materials that reflect


def frame_stride(steps: int, dt: float, max_frames: int) -> int:
    """Control steps per frame so that ``steps`` steps fit in ``max_frames`` frames at most ``MAX_FPS`` frames/s."""
    return max(1, math.ceil(steps / max(1, max_frames)), math.ceil(1.0 / (dt * MAX_FPS)))


def record_video(
    spec: EnvSpec,
    policy: Callable[[np.ndarray], np.ndarray],
    path: Path,
    *,
    seed: int,
    max_frames: int = 300,
    max_steps: int | None = None,
) -> VideoInfo | None:
    """Render one whole episode (up to ``max_steps``, else the env's limit) to ``path`` in at most ``max_frames``
    frames; returns what it shows, or None when offscreen rendering is unavailable on this machine."""
    import imageio

    limit = max_steps or episode_limit(spec)
    try:
        env = make_env(spec, render_mode="rgb_array", max_episode_steps=max_steps)
        follow_root(env, spec)
        obs, _ = env.reset(seed=seed)
        render_cheaply(env)
        frames = [env.render()]
    except Exception:  # no EGL/OSMesa on this machine: training results stand without a video
        return None
    dt = float(mujoco_env(env).dt)
    stride = frame_stride(limit, dt, max_frames)
    box = action_box(env)
    steps = 0
    while steps < limit:
        action = policy(obs[None])[0]
        obs, _, terminated, truncated, _ = env.step(np.clip(action, box.low, box.high))
        steps += 1
        ended = terminated or truncated
        if steps % stride == 0 or ended:
            frames.append(env.render())
        if ended:
            break
    env.close()
    fps = 1.0 / (dt * stride)
    imageio.mimwrite(path, frames, fps=fps, codec="libx264", macro_block_size=1)  # type: ignore[arg-type]
    return VideoInfo(steps=steps, seconds=steps * dt, frames=len(frames), fps=fps, stride=stride)
