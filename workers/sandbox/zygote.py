"""The fork server's own side (``workers.sandbox.forkserver``): a sandboxed process that imports, then only forks.

Started by the runner as ``child --serve GROUP FD``, under a job's isolation, with FD one end of a SOCK_SEQPACKET
socket pair. Trusted code only runs here: it never reads a job. For each ``fork TOKEN WORKDIR`` message (with two
pipes attached) it forks; the fork makes its own session, dies with this process, takes the pipes as stdout and
stderr, moves into WORKDIR and runs the job.json there (``child.run``, passed in). This process answers
``started TOKEN PID`` (PID ``-`` when the fork failed), and ``exit PID RETURNCODE CPU`` when it reaps a fork. When
the runner closes its end, no more forks are made and this process ends once the running ones have.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from workers.sandbox.lifeline import dies_with_parent


def serve(group: str, fd: int, warm: Callable[[str], None], run: Callable[[Path], None]) -> None:
    """``warm(group)`` (imports), then fork one process per job the runner sends on socket ``fd``; each fork calls
    ``run`` on its job.json (``workers.sandbox.child`` passes both: this module does not import it)."""
    warm(group)
    sock = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    running: set[int] = set()
    accepting, me = True, os.getpid()
    while accepting or running:
        readable, _, _ = select.select([sock.fileno(), wake_r] if accepting else [wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
        _reap(sock, running)
        if sock.fileno() not in readable:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(sock, 4096, 2)
        except OSError:
            message, fds = b"", []
        if not message:  # the runner takes no more jobs from this server
            accepting = False
            continue
        words = message.decode("utf-8", "replace").split(" ", 2)
        if len(words) != 3 or words[0] != "fork" or len(fds) != 2:
            for extra in fds:
                os.close(extra)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:
            sock.close()
            _become_job(Path(words[2]), fds, me, [wake_r, wake_w], run)
        for passed in fds:
            os.close(passed)
        if pid > 0:
            running.add(pid)
        _send(sock, f"started {words[1]} {pid if pid > 0 else '-'}")


def _reap(sock: socket.socket, running: set[int]) -> None:
    while running:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            running.clear()
            return
        if pid == 0:
            return
        running.discard(pid)
        cpu = usage.ru_utime + usage.ru_stime
        _send(sock, f"exit {pid} {os.waitstatus_to_exitcode(status)} {cpu:.3f}")


def _send(sock: socket.socket, message: str) -> None:
    try:
        sock.send(message.encode())
    except OSError:  # the runner is gone: so are this process and its forks, by their parent-death signals
        os._exit(0)


def _become_job(
    workdir: Path, pipes: list[int], server: int, inherited: list[int], run: Callable[[Path], None]
) -> None:
    """In the fork: become the job's process in ``workdir``, as a child the runner started itself would be."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        os.setsid()  # its own process group, which the runner's watchdog kills whole
        dies_with_parent(signal.SIGKILL, parent=server)()
        os.dup2(pipes[0], 1)
        os.dup2(pipes[1], 2)
        for fd in pipes:
            os.close(fd)
        os.chdir(workdir)
        os.environ.update(HOME=str(workdir / ".home"), TMPDIR=str(workdir / ".tmp"))
        tempfile.tempdir = None
        run(Path("job.json"))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
