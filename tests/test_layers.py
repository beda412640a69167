"""The import graph of the package: no cycles, and the layers of docs/design.md ("Layers").

Every import that runs counts, at module level or inside a function; imports under
``if TYPE_CHECKING:`` (annotations only) do not. Function-level imports of retain's own modules
are for loading late what `import retain` must not load (threads, the run machinery, the
optional backends); each says why in a comment on its line or above it in its function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import retain

PACKAGE = Path(retain.__file__).parent

#: Lowest first. A module may import modules of its own layer or below, never above.
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", ["retain._errors", "retain._log", "retain._sentinel", "retain._version", "retain._words", "retain._fs",
                    "retain._threads", "retain._timestamps", "retain._host", "retain._provenance", "retain.modules",
                    "retain.codecs", "retain.identity"]),
    ("model", ["retain.config", "retain.versions", "retain.element", "retain.query"]),
    ("storage", ["retain.storage"]),
    ("index", ["retain._settings", "retain.index"]),
    ("interface", ["retain._annotations", "retain._baselines", "retain._diff", "retain._metrics", "retain._html", "retain.interface",
                   "retain.collection", "retain._table", "retain._get"]),
    ("runs", ["retain.runs"]),
    ("component", ["retain.component"]),
    ("execution", ["retain.execution"]),
    ("verbs", ["retain._api", "retain._cached", "retain._gc", "retain._grid", "retain._health", "retain._lifecycle",
               "retain._stale", "retain._syntax", "retain._transfer", "retain"]),
    ("clients", ["retain.cli", "retain.ui", "retain.testing", "retain.integrations"]),
]


def layer_of(module: str) -> int:
    """The layer of `module`: that of the longest prefix listed (``retain``: the package's
    ``__init__`` alone)."""
    best, found = -1, -1
    for number, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = prefix != "retain" and module.startswith(prefix + ".")
            if (module == prefix or inside) and len(prefix) > best:
                best, found = len(prefix), number
    assert found >= 0, f"{module} is in no layer of LAYERS (tests/test_layers.py): add it"
    return found


class Import:
    __slots__ = ("source", "target", "line", "in_function", "reason")

    def __init__(self, source: str, target: str, line: int, in_function: bool, reason: bool) -> None:
        self.source, self.target, self.line = source, target, line
        self.in_function, self.reason = in_function, reason

    def __repr__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("retain", *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports() -> list[Import]:
    """Every run-time import of one retain module by another."""
    known = modules()
    out: list[Import] = []
    for name, path in known.items():
        text = path.read_text()
        lines = text.splitlines()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]

        def visit(node: ast.AST, in_function: bool, start: int = 0) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt) and _is_type_checking(child):
                    for other in child.orelse:  # type: ignore[attr-defined]
                        visit(other, in_function, start)
                    continue
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(child, package, known):
                        if target != name:
                            line = child.lineno
                            # A comment on the line, or between the function's start and it.
                            above = lines[max(0, line - 4) if not in_function else start - 1:line - 1]
                            reason = "#" in lines[line - 1] or any("#" in text for text in above)
                            out.append(Import(name, target, line, in_function, reason))
                function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                visit(child, in_function or function, child.lineno if function else start)

        visit(ast.parse(text), False)
    return out


def _targets(node: ast.Import | ast.ImportFrom, package: str, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if node.level:
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target not in known:
        return []
    # `from pkg import module` imports that module; `from pkg import name`, the package.
    submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known]
    names = len(submodules) < len(node.names)
    return submodules + ([target] if names else [])


def cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    edges = imports()
    found = cycles(edges)
    described = [
        "  " + " <-> ".join(group) + "\n" + "\n".join(
            f"    {edge!r}" for edge in edges if edge.source in group and edge.target in group
        )
        for group in found
    ]
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(described)


def test_lower_layers_never_import_upper_ones() -> None:
    upward = [
        f"{edge!r} ({LAYERS[layer_of(edge.source)][0]} imports {LAYERS[layer_of(edge.target)][0]})"
        for edge in imports() if layer_of(edge.target) > layer_of(edge.source)
    ]
    assert not upward, "imports that go up a layer:\n  " + "\n  ".join(upward)


def test_function_level_imports_of_retain_say_why() -> None:
    silent = [repr(edge) for edge in imports() if edge.in_function and not edge.reason]
    assert not silent, (
        "function-level imports of retain modules without a reason (a comment on the line or "
        "above it in its function; or import at module level):\n  " + "\n  ".join(silent)
    )


def test_the_graph_sees_function_level_imports_and_cycles() -> None:
    """The checks above can fail: a function-level import closing a loop is found."""
    edges = [Import("a", "b", 1, False, False), Import("b", "a", 2, True, False), Import("b", "c", 3, False, False)]
    assert cycles(edges) == [["a", "b"]]
    graph = {edge.target for edge in imports() if edge.source == "retain.component"}
    assert "retain.runs.status" in graph  # imported inside `Component.execution`
