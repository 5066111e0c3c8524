"""How `rewardsmith serve` runs uvicorn so that clients without a token cannot exhaust memory or connections.

- **Header size**: the h11 parser with a cap on a request's line and headers (``REWARDSMITH_HTTP_MAX_HEADER_BYTES``;
  uvicorn's default parser, httptools, has none: a 50 MB header was read whole and answered 200).
- **Head deadline**: uvicorn times out idle connections, but not one that sends its request head slowly, or one
  that keeps sending a body nobody reads after its answer: ``GuardedH11Protocol`` closes a connection that has not
  begun a new request within ``REWARDSMITH_HTTP_HEAD_SECONDS`` of connecting (or of its previous answer, plus the
  keep-alive time).
- **Body deadline**: ``app.middleware.ReadDeadline`` (part of the app, so it holds under any server).
- **Connections**: at most ``REWARDSMITH_HTTP_MAX_CONNECTIONS`` at once; one more is answered 503 and closed at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import Settings, get_settings

TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\n"
    b"connection: close\r\ncontent-length: 50\r\n\r\nthe server holds too many connections; retry soon\n"
)
TOO_SLOW = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: 54\r\n\r\nthe request head did not arrive in time; send it whole\n"
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head and a cap on connections (from the settings)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.head_seconds = settings.http_head_seconds
        self.max_connections = settings.http_max_connections
        self.head_timer: asyncio.TimerHandle | None = None
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self.refused = True
            self.transport = transport
            transport.write(TOO_MANY)
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.head_seconds)

    def data_received(self, data: bytes) -> None:
        if not self.refused:
            super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(self.timeout_keep_alive + self.head_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.refused:
            return
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        """Close the connection in ``seconds`` unless a new request has begun by then (its head arrived whole)."""
        self._disarm()
        self.head_timer = self.loop.call_later(seconds, self._head_overdue, self.cycle)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_overdue(self, cycle_when_armed: object) -> None:
        self.head_timer = None
        if self.cycle is not cycle_when_armed or self.transport.is_closing():
            return  # a request began meanwhile: its body has the app's deadline, its answer none
        if self.conn.their_state is h11.IDLE and self.conn.our_state in (h11.IDLE, h11.DONE):
            self.transport.write(TOO_SLOW)
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments `serve` gives ``uvicorn.run`` (with one API process or several)."""
    return {
        "http": GuardedH11Protocol,
        "ws": "none",  # no route speaks WebSocket: an upgrade is answered as plain HTTP
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        # a second bound, on requests in progress (uvicorn counts the request's own connection, hence the + 1)
        "limit_concurrency": settings.http_max_connections + 1,
    }
