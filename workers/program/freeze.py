"""Module-level values become constants once a program's module has run: nothing outlives a call.

A program that can keep state between calls can behave one way in the dry run and another
in training (count its calls, remember the first batch, grow a list by 200 MB per call).
Finding every mutation in the source is hopeless (aliases, helpers, numpy's ``out=``), so
the values are made immutable instead, by an allow-list: module state may hold only plain
numbers, strings and bytes (and ``None``, ranges), tuples and frozensets of those, read-only
mappings, and read-only arrays that own their memory. Everything else is deep-copied into
that form (lists become tuples, dicts read-only mappings, sets frozensets, arrays read-only
copies, a slice its frozen parts, a structured numpy scalar, which is a writable view into
its array, a read-only 0-d array) or refused at load, by name: an iterator, a bound method,
an exception, a dtype carrying metadata. The defaults and closures of the program's own
functions are frozen the same way. With attribute assignment and the numpy paths that write
whatever the read-only flag says (``ufunc.at``) refused by the static check, a program has
no place left to keep anything between calls.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from types import FunctionType, MappingProxyType

import numpy as np

PLAIN = (type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis))
"""Values that hold nothing mutable and are kept as they are."""


class Unfreezable(Exception):
    """A module-level value that could carry state from one call to the next."""


_BUSY = object()

Memo = dict[int, tuple[object, object]]
"""id of an original value -> (the original, kept alive so that its id stays its own; its frozen copy)."""


def _freeze(value: object, allowed: frozenset[int], memo: Memo, filename: str) -> object:
    key = id(value)
    if key in memo:
        if memo[key][1] is _BUSY:
            raise Unfreezable("it contains itself")
        return memo[key][1]
    t = type(value)
    if t in PLAIN or key in allowed:
        return value
    if isinstance(value, np.generic) and t is not np.void:  # numbers, not views: a copy of the value
        return _scalar(value)
    memo[key] = (value, _BUSY)  # meeting it again before it is done is a cycle

    def each(items: Iterable[object]) -> list[object]:
        return [_freeze(v, allowed, memo, filename) for v in items]

    if isinstance(value, list | tuple) and t in (list, tuple):
        out: object = tuple(each(value))
    elif isinstance(value, dict) and t is dict:
        out = MappingProxyType(dict(zip(each(value.keys()), each(value.values()), strict=True)))
    elif isinstance(value, set | frozenset) and t in (set, frozenset):
        out = frozenset(each(value))
    elif isinstance(value, slice):  # slice([], None) keeps a list: its parts are frozen like any value
        start, stop, step = each((value.start, value.stop, value.step))
        out = slice(start, stop, step)
    elif isinstance(value, np.ndarray | np.void) and t in (np.ndarray, np.void):
        out = _array(value)  # a structured scalar is a writable view of its array: a read-only 0-d copy
    elif isinstance(value, np.dtype):
        _check_dtype(value)
        out = value
    elif isinstance(value, FunctionType) and value.__code__.co_filename == filename:
        memo[key] = (value, value)  # a recursive function reaches itself through its closure
        _freeze_function(value, allowed, memo, filename)
        out = value
    elif isinstance(value, type) and (issubclass(value, np.generic) or key in allowed):
        out = value
    else:
        raise Unfreezable(f"it is a {t.__name__}, which can keep state from one call to the next")
    memo[key] = (value, out)
    return out


def _check_dtype(dtype: np.dtype) -> None:
    """Refuse a dtype that carries Python objects or metadata (a dict the program chose, shared by every copy)."""
    if dtype.hasobject:
        raise Unfreezable("it is an array of Python objects; use a numeric array")
    if dtype.metadata is not None:
        raise Unfreezable("its dtype carries metadata, which can keep state; use a plain dtype such as np.float64")
    for name in dtype.names or ():
        _check_dtype(dtype.fields[name][0])  # type: ignore[index]
    if dtype.subdtype is not None:
        _check_dtype(dtype.subdtype[0])


def _array(value: np.ndarray | np.void) -> np.ndarray:
    """A read-only copy of ``value`` that owns its memory (no view of anything the program keeps)."""
    _check_dtype(value.dtype)
    out = np.array(value, copy=True)
    if out.base is not None:  # np.array of a structured scalar is a view of it
        out = out.copy()
    out.flags.writeable = False
    return out


def _scalar(value: np.generic) -> np.generic:
    """A numpy number (or string, or date), copied: not a view of any array."""
    _check_dtype(value.dtype)
    return value.dtype.type(value)


def _freeze_function(fn: FunctionType, allowed: frozenset[int], memo: Memo, filename: str) -> None:
    if fn.__defaults__:
        fn.__defaults__ = tuple(_freeze(v, allowed, memo, filename) for v in fn.__defaults__)
    if fn.__kwdefaults__:
        fn.__kwdefaults__ = {k: _freeze(v, allowed, memo, filename) for k, v in fn.__kwdefaults__.items()}
    for cell in fn.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # a name not bound yet
            continue
        cell.cell_contents = _freeze(contents, allowed, memo, filename)


def _line_of(tree: ast.Module, name: str) -> int:
    """The line of the module-level statement that binds ``name`` (0 when none does)."""
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                return stmt.lineno
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == name:
            return stmt.lineno
    return 0


def freeze_namespace(namespace: dict[str, object], tree: ast.Module, allowed: Iterable[object], filename: str) -> None:
    """Replace every module-level value of ``namespace`` with a frozen one.

    ``allowed`` are objects kept as they are (the numpy and math facades and their members,
    the builtins). Raises ``Unfreezable`` with ``args == (name, line, reason)``.
    """
    keep = frozenset(id(a) for a in allowed)
    memo: Memo = {}
    for name in [n for n in namespace if not n.startswith("__")]:
        try:
            namespace[name] = _freeze(namespace[name], keep, memo, filename)
        except Unfreezable as e:
            raise Unfreezable(name, _line_of(tree, name), str(e)) from None
        except RecursionError:
            raise Unfreezable(name, _line_of(tree, name), "it is nested too deeply") from None
