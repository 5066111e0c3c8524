"""Parses and compiles of trees are serialised (``workers.program.syntax``): CPython 3.11 fails two at once."""

from __future__ import annotations

import ast
import gc
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.program import syntax

ROOT = Path(__file__).resolve().parents[3]
SOURCE = "def f(x):\n" + "".join(f"    y{i} = [(x + {i}) * 2 for _ in range(3)]\n" for i in range(300))


@pytest.fixture
def switchy() -> Iterator[None]:
    """Threads switch as often as they can, in the middle of a conversion too: a GC callback runs Python code."""

    def busy(phase: str, info: dict) -> None:
        sum(range(200))

    interval, threshold = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50, 1, 1)
    gc.callbacks.append(busy)
    try:
        yield
    finally:
        gc.callbacks.remove(busy)
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)


def test_threads_parse_and_compile_at_once(switchy: None) -> None:
    errors: list[str] = []

    def work() -> None:
        for _ in range(20):
            try:
                syntax.compile_tree(syntax.parse_module(SOURCE), "<reward>")
                syntax.parse_expression("(" * 40 + "1" + ")" * 40)
            except SystemError as e:  # "AST constructor recursion depth mismatch" without the lock
                errors.append(str(e))
                return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_every_parse_goes_through_the_lock() -> None:
    """No module of the product parses or compiles a tree on its own (tests may: they run one thread)."""
    found = []
    for path in sorted(p for d in ("app", "workers", "envs", "prompts") for p in (ROOT / d).rglob("*.py")):
        if path == ROOT / "workers/program/syntax.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and f.attr == "parse"
                and isinstance(f.value, ast.Name)
                and f.value.id == "ast"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} ast.parse")
            if isinstance(f, ast.Name) and f.id == "compile" and not isinstance(node.args[0], ast.Constant):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} compile")
    assert found == [], "use workers.program.syntax instead"
