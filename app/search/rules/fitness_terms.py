"""What a fitness program asks for, read from its source: which trajectory fields, reduced how, in which direction.

The offline designer seeds and mutates reward terms from this (a max of ``z_position``
asks for height; a count of pitch turns asks for spin), and the per-step form of the
fitness (``fitness_signal``) becomes a reward term and the 'fitness used as reward'
baseline of a custom fitness program. Fitness programs are user input: the reader
bounds the source size and the nodes it visits, and never evaluates anything.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from workers.program.syntax import parse_expression, parse_module

MAX_SOURCE_CHARS = 20_000
MAX_NODES = 4_000
"""A program larger than this is read only as far as these bounds reach."""
MAX_SIGNAL_PARTS = 4
MAX_SIGNAL_CHARS = 400

REDUCTIONS = {
    "max": "max",
    "amax": "max",
    "nanmax": "max",
    "min": "min",
    "amin": "min",
    "nanmin": "min",
    "mean": "mean",
    "average": "mean",
    "nanmean": "mean",
    "median": "mean",
    "sum": "sum",
    "nansum": "sum",
    "count_nonzero": "count",
    "any": "count",
    "all": "count",
    "ptp": "range",
    "std": "spread",
    "var": "spread",
}
"""numpy (and builtin) reductions over the time axis, and what they mean for a per-step reward."""

ELEMENTWISE = frozenset({"abs", "absolute", "square", "sqrt", "maximum", "minimum", "clip", "cos", "sin", "tanh"})
"""numpy calls that act per step, so a reduction's argument built from them has a per-step form."""


NOT_BEHAVIOUR = frozenset({"dt"})
"""Fields that scale a fitness but say nothing about what the robot should do."""


@dataclass(frozen=True)
class FieldUse:
    """One place the fitness reads a trajectory field."""

    field: str
    column: int | None
    """The column of a (T, k) field, e.g. 1 for ``traj.angular_velocity[:, 1]``."""
    how: str
    """max, min, mean, sum, count, final, range, spread, or 'other'."""
    sign: float
    """+1 when more of it raises the fitness, -1 when less does (minimised)."""
    absolute: bool = False
    """Read through ``abs`` or a square: its size matters, not its direction."""
    compared: bool = False
    """Inside a comparison (a count of steps above a threshold, say)."""


@dataclass(frozen=True)
class FitnessIntent:
    """What the fitness program rewards, as the designer reads it."""

    uses: tuple[FieldUse, ...] = ()
    signal: str | None = None
    """The fitness as a per-step reward expression over ``state`` (None when it has no per-step form)."""
    notes: tuple[str, ...] = field(default=())

    def reads(self, name: str, *, column: int | None = None) -> list[FieldUse]:
        return [u for u in self.uses if u.field == name and (column is None or u.column == column)]

    def direction(self, name: str, *, column: int | None = None) -> float:
        """+1 when the fitness wants more of the field, -1 less, 0 when it does not read it or only its size."""
        signed = [u.sign for u in self.reads(name, column=column) if not u.absolute]
        return (1.0 if sum(signed) > 0 else -1.0) if signed and sum(signed) != 0 else 0.0


def _call_name(node: ast.AST) -> str | None:
    """'max' for ``np.max(...)``, ``numpy.max(...)`` and ``max(...)``; None for anything else."""
    if not isinstance(node, ast.Call):
        return None
    f = node.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return None


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    out: dict[int, ast.AST] = {}
    seen = 0
    stack = [tree]
    while stack and seen < MAX_NODES:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            out[id(child)] = node
            stack.append(child)
            seen += 1
    return out


def _column(sub: ast.AST | None) -> int | None:
    """1 for ``[:, 1]``; None for anything else."""
    if not isinstance(sub, ast.Subscript) or not isinstance(sub.slice, ast.Tuple) or len(sub.slice.elts) != 2:
        return None
    col = sub.slice.elts[1]
    if isinstance(col, ast.Constant) and isinstance(col.value, int) and not isinstance(col.value, bool):
        return col.value
    return None


def _is_final(sub: ast.AST | None) -> bool:
    """``traj.x[-1]``: the last step."""
    if not isinstance(sub, ast.Subscript):
        return False
    s = sub.slice
    return isinstance(s, ast.UnaryOp) and isinstance(s.op, ast.USub) and isinstance(s.operand, ast.Constant)


def _negates(node: ast.AST, child: ast.AST) -> bool:
    """Whether ``node`` turns the direction of its operand ``child`` around: -x, a - x, a / x."""
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.USub)
    return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Sub, ast.Div)) and node.right is child


def _use(attr: ast.Attribute, parents: dict[int, ast.AST]) -> FieldUse:
    """How the statement around ``traj.<field>`` uses it: the reduction, the direction, abs or comparison."""
    sub = parents.get(id(attr))
    column = _column(sub)
    how = "final" if _is_final(sub) else "other"
    sign, absolute, compared = 1.0, False, False
    child: ast.AST = attr
    node = parents.get(id(attr))
    steps = 0
    while node is not None and not isinstance(node, ast.stmt) and steps < 64:
        steps += 1
        name = _call_name(node)
        if _negates(node, child):
            sign = -sign
        elif isinstance(node, ast.Compare):
            compared = True
            if node.left is not child and isinstance(node.ops[0], (ast.Gt, ast.GtE)):
                sign = -sign  # threshold > field: counts low values
            elif node.left is child and isinstance(node.ops[0], (ast.Lt, ast.LtE)):
                sign = -sign  # field < threshold
        elif name in ("abs", "absolute", "square"):
            absolute = True
        elif name in REDUCTIONS and how == "other":
            how = REDUCTIONS[name]
        child, node = node, parents.get(id(node))
    if compared and how in ("sum", "mean", "other"):
        how = "count"
    return FieldUse(attr.attr, column, how, sign, absolute, compared)


