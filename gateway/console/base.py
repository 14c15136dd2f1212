"""The console blueprint, who is signed in, and the guards every console view sits behind."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from gateway.blueprints.services import services
from gateway.store import logins, users

bp = Blueprint("console", __name__, url_prefix="/console")
log = logging.getLogger("gateway.errors")

View = TypeVar("View", bound=Callable[..., Any])
_UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
_NEXT = re.compile(r"/console/[\x21-\x5b\x5d-\x7e]*")  # printable ASCII but the backslash


def error_page(status: int, title: str, message: str, headers: dict[str, str]) -> Response | None:
    """Render an error as a console page, for console requests only (the API keeps its envelope)."""
    if not in_console():
        return None
    request_id = getattr(g, "request_id", "")
    try:
        html = render_template(
            "error.html", status=status, title=title, message=message, request_id=request_id
        )
    except Exception:
        # The error page itself failed (a broken template, no database for the nav): say it plainly.
        log.exception("request %s: the error page failed", request_id)
        return Response(
            f"{status} {title}. Request id: {request_id}",
            status=status,
            mimetype="text/plain",
            headers=headers,
        )
    return Response(html, status=status, mimetype="text/html", headers=headers)


def in_console() -> bool:
    """Tell whether the request is for the console (which answers in HTML) rather than the API."""
    path = request.path
    return path == "/" or path == "/console" or path.startswith("/console/")


@bp.before_app_request
def load_user() -> None:
    """Check the CSRF token of every state-changing console request, then load the signed-in user."""
    # App-wide, so that error pages for unknown console paths still know who is signed in.
    if not in_console():
        return
    if request.method in _UNSAFE:
        current_app.extensions["csrf"].protect()  # raises CSRFError (400) without a valid token
    g.user = None
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return
    # Read from the store on every request: a demoted admin, a deleted user or a session made before
    # the password last changed (its stamp is stale: see logins.session_stamp) loses access at once.
    # The session generation moves at every sign-out, so a copied cookie dies with its session.
    with services().db.session_scope() as conn:
        current = logins.find_session_stamp(conn, user_id)
        found = users.list_users(conn, user_id=user_id) if current else []
    if found and (session.get("password_stamp"), session.get("generation")) == current:
        g.user = found[0]
    else:
        session.clear()


@bp.app_context_processor
def inject_user() -> dict[str, Any]:
    """Give every template the signed-in user (or None) and whether sign-up is open."""
    return {"user": g.get("user"), "signup_open": services().settings.signup == "open"}


def sign_in(user_id: int, password_hash: str) -> None:
    """Start a fresh session for the user (a new cookie, so a planted one is of no use), bound to the
    password hash just checked or set: the session ends when that password is replaced."""
    with services().db.session_scope() as conn:
        generation = logins.session_generation(conn, user_id)
    session.clear()
    session.permanent = True
    session["user_id"] = user_id
    session["password_stamp"] = logins.session_stamp(password_hash)
    session["generation"] = generation


def safe_next(target: str | None) -> str:
    """Return a console path to go to after signing in; never another site, never a broken header."""
    # Printable ASCII only: a CR LF (raw or %0D%0A, decoded) in a Location header is a 500 at best,
    # header injection at worst; our own links are always percent-encoded, so nothing is lost.
    if target and _NEXT.fullmatch(target) and "//" not in target:
        return target
    return url_for("console.list_keys")


def signed_in(view: View) -> View:
    """Send visitors who are not signed in to the sign-in page, then back."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("console.signin", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin_only(view: View) -> View:
    """Let only signed-in admins through; others get a 403 page."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("console.signin", next=request.full_path.rstrip("?")))
        if not g.user.is_admin:
            abort(403, "This page is for administrators only.")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def no_store(resp: Response) -> Response:
    """Keep a response out of every cache (it carries a secret or private data)."""
    resp.headers["Cache-Control"] = "no-store"
    return resp
