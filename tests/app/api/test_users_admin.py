"""The admin API for users (/api/v1/users): list, revoke, rotate, delete. Revoking ends the user's dashboard
sessions at once; deleting is refused while a run of theirs is unfinished and keeps their tasks and runs, owned by
nobody; anyone but an admin is refused."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import session_scope
from app.db.models import DashboardSession, Task, User
from tests.app.api.harness import API, Api, run_row, seed_finished_run
from tests.app.dashboard.harness import log_in
from tests.support.tasks import TINY


def user_id(api: Api, name: str) -> int:
    with session_scope(api.sf) as s:
        return int(s.scalar(select(User.id).where(User.name == name)))


def sessions_of(api: Api, name: str) -> int:
    with session_scope(api.sf) as s:
        uid = s.scalar(select(User.id).where(User.name == name))
        return int(s.scalar(select(func.count(DashboardSession.id)).where(DashboardSession.user_id == uid)) or 0)


def dashboard_works(browser) -> bool:
    r = browser.client.get("/", follow_redirects=False)
    return r.status_code == 200 and "Log out" in r.text


def test_only_admins_manage_users(api: Api) -> None:
    alice, root = api.user("alice"), api.user("root", admin=True)
    bob = api.user("bob")
    bob_id = user_id(api, "bob")
    for method, path in (
        ("GET", "/users"),
        ("POST", f"/users/{bob_id}/revoke"),
        ("POST", f"/users/{bob_id}/rotate"),
        ("DELETE", f"/users/{bob_id}"),
    ):
        r = api.client.request(method, f"{API}{path}", headers=alice)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["message"] == "only admins manage users; 'alice' is not an admin"
        assert api.client.request(method, f"{API}{path}").status_code == 401
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 200, "nothing was revoked or deleted"
    listed = api.client.get(f"{API}/users", headers=root)
    assert listed.status_code == 200
    assert [(u["name"], u["admin"], len(u["tokens"])) for u in listed.json()] == [
        ("alice", False, 1),
        ("root", True, 1),
        ("bob", False, 1),
    ]
    token = listed.json()[2]["tokens"][0]
    assert api.tokens["bob"].startswith(token["prefix"]) and api.tokens["bob"] not in listed.text
    assert token["revoked"] is False and token["last_used_at"] is not None


def test_revoking_ends_the_users_api_access_and_dashboard_sessions_at_once(api: Api) -> None:
    root = api.user("root", admin=True)
    bob = api.user("bob")
    browser = log_in(api, "bob")
    assert dashboard_works(browser) and sessions_of(api, "bob") == 1
    r = api.client.post(f"{API}/users/{user_id(api, 'bob')}/revoke", headers=root)
    assert r.status_code == 200, r.text
    assert r.json()["revoked"] == 1 and [t["revoked"] for t in r.json()["user"]["tokens"]] == [True]
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 401
    assert sessions_of(api, "bob") == 0, "the session rows are gone"
    assert not dashboard_works(browser)
    assert browser.client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    again = api.client.post(f"{API}/users/{user_id(api, 'bob')}/revoke", headers=root)
    assert again.json()["revoked"] == 0


def test_revoking_one_token_by_its_prefix_leaves_the_others(api: Api) -> None:
    root = api.user("root", admin=True)
    first = api.user("bob")
    bob_id = user_id(api, "bob")
    second = api.client.post(f"{API}/users/{bob_id}/rotate", headers=root).json()["token"]
    third = {"Authorization": f"Bearer {second}"}
    assert api.client.get(f"{API}/tasks", headers=first).status_code == 401, "rotating revoked the first"
    with session_scope(api.sf) as s:
        from app.auth import new_token

        fourth = new_token(s, user=s.get(User, bob_id))
    r = api.client.post(f"{API}/users/{bob_id}/revoke", json={"prefix": second[:10]}, headers=root)
    assert r.status_code == 200 and r.json()["revoked"] == 1, r.text
    assert api.client.get(f"{API}/tasks", headers=third).status_code == 401
    assert api.client.get(f"{API}/tasks", headers={"Authorization": f"Bearer {fourth}"}).status_code == 200
    for prefix, code in ((second[:10], 404), ("nope", 422), (fourth[:10] + "x" * 7, 422)):
        r = api.client.post(f"{API}/users/{bob_id}/revoke", json={"prefix": prefix}, headers=root)
        assert r.status_code == code, (prefix, r.text)


def test_rotating_gives_one_new_token_and_ends_the_old_ones_and_their_sessions(api: Api) -> None:
    root = api.user("root", admin=True)
    bob = api.user("bob")
    browser = log_in(api, "bob")
    r = api.client.post(f"{API}/users/{user_id(api, 'bob')}/rotate", headers=root)
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    assert new.startswith("rs_") and new != api.tokens["bob"]
    assert [t["revoked"] for t in r.json()["user"]["tokens"]] == [True, False]
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 401
    assert api.client.get(f"{API}/tasks", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    assert not dashboard_works(browser)


def test_deleting_is_refused_while_a_run_is_unfinished_and_keeps_tasks_and_runs(api: Api) -> None:
    root = api.user("root", admin=True)
    bob = api.user("bob")
    browser = log_in(api, "bob")
    done = seed_finished_run(api, owner="bob")  # succeeded
    waiting = api.client.post(f"{API}/tasks", json=TINY, headers=bob).json()  # queued
    bob_id = user_id(api, "bob")
    r = api.client.delete(f"{API}/users/{bob_id}", headers=root)
    assert r.status_code == 409, r.text
    assert f"'bob' has 1 unfinished run(s) ({waiting['run_id']}); cancel them first" in r.json()["error"]["message"]
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 200 and dashboard_works(browser)
    listed = {u["name"]: u for u in api.client.get(f"{API}/users", headers=root).json()}
    assert listed["bob"]["unfinished_runs"] == [waiting["run_id"]] and listed["bob"]["tasks"] == 2

    assert api.client.post(f"{API}/runs/{waiting['run_id']}/cancel", headers=bob).status_code == 200
    r = api.client.delete(f"{API}/users/{bob_id}", headers=root)
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": "bob", "tasks_kept": 2, "runs_kept": 2}
    assert api.client.get(f"{API}/tasks", headers=bob).status_code == 401
    assert not dashboard_works(browser) and sessions_of(api, "bob") == 0
    assert [u["name"] for u in api.client.get(f"{API}/users", headers=root).json()] == ["root"]
    with session_scope(api.sf) as s:
        assert s.scalars(select(Task.owner_id)).all() == [None, None], "the tasks are kept, owned by nobody"
    assert run_row(api, done.run_id).status == "succeeded"
    seen = api.client.get(f"{API}/tasks", headers=root).json()
    assert {(t["id"], t["owner"]) for t in seen} == {(done.task_id, None), (waiting["id"], None)}, "admins see them"
    assert api.client.get(f"{API}/runs/{done.run_id}", headers=root).status_code == 200


def test_an_admin_cannot_delete_themselves_and_unknown_users_are_404(api: Api) -> None:
    root = api.user("root", admin=True)
    r = api.client.delete(f"{API}/users/{user_id(api, 'root')}", headers=root)
    assert r.status_code == 409 and "your own account" in r.json()["error"]["message"]
    for path in ("/users/99999/rotate", "/users/0/revoke", f"/users/{2**40}/rotate"):
        assert api.client.post(f"{API}{path}", headers=root).status_code == 404, path
    assert api.client.delete(f"{API}/users/99999", headers=root).status_code == 404
