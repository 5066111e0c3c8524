"""Sandboxed processes started ahead of their job, so that a job does not wait for Python to import torch.

A training's child spends about 2.4 s importing torch, Stable-Baselines3 and MuJoCo before its first step, and a
dry run about 0.3 s: on every training, and on every check a person waits for in the dashboard. After each job the
runner starts one *spare* for the next job of the same kind, under the same limits. A spare is an ordinary sandboxed
child (same command, scrubbed environment, private work dir, rlimits, network namespace, death with this process),
started with ``--spare``: it imports what its kind of job needs, then waits on its stdin. The runner writes the job's
``job.json`` into the spare's work dir and sends ``go``; only then does the spare read the job. A spare that died
meanwhile (killed from outside, or its limits changed) is thrown away and the job starts cold, as without spares.

Spares belong to the process that started them (a forked Celery pool process starts its own), are started from one
long-lived thread (the kernel's parent-death signal follows the thread that forked the child), and are killed when
the process stops its sandboxes (``lifeline.stop_all``). ``REWARDSMITH_SANDBOX_SPARES=0`` turns them off: each job
then pays for its imports, as before.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workers.sandbox.lifeline import stopping

ENABLED_VARIABLE = "REWARDSMITH_SANDBOX_SPARES"
MAX_SPARES = 3
"""Spares one process keeps at most (one per kind of job and set of limits; a training's holds about 300 MB)."""
GO = "go\n"
"""What the runner sends a spare once its job.json is in place."""


def enabled() -> bool:
    """Whether jobs start on spares (``REWARDSMITH_SANDBOX_SPARES``, on unless set to 0)."""
    return os.environ.get(ENABLED_VARIABLE, "1").strip() not in {"0", "false", "no", "off"}


def warm_group(job_type: str) -> str:
    """The imports a spare for ``job_type`` makes ahead: torch and SB3 for trainings, the simulator for the rest."""
    return "train" if job_type == "train" else "light"


@dataclass
class Spare:
    """A started spare: its process (stdin a pipe) and its private work dir."""

    proc: subprocess.Popen
    workdir: Path

    def discard(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def go(self) -> bool:
        """Start the job whose job.json is in the work dir; False when the spare is gone (then discarded)."""
        stdin = self.proc.stdin
        try:
            if self.proc.poll() is not None or stdin is None:
                raise BrokenPipeError
            stdin.write(GO)
            stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            self.discard()
            return False
        return True


Start = Callable[[], Spare]
"""Starts one spare (the runner's own way of starting a sandboxed child, with ``--spare``)."""


class _Pool:
    """The spares of one process, at most one per key, started by one thread that lives as long as the process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.ready: dict[tuple, Spare] = {}
        self.wanted: queue.Queue[tuple[tuple, Start]] = queue.Queue()
        self.thread = threading.Thread(target=self._serve, name="sandbox-spares", daemon=True)
        self.thread.start()

    def take(self, key: tuple) -> Spare | None:
        with self.lock:
            spare = self.ready.pop(key, None)
        if spare is not None and (stopping() or spare.proc.poll() is not None):
            spare.discard()
            return None
        return spare

    def _serve(self) -> None:
        while True:
            try:
                key, start = self.wanted.get(timeout=0.5)
            except queue.Empty:
                if stopping():
                    self.discard_all()
                continue
            with self.lock:
                have = key in self.ready
            if have or stopping():
                continue
            try:
                spare = start()
            except OSError:  # no process could be started (limits, memory): the next job starts cold
                continue
            with self.lock:
                self.ready[key] = spare
                evicted = list(self.ready)[:-MAX_SPARES]  # the longest unused go: each holds its imports in memory
                old = [self.ready.pop(k) for k in evicted]
            for evicted_spare in old:
                evicted_spare.discard()

    def discard_all(self) -> None:
        with self.lock:
            spares, self.ready = list(self.ready.values()), {}
        for spare in spares:
            spare.discard()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _after_fork() -> None:
    global _pool_lock
    _pool_lock = threading.Lock()  # the parent's may have been held by another thread at the fork


os.register_at_fork(after_in_child=_after_fork)


def _own() -> _Pool | None:
    """This process's pool, if it started one (a forked process's inherited pool is its parent's, not its own)."""
    pool = _pool
    return pool if pool is not None and pool.pid == os.getpid() else None


def _mine() -> _Pool:
    global _pool
    with _pool_lock:
        if _own() is None:
            _pool = _Pool()
        assert _pool is not None
        return _pool


def take(key: tuple) -> Spare | None:
    """A live spare started for ``key``, now owned by the caller; None when there is none."""
    pool = _own()
    return pool.take(key) if pool is not None and enabled() else None


def prepare(key: tuple, start: Start) -> None:
    """Have a spare for ``key`` ready for the next job (started in the background unless one is ready)."""
    if enabled() and not stopping():
        _mine().wanted.put((key, start))


def discard_all() -> None:
    """Kill this process's spares (tests, and a process that will run no more jobs)."""
    if (pool := _own()) is not None:
        pool.discard_all()


def ready_pid(key: tuple) -> int | None:
    """The process of the spare ready for ``key``, if there is one."""
    if (pool := _own()) is None:
        return None
    with pool.lock:
        spare = pool.ready.get(key)
    return None if spare is None else spare.proc.pid


def ready_pids() -> list[int]:
    """The processes of the spares this process holds ready."""
    if (pool := _own()) is None:
        return []
    with pool.lock:
        return [spare.proc.pid for spare in pool.ready.values()]
