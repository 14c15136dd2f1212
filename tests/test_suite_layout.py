"""The test suite's own rules: helpers come from tests/support/, never from a test module or conftest."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(source: str, package: str) -> set[str]:
    """Every module the source imports (late imports too), relative ones resolved against package."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden(names: set[str]) -> list[str]:
    """Return the test modules and conftests among names."""
    return sorted(
        name
        for name in names
        if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith(("test_", "conftest"))
    )


def test_no_file_imports_a_test_module_or_conftest():
    offenders = {}
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(path.relative_to(TESTS.parent).parts[:-1])
        names = forbidden(imported_modules(path.read_text(), package))
        if names:
            offenders[str(path.relative_to(TESTS))] = names
    assert offenders == {}, "import shared helpers from tests.support instead"


def test_late_and_relative_imports_count():
    source = "def f():\n    from tests.conftest import chat\n    from . import test_openai, golden\n"
    assert forbidden(imported_modules(source, "tests.providers")) == [
        "tests.conftest",
        "tests.providers.test_openai",
    ]
