"""The access change counter: one row every process reads to learn that a key or its limits changed.

A revoke, a disable, an expiry, a model list or a rate limit written by any worker of any host bumps
it in the same transaction; each process's key cache reads it at most twice a second and forgets its
principals when it moved. One tiny indexed read per process per half second, whatever the traffic,
and no long-lived listening connection per worker (PostgreSQL's max_connections is the scarce thing).
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.tables import access_changes

_ROW = 1


def bump(conn: Connection) -> None:
    """Move the counter, in the caller's transaction: every key cache forgets what it holds."""
    moved = conn.execute(
        update(access_changes).where(access_changes.c.id == _ROW).values(version=access_changes.c.version + 1)
    ).rowcount
    if moved:
        return
    try:
        with conn.begin_nested():  # a savepoint: a racing first insert must not abort the caller
            conn.execute(insert(access_changes).values(id=_ROW, version=1))
    except IntegrityError:
        bump(conn)


def read_version(conn: Connection) -> int:
    """Return the counter (0 before the first change)."""
    return conn.execute(select(access_changes.c.version).where(access_changes.c.id == _ROW)).scalar() or 0
