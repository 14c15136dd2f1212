"""Sign up, sign in and sign out of the console."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from gateway.blueprints.services import services
from gateway.console.base import bp, safe_next, sign_in
from gateway.console.credentials import check_password
from gateway.console.forms import SignInForm, SignUpForm
from gateway.errors import EmailTakenError, SignInError, SignInThrottledError
from gateway.store import logins, users


@bp.get("/")
def index() -> Response:
    """Send people to their keys, or to the sign-in page."""
    if g.user is None:
        return redirect(url_for("console.signin"))
    return redirect(url_for("console.list_keys"))


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response | tuple[str, int] | str:
    """Create an account with an email and a password, then sign it in."""
    svc = services()
    if svc.settings.signup != "open":
        abort(403, "Sign-up is closed on this gateway: ask an administrator for an account.")
    form = SignUpForm()
    if not form.validate_on_submit():
        return render_template("signup.html", form=form), 400 if form.is_submitted() else 200
    password_hash = logins.hash_password(form.password.data)
    try:
        with svc.db.session_scope() as conn:
            user_id = users.register_user(conn, form.email.data)
            logins.set_password_hash(conn, user_id, password_hash)
    except EmailTakenError:
        # Saying so tells a visitor the address has an account; sign-up cannot avoid that.
        form.email.errors.append("This email already has an account: sign in instead.")
        return render_template("signup.html", form=form), 409
    sign_in(user_id, password_hash)
    return redirect(url_for("console.list_keys"))


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]] | str:
    """Check an email and password (a few tries per account, address and quarter hour) and sign in."""
    form = SignInForm()
    next_url = safe_next(request.args.get("next"))
    if not form.validate_on_submit():
        return render_template("signin.html", form=form), 400 if form.is_submitted() else 200
    try:
        user_id, password_hash = check_password(
            form.email.data, form.password.data, request.remote_addr or ""
        )
    except (SignInError, SignInThrottledError) as exc:
        page = render_template("signin.html", form=form, refusal=exc.message)
        return page, exc.status, exc.headers
    sign_in(user_id, password_hash)
    return redirect(next_url)


@bp.post("/signout")
def signout() -> Response:
    """End the session (the form's CSRF token stops other sites signing people out).

    The user's session generation moves on, so a copy of the cookie stops working too; this ends
    the user's other console sessions as well.
    """
    if g.get("user") is not None:
        with services().db.session_scope() as conn:
            logins.end_sessions(conn, g.user.id)
    session.clear()
    return redirect(url_for("console.signin"))
