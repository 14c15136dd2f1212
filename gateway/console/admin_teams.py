"""Console pages for admins only: every team; create one, credit it, set its budget.

Members are managed on the team's own page (console/teams.py), where admins act as owners.
"""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, url_for
from werkzeug.wrappers import Response

from gateway.blueprints.admin import ID
from gateway.blueprints.services import services
from gateway.console.base import admin_only, bp, no_store
from gateway.console.formatting import usd
from gateway.console.forms import BudgetForm, CreditForm, TeamForm
from gateway.errors import InvalidRequestError, NameTakenError
from gateway.store import budgets, teams


def _teams_page(form: TeamForm, status: int = 200) -> Response:
    svc = services()
    with svc.db.session_scope() as conn:
        found = teams.list_teams(conn, svc.clock.now())
    html = render_template("admin/teams.html", teams=found, form=form)
    return no_store(make_response(html, status))


def _team_page(
    team_id: int,
    status: int = 200,
    *,
    credit: CreditForm | None = None,
    budget: BudgetForm | None = None,
) -> Response:
    svc = services()
    with svc.db.session_scope() as conn:
        team = teams.get_team_by_id(conn, team_id, svc.clock.now())  # a 404 page when there is none
    if budget is None:
        budget = BudgetForm(formdata=None)
        if team.budget_micros is not None:
            budget.budget_usd.data = usd(team.budget_micros).replace("$", "").replace(",", "")
            budget.period.data = team.budget_period
    html = render_template(
        "admin/team.html", team=team, credit=credit or CreditForm(formdata=None), budget=budget
    )
    return no_store(make_response(html, status))


def _budget_of(form: BudgetForm) -> tuple[int | None, str | None]:
    micros = form.budget_usd.micros
    return (None, None) if micros is None else (micros, form.period.data)


@bp.get("/admin/teams")
@admin_only
def admin_teams() -> Response:
    """List every team with balance, budget and members, and the form to create one."""
    return _teams_page(TeamForm(formdata=None))


@bp.post("/admin/teams")
@admin_only
def admin_create_team() -> Response:
    """Create a team, with a periodic budget when one is given."""
    svc = services()
    form = TeamForm()
    if not form.validate_on_submit():
        return _teams_page(form, 400)
    try:
        with svc.db.session_scope() as conn:
            team_id = teams.create_team(conn, form.name.data, svc.clock.now())
            amount, period = _budget_of(form)
            if amount is not None:
                budgets.set_budget(conn, "team", team_id, amount, period)
    except NameTakenError as exc:
        form.name.errors.append(exc.message)
        return _teams_page(form, 409)
    except InvalidRequestError as exc:
        (form.budget_usd if exc.param == "budget" else form.name).errors.append(exc.message)
        return _teams_page(form, 400)
    flash(f"Created the team {form.name.data.strip()}. Add its first owner on the team's page.")
    return redirect(url_for("console.admin_team", team_id=team_id))


@bp.get(f"/admin/teams/<{ID}:team_id>")
@admin_only
def admin_team(team_id: int) -> Response:
    """Show a team's balance and budget with the forms to credit it and to set its budget."""
    return _team_page(team_id)


@bp.post(f"/admin/teams/<{ID}:team_id>/credit")
@admin_only
def admin_credit_team(team_id: int) -> Response:
    """Add credit to a team's balance, or debit it with a negative amount; the team ledger keeps the note."""
    svc = services()
    form = CreditForm()
    if form.validate_on_submit():
        amount = form.amount_usd.micros
        if not amount:
            form.amount_usd.errors.append("Give a non-zero amount (negative to debit).")
        else:
            try:
                with svc.db.session_scope() as conn:
                    teams.credit_team(conn, team_id, amount, (form.note.data or "").strip(), svc.clock.now())
                    name = teams.get_team_by_id(conn, team_id, svc.clock.now()).name
            except InvalidRequestError as exc:
                if exc.status == 404:
                    raise
                form.amount_usd.errors.append(exc.message)
            else:
                flash(f"{usd(amount)} credited to the team {name}.")
                return redirect(url_for("console.admin_team", team_id=team_id))
    return _team_page(team_id, 400, credit=form)


@bp.post(f"/admin/teams/<{ID}:team_id>/budget")
@admin_only
def admin_budget_team(team_id: int) -> Response:
    """Set a team's periodic budget, or clear it with an empty amount."""
    svc = services()
    form = BudgetForm()
    if not form.validate_on_submit():
        return _team_page(team_id, 400, budget=form)
    amount, period = _budget_of(form)
    with svc.db.session_scope() as conn:
        team = teams.get_team_by_id(conn, team_id, svc.clock.now())  # a 404 page when there is none
        budgets.set_budget(conn, "team", team_id, amount, period)
    if amount is None:
        flash(f"The team {team.name} has no budget now.")
    else:
        flash(f"The team {team.name} has a budget of {usd(amount)} per {period}.")
    return redirect(url_for("console.admin_team", team_id=team_id))
