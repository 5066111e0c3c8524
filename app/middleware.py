"""Security headers on every response: the dashboard's own scripts and styles only, no framing, no sniffing, no
caching of anything but static files; and a deadline for request bodies."""

from __future__ import annotations

import asyncio
import json

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
"""No inline script, event handler, style or eval anywhere: the dashboard's templates use classes and
app/dashboard/static/dashboard.js, and Swagger UI is served from app/api/swagger_ui."""

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CACHEABLE = ("/static/", "/api/v1/docs/assets/")
"""Paths whose files are the same for everyone; every other answer may hold a user's data and is never stored."""


class SecurityHeaders:
    """Adds ``HEADERS`` (where a route has not set its own) and ``Cache-Control: no-store`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(CACHEABLE)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if not cacheable:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


class ReadDeadline:
    """Answers 408 (and closes the connection) when a request body stalls for ``stall`` seconds or is still arriving
    ``total`` seconds after the request began: an unauthenticated client must not hold a connection and a request
    open by sending its body slowly. uvicorn times out idle connections and (with ``app.cli.http``) request heads,
    but not bodies; waiting for a disconnect after the body is the app's own business and has no deadline."""

    def __init__(self, app: ASGIApp, *, stall: float, total: float) -> None:
        self.app = app
        self.stall = stall
        self.total = total

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total
        body_done = timed_out = started = False

        async def in_time() -> Message:
            nonlocal body_done, timed_out
            if timed_out:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, min(self.stall, deadline - loop.time())))
            except TimeoutError:
                timed_out = True
                if not started:
                    await self._refuse(send)
                return {"type": "http.disconnect"}
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if not timed_out:  # once the 408 is sent, whatever the app answers after it is dropped
                started = True
                await send(message)

        await self.app(scope, in_time, guarded)

    async def _refuse(self, send: Send) -> None:
        text = (
            f"the request body did not arrive in time (nothing for {self.stall:g} s, or not all of it within "
            f"{self.total:g} s); send it at once"
        )
        body = json.dumps(
            {"error": {"code": "request_timeout", "message": text, "field": None}}, allow_nan=False
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 408, "headers": headers})
        await send({"type": "http.response.body", "body": body})
