"""The objects a running app serves with: built once by build_services(), handed to views by services()."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app

from gateway.clock import SYSTEM, Clock
from gateway.config.settings import Settings
from gateway.observability.access_log import AccessLog
from gateway.observability.alerts import AlertSender
from gateway.observability.metrics import Metrics, MetricsObserver
from gateway.relay.pipeline import Relay
from gateway.routing.catalog import Catalog
from gateway.store import changes
from gateway.store.database import Database, Timeouts
from gateway.store.key_cache import KeyCache
from gateway.store.responses import ResponseStore
from gateway.upstream.transport import Upstream

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    catalog: Catalog
    relay: Relay
    key_cache: KeyCache
    metrics: Metrics
    clock: Clock
    responses: ResponseStore
    alerts: AlertSender | None = None  # set when [alerts] webhook_url is


def start_alerts() -> None:
    """Start this worker's budget alert sender on its first request (a no-op once it runs)."""
    sender = services().alerts
    if sender is not None:
        sender.ensure_running()


def build_services(settings: Settings, clock: Clock = SYSTEM) -> Services:
    """Build the store, the catalog, the relay and its observers from the settings."""
    db = Database(
        settings.database_url,
        settings.db_pool_size,
        timeouts=Timeouts(lock=settings.db_lock_timeout, statement=settings.db_statement_timeout),
    )
    catalog = Catalog(settings)
    for model in catalog.unpriced():
        log.warning("model %s has no price: it costs nothing to users with a balance or unlimited", model)
    metrics = Metrics(multiprocess=bool(settings.metrics_dir))
    observers = (MetricsObserver(metrics), AccessLog())
    return Services(
        settings=settings,
        db=db,
        catalog=catalog,
        relay=Relay(settings, db, Upstream(), observers, clock),
        key_cache=KeyCache(settings.key_cache_ttl, clock=clock, version=lambda: _access_version(db)),
        metrics=metrics,
        clock=clock,
        responses=ResponseStore(db, clock, settings.response_retention_days),
        alerts=_alert_sender(settings, db, clock),
    )


def _alert_sender(settings: Settings, db: Database, clock: Clock) -> AlertSender | None:
    if not settings.alerts_webhook_url:
        return None
    return AlertSender(
        db, clock, settings.alerts_webhook_url, settings.alerts_threshold, settings.alerts_interval
    )


def _access_version(db: Database) -> int:
    with db.session_scope() as conn:
        return changes.read_version(conn)


def services() -> Services:
    """Return the services of the app serving the current request."""
    services: Services = current_app.extensions["gateway"]
    return services
