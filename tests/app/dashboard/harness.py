"""A browser's view of the dashboard without a browser: a cookie jar, the headers a browser sends on a same-origin
form post, and the CSRF token read from the page, as the dashboard's own forms carry it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from fastapi.testclient import TestClient

from tests.app.api.harness import Api
from tests.support.tasks import tiny_form

TASK_FORM = tiny_form()
"""The tiny task (``tests.support.tasks``) as the new-task form sends it."""

ORIGIN = "http://testserver"
SAME_ORIGIN = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
"""What Chromium sends with a form post from the dashboard's own page."""


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token a dashboard page gives its forms (and htmx, in the body's hx-headers)."""
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert found, f"no CSRF token on {page.request.url}: {page.text[:500]}"
    return found.group(1)


@dataclass
class Browser:
    client: TestClient
    csrf: str

    def post(self, path: str, data: dict | None = None, *, headers: dict | None = None, **kw) -> httpx.Response:
        """A form post from the dashboard's own page: same origin, with the page's CSRF token."""
        return self.client.post(
            path,
            data={"csrf_token": self.csrf, **(data or {})},
            headers={**SAME_ORIGIN, **(headers or {})},
            follow_redirects=False,
            **kw,
        )

    def htmx(self, method: str, path: str, **kw) -> httpx.Response:
        """An htmx request: the token in the header, as base.html's hx-headers sends it."""
        headers = {**SAME_ORIGIN, "HX-Request": "true", "X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)


def log_in(api: Api, name: str, *, client: TestClient | None = None) -> Browser:
    """Open /login, paste ``name``'s API token, follow the redirect; the signed-in browser."""
    client = client or TestClient(api.app, raise_server_exceptions=False)
    form = client.get("/login")
    r = client.post(
        "/login",
        data={"token": api.tokens[name], "next": "/", "csrf_token": csrf_of(form)},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return Browser(client, csrf_of(client.get("/")))
