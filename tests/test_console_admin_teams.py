"""Admins create, credit and budget teams in the console; nobody else can, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway import clock
from gateway.store import teams
from gateway.store.tables import team_ledger_entries
from gateway.store.users import find_user
from tests.support.app import services
from tests.support.console import csrf_token, post_form, signed_in, text

TEAMS = "/console/admin/teams"


def team(app, name: str = "research") -> teams.TeamRecord:
    with services(app).db.session_scope() as conn:
        return teams.get_team(conn, name, clock.utcnow())


def make_team(app, name: str = "research") -> int:
    with services(app).db.session_scope() as conn:
        return teams.create_team(conn, name, clock.utcnow())


def test_an_admin_creates_a_team_with_a_budget(app):
    admin = signed_in(app, "root@example.com", is_admin=True)
    resp = post_form(admin, TEAMS, {"name": " research ", "budget_usd": "250", "period": "week"})
    created = team(app)
    assert resp.status_code == 302 and resp.location == f"{TEAMS}/{created.id}"
    assert (created.budget_micros, created.budget_period, created.balance_micros) == (250_000_000, "week", 0)
    page = text(admin.get(resp.location))
    assert "Created the team research." in page and "of $250.00 this week" in page
    listing = text(admin.get(TEAMS))
    assert f'href="/console/teams/{created.id}"' in listing and "none yet" in listing


def test_an_admin_creates_a_team_without_a_budget(app):
    admin = signed_in(app, "root@example.com", is_admin=True)
    resp = post_form(admin, TEAMS, {"name": "ops", "budget_usd": "", "period": "month"})
    assert resp.status_code == 302
    assert team(app, "ops").budget_micros is None


@pytest.mark.parametrize(
    "form, status, message",
    [
        ({"name": "", "period": "month"}, 400, "This field is required"),
        ({"name": "x" * 201, "period": "month"}, 400, "Field cannot be longer than 200 characters"),
        ({"name": "ml", "budget_usd": "lots", "period": "month"}, 400, "Enter an amount of USD"),
        ({"name": "ml", "budget_usd": "-5", "period": "month"}, 400, "must not be negative"),
        ({"name": "ml", "budget_usd": "5", "period": "year"}, 400, "Not a valid choice"),
        ({"name": "research", "period": "month"}, 409, "already exists"),
    ],
)
def test_creating_a_team_refuses_bad_input_with_a_4xx_page(app, form, status, message):
    make_team(app, "research")
    admin = signed_in(app, "root@example.com", is_admin=True)
    resp = post_form(admin, TEAMS, form)
    assert resp.status_code == status and message in text(resp)
    with services(app).db.session_scope() as conn:
        assert [t.name for t in teams.list_teams(conn, clock.utcnow())] == ["research"]


def test_an_admin_credits_and_debits_a_team_with_a_note(app):
    team_id = make_team(app)
    admin = signed_in(app, "root@example.com", is_admin=True)
    page = f"{TEAMS}/{team_id}"
    resp = post_form(admin, f"{page}/credit", {"amount_usd": "12.5", "note": "december"}, page=page)
    assert resp.status_code == 302 and resp.location == page
    assert "$12.50 credited to the team research." in text(admin.get(page))
    assert team(app).balance_micros == 12_500_000
    too_much = post_form(admin, f"{page}/credit", {"amount_usd": "-20"}, page=page)
    assert too_much.status_code == 400 and "larger than the team" in text(too_much)
    zero = post_form(admin, f"{page}/credit", {"amount_usd": "0"}, page=page)
    assert zero.status_code == 400 and "non-zero amount" in text(zero)
    post_form(admin, f"{page}/credit", {"amount_usd": "-2.5"}, page=page)
    assert team(app).balance_micros == 10_000_000
    with services(app).db.session_scope() as conn:
        ledger = conn.execute(
            select(team_ledger_entries.c.amount_micros, team_ledger_entries.c.note).order_by(
                team_ledger_entries.c.id
            )
        ).all()
    assert [tuple(row) for row in ledger] == [(12_500_000, "december"), (-2_500_000, "")]


def test_an_admin_sets_changes_and_clears_a_team_budget(app):
    team_id = make_team(app)
    admin = signed_in(app, "root@example.com", is_admin=True)
    page = f"{TEAMS}/{team_id}"
    resp = post_form(admin, f"{page}/budget", {"budget_usd": "100", "period": "month"}, page=page)
    assert resp.status_code == 302
    assert (team(app).budget_micros, team(app).budget_period) == (100_000_000, "month")
    shown = text(admin.get(page))
    assert "a budget of $100.00 per month" in shown and 'value="100.00"' in shown  # the form shows it
    post_form(admin, f"{page}/budget", {"budget_usd": "7.25", "period": "day"}, page=page)
    assert (team(app).budget_micros, team(app).budget_period) == (7_250_000, "day")
    bad = post_form(admin, f"{page}/budget", {"budget_usd": "abc", "period": "day"}, page=page)
    assert bad.status_code == 400 and "Enter an amount of USD" in text(bad)
    post_form(admin, f"{page}/budget", {"budget_usd": "", "period": "day"}, page=page)
    assert team(app).budget_micros is None and "has no budget now" in text(admin.get(page))


def test_unknown_teams_are_404_pages_for_admins(app):
    admin = signed_in(app, "root@example.com", is_admin=True)
    token = csrf_token(admin, TEAMS)
    assert admin.get(f"{TEAMS}/999999").status_code == 404
    for tail, data in (("/credit", {"amount_usd": "5"}), ("/budget", {"budget_usd": "5", "period": "day"})):
        resp = admin.post(f"{TEAMS}/999999{tail}", data={**data, "csrf_token": token})
        assert resp.status_code == 404, tail
    assert admin.get(f"{TEAMS}/99999999999999999999999").status_code == 404  # past any id


def test_only_admins_reach_the_team_admin_pages(app):
    team_id = make_team(app)
    owner = signed_in(app, "ann@example.com")
    with services(app).db.session_scope() as conn:
        teams.add_member(conn, team_id, find_user(conn, "ann@example.com").id, "owner", clock.utcnow())
    token = csrf_token(owner, "/console/keys")
    assert owner.get(TEAMS).status_code == 403
    assert owner.get(f"{TEAMS}/{team_id}").status_code == 403
    for path, data in (
        (TEAMS, {"name": "mine", "period": "day"}),
        (f"{TEAMS}/{team_id}/credit", {"amount_usd": "1000"}),
        (f"{TEAMS}/{team_id}/budget", {"budget_usd": "", "period": "day"}),
    ):
        assert owner.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    assert team(app).balance_micros == 0 and team(app).budget_micros is None
    assert app.test_client().get(TEAMS).status_code == 302  # not signed in: to the sign-in page


def test_team_admin_forms_refuse_a_missing_csrf_token(app):
    team_id = make_team(app)
    admin = signed_in(app, "root@example.com", is_admin=True)
    for path, data in (
        (TEAMS, {"name": "sneaky", "period": "day"}),
        (f"{TEAMS}/{team_id}/credit", {"amount_usd": "1000"}),
        (f"{TEAMS}/{team_id}/budget", {"budget_usd": "1", "period": "day"}),
    ):
        resp = admin.post(path, data=data)
        assert resp.status_code == 400 and "CSRF" in text(resp), path
    assert team(app).balance_micros == 0 and team(app).budget_micros is None
    with services(app).db.session_scope() as conn:
        assert len(teams.list_teams(conn, clock.utcnow())) == 1
