"""Loading checked programs and checking what they return.

``load_program`` runs the static check, then executes the module in a namespace with
restricted builtins and the numpy facade. ``call_reward`` / ``call_fitness`` wrap every
call so that an exception, a wrong shape or a non-finite value becomes a
``ProgramError`` whose message points at the program's own line.
"""

from __future__ import annotations

import ast
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workers.program.facade import safe_builtins, shared_objects
from workers.program.freeze import Unfreezable, freeze_namespace
from workers.program.policy import ENTRY_POINTS, ProgramRejected, Violation, check_source, too_deep
from workers.program.syntax import compile_tree
from workers.program.text import cap, cap_lines, exception_text, safe_repr, source_lines

REWARD_BOUND = 1e6
"""Largest magnitude a reward or component may take; beyond it PPO's value targets break down."""
FITNESS_BOUND = 1e9
"""Largest magnitude a fitness may take (a reward's bound over a 1,000-step episode): means and spreads of
fitness values stay finite, and so does every figure computed from them."""

MAX_COMPONENTS = 32
"""Components one reward may return: each is a row of statistics at every checkpoint."""
MAX_COMPONENT_NAME = 64
"""Characters in a component name (an ASCII identifier: letters, digits and '_')."""
RESERVED_COMPONENTS = frozenset({"reward", "env_reward"})
"""Names the engine reports next to the components; a component may not pass for one of them."""

TRACEBACK_FRAMES = 8
"""Innermost frames of the program's own traceback shown in an error (deep recursion has a thousand)."""


class ProgramError(Exception):
    """A checked program that failed while running; ``str()`` says where and what to do."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        self.line = line
        self.column = column
        super().__init__(cap_lines(message))


@dataclass
class Program:
    """A loaded program: its entry function and its source (for error locations)."""

    kind: str
    source: str
    fn: Callable[..., object]
    attributes: frozenset[str] = frozenset()
    """Every attribute name the program reads (``state.x_velocity`` → 'x_velocity'): what to capture for it."""

    def where(self, exc: BaseException) -> tuple[int | None, int | None, str]:
        """The innermost (line, column) of this program in ``exc``'s traceback, and its traceback lines only."""
        filename = f"<{self.kind}>"
        lines = source_lines(self.source)  # numbered as the tokenizer numbers them, as the traceback is
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
        if not frames:
            return None, None, ""
        shown = [f"  ... {len(frames) - TRACEBACK_FRAMES} earlier calls"] if len(frames) > TRACEBACK_FRAMES else []
        for f in frames[-TRACEBACK_FRAMES:]:
            code = lines[f.lineno - 1].strip() if f.lineno and 0 < f.lineno <= len(lines) else ""
            shown.append(f"  line {f.lineno}, in {f.name}: {cap(code, 120)}")
        col = getattr(frames[-1], "colno", None)
        return frames[-1].lineno, (col + 1 if col is not None else None), "\n".join(shown)


def load_program(source: str, kind: str = "reward") -> Program:
    """Check and load ``source``; raises ``ProgramRejected`` when it breaks the contract."""
    tree = check_source(source, kind)
    try:
        code = compile_tree(tree, f"<{kind}>")
    except (RecursionError, MemoryError):
        raise too_deep(kind, "load") from None
    namespace: dict[str, object] = {"__builtins__": safe_builtins(), "__name__": f"{kind}_program"}
    attributes = frozenset(n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute))
    program = Program(kind, source, lambda *a: None, attributes)
    try:
        exec(code, namespace)
    except MemoryError:
        raise
    except Exception as e:  # module-level code failed: a constant or an import
        line, _, _ = program.where(e)
        raise ProgramRejected(
            "load", [Violation("module level", line or 0, 1, f"running the module failed: {exception_text(e)}")], kind
        ) from None
    try:
        freeze_namespace(namespace, tree, shared_objects(), f"<{kind}>")
    except Unfreezable as e:
        name, line, reason = e.args
        message = (
            f"module-level `{name}` cannot be a constant: {reason}. Module-level values must be constants "
            "(numbers, strings, tuples, lists, dicts, sets, numeric arrays: all read-only once the module has run; "
            "nothing else is kept between calls) or functions; compute anything else inside the call"
        )
        raise ProgramRejected("load", [Violation("module level", line, 1, message)], kind) from None
    program.fn = namespace[ENTRY_POINTS[kind][0]]  # type: ignore[assignment]
    return program


