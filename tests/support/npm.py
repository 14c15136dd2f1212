"""npm packages the live client tests run (Claude Code, the TypeScript SDK), installed once, pinned.

Each package goes into its own prefix under var/npm/ (ignored by git), keyed by name and version, so
`make test` on a fresh clone installs it itself and later runs reuse it. Without npm the tests are
skipped with a loud reason; in CI (CI=true) they fail instead, so they cannot go missing silently.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "var" / "npm"
INSTALL_TIMEOUT = 600


def require_npm() -> str:
    """Return npm's path, or skip (fail in CI) when there is none."""
    npm = shutil.which("npm")
    if npm is None:
        reason = "npm is not installed: live Claude Code and TypeScript SDK tests need it (apt install npm)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return npm


def install(package: str, version: str) -> Path:
    """Install package@version (once) and return its node_modules folder."""
    npm = require_npm()
    prefix = CACHE / f"{package.replace('/', '+')}@{version}"
    modules = prefix / "node_modules"
    stamp = prefix / ".installed"
    if stamp.exists():
        return modules
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"{package}@{version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    stamp.write_text(version + "\n")
    return modules


def run_script(source: str, args: list[str], modules: Path, workdir: Path) -> dict:
    """Run a Node script that prints one JSON line of results, with modules on NODE_PATH; return it."""
    script = workdir / "client.cjs"
    script.write_text(source)
    proc = subprocess.run(
        ["node", str(script), *args],
        env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(modules), "HOME": str(workdir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
