"""The budget alert sender: a daemon thread per worker that claims new alerts and POSTs each one.

Every `interval` it claims the alerts the current spend calls for (store/alerts.py: once per subject,
period and kind, whichever worker or host gets there first), then sends each unsent alert whose try
is due. A failed try is retried on later ticks with a doubling backoff, up to MAX_ATTEMPTS. It never
runs on a request's thread, so a slow or dead webhook costs requests nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from gateway.clock import Clock
from gateway.store import alerts
from gateway.store.alerts import Alert
from gateway.store.database import Database
from gateway.upstream import webhook

log = logging.getLogger("gateway.alerts")
MAX_ATTEMPTS = 5
TIMEOUT = 5.0  # seconds one POST may take

Post = Callable[[str, dict[str, Any], float], "str | None"]
_WHO = {"key": "API key", "user": "User", "team": "Team"}
_ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly"}


class AlertSender:
    """Claims and delivers budget alerts for one process; start it with ensure_running()."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        url: str,
        threshold: float,
        interval: float,
        *,
        timeout: float = TIMEOUT,
        post: Post = webhook.post_json,
    ) -> None:
        self.db = db
        self.clock = clock
        self.url = url
        self.threshold = threshold
        self.interval = interval
        self.timeout = timeout
        self.post = post
        # A try must be over (timed out at worst) before the next one is due, on any worker.
        self.backoff = 2 * max(interval, timeout)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()

    def ensure_running(self) -> None:
        """Start the thread unless this process runs it already (cheap: called on every request)."""
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            # A forked worker inherits the object but not the thread: the pid tells.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="gateway-alerts", daemon=True)
                self._thread.start()
                log.info("budget alert sender started in process %d", self._pid)

    def stop(self) -> None:
        """Stop the thread after its current tick (tests; a worker's exit ends it anyway)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(self.timeout + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("the budget alert sender failed; it tries again at the next tick")

    def tick(self) -> int:
        """Claim new alerts and send those due; return how many were delivered."""
        now = self.clock.now()
        with self.db.session_scope() as conn:
            alerts.claim(conn, now, self.threshold)
        with self.db.session_scope() as conn:
            pending = alerts.unsent(conn, MAX_ATTEMPTS)
        return sum(self._send(alert, now) for alert in pending if self.due_at(alert) <= now)

    def due_at(self, alert: Alert) -> datetime:
        """When an alert's next try is due: at once, then backoff, 3, 7, 15 … times it after the claim."""
        return alert.created_at + timedelta(seconds=self.backoff * (2**alert.attempts - 1))

    def _send(self, alert: Alert, now: datetime) -> bool:
        with self.db.session_scope() as conn:
            if not alerts.take(conn, alert.id, alert.attempts):
                return False  # another worker owns this try
        error = self.post(self.url, body(alert, self.threshold), self.timeout)
        if error is None:
            with self.db.session_scope() as conn:
                alerts.mark_sent(conn, alert.id, self.clock.now())
            log.info("budget alert %s %s sent", alert.subject, alert.kind)
            return True
        tries = alert.attempts + 1
        level = logging.ERROR if tries >= MAX_ATTEMPTS else logging.WARNING
        final = " (the last try)" if tries >= MAX_ATTEMPTS else ""
        what = f"{alert.subject} {alert.kind}"
        log.log(level, "budget alert %s: try %d failed%s: %s", what, tries, final, error)
        return False


def body(alert: Alert, threshold: float) -> dict[str, Any]:
    """The JSON one alert POSTs: the facts, and a Slack-compatible `text` sentence."""
    resets = alert.resets_at
    return {
        "type": "budget_alert",
        "kind": alert.kind,
        "subject": alert.subject,
        "subject_kind": alert.subject_kind,
        "subject_id": alert.subject_id,
        **alert.labels,
        "period": alert.budget_period,
        "period_start": _iso(alert.period_start),
        "resets_at": _iso(resets) if resets else None,
        "budget_micros": alert.budget_micros,
        "spent_micros": alert.spent_micros,
        "threshold": threshold,
        "text": sentence(alert),
    }


def sentence(alert: Alert) -> str:
    """Say the alert in words, e.g. "API key 'ci' (sk-ab12) has spent $0.85 of its daily budget …"."""
    who = f"{_WHO.get(alert.subject_kind, alert.subject_kind)} {_label(alert)}"
    period = _ADJECTIVE.get(alert.budget_period or "", "periodic")
    budget = _usd(alert.budget_micros)
    resets = f"; it resets at {_iso(alert.resets_at)}" if alert.resets_at else ""
    spent = ""
    if alert.spent_micros is not None and alert.budget_micros:
        percent = alert.spent_micros * 100 // alert.budget_micros
        spent = f" ({_usd(alert.spent_micros)} spent, {percent}%)"
    if alert.kind == "exhausted":
        return f"Budget exhausted: {who} has used up its {period} budget of {budget}{spent}{resets}."
    return f"Budget alert: {who} has passed the alert threshold of its {period} budget of {budget}" + (
        f"{spent}{resets}."
    )


def _label(alert: Alert) -> str:
    labels = alert.labels
    if alert.subject_kind == "key":
        name = f"'{labels['name']}' " if labels.get("name") else ""
        return f"{name}({labels.get('prefix', '')}…)"
    return f"'{labels.get('email') or labels.get('name') or alert.subject_id}'"


def _usd(micros: int | None) -> str:
    if micros is None:
        return "(none)"
    if micros >= 100_000 or micros == 0:
        return f"${Decimal(micros) / 1_000_000:,.2f}"
    return f"${(Decimal(micros) / 1_000_000).normalize():f}"  # $0.001, not $0.00


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
