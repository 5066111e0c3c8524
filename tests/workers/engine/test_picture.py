"""A robot's picture: drawn in a sandboxed child from the robot's files, and kept only when it is the PNG asked for."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from tests.support.robots import QUADRUPED_XML
from workers.engine.picture import (
    HEIGHT,
    MAX_PICTURE_BYTES,
    PNG_SIGNATURE,
    WIDTH,
    PictureFailed,
    _read_bounded,
    check_png,
    render_robot,
)
from workers.engine.robot import compile_robot


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


@pytest.mark.slow
def test_the_sandbox_draws_the_robot_in_its_initial_pose() -> None:
    compiled = compile_robot("pictured_quadruped", {"quadruped.xml": QUADRUPED_XML})
    png = render_robot(compiled.payload())
    assert png[:8] == PNG_SIGNATURE and check_png(png, WIDTH, HEIGHT) is png
    assert 2_000 < len(png) < MAX_PICTURE_BYTES  # a picture, not a blank frame


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"GIF89a" + b"\0" * 40, "not a PNG image"),
        (png_header(WIDTH, HEIGHT)[:20], "not a PNG image"),
        (png_header(4000, 3000), "is 4000 x 3000 pixels, not the 480 x 360 asked for"),
        (png_header(WIDTH, HEIGHT) + b"\0" * MAX_PICTURE_BYTES, "over the limit of 2,097,152"),
    ],
)
def test_what_is_not_the_picture_asked_for_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(PictureFailed, match=reason):
        check_png(raw, WIDTH, HEIGHT)


def test_a_picture_that_is_a_link_or_missing_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "picture.png").symlink_to("/etc/passwd")
    with pytest.raises(PictureFailed, match="is a link or cannot be opened"):  # O_NOFOLLOW: not followed
        _read_bounded(tmp_path / "picture.png")
    with pytest.raises(PictureFailed, match="wrote no picture"):
        _read_bounded(tmp_path / "absent.png")
