"""SECURITY.md lists every route that answers without a token: the test walks the app's routes (the API, the
dashboard, the docs, the static files) and fails when one that needs neither an API token nor a dashboard session
is missing from the list, or when the list names a route that is not open (or does not exist)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, routing
from starlette.routing import Mount

from app.dashboard.session import page_user
from app.main import create_app
from app.web.deps import current_user
from tests.support.db import make_settings

ROOT = Path(__file__).resolve().parents[3]
SECTION = "### Routes that need no token"
AUTHENTICATES = (current_user, page_user)
"""The dependencies that refuse a request without a valid API token (API) or dashboard session (pages)."""


def _routes(app: FastAPI) -> Iterator[Any]:
    """Every route of the app as it is served (FastAPI's included routers resolved where it has them)."""
    iterate = getattr(routing, "iter_route_contexts", None)
    yield from iterate(app.routes) if iterate is not None else app.routes


def _calls(dependant: Any) -> Iterator[Any]:
    yield dependant.call
    for d in dependant.dependencies:
        yield from _calls(d)


def open_routes(app: FastAPI) -> set[str]:
    """'METHOD /path' of every route that no authenticating dependency guards; a mount of files is 'GET /path/{path}'."""
    found = set()
    for route in _routes(app):
        if isinstance(getattr(route, "original_route", route), Mount):
            found.add(f"GET {route.path}/{{path}}")
            continue
        dependant = getattr(route, "dependant", None)
        if dependant is not None and any(call in AUTHENTICATES for call in _calls(dependant)):
            continue
        found |= {f"{method} {route.path}" for method in route.methods or () if method != "HEAD"}
    return found


def documented() -> set[str]:
    text = (ROOT / "SECURITY.md").read_text()
    assert SECTION in text, f"SECURITY.md has no '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"`((?:GET|POST|PUT|PATCH|DELETE) /[^`\s]*)`", section))


def test_security_md_lists_every_route_that_needs_no_token(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), dispatcher=object(), broker_check=lambda: "ok")
    found, listed = open_routes(app), documented()
    assert found - listed == set(), f"routes open without a token that SECURITY.md does not list: {found - listed}"
    assert listed - found == set(), f"SECURITY.md lists routes that are not open (or do not exist): {listed - found}"
    assert {"GET /readyz", "GET /login", "GET /static/{path}"} <= found  # the walk sees all three kinds


def test_the_walk_finds_a_new_open_route(tmp_path: Path) -> None:
    """The check above cannot pass by seeing nothing: a route added without a token is found."""
    app = create_app(make_settings(tmp_path), dispatcher=object(), broker_check=lambda: "ok")
    before = open_routes(app)

    @app.get("/api/v1/leak")
    def leak() -> dict:
        return {}

    assert open_routes(app) - before == {"GET /api/v1/leak"}
