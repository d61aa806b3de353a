"""A static import graph of our packages, read with `ast` (nothing is imported), for the layering test.

`edges` holds every `import` and `from … import` in a module, wherever it sits (module level, inside a
function, under TYPE_CHECKING): a lazy import is still a dependency, and a type-only one still ties the
rooms together, so circles are looked for there. `load_edges` holds only what runs when the module is
imported (module level, outside TYPE_CHECKING): what "importing X pulls in torch" is about.
`from pkg import name` counts as an import of `pkg.name` when that is a module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ImportGraph:
    edges: dict[str, set[str]] = field(default_factory=dict)  # our module -> every module it names
    load_edges: dict[str, set[str]] = field(default_factory=dict)  # … that runs on import
    files: dict[str, Path] = field(default_factory=dict)

    def ours(self, name: str) -> bool:
        return name in self.edges

    def reachable(self, start: str) -> set[str]:
        """Every module (ours or third-party) that importing `start` pulls in, through our modules."""
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            for target in self.load_edges.get(module, ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    def cycles(self) -> list[list[str]]:
        """Strongly connected groups of our modules (Tarjan), each a circle of imports."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        found: list[list[str]] = []

        def visit(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            for target in self.edges[node]:
                if not self.ours(target):
                    continue
                if target not in index:
                    visit(target)
                    low[node] = min(low[node], low[target])
                elif target in stack:
                    low[node] = min(low[node], index[target])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in self.edges[node]:
                    found.append(sorted(group))

        for node in sorted(self.edges):
            if node not in index:
                visit(node)
        return found


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def build(root: Path, packages: tuple[str, ...]) -> ImportGraph:
    graph = ImportGraph()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(root, path)
            graph.files[name] = path
            graph.edges[name] = set()
            graph.load_edges[name] = set()
    for name, path in graph.files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, on_load in _imports(tree.body, on_load=True):
            if isinstance(node, ast.Import):
                targets = {alias.name for alias in node.names}
            else:
                base = _absolute(name, is_package, node.level, node.module)
                targets = {f"{base}.{a.name}" if f"{base}.{a.name}" in graph.files else base for a in node.names}
            targets.discard(name)
            graph.edges[name] |= targets
            if on_load:
                graph.load_edges[name] |= targets
    return graph


def _imports(body: list[ast.stmt], on_load: bool):
    """(import node, runs on import?) for every import under these statements."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, on_load
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _imports(node.body, on_load=False)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.body, on_load=False)
            yield from _imports(node.orelse, on_load)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _imports([child], on_load)
                elif isinstance(child, ast.excepthandler):
                    yield from _imports(child.body, on_load)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([target] if target else []))


def top(name: str) -> str:
    return name.split(".")[0]


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")
