"""schema.sql (what operators run) and gateway/models.py (what the code uses) describe one schema."""

from __future__ import annotations

import pathlib
import uuid

import pytest
from sqlalchemy import create_engine, inspect, text

from gateway.config.settings import normalise_database_url
from gateway.store.tables import metadata
from tests.support.postgres import require_postgres

SCHEMA_SQL = pathlib.Path(__file__).resolve().parent.parent / "schema.sql"


def _default(value) -> str:
    text_ = str(value)
    # A serial's default names its sequence, which names the schema: compare the kind only.
    return "serial" if text_.startswith("nextval(") else text_.split("::")[0]


def describe(engine, schema: str) -> dict:
    """Every table's columns (type, nullability, default), keys, uniques and indexes."""
    insp = inspect(engine)
    out = {}
    for table in insp.get_table_names(schema=schema):
        out[table] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"], _default(c["default"]))
                for c in insp.get_columns(table, schema=schema)
            },
            "pk": insp.get_pk_constraint(table, schema=schema)["constrained_columns"],
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in insp.get_foreign_keys(table, schema=schema)
            ),
            "uniques": sorted(
                tuple(u["column_names"]) for u in insp.get_unique_constraints(table, schema=schema)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table, schema=schema)
            ),
        }
    return out


@pytest.fixture
def two_schemas():
    base = require_postgres()
    engine = create_engine(normalise_database_url(base))
    names = ["s_sql_" + uuid.uuid4().hex[:8], "s_code_" + uuid.uuid4().hex[:8]]
    with engine.begin() as conn:
        for name in names:
            conn.execute(text(f"CREATE SCHEMA {name}"))
    try:
        yield engine, names
    finally:
        with engine.begin() as conn:
            for name in names:
                conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()


def test_schema_sql_and_models_agree_on_postgresql(two_schemas):
    engine, (from_sql, from_code) = two_schemas
    with engine.begin() as conn:
        conn.execute(text(f"SET search_path TO {from_sql}"))
        conn.exec_driver_sql(SCHEMA_SQL.read_text())
    with engine.begin() as conn:
        conn.execute(text(f"SET search_path TO {from_code}"))
        metadata.create_all(conn)
    sql_side, code_side = describe(engine, from_sql), describe(engine, from_code)
    assert set(sql_side) == set(metadata.tables)
    for table in sorted(sql_side):
        assert sql_side[table] == code_side[table], f"schema.sql and models.py differ on {table}"


def test_schema_sql_can_run_twice(two_schemas):
    engine, (name, _) = two_schemas
    for _ in range(2):
        with engine.begin() as conn:
            conn.execute(text(f"SET search_path TO {name}"))
            conn.exec_driver_sql(SCHEMA_SQL.read_text())
    assert len(inspect(engine).get_table_names(schema=name)) == len(metadata.tables)


def test_create_schema_is_idempotent(db_url):
    from gateway.store.database import Database

    db = Database(db_url)
    db.create_schema()
    db.create_schema()
    assert set(inspect(db.engine).get_table_names()) >= set(metadata.tables)
    db.dispose()
