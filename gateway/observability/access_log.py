"""The access log: one JSON line per settled request on `gateway.access`; never a key or prompt text."""

from __future__ import annotations

import json
import logging

from gateway.errors import UpstreamError
from gateway.observability.observer import Settled

access_log = logging.getLogger("gateway.access")
# Settled holds scalars only, so a shallow copy will do: dataclasses.asdict deep-copies each field.
_FIELDS = tuple(Settled.__dataclass_fields__)


class AccessLog:
    """An observer that writes who asked, what answered and how it ended."""

    def settled(self, event: Settled) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        line = {name: getattr(event, name) for name in _FIELDS}
        line["upstream_ms"] = round(line.pop("upstream_s") * 1000, 2)
        line["overhead_ms"] = round(line.pop("overhead_s") * 1000, 2)
        access_log.info(json.dumps(line))

    def streams_changed(self, delta: int) -> None:
        pass

    def attempt_failed(self, channel: str, exc: UpstreamError) -> None:
        pass