_AMBIGUOUS = "truth value of an array with more than one element is ambiguous"
_READ_ONLY = (
    "read-only",
    "the state is read-only",
    "'tuple' object does not support item assignment",
    "'tuple' object has no attribute",
    "'mappingproxy' object",
    "'frozenset' object has no attribute",
)


def describe_exception(program: Program, exc: BaseException, call: str) -> ProgramError:
    """Turn an exception raised inside ``program`` into an actionable ``ProgramError``."""
    line, column, frames = program.where(exc)
    text = exception_text(exc)
    if _AMBIGUOUS in text:
        advice = (
            "A Python `if`, `and`, `or`, `not` or `while` was applied to a batched array. Fields carry a "
            "leading axis of N envs: use np.where(cond, a, b), np.logical_and, np.clip instead of branches."
        )
    elif isinstance(exc, AttributeError) and "state has no field" in text:
        advice = "Use only the fields of the state view listed in the env description."
    elif any(m in text for m in _READ_ONLY):
        advice = (
            "The state's arrays, the action and module-level values are read-only (module-level lists are "
            "tuples, dicts read-only mappings): build new arrays instead of changing them in place, e.g. "
            "v = np.clip(state.x_velocity, 0.0, None) or v = np.array(state.x_velocity) before v[...] = ..., "
            "and keep nothing from one call to the next."
        )
    elif isinstance(exc, IndexError | ValueError) and ("shape" in text or "index" in text or "axis" in text):
        advice = "Check array shapes: scalar fields are (N,), vector fields (N, k); reduce with axis=-1."
    else:
        advice = "Fix the program so that it runs on every state of the batch."
    trace = f"\nProgram traceback:\n{frames}" if frames else ""
    return ProgramError(f"{call} raised {text}. {advice}{trace}", line=line, column=column)


def _as_real(value: object, what: str, expected: str) -> np.ndarray:
    """``value`` as a float64 array; None, strings, objects and complex numbers are refused, not coerced.

    (``np.asarray(None, dtype=float)`` is NaN and complex values lose their imaginary part
    silently, so both would otherwise be reported as something else or not at all.)
    """
    try:
        raw = np.asarray(value)
    except MemoryError:
        raise
    except Exception as e:
        raise ProgramError(
            f"{what} is not numeric ({type(value).__name__}): {exception_text(e)}. Return {expected}."
        ) from None
    if raw.dtype.kind == "c":
        raise ProgramError(
            f"{what} is complex ({raw.dtype}); a negative number raised to a fractional power gives complex "
            f"values: use np.sqrt(np.maximum(x, 0.0)) or np.abs(x) ** p. Return {expected}."
        )
    if raw.dtype.kind not in "biuf":
        shown = "None" if value is None else f"{type(value).__name__} of {raw.dtype}"
        raise ProgramError(f"{what} is not numeric ({shown}). Return {expected}.")
    return raw.astype(np.float64)


