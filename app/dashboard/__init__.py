"""The dashboard: server-rendered Jinja2 pages with htmx, behind the same tokens as the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.dashboard.render import LoginRequired, templates
from app.errors import RewardsmithError

HERE = Path(__file__).resolve().parent


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages, static files and HTML error pages to ``app``."""
    from app.dashboard import pages, partials, people

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(partials.router)
    app.include_router(people.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        return RedirectResponse(f"/login?next={exc.next}", status_code=303)

    def html_error(request: Request, exc: RewardsmithError):
        return templates.TemplateResponse(
            request, "error.html", {"error": exc, "user": None}, status_code=exc.status_code
        )

    app.state.html_error = html_error
