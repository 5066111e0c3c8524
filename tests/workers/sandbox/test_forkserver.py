"""Fork servers: each job's process is forked from a sandboxed server that imported ahead, under the same isolation as
a child started cold, with the same result; a server that died takes its jobs with it (run again) and is replaced; a
server never reads a job; with fork servers off, none is started."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.support.chaos import alive
from tests.workers.sandbox.test_lifecycle import ENDLESS, sandbox_children
from workers.sandbox import forkserver
from workers.sandbox.runner import Limits, SandboxResult, _server_key, _start_server, run_job

SOUND = "import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {'forward': state.x_velocity}\n"
LIMITS = Limits(wall_seconds=60, memory_mb=4096)
"""Limits no other test uses, so that this module's servers are its own."""
KEY = _server_key(LIMITS, "light")


@pytest.fixture(autouse=True)
def _servers_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(forkserver.ENABLED_VARIABLE, "1")


def dry_run(source: str = SOUND) -> SandboxResult:
    return run_job({"type": "dry_run", "env": "HalfCheetah-v5", "kind": "reward", "source": source}, LIMITS)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_jobs_are_forked_from_one_server_under_the_same_isolation_as_a_cold_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(forkserver.ENABLED_VARIABLE, "0")
    cold = dry_run()
    monkeypatch.setenv(forkserver.ENABLED_VARIABLE, "1")
    first = dry_run()
    server = forkserver.server_pid(KEY)
    assert server is not None and alive(server)
    assert parent_of(server) == os.getpid()
    assert not Path(f"/proc/{server}/cwd/job.json").exists()  # the server's own work dir: it never reads a job

    forked = dry_run()
    assert cold.outcome == first.outcome == forked.outcome == "ok", forked.error
    for same in ("components", "reward", "component_stats", "states"):  # not the timings
        assert forked.payload["report"][same] == cold.payload["report"][same]
    assert forked.isolation == cold.isolation  # same network namespace rule, rlimits, environment, work dir
    assert forkserver.server_pid(KEY) == server, "the same server forked the next job"


@pytest.mark.slow  # waits out a watchdog's wall limit
def test_a_forked_job_is_the_servers_child_in_its_own_work_dir_and_killed_whole_by_the_watchdog() -> None:
    results: list[SandboxResult] = []
    limits = Limits(wall_seconds=8, memory_mb=4096)
    job = threading.Thread(
        target=lambda: results.append(
            run_job({"type": "dry_run", "env": "HalfCheetah-v5", "kind": "reward", "source": ENDLESS}, limits)
        )
    )
    job.start()
    deadline = time.monotonic() + 30
    while not (running := sandbox_children(os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running, "the job's process started"
    server = forkserver.server_pid(_server_key(limits, "light"))
    assert parent_of(running[0]) == server
    assert os.getpgid(running[0]) == running[0], "its own process group, which the watchdog kills"
    job.join(timeout=60)
    assert results and results[0].outcome == "timeout", results
    assert not alive(running[0])
    assert server is not None and alive(server), "the server outlives the job it forked"


def test_a_server_killed_while_idle_is_replaced_and_the_job_runs_as_before() -> None:
    assert dry_run().outcome == "ok"
    server = forkserver.server_pid(KEY)
    assert server is not None
    os.kill(server, signal.SIGKILL)
    while alive(server):
        time.sleep(0.05)
    result = dry_run()
    assert result.outcome == "ok", result.error
    assert "killed" not in (result.error or "")
    assert forkserver.server_pid(KEY) not in (None, server)


@pytest.mark.slow  # a job long enough to be killed half-way, then run again
def test_a_server_killed_under_a_running_job_takes_it_along_and_the_job_is_run_again() -> None:
    assert dry_run().outcome == "ok"
    server = forkserver.server_pid(KEY)
    assert server is not None
    results: list[SandboxResult] = []
    endless = {"type": "dry_run", "env": "HalfCheetah-v5", "kind": "reward", "source": ENDLESS}
    job = threading.Thread(target=lambda: results.append(run_job(endless, Limits(wall_seconds=10, memory_mb=4096))))
    job.start()
    deadline = time.monotonic() + 30
    while not (running := sandbox_children(os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running and parent_of(running[0]) == server
    os.kill(server, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(running[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(running[0]), "the job died with its server"
    while not (again := sandbox_children(os.getpid())) and job.is_alive():
        time.sleep(0.05)
    assert again and again[0] != running[0], "the job was run again"
    assert parent_of(again[0]) == forkserver.server_pid(KEY) != server, "forked from a new server"
    job.join(timeout=60)
    assert results and results[0].outcome == "timeout", results[0].error  # its own wall clock, not the kill


def test_a_server_forks_only_for_a_well_formed_request_and_never_reads_a_job(tmp_path: Path) -> None:
    import socket

    server = _start_server(LIMITS, "light")
    try:
        (tmp_path / "job.json").write_text('{"type": "dry_run", "env": "HalfCheetah-v5"}')
        server.sock.send(f"fork 1 {tmp_path}".encode())  # no pipes passed: refused, nothing forked
        r, w = os.pipe()
        socket.send_fds(server.sock, [b"run it now"], [w, w])
        os.close(w)
        forked = server.fork(tmp_path / "missing")  # a well-formed request is still served after both
        assert forked is not None
        assert forked.wait(timeout=60) != 0  # no job.json there: the fork fails, the server lives on
        assert forked.cpu_seconds is not None
        assert server.alive()
        assert not (tmp_path / "result.json").exists()
        os.close(r)
    finally:
        server.discard()
    assert not server.workdir.exists() and not alive(server.proc.pid)


def test_with_fork_servers_off_none_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(forkserver.ENABLED_VARIABLE, "0")
    forkserver.discard_all()
    assert dry_run().outcome == "ok"
    assert forkserver.server_pids() == []
