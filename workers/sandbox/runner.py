"""The trusted side of the sandbox: runs one job in an isolated child process and classifies the outcome.

The child gets a scrubbed environment, a private temporary working directory, rlimits
(address space, processes, file size, no core dumps), its own network namespace where the
kernel allows, a wall-clock limit and a progress watchdog that this process enforces with
SIGKILL on the child's whole process group. Outcomes: ok, rejected, failed, timeout,
resource_limit. Nothing the child sends is trusted: its lines, its result file and its
error text are read with bounds, so a program cannot hang or bloat this process either.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from workers.program.text import MAX_ERROR_TEXT, cap_lines, one_line
from workers.sandbox import forkserver
from workers.sandbox.forkserver import warm_group
from workers.sandbox.jobs import Job, env_of
from workers.sandbox.lifeline import SandboxStopped, dies_with_parent, registered, stopping
from workers.sandbox.workdir import clean_stale_workdirs, new_workdir


class Outcome(StrEnum):
    """How a sandboxed job ended."""

    OK = "ok"
    REJECTED = "rejected"
    """The static check or the dry run refused the program."""
    FAILED = "failed"
    TIMEOUT = "timeout"
    RESOURCE_LIMIT = "resource_limit"


OUTCOMES = tuple(Outcome)

MAX_RESULT_BYTES = 16 * 1024 * 1024
"""Largest result.json read back; a real one is well under a megabyte."""
MAX_LINE_CHARS = 64 * 1024
"""Longest line of the child's output read as one; longer ones are cut (events) or shortened (stderr)."""
STDERR_LINES = 40
"""Lines of the child's stderr kept for the report."""

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

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
    progress_seconds: float | None = 120.0
    """Kill the job as a timeout when the child reports no progress for this long (None: only the wall clock).
    A training reports every few seconds; a reward program stuck in a call stops the reports."""
    reward_cost_ratio: float = 10.0
    """The most one reward call may cost, as a multiple of simulating the same batch: checked in the dry run and
    during training."""
    threads: int = 1
    """C threads one training steps its batch of envs on (its learner keeps one torch thread)."""

    def report_seconds(self) -> float:
        """How often the child reports progress: often enough that a healthy training never trips the watchdog."""
        return 5.0 if self.progress_seconds is None else min(5.0, self.progress_seconds / 4)


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
    # Die with the parent: a worker killed with SIGKILL must not leave its training running unattended. The thread
    # that calls run_job waits for the child, so it outlives it.
    die_with_parent = dies_with_parent(signal.SIGKILL)

    def setup() -> None:  # runs in the forked child before exec
        os.setsid()
        die_with_parent()
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


def _new_child_workdir() -> Path:
    workdir = new_workdir()
    for private in (".home", ".tmp"):
        (workdir / private).mkdir()
    return workdir


def _sandboxed(workdir: Path, limits: Limits, args: list[str], **io: Any) -> subprocess.Popen:
    """``workers.sandbox.child`` with ``args``, in ``workdir``, under the sandbox's environment and limits; ``io``
    says where its standard streams (and any passed fds) go."""
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "workers.sandbox.child", *args],
        cwd=workdir,
        env=_child_env(workdir),
        stdin=subprocess.DEVNULL,
        preexec_fn=_preexec(limits),
        **io,
    )


