"""Python's parser and compiler, one thread at a time.

CPython 3.11 keeps the AST converter's recursion depth in interpreter-wide state (gh-106905). When two threads convert
at once (the design step vets candidates in a thread pool; a GC callback that runs Python code between two of them
is enough to switch threads mid-conversion), one fails with "SystemError: AST constructor recursion depth mismatch".
Every ``ast.parse`` and every compile of a tree goes through here, under one process-wide lock. They take
microseconds, so nothing waits long.
"""

from __future__ import annotations

import ast
import threading
from types import CodeType
from typing import Literal

# Reentrant: a GC callback on the same thread may parse in the middle of a parse.
_LOCK = threading.RLock()


def _parse(source: str, filename: str, mode: Literal["exec", "eval"]) -> ast.AST:
    """``ast.parse(source, filename, mode)``, serialised with every other parse and compile in this process."""
    with _LOCK:
        return ast.parse(source, filename=filename, mode=mode)


def parse_module(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``: a module's tree."""
    tree = _parse(source, filename, "exec")
    assert isinstance(tree, ast.Module)
    return tree


def parse_expression(source: str, filename: str = "<unknown>") -> ast.expr:
    """``ast.parse(source, filename, mode="eval").body``: ``source`` read as one expression."""
    tree = _parse(source, filename, "eval")
    assert isinstance(tree, ast.Expression)
    return tree.body


def compile_tree(tree: ast.Module, filename: str) -> CodeType:
    """``compile(tree, filename, "exec")``, serialised like the parses: compiling converts the tree back."""
    with _LOCK:
        return compile(tree, filename, "exec")
