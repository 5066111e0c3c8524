"""Static check of reward and fitness programs: parse, then walk the AST against an allow-list.

Every rejection names the rule, the line and column, and what to do instead, in words a
person or an LLM can act on.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from workers.program.text import MAX_ERROR_TEXT, cap, exception_text, printable

ENTRY_POINTS = {"reward": ("compute_reward", ("state", "action")), "fitness": ("compute_fitness", ("traj",))}

ALLOWED_MODULES = {"numpy", "math"}

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
        super().__init__(cap(self.paragraph(), MAX_ERROR_TEXT))

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
    return printable(text if len(text) <= 60 else text[:57] + "...")


class _Checker(ast.NodeVisitor):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.violations: list[Violation] = []
        self.more = 0

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
            else:
                self._check_attr_name(node, alias.name)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
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

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_attr_name(node, node.attr)
        if isinstance(node.ctx, ast.Store | ast.Del):
            self.flag(
                node,
                "attributes",
                f"setting an attribute (`.{_short(node.attr)} = ...`) is not allowed: the state, np and math are "
                "read-only and values must not outlive a call; keep values in local variables",
            )
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
        tree = ast.parse(source, filename=f"<{kind}>")
    except SyntaxError as e:
        text = printable((e.text or "")[:200].strip()[:60])
        v = Violation("syntax", e.lineno or 0, e.offset or 0, f"Python cannot parse it: {cap(e.msg)}", text)
        raise ProgramRejected("parse", [v], kind) from None
    except (RecursionError, MemoryError, ValueError) as e:
        v = Violation("syntax", 1, 1, f"Python cannot parse it: {exception_text(e)}")
        raise ProgramRejected("parse", [v], kind) from None

    checker = _Checker(source.splitlines())
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
        checker.flag(tree, "size", "the program is nested too deeply")

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
