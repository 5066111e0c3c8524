"""Static check of reward and fitness programs: parse, then walk the AST against an allow-list.

Every rejection names the rule, the line and column, and what to do instead, in words a
person or an LLM can act on.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

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

    def __init__(self, stage: str, violations: list[Violation], kind: str = "reward") -> None:
        self.stage = stage
        self.violations = violations
        self.kind = kind
        super().__init__(self.paragraph())

    def paragraph(self) -> str:
        first = self.violations[0]
        lines = [f"The {self.kind} program was rejected at the {self.stage}: {first.explain()}."]
        if len(self.violations) > 1:
            more = "; ".join(v.explain() for v in self.violations[1:5])
            lines.append(f"Also: {more}.")
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


def _snippet(source_lines: list[str], node: ast.AST) -> str:
    line = getattr(node, "lineno", 0)
    if not 0 < line <= len(source_lines):
        return ""
    text = ast.get_source_segment("\n".join(source_lines), node) or source_lines[line - 1].strip()
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker(ast.NodeVisitor):
    def __init__(self, source: str) -> None:
        self.lines = source.splitlines()
        self.violations: list[Violation] = []

    def flag(self, node: ast.AST, rule: str, message: str) -> None:
        self.violations.append(
            Violation(
                rule,
                getattr(node, "lineno", 0),
                getattr(node, "col_offset", 0) + 1,
                message,
                _snippet(self.lines, node),
            )
        )

    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, ALLOWED_NODES):
            advice = NODE_ADVICE.get(type(node), f"`{type(node).__name__}` statements are not allowed")
            self.flag(node, "syntax", advice)
            return
        super().generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                self.flag(
                    node, "imports", f"importing `{alias.name}` is not allowed; only `numpy` and `math` may be imported"
                )
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module not in ALLOWED_MODULES or node.level:
            self.flag(
                node,
                "imports",
                f"importing from `{node.module}` is not allowed; only `numpy` and `math` may be imported",
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
            self.flag(node, "dunder", f"names with double underscores (`{node.id}`) are not allowed")
        self.generic_visit(node)

    def _check_attr_name(self, node: ast.AST, attr: str) -> None:
        if attr.startswith("__"):
            self.flag(node, "dunder", f"dunder attributes (`.{attr}`) are not allowed")
        elif attr.startswith(FORBIDDEN_PREFIXES):
            self.flag(node, "attributes", f"private or interpreter attributes (`.{attr}`) are not allowed")
        elif attr in FORBIDDEN_ATTRIBUTES:
            self.flag(node, "attributes", f"`.{attr}` is not allowed (no file, memory, frame or format access)")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_attr_name(node, node.attr)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.decorator_list:
            self.flag(node.decorator_list[0], "syntax", "decorators are not allowed")
        if node.name.startswith("__"):
            self.flag(node, "dunder", f"function names with double underscores (`{node.name}`) are not allowed")
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
        text = (e.text or "").strip()
        v = Violation("syntax", e.lineno or 0, e.offset or 0, f"Python cannot parse it: {e.msg}", text[:60])
        raise ProgramRejected("parse", [v], kind) from None
    except (RecursionError, MemoryError, ValueError) as e:
        raise ProgramRejected("parse", [Violation("syntax", 1, 1, f"Python cannot parse it: {e}")], kind) from None

    checker = _Checker(source)
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
        checker.violations.append(
            Violation("entry point", 1, 1, f"there is no top-level `def {name}({', '.join(params)}):`")
        )
    else:
        fn = defs[-1]
        args = fn.args
        positional = [a.arg for a in args.posonlyargs + args.args]
        required = len(positional) - len(args.defaults)
        if required > len(params) or (len(positional) < len(params) and args.vararg is None):
            checker.flag(fn, "entry point", f"`{name}` must take exactly ({', '.join(params)})")
    if checker.violations:
        raise ProgramRejected("static check", checker.violations, kind)
    return tree
