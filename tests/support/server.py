"""A real `rewardsmith serve` on loopback (API, dashboard, embedded Celery workers on an SQLite broker)."""

from __future__ import annotations

import os
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
    """Start `rewardsmith serve` with its own data directory; returns once /readyz answers 200."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
    env.update({"REWARDSMITH_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **(extra_env or {})})
    data_dir.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [*CLI, "users", "create", "tester", "--admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=data_dir,
    )
    token = out.stdout.strip().splitlines()[-1].split()[-1]
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
                return LiveServer(url, token, env, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"rewardsmith serve did not become ready:\n{log.read_text()[-3000:]}")
