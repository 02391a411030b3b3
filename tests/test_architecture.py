"""The import graph of ``src/reidkit`` has no cycles, counting imports inside functions too (a
deferred import still ties two modules together), between sub-packages and between modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "reidkit"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the reidkit modules (or packages) it imports anywhere in its code."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reidkit"):
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("reidkit")]
            # "from .x import y" names module x.y when that is a module, else module x
            for t in targets:
                if t in modules and t != name:
                    graph[name].add(t)
                    break
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules_or_subpackages():
    graph = import_graph()
    assert len(graph) > 80 and graph["reidkit.cli.track_cmd"]  # the walk found the code
    # A package's __init__ re-exports its modules; a module importing its own package's
    # __init__ is the same package, so module cycles are counted without the __init__ files.
    inits = {m for m in graph if (PACKAGE.parent / Path(*m.split("."))).is_dir()}
    modules = {m: {t for t in ts if t not in inits} for m, ts in graph.items() if m not in inits}
    assert cycles(modules) == []

    def subpackage(m: str) -> str:
        return ".".join(m.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for m, ts in graph.items():
        packages.setdefault(subpackage(m), set()).update(subpackage(t) for t in ts if subpackage(t) != subpackage(m))
    assert cycles(packages) == []
    # the layering docs/architecture.md states, for the numpy-only packages
    for numpy_only in ("reidkit.evaluation", "reidkit.mtmc", "reidkit.tracking", "reidkit.retrieval"):
        assert not packages[numpy_only] & {"reidkit.modeling", "reidkit.engine", "reidkit.inference"}, numpy_only


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
