"""Copies of rewardsmith's own modules for a bundle that runs without rewardsmith.

An export ships the code it needs (the state view, the reward contract's static check) as copies
of the module files, not as a second implementation: whatever those modules say today is what the
bundle does. ``copy_modules`` follows a module's imports of its own package, transitively, and
rewrites them into relative imports of the bundle's package.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from workers.program.syntax import parse_module


class CannotCopy(ValueError):
    """A module that cannot be shipped as a copy (an import form the copy cannot rewrite)."""


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise CannotCopy(f"module {module} has no Python source to copy")
    return Path(spec.origin).read_text()


def _rewrite(module: str, source: str, package: str) -> tuple[str, set[str]]:
    """``source`` with each ``from <package>.x import y`` made ``from .x import y``; the package modules it imports."""
    lines = source.splitlines(keepends=True)
    needed: set[str] = set()
    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(parse_module(source, module)):
        if isinstance(node, ast.Import) and any(
            a.name == package or a.name.startswith(package + ".") for a in node.names
        ):
            raise CannotCopy(f"{module} line {node.lineno}: 'import {package}...' cannot be copied; use 'from'")
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if node.module == package:
            needed |= {f"{package}.{a.name}" for a in node.names}  # submodules; names of __init__ are refused below
            relative = ast.ImportFrom(module=None, names=node.names, level=1)
        elif node.module.startswith(package + "."):
            needed.add(node.module)
            relative = ast.ImportFrom(module=node.module[len(package) + 1 :], names=node.names, level=1)
        else:
            continue
        edits.append((node.lineno, node.end_lineno or node.lineno, ast.unparse(relative)))
    for start, end, text in sorted(edits, reverse=True):
        indent = lines[start - 1][: len(lines[start - 1]) - len(lines[start - 1].lstrip())]
        lines[start - 1 : end] = [indent + text + "\n"]
    return "".join(lines), needed


def copy_modules(modules: list[str], package: str, into: str) -> dict[str, str]:
    """``{path in the bundle: source}`` of ``modules`` (all in ``package``, e.g. "envs") and of every module of
    ``package`` they import, as the package ``into`` (with an empty ``__init__.py``)."""
    files: dict[str, str] = {f"{into}/__init__.py": f'"""Copied from rewardsmith\'s {package} package."""\n'}
    todo, done = list(modules), set()
    while todo:
        module = todo.pop()
        if module in done:
            continue
        done.add(module)
        if not module.startswith(package + "."):
            raise CannotCopy(f"{module} is not a module of {package}")
        if importlib.util.find_spec(module) is None:
            raise CannotCopy(f"{module} is imported as a module of {package} but is none (a name of its __init__?)")
        text, needed = _rewrite(module, _source(module), package)
        files[f"{into}/{module[len(package) + 1 :].replace('.', '/')}.py"] = text
        todo.extend(sorted(needed - done))
    return files
