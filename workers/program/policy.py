"""Static check of reward and fitness programs: parse, then walk the AST against an allow-list.

Every rejection names the rule, the line and column, and what to do instead, in words a
person or an LLM can act on.

This module imports only the standard library, ``workers.program.text`` and ``workers.program.syntax``, so that the
same check can run wherever a program is loaded, an exported bundle included (copy the three files).
The numpy names a program may use are listed here once: the sandbox's numpy facade is built
from the same list, so a name the facade lacks is refused before anything runs.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from workers.program.syntax import parse_module
from workers.program.text import MAX_ERROR_TEXT, cap, cap_lines, exception_text, one_line, source_lines

ENTRY_POINTS = {"reward": ("compute_reward", ("state", "action")), "fitness": ("compute_fitness", ("traj",))}

ALLOWED_MODULES = {"numpy", "math"}

_NUMPY_WORDS = """
    abs absolute add all allclose amax amin any arange arccos arccosh arcsin arcsinh arctan arctan2 arctanh
    argmax argmin argsort array array_equal asarray atleast_1d atleast_2d average bool bool_ broadcast_to ceil
    clip column_stack concatenate copysign cos cosh count_nonzero cross cumprod cumsum deg2rad degrees diff
    digitize divide dot e einsum equal euler_gamma exp exp2 expand_dims expm1 eye fabs flip float16 float32
    float64 floor floor_divide fmax fmin fmod full full_like gradient greater greater_equal heaviside hstack
    hypot inf inner int8 int16 int32 int64 int_ interp isclose isfinite isinf isnan linspace log log10 log1p
    log2 logaddexp logical_and logical_not logical_or logical_xor matmul max maximum mean median min minimum mod
    moveaxis multiply nan nan_to_num nanmax nanmean nanmin nansum ndarray negative newaxis not_equal ones
    ones_like outer percentile pi piecewise power prod ptp quantile rad2deg radians reciprocal remainder repeat
    reshape rint roll round searchsorted select sign sin sinc sinh sort sqrt square squeeze stack std subtract
    sum swapaxes take take_along_axis tan tanh tensordot tile trace transpose trapezoid true_divide trunc uint8
    unique unwrap var vdot vstack where zeros zeros_like
