"""Videos worth judging by: the camera follows the robot, and the clip covers the whole episode.

A robot that ran 30 m away must still be in the middle of the frame (the root body's projection
near the image centre), for a built-in env and for a user robot; and the clip holds every step of
the episode, in fewer frames where needed, with its length recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import imageio.v2 as imageio
import mujoco
import numpy as np
import pytest

import envs
from envs.capture import mujoco_env
from envs.make import make_env
from workers.engine.video import MAX_FPS, follow_root, frame_stride, record_video

ROBOTS = Path(__file__).resolve().parents[2] / "fixtures" / "robots"


@pytest.fixture(scope="module")
def quadruped() -> Iterator[envs.EnvSpec]:
    yield envs.register_user_env("filmed_quadruped", {"quadruped.xml": (ROBOTS / "quadruped.xml").read_bytes()})
    envs.unregister_user_env("filmed_quadruped")


def _where_on_screen(env: object, point: np.ndarray) -> tuple[float, float]:
    """(u, v) of the world ``point`` in the last rendered frame: 0..1 from the left and from the bottom."""
    viewer = mujoco_env(env).mujoco_renderer.viewer  # type: ignore[arg-type]
    cam = viewer.scn.camera[0]
    forward, up = np.asarray(cam.forward), np.asarray(cam.up)
    right = np.cross(forward, up)
    rel = point - np.asarray(cam.pos)
    depth = float(rel @ forward)
    assert depth > 0, "the robot is behind the camera"
    x, y = float(rel @ right) / depth * cam.frustum_near, float(rel @ up) / depth * cam.frustum_near
    height = cam.frustum_top - cam.frustum_bottom
    half_width = 0.5 * height * viewer.viewport.width / viewer.viewport.height
    return (x - cam.frustum_center + half_width) / (2 * half_width), (y - cam.frustum_bottom) / height


def _after_running_away(spec: envs.EnvSpec, *, follow: bool) -> tuple[float, float]:
    env = make_env(spec, render_mode="rgb_array")
    if follow:
        follow_root(env, spec)
    env.reset(seed=0)
    env.render()  # the camera settles where the robot starts
    u = mujoco_env(env)
    u.data.qpos[0] += 30.0  # the root's x: the robot is now 30 m down the track
    mujoco.mj_forward(u.model, u.data)
    env.render()
    where = _where_on_screen(env, u.data.xpos[u.model.body(spec.torso).id].copy())
    env.close()
    return where


@pytest.mark.parametrize("name", ["HalfCheetah-v5", "quadruped"])
def test_the_camera_keeps_a_robot_that_ran_far_in_the_middle_of_the_frame(name: str, quadruped: envs.EnvSpec) -> None:
    spec = quadruped if name == "quadruped" else envs.get_spec(name)
    u, v = _after_running_away(spec, follow=True)
    assert abs(u - 0.5) < 0.1 and abs(v - 0.5) < 0.25, (u, v)
    # the env's own camera stays where the robot started: the robot has left the frame
    u0, _ = _after_running_away(spec, follow=False)
    assert not 0.0 <= u0 <= 1.0, u0


def test_the_stride_keeps_the_whole_episode_within_the_frames_and_the_frame_rate() -> None:
    assert frame_stride(1000, 0.05, 500) == 2  # HalfCheetah: 50 s in 500 frames at 10 frames/s
    assert frame_stride(1000, 0.008, 500) == 3  # Hopper steps 125 times a second: at most MAX_FPS frames/s
    assert 1 / (0.008 * frame_stride(1000, 0.008, 500)) <= MAX_FPS
    assert frame_stride(100, 0.05, 500) == 1


@pytest.mark.slow
def test_the_clip_shows_the_whole_episode_and_says_how_long_it_is(tmp_path: Path) -> None:
    spec = envs.get_spec("HalfCheetah-v5")  # never ends early: the episode runs to its limit
    info = record_video(
        spec, lambda obs: np.zeros((1, 6)), tmp_path / "video.mp4", seed=0, max_frames=40, max_steps=200
    )
    assert info is not None
    assert info["steps"] == 200 and info["seconds"] == pytest.approx(200 * 0.05)
    assert info["stride"] == 5 and info["frames"] == 41  # the first frame, then one per 5 steps
    with imageio.get_reader(tmp_path / "video.mp4", format="FFMPEG") as reader:
        meta = reader.get_meta_data()
        frames = sum(1 for _ in reader)
    assert frames == info["frames"]
    assert meta["fps"] == pytest.approx(info["fps"]) == 4.0  # one frame per 5 steps of 0.05 s: real time
    assert frames / meta["fps"] == pytest.approx(info["seconds"], rel=0.05)


def test_frames_are_drawn_cheaply() -> None:
    """A small shadow map, no floor reflection, no multisampling: a quarter of the CPU a frame; the settings last
    from frame to frame (Gymnasium keeps one viewer per env)."""
    from workers.engine.video import SHADOW_MAP, render_cheaply

    spec = envs.get_spec("HalfCheetah-v5")
    env = make_env(spec, render_mode="rgb_array")
    follow_root(env, spec)
    env.reset(seed=0)
    model = mujoco_env(env).model  # type: ignore[arg-type]
    assert model.mat_reflectance.max() > 0  # HalfCheetah's floor reflects
    render_cheaply(env)
    assert mujoco_env(env).mujoco_renderer.viewer is None  # type: ignore[arg-type]  # no frame drawn to set it up
    assert model.vis.quality.shadowsize <= SHADOW_MAP and model.vis.quality.offsamples == 0
    first = env.render()
    viewer = mujoco_env(env).mujoco_renderer.viewer  # type: ignore[arg-type]
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    # the same picture as with reflections switched off in the scene: the floor no longer reflects anything
    assert np.array_equal(env.render(), first)
    assert first.shape == (480, 480, 3) and first.std() > 10
    env.close()
