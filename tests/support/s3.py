"""A real S3-compatible server on loopback for the tests: moto's server mode (`moto_server`, from the dev extra), on a
free port, in its own process; a bucket is made for each user of it. Its credentials are test values that moto
accepts; the secret is distinctive, so that a test can look for it where it must not be."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest

from tests.support.server import free_port

SECRET = "rs-test-secret-9f4c1e7d2b"
"""AWS_SECRET_ACCESS_KEY of the test server: a string that must never appear in a sandbox, a log or an answer."""
KEY_ID = "rs-test-key-id"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    endpoint: str
    proc: subprocess.Popen

    def env(self, bucket: str, prefix: str = "artifacts") -> dict[str, str]:
        """What a rewardsmith process needs to store its artifacts in ``bucket`` on this server."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "REWARDSMITH_ARTIFACTS_URL": f"s3://{bucket}/{prefix}",
        }

    def new_bucket(self) -> str:
        name = f"rs-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.session.Session(
            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="us-east-1"
        ).client("s3", endpoint_url=self.endpoint)

    def objects(self, bucket: str) -> dict[str, int]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


@contextmanager
def s3_server(logs: Path) -> Iterator[S3Server]:
    """`moto_server` on a free loopback port until the block ends."""
    binary = Path(sys.executable).parent / "moto_server"
    assert binary.exists(), "moto_server is missing: `make install` brings moto[server] with the dev extra"
    port = free_port()
    log = (logs / f"moto-{port}.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"moto_server exited: {(logs / f'moto-{port}.log').read_text()[-2000:]}"
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError("moto_server did not answer within 60 s") from None
                time.sleep(0.2)
        yield S3Server(endpoint, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto server for the whole session."""
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's own bucket on the session's server, its credentials in the environment (as boto3 reads them);
    returns the variables a process needs to use it."""
    env = s3.env(s3.new_bucket())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


class Gate:
    """A TCP forwarder on loopback in front of the S3 server: ``close()`` cuts the store off (connections refused,
    open ones dropped) while the server and what it holds live on; ``open()`` lets it through again on the same
    port. A network partition between a worker and its bucket, without losing the bucket."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)
