"""The library's import graph: no module of vidcap_core imports, directly or through others, a module that
imports it back, counting imports inside functions (which hide a circle from Python until the call).

The graph is read from the source (ast), so it sees every `import` statement wherever it stands; a
submodule importing its own package's `__init__` is not an edge (Python loads the package first anyway),
nor is an import under `if TYPE_CHECKING:` (annotations only: it never runs).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vidcap_core"


def module_files() -> dict[str, Path]:
    """{dotted module name: file} of every module and package of vidcap_core."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def is_type_checking(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of the tree except those inside an `if TYPE_CHECKING:` body (its else branch runs)."""
    found: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if is_type_checking(node):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name an import statement of the module names (`from a import b` names a and a.b)."""
    names: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package
                base = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """{module: the vidcap_core modules it imports}, names resolved to the module that defines them."""
    files = module_files()

    def owner(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = {owner(name) for name in imported_names(module, path) if name.split(".")[0] == "vidcap_core"}
        graph[module] = {t for t in targets if t and t != module and not module.startswith(t + ".")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle_hidden_in_a_function():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_imports_for_annotations_only_are_not_edges():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\ndef f():\n    import c\n")
    imported = {alias.name for node in runtime_nodes(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported == {"b", "c"}


def test_vidcap_core_has_no_import_circle():
    graph = import_graph()
    assert "vidcap_core.features.extract" in graph and "vidcap_core.features.oracle" in graph["vidcap_core.features.extract"]
    assert circles(graph) == [], "modules that import each other (move what both need to a module below them)"


@pytest.mark.parametrize("module", ["vidcap_core.features.extract", "vidcap_core.features.oracle",
                                    "vidcap_core.features.backbones", "vidcap_core.features.jobs"])
def test_each_feature_module_imports_alone(module):
    """In a fresh interpreter, so no earlier import can have loaded what this one needs."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_captioning_does_not_import_scipy_optimize():
    """`vidcap caption` imports vidcap_core.pipeline; scipy.optimize alone costs 0.3-0.5 s of its start
    (features/assignment.py replaces it for the slot tracker)."""
    code = "import sys, vidcap_core.pipeline; print(sorted(m for m in sys.modules if m.startswith('scipy.optimize')))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
