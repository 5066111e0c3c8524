"""The workers `rewardsmith serve` runs: started, restarted when one dies, stopped within a bound, and dead with it.

Each worker runs in a process group of its own (so that killing it reaches its pool's
processes too) and gets SIGKILL from the kernel when `serve` dies, however it dies. The
kernel sends that signal when the *thread* that started the child ends, so one thread of
the supervisor's own starts every worker and ends only after it has stopped them all.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

from app.cli.common import console
from workers.sandbox.lifeline import dies_with_parent

RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before restarting a worker that died, by how many times in a row it did (a crash loop slows down)."""
STEADY_SECONDS = 60.0
"""A worker that ran this long before dying is restarted after the first delay again."""


def start_worker(cmd: list[str], keep_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start ``cmd`` in a process group of its own, killed by the kernel when the calling thread ends."""
    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=dies_with_parent(signal.SIGKILL), pass_fds=keep_fds)


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def stop_children(children: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM each child (a worker hands its running trainings back to the queue and stops its pool), wait up to
    ``grace`` seconds, then SIGKILL what is left of its process group (the sweep recovers what it held). The SIGTERM
    goes to the worker's main process only: its idle pool processes exit when the pool closes, while one killed
    under it makes Celery's shutdown wait for it in vain."""
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
    for child in children:
        _signal_group(child, signal.SIGKILL)  # the group's other processes (the pool) even if its leader is gone
        child.wait()


class Supervisor:
    """Runs named worker commands from a thread of its own; ``stop`` ends them all within ``grace`` seconds."""

    def __init__(
        self, grace: float, keep_fds: tuple[int, ...] = (), on_restart: Callable[[str], None] | None = None
    ) -> None:
        self.grace, self.keep_fds, self.on_restart = grace, keep_fds, on_restart
        self._wanted: queue.Queue[tuple[str, list[str]]] = queue.Queue()
        self._stop = threading.Event()
        self.children: dict[str, subprocess.Popen] = {}
        self._thread = threading.Thread(target=self._run, name="worker-supervisor", daemon=True)
        self._thread.start()

    def add(self, name: str, cmd: list[str]) -> None:
        """Run ``cmd`` as the worker ``name`` (started by the supervisor's thread)."""
        self._wanted.put((name, cmd))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.grace + 60)

    def _run(self) -> None:
        commands: dict[str, list[str]] = {}
        started: dict[str, float] = {}
        deaths: dict[str, int] = {}
        due: dict[str, float] = {}  # restarts waiting for their time
        try:
            while not self._stop.is_set():
                while not self._wanted.empty():
                    name, cmd = self._wanted.get()
                    commands[name], due[name] = cmd, 0.0
                now = time.monotonic()
                for name, when in list(due.items()):
                    if now >= when:
                        del due[name]
                        self.children[name], started[name] = start_worker(commands[name], self.keep_fds), now
                        if deaths.get(name) and self.on_restart is not None:
                            self.on_restart(name)
                for name, child in list(self.children.items()):
                    if name in due or child.poll() is None:
                        continue
                    _signal_group(child, signal.SIGKILL)  # what is left of its pool
                    ran = now - started[name]
                    deaths[name] = 1 if ran >= STEADY_SECONDS else deaths.get(name, 0) + 1
                    delay = RESTART_DELAYS[min(deaths[name], len(RESTART_DELAYS)) - 1]
                    console.print(
                        f"[yellow]worker {name} exited (code {child.returncode}) after {ran:.0f} s; "
                        f"restarting it in {delay:g} s[/]",
                        highlight=False,
                    )
                    due[name] = now + delay
                self._stop.wait(0.25)
        finally:
            stop_children(list(self.children.values()), self.grace)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def supervised(
    grace: float, keep_fds: tuple[int, ...] = (), on_restart: Callable[[str], None] | None = None
) -> Iterator[Supervisor]:
    """The workers added in the block are stopped when it ends, on SIGTERM and SIGINT too. uvicorn answers SIGTERM
    by shutting down and raising the signal again, which by default kills this process before any cleanup; here it
    raises SystemExit instead, so the block's ``finally`` runs."""
    supervisor = Supervisor(grace, keep_fds, on_restart)
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield supervisor
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        try:
            supervisor.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, signal.default_int_handler)
