"""Under https the dashboard's cookies carry the ``__Host-`` prefix (Secure, Path=/, no Domain): a page on another
port or a subdomain of the same host cannot plant one, so a signed-out victim cannot be signed in as the attacker.
Only the prefixed name is read under https; plain http keeps plain names (the risk SECURITY.md describes)."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from tests.app.api.harness import Api
from tests.app.dashboard.harness import csrf_of

HTTPS = "https://testserver"
SAME_ORIGIN = {"Origin": HTTPS, "Sec-Fetch-Site": "same-origin"}


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def sign_in(api: Api, name: str, base_url: str = HTTPS) -> tuple[TestClient, httpx.Response, httpx.Response]:
    client = TestClient(api.app, base_url=base_url, raise_server_exceptions=False)
    form = client.get("/login")
    r = client.post(
        "/login",
        data={"token": api.tokens[name], "next": "/", "csrf_token": csrf_of(form)},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client, form, r


def signed_in_as(client: TestClient) -> str | None:
    r = client.get("/", follow_redirects=False)
    return r.text if r.status_code == 200 else None


def test_under_https_the_cookies_are_host_prefixed(api: Api) -> None:
    api.user("alice")
    client, form, login = sign_in(api, "alice")
    [pre] = set_cookies(form)
    assert pre.startswith("__Host-rewardsmith_login=") and "Secure" in pre and "Path=/;" in pre + ";"
    session = next(c for c in set_cookies(login) if c.startswith("__Host-rewardsmith_session="))
    attributes = [a.strip().lower() for a in session.split(";")[1:]]
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= set(attributes)
    assert not any(a.startswith("domain") for a in attributes)
    assert not any(c.startswith("rewardsmith_") for c in set_cookies(login)), "no plain-named cookie under https"
    assert signed_in_as(client) is not None

    out = client.post("/logout", data={"csrf_token": csrf_of(client.get("/"))}, headers=SAME_ORIGIN)
    cleared = next(c for c in set_cookies(out.history[0] if out.history else out) if c.startswith("__Host-"))
    assert "Max-Age=0" in cleared and "Secure" in cleared
    assert signed_in_as(client) is None


def test_a_planted_plain_cookie_signs_nobody_in_under_https(api: Api) -> None:
    """The attacker signs in, takes their own session id, and plants it in the victim's browser from a plain-http
    page on another port (cookies do not keep ports apart): under https it is not read."""
    api.user("mallory")
    attacker, _, _ = sign_in(api, "mallory")
    stolen = attacker.cookies["__Host-rewardsmith_session"]
    victim = TestClient(api.app, base_url=HTTPS, cookies={"rewardsmith_session": stolen})
    assert signed_in_as(victim) is None
    assert victim.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_plain_http_keeps_plain_names(api: Api) -> None:
    api.user("alice")
    client, _, login = sign_in(api, "alice", base_url="http://testserver")
    session = next(c for c in set_cookies(login) if "rewardsmith_session=" in c)
    assert session.startswith("rewardsmith_session=") and "secure" not in session.lower()
    assert signed_in_as(client) is not None
