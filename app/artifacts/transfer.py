"""Moving a training's files between a worker's disk and the store: what the trusted worker process does before a
training starts (``fetch``) and after its sandbox ended (``upload``). The sandbox itself never talks to the store."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from app.artifacts.base import ArtifactStore
from app.artifacts.keys import is_key, join

log = logging.getLogger(__name__)

MAX_FILES = 1000
"""Files one training may store; a training leaves about ten (TensorBoard adds one per run)."""


def fetch(store: ArtifactStore, key: str, into: Path, *, names: Iterable[str] | None = None) -> Path:
    """Download what is stored under ``key`` (a training's prefix, ``Training.artifacts_key``) into the local
    directory ``into``, made afresh, keeping relative names; with ``names``, only those files (the ones that are
    missing are skipped). Returns ``into``.

    Raises ``StoreUnavailable`` when the store cannot be reached: the caller hands its job back to be retried."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    wanted = list(names) if names is not None else list(store.list(key))
    for name in wanted:
        try:
            store.get_file(join(key, name), into / name)
        except FileNotFoundError:
            if names is None:  # listed a moment ago: it was removed meanwhile
                raise
    return into


def upload(store: ArtifactStore, key: str, directory: Path) -> dict[str, int]:
    """Store every regular file below ``directory`` (written by a sandbox: hostile) under ``key``; returns what was
    stored, by relative name, with its size. A symlink or anything else that is not a regular file is skipped, and
    so is a name a key cannot hold, so nothing outside ``directory`` is ever read. The files are given up (a local
    store moves them)."""
    files = _regular_files(directory)
    stored: dict[str, int] = {}
    for rel, path, size in files:
        store.put_file(join(key, rel), path, move=True)
        stored[rel] = size
    return stored


def prune(store: ArtifactStore, prefix: str, keep: str | None = None) -> int:
    """Remove every file below ``prefix`` but those below ``prefix/keep`` (all of them without ``keep``); returns how
    many went. Raises ``StoreUnavailable`` when the store cannot be reached."""
    gone = 0
    for name in store.list(prefix):
        if keep is None or not name.startswith(f"{keep}/"):
            store.delete(join(prefix, name))
            gone += 1
    return gone


def _regular_files(directory: Path) -> list[tuple[str, Path, int]]:
    """(relative name, path, size) of each regular file below ``directory``, symlinks not followed, at most
    ``MAX_FILES``."""
    if not directory.is_dir() or directory.is_symlink():
        return []
    found: list[tuple[str, Path, int]] = []
    for folder, dirs, names in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not (Path(folder) / d).is_symlink())
        for name in sorted(names):
            path = Path(folder) / name
            rel = path.relative_to(directory).as_posix()
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or not is_key(rel) or name.startswith("."):
                log.warning("not stored: %r is not a regular file with a plain name", rel[:200])
                continue
            if len(found) >= MAX_FILES:
                log.warning(
                    "not stored: more than %s files below %s; the first %s are", MAX_FILES, directory, MAX_FILES
                )
                return found
            found.append((rel, path, info.st_size))
    return found
