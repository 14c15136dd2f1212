"""The `gateway` command through click's CliRunner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from gateway.store import billing, keys
from gateway.store.billing import Hold
from gateway.store.tables import api_keys, holds, ledger_entries, usage_records, users
from tests.support.app import PRICED, chat, services
from tests.support.cli import cli_runner
from tests.support.console import csrf_token


@pytest.fixture
def cli(db_url, monkeypatch, tmp_path):
    """Run `gateway …` against the store under test; asserts exit status 0 unless told otherwise."""
    return cli_runner(db_url, monkeypatch, tmp_path)


@pytest.fixture
def app(make_app, cli):
    """An app on the same store as the CLI, with a priced mock model."""
    return make_app(providers=PRICED)


def show(cli, email: str) -> dict:
    return json.loads(cli("users", "show", email, "--json").stdout)


def ledger(app, user_id: int) -> list[tuple[int, str]]:
    with services(app).db.session_scope() as conn:
        rows = conn.execute(
            select(ledger_entries.c.amount_micros, ledger_entries.c.note)
            .where(ledger_entries.c.user_id == user_id)
            .order_by(ledger_entries.c.id)
        )
        return [tuple(r) for r in rows]


def test_db_init_is_idempotent(cli, app):
    cli("db", "init")
    cli("db", "init")
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 1


def test_users_create_and_show_json(cli):
    result = cli("users", "create", " Ada@Example.com ", "--admin", "--unlimited")
    assert "ada@example.com" in result.stdout
    user = show(cli, "ADA@example.com")
    assert user["email"] == "ada@example.com"
    assert (user["balance_micros"], user["held_micros"]) == (0, 0)
    assert user["unlimited"] is True and user["is_admin"] is True
    assert datetime.fromisoformat(user["created_at"]).tzinfo is not None
    assert not any("password" in name or "hash" in name for name in user)


def test_users_show_reads_well_without_json(cli):
    cli("users", "create", "ada@example.com")
    out = cli("users", "show", "ada@example.com").stdout
    assert "ada@example.com" in out and "balance" in out and "0.000000 USD" in out


def test_users_create_refuses_a_taken_email_or_a_bad_one(cli):
    cli("users", "create", "ada@example.com")
    result = cli("users", "create", "ADA@example.com", status=1)
    assert "already exists" in result.output
    assert "not an email" in cli("users", "create", "not-an-email", status=1).output


def test_users_show_unknown_user_fails(cli):
    assert "no user" in cli("users", "show", "nobody@example.com", status=1).output


def test_users_list_shows_every_user(cli):
    cli("users", "create", "ada@example.com")
    cli("users", "create", "bob@example.com", "--unlimited")
    out = cli("users", "list").stdout
    assert "ada@example.com" in out and "bob@example.com" in out and "local@gateway" in out
    listed = json.loads(cli("users", "list", "--json").stdout)
    assert [u["email"] for u in listed] == ["local@gateway", "ada@example.com", "bob@example.com"]


def test_credit_positive_and_negative_writes_ledger_rows(cli, app):
    cli("users", "create", "ada@example.com")
    out = cli("credit", "ada@example.com", "5.5", "--note", "top up").stdout
    assert "5.500000" in out
    cli("credit", "ada@example.com", "-2", "--note", "refund")
    cli("credit", "ada@example.com", "--", "-0.000001")
    user = show(cli, "ada@example.com")
    assert user["balance_micros"] == 3_499_999
    assert ledger(app, user["id"]) == [(5_500_000, "top up"), (-2_000_000, "refund"), (-1, "")]


def test_credit_refuses_a_debit_larger_than_available(cli, app):
    cli("users", "create", "ada@example.com")
    cli("credit", "ada@example.com", "1")
    result = cli("credit", "ada@example.com", "-1.000001", status=1)
    assert "available balance" in result.output
    user = show(cli, "ada@example.com")
    assert user["balance_micros"] == 1_000_000
    assert ledger(app, user["id"]) == [(1_000_000, "")]


@pytest.mark.parametrize("amount", ["abc", "0", "0.0000001", "nan", "1e12"])
def test_credit_rejects_bad_amounts_and_changes_nothing(cli, app, amount):
    cli("users", "create", "ada@example.com")
    cli("credit", "ada@example.com", amount, status=2)
    user = show(cli, "ada@example.com")
    assert user["balance_micros"] == 0
    assert ledger(app, user["id"]) == []


def test_credit_unknown_user_fails(cli):
    assert "no user" in cli("credit", "nobody@example.com", "1", status=1).output


def test_keys_create_prints_key_last_and_list_never_shows_it(cli, app):
    cli("users", "create", "ada@example.com")
    result = cli(
        "keys",
        "create",
        "--user",
        "ada@example.com",
        "--name",
        "laptop",
        "--limit",
        "2.5",
        "--expires",
        "2099-01-31",
        "--models",
        "priced:echo, mock:echo",
    )
    secret = result.stdout.strip().splitlines()[-1]
    assert keys.looks_like_key(secret)
    with services(app).db.session_scope() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_hash == keys.hash_key(secret))).one()
    assert row.limit_micros == 2_500_000
    assert row.allowed_models == "priced:echo,mock:echo"
    assert row.name == "laptop"
    for args in (("keys", "list"), ("keys", "list", "--user", "ada@example.com"), ("keys", "list", "--json")):
        out = cli(*args).output
        assert secret not in out and secret[10:] not in out
        assert secret[:10] in out
    listed = json.loads(cli("keys", "list", "--user", "ada@example.com", "--json").stdout)
    assert [(k["name"], k["limit_micros"], k["state"]) for k in listed] == [("laptop", 2_500_000, "active")]
    assert listed[0]["expires_at"].startswith("2099-01-31T00:00:00")
    assert not any("hash" in name for name in listed[0])


def test_keys_create_without_user_belongs_to_the_local_user(cli, app):
    secret = cli("keys", "create").stdout.strip().splitlines()[-1]
    resp = app.test_client().post(
        "/api/v1/chat/completions", json=chat(), headers={"Authorization": f"Bearer {secret}"}
    )
    assert resp.status_code == 200
    assert "local@gateway" in cli("keys", "list").stdout


def test_keys_create_refuses_unknown_user_and_bad_limits(cli):
    assert "no user" in cli("keys", "create", "--user", "nobody@example.com", status=1).output
    cli("users", "create", "ada@example.com")
    cli("keys", "create", "--user", "ada@example.com", "--limit", "-1", status=2)
    cli("keys", "create", "--user", "ada@example.com", "--expires", "someday", status=2)
    assert json.loads(cli("keys", "list", "--json").stdout) == []


def test_keys_list_for_unknown_user_fails(cli):
    cli("keys", "list", "--user", "nobody@example.com", status=1)


def test_usage_json_lists_rows_after_a_request(cli, app):
    cli("users", "create", "ada@example.com")
    cli("credit", "ada@example.com", "10")
    secret = cli("keys", "create", "--user", "ada@example.com").stdout.strip().splitlines()[-1]
    resp = app.test_client().post(
        "/api/v1/chat/completions",
        json=chat(model="priced:echo", content="one two three"),
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert resp.status_code == 200
    request_id = resp.headers["X-Request-Id"]
    rows = json.loads(cli("usage", "--user", "ada@example.com", "--json").stdout)
    assert len(rows) == 1
    row = rows[0]
    expected = {
        "request_id",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "cost_micros",
        "status",
        "outcome",
        "stream",
        "estimated",
        "latency_ms",
        "ttfb_ms",
        "created_at",
    }
    assert expected <= set(row)
    assert (row["request_id"], row["model"], row["status"], row["outcome"]) == (
        request_id,
        "priced:echo",
        200,
        "ok",
    )
    usage = resp.get_json()["usage"]
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == usage["completion_tokens"] == 3
    assert row["cost_micros"] == usage["prompt_tokens"] * 1 + 3 * 2
    assert row["stream"] is False and row["estimated"] is False
    assert datetime.fromisoformat(row["created_at"]).tzinfo is not None
    assert show(cli, "ada@example.com")["balance_micros"] == 10_000_000 - row["cost_micros"]

    table = cli("usage").stdout
    assert "priced:echo" in table and "ada@example.com" in table
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert json.loads(cli("usage", "--since", tomorrow, "--json").stdout) == []
    assert len(json.loads(cli("usage", "--since", "2000-01-01", "--json").stdout)) == 1
    by_model = json.loads(cli("usage", "--by", "model", "--json").stdout)
    assert by_model == [
        {
            "model": "priced:echo",
            "requests": 1,
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": 3,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cost_micros": row["cost_micros"],
        }
    ]
    by_day = json.loads(cli("usage", "--by", "day", "--json").stdout)
    assert [d["day"] for d in by_day] == [row["created_at"][:10]]
    assert "priced:echo" in cli("usage", "--by", "model").stdout


def test_usage_rejects_bad_dates(cli):
    cli("usage", "--since", "last tuesday", status=2)


def test_holds_sweep_releases_stale_holds(cli, app):
    cli("users", "create", "ada@example.com")
    cli("credit", "ada@example.com", "1")
    cli("keys", "create", "--user", "ada@example.com")
    with services(app).db.session_scope() as conn:
        user_id, key_id = conn.execute(select(api_keys.c.user_id, api_keys.c.id)).one()
        hold = Hold("req-stale-1", user_id, key_id, "priced:echo", 400)
        billing.reserve(conn, hold, datetime.now(UTC) - timedelta(hours=2))
    assert "released 0" in cli("holds", "sweep", "--older-than", "86400").stdout
    assert "released 1" in cli("holds", "sweep", "--older-than", "60").stdout
    user = show(cli, "ada@example.com")
    assert (user["balance_micros"], user["held_micros"]) == (1_000_000, 0)
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(func.count()).select_from(holds)).scalar_one() == 0
        outcome = conn.execute(select(usage_records.c.outcome)).scalar_one()
    assert outcome == "abandoned"


def test_users_password_lets_the_first_admin_sign_in_to_the_console(cli, app):
    cli("users", "create", "root@example.com", "--admin")
    cli("users", "password", "root@example.com", "--password", "short", status=2)
    cli("users", "password", "root@example.com", "--password", "root@example.com", status=2)
    out = cli("users", "password", "root@example.com", "--password", "a long enough secret").stdout
    assert "password set" in out and "a long enough secret" not in out
    with services(app).db.session_scope() as conn:
        stored = conn.execute(
            select(users.c.password_hash).where(users.c.email == "root@example.com")
        ).scalar_one()
    assert stored.startswith("scrypt:") and "a long enough secret" not in stored
    client = app.test_client()
    token = csrf_token(client, "/console/signin")
    form = {"email": "root@example.com", "password": "a long enough secret", "csrf_token": token}
    resp = client.post("/console/signin", data=form)
    assert resp.status_code == 302
    assert client.get("/console/admin/users").status_code == 200


def test_users_signout_ends_every_console_session(cli, app):
    cli("users", "create", "ada@example.com")
    cli("users", "password", "ada@example.com", "--password", "correct horse battery")
    client = app.test_client()
    token = csrf_token(client, "/console/signin")
    form = {"email": "ada@example.com", "password": "correct horse battery", "csrf_token": token}
    assert client.post("/console/signin", data=form).status_code == 302
    assert client.get("/console/keys").status_code == 200
    cli("users", "signout", "ada@example.com")
    assert client.get("/console/keys").status_code == 302
