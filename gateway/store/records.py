"""What the store hands out: frozen records, and their one JSON form (the CLI's --json, the admin API)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from gateway.clock import as_utc


class Record:
    """A frozen dataclass read from the store; to_json() is its stable plain-data form."""

    object_name = ""  # OpenAI-style "object" field of the JSON form, when it has one

    def to_json(self) -> dict[str, Any]:
        """Return the fields as JSON-ready values: datetimes as ISO 8601 UTC, plus derived fields."""
        out: dict[str, Any] = {"object": self.object_name} if self.object_name else {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = iso(value) if isinstance(value, datetime) else value
        out.update(self.derived())
        return out

    def derived(self) -> dict[str, Any]:
        """Fields computed from the others, shown in the JSON form too."""
        return {}


def iso(value: datetime | None) -> str | None:
    """Return a stored timestamp as ISO 8601 in UTC."""
    value = as_utc(value)
    return None if value is None else value.isoformat()
