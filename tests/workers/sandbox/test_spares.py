"""Spares: the next job of a process starts on a sandboxed child that imported what it needs ahead, under the same
isolation; a spare that died (or spares turned off) leaves the job to start cold, with the same result."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.chaos import alive
from workers.sandbox import spares
from workers.sandbox.runner import Limits, SandboxResult, _spare_key, run_job

SOUND = "import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {'forward': state.x_velocity}\n"
LIMITS = Limits(wall_seconds=60, memory_mb=4096)
"""Limits no other test uses, so that this module's spares are its own."""


@pytest.fixture(autouse=True)
def _spares_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spares.ENABLED_VARIABLE, "1")  # tests/conftest.py turns them off for the rest of the suite


def dry_run() -> SandboxResult:
    return run_job({"type": "dry_run", "env": "HalfCheetah-v5", "kind": "reward", "source": SOUND}, LIMITS)


def wait_for_spare(other_than: frozenset[int] = frozenset()) -> int:
    key = _spare_key(LIMITS, "light")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (pid := spares.ready_pid(key)) is not None and pid not in other_than:
            return pid
        time.sleep(0.1)
    raise AssertionError("no spare was started for the next job")


def test_the_next_job_runs_on_the_spare_under_the_same_isolation_and_a_new_spare_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(spares.ENABLED_VARIABLE, "0")
    cold = dry_run()
    monkeypatch.setenv(spares.ENABLED_VARIABLE, "1")
    first = dry_run()
    spare = wait_for_spare()
    assert alive(spare) and Path(f"/proc/{spare}/cwd/job.json").exists() is False  # waiting, no job yet

    warm = dry_run()
    assert cold.outcome == first.outcome == warm.outcome == "ok", warm.error
    for same in ("components", "reward", "component_stats", "states"):  # not the timings
        assert warm.payload["report"][same] == cold.payload["report"][same]
    assert warm.isolation == cold.isolation  # same network namespace rule, rlimits, environment, work dir
    deadline = time.monotonic() + 10
    while alive(spare) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(spare), "the spare ran the job and ended"
    assert wait_for_spare(other_than=frozenset({spare})) != spare


def test_a_spare_killed_while_it_waits_leaves_the_job_to_start_cold() -> None:
    assert dry_run().outcome == "ok"
    spare = wait_for_spare()
    os.kill(spare, signal.SIGKILL)
    while alive(spare):
        time.sleep(0.05)
    result = dry_run()
    assert result.outcome == "ok", result.error
    assert "killed" not in (result.error or "")


def test_a_spare_sent_anything_but_go_ends_without_reading_its_job() -> None:
    from workers.sandbox.runner import _start_spare

    spare = _start_spare(LIMITS, "light")
    try:
        (spare.workdir / "job.json").write_text('{"type": "dry_run", "env": "HalfCheetah-v5"}')
        assert spare.proc.stdin is not None
        spare.proc.stdin.write("go on, run it\n")
        spare.proc.stdin.close()
        assert spare.proc.wait(timeout=60) == 0
        assert not (spare.workdir / "result.json").exists()
    finally:
        spare.discard()
    assert not spare.workdir.exists()


def test_with_spares_off_no_spare_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spares.ENABLED_VARIABLE, "0")
    spares.discard_all()
    assert dry_run().outcome == "ok"
    time.sleep(1.0)
    assert spares.ready_pids() == []
