"""What a hostile link or page can make the dashboard show: input is echoed only through autoescaped templates,
and every answer carries headers that keep other sites' scripts, frames and caches out (the CSP allows the
dashboard's own files only, and the pages follow it: no inline script, handler or style)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.app.api.harness import API, Api, seed_finished_run
from tests.app.dashboard.harness import log_in

TEMPLATES = Path(__file__).resolve().parents[3] / "app" / "dashboard" / "templates"
PAYLOADS = ("<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>', "<script>alert(1)<\\script>")
"""Markup that runs script if echoed as it is (no '/': a path segment cannot hold one)."""


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_env_name_is_echoed_escaped(api: Api, payload: str) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    r = browser.htmx("GET", "/ui/env/" + payload)
    assert r.status_code == 404 and "unknown env" in r.text
    assert payload not in r.text and "&lt;" in r.text
    r = browser.htmx(
        "POST", "/ui/check-fitness", data={"env": payload, "fitness_program": "def compute_fitness(t):\n    return 1.0"}
    )
    assert r.status_code == 422 and "unknown env" in r.text
    assert payload not in r.text and "&lt;" in r.text


def test_an_unknown_action_is_echoed_escaped(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice", status="running")
    browser = log_in(api, "alice")
    r = browser.htmx("POST", f"/ui/runs/{seeded.run_id}/{PAYLOADS[0]}")
    assert "unknown action" in r.text and PAYLOADS[0] not in r.text


def test_every_answer_has_the_security_headers(api: Api) -> None:
    api.user("alice")
    bearer = api.user("carol")
    seeded = seed_finished_run(api, owner="alice", status="running")
    browser = log_in(api, "alice")
    answers = {
        "signed-in page": browser.client.get(f"/runs/{seeded.run_id}"),
        "fragment": browser.htmx("GET", f"/ui/runs/{seeded.run_id}/live"),
        "login page": TestClient(api.app).get("/login"),
        "redirect": TestClient(api.app).get("/", follow_redirects=False),
        "error page": browser.client.get("/runs/999999"),
        "download": browser.client.get(f"/candidates/{seeded.candidate_id}/reward.py"),
        "API": api.client.get(f"{API}/tasks", headers=bearer),
        "API error": api.client.get(f"{API}/tasks"),
        "docs": api.client.get(f"{API}/docs"),
        "static": api.client.get("/static/style.css"),
    }
    for name, r in answers.items():
        assert r.status_code < 500, name
        csp = r.headers.get("content-security-policy", "")
        for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
            assert directive in csp, (name, directive)
        assert "unsafe" not in csp and "*" not in csp, name
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert r.headers["x-frame-options"] == "DENY", name
        assert r.headers["referrer-policy"] == "same-origin", name
        if name != "static":
            assert r.headers["cache-control"] == "no-store", name


def test_the_pages_need_nothing_the_csp_forbids() -> None:
    """No inline <script>/<style>, event handler attribute, style attribute or hx-on (which evaluates code)."""
    for path in sorted(TEMPLATES.glob("*.html")):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"{path.name}: inline script"
        assert "<style" not in text, f"{path.name}: inline <style>"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path.name}: inline event handler"
        assert not re.search(r"\sstyle\s*=", text), f"{path.name}: style attribute"
        assert "hx-on" not in text and "js:" not in text, f"{path.name}: htmx code in an attribute"


def test_the_api_docs_come_from_this_server(api: Api) -> None:
    page = api.client.get(f"{API}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith(f"{API}/docs/assets/") for s in sources), sources
    for source in sources:
        r = api.client.get(source)
        assert r.status_code == 200 and len(r.content) > 100, source
    assert "<script>" not in page.text and "cdn" not in page.text.lower()
    assert api.client.get(f"{API}/openapi.json").status_code == 200
