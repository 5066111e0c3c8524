"""Every JSON this project writes is strict: no bare NaN or Infinity, which the JSON standard, PostgreSQL and most
parsers refuse (a fitness of 1.5e308 once left ``Infinity`` in result.json)."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.responses import JSONResponse

from app.db import make_engine
from workers.sandbox.child import _strict_json
from workers.sandbox.runner import strict_json_loads

ROOT = Path(__file__).resolve().parents[1]
WRITERS = ("dump", "dumps")


def _json_writes(tree: ast.AST) -> list[tuple[ast.AST, bool]]:
    """Each use of json.dump / json.dumps in ``tree``: (node, whether allow_nan=False is passed with it)."""
    found: list[tuple[ast.AST, bool]] = []
    calls: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        strict = any(
            k.arg == "allow_nan" and isinstance(k.value, ast.Constant) and k.value.value is False for k in node.keywords
        )
        for target in [node.func, *node.args]:  # json.dumps(...) or partial(json.dumps, ...)
            if isinstance(target, ast.Attribute) and target.attr in WRITERS and _is_json(target.value):
                found.append((target, strict))
                calls.add(id(target))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in WRITERS and _is_json(node.value) and id(node) not in calls:
            found.append((node, False))  # passed around on its own: its callers cannot be checked
    return found


def _is_json(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "json"


def test_every_json_writer_in_the_project_refuses_nan_and_infinity() -> None:
    checked = 0
    loose = []
    for folder in ("app", "workers", "benchmarks", "envs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node, strict in _json_writes(ast.parse(path.read_text(), str(path))):
                checked += 1
                if not strict:
                    loose.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}")
    assert not loose, f"json.dump(s) without allow_nan=False: {loose}"
    assert checked >= 10


def test_the_json_writers_refuse_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        JSONResponse({"fitness": math.inf})
    engine = make_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.JSON))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert().values(v={"fitness": 1.5e308}))
        with pytest.raises(sa.exc.StatementError, match="Out of range float values are not JSON compliant"):
            conn.execute(table.insert().values(v={"fitness": math.inf}))


def test_a_sandbox_result_with_a_non_finite_number_becomes_a_failure_and_is_refused_when_read() -> None:
    written = json.loads(_strict_json({"isolation": {"network": "x"}, "fitness": {"mean": math.inf}}))
    assert written["outcome"] == "failed" and "non-finite number" in written["error"]
    assert written["isolation"] == {"network": "x"} and "fitness" not in written
    for text in ('{"fitness": Infinity}', '{"fitness": NaN}', '{"fitness": -Infinity}'):
        with pytest.raises(ValueError, match="is not JSON"):
            strict_json_loads(text)
    assert strict_json_loads('{"fitness": 1.5e308}') == {"fitness": 1.5e308}