"""
NUMPY_NAMES = tuple(_NUMPY_WORDS.split())
"""Every ``np.`` name a program may use: the facade holds exactly these (``ndarray`` only for ``isinstance``)."""
LINALG_NAMES = ("norm", "det", "inv", "solve", "eigvalsh")
"""Every ``np.linalg.`` name a program may use."""
NUMPY_SUBMODULES = {"linalg": LINALG_NAMES}
_NUMPY_HINT = {NUMPY_NAMES: "np.where, np.clip, np.sum", LINALG_NAMES: "np.linalg.norm, np.linalg.solve"}

FORBIDDEN_NAMES = {
    "eval",
    "exec",
    "compile",
    "open",
    "getattr",
    "setattr",
    "delattr",
    "hasattr",
    "vars",
    "globals",
    "locals",
    "dir",
    "type",
    "object",
    "super",
    "__import__",
    "breakpoint",
    "input",
    "help",
    "memoryview",
    "classmethod",
    "staticmethod",
    "property",
    "exit",
    "quit",
    "print",
    "id",
    "bytearray",
    "bytes",
    "format",
    "issubclass",
    "callable",
    "iter",
    "next",
    "aiter",
    "anext",
}

# Attribute names that lead out of the array world: file I/O, raw memory, frames, code objects,
# string formatting (which can reach attributes through "{0.__class__}").
FORBIDDEN_ATTRIBUTES = {
    "tofile",
    "dump",
    "dumps",
    "ctypes",
    "ctypeslib",
    "load",
    "loads",
    "save",
    "savez",
    "savetxt",
    "savez_compressed",
    "fromfile",
    "loadtxt",
    "genfromtxt",
    "memmap",
    "DataSource",
    "lib",
    "os",
    "sys",
    "format",
    "format_map",
    "mro",
    "setflags",
    "getfield",
    "setfield",
    "f2py",
    "testing",
    "distutils",
    "frombuffer",
    "from_dlpack",
    "gi_frame",
    "gi_code",
    "cr_frame",
    "cr_code",
    "ag_frame",
    "f_globals",
    "f_locals",
    "f_back",
    "f_builtins",
    "f_code",
    "tb_frame",
    "tb_next",
    "co_code",
    "func_globals",
    "im_func",
    "builtins",
    "emath",
    "random",
    "show_config",
    "show_runtime",
    "info",
    "source",
    "who",
    # ndarray.resize(..., refcheck=False) frees memory that views still point to.
    "resize",
    # The array a view was made from, and the flag that makes a read-only array writable again: together
    # a way from a state field back to a buffer the engine reads.
    "base",
    "flags",
    # ufunc.at (np.add.at(A, i, 1)) writes into an array whatever its read-only flag says.
    "at",
    # A dtype's metadata is a dict the program chose, kept by every array of that dtype: a place for state.
    "metadata",
    # Raw views and buffers of an array's memory.
    "data",
    "stride_tricks",
    "as_strided",
    "copyto",
    "put",
    "place",
    "putmask",
    "fill_diagonal",
}
FORBIDDEN_PREFIXES = ("_", "f_", "gi_", "cr_", "ag_", "tb_", "co_")

ALLOWED_NODES = (
    ast.Module,
    ast.Expr,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Return,
    ast.FunctionDef,
    ast.arguments,
    ast.arg,
    ast.If,
    ast.For,
    ast.While,
    ast.Break,
    ast.Continue,
    ast.Pass,
    ast.Assert,
    ast.Import,
    ast.ImportFrom,
    ast.alias,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Del,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Call,
    ast.keyword,
    ast.Starred,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Lambda,
    ast.Tuple,
    ast.List,
    ast.Dict,
    ast.Set,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.NamedExpr,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
    ast.expr_context,
)

NODE_ADVICE = {
    ast.ClassDef: "classes are not allowed; use functions and module-level constants",
    ast.Global: "`global` is not allowed; pass values as arguments and return results",
    ast.Nonlocal: "`nonlocal` is not allowed; pass values as arguments and return results",
    ast.Try: "try/except is not allowed; let errors surface so that they can be reported and fixed",
    ast.Raise: "`raise` is not allowed; return finite values for every state",
    ast.With: "`with` blocks are not allowed (no files or resources in reward programs)",
    ast.AsyncFunctionDef: "async functions are not allowed",
    ast.Await: "`await` is not allowed",
    ast.Yield: "generators (`yield`) are not allowed; return arrays",
    ast.YieldFrom: "generators (`yield from`) are not allowed; return arrays",
    ast.Delete: "`del` is not allowed",
    ast.Match: "`match` is not allowed; use np.where or np.select",
}


MAX_VIOLATIONS = 20
"""Broken rules listed in one rejection; the rest are counted. (Listing all of 30,000 helps nobody.)"""

MAX_SHOWN_NAME = 40
"""Characters of an identifier quoted in a message."""


def _short(name: str) -> str:
    return name if len(name) <= MAX_SHOWN_NAME else name[: MAX_SHOWN_NAME - 3] + "..."


@dataclass(frozen=True)
class Violation:
    """One broken rule, located in the source."""

    rule: str
    line: int
    column: int
    message: str
    snippet: str = ""

    def explain(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.line > 0 else "the program as a whole"
        code = f" (`{self.snippet}`)" if self.snippet else ""
        return f"{where}{code}: {self.message} [rule: {self.rule}]"


class ProgramRejected(Exception):
    """A program that breaks the contract; ``str()`` is one paragraph that says why and what to do."""

    def __init__(self, stage: str, violations: list[Violation], kind: str = "reward", *, more: int = 0) -> None:
        self.stage = stage
        self.violations = violations
        self.kind = kind
        self.more = more
        """Broken rules found beyond the ``violations`` listed (see ``MAX_VIOLATIONS``)."""
        super().__init__(cap_lines(self.paragraph(), MAX_ERROR_TEXT))  # its program-controlled pieces are one-line

    def paragraph(self) -> str:
        first = self.violations[0]
        lines = [f"The {self.kind} program was rejected at the {self.stage}: {first.explain()}."]
        if len(self.violations) > 1:
            more = "; ".join(v.explain() for v in self.violations[1:5])
            lines.append(f"Also: {more}.")
        hidden = len(self.violations) - 5 + self.more
        if hidden > 0:
            lines.append(f"There are {hidden:,} more problems of these kinds; fix the ones shown and check again.")
        lines.append(_CONTRACT_HINT[self.kind])
        return " ".join(lines)


_CONTRACT_HINT = {
    "reward": (
        "A reward program defines `compute_reward(state, action)` returning `(reward, components)`, "
        "uses only `numpy` (as np) and `math`, helper functions and constants of its own, and no I/O."
    ),
    "fitness": (
        "A fitness program defines `compute_fitness(traj)` returning one float, "
        "uses only `numpy` (as np) and `math`, helper functions and constants of its own, and no I/O."
    ),
}


def _byte_slice(line: str, start: int, end: int | None) -> str:
    """``line`` between the UTF-8 byte offsets that the AST reports."""
    if line.isascii():
        return line[start:end]
    return line.encode()[start:end].decode(errors="ignore")


def _snippet(lines: list[str], node: ast.AST) -> str:
    """The node's source, whitespace collapsed, at most 60 characters; reads only the few lines it shows."""
    first = getattr(node, "lineno", 0)
    if not 0 < first <= len(lines):
        return ""
    last = min(getattr(node, "end_lineno", None) or first, len(lines))
    pieces: list[str] = []
    for number in range(first, last + 1):
        start = getattr(node, "col_offset", 0) if number == first else 0
        end = getattr(node, "end_col_offset", None) if number == last else None
        pieces.append(_byte_slice(lines[number - 1], start, end)[:200])
        if sum(map(len, pieces)) > 120:
            break
    text = " ".join(" ".join(pieces).split())
    return one_line(text if len(text) <= 60 else text[:57] + "...")


