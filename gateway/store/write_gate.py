"""One SQLite writer per process at a time, queued on a Python lock rather than on SQLite's busy handler.

SQLite lets one connection write at a time. A connection that finds the lock taken does not queue:
its busy handler sleeps and retries, with sleeps growing to 100 ms, so under load the waiters of one
process poll in turn, the lock sits free between their naps, and a write waits whole seconds (and
runs past db_lock_timeout, a 503) while CPU goes on the wake-ups. Within a process the gate makes
the writers queue instead: a transaction takes it at its first write statement and gives it back
when its session ends, committed or rolled back, and the next waiter runs at once. Processes still
meet at SQLite's own lock, one writer each instead of one per pooled connection.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

_READS = ("SELECT", "PRAGMA")


class WriteGate:
    """The process's write lock; session_scope opens a Scope per transaction and closes it at the end."""

    def __init__(self, wait: float) -> None:
        self.wait = wait  # seconds to queue here: db_lock_timeout, like SQLite's own wait
        self._lock = threading.Lock()
        self._local = threading.local()  # the innermost open scope of each thread

    def open(self) -> Scope:
        scope = Scope(self, getattr(self._local, "scope", None))
        self._local.scope = scope
        return scope

    def before_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """Take the gate for the thread's open scope at its first write (an engine event)."""
        scope = getattr(self._local, "scope", None)
        if scope is None or scope.held or scope.inherited():
            return  # outside session_scope (schema, CLI), already taken, or an outer scope has it
        if statement.lstrip()[:6].upper().startswith(_READS):
            return
        if not self._lock.acquire(timeout=self.wait):
            # The same error SQLite gives when its busy timeout runs out: a 503, nothing written.
            raise sqlite3.OperationalError("database is locked (queued for the process's write gate)")
        scope.held = True

    def busy(self) -> bool:
        """Tell whether a transaction of this process holds the gate."""
        return self._lock.locked()


class Scope:
    """One session's hold on the gate: taken at its first write, if an outer session has not."""

    def __init__(self, gate: WriteGate, outer: Scope | None) -> None:
        self.gate = gate
        self.outer = outer
        self.held = False

    def inherited(self) -> bool:
        outer = self.outer
        while outer is not None:
            if outer.held:
                return True  # waiting for it would wait for ourselves
            outer = outer.outer
        return False

    def close(self) -> None:
        """End the session's hold (after its commit or rollback) and make the outer scope current."""
        self.gate._local.scope = self.outer
        if self.held:
            self.held = False
            self.gate._lock.release()
