"""Running the `gateway` command in tests: click's CliRunner against the store under test."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main

Run = Callable[..., Result]


def cli_runner(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Run:
    """Return run(*args, status=0): `gateway ARGS` on db_url, asserting its exit status; db init is done."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, status: int = 0) -> Result:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == status, result.output
        return result

    run("db", "init")
    return run
