"""The sandboxed process's lifecycle: a kill from outside is not the program's fault, a stopping worker stops its jobs
(in its forked pool processes too), and a child whose parent is already gone does not run on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workers.sandbox.runner import KILL_RETRIES, Limits, Outcome, run_job

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SOUND = "import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {'forward': state.x_velocity}\n"
ENDLESS = "import numpy as np\n\n\ndef compute_reward(state, action):\n    while True:\n        pass\n"
DRY_RUN = {"type": "dry_run", "env": "HalfCheetah-v5", "kind": "reward"}


def sandbox_processes(parent: int) -> list[int]:
    """The sandboxed processes ``parent`` started: its children, and the jobs its fork servers forked."""
    out = subprocess.run(["pgrep", "-f", "workers.sandbox.child"], capture_output=True, text=True).stdout
    ppid: dict[int, int] = {}
    for pid in map(int, out.split()):
        try:
            ppid[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return [p for p, up in ppid.items() if up == parent or ppid.get(up) == parent]


def sandbox_children(parent: int) -> list[int]:
    """The sandboxed processes of ``parent`` that run a job (a fork server runs none: its work dir has no job.json)."""
    return [p for p in sandbox_processes(parent) if Path(f"/proc/{p}/cwd/job.json").exists()]


def kill_children(times: int, stop: threading.Event) -> list[int]:
    """SIGKILL the next ``times`` sandbox children of this process as each appears (from outside, like an operator
    or the kernel's out-of-memory killer); returns their pids."""
    killed: list[int] = []
    while len(killed) < times and not stop.is_set():
        for pid in sandbox_children(os.getpid()):
            if pid not in killed:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended first
                    continue
                killed.append(pid)
        time.sleep(0.05)
    return killed


def test_a_job_killed_from_outside_is_run_again_and_its_result_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=lambda: killed.extend(kill_children(1, stop)))
    killer.start()
    result = run_job({**DRY_RUN, "source": SOUND}, Limits(wall_seconds=60))
    stop.set()
    killer.join()
    assert len(killed) == 1, "the first sandbox child was killed"
    assert result.outcome == Outcome.OK, result.error
    assert result.payload["report"]["components"] == ["forward"]


def test_a_job_killed_every_time_ends_as_a_resource_limit_that_says_so() -> None:
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=lambda: killed.extend(kill_children(KILL_RETRIES + 1, stop)))
    killer.start()
    result = run_job({**DRY_RUN, "source": ENDLESS}, Limits(wall_seconds=60))
    stop.set()
    killer.join()
    assert len(killed) == KILL_RETRIES + 1
    assert result.outcome == Outcome.RESOURCE_LIMIT
    assert (
        "ended by SIGKILL" in result.error and f"run {KILL_RETRIES + 1} times; it was killed each time" in result.error
    )


STOPPING = """
import os, sys, time, subprocess
from workers.sandbox import lifeline
from workers.sandbox.runner import Limits, run_job

job = {"type": "dry_run", "env": "HalfCheetah-v5", "kind": "reward", "source": %(source)r}
pool = os.fork()  # a Celery pool process: forked from the worker's main process after the import
if pool == 0:
    try:
        run_job(job, Limits(wall_seconds=60))
    except lifeline.SandboxStopped:
        try:
            run_job(job, Limits(wall_seconds=60))  # and no new one starts
        except lifeline.SandboxStopped:
            os._exit(42)
    os._exit(1)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    out = subprocess.run(["pgrep", "-P", str(pool), "-f", "workers.sandbox.child"], capture_output=True, text=True)
    if out.stdout.split():
        break
    time.sleep(0.2)
else:
    sys.exit("the sandbox child did not start")
started = time.monotonic()
lifeline.stop_all()  # the worker's main process shuts down
_, status = os.waitpid(pool, 0)
print(os.waitstatus_to_exitcode(status), round(time.monotonic() - started, 1))
"""


def test_a_stopping_worker_stops_the_jobs_of_its_forked_pool_processes_and_starts_no_new_ones(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(STOPPING % {"source": ENDLESS})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    code, seconds = out.stdout.split()
    assert code == "42", out.stderr[-2000:]  # SandboxStopped twice: the running job, then the refused one
    assert float(seconds) < 5  # the watchdog notices within a moment, not at the job's 60 s wall clock


STOPPED_FROM_OUTSIDE = """
import os, sys, time
from pathlib import Path
from workers.sandbox import lifeline
from workers.sandbox.runner import Limits, run_job
from tests.workers.sandbox.test_lifecycle import sandbox_children

job = {"type": "dry_run", "env": "HalfCheetah-v5", "kind": "reward", "source": %(source)r}
kept = Path(sys.argv[1])
pool = os.fork()
if pool == 0:
    try:
        run_job(job, Limits(wall_seconds=60), artifacts_to=kept)
    except lifeline.SandboxStopped:
        os._exit(42)
    os._exit(1)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not sandbox_children(pool):
    time.sleep(0.1)
[child] = sandbox_children(pool)
resume = Path(f"/proc/{child}/cwd/resume")  # the checkpoint a training keeps as it goes
resume.mkdir()
(resume / "policy.zip").write_bytes(b"policy")
# the worker shuts down, and the job dies before its watchdog stops it (a warm child dies with its fork server)
lifeline._stopping[0] = 1
os.kill(child, 9)
_, status = os.waitpid(pool, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_job_killed_from_outside_while_the_worker_stops_is_handed_back_with_its_checkpoint(tmp_path: Path) -> None:
    """Not run again, not judged: the worker is going away; the checkpoint goes with the job, for the next attempt."""
    script = tmp_path / "worker.py"
    script.write_text(STOPPED_FROM_OUTSIDE % {"source": ENDLESS})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "kept")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["42"], out.stderr[-2000:]  # SandboxStopped, not a result
    assert (tmp_path / "kept" / "resume" / "policy.zip").read_bytes() == b"policy"


ORPHAN = """
import os, time
from workers.sandbox.lifeline import dies_with_parent

arm = dies_with_parent()  # made in this process, which the forked child's own child is not a child of
child = os.fork()
if child == 0:
    grandchild = os.fork()
    if grandchild == 0:
        arm()  # as a preexec_fn would, in a process whose parent is not the one that made the arm
        os._exit(0)
    _, status = os.waitpid(grandchild, 0)
    os._exit(os.waitstatus_to_exitcode(status))
_, status = os.waitpid(child, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_child_whose_parent_is_not_the_one_that_armed_it_exits_at_once(tmp_path: Path) -> None:
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
    )
    assert out.stdout.strip() == "1", out.stderr
