"""The layers of ARCHITECTURE.md hold: a test walks every import under gateway/."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "gateway"

PURE = {
    "config",
    "provider_config",
    "failover",
    "catalog",
    "errors",
    "keys",
    "pricing",
    "sse",
    "providers",
    "metrics",
}
PERSISTENCE = {"db", "models", "billing", "accounts", "usage", "logins", "ratelimit"}
IO = {"upstream"}
ORCHESTRATION = {"relay", "call", "streaming"}
WEB = {"blueprints", "cli"}
WIRING = {"__init__", "wsgi"}
LAYERS = [PURE, PERSISTENCE, IO, ORCHESTRATION, WEB, WIRING]

# Which third-party packages each layer may import; the standard library is always allowed.
FOREIGN = {
    "flask": WEB | WIRING,
    "werkzeug": WEB | WIRING,
    "click": WEB | WIRING,
    "requests": IO,
    "urllib3": IO,
    "sqlalchemy": PERSISTENCE,
    "prometheus_client": {"metrics"},  # observability: counted in memory, read by /metrics
}
# Which of our own modules each layer may import (downward only; I/O and persistence are siblings).
ALLOWED = {
    "pure": PURE,
    "persistence": PURE | PERSISTENCE,
    "io": PURE | IO,
    "orchestration": PURE | PERSISTENCE | IO | ORCHESTRATION,
    "web": PURE | PERSISTENCE | IO | ORCHESTRATION | WEB,
    "wiring": PURE | PERSISTENCE | IO | ORCHESTRATION | WEB | WIRING,
}
NAMES = ["pure", "persistence", "io", "orchestration", "web", "wiring"]


MODULES = sorted(ROOT.rglob("*.py"))


def room(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def layer_of(name: str) -> str:
    for label, members in zip(NAMES, LAYERS):
        if name in members:
            return label
    raise AssertionError(f"gateway/{name} belongs to no layer: add it to tests/test_layers.py")


def imports(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "gateway":
            # "from gateway import keys" imports a room; "from gateway import create_app" the package.
            rooms = {room(p) for p in MODULES}
            found += [f"gateway.{a.name}" if a.name in rooms else "gateway" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def violations(path: pathlib.Path, own: str) -> list[str]:
    """Return every import in path that its room's layer may not make."""
    label = layer_of(own)
    found = []
    for name in imports(path):
        top, _, rest = name.partition(".")
        if top == "gateway":
            target = rest.split(".")[0] if rest else "__init__"
            if target not in ALLOWED[label] and not (own == "blueprints" and target == "blueprints"):
                found.append(f"{own} ({label}) imports gateway.{target}")
        elif top in FOREIGN and own not in FOREIGN[top]:
            found.append(f"{own} ({label}) imports {top}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_respect_layers(path):
    assert violations(path, room(path)) == []


def test_every_room_has_a_layer():
    for path in MODULES:
        layer_of(room(path))


@pytest.mark.parametrize(
    "source, own",
    [
        ("import requests\n", "relay"),
        ("import flask\n", "billing"),
        ("import sqlalchemy\n", "upstream"),
        ("from gateway import relay\n", "pricing"),
        ("from gateway.db import Database\n", "catalog"),
        ("from gateway import create_app\n", "cli"),
    ],
)
def test_walker_catches_a_crossing(tmp_path, source, own):
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    assert violations(bad, own)
