"""The embedded store: a directory (``<data dir>/artifacts``), a key its relative path.

A key names exactly one regular file, reached without a symlink: a link a program left behind, or one planted
under the root, is never followed, so nothing outside the training's own folder can be served or read through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.artifacts.base import CHUNK, StoredFile, StoreUnavailable
from app.artifacts.keys import check_key, is_key


class LocalStore:
    """Files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_file(self, key: str) -> Path | None:
        """The file under ``key``, when it is a regular file with no symlink on the way from the root."""
        return self._file(key)

    def _file(self, key: str) -> Path | None:
        path = self._path(key)
        try:
            real = path.resolve(strict=True)
            root = self.root.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
            return None
        if real != root / key or not stat.S_ISREG(real.lstat().st_mode):
            return None
        return real

    def put_file(self, key: str, path: Path, *, sha256: str | None = None, move: bool = False) -> None:
        dest = self._path(key)
        try:
            self._put(dest, path, move)
        except OSError as e:
            raise StoreUnavailable(
                f"the artifacts directory {self.location} could not take {key}: {e.strerror or e}. Check its disk "
                "space and permissions"
            ) from e

    def _put(self, dest: Path, path: Path, move: bool) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.replace(path, dest)
                return
            except OSError as e:
                if e.errno != errno.EXDEV:  # another filesystem: copy instead
                    raise
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get_file(self, key: str, path: Path) -> None:
        source = self._file(key)
        if source is None:
            raise FileNotFoundError(f"no artifact {key} in {self.location}")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)

    def stat(self, key: str) -> StoredFile | None:
        found = self._file(key)
        return StoredFile(found.stat().st_size) if found is not None else None

    def list(self, prefix: str) -> dict[str, int]:
        top = self._path(prefix) if prefix else self.root
        if prefix and self._file_or_dir(prefix) is None:
            return {}
        found: dict[str, int] = {}
        for folder, dirs, names in os.walk(top, followlinks=False):
            dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
            for name in names:
                info = (Path(folder) / name).lstat()
                rel = (Path(folder) / name).relative_to(top).as_posix()
                if stat.S_ISREG(info.st_mode) and is_key(rel) and not name.startswith("."):
                    found[rel] = info.st_size
        return found

    def _file_or_dir(self, prefix: str) -> Path | None:
        """``prefix``'s directory, when no symlink leads to it."""
        try:
            real = self._path(prefix).resolve(strict=True)
            root = self.root.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return real if real == root / prefix else None

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        found = self._file(key)
        if found is None:
            raise FileNotFoundError(f"no artifact {key} in {self.location}")
        f = found.open("rb")  # opened now, so that a missing file fails before a response starts
        return _chunks(f, start, end)

    def delete(self, key: str) -> None:
        found = self._file(key)
        if found is None:
            return
        try:
            found.unlink()
        except FileNotFoundError:
            return
        except OSError as e:
            raise StoreUnavailable(
                f"the artifacts directory {self.location} could not remove {key}: {e.strerror or e}"
            ) from e
        root = self.root.resolve()
        for folder in found.parents:  # the folders the key made, as far up as they are empty
            if folder == root or root not in folder.parents:
                break
            try:
                folder.rmdir()
            except OSError:
                break

    def ensure(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreUnavailable(f"the artifacts directory {self.location} cannot be made: {e.strerror or e}") from e
        if not os.access(self.root, os.W_OK):
            raise StoreUnavailable(f"the artifacts directory {self.location} is not writable by this process")

    def check(self) -> str:
        try:
            self.ensure()
        except StoreUnavailable as e:
            return f"unusable: {e.message}"
        return "ok"


def _chunks(f: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    with f:
        f.seek(start)
        left = end - start
        while left > 0:
            block = f.read(min(CHUNK, left))
            if not block:
                return
            left -= len(block)
            yield block
