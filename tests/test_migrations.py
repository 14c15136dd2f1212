"""`gateway db init` brings a database made by an earlier version up to the current schema, keeping rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, MetaData, Table, func, inspect, literal, select, text

from gateway.errors import DuplicateRequestError
from gateway.store import aggregates, billing, migrations
from gateway.store.billing import Hold, UsageRecord
from gateway.store.database import Database
from gateway.store.tables import holds, metadata, usage_daily, usage_hourly, usage_records
from tests.support.app import make_account, services

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _as_before(table: Table) -> Table:
    """The table as versions before issue 12 made it: request_id unique across all users."""
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, unique=c.name == "request_id")
        for c in table.columns
    ]
    return Table(table.name, MetaData(), *columns)


def _uniques(db: Database, table: str) -> list[list[str]]:
    return sorted(u["column_names"] for u in inspect(db.engine).get_unique_constraints(table))


@pytest.fixture
def old_database(make_app):
    """A current database whose holds and usage tables are put back as they were, with a row each."""
    app = make_app()
    acct = make_account(app, email="old@example.com", balance_micros=10_000)
    db = services(app).db
    with db.session_scope() as conn:
        for table in (holds, usage_records):
            conn.execute(text(f"DROP TABLE {table.name}"))
            _as_before(table).create(conn)
        billing.reserve(conn, Hold("kept-hold", acct.user_id, acct.key_id, "mock:echo", 100), NOW)
        billing.reserve(conn, Hold("kept-row", acct.user_id, acct.key_id, "mock:echo", 100), NOW)
        billing.settle(
            conn,
            Hold("kept-row", acct.user_id, acct.key_id, "mock:echo", 100),
            UsageRecord(status=200, outcome="ok", stream=False, cost_micros=7),
            NOW,
        )
    assert _uniques(db, "holds") == [["request_id"]]
    return app, acct


def test_request_ids_become_unique_per_user_and_rows_stay(old_database):
    app, acct = old_database
    db = services(app).db
    for _ in range(2):  # idempotent: db init runs the steps on every start
        with db.session_scope() as conn:
            migrations.scope_request_ids(conn)
    assert _uniques(db, "holds") == [["user_id", "request_id"]]
    assert _uniques(db, "usage_records") == [["user_id", "request_id"]]
    with db.session_scope() as conn:
        assert conn.execute(select(holds.c.request_id)).scalars().all() == ["kept-hold"]
        assert conn.execute(select(usage_records.c.cost_micros)).scalars().all() == [7]
    other = make_account(app, email="other@example.com", balance_micros=10_000)
    with db.session_scope() as conn:  # another user may use the same ids now
        billing.reserve(conn, Hold("kept-hold", other.user_id, other.key_id, "mock:echo", 100), NOW)
        billing.reserve(conn, Hold("kept-row", other.user_id, other.key_id, "mock:echo", 100), NOW)
    with pytest.raises(DuplicateRequestError), db.session_scope() as conn:  # the owner still may not
        billing.reserve(conn, Hold("kept-row", acct.user_id, acct.key_id, "mock:echo", 100), NOW)


TEAM_TABLES = {"teams", "team_members", "team_ledger_entries", "budget_alerts"}
BUDGET = {"budget_micros", "budget_period", "period_start", "period_spent_micros", "period_held_micros"}
ADDED = {
    "users": BUDGET,
    "api_keys": BUDGET | {"team_id"},
    "holds": {"team_id"},
    "usage_records": {"team_id"},
}


def _before_teams() -> MetaData:
    """The current tables without what issue 15 added: what an older version created."""
    old = MetaData()
    for table in metadata.sorted_tables:
        if table.name in TEAM_TABLES:
            continue
        dropped = ADDED.get(table.name, set())
        Table(table.name, old, *(c._copy() for c in table.columns if c.name not in dropped))
    return old


def test_migrate_adds_the_team_and_budget_columns_to_an_older_database(db_url):
    db = Database(db_url)
    _before_teams().create_all(db.engine)
    assert "budget_micros" not in {c["name"] for c in inspect(db.engine).get_columns("users")}
    db.create_schema()
    insp = inspect(db.engine)
    for table, columns in ADDED.items():
        assert columns <= {c["name"] for c in insp.get_columns(table)}, table
    assert TEAM_TABLES <= set(insp.get_table_names())
    assert "ix_api_keys_team_id" in {i["name"] for i in insp.get_indexes("api_keys")}
    db.create_schema()  # idempotent
    db.dispose()


def _by_day(conn, table: Table, moment: str) -> dict[tuple, tuple[int, int]]:
    """Requests and cost per (UTC day, user, key, model) of a table of sums, or of the raw rows."""
    requests = table.c.requests if "requests" in table.c else literal(1)
    found: dict[tuple, tuple[int, int]] = {}
    for at, user_id, key_id, model, count, cost in conn.execute(
        select(table.c[moment], table.c.user_id, table.c.key_id, table.c.model, requests, table.c.cost_micros)
    ):
        group = ((at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).date(), user_id, key_id, model)
        before = found.get(group, (0, 0))
        found[group] = (before[0] + count, before[1] + cost)
    return found


# Moments either side of midnights and within one hour, so days, hours and raw rows all differ.
SETTLED = [
    NOW + timedelta(minutes=m) for m in (-721, -720, -5, 0, 30, 59, 60, 11 * 60 + 59, 12 * 60, 12 * 60 + 1)
]


def _settle_everywhere(app, accounts) -> None:
    with services(app).db.session_scope() as conn:
        for i, moment in enumerate(SETTLED):
            acct = accounts[i % len(accounts)]
            hold = Hold(f"r{i}", acct.user_id, acct.key_id, "mock:echo" if i % 3 else "mock:other", 100)
            billing.reserve(conn, hold, moment)
            billing.settle(
                conn, hold, UsageRecord(status=200, outcome="ok", stream=False, cost_micros=i + 1), moment
            )


def test_db_init_sums_an_older_databases_usage_into_days(make_app):
    """A database from before any sums: one db init backfills the hours, then the days from them."""
    app = make_app()
    accounts = [make_account(app, email=f"u{i}@example.com", balance_micros=10**6) for i in range(2)]
    _settle_everywhere(app, accounts)
    db = services(app).db
    with db.session_scope() as conn:
        conn.execute(text("DROP TABLE usage_daily"))
        conn.execute(text("DROP TABLE usage_hourly"))
    for _ in range(2):  # idempotent: a second init adds nothing
        db.create_schema()
        with db.session_scope() as conn:
            raw = _by_day(conn, usage_records, "created_at")
            assert _by_day(conn, usage_daily, "day_at") == raw
    assert len({group[0] for group in raw}) == 3  # three UTC days
    assert sum(requests for requests, _ in raw.values()) == len(SETTLED)
    # A settlement after the backfill adds to the backfilled row of its day (the stamps agree).
    with db.session_scope() as conn:
        hold = Hold("after", accounts[0].user_id, accounts[0].key_id, "mock:other", 100)
        billing.reserve(conn, hold, SETTLED[3])
        billing.settle(
            conn, hold, UsageRecord(status=200, outcome="ok", stream=False, cost_micros=1), SETTLED[3]
        )
    with db.session_scope() as conn:
        raw = _by_day(conn, usage_records, "created_at")
        assert _by_day(conn, usage_daily, "day_at") == raw
        assert conn.execute(select(func.count()).select_from(usage_daily)).scalar_one() == len(raw)


def test_db_init_sums_the_hours_into_days_past_the_retention(make_app):
    """Raw rows pruned, hourly sums kept: the days are backfilled from the hours, not the raw rows."""
    app = make_app()
    accounts = [make_account(app, email="u@example.com", balance_micros=10**6)]
    _settle_everywhere(app, accounts)
    db = services(app).db
    with db.session_scope() as conn:
        conn.execute(text("DROP TABLE usage_daily"))
        hours = _by_day(conn, usage_hourly, "hour_at")
        while aggregates.prune_batch(conn, 1, NOW + timedelta(days=2)):
            pass
        assert _by_day(conn, usage_records, "created_at") == {}
    db.create_schema()
    with db.session_scope() as conn:
        assert _by_day(conn, usage_daily, "day_at") == hours
    assert sum(requests for requests, _ in hours.values()) == len(SETTLED)
