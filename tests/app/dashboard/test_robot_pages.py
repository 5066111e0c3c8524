"""The dashboard's robot pages: the upload form goes through the same sandbox and rules as the API; the robot's page
shows its description, settings and the picture of its initial pose; another user sees none of it; a new task can
be made on it from the task form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

import app.search.records.robots as robots
import envs
from tests.app.api.harness import Api, make_api
from tests.app.dashboard.harness import TASK_FORM, log_in
from tests.envs.test_mjcf import SECRET, robot
from tests.support.robots import QUADRUPED_XML
from workers.engine.picture import HEIGHT, PNG_SIGNATURE, WIDTH


@pytest.fixture
def api(sqlite_sf: sessionmaker, tmp_path: Path) -> Api:
    """On SQLite only: the robot's storage is tested on both databases in tests/app/api/test_robots.py."""
    return make_api(sqlite_sf, tmp_path)


@pytest.fixture(autouse=True)
def _forget_robots() -> Iterator[None]:
    yield
    for name in envs.user_names():
        robots.forget(name)


def _upload(browser, name: str, model: tuple[str, bytes], **settings: str):
    return browser.post(
        "/robots",
        {"name": name, **settings},
        files=[("model", (model[0], model[1], "application/xml")), ("assets", ("", b"", "application/octet-stream"))],
    )


@pytest.mark.slow
def test_a_robot_uploaded_from_the_dashboard_shows_its_description_settings_and_picture(api: Api) -> None:
    api.user("alice")
    alice = log_in(api, "alice")
    page = alice.client.get("/robots")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text and 'name="model"' in page.text
    assert '<a href="/robots">Robots</a>' in page.text  # in the navigation

    r = _upload(alice, "dash_quad", ("quadruped.xml", QUADRUPED_XML), episode_steps="250")
    assert r.status_code == 303 and r.headers["location"] == "/robots/dash_quad", r.text
    page = alice.client.get("/robots/dash_quad")
    assert page.status_code == 200
    for shown in (
        "# dash_quad",  # what the designer sees
        "- front_left_foot: a foot",
        "<dt>episode_steps</dt><dd>250</dd>",
        "<dt>frame_skip</dt><dd>10</dd>",  # a default, resolved for this model
        "realtime_factor",
        "forward_distance",  # a fitness metric that applies
        'src="/robots/dash_quad/picture.png"',
        'href="/tasks/new?env=dash_quad"',
    ):
        assert shown in page.text, shown
    assert "- reach:" not in page.text  # a metric that reads bodies the quadruped lacks
    png = alice.client.get("/robots/dash_quad/picture.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == PNG_SIGNATURE and int.from_bytes(png.content[16:20]) == WIDTH
    assert int.from_bytes(png.content[20:24]) == HEIGHT

    # the fitness check runs on it in the sandbox (the dashboard's one gateway for a person's jobs)
    program = "import numpy as np\n\n\ndef compute_fitness(traj):\n    return float(np.max(traj.z_position))\n"
    checked = alice.htmx("POST", "/ui/check-fitness", data={"env": "dash_quad", "fitness_program": program})
    assert checked.status_code == 200 and "Accepted: on a sampled episode it gives" in checked.text, checked.text
    # the task form offers it, and a task on it is created from the form
    form = alice.client.get("/tasks/new?env=dash_quad")
    assert '<option value="dash_quad" selected>' in form.text
    r = alice.post("/tasks/new", {**TASK_FORM, "env": "dash_quad", "description": "walk forward"})
    assert r.status_code == 303 and r.headers["location"].startswith("/runs/"), r.text

    # bob sees none of it
    api.user("bob")
    bob = log_in(api, "bob")
    assert "dash_quad" not in bob.client.get("/robots").text
    assert bob.client.get("/robots/dash_quad").status_code == 404
    assert bob.client.get("/robots/dash_quad/picture.png").status_code == 404
    assert 'value="dash_quad"' not in bob.client.get("/tasks/new").text
    assert bob.post("/robots/dash_quad/remove").status_code == 404
    r = bob.htmx("POST", "/ui/check-fitness", data={"env": "dash_quad", "fitness_program": program})
    assert r.status_code == 422 and "unknown env" in r.text
    r = bob.post("/tasks/new", {**TASK_FORM, "env": "dash_quad", "description": "walk forward"})
    assert r.status_code == 422 and "unknown env" in r.text


def test_a_refused_upload_comes_back_on_the_form_with_the_reason(api: Api) -> None:
    api.user("mallory")
    mallory = log_in(api, "mallory")
    r = _upload(mallory, "hostile", ("robot.xml", robot(head='<include file="/etc/passwd"/>')), reset_noise="0.2")
    assert r.status_code == 422
    assert "refers to the file &#39;/etc/passwd&#39;, which is not a relative path" in r.text
    assert SECRET not in r.text and 'value="hostile"' in r.text and 'value="0.2"' in r.text  # the form keeps input
    assert mallory.client.get("/robots/hostile").status_code == 404


@pytest.mark.slow
def test_only_an_admin_shares_and_only_the_owner_or_an_admin_removes(api: Api) -> None:
    api.user("alice")
    api.user("root", admin=True)
    alice, root = log_in(api, "alice"), log_in(api, "root")
    assert _upload(alice, "mine", ("quadruped.xml", QUADRUPED_XML)).status_code == 303
    page = alice.client.get("/robots/mine").text
    assert "Share with every user" not in page and "Remove this robot" in page
    assert alice.post("/robots/mine/share", {"shared": "yes"}).status_code == 403
    assert "Share with every user" in root.client.get("/robots/mine").text
    assert root.post("/robots/mine/share", {"shared": "yes"}).status_code == 303
    api.user("bob")
    bob = log_in(api, "bob")
    assert (
        "Remove this robot" not in bob.client.get("/robots/mine").text
        and "shared with everyone" in bob.client.get("/robots/mine").text
    )
    assert bob.post("/robots/mine/remove").status_code == 403
    assert alice.post("/robots/mine/remove").status_code == 303
    assert alice.client.get("/robots/mine").status_code == 404
