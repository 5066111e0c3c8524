"""The only numpy a program sees: a read-only namespace of array functions, and restricted builtins.

No file I/O (``load``, ``save``, ``fromfile``, ``DataSource``), no raw memory (``ctypeslib``,
``frombuffer``, the ``ndarray`` constructor), no randomness, no global settings. The names are
``policy.NUMPY_NAMES``, the one list by which the static check refuses every other ``np.`` name;
anything missing still fails here with a message that says it is not available, rather than a
bare AttributeError. ``math`` is served read-only too, so that one program cannot change
``math.pi`` for another (a reward program must not be able to skew the fitness measurement).
"""

from __future__ import annotations

import builtins
import math
from types import MappingProxyType

import numpy

from workers.program.policy import LINALG_NAMES, NUMPY_NAMES


class Facade:
    """A frozen namespace that names what is missing when a program reaches for it."""

    def __init__(self, name: str, members: dict[str, object], hint: str | None = None) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", MappingProxyType(dict(members)))
        object.__setattr__(self, "_hint", hint or f"use array functions such as {name}.where, {name}.clip, {name}.sum")

    def __getattr__(self, attr: str) -> object:
        members = object.__getattribute__(self, "_members")
        if attr in members:
            return members[attr]
        name = object.__getattribute__(self, "_name")
        hint = object.__getattribute__(self, "_hint")
        raise AttributeError(
            f"{name}.{attr} is not available in reward programs (no file, memory, random or system access); {hint}"
        )

    def __setattr__(self, attr: str, value: object) -> None:
        name = object.__getattribute__(self, "_name")
        raise AttributeError(
            f"cannot set {name}.{attr}: {name} is read-only in reward programs; keep your own values in "
            "module-level constants"
        )

    def __dir__(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_members"))


class _NdarrayType(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, numpy.ndarray)

    def __setattr__(cls, attr: str, value: object) -> None:  # one class for every program in the process
        raise AttributeError(f"cannot set np.ndarray.{attr}: np is read-only in reward programs")


class ndarray(metaclass=_NdarrayType):
    """``isinstance(x, np.ndarray)`` works; constructing arrays from raw buffers does not.

    ``numpy.ndarray(shape, dtype, buffer, offset)`` accepts a negative offset and then reads
    and writes memory outside the buffer, so programs never get the real constructor.
    """

    def __new__(cls, *args: object, **kwargs: object) -> ndarray:
        raise TypeError("np.ndarray(...) cannot create arrays in reward programs; use np.zeros, np.full or np.array")


def _build_numpy() -> Facade:
    members = {n: getattr(numpy, n) for n in NUMPY_NAMES}
    members["ndarray"] = ndarray
    members["linalg"] = Facade("np.linalg", {n: getattr(numpy.linalg, n) for n in LINALG_NAMES})
    return Facade("np", members)


NUMPY = _build_numpy()
MATH = Facade(
    "math",
    {n: getattr(math, n) for n in dir(math) if not n.startswith("_")},
    hint="see the functions of Python's math module, or use np.",
)
MODULES = {"numpy": NUMPY, "math": MATH}


def _import(
    name: str, globals: object = None, locals: object = None, fromlist: tuple[str, ...] = (), level: int = 0
) -> object:
    if level == 0 and name in MODULES:
        module = MODULES[name]
        for member in fromlist or ():
            try:
                getattr(module, member)
            except AttributeError as e:  # say why, instead of Python's "cannot import name ... (unknown location)"
                raise ImportError(f"`from {name} import {member}`: {e}") from None
        return module
    raise ImportError(f"importing `{name}` is not allowed; only `numpy` and `math` may be imported")


BUILTIN_NAMES = [
    "abs",
    "all",
    "any",
    "bool",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "int",
    "isinstance",
    "len",
    "list",
    "map",
    "max",
    "min",
    "pow",
    "range",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "True",
    "False",
    "None",
    "ArithmeticError",
    "ValueError",
    "ZeroDivisionError",
]


def shared_objects() -> list[object]:
    """Objects every program shares and may keep at module level as they are: the facades and their members.

    (They are immutable to programs already; see ``workers.program.freeze``.)
    """
    members = [
        *object.__getattribute__(NUMPY, "_members").values(),
        *object.__getattribute__(MATH, "_members").values(),
    ]
    linalg = object.__getattribute__(NUMPY, "_members")["linalg"]
    return [NUMPY, MATH, *members, *object.__getattribute__(linalg, "_members").values(), *safe_builtins().values()]


def safe_builtins() -> dict[str, object]:
    """A fresh dict of the builtins a program may use (plus an import that only knows numpy and math)."""
    b = {n: getattr(builtins, n) for n in BUILTIN_NAMES}
    b["__import__"] = _import
    return b
