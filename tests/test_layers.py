"""The package reads top-down: every import (also those inside functions) points to a lower
layer or stays inside its own part, and no modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "seqdb"

# Top to bottom; a part may import its own modules and any part of a lower layer.
LAYERS = [
    ["__main__"],
    ["cli"],
    ["app", "dashboard", "testing"],
    ["results", "cluster"],
    ["views", "runner"],
    ["search"],
    ["train"],
    ["model", "data", "scaling"],
    ["experiment", "project", "status", "migrations"],
    ["config", "db"],
    ["errors", "hashing", "__init__"],
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}

# The package's own facade: `seqdb.open()` (the notebook API) imports seqdb.app.notebook
# inside the function, so `import seqdb` loads nothing; that one lazy import is allowed.
FACADE = {("seqdb", "seqdb.app.notebook")}


def _module(path: Path) -> str:
    parts = ["seqdb", *path.relative_to(PKG).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "seqdb":
                targets |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "seqdb"}
        graph[_module(path)] = targets
    modules = set(graph)
    return {m: {t for t in ts if t in modules and t != m} for m, ts in graph.items()}


def test_every_part_has_a_layer():
    parts = {_part(m) for m in import_graph()}
    assert parts <= set(RANK), f"give these parts a layer: {sorted(parts - set(RANK))}"


def test_every_import_points_down():
    upward = [f"{m} -> {t}" for m, ts in import_graph().items() for t in ts
              if _part(m) != _part(t) and RANK[_part(t)] <= RANK[_part(m)] and (m, t) not in FACADE]
    assert not upward, f"imports that point up or sideways: {sorted(upward)}"


def test_the_facade_import_is_lazy():
    """The FACADE import is inside a function body, never at module level."""
    tree = ast.parse((PKG / "__init__.py").read_text(encoding="utf-8"))
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)} | {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert not top & {t for _, t in FACADE}, "seqdb/__init__.py must import the notebook API inside seqdb.open()"


def test_no_import_cycles():
    graph, seen, stack, cycles = import_graph(), set(), [], []

    def visit(m: str) -> None:
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in sorted(graph[m]):
            visit(t)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_the_product_never_imports_the_test_harness():
    users = [m for m, ts in import_graph().items() if _part(m) != "testing" and any(_part(t) == "testing" for t in ts)]
    assert not users, users
