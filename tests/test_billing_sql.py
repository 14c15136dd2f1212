"""The money and rate-limit statements as the drivers get them: the SQL and values SQLAlchemy gave them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg2

from gateway.store import aggregates, billing, billing_sql, ratelimit
from gateway.store.billing import Hold, UsageRecord
from gateway.store.tables import api_keys, holds, usage_hourly, usage_records
from tests.support.app import make_account, services

PARTS = ("RESERVE_USER", "RESERVE_TEAM", "RESERVE_KEY", "INSERT_HOLD", "CHARGE_USER", "CHARGE_TEAM")
PARTS += ("CHARGE_KEY", "INSERT_USAGE")
# Not on the hour, not on the day: a stored form that dropped or rounded anything would show.
AT = datetime(2026, 11, 30, 9, 41, 7, 123456, tzinfo=UTC)


@pytest.mark.parametrize("name", PARTS)
def test_pyformat_renders_each_statement_as_sqlalchemy_compiles_it_for_psycopg2(name):
    sql = getattr(billing_sql, name).format(after="AND true", where="WHERE true")
    assert billing_sql.pyformat(sql) == str(text(sql).compile(dialect=psycopg2.dialect()))


def test_pyformat_renders_the_rate_limit_upsert_as_sqlalchemy_compiles_it_for_psycopg2():
    sql = ratelimit._ADMIT_SQLITE
    assert ratelimit._ADMIT_PG == str(text(sql).compile(dialect=psycopg2.dialect()))


def test_the_postgresql_statements_keep_no_colon_bind():
    for sql in (billing_sql.RESERVE_PG, billing_sql.SETTLE_PG, billing_sql.pyformat(aggregates.ADD_SQL)):
        assert re.findall(r":\w", sql) == []
        assert "%(b_user)s" in sql


@pytest.mark.parametrize(
    "moment",
    [
        AT,
        AT.replace(microsecond=0),
        AT.replace(tzinfo=None),
        AT.astimezone(timezone(timedelta(hours=5, minutes=30))),
        datetime(5, 1, 2, 3, 4, 5, 6),
    ],
)
def test_sqlite_binds_write_timestamps_as_sqlalchemy_does(moment):
    processor = DateTime(timezone=True).dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    assert processor is not None
    binds: dict[str, object] = {"b_now": moment, "h_day": moment, "b_user": 3, "b_model": "m"}
    assert billing_sql.sqlite_binds(binds) == {
        "b_now": processor(moment),
        "h_day": processor(moment),
        "b_user": 3,
        "b_model": "m",
    }


def test_stored_timestamps_match_sqlalchemys_own_comparisons(app):
    """A query built by SQLAlchemy finds the rows the driver statements wrote, by equal timestamps."""
    acct = make_account(app, email="a@example.com", balance_micros=5000)
    hold = Hold("req-1", acct.user_id, acct.key_id, "mock:echo", 100, created_at=AT)
    record = UsageRecord(status=200, outcome="ok", stream=False, cost_micros=40)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold, AT)
        assert conn.execute(select(holds.c.id).where(holds.c.created_at == AT)).all() != []
        assert billing.settle(conn, hold, record, AT)
        assert conn.execute(select(usage_records.c.id).where(usage_records.c.created_at == AT)).all() != []
        key_used = select(api_keys.c.id).where(api_keys.c.last_used_at == AT)
        assert conn.execute(key_used).all() != []
        hour = AT.replace(minute=0, second=0, microsecond=0)
        sums = select(usage_hourly.c.cost_micros).where(usage_hourly.c.hour_at == hour)
        assert conn.execute(sums).scalars().all() == [40]