def _start_child(workdir: Path, limits: Limits) -> subprocess.Popen:
    """The sandboxed child that runs the job.json in ``workdir``."""
    return _sandboxed(
        workdir, limits, ["job.json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    )


def _start_server(limits: Limits, group: str) -> forkserver.Server:
    """A fork server for jobs of ``group`` under ``limits``: a sandboxed child like any other, in its own work dir,
    that imports and then forks one process per job it is sent on its socket (``workers.sandbox.zygote``)."""
    workdir = _new_child_workdir()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    fd = theirs.fileno()
    try:
        proc = _sandboxed(
            workdir,
            limits,
            ["--serve", group, str(fd)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
        )
    except BaseException:
        ours.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        theirs.close()
    return forkserver.Server(proc, ours, workdir)


def _server_key(limits: Limits, group: str) -> tuple:
    """What a fork server must share with a job to run it: whatever is fixed when its process starts (the limits
    set before exec, its environment, where its work dir is); the rest travels in job.json or is the parent's to
    enforce."""
    passed = tuple((k, os.environ.get(k)) for k in _PASS_THROUGH)
    fixed = (limits.memory_mb, limits.max_processes, limits.max_file_mb, limits.network)
    return (*fixed, passed, tempfile.gettempdir(), sys.executable, group)


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


def _bounded_lines(stream: IO[str]) -> Iterator[str]:
    """The lines of ``stream``, each at most ``MAX_LINE_CHARS`` (a longer line yields its start, then is skipped)."""
    skipping = False
    while True:
        line = stream.readline(MAX_LINE_CHARS)
        if not line:
            return
        complete = line.endswith("\n")
        if not skipping:
            yield line if complete else line + "…\n"
        skipping = not complete


class _Watchdog:
    """Kills the child when it runs past its wall clock, reports no progress for ``progress_seconds``, or when its
    worker shuts down."""

    def __init__(self, proc: subprocess.Popen | forkserver.Forked, limits: Limits) -> None:
        self.proc = proc
        self.limits = limits
        self.started = self.last = time.monotonic()
        self.last_event: dict = {}
        self.reason: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def progress(self, event: dict) -> None:
        self.last = time.monotonic()
        self.last_event = event

    def kill(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        lim = self.limits
        while not self._done.wait(0.2):
            now = time.monotonic()
            if now - self.started >= lim.wall_seconds:
                self.kill("wall")
            elif lim.progress_seconds is not None and now - self.last >= lim.progress_seconds:
                self.kill("progress")
            elif stopping():  # the worker shuts down (lifeline.stop_all, perhaps in the process this was forked from)
                self.kill("stopped")
            else:
                continue
            return

    def explain(self) -> str:
        lim = self.limits
        if self.reason == "wall":
            return (
                f"the job ran past its wall-clock limit of {lim.wall_seconds:g} s and was killed. "
                "Lower the training budget, or raise the limit; a reward program with an endless loop also ends here."
            )
        event, when = self.last_event, self.last - self.started
        if "timesteps" in event and "total" in event:
            last = f"at training step {_number(event['timesteps'])} of {_number(event['total'])}, {when:.0f} s in"
        elif event.get("event") == "start":
            last = f"when training started, {when:.0f} s in"
        else:
            last = "never: it did not get as far as training"
        return (
            f"the job reported no training progress for {lim.progress_seconds:g} s and was killed (its last report "
            f"came {last}). A reward program that hangs (an endless loop, or one call that takes minutes) ends "
            "here; REWARDSMITH_SANDBOX_PROGRESS_SECONDS sets how long to wait."
        )


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else one_line(str(value)[:20])


KILL_RETRIES = 2
"""Times a job whose process was killed from outside (a SIGKILL that no limit of ours sent: an operator, or the
kernel's out-of-memory killer) is run again before the kill is reported as the program's resource limit."""


def run_job(
    job: Job,
    limits: Limits,
    *,
    on_event: Callable[[dict], None] | None = None,
    artifacts_to: Path | None = None,
) -> SandboxResult:
    """Run ``job`` (see ``workers.sandbox.child``) in a fresh sandboxed process.

    Events the child prints (progress) go to ``on_event``. Files the child leaves in its
    working directory are moved to ``artifacts_to`` when given; the directory is removed.
    A child killed from outside is run again (``KILL_RETRIES``), from the start. When this
    process shuts down (``lifeline.stop_all``) the job is stopped and ``SandboxStopped`` raised.
    """
    import envs  # the registry imports MuJoCo: not for a process that only reads the limits (the CLI's `users`)

    sent: dict[str, Any] = dict(job)
    robot = envs.user_env_payload(env_of(job))
    if robot is not None:  # the child rebuilds the user robot the job names from its files
        sent["robot"] = robot
    clean_stale_workdirs()
    for attempt in range(KILL_RETRIES + 1):
        result, killed_from_outside = _run_once(sent, limits, on_event, artifacts_to, last=attempt == KILL_RETRIES)
        if not killed_from_outside:
            break
    if killed_from_outside:
        result.error = f"{result.error} (the job was run {attempt + 1} times; it was killed each time)"
    return result


def _run_once(
    job: dict[str, Any],
    limits: Limits,
    on_event: Callable[[dict], None] | None,
    artifacts_to: Path | None,
    *,
    last: bool,
) -> tuple[SandboxResult, bool]:
    """One sandboxed process for ``job``: its result, and whether it was killed from outside (then, unless it is the
    ``last`` try, nothing of it is kept)."""
    if stopping():
        raise SandboxStopped()
    settings = {
        "report_seconds": limits.report_seconds(),
        "reward_cost_ratio": limits.reward_cost_ratio,
        "threads": limits.threads,
    }
    job_text = json.dumps({**job, "parent_netns": _netns_inode(), "limits": settings}, allow_nan=False)
    group = warm_group(str(job.get("type")))
    workdir = _new_child_workdir()
    (workdir / "job.json").write_text(job_text)
    started = time.monotonic()
    proc: subprocess.Popen | forkserver.Forked
    forked = forkserver.fork(_server_key(limits, group), workdir, lambda: _start_server(limits, group))
    proc = forked if forked is not None else _start_child(workdir, limits)
    watchdog = _Watchdog(proc, limits)
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None  # both are pipes
    stderr_lines: deque[str] = deque(maxlen=STDERR_LINES)
    drain = threading.Thread(
        target=lambda: stderr_lines.extend(line[:2000] for line in _bounded_lines(stderr)), daemon=True
    )
    drain.start()
    try:
        with registered(proc.pid, lambda: watchdog.kill("stopped")):
            for line in _bounded_lines(stdout):
                if not line.startswith("{"):
                    continue
                try:
                    event = strict_json_loads(line)
                except (ValueError, RecursionError):
                    continue
                if not isinstance(event, dict):
                    continue
                watchdog.progress(event)
                if on_event is not None:
                    on_event(event)  # may raise to stop the job (e.g. the run was cancelled)
            proc.wait()
    except BaseException:
        watchdog.kill("stopped")
        proc.wait()
        _keep_resume(workdir, artifacts_to)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        watchdog.stop()
        if proc.poll() is None:
            watchdog.kill("stopped")
            proc.wait()
        drain.join(timeout=5)
    returncode = proc.wait()
    # Stopped, by its watchdog or from outside: a warm child dies with its fork server, which may go first while
    # this process shuts down. Either way the job goes back to the queue with its checkpoint, unjudged.
    if stopping() and (watchdog.reason == "stopped" or returncode < 0):
        _keep_resume(workdir, artifacts_to)
        shutil.rmtree(workdir, ignore_errors=True)
        raise SandboxStopped()
    seconds = time.monotonic() - started
    killed = watchdog.explain() if watchdog.reason in ("wall", "progress") else None
    result = _classify(returncode, killed, workdir, limits, "".join(stderr_lines))
    result.seconds = seconds
    from_outside = returncode == -signal.SIGKILL and watchdog.reason is None and result.outcome != Outcome.OK
    if from_outside and not last:
        shutil.rmtree(workdir, ignore_errors=True)
        return result, True
    if artifacts_to is not None:
        artifacts_to.mkdir(parents=True, exist_ok=True)
        for item in workdir.iterdir():
            if item.name not in {"job.json", "result.json"} and not item.name.startswith("."):
                shutil.move(str(item), artifacts_to / item.name)
    shutil.rmtree(workdir, ignore_errors=True)
    return result, from_outside


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def strict_json_loads(text: str | bytes) -> object:
    """``json.loads`` that refuses NaN and Infinity, as the JSON standard does: what the child writes is strict."""
    return json.loads(text, parse_constant=_no_constant)


def _read_result(workdir: Path) -> tuple[dict, str | None]:
    """The child's result.json as a dict, and why it could not be used (None when it could, or is absent)."""
    try:
        fd = os.open(workdir / "result.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return {}, None
    except OSError as e:
        return {}, f"its result file cannot be opened ({e.strerror})"
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return {}, "its result file is not a regular file"
        if info.st_size > MAX_RESULT_BYTES:
            return (
                {},
                f"its result file is {info.st_size / 2**20:,.0f} MiB, over the {MAX_RESULT_BYTES // 2**20} MiB limit",
            )
        raw = f.read(MAX_RESULT_BYTES + 1)
    try:
        data = strict_json_loads(raw)
    except (ValueError, RecursionError):
        return {}, "its result file is not valid JSON (NaN and Infinity are not JSON)"
    if not isinstance(data, dict):
        return {}, "its result file does not hold an object"
    return data, None


def _classify(returncode: int, killed: str | None, workdir: Path, limits: Limits, stderr: str) -> SandboxResult:
    data, unreadable = _read_result(workdir)
    isolation = data.pop("isolation", {})
    if not isinstance(isolation, dict):
        isolation = {}
    error = data.get("error")
    # The child put every program-controlled piece on one line where it was made; the lines left are the engine's.
    data["error"] = cap_lines(error, MAX_ERROR_TEXT) if isinstance(error, str) else None
    if killed:
        return SandboxResult(Outcome.TIMEOUT, killed, payload=data, isolation=isolation, stderr_tail=stderr)
    if unreadable:
        return SandboxResult(
            Outcome.FAILED,
            f"the sandboxed process ended (exit code {returncode}) but {unreadable}; nothing of it was used.",
            isolation={},
            stderr_tail=stderr,
        )
    if data.get("outcome") in OUTCOMES:
        return SandboxResult(
            Outcome(data.pop("outcome")), data.pop("error", None), payload=data, isolation=isolation, stderr_tail=stderr
        )
    if returncode < 0:
        sig = signal.Signals(-returncode)
        if sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT):
            return SandboxResult(
                Outcome.FAILED,
                f"the program crashed the sandboxed process ({sig.name}: {_CRASHES[sig]}); no resource limit was "
                "reached. Crashes like this come from a numpy call on extreme arguments or very deep recursion; "
                "simplify the program around the last line it ran (see the log).",
                payload=data,
                isolation=isolation,
                stderr_tail=stderr,
            )
        if sig in (signal.SIGKILL, signal.SIGXFSZ, signal.SIGXCPU):
            return SandboxResult(
                Outcome.RESOURCE_LIMIT,
                f"the sandboxed process was ended by {sig.name}, most likely on reaching a resource limit "
                f"(memory {limits.memory_mb} MiB, file size {limits.max_file_mb} MiB). "
                "Reduce the program's array sizes or the number of parallel envs.",
                payload=data,
                isolation=isolation,
                stderr_tail=stderr,
            )
    last = one_line(stderr.strip().splitlines()[-1][:300]) if stderr.strip() else "no output"
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


_CRASHES = {
    signal.SIGSEGV: "a segmentation fault, an invalid memory access",
    signal.SIGBUS: "a bus error, an invalid memory access",
    signal.SIGILL: "an illegal instruction",
    signal.SIGFPE: "a floating-point exception",
    signal.SIGABRT: "aborted",
}


RESUME_DIR = "resume"
"""The directory a training keeps its latest checkpoint in (``workers.engine.model.snapshot``)."""


def _keep_resume(workdir: Path, artifacts_to: Path | None) -> None:
    """A job stopped half-way: keep its checkpoint (``resume/``, written whole or not at all) in ``artifacts_to``, so
    that the job handed back can continue from it. Only a plain directory of plain files is kept; nothing is read."""
    src = workdir / RESUME_DIR
    if artifacts_to is None or src.is_symlink() or not src.is_dir():
        return
    if any(item.is_symlink() or not item.is_file() for item in src.iterdir()):
        return
    artifacts_to.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(artifacts_to / RESUME_DIR, ignore_errors=True)
    shutil.move(str(src), artifacts_to / RESUME_DIR)