class _Checker(ast.NodeVisitor):
    def __init__(self, lines: list[str], numpy_aliases: dict[str, tuple[str, ...]]) -> None:
        self.lines = lines
        self.violations: list[Violation] = []
        self.more = 0
        self.numpy = numpy_aliases
        """Names bound to numpy or one of its submodules (``np`` → the names allowed after ``np.``)."""
        self.constants: dict[int, _Const | None] = {}

    def add(self, violation: Violation) -> None:
        if len(self.violations) < MAX_VIOLATIONS:
            self.violations.append(violation)
        else:
            self.more += 1

    def flag(self, node: ast.AST, rule: str, message: str) -> None:
        if len(self.violations) >= MAX_VIOLATIONS:  # counted only: no snippet to build
            self.more += 1
            return
        line, column = getattr(node, "lineno", 0), getattr(node, "col_offset", 0) + 1
        self.add(Violation(rule, line, column, message, _snippet(self.lines, node)))

    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, ALLOWED_NODES):
            advice = NODE_ADVICE.get(type(node), f"`{type(node).__name__}` statements are not allowed")
            self.flag(node, "syntax", advice)
            return
        super().generic_visit(node)

    def _check_binding(self, node: ast.AST, name: str | None, what: str) -> None:
        """A name the program binds other than by assignment (import alias, parameter, keyword)."""
        if name is not None and name.startswith("__"):
            self.flag(node, "dunder", f"{what} with double underscores (`{_short(name)}`) are not allowed")

    def visit_alias(self, node: ast.alias) -> None:
        self._check_binding(node, node.asname, "import aliases")

    def visit_arg(self, node: ast.arg) -> None:
        self._check_binding(node, node.arg, "parameter names")
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        self._check_binding(node, node.arg, "keyword argument names")
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                self.flag(
                    node,
                    "imports",
                    f"importing `{_short(alias.name)}` is not allowed; only `numpy` and `math` may be imported",
                )
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module not in ALLOWED_MODULES or node.level:
            self.flag(
                node,
                "imports",
                f"importing from `{_short(str(node.module))}` is not allowed; only `numpy` and `math` may be imported",
            )
        for alias in node.names:
            if alias.name == "*":
                self.flag(node, "imports", "`import *` is not allowed; import names one by one or use `np.`")
                continue
            flagged = len(self.violations) + self.more
            self._check_attr_name(node, alias.name)
            allowed = (*NUMPY_NAMES, *NUMPY_SUBMODULES)
            if node.module == "numpy" and len(self.violations) + self.more == flagged and alias.name not in allowed:
                self._no_numpy_name(node, "np", alias.name, NUMPY_NAMES)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.numpy:  # reached only where the module is not followed by `.name` (see visit_Attribute)
            self.flag(
                node,
                "numpy",
                f"`{_short(node.id)}` (numpy) may only be used as `{_short(node.id)}.name`: it cannot be stored, "
                "passed, returned or bound to another value",
            )
        elif node.id in FORBIDDEN_NAMES:
            self.flag(node, "builtins", f"`{node.id}` is not available in reward programs")
        elif node.id.startswith("__"):
            self.flag(node, "dunder", f"names with double underscores (`{_short(node.id)}`) are not allowed")
        self.generic_visit(node)

    def _check_attr_name(self, node: ast.AST, attr: str) -> None:
        if attr.startswith("__"):
            self.flag(node, "dunder", f"dunder attributes (`.{_short(attr)}`) are not allowed")
        elif attr.startswith(FORBIDDEN_PREFIXES):
            self.flag(node, "attributes", f"private or interpreter attributes (`.{_short(attr)}`) are not allowed")
        elif attr in FORBIDDEN_ATTRIBUTES:
            self.flag(node, "attributes", f"`.{attr}` is not allowed (no file, memory, frame or format access)")

    def _numpy_members(self, node: ast.expr) -> tuple[tuple[str, ...], str] | None:
        """The names allowed after ``node`` and how to show it, when ``node`` is numpy or a numpy submodule."""
        if isinstance(node, ast.Name) and node.id in self.numpy:
            return self.numpy[node.id], node.id
        if isinstance(node, ast.Attribute) and node.attr in NUMPY_SUBMODULES:
            outer = self._numpy_members(node.value)
            if outer is not None and outer[0] is NUMPY_NAMES:
                return NUMPY_SUBMODULES[node.attr], f"{outer[1]}.{node.attr}"
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        flagged = len(self.violations) + self.more
        self._check_attr_name(node, node.attr)
        module = self._numpy_members(node.value)
        if module is not None:
            allowed, shown = module
            members = (*allowed, *NUMPY_SUBMODULES) if allowed is NUMPY_NAMES else allowed
            if len(self.violations) + self.more == flagged and node.attr not in members:
                self._no_numpy_name(node, shown, node.attr, allowed)
            elif allowed is NUMPY_NAMES and node.attr in NUMPY_SUBMODULES:  # not followed by `.name`
                self.flag(node, "numpy", f"`{shown}.{node.attr}` may only be used as `{shown}.{node.attr}.name`")
        if isinstance(node.ctx, ast.Store | ast.Del):
            self.flag(
                node,
                "attributes",
                f"setting an attribute (`.{_short(node.attr)} = ...`) is not allowed: the state, np and math are "
                "read-only and values must not outlive a call; keep values in local variables",
            )
        if module is None:  # `np` itself is not visited when a name follows it
            self.generic_visit(node)

    def _no_numpy_name(self, node: ast.AST, shown: str, attr: str, allowed: tuple[str, ...]) -> None:
        self.flag(
            node,
            "numpy",
            f"`{shown}.{_short(attr)}` is not available in reward programs (no file, memory, random or system "
            f"access); use array functions such as {_NUMPY_HINT[allowed]}",
        )

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "ndarray" and self._numpy_members(func.value):
            self.flag(node, "numpy", "`np.ndarray(...)` cannot create arrays; use np.zeros, np.full or np.array")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        try:
            _const(node, self.constants)
        except _Huge as e:
            self.flag(node, "size", str(e))
            return
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.decorator_list:
            self.flag(node.decorator_list[0], "syntax", "decorators are not allowed")
        if node.name.startswith("__"):
            self.flag(node, "dunder", f"function names with double underscores (`{_short(node.name)}`) are not allowed")
        self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, bytes):
            self.flag(node, "syntax", "bytes literals are not allowed")


