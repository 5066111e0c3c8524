"""The only numpy a program sees: a read-only namespace of array functions, and restricted builtins.

No file I/O (``load``, ``save``, ``fromfile``, ``DataSource``), no raw memory (``ctypeslib``,
``frombuffer``), no randomness, no global settings. Anything missing fails with a message
that says it is not available, rather than a bare AttributeError.
"""

from __future__ import annotations

import builtins
import math
from types import MappingProxyType

import numpy

NUMPY_NAMES = """
abs absolute add all allclose amax amin any arange arccos arccosh arcsin arcsinh arctan arctan2
arctanh argmax argmin argsort array array_equal asarray atleast_1d atleast_2d average bool bool_
broadcast_to ceil clip column_stack concatenate copysign cos cosh count_nonzero cross cumprod cumsum
deg2rad degrees diff digitize divide dot e einsum equal euler_gamma exp exp2 expand_dims expm1 eye
fabs flip float16 float32 float64 floor floor_divide fmax fmin fmod full full_like gradient greater
greater_equal heaviside hstack hypot inf inner int8 int16 int32 int64 int_ interp isclose isfinite
isinf isnan linspace log log10 log1p log2 logaddexp logical_and logical_not logical_or logical_xor
matmul max maximum mean median min minimum mod moveaxis multiply nan nan_to_num nanmax nanmean
nanmin nansum ndarray negative newaxis not_equal ones ones_like outer percentile pi piecewise power
prod ptp quantile rad2deg radians reciprocal remainder repeat reshape rint roll round searchsorted
select sign sin sinc sinh sort sqrt square squeeze stack std subtract sum swapaxes take
take_along_axis tan tanh tensordot tile trace transpose trapezoid true_divide trunc uint8 unique
unwrap var vdot vstack where zeros zeros_like
""".split()

LINALG_NAMES = ["norm", "det", "inv", "solve", "eigvalsh"]


class Facade:
    """A frozen namespace that names what is missing when a program reaches for it."""

    def __init__(self, name: str, members: dict[str, object]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", MappingProxyType(dict(members)))

    def __getattr__(self, attr: str) -> object:
        members = object.__getattribute__(self, "_members")
        if attr in members:
            return members[attr]
        name = object.__getattribute__(self, "_name")
        raise AttributeError(
            f"{name}.{attr} is not available in reward programs (no file, memory, random or "
            f"system access); use array functions such as {name}.where, {name}.clip, {name}.sum"
        )

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError("the numpy facade is read-only")

    def __dir__(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_members"))


def _build_numpy() -> Facade:
    members = {n: getattr(numpy, n) for n in NUMPY_NAMES if hasattr(numpy, n)}
    members["linalg"] = Facade("np.linalg", {n: getattr(numpy.linalg, n) for n in LINALG_NAMES})
    return Facade("np", members)


NUMPY = _build_numpy()
MODULES = {"numpy": NUMPY, "math": math}


def _import(name: str, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - builtins signature
    if level == 0 and name in MODULES:
        return MODULES[name]
    raise ImportError(f"importing `{name}` is not allowed; only `numpy` and `math` may be imported")


BUILTIN_NAMES = """
abs all any bool dict divmod enumerate filter float int isinstance len list map max min pow range
reversed round set slice sorted str sum tuple zip True False None
ArithmeticError ValueError ZeroDivisionError
""".split()


def safe_builtins() -> dict[str, object]:
    """A fresh dict of the builtins a program may use (plus an import that only knows numpy and math)."""
    b = {n: getattr(builtins, n) for n in BUILTIN_NAMES}
    b["__import__"] = _import
    return b
