"""Nothing outlives a call: module state holds only plain numbers, strings, bytes, tuples and frozensets of those,
read-only mappings and read-only arrays; everything else is refused at load or deep-copied into that form."""

from __future__ import annotations

import ast
import inspect
import itertools
import warnings
from collections.abc import Callable, Iterator
from types import EllipsisType, MappingProxyType, NoneType

import numpy as np
import pytest

from envs.state import State
from tests.workers.program.hostile import STATE
from workers.program.facade import MATH, NUMPY, safe_builtins, shared_objects
from workers.program.freeze import Unfreezable, freeze_namespace
from workers.program.policy import FORBIDDEN_ATTRIBUTES, ProgramRejected
from workers.program.program import ProgramError, call_reward, load_program


def batch(n: int = 3) -> State:
    return State({"x_velocity": np.linspace(-1.0, 1.0, n), "dt": 0.05})


def _refused_or_constant(source: str) -> str:
    """How the program was stopped: 'rejected' at the static check or at load, 'fails' on every call with
    read-only advice, or 'constant' (every call returns the same)."""
    try:
        program = load_program(source)
    except ProgramRejected as e:
        assert e.stage in ("static check", "load"), str(e)
        return "rejected"
    outcomes = []
    for _ in range(6):
        try:
            reward, components, _ = call_reward(program, batch(), np.zeros((3, 2)))
        except ProgramError as e:
            outcomes.append(str(e).split(".")[0])
            assert "keep nothing from one call to the next" in str(e), str(e)
        else:
            outcomes.append(repr((reward.tolist(), {k: v.tolist() for k, v in components.items()})))
    assert len(set(outcomes)) == 1, f"the program's calls differ, so it kept state: {outcomes}"
    return "fails" if outcomes[0].startswith("compute_reward") else "constant"


@pytest.mark.parametrize("name", list(STATE))
def test_a_program_that_keeps_state_between_calls_is_refused_or_stays_constant(name: str) -> None:
    assert _refused_or_constant(STATE[name].source) in ("rejected", "fails", "constant")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ufunc.at", "`.at` is not allowed"),
        ("ufunc.at through an alias", "`.at` is not allowed"),
        ("dtype metadata", "module-level `M` cannot be a constant: its dtype carries metadata"),
        ("flat iterator", "module-level `STEPS` cannot be a constant: it is a flatiter"),
    ],
)
def test_a_write_past_the_read_only_flag_is_refused_before_the_program_runs(name: str, expected: str) -> None:
    with pytest.raises(ProgramRejected) as info:
        load_program(STATE[name].source)
    assert expected in str(info.value)


def test_a_structured_scalar_is_kept_as_a_read_only_copy_and_still_reads() -> None:
    program = load_program(
        "import numpy as np\n\nROW = np.array([(2.0, 3)], dtype=[('k', 'f8'), ('n', 'i8')])[0]\nLIM = slice(0, (2,))\n\n"
        "def compute_reward(state, action):\n    r = state.x_velocity * ROW['k'] + ROW['n'] + LIM.stop[0]\n"
        "    return r, {'scaled': r}\n"
    )
    reward, _, _ = call_reward(program, batch(), np.zeros((3, 2)))
    assert reward.tolist() == [3.0, 5.0, 7.0]


# ------------------------------------------------ every type the builtins and the numpy facade can make


def _seeds() -> list[object]:
    """Fresh values of every kind a program writes down (made anew for each call: methods may change them)."""
    return [
        0,
        2,
        -1.5,
        True,
        None,
        "ab",
        (1, 2),
        [1.0, 2.0],
        {"a": 1},
        {1, 2},
        np.arange(4.0),
        np.arange(6).reshape(2, 3),
        np.zeros(2, dtype=[("n", "f8"), ("m", "i4")]),
        np.float32(1.5),
        [("n", "f8")],
    ]


def _callables() -> list[Callable]:
    numpy_members = object.__getattribute__(NUMPY, "_members")
    linalg = object.__getattribute__(numpy_members["linalg"], "_members")
    math_members = object.__getattribute__(MATH, "_members")
    found = [v for k, v in safe_builtins().items() if k != "__import__" and callable(v)]
    found += [v for members in (numpy_members, linalg, math_members) for v in members.values() if callable(v)]
    return found


def _calls(fn: Callable) -> Iterator[object]:
    """What ``fn`` returns on no argument, on one seed and on pairs of seeds (failures skipped)."""
    n = len(_seeds())
    for args in itertools.chain([()], ((i,) for i in range(n)), itertools.product(range(n), repeat=2)):
        values = _seeds()
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fn(*(values[i] for i in args))
        except Exception:
            continue
        yield result


def _attributes(value: object) -> Iterator[object]:
    """Every public attribute of ``value`` a program may name, and what its methods return without arguments."""
    for name in dir(value):
        if name.startswith("_") or name in FORBIDDEN_ATTRIBUTES:
            continue
        try:
            attr = getattr(value, name)
        except Exception:
            continue
        yield attr
        if callable(attr) and not isinstance(attr, type) and not name.startswith(("to", "dump")):
            try:
                with np.errstate(all="ignore"):
                    yield attr()
            except Exception:
                continue


def reachable_values() -> dict[type, list[object]]:
    """Up to three values of each type a program can make from the builtins and the facade, two steps deep."""
    by_type: dict[type, list[object]] = {}

    def keep(value: object) -> bool:
        kept = by_type.setdefault(type(value), [])
        if len(kept) >= 3:
            return False
        kept.append(value)
        return True

    first = [v for v in _seeds() if keep(v)]
    for fn in _callables():
        first += [v for v in _calls(fn) if keep(v)]
    for value in first:
        for attr in _attributes(value):
            keep(attr)
    return by_type


