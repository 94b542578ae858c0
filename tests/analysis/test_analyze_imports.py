"""The modules of fabscope_analyze form an acyclic import graph, and import at the top.

The graph is read from the source (ast), counting every import statement wherever it stands, so
an import moved into a function to dodge a cycle is still an edge of the cycle. The few imports
inside functions that are there on purpose (the command line loads matplotlib and scipy only for
the command that needs them) are listed in DEFERRED.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from conftest import ANALYSIS_DIR

PACKAGE = "fabscope_analyze"
# (module, imported module) pairs allowed inside a function: loaded only when needed
DEFERRED = {
    ("fabscope_analyze.cli", "fabscope_analyze.accept"),
    ("fabscope_analyze.cli", "fabscope_analyze.compare"),
    ("fabscope_analyze.cli", "fabscope_analyze.nightly"),
    ("fabscope_analyze.cli", "fabscope_analyze.report"),
    ("fabscope_analyze.cli", "fabscope_analyze.trend"),
    ("fabscope_analyze.compare", "fabscope_analyze.plots"),
    ("fabscope_analyze.trend", "fabscope_analyze.plots"),
}


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package under root."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, bool]]:
    """The package's modules that `name` imports: (module, at the top level of the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top = {id(node) for node in tree.body}
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module
            targets = [f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in known else base_name for a in node.names]
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                out.append((target, id(node) in top))
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: {t for t, _ in imports(name, path, known)} for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_import_graph_is_acyclic() -> None:
    graph = import_graph(ANALYSIS_DIR)
    assert "fabscope_analyze.accept" in graph and "fabscope_analyze.report" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_are_at_the_top() -> None:
    known = modules(ANALYSIS_DIR)
    inner = {(name, target) for name, path in known.items() for target, at_top in imports(name, path, known)
             if not at_top}
    assert inner <= DEFERRED, f"imports inside functions: {sorted(inner - DEFERRED)}"


def test_a_cycle_is_found(tmp_path: Path) -> None:
    """The check itself: a copy of the package where the verdict vocabulary imports accept (which
    imports it back), once at the top and once inside a function."""
    shutil.copytree(ANALYSIS_DIR / PACKAGE, tmp_path / PACKAGE)
    verdict = tmp_path / PACKAGE / "verdict.py"
    original = verdict.read_text(encoding="utf-8")
    verdict.write_text(original + "\nfrom fabscope_analyze.accept import evaluate\n", encoding="utf-8")
    cycle = find_cycle(import_graph(tmp_path))
    assert cycle is not None and "fabscope_analyze.verdict" in cycle
    verdict.write_text(original + "\n\ndef late():\n    from fabscope_analyze import accept\n\n    return accept\n",
                       encoding="utf-8")
    assert find_cycle(import_graph(tmp_path)) is not None
