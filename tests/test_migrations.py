"""gateway db init brings a database made before teams (issue 15) up to the current schema."""

from __future__ import annotations

from sqlalchemy import MetaData, Table, inspect

from gateway.store.database import Database
from gateway.store.tables import metadata

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
