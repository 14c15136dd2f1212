"""The house of ARCHITECTURE.md holds: layers by package name, direction within a layer, no cycles.

Every import counts, wherever it stands: function bodies and TYPE_CHECKING blocks too, since a
cycle hidden behind a late import is still a cycle.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "gateway"

# Lowest first. Within a layer a package may import only the packages listed before it; upstream
# (I/O) and store (persistence) are siblings that never import each other.
LAYERS: list[tuple[str, list[str]]] = [
    ("pure", ["errors", "clock", "config", "providers", "routing", "surfaces"]),
    ("persistence", ["store"]),
    ("io", ["upstream"]),
    ("orchestration", ["observability", "relay"]),
    ("web", ["blueprints", "console", "cli"]),
    ("wiring", ["__init__", "wsgi"]),
]
SIBLINGS = {("persistence", "io"), ("io", "persistence")}
# Which third-party packages each of our packages may import; the standard library is always allowed.
FOREIGN = {
    "flask": {"blueprints", "console", "cli", "__init__"},
    "flask_wtf": {"console"},
    "wtforms": {"console"},
    "werkzeug": {"blueprints", "console", "cli", "__init__"},
    "werkzeug.security": {"store", "blueprints", "console", "cli", "__init__"},  # password hashes
    "click": {"cli"},
    "requests": {"upstream"},
    "urllib3": {"upstream"},
    "sqlalchemy": {"store"},
    "psycopg2": {"store"},
    "prometheus_client": {"observability"},
}
PLACE = {pkg: (n, i, layer) for n, (layer, pkgs) in enumerate(LAYERS) for i, pkg in enumerate(pkgs)}


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = ["gateway", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """gateway.store.billing -> store; gateway -> __init__; gateway.wsgi -> wsgi."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports(path: pathlib.Path, modules: set[str], root: pathlib.Path = ROOT) -> tuple[set[str], set[str]]:
    """Return the gateway modules and the foreign dotted names a file imports, anywhere in it."""
    own, foreign = set(), set()
    me = module_name(path, root)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                base = me.split(".")[: len(me.split(".")) - node.level + (path.name == "__init__.py")]
                node_module = ".".join([*base, node.module])
            else:
                node_module = node.module
            # "from gateway import clock" imports the module gateway.clock; "from gateway.x import y"
            # imports gateway.x (y being a name in it), or gateway.x.y when that is a module.
            subs = [f"{node_module}.{a.name}" for a in node.names]
            names = [s for s in subs if s in modules] or [node_module]
            names += [node_module] if len(names) < len(subs) else []
        for name in names:
            if name == "gateway" or name.startswith("gateway."):
                found = _resolve(name, modules)
                if found:
                    own.add(found)
            else:
                foreign.add(name)
    return own, foreign


def graph(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    """Every module's gateway imports; a package's __init__ importing its own children is wiring."""
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(paths)
    out = {}
    for mod, path in paths.items():
        own, _ = imports(path, modules, root)
        is_init = path.name == "__init__.py"
        out[mod] = {d for d in own if d != mod and not (is_init and d.startswith(mod + "."))}
    return out


def crossing(importer: str, imported: str) -> str | None:
    """Say why one of our modules may not import another, or None when it may."""
    a, b = package_of(importer), package_of(imported)
    if a == b:
        return None
    for pkg in (a, b):
        if pkg not in PLACE:
            return f"gateway/{pkg} belongs to no layer: add it to LAYERS in tests/test_layers.py"
    (la, ia, na), (lb, ib, nb) = PLACE[a], PLACE[b]
    if lb > la or (na, nb) in SIBLINGS or (lb == la and ib > ia):
        return f"{importer} ({na}/{a}) imports {imported} ({nb}/{b})"
    return None


def foreign_crossing(module: str, name: str) -> str | None:
    pkg = package_of(module)
    for top in sorted(FOREIGN, key=len, reverse=True):
        if name == top or name.startswith(top + "."):
            return None if pkg in FOREIGN[top] else f"{module} ({pkg}) imports {name}"
    return None


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


PATHS = sorted(ROOT.rglob("*.py"))
MODULES = {module_name(p) for p in PATHS}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_respect_layers(path):
    module = module_name(path)
    own, foreign = imports(path, MODULES)
    problems = [crossing(module, d) for d in sorted(own)]
    problems += [foreign_crossing(module, name) for name in sorted(foreign)]
    assert [p for p in problems if p] == []


def test_every_package_has_a_layer():
    assert {package_of(m) for m in MODULES} - set(PLACE) == set()


def test_no_import_cycle_anywhere():
    assert cycles(graph()) == []


@pytest.mark.parametrize(
    "importer, imported",
    [
        ("gateway.relay.pipeline", "gateway.blueprints.chat"),  # upward
        ("gateway.store.billing", "gateway.upstream.transport"),  # siblings
        ("gateway.upstream.transport", "gateway.store.billing"),
        ("gateway.routing.catalog", "gateway.surfaces.openai_chat"),  # within pure, against the order
        ("gateway.providers.base", "gateway.routing.catalog"),
        ("gateway.observability.metrics", "gateway.relay.call"),  # within orchestration
        ("gateway.blueprints.errors", "gateway.console.base"),  # within web
        ("gateway.errors", "gateway.config.settings"),
    ],
)
def test_crossing_catches_a_wrong_direction(importer, imported):
    assert crossing(importer, imported)


@pytest.mark.parametrize(
    "module, name",
    [
        ("gateway.relay.pipeline", "requests"),
        ("gateway.providers.base", "flask"),
        ("gateway.upstream.sse", "sqlalchemy"),
    ],
)
def test_foreign_crossing_catches_a_library_out_of_place(module, name):
    assert foreign_crossing(module, name)


def test_a_late_import_cycle_is_found(tmp_path):
    pkg = tmp_path / "gateway"
    (pkg / "providers").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "providers" / "__init__.py").write_text("")
    (pkg / "providers" / "a.py").write_text("from gateway.providers.b import thing\n")
    (pkg / "providers" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gateway.providers import a\n"
        "def f():\n    from gateway.providers.a import x\n"
    )
    assert cycles(graph(pkg)) == [["gateway.providers.a", "gateway.providers.b"]]
