"""The FastAPI application: the REST API under /api/v1, the dashboard, error handlers, limits."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.docs import mount_docs
from app.api.routes import candidates, choices, envs, fitness, health, robots, runs, tasks, users, webhooks
from app.config import Settings, get_settings
from app.dashboard.site import mount as mount_dashboard
from app.db import session_factory
from app.errors import InvalidInput, RateLimited, RewardsmithError
from app.middleware import ReadDeadline, SecurityHeaders
from app.search.records.dispatch import Dispatcher
from app.web.deps import sound_json_body
from app.web.robots import UPLOAD_BODY_BYTES, UPLOAD_LIMIT_HINT

API_PREFIX = "/api/v1"


class BodySizeLimit:
    """Refuses request bodies over ``limit`` bytes with 413, whether or not Content-Length is sent.

    ``uploads``: POST paths that take files, with their own (larger) limit and what to tell the sender about it."""

    def __init__(self, app: ASGIApp, limit: int, uploads: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.uploads = uploads or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = self.uploads.get(scope["path"]) if scope.get("method") == "POST" else None
        limit, hint = upload or (self.limit, f"request bodies are limited to {self.limit:,} bytes")
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, hint)
            return
        seen = 0
        refused = started = False

        async def limited() -> Message:
            # Answer 413 as soon as the body grows past the limit, then tell the app the client has gone: an
            # exception raised here would reach FastAPI's body parser, which turns any error into a 400.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    if not started:
                        await self._refuse(send, hint)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if not refused:  # once the 413 is sent, whatever the app answers after it is dropped
                started = True
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send, hint: str) -> None:
        body = JSONResponse(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": hint,
                    "field": None,
                }
            },
            status_code=413,
        )
        await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
        await send({"type": "http.response.body", "body": body.body})


def _error_json(exc: RewardsmithError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message, "field": exc.field}},
        status_code=exc.status_code,
        headers=headers,
    )


def _framework_error_json(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The framework's own errors (no such route, wrong method, unreadable body) in the API's error shape."""
    if exc.status_code == 400:  # FastAPI could not decode the body at all (e.g. bytes that are not UTF-8)
        return _error_json(InvalidInput("the request body is not valid JSON (send UTF-8 encoded JSON)"))
    if exc.status_code == 404:
        code, message = "not_found", f"no such endpoint: {request.method} {request.url.path} (see {API_PREFIX}/docs)"
    elif exc.status_code == 405:
        code, message = "method_not_allowed", f"{request.method} is not allowed on {request.url.path}"
    else:
        code, message = f"http_{exc.status_code}", str(exc.detail)
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": None}}, status_code=exc.status_code, headers=exc.headers
    )


def _printable(value: object, limit: int = 200) -> str:
    """``value`` as text that can always be encoded (a lone surrogate from the input becomes an escape), capped."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "…"


def _validation_detail(exc: RequestValidationError) -> list[dict]:
    """Where and what, never the input itself: input can hold what no JSON answer can carry (NaN, lone surrogates,
    deep nesting, megabytes)."""
    return [
        {
            "type": _printable(e.get("type", "")),
            "loc": [_printable(p) for p in e.get("loc", ())],
            "msg": _printable(e.get("msg", "")),
        }
        for e in exc.errors()[:20]
    ]


def _validation_message(detail: list[dict]) -> tuple[str, str | None]:
    first = detail[0] if detail else {}
    loc = [p for p in first.get("loc", []) if p not in ("body", "query", "path", "header", "cookie")]
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
        docs_url=None,  # served by mount_docs from local files, under the CSP
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.sf = session_factory(settings.resolved_database_url)
    if dispatcher is None or broker_check is None:
        from app.jobs.celery_app import broker_reachable
        from app.jobs.dispatch import CeleryDispatcher

        dispatcher = dispatcher or CeleryDispatcher()
        broker_check = broker_check or broker_reachable
    app.state.dispatcher = dispatcher
    app.state.broker_check = broker_check

    @app.exception_handler(RewardsmithError)
    async def _domain_error(request: Request, exc: RewardsmithError) -> Response:
        if request.url.path.startswith(API_PREFIX) or not hasattr(app.state, "html_error"):
            return _error_json(exc)
        return app.state.html_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = _validation_detail(exc)
        message, field = _validation_message(detail)
        if not request.url.path.startswith(API_PREFIX) and hasattr(app.state, "html_error"):
            return app.state.html_error(request, InvalidInput(message, field=field))
        return JSONResponse(
            {"error": {"code": "invalid_input", "message": message, "field": field}, "detail": detail},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith(API_PREFIX):
            return await http_exception_handler(request, exc)
        return _framework_error_json(request, exc)

    for module in (envs, robots, tasks, runs, candidates, fitness, choices, users, webhooks):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=[Depends(sound_json_body)])
    app.include_router(health.router)
    app.include_router(health.router, prefix=API_PREFIX)
    mount_docs(app, API_PREFIX)
    mount_dashboard(app)
    app.add_middleware(ReadDeadline, stall=settings.http_stall_seconds, total=settings.http_body_seconds)
    upload = (UPLOAD_BODY_BYTES, UPLOAD_LIMIT_HINT)
    app.add_middleware(
        BodySizeLimit, limit=settings.max_body_bytes, uploads={f"{API_PREFIX}/envs": upload, "/robots": upload}
    )
    app.add_middleware(SecurityHeaders)  # outermost: the 413 above gets the headers too
    return app
