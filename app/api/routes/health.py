"""GET /healthz (the process answers) and GET /readyz (the database, the broker and the artifact store are reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.artifacts.stores import store_of

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "the database, the broker or the artifact store is unreachable"}}
)
def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with request.app.state.sf() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as e:  # report, don't raise: this endpoint exists to say what is down
        checks["database"] = f"unreachable: {type(e).__name__}: {str(e)[:200]}"
    checks["broker"] = request.app.state.broker_check()
    checks["artifacts"] = store_of(request.app.state.settings).check()
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
