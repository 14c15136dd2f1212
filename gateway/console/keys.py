"""API Key Management: a user's own keys only; a new key's secret is shown once, when it is made."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import abort, flash, g, make_response, redirect, render_template, url_for
from werkzeug.wrappers import Response

from gateway.blueprints.admin import ID
from gateway.blueprints.services import services
from gateway.console.base import bp, no_store, signed_in
from gateway.console.forms import ConfirmForm, KeyForm
from gateway.store import keys, memberships
from gateway.store.keys import KeyRecord


def _key_form(blank: bool = False) -> KeyForm:
    form = KeyForm(formdata=None) if blank else KeyForm()
    form.models.choices = [(m, m) for m in services().catalog.targets]
    return form


def _own_key(key_id: int) -> KeyRecord:
    """Return one of the signed-in user's keys; someone else's is answered as if it did not exist."""
    with services().db.session_scope() as conn:
        found = keys.list_keys(conn, user_id=g.user.id, key_id=key_id)
    if not found:
        abort(404, "There is no such API key among yours.")
    return found[0]


def _page(form: KeyForm, status: int = 200, created: KeyRecord | None = None, secret: str = "") -> Response:
    with services().db.session_scope() as conn:
        rows = keys.list_keys(conn, user_id=g.user.id)
        team_names = memberships.team_names(conn, {k.team_id for k in rows if k.team_id is not None})
    rows.reverse()  # newest first
    html = render_template(
        "keys.html", form=form, keys=rows, created=created, secret=secret, team_names=team_names
    )
    return no_store(make_response(html, status))


@bp.get("/keys")
@signed_in
def list_keys() -> Response:
    """List the user's keys, newest first, with the form to create one."""
    return _page(_key_form())


@bp.post("/keys")
@signed_in
def create_key() -> Response:
    """Create a key and show its secret this once; it is never stored or shown again."""
    form = _key_form()
    if not form.validate_on_submit():
        return _page(form, 400)
    expires_at = None
    if form.expires_on.data is not None:
        if form.expires_on.data < datetime.now(UTC).date():
            form.expires_on.errors = ["The expiry date is in the past."]
            return _page(form, 400)
        # A key "expires on" a day: it works through that whole UTC day.
        expires_at = datetime.combine(form.expires_on.data, time.min, UTC) + timedelta(days=1)
    with services().db.session_scope() as conn:
        key_id, minted = keys.create_key(
            conn,
            g.user.id,
            name=form.name.data.strip(),
            limit_micros=form.limit_usd.micros,
            expires_at=expires_at,
            allowed_models=form.models.data or None,
        )
        created = keys.get_key(conn, key_id)
    return _page(_key_form(blank=True), 201, created, minted.secret)


@bp.get(f"/keys/<{ID}:key_id>/revoke")
@signed_in
def confirm_revoke_key(key_id: int) -> str:
    """Ask before revoking: a revoked key stops working and cannot be brought back."""
    return render_template("revoke.html", key=_own_key(key_id), form=ConfirmForm())


@bp.post(f"/keys/<{ID}:key_id>/revoke")
@signed_in
def revoke_key(key_id: int) -> Response:
    """Revoke one of the user's keys."""
    key = _own_key(key_id)
    svc = services()
    with svc.db.session_scope() as conn:
        keys.revoke_key(conn, str(key_id), user_id=g.user.id)
    # Other processes forget it within half a second: revoke_key bumped the change counter.
    svc.key_cache.clear()
    flash(f"The key {key.prefix}… ({key.name or 'unnamed'}) is revoked.")
    return redirect(url_for("console.list_keys"))
