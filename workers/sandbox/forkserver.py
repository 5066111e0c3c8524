"""Sandboxed fork servers: each job's process is forked from one that already imported torch, SB3 and MuJoCo.

A training's child spends about 2.4 s of CPU importing torch, Stable-Baselines3 and MuJoCo before its first step, and
a dry run about 0.3 s: on every training, and on every check a person waits for in the dashboard. Instead, the runner
starts, per kind of job and set of limits, one *fork server*: an ordinary sandboxed child (same command, scrubbed
environment, private work dir, rlimits, network namespace, death with this process) started with ``--serve``. It
imports what its kind of job needs and then only forks: for each job the runner sends it the job's work dir and two
pipes; the server forks, and the fork makes its own session, dies with the server, takes the pipes as its stdout and
stderr, moves into the work dir and only then reads job.json (``workers.sandbox.zygote``). Every job is a fresh copy
of a server that never ran a program: what one job did cannot reach the next.

The runner treats the fork as its child: it kills its process group, reads its pipes, and learns its exit status
and CPU time from the server, which reaps it. A server that died (killed from outside, out of memory) takes its
running jobs with it; they end as killed from outside and are run again, and the next job starts a new server.
A server that cannot be started or does not answer leaves the job to start cold, as with
``REWARDSMITH_SANDBOX_FORKSERVER=0``.

Servers belong to the process that started them (a forked Celery pool process starts its own), are started from one
long-lived thread (the kernel's parent-death signal follows the thread that forked the child), and are killed when
the process stops its sandboxes (``lifeline.stop_all``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from workers.sandbox.lifeline import stopping

ENABLED_VARIABLE = "REWARDSMITH_SANDBOX_FORKSERVER"
MAX_SERVERS = 4
"""Fork servers one process keeps at most (one per kind of job and set of limits; a training's holds ~350 MB)."""
START_SECONDS = 120.0
"""How long a job waits for a new server to import and fork it before the job starts cold instead."""
MESSAGE_BYTES = 4096


def enabled() -> bool:
    """Whether jobs are forked from a fork server (``REWARDSMITH_SANDBOX_FORKSERVER``, on unless set to 0)."""
    return os.environ.get(ENABLED_VARIABLE, "1").strip() not in {"0", "false", "no", "off"}


def warm_group(job_type: str) -> str:
    """What a server for ``job_type`` imports: torch and SB3 for trainings, the simulator for the rest."""
    return "train" if job_type == "train" else "light"


class Forked:
    """A job's process forked by a server: what the runner needs of a ``subprocess.Popen``.

    Its exit status comes from the server, which reaps it; ``cpu_seconds`` is its user + system time."""

    def __init__(self, pid: int, stdout: IO[str], stderr: IO[str]) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self.cpu_seconds: float | None = None
        self._ended = threading.Event()

    def ended(self, returncode: int, cpu_seconds: float | None) -> None:
        if not self._ended.is_set():
            self.returncode, self.cpu_seconds = returncode, cpu_seconds
            self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"sandboxed job {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if not self._ended.is_set():  # once reaped, its pid may belong to another process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


@dataclass
class Server:
    """A started fork server: its process, the runner's end of its socket, and its private work dir."""

    proc: subprocess.Popen
    sock: socket.socket
    workdir: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tokens: itertools.count = field(default_factory=itertools.count)
    _starting: dict[int, queue.SimpleQueue] = field(default_factory=dict)
    _running: dict[int, Forked] = field(default_factory=dict)
    _exits: dict[int, tuple[int, float]] = field(default_factory=dict)
    """Exits read before the forking thread stored its ``Forked`` (the reply and the exit can come in one go)."""
    _gone: bool = False

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, name=f"forkserver-{self.proc.pid}", daemon=True).start()

    def alive(self) -> bool:
        return not self._gone and self.proc.poll() is None

    def fork(self, workdir: Path, timeout: float = START_SECONDS) -> Forked | None:
        """The job in ``workdir`` (its job.json in place), started in a fork of this server; None when the server
        is gone or did not answer in ``timeout`` (then it is killed, so that no late fork runs the job twice)."""
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        reply: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            token = next(self._tokens)
            self._starting[token] = reply
        try:
            if self._gone:
                raise BrokenPipeError
            socket.send_fds(self.sock, [f"fork {token} {workdir}".encode()], [out_w, err_w])
            pid = reply.get(timeout=timeout)
        except (OSError, queue.Empty):
            pid = None
        finally:
            os.close(out_w)
            os.close(err_w)
            with self._lock:
                self._starting.pop(token, None)
        if pid is None:
            os.close(out_r)
            os.close(err_r)
            self.discard()
            return None
        forked = Forked(pid, _text(out_r), _text(err_r))
        with self._lock:
            early = self._exits.pop(pid, None)
            if early is None:
                self._running[pid] = forked
        if early is not None:
            forked.ended(*early)
        elif self._gone:
            forked.ended(-signal.SIGKILL, None)
        return forked

    def _read(self) -> None:
        while True:
            try:
                message = self.sock.recv(MESSAGE_BYTES).decode("ascii", "replace").split()
            except OSError:
                message = []
            if not message:
                break
            try:
                self._handle(message)
            except (ValueError, IndexError):  # the server is trusted code: a garbled message means it is broken
                self.discard()
                break
        self._gone = True
        with self._lock:
            running, starting = list(self._running.values()), list(self._starting.values())
            self._running.clear()
        for forked in running:  # the server died: its forks died with it (their parent-death signal)
            forked.ended(-signal.SIGKILL, None)
        for reply in starting:
            reply.put(None)

    def _handle(self, message: list[str]) -> None:
        if message[0] == "started":  # started TOKEN PID (PID "-": the fork failed)
            with self._lock:
                reply = self._starting.get(int(message[1]))
            if reply is not None:
                reply.put(None if message[2] == "-" else int(message[2]))
        elif message[0] == "exit":  # exit PID RETURNCODE CPU-SECONDS
            pid, code, cpu = int(message[1]), int(message[2]), float(message[3])
            with self._lock:
                forked = self._running.pop(pid, None)
                if forked is None:
                    self._exits[pid] = (code, cpu)
            if forked is not None:
                forked.ended(code, cpu)
        else:
            raise ValueError(message[0])

    def close(self) -> None:
        """Take no more jobs; the server ends once the jobs it runs have ended."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def discard(self) -> None:
        """Kill the server, and with it any job it runs."""
        self._gone = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            self.sock.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _text(fd: int) -> IO[str]:
    return open(fd, encoding="utf-8", errors="replace")


Start = Callable[[], Server]
"""Starts one fork server (the runner's own way of starting a sandboxed child, with ``--serve``)."""


class _Pool:
    """The fork servers of one process, one per key, started by one thread that lives as long as the process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.servers: dict[tuple, Server] = {}
        self.wanted: queue.Queue[tuple[tuple, Start, queue.SimpleQueue]] = queue.Queue()
        self.thread = threading.Thread(target=self._serve, name="sandbox-forkservers", daemon=True)
        self.thread.start()

    def server(self, key: tuple, start: Start) -> Server | None:
        with self.lock:
            server = self.servers.get(key)
        if server is not None and server.alive() and not stopping():
            return server
        reply: queue.SimpleQueue = queue.SimpleQueue()
        self.wanted.put((key, start, reply))
        try:
            return reply.get(timeout=START_SECONDS)
        except queue.Empty:  # the starting thread is stuck: this job starts cold
            return None

    def _serve(self) -> None:
        while True:
            try:
                key, start, reply = self.wanted.get(timeout=0.5)
            except queue.Empty:
                if stopping():
                    self.discard_all()
                continue
            with self.lock:
                server = self.servers.get(key)
            if server is not None and server.alive():
                reply.put(server)
                continue
            if server is not None:
                server.discard()
            if stopping():
                reply.put(None)
                continue
            try:
                server = start()
            except Exception:  # no process could be started (limits, memory): the job starts cold
                reply.put(None)
                continue
            with self.lock:
                self.servers.pop(key, None)
                self.servers[key] = server
                evicted = list(self.servers)[:-MAX_SERVERS]  # the longest unused go: each holds its imports
                old = [self.servers.pop(k) for k in evicted]
            reply.put(server)
            for evicted_server in old:
                evicted_server.close()

    def discard_all(self) -> None:
        with self.lock:
            servers, self.servers = list(self.servers.values()), {}
        for server in servers:
            server.discard()


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


def fork(key: tuple, workdir: Path, start: Start) -> Forked | None:
    """The job in ``workdir`` started as a fork of this process's server for ``key`` (started with ``start`` when
    there is none); None when fork servers are off or none could serve it: then the caller starts it cold."""
    if not enabled() or stopping():
        return None
    server = _mine().server(key, start)
    return None if server is None else server.fork(workdir)


def discard_all() -> None:
    """Kill this process's fork servers (tests, and a process that will run no more jobs)."""
    if (pool := _own()) is not None:
        pool.discard_all()


def server_pid(key: tuple) -> int | None:
    """The process of this process's fork server for ``key``, if it has one."""
    if (pool := _own()) is None:
        return None
    with pool.lock:
        server = pool.servers.get(key)
    return None if server is None else server.proc.pid


def server_pids() -> list[int]:
    """The processes of this process's fork servers."""
    if (pool := _own()) is None:
        return []
    with pool.lock:
        return [server.proc.pid for server in pool.servers.values()]
