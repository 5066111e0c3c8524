"""Copying a data dir's artifacts into a bucket, for an installation that moves from one host to many.

Keys stay what they are (a file at ``<data dir>/artifacts/<key>`` goes to ``<bucket prefix>/<key>``), so the database
needs no change: set REWARDSMITH_ARTIFACTS_URL afterwards and every recorded training finds its files. Idempotent: a
file already in the bucket with the same size and SHA-256 is skipped, so a copy cut short is run again. Every file is
checked after it is written (size and SHA-256 as the bucket reports them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.artifacts.base import ArtifactStore, sha256_of
from app.artifacts.local import LocalStore
from app.errors import RewardsmithError


class CopyMismatch(RewardsmithError):
    """A file in the bucket is not what was copied."""

    code = "artifacts_copy_mismatch"


@dataclass
class CopyReport:
    copied: int = 0
    skipped: int = 0
    """Already there, with the same size and SHA-256."""
    bytes_copied: int = 0
    unreadable: int = 0
    """Listed but gone (or turned into a link) before it was read."""


def copy_store(
    source: LocalStore, dest: ArtifactStore, *, on_file: Callable[[str, str], None] | None = None
) -> CopyReport:
    """Copy every regular file of ``source`` into ``dest`` under the same key; ``on_file(key, what)`` hears of each
    ('copied', 'skipped', 'unreadable'). Raises ``CopyMismatch`` when the bucket does not hold what was written,
    ``StoreUnavailable`` when it cannot be reached (run it again: what was copied is skipped)."""
    report = CopyReport()
    for key, size in sorted(source.list("").items()):
        path = source.local_file(key)
        if path is None:
            report.unreadable += 1
            _tell(on_file, key, "unreadable")
            continue
        digest = sha256_of(path)
        there = dest.stat(key)
        if there is not None and there.size == size and there.sha256 == digest:
            report.skipped += 1
            _tell(on_file, key, "skipped")
            continue
        dest.put_file(key, path, sha256=digest)
        after = dest.stat(key)
        if after is None or after.size != size or (after.sha256 is not None and after.sha256 != digest):
            raise CopyMismatch(
                f"{key} in {dest.location} is not what was copied ({size:,} bytes, SHA-256 {digest[:12]}…; the store "
                f"reports {after}). Run the copy again; if it persists, check the bucket's settings (encryption, "
                "object lock, a proxy that rewrites content)"
            )
        report.copied += 1
        report.bytes_copied += size
        _tell(on_file, key, "copied")
    return report


def _tell(on_file: Callable[[str, str], None] | None, key: str, what: str) -> None:
    if on_file is not None:
        on_file(key, what)
