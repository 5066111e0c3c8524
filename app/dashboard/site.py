"""The dashboard on the app: its pages, static files and HTML error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.dashboard import files, pages, partials, people, robots
from app.dashboard.render import templates
from app.dashboard.session import LoginRequired
from app.errors import RateLimited, RewardsmithError

HERE = Path(__file__).resolve().parent


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages, static files and HTML error pages to ``app``."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(partials.router)
    app.include_router(files.router)
    app.include_router(people.router)
    app.include_router(robots.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = f"/login?next={exc.next}"
        if _htmx(request):  # a live fragment whose session ended: the whole page goes to the login form
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    def html_error(request: Request, exc: RewardsmithError) -> Response:
        """A page for a person (a one-line fragment for htmx); every message is autoescaped by the template."""
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if _htmx(request):
            return templates.TemplateResponse(
                request,
                "_message.html",
                {"text": exc.message, "kind": "error"},
                status_code=exc.status_code,
                headers=headers,
            )
        return templates.TemplateResponse(
            request, "error.html", {"error": exc, "user": None}, status_code=exc.status_code, headers=headers
        )

    app.state.html_error = html_error
