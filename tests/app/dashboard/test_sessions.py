"""Dashboard sessions and CSRF: the cookie is a random id (never the API token), stored hashed, ended by logout,
idle time, age or revoking the token; every state change needs the page's CSRF token and a same-origin request;
the REST API never takes the cookie, so the dashboard serves its own downloads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.db import session_scope
from app.db.models import ApiToken, DashboardSession, utcnow
from app.sessions import TOUCH_SECONDS
from tests.app.api.harness import API, Api, make_api, run_row, seed_finished_run
from tests.app.dashboard.harness import SAME_ORIGIN, csrf_of, log_in

SESSION_COOKIE = "rewardsmith_session"


def signed_in(client: TestClient) -> bool:
    r = client.get("/", follow_redirects=False)
    return r.status_code == 200 and "Log out" in r.text


def test_the_cookie_is_a_random_session_id_stored_only_as_a_hash(api: Api) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    cookie = browser.client.cookies[SESSION_COOKIE]
    token = api.tokens["alice"]
    assert token not in cookie and cookie not in token
    with session_scope(api.sf) as s:
        [row] = s.scalars(select(DashboardSession)).all()
        assert cookie not in row.id_hash and len(row.id_hash) == 64
        assert (row.expires_at - row.created_at).total_seconds() == api.settings.session_max_seconds
    # A stolen cookie is not an API token: not as a Bearer token, and the API does not read the cookie at all.
    assert api.client.get(f"{API}/tasks", headers={"Authorization": f"Bearer {cookie}"}).status_code == 401
    r = browser.client.get(f"{API}/tasks")
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]["message"]


def test_signing_in_again_replaces_the_browsers_session(api: Api) -> None:
    api.user("alice")
    api.user("bob")
    browser = log_in(api, "alice")
    first = browser.client.cookies[SESSION_COOKIE]
    log_in(api, "bob", client=browser.client)
    assert not signed_in(TestClient(api.app, cookies={SESSION_COOKIE: first}))
    assert "bob" in browser.client.get("/").text
    with session_scope(api.sf) as s:
        assert len(s.scalars(select(DashboardSession)).all()) == 1


def test_logout_ends_the_session_everywhere(api: Api) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    stolen = TestClient(api.app, cookies={SESSION_COOKIE: browser.client.cookies[SESSION_COOKIE]})
    assert signed_in(stolen)
    r = browser.post("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not signed_in(stolen), "the copied cookie still works after logout"
    assert not signed_in(browser.client)
    with session_scope(api.sf) as s:
        assert s.scalars(select(DashboardSession)).all() == []


@pytest.mark.parametrize("expiry", ["idle", "absolute"])
def test_sessions_expire(api: Api, expiry: str) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    now = utcnow()
    with session_scope(api.sf) as s:
        if expiry == "idle":  # busy until a moment ago, then left alone past the idle limit
            seen = now - timedelta(seconds=api.settings.session_idle_seconds + 1)
            s.execute(update(DashboardSession).values(last_seen_at=seen))
        else:  # used every minute, but signed in longer ago than the absolute limit allows
            s.execute(update(DashboardSession).values(expires_at=now - timedelta(seconds=1)))
    r = browser.client.get("/runs/1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/runs/1"
    log_in(api, "alice")  # signing in again clears expired sessions out of the table
    with session_scope(api.sf) as s:
        assert len(s.scalars(select(DashboardSession)).all()) == 1, "the expired session was not removed"


def test_use_keeps_a_session_alive(api: Api) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    almost_idle = utcnow() - timedelta(seconds=api.settings.session_idle_seconds - 5)
    with session_scope(api.sf) as s:
        s.execute(update(DashboardSession).values(last_seen_at=almost_idle))
    assert signed_in(browser.client)
    with session_scope(api.sf) as s:
        seen = s.scalar(select(DashboardSession.last_seen_at))
        assert (utcnow() - seen).total_seconds() < TOUCH_SECONDS


def test_a_live_fragment_whose_session_ended_sends_the_whole_page_to_the_login_form(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice", status="running")
    browser = log_in(api, "alice")
    live = f"/ui/runs/{seeded.run_id}/live"
    assert browser.htmx("GET", live).status_code == 200
    browser.post("/logout")
    r = browser.htmx("GET", live, follow_redirects=False)
    assert r.status_code == 204 and r.headers["hx-redirect"] == f"/login?next={live}"


def test_revoking_the_api_token_ends_its_sessions(api: Api) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    with session_scope(api.sf) as s:
        s.scalar(select(ApiToken)).revoked = True
    assert not signed_in(browser.client)


def test_deleting_the_api_token_ends_its_sessions(api: Api) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    with session_scope(api.sf) as s:
        s.delete(s.scalar(select(ApiToken)))
    assert not signed_in(browser.client)
    with session_scope(api.sf) as s:
        assert s.scalars(select(DashboardSession)).all() == []


def test_a_forged_or_old_style_cookie_signs_nobody_in(api: Api) -> None:
    api.user("alice")
    for value in ("x", api.tokens["alice"], "A" * 43):
        assert not signed_in(TestClient(api.app, cookies={SESSION_COOKIE: value}))


def cancel_attempts(run_id: int) -> dict[str, dict]:
    """Requests a hostile page could make the victim's browser send (it can neither read the page nor its token)."""
    path = f"/ui/runs/{run_id}/cancel"
    return {
        "no token": {"headers": SAME_ORIGIN},
        "wrong token": {"headers": {**SAME_ORIGIN, "X-CSRF-Token": "0" * 64}},
        "token in no form": {"headers": SAME_ORIGIN, "data": {"csrf": "x"}},
        "cross-site origin": {"headers": {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
        # Same site, other origin (another port on localhost, a sibling subdomain): cookies are shared with it.
        "same-site page": {"headers": {"Origin": "http://testserver:8081", "Sec-Fetch-Site": "same-site"}},
        "opaque origin": {"headers": {"Origin": "null"}},
        "path": path,  # type: ignore[dict-item]
    }


def test_state_changes_need_the_pages_token_and_the_same_origin(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice", status="running")
    browser = log_in(api, "alice")
    attempts = cancel_attempts(seeded.run_id)
    path = attempts.pop("path")
    for name, kw in attempts.items():
        headers = dict(kw["headers"])
        if name in ("cross-site origin", "same-site page", "opaque origin"):
            headers["X-CSRF-Token"] = browser.csrf  # even a leaked token does not help from another origin
        r = browser.client.post(path, headers=headers, data=kw.get("data"))
        assert r.status_code == 403, (name, r.status_code, r.text[:200])
        assert run_row(api, seeded.run_id).status == "running", name
    forms = {
        "/tasks/new": {"env": "HalfCheetah-v5", "description": "run"},
        f"/candidates/{seeded.candidate_id}/feedback": {"text": "forged"},
        "/ui/check-fitness": {"env": "HalfCheetah-v5", "fitness_program": "def compute_fitness(t): return 1.0"},
        "/logout": {},
    }
    for form_path, data in forms.items():
        r = browser.client.post(form_path, data=data, headers=SAME_ORIGIN, follow_redirects=False)
        assert r.status_code == 403, (form_path, r.status_code)
    assert signed_in(browser.client), "a forged logout signed the user out"
    ok = browser.htmx("POST", path)
    assert ok.status_code == 200 and run_row(api, seeded.run_id).status == "cancelled"
    assert browser.htmx("POST", f"/ui/runs/{seeded.run_id}/resume").status_code == 200


def test_another_sessions_token_does_not_work(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice", status="running")
    first, second = log_in(api, "alice"), log_in(api, "alice")
    assert first.csrf != second.csrf
    r = first.client.post(f"/ui/runs/{seeded.run_id}/cancel", headers={**SAME_ORIGIN, "X-CSRF-Token": second.csrf})
    assert r.status_code == 403 and run_row(api, seeded.run_id).status == "running"


def test_login_needs_the_forms_token_so_no_one_can_sign_a_browser_in_as_someone_else(api: Api) -> None:
    api.user("alice")
    mallory = api.user("mallory")  # noqa: F841 - the attacker's own, valid token
    victim = TestClient(api.app)
    for headers, data in (
        (SAME_ORIGIN, {"token": api.tokens["mallory"]}),  # no token: a form on another site
        (SAME_ORIGIN, {"token": api.tokens["mallory"], "csrf_token": "0" * 64}),
        ({"Origin": "http://testserver:8081", "Sec-Fetch-Site": "same-site"}, {"token": api.tokens["mallory"]}),
    ):
        r = victim.post("/login", data=data, headers=headers, follow_redirects=False)
        assert r.status_code == 403, r.text[:200]
        assert SESSION_COOKIE not in victim.cookies
    # Even with a token of the attacker's own login form: it is bound to the attacker's pre-session cookie.
    attacker = TestClient(api.app)
    token = csrf_of(attacker.get("/login"))
    r = victim.post(
        "/login",
        data={"token": api.tokens["mallory"], "csrf_token": token},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 403 and SESSION_COOKIE not in victim.cookies
    # The real form works, and a new session id is issued at every login (no fixation).
    before = TestClient(api.app)
    before.cookies.set(SESSION_COOKIE, "chosen-by-the-attacker", domain="testserver.local")
    browser = log_in(api, "alice", client=before)
    assert browser.client.cookies[SESSION_COOKIE] != "chosen-by-the-attacker"


def test_a_wrong_login_token_is_refused_and_the_form_still_works(api: Api) -> None:
    api.user("alice")
    client = TestClient(api.app)
    form = client.get("/login")
    r = client.post(
        "/login", data={"token": "rs_wrong", "csrf_token": csrf_of(form)}, headers=SAME_ORIGIN, follow_redirects=False
    )
    assert r.status_code == 401 and "not valid" in r.text
    log_in(api, "alice", client=client)


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "/\t/evil.example", "javascript:alert(1)"],
)
@pytest.mark.slow
def test_login_never_redirects_off_the_site(api: Api, target: str) -> None:
    api.user("alice")
    client = TestClient(api.app)
    csrf = csrf_of(client.get("/login", params={"next": target}))
    r = client.post(
        "/login",
        data={"token": api.tokens["alice"], "next": target, "csrf_token": csrf},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_downloads_work_from_the_dashboard_with_the_apis_access_rules(api: Api) -> None:
    api.user("alice")
    api.user("bob")
    seeded = seed_finished_run(api, owner="alice")
    alice, bob = log_in(api, "alice"), log_in(api, "bob")
    page = alice.client.get(f"/candidates/{seeded.candidate_id}").text
    assert "/api/v1/" not in page.replace('href="/api/v1/docs"', ""), "the page links to the cookie-less API"
    c, t = seeded.candidate_id, seeded.training_id
    paths = [f"/candidates/{c}/reward.py", f"/candidates/{c}/bundle.zip", f"/candidates/{c}/artifacts/{t}/policy.zip"]
    for path in paths:
        assert f'href="{path}"' in page, path
        assert alice.client.get(path).status_code == 200, path
        r = bob.client.get(path)
        assert r.status_code == 404 and "belongs to another user" in r.text, path
        anonymous = TestClient(api.app).get(path, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login"), path
    assert alice.client.get(paths[-1]).content == (seeded.artifacts / "policy.zip").read_bytes()


def test_sessions_work_across_processes_sharing_the_database(db_sf, tmp_path) -> None:
    """Two API processes (``--api-workers``) share sessions through the database, not memory."""
    first = make_api(db_sf, tmp_path / "one", secret_key="k" * 40)
    second = make_api(db_sf, tmp_path / "two", secret_key="k" * 40)
    first.user("alice")
    browser = log_in(first, "alice")
    other = TestClient(second.app, cookies={SESSION_COOKIE: browser.client.cookies[SESSION_COOKIE]})
    assert signed_in(other)
