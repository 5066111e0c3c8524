"""Sandbox work dirs: each named after the process that made it, so that the ones a killed process left behind
can be told from the ones a live process is using, and removed.

A worker killed with SIGKILL takes its sandboxed child with it (PDEATHSIG), but not the
child's private directory in the temp dir; the next process to run a job sweeps those.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

from workers.sandbox.lifeline import pid_namespace as _pid_namespace
from workers.sandbox.lifeline import start_time as _start_time

WORKDIR_PREFIX = "rewardsmith-sandbox-"
_OURS = re.compile(rf"^{WORKDIR_PREFIX}(\d+)-(\d+)-(\d+)-")
"""Work dirs are named after the process that made them: pid, its start time, its pid namespace."""
LEGACY_STALE_SECONDS = 24 * 3600.0
"""A work dir of an older naming (no owner in its name) is removed only when it is at least this old."""


def new_workdir() -> Path:
    """A fresh private work dir in the temp dir, named after this process (see ``clean_stale_workdirs``)."""
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{pid}-{_start_time(pid) or 0}-{_pid_namespace()}-"))


_swept: set[str] = set()
_sweep_lock = threading.Lock()


def clean_stale_workdirs() -> list[Path]:
    """Remove the work dirs that killed processes left in the temp dir; returns what was removed.

    Only ours: directories (not links) of this user named like ours. Only stale: their owner
    process (pid and start time, in this pid namespace) is gone; a dir named the old way is
    removed only after a day. Runs once per temp dir and process on the first job; a worker
    may call it at start-up.
    """
    root = tempfile.gettempdir()
    with _sweep_lock:
        if root in _swept:
            return []
        _swept.add(root)
    removed = []
    uid, ns, now = os.getuid(), _pid_namespace(), time.time()
    for entry in os.scandir(root):
        if not entry.name.startswith(WORKDIR_PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue
        owner = _OURS.match(entry.name)
        pid, started, namespace = (int(g) for g in owner.groups()) if owner else (0, 0, 0)
        if started == 0 or namespace != ns:  # no owner we can look up: only its age can tell
            stale = now - info.st_mtime > LEGACY_STALE_SECONDS
        else:
            stale = _start_time(pid) != started
        if stale:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
