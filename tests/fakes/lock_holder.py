"""Hold a write lock on the gateway's store from a process of its own, until stdin closes (60 s at most).

    python lock_holder.py DATABASE_URL USER_ID    prints "locked" once the lock is held

SQLite: the file's write lock (BEGIN IMMEDIATE). PostgreSQL: the user's row (SELECT … FOR UPDATE).
"""

from __future__ import annotations

import select
import sqlite3
import sys
import urllib.parse

MAX_HOLD = 60.0  # a test that forgets to close stdin cannot pin the store for longer


def main(url: str, user_id: int) -> None:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None, timeout=0)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE users SET balance_micros = balance_micros WHERE id = ?", (user_id,))
    else:
        import psycopg2

        parsed = urllib.parse.urlsplit(url.replace("postgresql+psycopg2://", "postgresql://", 1))
        options = urllib.parse.parse_qs(parsed.query).get("options", [""])[0]
        conn = psycopg2.connect(parsed._replace(query="").geturl(), options=options)
        conn.cursor().execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))
    print("locked", flush=True)
    select.select([sys.stdin], [], [], MAX_HOLD)
    conn.rollback()
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
