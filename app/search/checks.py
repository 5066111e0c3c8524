"""Interactive program checks (the dashboard's "check my fitness program"): a dry run in the sandbox on a short
wall clock, with a cap on how many run at once per user and on the machine. Every interactive entry point goes
through ``check_program``, so the cap is in one place."""

from __future__ import annotations

import fcntl
import math
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import envs
from app.config import Settings
from app.errors import InvalidInput, RateLimited
from workers.engine.evaluate import sandbox_check
from workers.sandbox.runner import SandboxResult


@contextmanager
def _slot(directory: Path, name: str, count: int) -> Iterator[bool]:
    """Hold one of ``count`` slots called ``name`` while the block runs (True), or none is free (False).

    A slot is an exclusive ``flock`` on a file under ``directory``: it is shared by every thread and process on the
    machine (several API processes included) and is released by the kernel if its holder dies."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        fd = os.open(directory / f"{name}-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    yield False


def check_program(*, settings: Settings, user_id: int, env: str, source: str, kind: str) -> SandboxResult:
    """Static check and dry run of ``source`` (a ``kind`` = "reward" or "fitness" program) on ``env`` for a user.

    Raises InvalidInput for an unknown env and RateLimited (429) when the user, or the machine, already runs as many
    checks as the settings allow; the dry run is killed after ``settings.check_wall_seconds``."""
    try:
        envs.get_spec(env)
    except envs.UnknownEnvError as e:
        raise InvalidInput(str(e), field="env") from None
    wait = math.ceil(settings.check_wall_seconds)
    root = settings.data_dir / "locks" / "checks"
    with ExitStack() as held:
        if not held.enter_context(_slot(root, f"user-{user_id}", settings.check_slots_per_user)):
            raise RateLimited(
                f"you already have {settings.check_slots_per_user} program checks running (the most at once); "
                f"wait for one to finish (at most {wait} s) and try again",
                retry_after=wait,
            )
        if not held.enter_context(_slot(root, "all", settings.check_slots_total)):
            raise RateLimited(
                f"the server is already running {settings.check_slots_total} program checks (the most at once); "
                f"try again in {wait} s",
                retry_after=wait,
            )
        return sandbox_check(env, source, kind, settings.sandbox_limits(wall_seconds=settings.check_wall_seconds))