def deeply_immutable(value: object, shared: set[int]) -> bool:
    """Whether a frozen module value can carry nothing from one call to the next (checked independently of
    ``freeze``, by what each kind of value is)."""

    def plain_dtype(dtype: np.dtype) -> bool:
        fields = [dtype.fields[n][0] for n in dtype.names or ()]  # type: ignore[index]
        return dtype.metadata is None and not dtype.hasobject and all(plain_dtype(f) for f in fields)

    def ok(v: object) -> bool:
        t = type(v)
        if t in (NoneType, bool, int, float, complex, str, bytes, range, EllipsisType) or id(v) in shared:
            return True
        if t in (tuple, frozenset):
            return all(ok(x) for x in v)  # type: ignore[attr-defined]
        if t is MappingProxyType:
            return all(ok(k) and ok(x) for k, x in v.items())  # type: ignore[attr-defined]
        if t is slice:
            return ok(v.start) and ok(v.stop) and ok(v.step)  # type: ignore[attr-defined]
        if t is np.ndarray:
            a: np.ndarray = v  # type: ignore[assignment]
            return not a.flags.writeable and a.flags.owndata and a.base is None and plain_dtype(a.dtype)
        if isinstance(v, np.generic):
            return t is not np.void and plain_dtype(v.dtype)
        if isinstance(v, np.dtype):
            return plain_dtype(v)
        return isinstance(v, type) and issubclass(v, np.generic)

    return ok(value)


@pytest.fixture(scope="module")
def reachable() -> dict[type, list[object]]:
    return reachable_values()


def test_the_walk_reaches_the_kinds_of_value_that_kept_state(reachable: dict[type, list[object]]) -> None:
    kinds = set(reachable)
    for kind in (slice, np.void, np.flatiter, np.ndarray, map, zip, dict, list, set, range, bytes, np.float64):
        assert kind in kinds, kind
    assert any(isinstance(k, type) and issubclass(k, np.dtype) for k in kinds)
    assert len(kinds) > 45


def test_every_value_a_program_can_make_is_refused_or_frozen_deeply_when_kept_at_module_level(
    reachable: dict[type, list[object]],
) -> None:
    tree = ast.parse("X = 0\n")
    shared = {id(o) for o in shared_objects()}
    refused, frozen = set(), set()
    for kind, values in reachable.items():
        for value in values:
            namespace: dict[str, object] = {"X": value}
            try:
                freeze_namespace(namespace, tree, shared_objects(), "<reward>")
            except Unfreezable as e:
                name, line, reason = e.args
                assert name == "X" and line == 1 and reason, kind
                refused.add(kind)
                continue
            assert deeply_immutable(namespace["X"], shared), f"{kind.__name__} kept as {namespace['X']!r}"
            frozen.add(kind)
    assert {list, dict, set, slice, np.void, np.ndarray} <= frozen
    assert {map, zip, np.flatiter} <= refused


# ------------------------------------------------ numpy paths that write into an array


def _read_only(shape: tuple[int, ...] = (4,)) -> np.ndarray:
    a = np.zeros(shape)
    a.flags.writeable = False
    return a


def _accepts_out(fn: Callable) -> bool:
    if isinstance(fn, np.ufunc):
        return True
    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def test_no_facade_function_writes_into_a_read_only_array_through_out() -> None:
    members = object.__getattribute__(NUMPY, "_members")
    tried = 0
    for name, fn in sorted(members.items()):
        if not callable(fn) or not _accepts_out(fn):
            continue
        for args in [(np.ones(4),), (np.ones(4), np.ones(4)), (np.ones((4, 4)),), (np.ones(4), 0.0, 1.0)]:
            target = _read_only()
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fn(*args, out=target)
            except Exception:
                pass
            assert not target.any(), f"np.{name}(..., out=read-only array) wrote into it"
            tried += 1
    assert tried > 300


@pytest.mark.parametrize(
    "write",
    [
        lambda a: a.put([0], [7.0]),
        lambda a: a.fill(3.0),
        lambda a: a.sort(),
        lambda a: a.partition(1),
        lambda a: a.byteswap(inplace=True),
        lambda a: a.view().__setitem__(0, 1.0),
        lambda a: a.T.__setitem__(0, 1.0),
        lambda a: a.flat.__setitem__(0, 1.0),
        lambda a: a.reshape(2, 2).__setitem__((0, 0), 1.0),
        lambda a: np.asarray(a).__setitem__(0, 1.0),
        lambda a: np.nan_to_num(a, copy=False, nan=1.0),
    ],
    ids=["put", "fill", "sort", "partition", "byteswap", "view", "T", "flat", "reshape", "asarray", "nan_to_num"],
)
def test_array_methods_respect_the_read_only_flag(write: Callable[[np.ndarray], object]) -> None:
    a = np.array([0.0, 0.0, 0.0, 0.0])
    a.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        write(a)
    assert not a.any()


def test_the_paths_that_ignore_the_read_only_flag_are_the_ones_the_static_check_refuses() -> None:
    # ufunc.at writes whatever the flag says (numpy's own behaviour, checked here so that a numpy upgrade that
    # adds or removes such paths shows up); it is refused by name, as are the raw-memory routes.
    a = _read_only()
    np.add.at(a, [0], 1.0)
    assert a[0] == 1.0
    for attr in ("at", "setflags", "resize", "ctypes", "data", "base", "flags", "metadata", "frombuffer", "lib"):
        assert attr in FORBIDDEN_ATTRIBUTES
