"""Who may call what (401 without a token, 404 across users, admins see all), the body-size limit (413), the
task-creation rate limit (429), and `rewardsmith users create`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import ApiToken
from app.main import create_app
from tests.app.api.harness import API, Api, make_api, run_row, seed_finished_run
from tests.support.db import make_settings as settings_for
from tests.support.tasks import TINY

ROOT = Path(__file__).resolve().parents[3]


def protected_routes(s) -> list[tuple[str, str]]:
    c, t, r = s.candidate_id, s.training_id, s.run_id
    return [
        ("GET", "/envs"),
        ("GET", "/envs/HalfCheetah-v5"),
        ("POST", "/tasks"),
        ("GET", "/tasks"),
        ("GET", f"/tasks/{s.task_id}"),
        ("GET", f"/runs/{r}"),
        ("POST", f"/runs/{r}/cancel"),
        ("POST", f"/runs/{r}/resume"),
        ("GET", f"/runs/{r}/candidates"),
        ("GET", f"/candidates/{c}"),
        ("GET", f"/candidates/{c}/reward.py"),
        ("GET", f"/candidates/{c}/wrapper.py"),
        ("GET", f"/candidates/{c}/bundle.zip"),
        ("GET", f"/candidates/{c}/artifacts/{t}/policy.zip"),
        ("POST", f"/candidates/{c}/feedback"),
    ]


def body_for(path: str) -> dict | None:
    if path == "/tasks":
        return TINY
    return {"text": "nice"} if path.endswith("/feedback") else None


def test_every_route_needs_a_valid_token(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice", status="running")
    for headers in (
        {},
        {"Authorization": "Bearer rs_not-a-token"},
        {"Authorization": "Basic YWxpY2U6eA=="},
        {"Authorization": f"Token {api.tokens['alice']}"},
    ):
        for method, path in protected_routes(seeded):
            r = api.client.request(method, f"{API}{path}", headers=headers, json=body_for(path))
            assert r.status_code == 401, (headers, method, path, r.status_code)
            assert "Authorization: Bearer" in r.json()["error"]["message"]
    assert run_row(api, seeded.run_id).status == "running" and api.dispatcher.calls == []


def test_tokens_are_stored_only_as_hashes(api: Api) -> None:
    api.user("alice")
    with session_scope(api.sf) as s:
        [row] = s.scalars(select(ApiToken)).all()
        assert api.tokens["alice"] not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
        assert api.tokens["alice"].startswith(row.prefix)  # enough to tell tokens apart in a list


def test_a_revoked_token_no_longer_works(api: Api) -> None:
    alice = api.user("alice")
    assert api.client.get(f"{API}/tasks", headers=alice).status_code == 200
    with session_scope(api.sf) as s:
        s.scalar(select(ApiToken)).revoked = True
    assert api.client.get(f"{API}/tasks", headers=alice).status_code == 401


def test_the_api_takes_bearer_tokens_only_never_the_dashboards_cookie(api: Api) -> None:
    """A cookie-authenticated API could be driven by any page the user visits; the dashboard has its own routes."""
    from tests.app.dashboard.harness import log_in

    api.user("alice")
    browser = log_in(api, "alice")
    assert browser.client.get("/").status_code == 200  # signed in to the dashboard
    for method, path in (("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/envs")):
        r = browser.client.request(method, f"{API}{path}", json=TINY if method == "POST" else None)
        assert r.status_code == 401, (method, path)
    old_style = TestClient(api.app, cookies={"rewardsmith_session": api.tokens["alice"]})
    assert old_style.get(f"{API}/tasks").status_code == 401


def test_other_users_get_404_and_admins_see_everything(api: Api) -> None:
    alice = api.user("alice")
    bob = api.user("bob")
    root = api.user("root", admin=True)
    seeded = seed_finished_run(api, owner="alice", status="running")
    for method, path in protected_routes(seeded)[4:]:
        r = api.client.request(method, f"{API}{path}", headers=bob, json=body_for(path))
        assert r.status_code == 404, (method, path, r.status_code)
        assert "belongs to another user" in r.json()["error"]["message"]
    assert api.client.get(f"{API}/tasks", headers=bob).json() == []
    assert run_row(api, seeded.run_id).status == "running"
    alice_feedback = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["feedback"]
    assert len(alice_feedback) == 1

    bobs = api.client.post(f"{API}/tasks", headers=bob, json=TINY).json()
    everyone = api.client.get(f"{API}/tasks", headers=root).json()
    assert [(t["id"], t["owner"]) for t in everyone] == [(bobs["id"], "bob"), (seeded.task_id, "alice")]
    assert [t["id"] for t in api.client.get(f"{API}/tasks", headers=alice).json()] == [seeded.task_id]
    assert api.client.get(f"{API}/runs/{seeded.run_id}", headers=root).status_code == 200
    assert (
        api.client.get(
            f"{API}/candidates/{seeded.candidate_id}/artifacts/{seeded.training_id}/policy.zip", headers=root
        ).status_code
        == 200
    )
    assert api.client.post(f"{API}/runs/{seeded.run_id}/cancel", headers=root).json()["status"] == "cancelled"
    assert api.client.get(f"{API}/runs/{bobs['run_id']}", headers=alice).status_code == 404


def test_bodies_over_the_limit_are_413_with_or_without_content_length(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, max_body_bytes=4096)
    alice = api.user("alice")
    big = {**TINY, "description": "run " * 2000}
    r = api.client.post(f"{API}/tasks", headers=alice, json=big)
    assert r.status_code == 413, r.text
    assert r.json()["error"] == {
        "code": "payload_too_large",
        "message": "request bodies are limited to 4,096 bytes",
        "field": None,
    }
    streamed = api.client.post(
        f"{API}/tasks", headers={**alice, "Content-Type": "application/json"}, content=(b" " * 1024 for _ in range(8))
    )  # chunked: no Content-Length
    assert streamed.status_code == 413, streamed.text
    assert api.client.get(f"{API}/tasks", headers=alice).json() == []
    assert api.client.post(f"{API}/tasks", headers=alice, json=TINY).status_code == 201  # under the limit


def test_task_creation_is_rate_limited_per_user(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, task_rate_per_minute=2)
    alice, bob = api.user("alice"), api.user("bob")
    assert [api.client.post(f"{API}/tasks", headers=alice, json=TINY).status_code for _ in range(2)] == [201, 201]
    r = api.client.post(f"{API}/tasks", headers=alice, json=TINY)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "60"
    assert r.json()["error"]["code"] == "rate_limited" and "at most 2 tasks per minute" in r.json()["error"]["message"]
    assert len(api.client.get(f"{API}/tasks", headers=alice).json()) == 2
    assert api.client.post(f"{API}/tasks", headers=bob, json=TINY).status_code == 201
    assert len(api.dispatcher.calls) == 3


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
    return {**env, "REWARDSMITH_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_users_create_prints_a_token_that_authenticates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "create", "carol", "--admin"],
        env=cli_env(data),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1].split()[-1]
    assert token.startswith("rs_") and len(token) > 30
    app = create_app(settings_for(tmp_path), dispatcher=object(), broker_check=lambda: "ok")  # the same data dir
    client = TestClient(app)
    assert client.get(f"{API}/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get(f"{API}/tasks", headers={"Authorization": f"Bearer {token}x"}).status_code == 401

    again = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "create", "carol"],
        env=cli_env(data),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert again.returncode != 0
    assert "already exists" in again.stdout + again.stderr
