"""A real HTTP server on loopback that speaks the OpenAI chat-completions API and replays scripted answers.

The ``openai`` client is never patched in tests: it talks HTTP to this server. A script is a list of items, consumed
in order: a ``str`` is one assistant answer (one choice); a ``Reply`` is one whole HTTP response (an error status,
a delay, a garbage body, custom headers). A request with ``n`` takes up to ``n`` consecutive strings as its choices,
unless the server was created with ``supports_n=False`` (then every response has one choice, as many local servers do).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATHS = ("/v1/chat/completions", "/chat/completions")


def count_tokens(text: str) -> int:
    """The fake's token count: one token per four characters."""
    return len(text) // 4


@dataclass
class Reply:
    """One scripted HTTP response. ``status`` >= 400 answers an OpenAI-shaped error; ``raw_body`` is sent as is
    (with ``content_type``); ``body`` is sent as JSON; otherwise ``content`` (or ``choices``) becomes a completion."""

    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (longer than the client's timeout makes it time out)."""
    raw_body: str | None = None
    content_type: str = "application/json"
    body: dict | None = None
    choices: list[str] | None = None
    finish_reason: str = "stop"
    message: str | None = None
    """The error message for a status >= 400."""


@dataclass
class Recorded:
    """One request as received; header names lower-cased."""

    path: str
    headers: dict[str, str]
    body: dict


class FakeOpenAI:
    """``with FakeOpenAI() as server: server.script([...]); LLMConfig(base_url=server.base_url, ...)``."""

    def __init__(self, *, supports_n: bool = True, default: str | None = None) -> None:
        self.supports_n = supports_n
        self.default = default
        """Answer given when the script is exhausted; None: a 500 that says 'script exhausted'."""
        self.calls: list[Recorded] = []
        self._script: deque[str | Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting and inspection -----------------------------------------------------------------------------------

    def script(self, items: list[str | Reply]) -> FakeOpenAI:
        """Append ``items`` to the script."""
        with self._lock:
            self._script.extend(items)
        return self

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[dict]:
        """Every request body received, in order."""
        with self._lock:
            return [c.body for c in self.calls]

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def url(self) -> str:
        assert self._httpd is not None, "the server is not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- life cycle -------------------------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed replies
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering --------------------------------------------------------------------------------------------------

    def _next(self, n: int) -> Reply:
        """The reply for a request asking for ``n`` choices."""
        with self._lock:
            if not self._script:
                if self.default is not None:
                    return Reply(choices=[self.default] * n)
                return Reply(
                    status=500, message="script exhausted: the fake OpenAI server has no more scripted answers"
                )
            item = self._script.popleft()
            if isinstance(item, Reply):
                return item
            choices = [item]
            while len(choices) < n and self._script and isinstance(self._script[0], str):
                choices.append(self._script.popleft())
            return Reply(choices=choices)

    def _completion(self, request: dict, reply: Reply) -> dict:
        choices = reply.choices if reply.choices is not None else [reply.content or ""]
        messages = request.get("messages", [])
        prompt = "".join(m["content"] for m in messages if isinstance(m.get("content"), str))
        prompt_tokens = count_tokens(prompt)
        completion_tokens = sum(count_tokens(c) for c in choices)
        return {
            "id": f"chatcmpl-fake-{len(self.calls)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": c},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
                for i, c in enumerate(choices)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _error(status: int, message: str) -> dict:
    kinds = {401: "invalid_request_error", 404: "not_found_error", 429: "rate_limit_exceeded"}
    kind = kinds.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


def _handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout) before the answer
                self.close_connection = True

        def _json(self, status: int, data: dict, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), "application/json", headers or {})

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "tests"}]})
            else:
                self._json(404, _error(404, f"no route {self.path}"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.split("?")[0] not in PATHS:
                self._json(404, _error(404, f"no route {self.path}"))
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._json(400, _error(400, "the request body is not JSON"))
                return
            with server._lock:
                server.calls.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            n = int(body.get("n") or 1) if server.supports_n else 1
            reply = server._next(n)
            if reply.delay and server._stopping.wait(reply.delay):
                self.close_connection = True  # stopped while waiting: no answer
                return
            if reply.raw_body is not None:
                self._send(reply.status, reply.raw_body.encode(), reply.content_type, reply.headers)
            elif reply.body is not None:
                self._json(reply.status, reply.body, reply.headers)
            elif reply.status >= 400:
                self._json(
                    reply.status, _error(reply.status, reply.message or f"scripted HTTP {reply.status}"), reply.headers
                )
            else:
                self._json(reply.status, server._completion(body, reply), reply.headers)

    return Handler
