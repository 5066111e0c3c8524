"""The test quadruped (tests/fixtures/robots/quadruped.xml) as the service stores it: uploaded through the API, or,
where a test is about what happens after the upload, compiled once in the sandbox and stored directly."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import sessionmaker

import app.search.records.robots as robots
from app.db import session_scope
from workers.engine.robot import CompiledRobot

ROBOTS = Path(__file__).resolve().parents[1] / "fixtures" / "robots"
QUADRUPED_XML = (ROBOTS / "quadruped.xml").read_bytes()
ARM_XML = (ROBOTS / "arm.xml").read_bytes()


def upload(
    client: TestClient,
    headers: dict[str, str],
    name: str,
    model: tuple[str, bytes] = ("quadruped.xml", QUADRUPED_XML),
    assets: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    **settings: str,
) -> Response:
    """POST /api/v1/envs as curl -F would send it: the MJCF as 'model', each asset under the path it is sent with."""
    files = [("model", (model[0], model[1], "application/xml"))]
    files += [("assets", (path, content, "application/octet-stream")) for path, content in assets]
    return client.post("/api/v1/envs", headers=headers, data={"name": name, **settings}, files=files)


def store(sf: sessionmaker, compiled: CompiledRobot, *, owner_id: int | None, name: str | None = None) -> None:
    """Store a robot the sandbox compiled (as ``add_robot`` does after the compile), without a picture."""
    with session_scope(sf) as s:
        robots.store(
            s,
            name=name or compiled.name,
            owner_id=owner_id,
            files=compiled.files,
            root_file=compiled.root_file,
            settings=compiled.settings,
            description=compiled.description,
            picture=None,
            picture_error="not drawn in this test",
        )
