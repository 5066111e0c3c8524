"""Equivalent programs: the same AST once comments, docstrings, formatting and local names are set aside."""

from __future__ import annotations

import ast
import hashlib

from workers.program.syntax import parse_module


class _Normalise(ast.NodeTransformer):
    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        saved = self.names
        self.names = dict(saved)
        for i, a in enumerate(node.args.posonlyargs + node.args.args):
            self.names[a.arg] = f"arg{i}"
            a.arg = f"arg{i}"
        self.generic_visit(node)
        self.names = saved
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Store) and node.id not in self.names:
            self.names[node.id] = f"v{len(self.names)}"
        node.id = self.names.get(node.id, node.id)
        return node


def normalised_hash(source: str) -> str:
    """A hash equal for programs that differ only in comments, docstrings, layout and local variable names."""
    try:
        tree = parse_module(source)
    except SyntaxError:
        return hashlib.sha256(source.encode()).hexdigest()
    if (
        tree.body
        and isinstance(tree.body[0], ast.Expr)
        and isinstance(getattr(tree.body[0], "value", None), ast.Constant)
    ):
        tree.body = tree.body[1:]
    tree = _Normalise().visit(tree)
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()
