"""Flask blueprints: the API per surface, admin, health, metrics and the errors; register() adds them."""

from __future__ import annotations

from flask import Flask

from gateway.blueprints import admin, admin_teams, chat, errors, health, messages, metrics, models, responses
from gateway.blueprints.services import start_alerts


def register(app: Flask) -> None:
    """Register every API blueprint on the app (the console registers its own)."""
    for module in (errors, health, chat, messages, responses, models, admin, admin_teams, metrics):
        app.register_blueprint(module.bp)
    # Lazily, so a worker forked from a preloaded app runs its own sender, and the CLI none; and
    # only when alerts are on, so requests pay nothing for them otherwise.
    if app.extensions["gateway"].alerts is not None:
        app.before_request(start_alerts)
