"""A picture of a user robot in its initial pose: drawn offscreen in a sandboxed child, checked before it is kept.

The child (job ``render_robot``) compiles the robot from its stored files as every job on it
does, renders one frame with MuJoCo's offscreen renderer (MUJOCO_GL=egl) and writes it as a
PNG in its working directory. The trusted side reads back only that file, with bounds, and
keeps it only when it is what it says: the PNG signature, an IHDR chunk with the dimensions
asked for, and at most ``MAX_PICTURE_BYTES``. Nothing else of the child is read.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envs.spec import EnvSpec
from workers.sandbox.jobs import RenderRobotJob
from workers.sandbox.runner import Limits, Outcome, run_job

WIDTH, HEIGHT = 480, 360
MAX_PICTURE_BYTES = 2 * 1024 * 1024
"""A 480 x 360 RGB frame is about 500 kB uncompressed; a PNG larger than this is not one we drew."""
PICTURE_FILE = "picture.png"
PICTURE_LIMITS = Limits(wall_seconds=60.0, memory_mb=4096, max_processes=64, max_file_mb=8, progress_seconds=None)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PictureFailed(Exception):
    """No picture could be drawn, or what came back is not the picture asked for; the message says which."""


def draw(spec: EnvSpec, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """The robot of ``spec`` in its initial pose as PNG bytes, seen from the front left and above (sandbox only:
    it compiles the robot's model)."""
    import imageio.v3 as iio
    import mujoco

    from envs.model import compile_model

    model = compile_model(spec, contact_forces=False).model
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    root = int(model.body(spec.torso).id)
    robot = [g for g in range(model.ngeom) if _inside(model, int(model.geom_bodyid[g]), root)]
    centre = data.subtree_com[root].copy()
    radius = max([float(np.linalg.norm(data.geom_xpos[g] - centre) + model.geom_rbound[g]) for g in robot] or [0.5])
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.lookat[:] = centre
    camera.distance = max(0.3, 3.5 * min(radius, 20.0))  # the robot fills about half the frame
    camera.elevation, camera.azimuth = -20.0, 135.0
    with mujoco.Renderer(model, height, width) as renderer:
        renderer.update_scene(data, camera)
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False  # a large floor's shadow map only speckles
        frame = renderer.render()
    return bytes(iio.imwrite("<bytes>", frame, extension=".png"))


def _inside(model: Any, body: int, root: int) -> bool:
    while body:
        if body == root:
            return True
        body = int(model.body_parentid[body])
    return False


def check_png(raw: bytes, width: int, height: int) -> bytes:
    """``raw`` when it is a PNG of ``width`` x ``height`` pixels within ``MAX_PICTURE_BYTES``; PictureFailed
    otherwise."""
    if len(raw) > MAX_PICTURE_BYTES:
        raise PictureFailed(f"the picture is {len(raw):,} bytes, over the limit of {MAX_PICTURE_BYTES:,}")
    if len(raw) < 33 or raw[:8] != PNG_SIGNATURE or raw[12:16] != b"IHDR":
        raise PictureFailed("the picture is not a PNG image")
    got = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    if got != (width, height):
        raise PictureFailed(f"the picture is {got[0]} x {got[1]} pixels, not the {width} x {height} asked for")
    return raw


def _read_bounded(path: Path) -> bytes:
    """The regular file ``path`` (not a link), read up to one byte past the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise PictureFailed("the sandboxed job wrote no picture") from None
    except OSError:
        raise PictureFailed(
            "the picture the sandboxed job left is a link or cannot be opened; it was not read"
        ) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise PictureFailed("the picture the sandboxed job left is not a regular file")
        return f.read(MAX_PICTURE_BYTES + 1)


def render_robot(
    robot: Mapping[str, Any], *, limits: Limits = PICTURE_LIMITS, width: int = WIDTH, height: int = HEIGHT
) -> bytes:
    """The initial pose of the user robot that ``robot`` carries (``envs.user_env_payload``'s form, or
    ``CompiledRobot.payload``), drawn in a sandboxed child; PictureFailed with the reason."""
    job: RenderRobotJob = {"type": "render_robot", "robot": dict(robot), "width": width, "height": height}
    with tempfile.TemporaryDirectory(prefix="rewardsmith-picture-") as out:
        result = run_job(job, limits, artifacts_to=Path(out))
        if result.outcome != Outcome.OK:
            raise PictureFailed(f"the picture could not be drawn ({result.outcome}): {result.error}")
        return check_png(_read_bounded(Path(out) / PICTURE_FILE), width, height)
