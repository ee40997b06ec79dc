"""Imports inside ``functions/treue`` run one way: handlers → logic → store/providers → errors and core.

The graph is read from the source with ``ast`` (nothing is imported). Every ``import`` and
``from … import`` of a treue module counts, at module level, inside a function or under
``if TYPE_CHECKING:``. The layers, lowest first; a module may import its own layer and the ones below:

    0  leaf      ``treue.errors`` and ``treue.core.*``: domain errors, value types and pure helpers
                 (ids, time parsing, ledger postings, money movements, programs, API keys, audit records)
    1  store     ``treue.store.*`` and ``treue.providers.*``: the only code that talks to AWS or a provider
    2  logic     ``treue.logic.*``: the domain's rules
    3  runtime   ``treue.runtime``: a function's wiring (settings, the stores, caches)
    4  handlers  ``treue.handlers.*``: one module per Lambda function
    5  entry     ``treue.cli``, ``treue.openapi`` and ``treue.client`` (the API client for partners): programs
                 people and ``make`` run, never imported by a function

On top of the layers: no cycle among treue modules (each module is a node; a cycle inside one layer
is as bad as one across layers), and no function-local import of a treue module: a module imports
what it needs at its top. The exceptions are whole modules that load lazily on purpose, named in
``LAZY`` with the reason; the layer and cycle checks cover their lazy imports all the same.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "functions"
PACKAGE = "treue"

LAYERS = (
    ("leaf", ("treue.errors", "treue.core", "treue.routes")),
    ("store", ("treue.store", "treue.providers")),
    ("logic", ("treue.logic",)),
    ("runtime", ("treue.runtime",)),
    ("handlers", ("treue.handlers",)),
    ("entry", ("treue.cli", "treue.openapi", "treue.client")),
)

# Modules whose function-local imports of treue modules are deliberate, with the reason
LAZY = {
    "treue.runtime": "cold start: each function wires, and so imports, only the stores and providers it uses",
    "treue.cli": "each operator command imports only what it runs (`treue --help` loads no store)",
    "treue.openapi": "the document generator loads the API handlers only when it builds the document",
    "treue.core.programs": "cold start: the tier configuration's checks (treue.core.tiers) load only for a "
                           "program with tiers, not with every function that reads a program (and the expiry "
                           "policy's, treue.core.expiry, when a credit asks for its date)",
    "treue.logic.points": "cold start: the earning engine and the rule models load on the first purchase, not "
                          "with the Accrual function's balance or statement reads",
    "treue.handlers.enrollment": "cold start: the welcome bonus (treue.logic.welcome, the earning engine) loads "
                                 "only for a program with enrollment rules in force",
    "treue.store.rules": "cold start: the occasions schedule's listing (treue.store.occasions) loads with rule "
                         "writes only, not with the accruals that read the rules in force",
    "treue.store.tiers": "cold start: the tier review's index shards (treue.core.tiers) load with a tier change "
                         "only, not with every accrual that adds its month's counters",
    "treue.handlers.accrual": "cold start: the awards of activities (treue.logic.awards) load on the first "
                              "activity, a monthly statement's models (treue.handlers.models.statements) on the "
                              "first statement and its CSV and PDF writers (treue.logic.statement_files) on the "
                              "first such answer, not with the Accrual function's purchases, balances or ledger",
}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: str  # the importer's file, from the functions directory
    line: int
    local: bool  # inside a function

    def __str__(self) -> str:
        where = "function-local " if self.local else ""
        return f"{self.importer} → {self.imported} ({where}import, {self.path}:{self.line})"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, known: set[str]) -> list[str]:
    """The treue modules an import statement loads (``from pkg import mod`` names the module ``pkg.mod``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE]
    if node.level:  # relative: from . import x / from ..store import y
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != PACKAGE:
        return []
    out: list[str] = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        target = sub if sub in known else source
        if target not in out:
            out.append(target)
    return out


def edges(root: Path = ROOT) -> list[Edge]:
    found = modules(root)
    known = set(found)
    out = []
    for name, path in found.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        rel = path.relative_to(root.parent).as_posix()

        def walk(node: ast.AST, local: bool, name: str = name, is_package: bool = is_package, rel: str = rel) -> None:
            for child in ast.iter_child_nodes(node):
                inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                if isinstance(child, ast.Import | ast.ImportFrom):
                    for target in _targets(child, name, is_package, known):
                        out.append(Edge(name, target, rel, child.lineno, inner))
                walk(child, inner)

        walk(tree, False)
    return out


