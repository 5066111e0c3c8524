"""A hostile robot upload through the API gets a clear refusal, stores nothing and leaks nothing: the engine's hostile
models (tests/envs/test_mjcf.py) sent as a person would send them, next to the upload they imitate, which works."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

import app.search.records.robots as robots
from app.db import session_scope
from app.db.models import Robot
from tests.app.api.harness import API, make_api
from tests.envs.test_mjcf import MESH, SECRET, binary_stl, robot
from tests.support.robots import upload

UNSTABLE = robot(head='<option timestep="0.05"/>', geom='type="sphere" size="0.1" mass="0.001"').replace(
    b'gear="5"', b'gear="1e7"'
)
HOSTILE = {
    "include of /etc/passwd": (
        ("robot.xml", robot(head='<include file="/etc/passwd"/>')),
        [],
        "refers to the file '/etc/passwd', which is not a relative path inside the upload",
    ),
    "a mesh at an absolute path": (
        ("robot.xml", robot(head=MESH.format("/etc/passwd"), geom='type="mesh" mesh="m"')),
        [],
        "refers to the file '/etc/passwd', which is not a relative path",
    ),
    "a mesh up a directory": (
        ("robot.xml", robot(head=MESH.format("../../etc/passwd"))),
        [("passwd.stl", binary_stl(4))],
        "refers to the file '../../etc/passwd', which is not a relative path",
    ),
    "an asset sent as ../": (
        ("robot.xml", robot()),
        [("../../etc/passwd.stl", binary_stl(4))],
        "the file name '../../etc/passwd.stl' is not accepted",
    ),
    "a model sent as an absolute path": (("/etc/robot.xml", robot()), [], "the file name '/etc/robot.xml' is not"),
    "a mesh over 16 MiB": (
        ("robot.xml", robot(head=MESH.format("big.stl"))),
        [("big.stl", b"\0" * (17 * 2**20))],
        "the file 'big.stl' is 17.0 MiB, over the limit of 16 MiB for a mesh file",
    ),
    "10,000 bodies": (
        ("robot.xml", robot(world="<body><geom size='0.01'/></body>" * 10_000)),
        [],
        "the model has more than 200 bodies",
    ),
    "an unstable model": (("robot.xml", UNSTABLE), [], "the model is not stable"),
}


@pytest.fixture
def api(sqlite_sf: sessionmaker, tmp_path: Path):
    return make_api(sqlite_sf, tmp_path)


def _stored(api) -> int:
    with session_scope(api.sf) as s:
        return s.scalar(select(func.count(Robot.id)))


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_a_hostile_upload_is_refused_with_the_reason_and_leaks_nothing(api, attack: str) -> None:
    model, assets, reason = HOSTILE[attack]
    r = upload(api.client, api.user("mallory"), "hostile", model=model, assets=assets)
    assert r.status_code == 422, r.text
    assert reason in r.json()["error"]["message"], r.json()
    assert SECRET not in r.text and "root:x" not in r.text
    assert _stored(api) == 0 and api.client.get(f"{API}/envs/hostile", headers=api.user("eve")).status_code == 404


def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(api) -> None:
    r = upload(
        api.client,
        api.user("mallory"),
        "hostile",
        model=("robot.xml", robot(head=MESH.format("big.stl"))),
        assets=[("big.stl", b"\0" * (50 * 2**20))],
    )
    assert r.status_code == 413
    assert r.json()["error"]["message"].startswith("a robot's upload is limited to 48 MiB in all (16 MiB a mesh")
    assert _stored(api) == 0


def test_meshes_sent_under_their_directory_compile_from_the_upload_alone(api) -> None:
    """The happy case the path attacks imitate: a mesh the MJCF names meshes/part.stl, sent under that name."""
    model = robot(
        head='<compiler meshdir="meshes"/>' + MESH.format("part.stl"),
        world='<body name="prop" pos="1 0 0.1"><geom type="mesh" mesh="m"/></body>',
    )
    alice = api.user("alice")
    r = upload(api.client, alice, "probe", model=("robot.xml", model), assets=[("meshes/part.stl", binary_stl(4))])
    assert r.status_code == 201, r.text
    assert [f["path"] for f in r.json()["files"]] == ["meshes/part.stl", "robot.xml"]
    detail = api.client.get(f"{API}/envs/probe", headers=alice).json()
    assert "- prop: not part of the robot" in detail["description"]
    robots.forget("probe")
