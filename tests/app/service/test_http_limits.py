"""A real `rewardsmith serve` on loopback against clients without a token that try to exhaust it: a 50 MB header,
200 clients that stall (or trickle) their request heads, bodies that stall or trickle, and more connections than
the server holds. Each is dropped within a bounded time, the server's memory stays flat, and a normal request is
answered all along. Every loop here is bounded by a deadline."""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import LiveServer, start_server

HEAD_SECONDS = 2.0
STALL_SECONDS = 2.0
BODY_SECONDS = 6.0
MAX_CONNECTIONS = 250
MARGIN = 20.0
"""Room for a loaded two-core machine on top of each deadline."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "REWARDSMITH_HTTP_HEAD_SECONDS": str(HEAD_SECONDS),
        "REWARDSMITH_HTTP_STALL_SECONDS": str(STALL_SECONDS),
        "REWARDSMITH_HTTP_BODY_SECONDS": str(BODY_SECONDS),
        "REWARDSMITH_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    live = start_server(tmp_path_factory.mktemp("http") / "data", extra_env=env, args=("--no-embedded-worker",))
    yield live
    live.stop()


def address(server: LiveServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def rss_kib(server: LiveServer) -> int:
    """The resident memory of the serve process (it runs uvicorn itself with one API process)."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def healthy(server: LiveServer) -> bool:
    return httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


@contextlib.contextmanager
def sockets(server: LiveServer, count: int, first: bytes = b"") -> Iterator[list[socket.socket]]:
    opened = []
    try:
        for _ in range(count):
            s = socket.create_connection(address(server), timeout=10)
            if first:
                s.sendall(first)
            opened.append(s)
        yield opened
    finally:
        for s in opened:
            s.close()


def read_until_closed(conns: list[socket.socket], deadline: float, trickle: bytes = b"") -> dict[socket.socket, bytes]:
    """What each socket received until the server closed it, or until ``deadline`` (those still open are missing
    from the answer); with ``trickle``, one more byte of it goes to every open socket each half second."""
    got = {s: b"" for s in conns}
    closed: dict[socket.socket, bytes] = {}
    sel = selectors.DefaultSelector()
    for s in conns:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    sent, next_send = 0, time.monotonic()
    while len(closed) < len(conns) and time.monotonic() < deadline:
        if trickle and time.monotonic() >= next_send:
            for s in conns:
                if s not in closed:
                    with contextlib.suppress(OSError):
                        s.send(trickle[sent % len(trickle) : sent % len(trickle) + 1])
            sent, next_send = sent + 1, time.monotonic() + 0.5
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if data:
                got[s] += data
            else:
                closed[s] = got[s]
                sel.unregister(s)
    sel.close()
    return closed


@pytest.mark.slow
def test_a_50_mb_header_is_refused_and_the_server_does_not_grow(server: LiveServer) -> None:
    before = rss_kib(server)
    sent = 0
    with socket.create_connection(address(server), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        try:
            while sent < 50 * (1 << 20):  # bounded: 50 MB at most
                s.sendall(chunk)
                sent += len(chunk)
            s.sendall(b"\r\n\r\n")
            answer = s.recv(65536)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert sent < 50 * (1 << 20), "the server read the whole 50 MB header"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert rss_kib(server) - before < 16 * 1024, f"the server grew by {(rss_kib(server) - before) // 1024} MB"
    assert healthy(server)


def test_200_stalled_heads_are_dropped_in_bounded_time_while_others_are_served(server: LiveServer) -> None:
    with sockets(server, 200, first=b"GET /healthz HTTP/1.1\r\nHost: x\r\n") as conns:
        start = time.monotonic()
        assert healthy(server), "a normal request is answered while 200 clients stall"
        closed = read_until_closed(conns, start + HEAD_SECONDS + MARGIN)
        took = time.monotonic() - start
    assert len(closed) == 200, f"{200 - len(closed)} stalled clients were still connected after {took:.0f} s"
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in closed.values())
    assert healthy(server)


def test_trickled_heads_are_dropped_too(server: LiveServer) -> None:
    """A byte every half second keeps an idle timer from firing; the head deadline does not care."""
    with sockets(server, 20, first=b"GET /healthz HTTP/1.1\r\n") as conns:
        start = time.monotonic()
        closed = read_until_closed(conns, start + HEAD_SECONDS + MARGIN, trickle=b"X-Slow: " + b"a" * 1000)
    assert len(closed) == 20, f"{20 - len(closed)} trickling clients were still connected"
    assert healthy(server)


BODY_HEAD = (
    b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
)


@pytest.mark.parametrize("trickle", [b"", b" " * 1000], ids=["stalled", "trickled"])
@pytest.mark.slow
def test_a_body_that_stalls_or_trickles_gets_408(server: LiveServer, trickle: bytes) -> None:
    with sockets(server, 10, first=BODY_HEAD + b'{"env": ') as conns:
        start = time.monotonic()
        closed = read_until_closed(conns, start + BODY_SECONDS + MARGIN, trickle=trickle)
    assert len(closed) == 10, f"{10 - len(closed)} slow bodies were still being read"
    for answer in closed.values():
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"the request body did not arrive in time" in answer
    assert healthy(server)


def test_connections_beyond_the_cap_are_refused_at_once(server: LiveServer) -> None:
    with sockets(server, MAX_CONNECTIONS + 50) as conns:
        closed = read_until_closed(conns, time.monotonic() + 1.0)
        refused = [a for a in closed.values() if a.startswith(b"HTTP/1.1 503")]
        assert 50 <= len(refused) <= 55, f"{len(refused)} of {MAX_CONNECTIONS + 50} connections were refused"
        assert b"too many connections" in refused[0]
        late = [a for a in closed.values() if not a.startswith(b"HTTP/1.1 503")]
        assert all(a.startswith(b"HTTP/1.1 408") for a in late), "only the head deadline closes the others"
    deadline = time.monotonic() + MARGIN
    while time.monotonic() < deadline and not healthy(server):  # our connections are gone; the server forgets
        time.sleep(0.2)
    assert healthy(server)
