"""A user's robot through the REST API: uploaded, compiled and drawn in the sandbox, stored with its files, used by
name like a built-in env; owned by its uploader, shared only by an admin; removed by its owner.

Uploads go through the real sandbox (a compile and a picture each: about two seconds); tests about what happens
after an upload store a robot compiled once for the module (``tests.support.robots.store``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

import app.search.records.robots as robots
import envs
from app.db import session_scope
from app.db.models import Candidate, Robot, RobotFile, Run, User
from tests.app.api.harness import API, Api
from tests.support.robots import ARM_XML, QUADRUPED_XML, store, upload
from tests.support.tasks import TINY
from workers.engine.picture import HEIGHT, PNG_SIGNATURE, WIDTH
from workers.engine.robot import CompiledRobot, compile_robot


@pytest.fixture(scope="module")
def compiled() -> CompiledRobot:
    return compile_robot("stored_quadruped", {"quadruped.xml": QUADRUPED_XML}, {"episode_steps": 200})


@pytest.fixture(autouse=True)
def _forget_robots() -> Iterator[None]:
    """Each test's database is new: what an earlier test registered in this process goes with it."""
    yield
    for name in envs.user_names():
        robots.forget(name)


def _user_id(api: Api, name: str) -> int:
    with session_scope(api.sf) as s:
        return s.scalar(select(User.id).where(User.name == name))


def test_a_robot_uploaded_through_the_api_is_stored_described_drawn_and_listed(api: Api) -> None:
    alice = api.user("alice")
    r = upload(api.client, alice, "quad", episode_steps="300", termination="height", min_height="0.15")
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["owner"] == "alice" and out["shared"] is False and out["root_file"] == "quadruped.xml"
    assert out["files"] == [{"path": "quadruped.xml", "bytes": len(QUADRUPED_XML)}]
    # every default resolved, as `envs show` prints them
    assert out["settings"] == {
        "frame_skip": 10,
        "episode_steps": 300,
        "reset_noise": 0.1,
        "termination": "height",
        "min_height": 0.15,
        "max_height": None,
        "min_upright": None,
    }
    assert out["description"]["root_body"] == "torso" and len(out["description"]["actuators"]) == 8
    assert out["picture"] == "/api/v1/envs/quad/picture" and out["picture_error"] is None

    picture = api.client.get(out["picture"], headers=alice)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    png = picture.content
    assert png[:8] == PNG_SIGNATURE and (int.from_bytes(png[16:20]), int.from_bytes(png[20:24])) == (WIDTH, HEIGHT)

    listed = {e["name"]: e for e in api.client.get(f"{API}/envs", headers=alice).json()}
    assert listed["quad"]["user_robot"] is True and listed["HalfCheetah-v5"]["user_robot"] is False
    assert "free-floating, 8 actuators" in listed["quad"]["title"]

    detail = api.client.get(f"{API}/envs/quad", headers=alice).json()
    assert detail["description"].startswith("# quad") and "- front_left_foot: a foot" in detail["description"]
    assert "falls below 0.15 m" in detail["termination"] and detail["robot"]["owner"] == "alice"
    # the fitness metrics offered are those that apply: no 'reach' or 'push' (they read bodies it lacks)
    assert {m["name"] for m in detail["fitness_metrics"]} == {
        m.name for m in envs.fitness.metrics_for(envs.get_spec("quad"))
    }
    assert "reach" not in {m["name"] for m in detail["fitness_metrics"]}

    with session_scope(api.sf) as s:  # stored with its files: a worker on another host rebuilds it from these
        robot = s.scalar(select(Robot).where(Robot.name == "quad"))
        assert [(f.path, f.content) for f in robot.files] == [("quadruped.xml", QUADRUPED_XML)]
        assert robot.content_hash == robots.content_hash(
            {"quadruped.xml": QUADRUPED_XML}, "quadruped.xml", robot.settings, robot.description
        )


def test_a_task_on_a_robot_is_created_like_one_on_a_built_in_env(api: Api, compiled: CompiledRobot) -> None:
    alice = api.user("alice")
    store(api.sf, compiled, owner_id=_user_id(api, "alice"))
    r = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "env": "stored_quadruped"})
    assert r.status_code == 201, r.text
    assert r.json()["env"] == "stored_quadruped" and api.dispatcher.calls == [("start", r.json()["run_id"])]
    # a metric that reads bodies the quadruped lacks is refused, naming the ones that apply
    r = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "env": "stored_quadruped", "fitness": "reach"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "fitness"
    assert "reads bodies that stored_quadruped lacks (fingertip, target)" in r.json()["error"]["message"]
    assert "forward_distance" in r.json()["error"]["message"]


