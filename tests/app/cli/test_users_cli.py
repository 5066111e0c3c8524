"""`rewardsmith users revoke|rotate|delete|list` on a real data dir, with the service (API and dashboard) on the same
database: revoking ends the user's API access and dashboard sessions at once, rotating prints one new token,
deleting explains itself, is refused while a run is unfinished and keeps the user's tasks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.db import make_engine, session_scope
from app.db.models import Task
from tests.app.api.harness import API, make_api
from tests.app.api.test_auth_limits import cli_env
from tests.app.dashboard.harness import log_in
from tests.support.tasks import TINY


def users(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "users", *args],
        env=cli_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def token_of(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip().splitlines()[-1].split()[-1]


@pytest.mark.slow
def test_revoke_rotate_list_and_delete_from_the_command_line(tmp_path: Path) -> None:
    token_of(users(tmp_path, "create", "root", "--admin"))
    bob_token = token_of(users(tmp_path, "create", "bob"))
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'rewardsmith.sqlite3'}")
    api = make_api(sessionmaker(bind=engine, expire_on_commit=False), tmp_path)  # the same data dir
    api.tokens["bob"] = bob_token
    bob = {"Authorization": f"Bearer {bob_token}"}
    browser = log_in(api, "bob")
    assert browser.client.get("/", follow_redirects=False).status_code == 200

    out = users(tmp_path, "revoke", "bob")
    assert out.returncode == 0, out.stderr
    assert "revoked 1 token(s) of 'bob'; the dashboard sessions they opened have ended." in out.stdout
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 401
    assert browser.client.get("/", follow_redirects=False).headers["location"].startswith("/login")

    new = token_of(users(tmp_path, "rotate", "bob"))
    assert new.startswith("rs_") and new != bob_token
    bob = {"Authorization": f"Bearer {new}"}
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 200
    listed = users(tmp_path, "list").stdout.splitlines()
    assert listed[1].split("\t")[1:4] == ["bob", "user", f"1 token(s) ({new[:10]}), 1 revoked"], listed
    assert new not in "\n".join(listed)

    run_id = api.client.post(f"{API}/tasks", json=TINY, headers=bob).json()["run_id"]
    explained = users(tmp_path, "delete", "bob")
    assert explained.returncode == 2
    assert "their tasks and runs are kept, owned by nobody" in explained.stderr and "--yes" in explained.stderr
    refused = users(tmp_path, "delete", "bob", "--yes")
    assert refused.returncode == 2
    assert f"'bob' has 1 unfinished run(s) ({run_id}); cancel them first" in refused.stderr
    assert f"unfinished runs: {run_id}" in users(tmp_path, "list").stdout
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 200, "a refused delete changes nothing"

    assert api.client.post(f"{API}/runs/{run_id}/cancel", headers=bob).status_code == 200
    deleted = users(tmp_path, "delete", "bob", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted user 'bob'; 1 task(s) and 1 run(s) are kept, owned by nobody" in deleted.stdout
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 401
    with session_scope(api.sf) as s:
        assert s.scalars(select(Task.owner_id)).all() == [None]
    assert [line.split("\t")[1] for line in users(tmp_path, "list").stdout.splitlines()] == ["root"]
    engine.dispose()


@pytest.mark.slow
def test_unknown_users_and_bad_prefixes_are_errors_that_say_what_to_do(tmp_path: Path) -> None:
    token_of(users(tmp_path, "create", "root", "--admin"))
    for args, words in (
        (("revoke", "nobody"), "no user named 'nobody'"),
        (("rotate", "nobody"), "no user named 'nobody'"),
        (("delete", "nobody", "--yes"), "no user named 'nobody'"),
        (("revoke", "root", "--prefix", "abc"), "the token's first 10 characters"),
        (("revoke", "root", "--prefix", "rs_0000000"), "'root' has no live token starting with 'rs_0000000'"),
    ):
        out = users(tmp_path, *args)
        assert out.returncode == 2 and words in out.stderr, (args, out.stdout, out.stderr)
