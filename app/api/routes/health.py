"""GET /healthz (the process answers) and GET /readyz (the database, the broker and the artifact store are reachable).

Both answer without a token (load balancers and orchestrators call them), so they say no more than that: /readyz
names what is down, with the error (driver, host, port), only to a caller with a valid API token. When the
database itself is down no token can be checked; the details then go to the server's log."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.artifacts.stores import store_of
from app.auth import user_for_token
from app.db import session_scope

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"description": "ready; with a valid API token, also what was checked"},
        503: {
            "description": "the database, the broker or the artifact store is unreachable (what and why only with a valid API token)"
        },
    },
)
def readyz(request: Request) -> JSONResponse:
    """Ready or not; an `Authorization: Bearer <token>` header (optional, so not declared as a requirement) adds
    what was checked and why it failed."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    checks: dict[str, str] = {}
    authenticated = False
    try:
        with session_scope(request.app.state.sf) as s:
            s.execute(text("SELECT 1"))
            authenticated = bool(token) and user_for_token(s, token=token) is not None
        checks["database"] = "ok"
    except Exception as e:  # report, don't raise: this endpoint exists to say what is down
        checks["database"] = f"unreachable: {type(e).__name__}: {str(e)[:200]}"
    checks["broker"] = request.app.state.broker_check()
    checks["artifacts"] = store_of(request.app.state.settings).check()
    ok = all(v == "ok" for v in checks.values())
    if not ok:
        log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in checks.items()))
    body: dict = {"status": "ok" if ok else "unavailable"}
    if authenticated:
        body["checks"] = checks
    return JSONResponse(body, status_code=200 if ok else 503)
