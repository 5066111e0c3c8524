"""Imports point one way, down: app/ → workers/ → envs/ (DESIGN.md, "Layout"; inside workers/, sandbox/ and engine/ use program/).

workers/ is what a worker runs (the training engine and the sandbox): it must be usable
without the service, so it imports nothing from app/; envs/ is the leaf of both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"workers": {"app"}, "envs": {"app", "workers"}, "prompts": {"app", "workers"}}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import in ``path``, including imports inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(a.name.split(".")[0], node.lineno) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for top, line in sorted(imported_packages(path))
        if top in FORBIDDEN[package]
    ]
    assert not wrong, f"{package}/ must not import {sorted(FORBIDDEN[package])}: " + "; ".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from app.config import get_settings\n    import workers.sandbox\n")
    assert imported_packages(module) == {("app", 2), ("workers", 3)}
