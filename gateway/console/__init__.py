"""The web console under /console/: sign-up and sign-in, API keys, balance, usage, teams, quickstart, admin.

init_app() sets up the signed session cookie and CSRF protection; the views live in the modules below.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, redirect, url_for
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from gateway.blueprints.errors import register_pages
from gateway.config.settings import Settings
from gateway.console import admin, admin_teams, balance, formatting, keys, password, quickstart, signin, teams
from gateway.console.base import bp, error_page, in_console
from gateway.console.budget import budget_bar
from gateway.console.secret import load_secret_key

__all__ = [
    "admin",
    "admin_teams",
    "balance",
    "bp",
    "init_app",
    "keys",
    "password",
    "quickstart",
    "root",
    "signin",
    "teams",
]

root = Blueprint("root", __name__)

# No inline script or style anywhere in the console, so the policy can forbid both.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@root.get("/")
def home() -> Response:
    """Send the site root to the console."""
    return redirect(url_for("console.index"))


def _secure_console(resp: Response) -> Response:
    """Add the console's security headers (CSP, no framing) to its pages and errors."""
    if in_console():
        for name, value in _SECURITY_HEADERS.items():
            resp.headers.setdefault(name, value)
    return resp


def init_app(app: Flask, settings: Settings) -> None:
    """Configure the session cookie and CSRF, and register the console's blueprints."""
    app.secret_key = load_secret_key(settings.secret_key, settings.testing)
    app.config.update(
        SESSION_COOKIE_NAME="gateway_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # Checked by the console blueprint only: /api/* authenticates with Bearer keys, not cookies.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=12 * 3600,
    )
    CSRFProtect(app)
    app.jinja_env.filters.update(
        usd=formatting.usd, when=formatting.when, tokens=formatting.tokens, budget_bar=budget_bar
    )
    app.after_request(_secure_console)
    register_pages(app, error_page)
    app.register_blueprint(root)
    app.register_blueprint(bp)
