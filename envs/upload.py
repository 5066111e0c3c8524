"""The files of a user robot as uploaded: names and sizes checked before anything reads them.

Safe on the trusted side: nothing here parses a file. What a file says (its XML, the
files it refers to) is checked by ``envs.mjcf`` inside a sandboxed child.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from types import MappingProxyType

MAX_FILES = 64
MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest single file (a mesh); a 50 MB mesh is refused."""
MAX_XML_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 48 * 1024 * 1024
MAX_PATH = 200
FILE_TYPES = {".xml": "MJCF", ".stl": "mesh", ".obj": "mesh", ".msh": "mesh", ".png": "texture or height field"}
"""The kinds of file a robot may bring (others are refused)."""

_PART = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"
_PATH = re.compile(rf"^{_PART}(/{_PART}){{0,3}}$")
"""Relative, at most four levels, no '..', no leading dot, no backslash, colon or space."""


class RobotRefused(ValueError):
    """A robot that cannot be accepted; the message says which file or property, and what to do.

    Never echoes the content of a file outside the upload (nothing outside it is ever opened).
    """


def shown(name: str) -> str:
    """A file name or path as quoted in a message: printable and at most 80 characters."""
    text = "".join(c if c.isprintable() else "?" for c in name[:80])
    return text + ("..." if len(name) > 80 else "")


def clean_path(path: str) -> bool:
    """Whether ``path`` is a relative path inside the upload (no absolute path, no '..', no odd characters)."""
    return len(path) <= MAX_PATH and bool(_PATH.match(path)) and ".." not in PurePosixPath(path).parts


def check_files(files: Mapping[str, bytes], root_file: str | None = None) -> tuple[Mapping[str, bytes], str]:
    """The upload as a read-only mapping, and its main MJCF; refuses bad names, types, sizes and counts.

    ``root_file``: the main MJCF (None: the one .xml file at the top level).
    """
    if not isinstance(files, Mapping) or not files:
        raise RobotRefused("the upload holds no files; send the robot's MJCF (and its meshes and textures)")
    if len(files) > MAX_FILES:
        raise RobotRefused(f"the upload holds {len(files)} files; at most {MAX_FILES} are accepted")
    total = 0
    for name, content in files.items():
        if not isinstance(name, str) or not clean_path(name):
            raise RobotRefused(
                f"the file name '{shown(str(name))}' is not accepted: give relative paths inside the upload "
                "(letters, digits, '_', '-', '.', '/'; no absolute path, no '..', at most four levels)"
            )
        if not isinstance(content, bytes):
            raise RobotRefused(f"the file '{shown(name)}' must be given as bytes")
        kind = PurePosixPath(name).suffix.lower()
        if kind not in FILE_TYPES:
            allowed = ", ".join(f"{k} ({v})" for k, v in FILE_TYPES.items())
            raise RobotRefused(f"the file '{shown(name)}' is of a type robots cannot bring; allowed: {allowed}")
        limit = MAX_XML_BYTES if kind == ".xml" else MAX_FILE_BYTES
        if len(content) > limit:
            raise RobotRefused(
                f"the file '{shown(name)}' is {len(content) / 2**20:,.1f} MiB, over the limit of {limit // 2**20} MiB "
                f"for a {FILE_TYPES[kind]} file; simplify it (decimate a mesh, shrink a texture)"
            )
        total += len(content)
    if total > MAX_TOTAL_BYTES:
        raise RobotRefused(f"the upload is {total / 2**20:,.1f} MiB, over the limit of {MAX_TOTAL_BYTES // 2**20} MiB")
    if root_file is None:
        top = [n for n in files if "/" not in n and n.lower().endswith(".xml")]
        if len(top) != 1:
            raise RobotRefused(
                f"the upload has {len(top)} MJCF files at its top level; say which one is the robot (root_file)"
            )
        root_file = top[0]
    if root_file not in files or not root_file.lower().endswith(".xml"):
        raise RobotRefused(f"the main MJCF '{shown(str(root_file))}' is not an .xml file of the upload")
    return MappingProxyType(dict(files)), root_file
