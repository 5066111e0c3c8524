"""What every artifact store does, and how it fails.

Two backends implement it: ``LocalStore`` (a directory, the embedded default) and ``S3Store`` (any S3-compatible
bucket). Everything above them (the workers' uploads and downloads, the API's downloads and videos, the copy
command) goes through these few calls, so both backends behave alike where it matters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.errors import RewardsmithError

CHUNK = 256 * 1024
"""Bytes per read when streaming a file."""


class StoreUnavailable(RewardsmithError):
    """The store could not be reached (or refused us): nothing was changed by the call that raised it. The message
    names the store and the cause, never a credential."""

    status_code = 503
    code = "artifacts_unavailable"


@dataclass(frozen=True)
class StoredFile:
    """What the store knows of one file."""

    size: int
    sha256: str | None = None
    """Hex SHA-256 of the content, where the store keeps it (a bucket: as the object's metadata, written on upload)."""


class ArtifactStore(Protocol):
    """Files by key (``app.artifacts.keys``). Reads of a key that holds no file return None (``stat``) or raise
    ``FileNotFoundError`` (``read``, ``get_file``); every other failure is ``StoreUnavailable``."""

    location: str
    """Where the store is, for people (an s3:// URL or a directory); never holds a credential."""

    def put_file(self, key: str, path: Path, *, sha256: str | None = None, move: bool = False) -> None:
        """Store the local file ``path`` under ``key`` (replacing what was there). ``move``: the caller gives the file
        up, so a local store may rename it instead of copying."""
        ...

    def get_file(self, key: str, path: Path) -> None:
        """Write the file stored under ``key`` to the local ``path`` (whole, or not at all)."""
        ...

    def stat(self, key: str) -> StoredFile | None:
        """The file under ``key``, or None when there is none."""
        ...

    def list(self, prefix: str) -> dict[str, int]:
        """Every file below ``prefix`` ('' for all), by its name relative to ``prefix``, with its size."""
        ...

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of the file under ``key``, in chunks."""
        ...

    def delete(self, key: str) -> None:
        """Remove the file under ``key``; nothing when there is none."""
        ...

    def ensure(self) -> None:
        """Return when the store can be used now; ``StoreUnavailable`` saying why otherwise (a worker asks before it
        trains, so that a store that is away costs no training)."""
        ...

    def check(self) -> str:
        """'ok' when the store answers one quick try now, else what is wrong (for /readyz)."""
        ...


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a local file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def read_bytes(store: ArtifactStore, key: str, *, limit: int) -> bytes:
    """The whole file under ``key``; ``FileNotFoundError`` when there is none, ``ValueError`` when it is over
    ``limit`` bytes (so that a huge file is never read into memory)."""
    found = store.stat(key)
    if found is None:
        raise FileNotFoundError(key)
    if found.size > limit:
        raise ValueError(f"{key} is {found.size:,} bytes, over the {limit:,} bytes this reads into memory")
    return b"".join(store.read(key, 0, found.size))
