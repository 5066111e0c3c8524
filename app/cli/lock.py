"""One process drives a data dir: `rewardsmith serve` (with its workers), `rewardsmith run`, or a worker on the
embedded broker.

The lock is an flock on ``<data_dir>/rewardsmith.lock``. The kernel drops it when the last
process holding it ends, however it ends, so a crash never leaves a stale lock behind.
`serve` hands it down to its workers: the data dir stays locked until the last of them is
gone, so a new `serve` can never run beside workers of an old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from app.cli.common import fail
from workers.sandbox.lifeline import start_time

LOCK_FILE = "rewardsmith.lock"
ORPHAN_WAIT_SECONDS = 15.0
"""How long to wait for the lock when its holder has died but processes it started still hold it (they die with it,
by their parent-death signal, within moments)."""


def _holder(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(holder: dict) -> bool:
    pid, started = holder.get("pid"), holder.get("start")
    return isinstance(pid, int) and started is not None and start_time(pid) == started


def hold(data_dir: Path, command: str) -> int:
    """Lock ``data_dir`` for ``command`` and return the lock's file descriptor (children given it hold the lock too);
    exits with a message that says who holds it when another process does."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + ORPHAN_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = _holder(path)
            who = f"`{holder.get('command', 'another rewardsmith process')}` (pid {holder.get('pid', '?')}"
            if _alive(holder):
                os.close(fd)
                fail(
                    f"the data dir {data_dir} is already in use: {who}, since {holder.get('since', '?')}) holds it. "
                    "One `rewardsmith serve` (or `rewardsmith run`, or worker on the embedded broker) per data dir: "
                    "stop that one first, or give this one another REWARDSMITH_DATA_DIR."
                )
            if time.monotonic() > deadline:
                os.close(fd)
                fail(
                    f"the data dir {data_dir} is still locked by processes that {who}, now gone) started, "
                    f"{ORPHAN_WAIT_SECONDS:g} s after it ended. List them with `fuser -v {path}`, stop them, "
                    "and start again."
                )
            time.sleep(0.2)
    pid = os.getpid()
    since = datetime.now(UTC).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(
        fd,
        json.dumps(
            {"pid": pid, "start": start_time(pid), "command": command, "since": since}, allow_nan=False
        ).encode(),
        0,
    )
    return fd


@contextlib.contextmanager
def holding(data_dir: Path, command: str) -> Iterator[int]:
    """``hold`` for the length of the block."""
    fd = hold(data_dir, command)
    try:
        yield fd
    finally:
        os.close(fd)
