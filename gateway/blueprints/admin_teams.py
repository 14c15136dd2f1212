"""The admin API's teams under /api/admin/teams: create, list, members, credit and budget, as JSON.

The same admins as the rest of /api/admin (admin.require_admin); a team is named by its id in paths.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway import clock
from gateway.blueprints.admin import require_admin
from gateway.blueprints.admin_fields import (
    BUDGET_FIELDS,
    ID,
    body_of,
    budget_field,
    credit_body,
    id_field,
    text_field,
)
from gateway.blueprints.services import services
from gateway.errors import InvalidRequestError
from gateway.store import budgets, teams, users

bp = Blueprint("admin_teams", __name__, url_prefix="/api/admin/teams")
bp.before_request(require_admin)


def _team(conn: Any, team_id: int) -> dict[str, Any]:
    return teams.get_team_by_id(conn, team_id, clock.utcnow()).to_json()


@bp.get("")
def list_teams() -> dict[str, Any]:
    """List every team by name, with its members, balance and budget."""
    with services().db.session_scope() as conn:
        return {"object": "list", "data": [t.to_json() for t in teams.list_teams(conn, clock.utcnow())]}


@bp.post("")
def create_team() -> tuple[dict[str, Any], int]:
    """Create a team, optionally with a periodic budget."""
    body = body_of("name", *BUDGET_FIELDS)
    name = body.get("name")
    if not isinstance(name, str):
        raise InvalidRequestError("'name' is required: a string such as research.", param="name")
    budget = budget_field(body)
    with services().db.session_scope() as conn:
        team_id = teams.create_team(conn, name, clock.utcnow())
        if budget is not None:
            budgets.set_budget(conn, "team", team_id, *budget)
        return _team(conn, team_id), 201


@bp.get(f"/<{ID}:team_id>")
def get_team(team_id: int) -> dict[str, Any]:
    """Return one team."""
    with services().db.session_scope() as conn:
        return _team(conn, team_id)


@bp.patch(f"/<{ID}:team_id>")
def update_team(team_id: int) -> dict[str, Any]:
    """Set or clear the team's periodic budget (budget_usd or budget_micros, and budget_period)."""
    budget = budget_field(body_of(*BUDGET_FIELDS))
    with services().db.session_scope() as conn:
        _team(conn, team_id)
        if budget is not None:
            budgets.set_budget(conn, "team", team_id, *budget)
        return _team(conn, team_id)


@bp.post(f"/<{ID}:team_id>/members")
def add_member(team_id: int) -> dict[str, Any]:
    """Add a user to the team by user_id, as owner or member (again: changes the role)."""
    body = body_of("user_id", "role")
    user_id = id_field(body.get("user_id"), "user_id")
    role = text_field(body, "role", 16, "member")
    with services().db.session_scope() as conn:
        _team(conn, team_id)
        users.get_user(conn, user_id)
        teams.add_member(conn, team_id, user_id, role, clock.utcnow())
        return _team(conn, team_id)


@bp.delete(f"/<{ID}:team_id>/members/<{ID}:user_id>")
def remove_member(team_id: int, user_id: int) -> dict[str, Any]:
    """Take a user out of the team: their team keys stop working on every worker within a second."""
    svc = services()
    with svc.db.session_scope() as conn:
        _team(conn, team_id)
        if not teams.remove_member(conn, team_id, user_id):
            raise InvalidRequestError(f"User {user_id} is not a member of this team.", param="user_id")
        removed = _team(conn, team_id)
    svc.key_cache.clear()
    return removed


@bp.post(f"/<{ID}:team_id>/credit")
def credit_team(team_id: int) -> dict[str, Any]:
    """Add credit to the team's balance, or debit it with a negative amount."""
    amount, name, note = credit_body()
    with services().db.session_scope() as conn:
        _team(conn, team_id)
        try:
            teams.credit_team(conn, team_id, amount, note, clock.utcnow())
        except InvalidRequestError as exc:
            exc.param = name
            raise
        return {"amount_micros": amount, "note": note, "team": _team(conn, team_id)}
