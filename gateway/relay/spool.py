"""Settlements the database could not take yet, kept on local disk until they are written, once.

Each pending settlement is one small JSON file, written to a temporary name, fsynced and renamed,
so a crash leaves either the whole entry or none. Replaying is idempotent: billing.settle deletes
the hold in the same transaction that charges, so a second replay (another worker's, or after a
crash between commit and unlink) finds no hold and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from gateway.store.billing import Hold, HoldRef, UsageRecord


@dataclass(frozen=True)
class Pending:
    """One settlement waiting for the database: the hold, its usage row and when it was settled."""

    path: str
    hold: Hold
    record: UsageRecord
    settled_at: datetime


class Spool:
    """A folder of pending settlements, shared by every worker of one host."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def put(self, hold: Hold, record: UsageRecord, settled_at: datetime) -> None:
        """Keep one settlement durably; raises OSError when the disk refuses it."""
        os.makedirs(self.directory, exist_ok=True)
        held = asdict(hold)
        held["created_at"] = hold.created_at.isoformat() if hold.created_at else None
        body = json.dumps(
            {"hold": held, "record": asdict(record), "settled_at": settled_at.isoformat()}
        ).encode()
        # The name is a hash: request ids come from clients and must not name files.
        name = hashlib.sha256(f"{hold.user_id}:{hold.request_id}".encode()).hexdigest()
        final = os.path.join(self.directory, name + ".json")
        temp = os.path.join(self.directory, f".{name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)

    def pending(self) -> list[Pending]:
        """Read every pending settlement, oldest first; an unreadable entry is skipped, not lost."""
        try:
            names = [n for n in os.listdir(self.directory) if n.endswith(".json")]
        except FileNotFoundError:
            return []
        entries = []
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                with open(path, "rb") as fh:
                    data = json.load(fh)
                entries.append(
                    Pending(
                        path,
                        _hold(data["hold"]),
                        UsageRecord(**data["record"]),
                        datetime.fromisoformat(data["settled_at"]),
                    )
                )
            except FileNotFoundError:
                continue  # another worker replayed it meanwhile
            except (OSError, ValueError, TypeError, KeyError):
                continue  # half-written by a crash would be a .tmp; leave anything odd for an operator
        return sorted(entries, key=lambda p: p.settled_at)

    def holds(self) -> set[HoldRef]:
        """The holds whose settlement is pending here: the sweep must leave them."""
        return {p.hold.ref for p in self.pending()}

    def done(self, entry: Pending) -> None:
        """Forget an entry once the database has it (or never will: its hold is gone)."""
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass


def _hold(data: dict[str, Any]) -> Hold:
    """Read a spooled hold; files of versions before teams have no team_id or created_at.

    billing.settle reads those two from the hold's row when created_at is missing.
    """
    created = data.get("created_at")
    return Hold(**dict(data, created_at=datetime.fromisoformat(created) if created else None))