def test_a_robot_is_its_owners_until_an_admin_shares_it(api: Api, compiled: CompiledRobot) -> None:
    alice, bob, root = api.user("alice"), api.user("bob"), api.user("root", admin=True)
    store(api.sf, compiled, owner_id=_user_id(api, "alice"))
    name = compiled.name

    def bob_sees() -> bool:
        return name in {e["name"] for e in api.client.get(f"{API}/envs", headers=bob).json()}

    # bob cannot see it, use it, draw it or remove it: to him it does not exist
    assert not bob_sees()
    for method, path in (("GET", f"/envs/{name}"), ("GET", f"/envs/{name}/picture"), ("DELETE", f"/envs/{name}")):
        r = api.client.request(method, f"{API}{path}", headers=bob)
        assert r.status_code == 404, (method, path, r.text)
        assert "alice" not in r.text
    r = api.client.post(f"{API}/tasks", headers=bob, json={**TINY, "env": name})
    assert r.status_code == 422 and r.json()["error"]["field"] == "env"
    message = r.json()["error"]["message"]
    assert f"unknown env '{name}'" in message and name not in message.split("Known envs:")[1]
    # an admin sees it; its owner may not share it, an admin may
    assert api.client.get(f"{API}/envs/{name}", headers=root).status_code == 200
    r = api.client.patch(f"{API}/envs/{name}", headers=alice, json={"shared": True})
    assert r.status_code == 403 and "only an admin" in r.json()["error"]["message"]
    r = api.client.patch(f"{API}/envs/{name}", headers=root, json={"shared": True})
    assert r.status_code == 200 and r.json()["shared"] is True
    # shared: bob sees and uses it, but it stays alice's
    assert bob_sees() and api.client.get(f"{API}/envs/{name}", headers=bob).status_code == 200
    assert api.client.post(f"{API}/tasks", headers=bob, json={**TINY, "env": name}).status_code == 201
    r = api.client.delete(f"{API}/envs/{name}", headers=bob)
    assert r.status_code == 403 and "only its owner or an admin" in r.json()["error"]["message"]
    # unshared: bob loses it again
    assert api.client.patch(f"{API}/envs/{name}", headers=root, json={"shared": False}).status_code == 200
    assert not bob_sees()


def test_a_robot_is_removed_by_its_owner_once_no_unfinished_run_uses_it(api: Api, compiled: CompiledRobot) -> None:
    alice = api.user("alice")
    store(api.sf, compiled, owner_id=_user_id(api, "alice"))
    name = compiled.name
    run_id = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "env": name}).json()["run_id"]
    assert name in envs.user_names()  # registered in this process by the task's check
    r = api.client.delete(f"{API}/envs/{name}", headers=alice)
    assert r.status_code == 409 and f"used by unfinished runs ({run_id})" in r.json()["error"]["message"]
    with session_scope(api.sf) as s:
        s.get(Run, run_id).status = "cancelled"
    assert api.client.delete(f"{API}/envs/{name}", headers=alice).status_code == 204
    assert api.client.get(f"{API}/envs/{name}", headers=alice).status_code == 404
    assert name not in envs.user_names()  # forgotten in this process too
    with session_scope(api.sf) as s:
        assert s.scalar(select(RobotFile.id)) is None  # its files went with it


@pytest.mark.parametrize(
    ("name", "status", "field", "message"),
    [
        ("Ant-v5", 422, "name", "not the name of a built-in env"),
        ("../etc", 422, "name", "use 1 to 48 letters, digits"),
        ("stored_quadruped", 409, None, "a robot named 'stored_quadruped' already exists"),
    ],
)
def test_a_bad_or_taken_name_is_refused_before_any_sandbox_runs(
    api: Api, compiled: CompiledRobot, name: str, status: int, field: str | None, message: str
) -> None:
    bob = api.user("bob")
    store(api.sf, compiled, owner_id=None)  # the command line's: bob cannot see it, but its name is taken
    r = upload(api.client, bob, name, model=("robot.xml", b"not even XML"))
    assert r.status_code == status and r.json()["error"]["field"] == field and message in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ({"frame_skip": "ten"}, "frame_skip", "frame_skip must be a whole number, not 'ten'"),
        ({"reset_noise": "nan"}, "settings", "reset_noise must be a finite number"),
        ({"termination": "sometimes"}, "settings", "termination must be one of none, height, upright"),
        ({"episode_steps": "5"}, "settings", "episode_steps must be between 10 and 100,000, not 5"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name(api: Api, settings: dict, field: str, message: str) -> None:
    r = upload(api.client, api.user("alice"), "quad", **settings)
    assert r.status_code == 422 and r.json()["error"]["field"] == field and message in r.json()["error"]["message"]


def test_a_setting_the_model_cannot_have_is_refused_by_the_sandbox(sqlite_sf: sessionmaker, tmp_path) -> None:
    from tests.app.api.harness import make_api

    api = make_api(sqlite_sf, tmp_path)
    r = upload(api.client, api.user("alice"), "arm", model=("arm.xml", ARM_XML), termination="height")
    assert r.status_code == 422 and r.json()["error"]["field"] == "model"
    assert "termination 'height' needs a free-floating root" in r.json()["error"]["message"]


def test_a_candidate_on_a_robot_has_no_export_bundle_and_says_what_to_download(api: Api, compiled) -> None:
    alice = api.user("alice")
    store(api.sf, compiled, owner_id=_user_id(api, "alice"))
    run_id = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "env": compiled.name}).json()["run_id"]
    with session_scope(api.sf) as s:
        c = Candidate(
            run_id=run_id, index=0, origin="llm", code="def compute_reward(state, action): ...", status="trained"
        )
        s.add(c)
        s.flush()
        candidate_id = c.id
    for path in ("bundle.zip", "wrapper.py"):
        r = api.client.get(f"{API}/candidates/{candidate_id}/{path}", headers=alice)
        assert r.status_code == 409, r.text
        assert "is a user robot: an export bundle holds one of Gymnasium's envs only" in r.json()["error"]["message"]
