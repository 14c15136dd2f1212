"""Flask blueprints; services() hands a view the objects create_app wired for this app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from gateway.accounts import KeyCache
from gateway.catalog import Catalog
from gateway.config import Settings
from gateway.db import Database
from gateway.metrics import Metrics
from gateway.relay import Relay


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    catalog: Catalog
    relay: Relay
    key_cache: KeyCache
    metrics: Metrics


def services() -> Services:
    return current_app.extensions["gateway"]
