"""A real `rewardsmith serve` on loopback (API, dashboard, embedded Celery workers on an SQLite broker)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "app.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_token(log: Path) -> str:
    """The token of the admin user a local installation's first `serve` creates and prints (shown once)."""
    found = re.search(r"^first start: created the admin user 'admin'.*?^(rs_\S+)$", log.read_text(), re.M | re.S)
    if found is None:
        raise RuntimeError(f"rewardsmith serve printed no first admin token:\n{log.read_text()[-3000:]}")
    return found.group(1)


@dataclass
class LiveServer:
    url: str
    token: str
    env: dict
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_server(
    data_dir: Path, *, extra_env: dict | None = None, workers: int = 2, args: tuple[str, ...] = ()
) -> LiveServer:
    """Start `rewardsmith serve` with a new data directory; returns once /readyz answers 200, with the token of the
    admin user ('admin') that a local installation's first start creates, as a newcomer's first `make serve` does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
    env.update({"REWARDSMITH_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **(extra_env or {})})
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "serve.log"
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--workers", str(workers), *args],
        env=env,
        cwd=data_dir,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rewardsmith serve exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return LiveServer(url, first_token(log), env, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"rewardsmith serve did not become ready:\n{log.read_text()[-3000:]}")
