"""Imports point one way, down: app/ → workers/ → envs/ (DESIGN.md, "Layout"; inside workers/, sandbox/ and engine/ use program/).

workers/ is what a worker runs (the training engine and the sandbox): it must be usable
without the service, so it imports nothing from app/; envs/ is the leaf of both. Inside
app/, the search is layered (rules ← design ← records ← decisions ← machine, with service.py
the facade on top), the API and the dashboard share app/web/ and neither imports the other,
and no module of the product takes part in an import circle, imports inside functions
counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("app", "envs", "prompts", "workers")
FORBIDDEN = {"workers": {"app"}, "envs": {"app", "workers"}, "prompts": {"app", "workers"}}
SEARCH_LAYERS = ("rules", "design", "records", "decisions", "machine")
"""app/search's layers, from the bottom up: each may import only the ones before it (and itself)."""
PURE = {"rules": {"app.db", "sqlalchemy"}, "design": {"app.db", "sqlalchemy"}}
"""What a layer that does no I/O must not import."""
NEIGHBOURS = {"app.api": {"app.dashboard"}, "app.dashboard": {"app.api"}, "app.web": {"app.api", "app.dashboard"}}
"""The API and the dashboard share app/web/; neither borrows from the other."""


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import in ``path``, including imports inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(a.name.split(".")[0], node.lineno) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_modules(root: Path, packages: tuple[str, ...] = PRODUCT) -> dict[str, Path]:
    """Every module of ``packages`` under ``root`` by dotted name (migrations' scripts are not imported)."""
    return {
        module_name(p, root): p
        for package in packages
        for p in sorted((root / package).rglob("*.py"))
        if "migrations/versions" not in p.as_posix()
    }


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(module of the product, line) that ``name`` imports, anywhere in it (inside functions and TYPE_CHECKING too).

    ``from P import x`` imports P (its ``__init__`` runs and ``x`` is read from it) and, when P.x is a module, P.x;
    ``import a.b`` imports a.b."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        for target in targets:
            if target in modules and target != name:
                yield target, node.lineno


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PRODUCT) -> dict[str, dict[str, int]]:
    """Module → {imported module: line of the first such import}."""
    modules = product_modules(root, packages)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(name, path, modules):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def explain(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    """The imports that tie a circle together, as 'a:line imports b'."""
    inside = set(component)
    return "; ".join(
        f"{a}:{line} imports {b}" for a in component for b, line in sorted(graph[a].items()) if b in inside
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for top, line in sorted(imported_packages(path))
        if top in FORBIDDEN[package]
    ]
    assert not wrong, f"{package}/ must not import {sorted(FORBIDDEN[package])}: " + "; ".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from app.config import get_settings\n    import workers.sandbox\n")
    assert imported_packages(module) == {("app", 2), ("workers", 3)}


def test_no_module_of_the_product_takes_part_in_an_import_circle() -> None:
    graph = import_graph()
    found = circles(graph)
    assert not found, "import circles (move the shared piece down, don't hide it in a function): " + " | ".join(
        explain(c, graph) for c in found
    )


def test_the_circle_check_sees_a_circle_through_a_function_and_a_package_init(tmp_path: Path) -> None:
    pkg = tmp_path / "app" / "pkg"
    pkg.mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("def mount():\n    from app.pkg import page\n")
    (pkg / "page.py").write_text("from app.pkg import helper\n")
    (pkg / "helper.py").write_text("X = 1\n")
    (pkg / "a.py").write_text("from app.pkg.b import y\nx = 1\n")
    (pkg / "b.py").write_text("def y():\n    from app.pkg.a import x\n")
    graph = import_graph(tmp_path, ("app",))
    assert circles(graph) == [["app.pkg", "app.pkg.page"], ["app.pkg.a", "app.pkg.b"]]
    assert explain(["app.pkg.a", "app.pkg.b"], graph) == "app.pkg.a:1 imports app.pkg.b; app.pkg.b:2 imports app.pkg.a"


def layer_of(module: str) -> str | None:
    """The layer of a module of app/search ('rules' for app.search.rules.states, and for the layer's package)."""
    parts = module.split(".")
    return parts[2] if len(parts) >= 3 and parts[:2] == ["app", "search"] and parts[2] in SEARCH_LAYERS else None


def layer_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    """Imports of app/search's layers that point up, at the facade, or (from a pure layer) at I/O."""
    wrong = []
    for module, edges in sorted(graph.items()):
        mine = layer_of(module)
        if mine is None:
            continue
        for target, line in sorted(edges.items()):
            theirs = layer_of(target)
            if target == "app.search.service":
                wrong.append(f"{module}:{line} imports {target} (the facade is for callers outside the search)")
            elif theirs is not None and SEARCH_LAYERS.index(theirs) > SEARCH_LAYERS.index(mine):
                wrong.append(f"{module}:{line} imports {target} ({theirs} is above {mine})")
            elif any(target == bad or target.startswith(bad + ".") for bad in PURE.get(mine, ())):
                wrong.append(f"{module}:{line} imports {target} ({mine} does no I/O)")
    return wrong


def test_the_search_layers_import_only_the_layers_below_them() -> None:
    graph = import_graph()
    outside = [m for m in graph if m.startswith("app.search.") and m != "app.search.service" and not layer_of(m)]
    assert not outside, f"every module of app/search belongs to a layer ({', '.join(SEARCH_LAYERS)}): {outside}"
    wrong = layer_violations(graph)
    assert not wrong, "app/search's layers import down only (rules ← design ← records ← decisions ← machine): " + (
        "; ".join(wrong)
    )


def test_the_layer_check_sees_an_import_up_at_the_facade_and_at_io() -> None:
    graph = {
        "app.search.rules.task": {"app.search.machine.steps": 3, "app.search.rules.options": 4},
        "app.search.records.runs": {"app.search.design.diagnostics": 5, "app.search.service": 6},
        "app.search.design.critic": {"app.db.models": 7},
    }
    assert layer_violations(graph) == [
        "app.search.design.critic:7 imports app.db.models (design does no I/O)",
        "app.search.records.runs:6 imports app.search.service (the facade is for callers outside the search)",
        "app.search.rules.task:3 imports app.search.machine.steps (machine is above rules)",
    ]


def own_package_imports(root: Path = ROOT, package: str = "app/search") -> list[str]:
    """'from P import x' statements in a module of package P (or below it): they import P's ``__init__``."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        name = module_name(path, root)
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in ancestors - {"app"}:
                found.append(f"{path.relative_to(root)}:{node.lineno} imports from {node.module}")
    return found


def test_no_module_of_the_search_imports_its_own_package() -> None:
    found = own_package_imports()
    assert not found, "import the module itself ('import app.search.design.offline as offline'): " + "; ".join(found)


def test_the_own_package_check_sees_one(tmp_path: Path) -> None:
    (tmp_path / "app" / "search" / "design").mkdir(parents=True)
    (tmp_path / "app" / "search" / "design" / "a.py").write_text("import os\n\nfrom app.search.design import b\n")
    assert own_package_imports(tmp_path) == ["app/search/design/a.py:3 imports from app.search.design"]


def test_the_layers_are_all_there_and_their_inits_only_say_what_they_hold() -> None:
    search = ROOT / "app" / "search"
    assert sorted(p.name for p in search.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(SEARCH_LAYERS)
    assert sorted(p.name for p in search.glob("*.py")) == ["__init__.py", "service.py"]
    for init in sorted(search.rglob("__init__.py")):
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), (
            f"{init.relative_to(ROOT)} holds code: a package's __init__ only says what it holds, so that its own "
            "modules never import it"
        )


def test_the_api_and_the_dashboard_share_app_web_and_neither_imports_the_other() -> None:
    graph = import_graph()
    wrong = [
        f"{module}:{line} imports {target}"
        for module, edges in sorted(graph.items())
        for target, line in sorted(edges.items())
        for package, banned in NEIGHBOURS.items()
        if module == package or module.startswith(package + ".")
        if any(target == b or target.startswith(b + ".") for b in banned)
    ]
    assert not wrong, "; ".join(wrong)