TOO_DEEP = (
    "the program is too deeply nested to parse: an expression nests thousands of operators or brackets "
    "(`- - - - x`, `((((x))))`, or `a + b + c + ...` with thousands of terms). Write it flatter: split long "
    "expressions into named steps of a few terms each, and sum many terms with np.sum over an array"
)


def too_deep(kind: str, stage: str) -> ProgramRejected:
    """The rejection of a program that Python's parser or compiler cannot hold (it runs out of stack)."""
    return ProgramRejected(stage, [Violation("size", 0, 0, TOO_DEEP)], kind)


def _numpy_aliases(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """The names the program binds to numpy (``import numpy as np``) or a submodule (``from numpy import linalg``),
    each with the names allowed after it."""
    aliases: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "numpy":
                    aliases[alias.asname or "numpy"] = NUMPY_NAMES
        elif isinstance(node, ast.ImportFrom) and node.module == "numpy" and not node.level:
            for alias in node.names:
                if alias.name in NUMPY_SUBMODULES:
                    aliases[alias.asname or alias.name] = NUMPY_SUBMODULES[alias.name]
    return aliases


# ------------------------------------------------------------------------------ constants too big to compute

MAX_CONSTANT_BITS = 65_536
"""Largest integer a constant expression may make (about 19,700 digits); ``2 ** 10 ** 10`` takes minutes."""
MAX_CONSTANT_ITEMS = 10_000_000
"""Most items a constant repeat may make (``[0] * n``, ``'a' * n``)."""


class _Huge(Exception):
    """A constant expression whose value is too big to compute; ``str()`` says how big and what to do."""


@dataclass(frozen=True)
class _Const:
    """What the static check knows of a constant expression: a number's value, or a sequence's length."""

    number: int | float | None = None
    length: int | None = None


def _bits(value: int | float | None) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _huge_number(bits: float) -> _Huge:
    digits = f"about {bits * math.log10(2):,.0f}" if bits < 1e15 else "more than a million billion"
    return _Huge(
        f"this constant expression makes an integer of {digits} digits (at most "
        f"{MAX_CONSTANT_BITS * math.log10(2):,.0f}): numbers like it take long to compute and mean nothing as a "
        "reward; write large numbers as floats (1e30) and keep exponents small"
    )


def _repeat(length: int, count: int | float | None) -> _Const | None:
    if not isinstance(count, int):
        return None
    items = length * max(count, 0)
    if items > MAX_CONSTANT_ITEMS:
        raise _Huge(
            f"this constant expression repeats a sequence into {items:,} items (at most {MAX_CONSTANT_ITEMS:,}); "
            "build arrays of the size you need with np.zeros or np.full"
        )
    return _Const(length=items)


def _result_bits(op: ast.operator, x: int, y: int) -> float:
    """An upper estimate of the bits of ``x op y`` for integers, computed without computing it."""
    if isinstance(op, ast.Pow) and y > 0 and abs(x) > 1:
        return math.inf if y > 2**64 else y * math.log2(abs(x))
    if isinstance(op, ast.LShift) and x and y > 0:
        return math.inf if y > 2**64 else _bits(x) + y
    if isinstance(op, ast.Mult):
        return _bits(x) + _bits(y)
    return max(_bits(x), _bits(y)) + 1


def _binop(op: ast.operator, a: _Const, b: _Const) -> _Const | None:
    x, y = a.number, b.number
    if isinstance(op, ast.Mult) and (a.length is not None or b.length is not None):
        return _repeat(a.length, y) if a.length is not None else _repeat(b.length or 0, x)
    if isinstance(op, ast.Add) and a.length is not None and b.length is not None:
        return _Const(length=a.length + b.length)
    if x is None or y is None or type(op) not in _OPERATORS:
        return None
    if isinstance(x, int) and isinstance(y, int):
        bits = _result_bits(op, x, y)
        if bits > MAX_CONSTANT_BITS:
            raise _huge_number(bits)
    try:
        value = _OPERATORS[type(op)](x, y)
    except (ArithmeticError, ValueError, TypeError):  # what Python would raise at once when it runs
        return None
    return _Const(number=value) if isinstance(value, int | float) else None


_OPERATORS = {
    ast.Add: lambda x, y: x + y,
    ast.Sub: lambda x, y: x - y,
    ast.Mult: lambda x, y: x * y,
    ast.Pow: lambda x, y: x**y,
    ast.LShift: lambda x, y: x << y,
    ast.FloorDiv: lambda x, y: x // y,
    ast.Mod: lambda x, y: x % y,
    ast.Div: lambda x, y: x / y,
}


def _unary(op: ast.unaryop, value: int | float | None) -> _Const | None:
    if isinstance(op, ast.USub) and value is not None:
        return _Const(number=-value)
    if isinstance(op, ast.UAdd) and value is not None:
        return _Const(number=value)
    if isinstance(op, ast.Invert) and isinstance(value, int):
        return _Const(number=~value)
    return None


def _const(node: ast.AST, memo: dict[int, _Const | None]) -> _Const | None:
    """What is known of ``node``'s value before it runs (None: not a constant); raises ``_Huge`` for a value too
    big to compute. Each node is worked out once (``memo``), so the check stays linear in the program's size."""
    key = id(node)
    if key in memo:
        return memo[key]
    out: _Const | None = None
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, int | float):
            out = _Const(number=v)
        elif isinstance(v, str | bytes):
            out = _Const(length=len(v))
    elif isinstance(node, ast.Tuple | ast.List) and not any(isinstance(e, ast.Starred) for e in node.elts):
        out = _Const(length=len(node.elts))
    elif isinstance(node, ast.UnaryOp):
        inner = _const(node.operand, memo)
        out = _unary(node.op, inner.number) if inner is not None else None
    elif isinstance(node, ast.BinOp):
        left, right = _const(node.left, memo), _const(node.right, memo)
        if left is not None and right is not None:
            out = _binop(node.op, left, right)
    memo[key] = out
    return out


