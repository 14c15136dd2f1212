"""Teams in the console: a member's teams with balance, budget, members, team keys and usage.

Everyone in a team sees its balance, budget and members, their own team keys and their own usage;
owners (and admins, on any team) also see every member's keys and usage, and add and remove members.
Someone outside a team is answered as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from flask import abort, flash, g, make_response, redirect, render_template, url_for
from werkzeug.wrappers import Response

from gateway.blueprints.admin import ID
from gateway.blueprints.services import services
from gateway.console.balance import DAYS
from gateway.console.base import bp, no_store, signed_in
from gateway.console.forms import ConfirmForm, MemberForm, TeamKeyForm
from gateway.store import keys, memberships, teams, users
from gateway.store.keys import KeyRecord
from gateway.store.memberships import Member
from gateway.store.team_usage import MemberUsage, usage_by_member
from gateway.store.teams import TeamRecord

_NO_SUCH_TEAM = "There is no such team among yours."


@dataclass(frozen=True)
class TeamPage:
    """What one viewer may see of one team."""

    team: TeamRecord
    role: str | None  # the viewer's role; None for an admin outside the team
    manages: bool  # an owner, or an admin
    members: list[Member]
    keys: list[KeyRecord]
    usage: list[MemberUsage]
    first_day: str


def _role(team_id: int) -> str | None:
    """Return the signed-in user's role in the team; 404 for outsiders (admins may look at any team)."""
    svc = services()
    with svc.db.session_scope() as conn:
        role = teams.role_of(conn, team_id, g.user.id)
        if role is None and not g.user.is_admin:
            abort(404, _NO_SUCH_TEAM)
        teams.get_team_by_id(conn, team_id, svc.clock.now())  # an admin's unknown team: 404
    return role


def _manage(team_id: int) -> None:
    """Let only the team's owners and admins through to change it; members get a 403 page."""
    if _role(team_id) != "owner" and not g.user.is_admin:
        abort(403, "Only owners of the team can change its members.")


def _read(team_id: int) -> TeamPage:
    role = _role(team_id)
    svc = services()
    now = svc.clock.now()
    manages = role == "owner" or g.user.is_admin
    mine = None if manages else g.user.id
    first_day = now.date() - timedelta(days=DAYS - 1)
    since = datetime.combine(first_day, time.min, UTC)
    with svc.db.session_scope() as conn:
        team = teams.get_team_by_id(conn, team_id, now)
        team_keys = keys.list_keys(conn, team_id=team_id, user_id=mine, now=now)
        members = memberships.members_of(conn, team_id)
        usage = usage_by_member(conn, team_id, since, user_id=mine)
    team_keys.reverse()  # newest first
    return TeamPage(team, role, manages, members, team_keys, usage, first_day.isoformat())


def _team_page(
    team_id: int,
    status: int = 200,
    *,
    member_form: MemberForm | None = None,
    key_form: TeamKeyForm | None = None,
    created: KeyRecord | None = None,
    secret: str = "",
) -> Response:
    view = _read(team_id)
    html = render_template(
        "team.html",
        view=view,
        member_form=member_form or MemberForm(formdata=None),
        key_form=key_form or TeamKeyForm(formdata=None),
        confirm=ConfirmForm(),
        created=created,
        secret=secret,
        days=DAYS,
    )
    return no_store(make_response(html, status))


@bp.get("/teams")
@signed_in
def list_teams() -> Response:
    """List the signed-in user's teams with their balance and budget."""
    svc = services()
    now = svc.clock.now()
    with svc.db.session_scope() as conn:
        mine = memberships.memberships_of(conn, g.user.id)
        found = [(m, teams.get_team_by_id(conn, m.team_id, now)) for m in mine]
    return no_store(make_response(render_template("teams.html", teams=found)))


@bp.get(f"/teams/<{ID}:team_id>")
@signed_in
def show_team(team_id: int) -> Response:
    """Show one team: balance, budget, members, team keys and usage by member and model."""
    return _team_page(team_id)


