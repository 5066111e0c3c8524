"""A user's robot over HTTP, for the REST API and the dashboard alike: reading an upload, its bounds, its bodies.

An upload is the main MJCF (``model``) and its asset files (``assets``), each named by the file
name it was sent with: a mesh the MJCF names ``meshes/leg.stl`` is sent with that name
(``curl -F "assets=@leg.stl;filename=meshes/leg.stl"``). Counts and sizes are bounded here, as
the files are read, before anything else sees them; what the files say is checked in the sandbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from app.db.models import Robot, User
from app.errors import InvalidInput, NotFound
from envs.upload import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES, MAX_XML_BYTES, shown
from workers.engine.picture import HEIGHT, WIDTH, PictureFailed, check_png

UPLOAD_BODY_BYTES = MAX_TOTAL_BYTES + 256 * 1024
"""Largest request body of a robot upload: its files at most ``MAX_TOTAL_BYTES`` plus the form's own bytes."""
UPLOAD_LIMIT_HINT = (
    f"a robot's upload is limited to {MAX_TOTAL_BYTES // 2**20} MiB in all ({MAX_FILE_BYTES // 2**20} MiB a mesh or "
    f"texture, {MAX_XML_BYTES // 2**20} MiB an MJCF, {MAX_FILES} files); decimate meshes and shrink textures"
)
SETTING_FIELDS = (
    "frame_skip",
    "episode_steps",
    "reset_noise",
    "termination",
    "min_height",
    "max_height",
    "min_upright",
)
"""Form fields that set the robot's settings (``envs.robot_data.RobotSettings``); an empty one keeps the default."""


class RobotFileOut(BaseModel):
    path: str
    bytes: int


class RobotOut(BaseModel):
    """A user robot as stored: who owns it, its settings (every default resolved) and what compiling it found."""

    name: str
    owner: str | None
    """None: added from the command line."""
    shared: bool
    root_file: str
    files: list[RobotFileOut]
    settings: dict[str, Any]
    description: dict[str, Any]
    picture: str | None
    """Where the picture of its initial pose is (None when none could be drawn)."""
    picture_error: str | None
    created_at: datetime


class ShareIn(BaseModel):
    shared: bool


def api_picture_url(name: str) -> str:
    return f"/api/v1/envs/{name}/picture"


def robot_out(robot: Robot, owner: User | None, *, picture_url: str) -> RobotOut:
    return RobotOut(
        name=robot.name,
        owner=owner.name if owner else None,
        shared=robot.shared,
        root_file=robot.root_file,
        files=[RobotFileOut(path=f.path, bytes=f.size) for f in robot.files],
        settings=robot.settings,
        description=robot.description,
        picture=picture_url if robot.picture_error is None else None,
        picture_error=robot.picture_error,
        created_at=robot.created_at,
    )


def picture_response(robot: Robot) -> Response:
    """The robot's picture as stored (checked again: a PNG of the size drawn), or NotFound saying why there is none."""
    if robot.picture is None:
        raise NotFound(f"no picture of '{robot.name}': {robot.picture_error or 'none was drawn'}")
    try:
        return Response(check_png(robot.picture, WIDTH, HEIGHT), media_type="image/png")
    except PictureFailed as e:
        raise NotFound(f"no picture of '{robot.name}': {e}") from None


def _read(upload: UploadFile, total: int) -> bytes:
    limit = MAX_TOTAL_BYTES - total
    content = upload.file.read(limit + 1)
    if len(content) > limit:
        raise InvalidInput(UPLOAD_LIMIT_HINT, field="assets")
    return content


def read_upload(model: UploadFile | None, assets: list[UploadFile]) -> tuple[dict[str, bytes], str]:
    """The uploaded files by the names they were sent with, and the main MJCF's name; InvalidInput for a missing
    model, too many files, a name sent twice, or too many bytes (names and types are checked by ``add_robot``)."""
    if model is None or not model.filename:
        raise InvalidInput("send the robot's MJCF as the file field 'model' (with its file name)", field="model")
    if len(assets) + 1 > MAX_FILES:
        raise InvalidInput(
            f"the upload holds {len(assets) + 1} files; at most {MAX_FILES} are accepted", field="assets"
        )
    files: dict[str, bytes] = {}
    total = 0
    for upload in [model, *assets]:
        name = upload.filename or ""
        if not name:
            raise InvalidInput("every asset file needs a file name (the path the MJCF names it by)", field="assets")
        if name in files:
            raise InvalidInput(f"the file '{shown(name)}' is sent twice; send each file once", field="assets")
        files[name] = _read(upload, total)
        total += len(files[name])
    return files, model.filename


def settings_from_fields(fields: dict[str, str | None]) -> dict[str, Any]:
    """The robot settings a form sets (empty fields keep their defaults), with numbers as numbers; InvalidInput
    names a field that is not a number where one is needed (ranges are checked by ``add_robot``)."""
    out: dict[str, Any] = {}
    for name in SETTING_FIELDS:
        value = (fields.get(name) or "").strip()
        if not value:
            continue
        if name == "termination":
            out[name] = value
            continue
        try:
            out[name] = int(value) if name in ("frame_skip", "episode_steps") else float(value)
        except ValueError:
            whole = "a whole number" if name in ("frame_skip", "episode_steps") else "a number"
            raise InvalidInput(f"{name} must be {whole}, not '{shown(value)[:40]}'", field=name) from None
    return out
