"""Flask blueprints: the API per surface, admin, health, metrics and the errors; register() adds them."""

from __future__ import annotations

from flask import Flask

from gateway.blueprints import admin, admin_teams, chat, errors, health, messages, metrics, models, responses


def register(app: Flask) -> None:
    """Register every API blueprint on the app (the console registers its own)."""
    for module in (errors, health, chat, messages, responses, models, admin, admin_teams, metrics):
        app.register_blueprint(module.bp)