def check_source(source: str, kind: str = "reward") -> ast.Module:
    """Parse ``source`` and check it against the contract for ``kind`` ('reward' or 'fitness').

    Returns the parsed module; raises ``ProgramRejected`` listing every broken rule.
    """
    if kind not in ENTRY_POINTS:
        raise ValueError(f"kind must be one of {sorted(ENTRY_POINTS)}, not {kind!r}")
    if not source.strip():
        raise ProgramRejected("static check", [Violation("entry point", 1, 1, "the program is empty")], kind)
    if len(source) > 100_000:
        raise ProgramRejected(
            "static check", [Violation("size", 1, 1, "the program is longer than 100,000 characters")], kind
        )
    try:
        tree = parse_module(source, f"<{kind}>")
    except SyntaxError as e:
        text = one_line((e.text or "")[:200].strip()[:60])
        v = Violation("syntax", e.lineno or 0, e.offset or 0, f"Python cannot parse it: {cap(e.msg)}", text)
        raise ProgramRejected("parse", [v], kind) from None
    except (RecursionError, MemoryError):  # the parser's own stack ran out (MemoryError says nothing more)
        raise too_deep(kind, "parse") from None
    except ValueError as e:  # a NUL character
        v = Violation("syntax", 1, 1, f"Python cannot parse it: {exception_text(e)}")
        raise ProgramRejected("parse", [v], kind) from None

    checker = _Checker(source_lines(source), _numpy_aliases(tree))
    for stmt in tree.body:
        if not isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.AnnAssign, ast.Expr)) or (
            isinstance(stmt, ast.Expr)
            and not (isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str))
        ):
            checker.flag(
                stmt, "module level", "only imports, constants and function definitions may stand at module level"
            )
    try:
        checker.visit(tree)
    except RecursionError:
        raise too_deep(kind, "static check") from None

    name, params = ENTRY_POINTS[kind]
    defs = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == name]
    if not defs:
        checker.add(Violation("entry point", 1, 1, f"there is no top-level `def {name}({', '.join(params)}):`"))
    else:
        fn = defs[-1]
        args = fn.args
        positional = [a.arg for a in args.posonlyargs + args.args]
        required = len(positional) - len(args.defaults)
        if required > len(params) or (len(positional) < len(params) and args.vararg is None):
            checker.flag(fn, "entry point", f"`{name}` must take exactly ({', '.join(params)})")
    if checker.violations:
        raise ProgramRejected("static check", checker.violations, kind, more=checker.more)
    return tree