def layer_of(name: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    return None


def layer_breaches(graph: list[Edge]) -> list[str]:
    out = []
    for edge in graph:
        low, high = layer_of(edge.importer), layer_of(edge.imported)
        if low is None or high is None:
            continue
        if high > low:
            out.append(f"{edge}: {LAYERS[low][0]} may not import {LAYERS[high][0]}")
    return out


def cycles(graph: list[Edge]) -> list[tuple[list[str], list[str]]]:
    """The strongly connected components of more than one module (or a module importing itself), each
    with one cycle through its first module: ``([a, b, c], [a, b, a])``."""
    succ: dict[str, list[str]] = {}
    for edge in graph:
        succ.setdefault(edge.importer, [])
        if edge.imported not in succ[edge.importer]:
            succ[edge.importer].append(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm (the package is small: recursion is fine)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ.get(v, ()):
            if w not in index:
                connect(w)
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
            if len(component) > 1 or v in succ.get(v, ()):
                components.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            connect(v)
    return [(component, _cycle_through(component, succ)) for component in components]


def _cycle_through(component: list[str], succ: dict[str, list[str]]) -> list[str]:
    """One cycle from the component's first module back to it (breadth-first, inside the component)."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in succ.get(v, ()):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w in members and w not in came_from:
                    came_from[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def local_imports(graph: list[Edge]) -> list[str]:
    return [str(edge) for edge in graph if edge.local and edge.importer not in LAZY]


# ---------------------------------------------------------------- the rules


def test_imports_follow_the_layers():
    breaches = layer_breaches(edges())
    assert not breaches, "imports against the layers:\n" + "\n".join(breaches)


def test_no_import_cycle():
    graph = edges()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(
        f"{' → '.join(cycle)} (the modules {', '.join(component)} import each other):\n    "
        + "\n    ".join(str(e) for e in graph if e.importer in component and e.imported in component)
        for component, cycle in found)


def test_no_function_local_import_of_a_treue_module():
    found = local_imports(edges())
    assert not found, ("function-local imports (import at the module's top, or name the module in LAZY "
                       "with the reason):\n" + "\n".join(found))


def test_every_module_has_a_layer_and_every_lazy_module_still_imports_lazily():
    found = modules()
    assert [m for m in found if m != PACKAGE and layer_of(m) is None] == []
    lazy = {edge.importer for edge in edges() if edge.local}
    assert set(LAZY) <= lazy, f"not lazy any more, take them off LAZY: {sorted(set(LAZY) - lazy)}"


# ---------------------------------------------------------------- the checker itself, on a made-up package


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for directory in {p.parent for p in (tmp_path / PACKAGE).rglob("*.py")}:
        (directory / "__init__.py").touch()
    return tmp_path


def test_the_checker_finds_upward_imports_cycles_and_local_imports(tmp_path):
    root = _package(tmp_path, {
        "errors.py": "",
        "store/a.py": "from treue.logic import b\n",  # store → logic: against the layers
        "logic/b.py": "def f():\n    from treue.store import a\n",  # local import; with the above, a cycle
        "logic/c.py": "from . import d\n",  # relative imports resolve; c ↔ d is a cycle inside one layer
        "logic/d.py": "from .c import thing\n",
        "handlers/h.py": "from treue.logic import b\nfrom treue import errors\n",  # fine
    })
    graph = edges(root)
    assert {(e.importer, e.imported, e.local) for e in graph} == {
        ("treue.store.a", "treue.logic.b", False), ("treue.logic.b", "treue.store.a", True),
        ("treue.logic.c", "treue.logic.d", False), ("treue.logic.d", "treue.logic.c", False),
        ("treue.handlers.h", "treue.logic.b", False), ("treue.handlers.h", "treue.errors", False),
    }
    assert [b.split(" (")[0] for b in layer_breaches(graph)] == ["treue.store.a → treue.logic.b"]
    assert sorted(cycles(graph)) == [
        (["treue.logic.b", "treue.store.a"], ["treue.logic.b", "treue.store.a", "treue.logic.b"]),
        (["treue.logic.c", "treue.logic.d"], ["treue.logic.c", "treue.logic.d", "treue.logic.c"])]
    assert [s.split(" (")[0] for s in local_imports(graph)] == ["treue.logic.b → treue.store.a"]
