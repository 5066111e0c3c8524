"""`rewardsmith serve` stops everything it started: a real server with its embedded Celery workers, stopped with a
real SIGTERM (what systemd, Docker and Kubernetes send) or SIGINT (Ctrl-C), leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.server import start_server

pytestmark = pytest.mark.slow


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120]
    except OSError:
        return "(gone)"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_its_workers_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    server = start_server(tmp_path / "data", extra_env={"REWARDSMITH_SHUTDOWN_GRACE_SECONDS": "10"})
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # both workers up, the training worker with its pool of 2
            started = descendants(server.proc.pid)
            if len(started) >= 4:
                break
            time.sleep(0.5)
        assert len(started) >= 4, f"the workers did not start: {server.log.read_text()[-2000:]}"
        os.kill(server.proc.pid, sig)  # the serve process only, as a service manager does
        server.proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in started):
            time.sleep(0.2)
        survivors = {p: command_line(p) for p in started if alive(p)}
        assert not survivors, f"left running after {sig.name}: {survivors}"
    finally:
        for pid in started:  # whatever a failing run left behind (processes this test started)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.stop()
