"""Console pages for admins only: users, credit, every key, usage across users."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, url_for
from werkzeug.wrappers import Response

from gateway import clock
from gateway.blueprints.admin import ID
from gateway.blueprints.services import services
from gateway.console.balance import DAYS, usage_report
from gateway.console.base import admin_only, bp, no_store
from gateway.console.formatting import usd
from gateway.console.forms import ConfirmForm, CreditForm, UserForm
from gateway.errors import EmailTakenError, InvalidRequestError, NotFoundError
from gateway.store import billing, logins
from gateway.store.keys import get_key, list_keys, revoke_key
from gateway.store.users import get_user, list_users, register_user


def _users_page(form: UserForm, status: int = 200) -> Response:
    with services().db.session_scope() as conn:
        users = list_users(conn)
        can_sign_in = logins.console_user_ids(conn)
    html = render_template("admin/users.html", users=users, can_sign_in=can_sign_in, form=form)
    return no_store(make_response(html, status))


@bp.get("/admin/")
@admin_only
def admin_home() -> Response:
    """Open the admin pages at the users."""
    return redirect(url_for("console.admin_users"))


@bp.get("/admin/users")
@admin_only
def admin_users() -> Response:
    """List every user with balance and whether they can sign in, and the form to add one."""
    return _users_page(UserForm())


@bp.post("/admin/users")
@admin_only
def admin_create_user() -> Response:
    """Create a user who can sign in with the given password (the way in when sign-up is closed)."""
    form = UserForm()
    if not form.validate_on_submit():
        return _users_page(form, 400)
    password_hash = logins.hash_password(form.password.data)
    try:
        with services().db.session_scope() as conn:
            user_id = register_user(conn, form.email.data, is_admin=form.is_admin.data)
            logins.set_password_hash(conn, user_id, password_hash)
    except EmailTakenError:
        form.email.errors.append("This email already has an account.")
        return _users_page(form, 409)
    flash(f"Created {form.email.data}.")
    return redirect(url_for("console.admin_users"))


@bp.route(f"/admin/users/<{ID}:user_id>/credit", methods=["GET", "POST"])
@admin_only
def admin_credit_user(user_id: int) -> Response:
    """Add credit to a user's balance, or debit it with a negative amount; the ledger keeps the note."""
    svc = services()
    form = CreditForm()
    with svc.db.session_scope() as conn:
        target = get_user(conn, user_id)  # 404 page when there is no such user
    status = 200
    if form.validate_on_submit():
        amount = form.amount_usd.micros
        if not amount:
            form.amount_usd.errors.append("Give a non-zero amount (negative to debit).")
        else:
            try:
                with svc.db.session_scope() as conn:
                    billing.credit(
                        conn,
                        user_id,
                        amount,
                        (form.note.data or "").strip(),
                        clock.utcnow(),
                    )
            except InvalidRequestError as exc:
                form.amount_usd.errors.append(exc.message)
            else:
                flash(f"{usd(amount)} credited to {target.email}.")
                return redirect(url_for("console.admin_users"))
    if form.is_submitted():
        status = 400
    return make_response(render_template("admin/credit.html", target=target, form=form), status)


@bp.get("/admin/keys")
@admin_only
def admin_keys() -> Response:
    """List every key of every user; prefixes only, as everywhere."""
    with services().db.session_scope() as conn:
        keys = list_keys(conn)
    keys.reverse()
    html = render_template("admin/keys.html", keys=keys, form=ConfirmForm())
    return no_store(make_response(html))


# Bounded like the admin API's ids: a larger number cannot be a key, and would overflow the driver.
@bp.post(f"/admin/keys/<{ID}:key_id>/revoke")
@admin_only
def admin_revoke_key(key_id: int) -> Response:
    """Revoke any user's key; an unknown or already revoked key is a 404 page."""
    svc = services()
    with svc.db.session_scope() as conn:
        key = get_key(conn, key_id)  # NotFoundError: a 404 page
        # The UPDATE matches only a key not yet revoked, so of two admins racing, one is told "no".
        if not revoke_key(conn, str(key_id)):
            raise NotFoundError(f"The key {key.prefix}… is already revoked.", code="key_not_found")
    # Other processes forget it within half a second: revoke_key bumped the change counter.
    svc.key_cache.clear()
    flash(f"The key {key.prefix}… ({key.name or 'unnamed'}) of {key.email} is revoked.")
    return redirect(url_for("console.admin_keys"))


@bp.get("/admin/usage")
@admin_only
def admin_usage() -> Response:
    """Show usage across all users: per user, per day, per model, and the latest requests."""
    report = usage_report(services().db, None)
    return no_store(make_response(render_template("admin/usage.html", report=report, days=DAYS)))
