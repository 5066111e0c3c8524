"""RL Zoo's Python-text settings (``policy_kwargs: "dict(log_std_init=-2, activation_fn=nn.ReLU, ...)"``) read as
literals: a bounded walk over the parsed expression that takes dict calls, mappings, lists, numbers, booleans, text
and ``nn.<Name>`` (as the name), and refuses everything else. Nothing is evaluated (RL Zoo itself calls ``eval``)."""

from __future__ import annotations

import ast
from typing import Any

from workers.program.syntax import parse_expression

TEXT_CHARS = 1000
"""The longest such text read."""
DEPTH = 6
"""The deepest nesting read (RL Zoo's deepest: ``net_arch=[dict(pi=[...])]``, 3)."""


def _literal(node: ast.AST, depth: int = 0) -> Any:
    """A value of RL Zoo's ``"dict(...)"`` text: dict calls, mappings, lists, numbers, booleans, text and
    ``nn.<Name>`` (as its name); anything else (a call, a variable, an operator) is refused, never run."""
    if depth > DEPTH:
        raise ValueError("it nests too deeply")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(k.arg is None for k in node.keywords):
            raise ValueError("'**' is not read")
        return {k.arg: _literal(k.value, depth + 1) for k in node.keywords}
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
        return {k.value: _literal(v, depth + 1) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[union-attr]
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e, depth + 1) for e in node.elts]
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float | str):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("nn", "th", "torch"):
        return node.attr
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "nn":
        return node.attr
    raise ValueError(
        f"'{ast.unparse(node)[:40]}' is not a literal (only dict(...), lists, numbers, True/False and "
        "nn.<Activation> are read)"
    )


def read_mapping(text: str) -> dict[str, Any]:
    """The mapping ``text`` writes, or ValueError saying why it cannot be read (too long, not Python, not a literal,
    not a mapping)."""
    if len(text) > TEXT_CHARS:
        raise ValueError(f"is longer than {TEXT_CHARS} characters")
    try:
        out = _literal(parse_expression(text.strip()))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ValueError(f"cannot be read as dict(...): {e}") from None
    if not isinstance(out, dict):
        raise ValueError("must be a mapping, or RL Zoo's text 'dict(...)'")
    return out
