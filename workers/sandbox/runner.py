"""The trusted side of the sandbox: runs one job in an isolated child process and classifies the outcome.

The child gets a scrubbed environment, a private temporary working directory, rlimits
(address space, processes, file size, no core dumps), its own network namespace where the
kernel allows, and a wall-clock limit that this process enforces with SIGKILL on the
child's whole process group. Outcomes: ok, rejected, failed, timeout, resource_limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Outcome(StrEnum):
    """How a sandboxed job ended."""

    OK = "ok"
    REJECTED = "rejected"
    """The static check or the dry run refused the program."""
    FAILED = "failed"
    TIMEOUT = "timeout"
    RESOURCE_LIMIT = "resource_limit"


OUTCOMES = tuple(Outcome)

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

# Variables a training process may see; everything else (API keys, database and broker URLs) is dropped.
_PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MUJOCO_GL", "PYOPENGL_PLATFORM")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed job."""

    wall_seconds: float = 3600.0
    memory_mb: int = 8192
    """Address-space limit; torch and MuJoCo map about 2 GiB before any work."""
    max_processes: int = 512
    max_file_mb: int = 512
    network: bool = False


@dataclass
class SandboxResult:
    """What came back from one sandboxed job."""

    outcome: Outcome
    error: str | None
    payload: dict = field(default_factory=dict)
    isolation: dict = field(default_factory=dict)
    seconds: float = 0.0
    stderr_tail: str = ""


def _netns_inode() -> int | None:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


def _preexec(limits: Limits) -> Callable[[], None]:
    def setup() -> None:  # runs in the forked child before exec
        os.setsid()
        # Die with the parent: a worker killed with SIGKILL must not leave its training running unattended.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if not limits.network:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        fsize = limits.max_file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))

    return setup


def _project_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _child_env(workdir: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.setdefault("MUJOCO_GL", "egl")
    env.update(
        HOME=str(workdir / ".home"),
        TMPDIR=str(workdir / ".tmp"),
        PYTHONPATH=_project_root(),
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
    )
    return env


def run_job(
    job: dict,
    limits: Limits,
    *,
    on_event: Callable[[dict], None] | None = None,
    artifacts_to: Path | None = None,
) -> SandboxResult:
    """Run ``job`` (see ``workers.sandbox.child``) in a fresh sandboxed process.

    Events the child prints (progress) go to ``on_event``. Files the child leaves in its
    working directory are moved to ``artifacts_to`` when given; the directory is removed.
    """
    workdir = Path(tempfile.mkdtemp(prefix="rewardsmith-sandbox-"))
    for private in (".home", ".tmp"):
        (workdir / private).mkdir()
    (workdir / "job.json").write_text(json.dumps({**job, "parent_netns": _netns_inode()}))
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "workers.sandbox.child", "job.json"],
        cwd=workdir,
        env=_child_env(workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_preexec(limits),
        text=True,
    )
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(limits.wall_seconds, kill)
    timer.daemon = True
    timer.start()
    stderr_lines: list[str] = []
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None  # both are pipes
    drain = threading.Thread(target=lambda: stderr_lines.extend(stderr), daemon=True)
    drain.start()
    try:
        for line in stdout:
            if line.startswith("{") and on_event is not None:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                on_event(event)  # may raise to stop the job (e.g. the run was cancelled)
        proc.wait()
    except BaseException:
        kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill()
            proc.wait()
        drain.join(timeout=5)
    seconds = time.monotonic() - started
    result = _classify(proc.returncode, killed.is_set(), workdir, limits, "".join(stderr_lines[-40:]))
    result.seconds = seconds
    if artifacts_to is not None:
        artifacts_to.mkdir(parents=True, exist_ok=True)
        for item in workdir.iterdir():
            if item.name not in {"job.json", "result.json"} and not item.name.startswith("."):
                shutil.move(str(item), artifacts_to / item.name)
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def _classify(returncode: int, killed: bool, workdir: Path, limits: Limits, stderr: str) -> SandboxResult:
    result_file = workdir / "result.json"
    data: dict = {}
    if result_file.exists():
        try:
            data = json.loads(result_file.read_text())
        except json.JSONDecodeError:
            data = {}
    isolation = data.pop("isolation", {})
    if killed:
        return SandboxResult(
            Outcome.TIMEOUT,
            f"the job ran past its wall-clock limit of {limits.wall_seconds:g} s and was killed. "
            "Lower the training budget, or raise the limit; a reward program with an endless loop also ends here.",
            payload=data,
            isolation=isolation,
            stderr_tail=stderr,
        )
    if data.get("outcome") in OUTCOMES:
        return SandboxResult(
            Outcome(data.pop("outcome")), data.pop("error", None), payload=data, isolation=isolation, stderr_tail=stderr
        )
    if returncode < 0:
        sig = signal.Signals(-returncode)
        if sig in (signal.SIGKILL, signal.SIGXFSZ, signal.SIGXCPU, signal.SIGSEGV, signal.SIGBUS):
            return SandboxResult(
                Outcome.RESOURCE_LIMIT,
                f"the sandboxed process was ended by {sig.name}, most likely on reaching a resource limit "
                f"(memory {limits.memory_mb} MiB, file size {limits.max_file_mb} MiB). "
                "Reduce the program's array sizes or the number of parallel envs.",
                payload=data,
                isolation=isolation,
                stderr_tail=stderr,
            )
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    if "MemoryError" in stderr or "std::bad_alloc" in stderr:
        return SandboxResult(
            Outcome.RESOURCE_LIMIT,
            f"the sandboxed process ran out of memory ({limits.memory_mb} MiB): {last}",
            payload=data,
            isolation=isolation,
            stderr_tail=stderr,
        )
    return SandboxResult(
        Outcome.FAILED,
        f"the sandboxed process exited with code {returncode} without a result: {last}",
        payload=data,
        isolation=isolation,
        stderr_tail=stderr,
    )
