"""A signed-in user changes their own password."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from gateway.blueprints.services import services
from gateway.console.base import bp, sign_in, signed_in
from gateway.console.credentials import check_password
from gateway.console.forms import PasswordForm
from gateway.errors import SignInError, SignInThrottledError
from gateway.store import logins


@bp.route("/password", methods=["GET", "POST"])
@signed_in
def change_password() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]] | str:
    """Check the current password (with the sign-in limits), store the new one, sign out other sessions."""
    form = PasswordForm(g.user.email)
    if not form.validate_on_submit():
        return render_template("password.html", form=form), 400 if form.is_submitted() else 200
    try:
        # Counted like a sign-in, so a borrowed session cannot guess the password it would replace.
        user_id, _ = check_password(g.user.email, form.current_password.data, request.remote_addr or "")
    except SignInThrottledError as exc:
        return render_template("password.html", form=form, refusal=exc.message), exc.status, exc.headers
    except SignInError as exc:
        form.current_password.errors.append("This is not your current password.")
        return render_template("password.html", form=form), exc.status
    password_hash = logins.hash_password(form.password.data)
    with services().db.session_scope() as conn:
        logins.set_password_hash(conn, user_id, password_hash)
    # A new cookie with the new hash's stamp: every session made before this one is now refused.
    sign_in(user_id, password_hash)
    flash("Your password is changed; every other session is signed out.")
    return redirect(url_for("console.list_keys"))
