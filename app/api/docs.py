"""/api/v1/docs: Swagger UI from files shipped with the service (app/api/swagger_ui), under the same CSP as the rest."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI = Path(__file__).resolve().parent / "swagger_ui"


def mount_docs(app: FastAPI, prefix: str) -> None:
    """Serve the docs page at ``{prefix}/docs`` and its assets under ``{prefix}/docs/assets``."""
    page = (SWAGGER_UI / "index.html").read_text().replace("{prefix}", prefix)

    @app.get(f"{prefix}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    app.mount(f"{prefix}/docs/assets", StaticFiles(directory=SWAGGER_UI), name="docs-assets")
