"""Process lifecycle: children that die with their parent, sandboxes stopped when their worker shuts down, and a
process identity that tells a dead owner from a live one.

The kernel's parent-death signal (``PR_SET_PDEATHSIG``) fires when the *thread* that forked a child ends, not the
process; so a child must be started from a thread that outlives it (the thread that waits for it, or a supervisor
thread that stops it before ending). Arming it races with the parent's death: a parent that dies between the fork and
the ``prctl`` call sends nothing, so the child checks that its parent is still the one that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: a forked child only calls it


def dies_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when the thread that started it ends (the
    whole parent process dying included, SIGKILL too), and exits at once if the parent is already gone. A process
    started by other code (uvicorn's workers) calls the result itself, with the ``parent`` it expects."""
    parent = os.getpid() if parent is None else parent

    def arm() -> None:  # runs in the forked child, before exec
        _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed: nothing would ever send it
            os._exit(1)

    return arm


class SandboxStopped(BaseException):
    """This process is shutting down and stopped its sandboxed job: the job was not judged, and its work should go
    back to the queue. A BaseException, so that no ``except Exception`` records it as the program's failure."""


_stopping = mmap.mmap(-1, 1)
"""One byte of memory shared with every process forked from this one after import (MAP_SHARED): set by
``stop_all``, so that a Celery worker's main process stops the sandboxed jobs of its pool processes too."""
_live: dict[int, Callable[[], None]] = {}
_live_lock = threading.RLock()  # re-entrant: stop_all may run in a signal handler of a thread holding it


def stopping() -> bool:
    """Whether ``stop_all`` was called here or in the process this one was forked from: no sandboxed job runs on."""
    return _stopping[0] == 1


def stop_all() -> None:
    """Stop every sandboxed job of this process and of the processes forked from it (each job's watchdog notices
    within a moment), and refuse new ones (they raise ``SandboxStopped``). Safe in a signal handler, and twice."""
    _stopping[0] = 1
    with _live_lock:
        stops = list(_live.values())
    for stop in stops:
        stop()


@contextlib.contextmanager
def registered(pid: int, stop: Callable[[], None]) -> Iterator[None]:
    """Keep ``stop`` (which kills the job of child ``pid``) where ``stop_all`` finds it while the block runs; a job
    started after ``stop_all`` is stopped at once."""
    with _live_lock:
        _live[pid] = stop
    try:
        if stopping():
            stop()
        yield
    finally:
        with _live_lock:
            _live.pop(pid, None)


def sandbox_pids() -> set[int]:
    """The sandboxed children this process runs now."""
    with _live_lock:
        return set(_live)


# ------------------------------------------------------------------------------------------------ process identity


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])


def pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def boot_id() -> str:
    """This kernel's boot id: processes (and containers) on one kernel share it, two machines never do."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def identity() -> str:
    """This process as ``host:pid:start:pid-namespace:boot-id``: unique while it lives, and checkable by any process
    on the same kernel (the host name is for people: two machines may share one)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{start_time(pid) or 0}:{pid_namespace()}:{boot_id()}"


def is_gone(owner: str | None) -> bool:
    """True only when ``owner`` (an ``identity()``) names a process of this kernel and pid namespace that has ended;
    False when it lives, runs elsewhere, or cannot be told."""
    try:
        _, pid, started, namespace, boot = (owner or "").rsplit(":", 4)
        pid_, started_, namespace_ = int(pid), int(started), int(namespace)
    except ValueError:
        return False
    if boot != boot_id() or boot == "unknown" or namespace_ != pid_namespace() or started_ == 0:
        return False
    return start_time(pid_) != started_


def children_of_this_process() -> list[int]:
    """The live direct children of this process (from /proc)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == me and fields[0] != "Z":
                    found.append(int(entry.name))
    return found