def _as_batch(value: object, n: int, what: str) -> tuple[np.ndarray, str | None]:
    """``value`` as a float64 array of shape (n,); a scalar is broadcast with a warning."""
    arr = _as_real(value, what, "numpy arrays of shape (N,)")
    warning = None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
        warning = f"{what} is a scalar, not an array of shape (N,); it was broadcast to every env"
    elif arr.shape != (n,):
        raise ProgramError(
            f"{what} has shape {arr.shape}, expected ({n},) for a batch of {n} envs. Reduce per-env vectors "
            "with axis=-1 (e.g. np.sum(np.square(action), axis=-1)) and do not reduce over the batch axis."
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ProgramError(
            f"{what} is not finite (NaN or inf) for {bad} of {n} envs. Guard divisions and logs "
            "(e.g. np.maximum(x, 1e-6)) and clip exponents."
        )
    if np.any(np.abs(arr) > REWARD_BOUND):
        raise ProgramError(f"{what} exceeds ±{REWARD_BOUND:g} (max |value| {np.max(np.abs(arr)):.3g}); scale it down.")
    return arr, warning


def _good_name(name: object) -> bool:
    """An ASCII identifier of at most ``MAX_COMPONENT_NAME`` characters that is not reserved.

    ASCII only: 'rеward' with a Cyrillic 'е' is printable, and would sit beside the engine's own
    'reward' row looking like it; and a name is shown in pages, logs and prompts.
    """
    return (
        type(name) is str
        and 0 < len(name) <= MAX_COMPONENT_NAME
        and name.isascii()
        and name.isidentifier()
        and name.casefold() not in RESERVED_COMPONENTS
    )


def _check_names(components: dict) -> None:
    """Raise for too many components or a name that is empty, long, not an ASCII identifier, or reserved."""
    if len(components) > MAX_COMPONENTS:
        raise ProgramError(
            f"compute_reward returned {len(components):,} components; at most {MAX_COMPONENTS} are allowed. "
            "Group small terms into one component."
        )
    for name in components:
        if _good_name(name):
            continue
        if not isinstance(name, str) or not name:
            raise ProgramError(f"component names must be non-empty strings, got {safe_repr(name, 80)}.")
        if name.isascii() and name.casefold() in RESERVED_COMPONENTS:
            raise ProgramError(
                f"component name '{name}' is reserved (the engine reports {', '.join(sorted(RESERVED_COMPONENTS))} "
                "next to the components); name the term after what it measures, e.g. 'forward' or 'ctrl_cost'."
            )
        raise ProgramError(
            f"component name {name[:80]!a} is not a short ASCII identifier: use at most "
            f"{MAX_COMPONENT_NAME} characters from a-z, A-Z, 0-9 and '_', not starting with a digit, "
            "e.g. 'forward' or 'ctrl_cost'."
        )


def _fast_path(out: tuple, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """The common case checked in a few array operations: float arrays of shape (n,), finite and bounded.
    None sends the output through the detailed checks, which say exactly what is wrong."""
    reward, components = out
    values = [reward, *components.values()]
    for v in values:
        if type(v) is not np.ndarray or v.shape != (n,) or v.dtype.kind != "f":
            return None
    if len(components) > MAX_COMPONENTS or not all(_good_name(k) for k in components):
        return None
    stack = np.array(values, dtype=np.float64)
    if not np.abs(stack).max() <= REWARD_BOUND:  # False for NaN and inf too
        return None
    return stack[0], dict(zip(components, stack[1:], strict=False))


def call_reward(
    program: Program, state: object, action: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """Call ``compute_reward`` on a batch; returns (reward, components, warnings) checked against the contract."""
    n = action.shape[0]
    try:
        out = program.fn(state, action)
    except MemoryError:
        raise
    except Exception as e:
        raise describe_exception(program, e, "compute_reward(state, action)") from None
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        raise ProgramError(
            f"compute_reward returned {type(out).__name__}, expected a tuple (reward, components) where "
            "components is a dict of named arrays, e.g. return reward, {'forward': forward}."
        )
    fast = _fast_path(out, n)
    if fast is not None:
        return fast[0], fast[1], []
    warnings: list[str] = []
    _check_names(out[1])
    reward, w = _as_batch(out[0], n, "the reward")
    if w:
        warnings.append(w)
    components: dict[str, np.ndarray] = {}
    for name, value in out[1].items():
        components[name], w = _as_batch(value, n, f"component '{name}'")
        if w:
            warnings.append(w)
    return reward, components, warnings


def fitness_stats(values: list[float]) -> tuple[float, float]:
    """The mean and standard deviation of a fitness over episodes; raises ``ProgramError`` when either is not
    finite (values within ``FITNESS_BOUND`` keep them finite; this holds the line for whatever comes next)."""
    arr = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        mean, std = (float(np.mean(arr)), float(np.std(arr))) if arr.size else (np.nan, np.nan)
    if not (np.all(np.isfinite(arr)) and np.isfinite(mean) and np.isfinite(std)):
        raise ProgramError(
            f"the fitness over {arr.size} episodes has no finite mean and spread (mean {mean:.3g}, std {std:.3g}); "
            f"return values within ±{FITNESS_BOUND:g}."
        )
    return mean, std


def call_fitness(program: Program, traj: object) -> float:
    """Call ``compute_fitness`` on one episode; returns a finite float."""
    try:
        out = program.fn(traj)
    except MemoryError:
        raise
    except Exception as e:
        raise describe_exception(program, e, "compute_fitness(traj)") from None
    raw = _as_real(out, "the fitness", "one number per episode")
    if raw.size != 1:
        raise ProgramError(
            f"compute_fitness returned {type(out).__name__} of shape {raw.shape}, expected one number per "
            "episode; reduce over time, e.g. float(np.sum(traj.x_velocity) * traj.dt)."
        )
    value = float(raw.reshape(()))
    if not np.isfinite(value):
        raise ProgramError("compute_fitness returned a non-finite value (NaN or inf).")
    if abs(value) > FITNESS_BOUND:
        raise ProgramError(
            f"compute_fitness returned {value:.3g}, beyond ±{FITNESS_BOUND:g}; scale it down (a distance in metres, "
            "a mean speed, a count of steps)."
        )
    return value
