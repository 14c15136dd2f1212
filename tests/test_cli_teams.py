"""`gateway teams …` and the budget commands through click's CliRunner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from gateway.store.periods import next_start
from tests.support.cli import cli_runner


@pytest.fixture
def cli(db_url, monkeypatch, tmp_path):
    """Run `gateway …` against the store under test, with two users (see tests/support/cli.py)."""
    run = cli_runner(db_url, monkeypatch, tmp_path)
    run("users", "create", "ann@example.com")
    run("users", "create", "bob@example.com")
    return run


def as_json(result) -> dict | list:
    return json.loads(result.stdout)


def test_teams_create_add_credit_budget_and_show(cli):
    cli("teams", "create", "research")
    cli("teams", "create", "research", status=1)
    cli("teams", "add", "research", "ann@example.com", "--role", "owner")
    cli("teams", "add", "research", "bob@example.com")
    cli("teams", "credit", "research", "25.5", "--note", "Q4")
    cli("teams", "credit", "research", "-0.5")
    cli("teams", "budget", "research", "--budget", "10", "--period", "month")
    team = as_json(cli("teams", "show", "research", "--json"))
    assert team["balance_micros"] == 25_000_000 and team["held_micros"] == 0
    assert (team["budget_micros"], team["budget_period"], team["period_spent_micros"]) == (
        10_000_000,
        "month",
        0,
    )
    resets = datetime.fromisoformat(team["period_resets_at"])
    assert resets == next_start("month", datetime.now(UTC)) and resets.day == 1
    assert team["members"] == [
        {"email": "ann@example.com", "role": "owner"},
        {"email": "bob@example.com", "role": "member"},
    ]
    text = cli("teams", "show", "research").stdout
    assert "10.000000 USD a month" in text and "bob@example.com (member)" in text
    [listed] = as_json(cli("teams", "list", "--json"))
    assert listed["name"] == "research" and len(listed["members"]) == 2
    assert "research" in cli("teams", "list").stdout


def test_teams_remove_and_errors_name_what_is_wrong(cli):
    cli("teams", "create", "research")
    cli("teams", "add", "research", "ann@example.com")
    assert "no longer work" in cli("teams", "remove", "research", "ann@example.com").stdout
    assert "not a member" in cli("teams", "remove", "research", "ann@example.com", status=1).output
    assert "no team named" in cli("teams", "show", "nope", status=1).output
    assert "no user" in cli("teams", "add", "research", "zed@example.com", status=1).output
    cli("teams", "add", "research", "ann@example.com", "--role", "boss", status=2)
    cli("teams", "budget", "research", "--budget", "5", status=2)  # a budget needs a period
    cli("teams", "budget", "research", "--budget", "none")
    assert as_json(cli("teams", "show", "research", "--json"))["budget_micros"] is None
    cli("teams", "credit", "research", "-1", status=1)  # nothing to take away


def test_team_keys_are_for_members_only(cli):
    cli("teams", "create", "research")
    cli("teams", "add", "research", "ann@example.com")
    result = cli(
        "keys",
        "create",
        "--team",
        "research",
        "--user",
        "ann@example.com",
        "--budget",
        "2",
        "--period",
        "day",
    )
    assert result.stdout.strip().startswith("sk-")
    refused = cli("keys", "create", "--team", "research", "--user", "bob@example.com", status=1)
    assert "member of the team" in refused.output
    assert "sk-" not in refused.stdout
    cli("keys", "create", "--team", "nope", "--user", "ann@example.com", status=1)
    [key] = as_json(cli("keys", "list", "--user", "ann@example.com", "--json"))
    assert key["team_id"] is not None
    assert (key["budget_micros"], key["budget_period"], key["period_spent_micros"]) == (2_000_000, "day", 0)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert key["period_resets_at"].startswith(tomorrow.isoformat())


def test_keys_and_users_budget_commands_set_and_clear(cli):
    result = cli("keys", "create", "--user", "ann@example.com")
    [key] = as_json(cli("keys", "list", "--user", "ann@example.com", "--json"))
    assert key["budget_micros"] is None and key["period_resets_at"] is None
    cli("keys", "budget", str(key["id"]), "--budget", "1.25", "--period", "week")
    [key] = as_json(cli("keys", "list", "--user", "ann@example.com", "--json"))
    assert (key["budget_micros"], key["budget_period"]) == (1_250_000, "week")
    assert datetime.fromisoformat(key["period_resets_at"]).weekday() == 0  # next Monday
    assert "1.250000" in cli("keys", "list").stdout
    cli("keys", "budget", str(key["id"]), "--budget", "none")
    assert as_json(cli("keys", "list", "--json"))[-1]["budget_micros"] is None
    cli("keys", "budget", "9999", "--budget", "1", "--period", "day", status=1)
    cli("keys", "budget", str(key["id"]), status=2)  # --budget is required
    cli("keys", "create", "--budget", "1", status=2)  # without --period
    assert result.stdout.strip().startswith("sk-")

    cli("users", "budget", "ann@example.com", "--budget", "3", "--period", "day")
    user = as_json(cli("users", "show", "ann@example.com", "--json"))
    assert (user["budget_micros"], user["budget_period"], user["period_spent_micros"]) == (
        3_000_000,
        "day",
        0,
    )
    assert user["period_resets_at"] is not None
    assert "3.000000 USD a day" in cli("users", "show", "ann@example.com").stdout
    cli("users", "budget", "ann@example.com", "--budget", "-1", "--period", "day", status=2)
    cli("users", "budget", "ann@example.com", "--budget", "none")
    assert as_json(cli("users", "show", "ann@example.com", "--json"))["budget_micros"] is None


def test_usage_by_team_prints_the_teams_sums(cli):
    cli("teams", "create", "research")
    assert as_json(cli("usage", "--by", "team", "--json")) == []
    assert "TEAM" in cli("usage", "--by", "team").stdout