@bp.post(f"/teams/<{ID}:team_id>/members")
@signed_in
def add_team_member(team_id: int) -> Response:
    """Add a member by the email of an existing account, or change a member's role (owners only)."""
    svc = services()
    form = MemberForm()
    _manage(team_id)
    if not form.validate_on_submit():
        return _team_page(team_id, 400, member_form=form)
    refusal = None
    with svc.db.session_scope() as conn:
        found = users.find_user(conn, form.email.data)
        before = None if found is None else teams.role_of(conn, team_id, found.id)
        if found is None:
            form.email.errors.append("There is no account with this email: they sign up first.")
            refusal = 404
        elif before == "owner" and form.role.data != "owner" and memberships.owner_count(conn, team_id) == 1:
            form.role.errors.append("A team keeps at least one owner: make another member owner first.")
            refusal = 409
        else:
            teams.add_member(conn, team_id, found.id, form.role.data, svc.clock.now())
    if refusal is not None or found is None:
        return _team_page(team_id, refusal or 404, member_form=form)
    if before is None:
        flash(f"{found.email} is now a {form.role.data} of the team.")
    else:
        flash(f"{found.email} was a {before} and is now a {form.role.data}.")
    return redirect(url_for("console.show_team", team_id=team_id))


@bp.post(f"/teams/<{ID}:team_id>/members/<{ID}:user_id>/remove")
@signed_in
def remove_team_member(team_id: int, user_id: int) -> Response:
    """Take a member out of the team (owners only): their team keys stop working at once."""
    svc = services()
    _manage(team_id)
    with svc.db.session_scope() as conn:
        role = teams.role_of(conn, team_id, user_id)
        if role is None:
            abort(404, "This user is not a member of the team.")
        if role == "owner" and memberships.owner_count(conn, team_id) == 1:
            abort(409, "A team keeps at least one owner: make another member owner first.")
        email = users.get_user(conn, user_id).email
        teams.remove_member(conn, team_id, user_id)  # bumps the change counter: other workers forget
    svc.key_cache.clear()
    flash(f"{email} is no longer in the team; their team keys have stopped working.")
    if user_id == g.user.id and not g.user.is_admin:
        return redirect(url_for("console.list_teams"))
    return redirect(url_for("console.show_team", team_id=team_id))


@bp.post(f"/teams/<{ID}:team_id>/keys")
@signed_in
def create_team_key(team_id: int) -> Response:
    """Make the signed-in member a key on the team's balance and budget; its secret is shown once."""
    svc = services()
    form = TeamKeyForm()
    if _role(team_id) is None:
        abort(403, "Only members of the team can make its keys.")
    if not form.validate_on_submit():
        return _team_page(team_id, 400, key_form=form)
    with svc.db.session_scope() as conn:
        key_id, minted = keys.create_key(conn, g.user.id, name=form.name.data.strip(), team_id=team_id)
        created = keys.get_key(conn, key_id)
    return _team_page(team_id, 201, created=created, secret=minted.secret)


@bp.post(f"/teams/<{ID}:team_id>/keys/<{ID}:key_id>/revoke")
@signed_in
def revoke_team_key(team_id: int, key_id: int) -> Response:
    """Revoke a team key: owners (and admins) any of the team's, a member their own."""
    svc = services()
    manages = _role(team_id) == "owner" or g.user.is_admin
    with svc.db.session_scope() as conn:
        found = keys.list_keys(conn, key_id=key_id, team_id=team_id, user_id=None if manages else g.user.id)
        # Another member's key is answered as if it did not exist, as on the keys page.
        if not found or found[0].state == "revoked":
            abort(404, "There is no such key of the team's that is not revoked already.")
        keys.revoke_key(conn, str(key_id))  # bumps the change counter: other workers forget it
    svc.key_cache.clear()
    key = found[0]
    flash(f"The team key {key.prefix}… ({key.name or 'unnamed'}) of {key.email} is revoked.")
    return redirect(url_for("console.show_team", team_id=team_id))
