"""The FastAPI application: the REST API under /api/v1, the dashboard, error handlers, limits."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.routes import candidates, envs, health, runs, tasks
from app.config import Settings, get_settings
from app.dashboard import mount as mount_dashboard
from app.db import session_factory
from app.errors import RateLimited, RewardsmithError
from app.search.dispatch import Dispatcher

API_PREFIX = "/api/v1"


class BodySizeLimit:
    """Refuses request bodies over ``limit`` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = JSONResponse(
            {"error": {"code": "payload_too_large", "message": f"request bodies are limited to {self.limit:,} bytes",
                       "field": None}},
            status_code=413,
        )
        await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
        await send({"type": "http.response.body", "body": body.body})


class _TooLarge(Exception):
    pass


def _error_json(exc: RewardsmithError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse({"error": {"code": exc.code, "message": exc.message, "field": exc.field}},
                        status_code=exc.status_code, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", []) if p not in ("body", "query", "path")]
    field = ".".join(loc) or None
    return (f"{field}: {first.get('msg', 'invalid value')}" if field else first.get("msg", "invalid request")), field


def create_app(
    settings: Settings | None = None,
    *,
    dispatcher: Dispatcher | None = None,
    broker_check: Callable[[], str] | None = None,
) -> FastAPI:
    """Build the app; tests pass their own settings (and a dispatcher when no worker runs)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="rewardsmith",
        version="0.1.0",
        description="LLM-driven reward design for MuJoCo robots: submit a task, watch the search, review and steer.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.sf = session_factory(settings.resolved_database_url)
    if dispatcher is None or broker_check is None:
        from workers.celery_app import broker_reachable
        from workers.dispatch import CeleryDispatcher

        dispatcher = dispatcher or CeleryDispatcher()
        broker_check = broker_check or broker_reachable
    app.state.dispatcher = dispatcher
    app.state.broker_check = broker_check

    @app.exception_handler(RewardsmithError)
    async def _domain_error(request: Request, exc: RewardsmithError):
        if request.url.path.startswith(API_PREFIX) or not hasattr(app.state, "html_error"):
            return _error_json(exc)
        return app.state.html_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        message, field = _validation_message(exc)
        return JSONResponse({"error": {"code": "invalid_input", "message": message, "field": field},
                             "detail": jsonable(exc.errors())}, status_code=422)

    for module in (envs, tasks, runs, candidates):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(health.router, prefix=API_PREFIX)
    mount_dashboard(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    return app


def jsonable(errors: list) -> list:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors, custom_encoder={Exception: str})
