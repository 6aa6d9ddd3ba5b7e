"""The package's import graph, its layering rules, and the diagram in docs/ARCHITECTURE.md.

Every ``import`` of a ``clinic_portal`` module counts, at module level and inside functions (an
import hidden in a function to dodge a cycle is still an arrow). Each module is a node
``package:layer``: its domain package (``auth``, ``patients``, ...; ``core`` for the top-level
modules) and its layer, from the bottom up:

=============  ==========================================================================
foundation     core helpers every layer may use (config, db, timeutil, records, signals, mail)
definitions    plain tables of clinical definitions (``analytics.targets``)
compute        pure computation on plain data: numba kernels and the analytics API, pump and
               pattern rules, chart drawing, file importers, device drivers, FHIR mapping
models         SQLModel tables
services       business rules and jobs: flush, audit, never commit
web            blueprints, forms, template helpers, command-line groups
app            the application factory, the scheduler process, the ``flask db`` commands
=============  ==========================================================================

Rules (``tests/test_import_graph.py``):

1. No cycle between modules, and none between ``package:layer`` nodes.
2. An arrow never points up a layer; a model never imports compute code.
3. A web module never imports another package's blueprint (``views``) module.

Run ``python -m tests.import_graph`` to rewrite the diagram in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "clinic_portal"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
BEGIN, END = "<!-- import-graph:begin -->", "<!-- import-graph:end -->"

LAYERS = ("foundation", "definitions", "compute", "models", "services", "web", "app")
RANK = {name: i for i, name in enumerate(LAYERS)}

_CORE_LAYERS = {
    "clinic_portal": "app",
    "clinic_portal.cli": "app",
    "clinic_portal.scheduler": "app",
    "clinic_portal.models": "models",
}
_DEFINITIONS = ("clinic_portal.analytics.targets",)
_COMPUTE = (
    "clinic_portal.analytics.kernels",
    "clinic_portal.analytics.simd",
    "clinic_portal.analytics.api",
    "clinic_portal.analytics.pump",
    "clinic_portal.analytics.patterns",
    "clinic_portal.analytics.pattern_thresholds",
    "clinic_portal.reports.charts",
    "clinic_portal.upload_station.importers",
    "clinic_portal.upload_station.drivers",
    "clinic_portal.fhir.mapping",
)
_WEB_NAMES = ("views", "forms", "cli", "access", "login")


def _within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def is_views(module: str) -> bool:
    """A blueprint module (``views`` or ``*_views``)."""
    last = module.rsplit(".", 1)[-1]
    return last == "views" or last.endswith("_views")


@dataclass(frozen=True, slots=True)
class Node:
    package: str
    layer: str

    def __str__(self) -> str:
        return f"{self.package}:{self.layer}"


def classify(module: str) -> Node:
    """The ``package:layer`` node of a module."""
    parts = module.split(".")
    if len(parts) <= 2 and not (len(parts) == 2 and (ROOT / PACKAGE / parts[1]).is_dir()):
        return Node("core", _CORE_LAYERS.get(module, "foundation"))
    package = parts[1]
    if package == "web":
        return Node(package, "web")
    if _within(module, _DEFINITIONS):
        return Node(package, "definitions")
    if _within(module, _COMPUTE):
        return Node(package, "compute")
    last = parts[-1]
    if last == "models":
        return Node(package, "models")
    if last in _WEB_NAMES or is_views(module):
        return Node(package, "web")
    return Node(package, "services")


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package under ``root`` by dotted name."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or ``module.attribute``) names."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the package's modules it imports (every import statement, any depth)."""
    known = modules(root)
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base]) if base else ".".join(anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            for target in targets:
                if not target.startswith(PACKAGE):
                    continue
                resolved = _resolve(target, known)
                if resolved and resolved != module:
                    edges[module].add(resolved)
    return dict(edges)


def node_edges(edges: dict[str, set[str]]) -> dict[Node, set[Node]]:
    out: dict[Node, set[Node]] = defaultdict(set)
    for source, targets in edges.items():
        for target in targets:
            a, b = classify(source), classify(target)
            if a != b:
                out[a].add(b)
    return dict(out)


def find_cycle(graph: dict[str, set[str]] | dict[Node, set[Node]]) -> list[object] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or ``None``."""
    state: dict[object, int] = {}
    stack: list[object] = []

    def visit(node: object) -> list[object] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ()), key=str):  # type: ignore[call-overload]
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph, key=str):
        if start not in state and (found := visit(start)):
            return found
    return None


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Arrows the layering forbids (rules 2 and 3), one line each."""
    found = []
    for source, targets in sorted(edges.items()):
        a = classify(source)
        for target in sorted(targets):
            b = classify(target)
            if RANK[b.layer] > RANK[a.layer]:
                found.append(f"{source} ({a}) imports {target} ({b}): points up a layer")
            elif a.layer == "models" and b.layer == "compute":
                found.append(f"{source} ({a}) imports {target} ({b}): a model imports compute")
            elif a.layer == "web" and is_views(target) and a.package != b.package:
                found.append(f"{source} imports {target}: another package's blueprint")
    return found


def mermaid(edges: dict[str, set[str]]) -> str:
    """The ``package:layer`` graph as a Mermaid flowchart, layers as rows from the top. Arrows
    into ``core:foundation`` (which everything may use) are left out to keep it readable."""
    graph = node_edges(edges)
    nodes = {classify(m) for m in modules()} | set(graph)
    lines = ["```mermaid", "flowchart TD"]
    for layer in reversed(LAYERS):
        members = sorted((n for n in nodes if n.layer == layer), key=str)
        if not members:
            continue
        lines.append(f"  subgraph {layer}")
        lines += [f'    {n.package}_{n.layer}["{n}"]' for n in members]
        lines.append("  end")
    for a in sorted(graph, key=str):
        for b in sorted(graph[a], key=str):
            if b == Node("core", "foundation"):
                continue
            lines.append(f"  {a.package}_{a.layer} --> {b.package}_{b.layer}")
    lines.append("```")
    return "\n".join(lines)


def documented_graph() -> str:
    text = DOC.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()


def write_doc() -> None:
    text = DOC.read_text()
    before, rest = text.split(BEGIN, 1)
    _old, after = rest.split(END, 1)
    DOC.write_text(f"{before}{BEGIN}\n{mermaid(import_edges())}\n{END}{after}")


if __name__ == "__main__":
    write_doc()
    sys.stdout.write(f"rewrote the import graph in {DOC.relative_to(ROOT)}\n")