class _ToState(ast.NodeTransformer):
    """Rewrites a per-step fitness expression over ``traj`` into one over ``state``; None when it cannot."""

    def __init__(self, param: str) -> None:
        self.param = param
        self.ok = True

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == self.param:
            return ast.copy_location(ast.Name("state", ast.Load()), node)
        if node.id == "numpy":  # reward programs import numpy as np
            return ast.copy_location(ast.Name("np", ast.Load()), node)
        if node.id not in ("np", "math"):
            self.ok = False  # a helper variable: its per-step form is not known here
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if _is_final(node):  # traj.x[-1] -> the per-step value itself
            return node.value
        if _column(node) is None:  # traj.x[0], traj.x[10:]: steps of the episode, which one step does not have
            self.ok = False
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        one, zero = ast.Constant(1.0), ast.Constant(0.0)
        where = ast.Attribute(ast.Name("np", ast.Load()), "where", ast.Load())
        return ast.copy_location(ast.Call(where, [node, one, zero], []), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        name = _call_name(node)
        if name not in ELEMENTWISE or node.keywords:
            self.ok = False
            return node
        self.generic_visit(node)
        if isinstance(node.func, ast.Name):  # a builtin: only abs has an array form here (np.abs)
            if node.func.id != "abs":
                self.ok = False
            node.func = ast.Attribute(ast.Name("np", ast.Load()), "abs", ast.Load())
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        allowed = (ast.expr, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.slice)
        if not isinstance(node, allowed) or isinstance(node, (ast.Lambda, ast.NamedExpr, ast.Starred)):
            self.ok = False
            return node
        return super().generic_visit(node)


def _signal_parts(fn: ast.FunctionDef, param: str, parents: dict[int, ast.AST], fields: set[str]) -> list[str]:
    """Per-step forms of the reductions in the function, each signed as the fitness uses it."""
    parts: list[str] = []
    seen = 0
    for node in ast.walk(fn):
        seen += 1
        if seen > MAX_NODES or len(parts) >= MAX_SIGNAL_PARTS:
            break
        name = _call_name(node)
        if name not in REDUCTIONS or REDUCTIONS[name] == "spread" or not isinstance(node, ast.Call) or not node.args:
            continue
        arg = node.args[0]
        reads = [a for a in ast.walk(arg) if isinstance(a, ast.Attribute) and a.attr in fields]
        if not reads or any(_call_name(n) in REDUCTIONS for n in ast.walk(arg)):
            continue
        t = _ToState(param)
        converted = t.visit(parse_expression(ast.unparse(arg)))
        if not t.ok:
            continue
        if REDUCTIONS[name] == "range":
            continue
        sign = _sign_from(node, parents)  # the direction of the reduction as a whole
        text = ast.unparse(converted)
        parts.append(f"({text})" if sign > 0 else f"-({text})")
    return parts


def _sign_from(node: ast.AST, parents: dict[int, ast.AST]) -> float:
    """-1 when ``node`` is negated or subtracted on the way up to its statement, else +1."""
    sign, child, parent, steps = 1.0, node, parents.get(id(node)), 0
    while parent is not None and not isinstance(parent, ast.stmt) and steps < 64:
        steps += 1
        if _negates(parent, child):
            sign = -sign
        child, parent = parent, parents.get(id(parent))
    return sign


def read_fitness(source: str, fields: set[str] | frozenset[str]) -> FitnessIntent:
    """What ``compute_fitness`` in ``source`` reads and how; an empty intent (with a note) when it cannot be read.

    ``fields``: the state fields of the env (others, like ``dt``, are not behaviours).
    """
    if len(source) > MAX_SOURCE_CHARS:
        return FitnessIntent(notes=(f"the fitness program is over {MAX_SOURCE_CHARS:,} characters; not read",))
    try:
        tree = parse_module(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return FitnessIntent(notes=("the fitness program could not be parsed; not read",))
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "compute_fitness"), None)
    if fn is None or not fn.args.args:
        return FitnessIntent(notes=("no compute_fitness(traj) in the fitness program",))
    param = fn.args.args[0].arg
    parents = _parents(fn)
    uses: list[FieldUse] = []
    for count, node in enumerate(ast.walk(fn)):
        if count > MAX_NODES:
            break
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == param
            and node.attr in fields
            and node.attr not in NOT_BEHAVIOUR
        ):
            uses.append(_use(node, parents))
    try:
        parts = _signal_parts(fn, param, parents, set(fields))
    except (RecursionError, ValueError):
        parts = []
    signal = " + ".join(parts) if parts else None
    if signal is not None and len(signal) > MAX_SIGNAL_CHARS:
        signal = None
    return FitnessIntent(tuple(dict.fromkeys(uses)), signal)


def signal_reward(signal: str) -> str:
    """A reward program that pays ``signal`` (a per-step fitness form over ``state``) and nothing else: the
    'fitness used as reward' baseline of a fitness program."""
    return (
        "import numpy as np\n\n\ndef compute_reward(state, action):\n"
        '    """The fitness program\'s per-step form, paid per step."""\n'
        f"    fitness = ({signal}) + np.zeros_like(state.x_velocity)\n"
        '    return fitness, {"fitness": fitness}\n'
    )
