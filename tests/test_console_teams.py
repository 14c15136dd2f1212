"""The console's team pages: what owners, members and outsiders see and may do, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from gateway import clock
from gateway.console.formatting import usd
from gateway.store import budgets, keys, teams
from gateway.store.keys import list_keys
from gateway.store.periods import period_start
from gateway.store.tables import api_keys
from gateway.store.users import find_user
from tests.support.app import PRICED, chat, services
from tests.support.console import NEW_KEY, add_user, csrf_token, post_form, signed_in, text


@pytest.fixture
def app(make_app):
    # A long cache TTL: a removed member's key must stop because the route clears the cache.
    return make_app(providers=PRICED, key_cache_ttl=300.0)


def make_team(app, name: str = "research", *, owner: str | None = None, credit: int = 0) -> int:
    """Create a team in the store, with an owner (an existing user) and credit when given."""
    now = clock.utcnow()
    with services(app).db.session_scope() as conn:
        team_id = teams.create_team(conn, name, now)
        if owner is not None:
            teams.add_member(conn, team_id, user_of(conn, owner), "owner", now)
        if credit:
            teams.credit_team(conn, team_id, credit, "", now)
    return team_id


def user_of(conn, email: str) -> int:
    return find_user(conn, email).id


def join(app, team_id: int, email: str, role: str = "member") -> int:
    with services(app).db.session_scope() as conn:
        user_id = user_of(conn, email)
        teams.add_member(conn, team_id, user_id, role, clock.utcnow())
    return user_id


def role(app, team_id: int, email: str) -> str | None:
    with services(app).db.session_scope() as conn:
        return teams.role_of(conn, team_id, user_of(conn, email))


def team_path(team_id: int, tail: str = "") -> str:
    return f"/console/teams/{team_id}{tail}"


def test_a_member_sees_their_teams_with_balance_and_budget_bar(app):
    ann = signed_in(app, "ann@example.com")
    team_id = make_team(app, owner="ann@example.com", credit=5_000_000)
    with services(app).db.session_scope() as conn:
        budgets.set_budget(conn, "team", team_id, 2_000_000, "month")
    listing = text(ann.get("/console/teams"))
    assert f'href="/console/teams/{team_id}"' in listing and "research" in listing
    assert "$5.00" in listing and "of $2.00 this month" in listing
    page = ann.get(team_path(team_id))
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    body = text(page)
    assert re.search(
        r'<div class="budget ok" id="team-budget">\s*<progress class="budget-bar ok" max="100" value="0"',
        body,
    )
    assert "resets " in body and "UTC" in body
    assert 'id="members-table"' in body and "ann@example.com" in body


def test_someone_outside_the_team_sees_nothing_of_it(app):
    signed_in(app, "ann@example.com")
    team_id = make_team(app, "secret-project", owner="ann@example.com", credit=7_000_000)
    eve = signed_in(app, "eve@example.com")
    assert "secret-project" not in text(eve.get("/console/teams"))
    for path in (team_path(team_id), team_path(999_999)):
        page = eve.get(path)
        assert page.status_code == 404, path
        assert "secret-project" not in text(page) and "$7.00" not in text(page)
        assert "There is no such team among yours." in text(page)
    token = csrf_token(eve, "/console/keys")
    add = eve.post(
        team_path(team_id, "/members"),
        data={"email": "eve@example.com", "role": "owner", "csrf_token": token},
    )
    key = eve.post(team_path(team_id, "/keys"), data={"name": "mine", "csrf_token": token})
    assert add.status_code == 404 and key.status_code == 404
    assert role(app, team_id, "eve@example.com") is None


def test_an_owner_adds_a_member_by_email_and_changes_their_role(app):
    ann = signed_in(app, "ann@example.com")
    add_user(app, "bo@example.com")
    team_id = make_team(app, owner="ann@example.com")
    resp = post_form(
        ann,
        team_path(team_id, "/members"),
        {"email": " Bo@Example.com ", "role": "member"},
        page=team_path(team_id),
    )
    assert resp.status_code == 302 and resp.location == team_path(team_id)
    assert role(app, team_id, "bo@example.com") == "member"
    assert "bo@example.com is now a member of the team." in text(ann.get(team_path(team_id)))
    post_form(
        ann,
        team_path(team_id, "/members"),
        {"email": "bo@example.com", "role": "owner"},
        page=team_path(team_id),
    )
    assert role(app, team_id, "bo@example.com") == "owner"


@pytest.mark.parametrize(
    "form, status, message",
    [
        ({"email": "nobody@example.com", "role": "member"}, 404, "There is no account with this email"),
        ({"email": "not-an-email", "role": "member"}, 400, "Enter an email address"),
        ({"email": "bo@example.com", "role": "king"}, 400, "Not a valid choice"),
        ({"role": "member"}, 400, "This field is required"),
    ],
)
def test_adding_a_member_refuses_bad_input_with_a_4xx_page(app, form, status, message):
    ann = signed_in(app, "ann@example.com")
    add_user(app, "bo@example.com")
    team_id = make_team(app, owner="ann@example.com")
    resp = post_form(ann, team_path(team_id, "/members"), form, page=team_path(team_id))
    assert resp.status_code == status and message in text(resp)
    assert role(app, team_id, "bo@example.com") is None


def test_a_member_cannot_add_or_remove_members(app):
    signed_in(app, "ann@example.com")
    bo = signed_in(app, "bo@example.com")
    add_user(app, "cy@example.com")
    team_id = make_team(app, owner="ann@example.com")
    join(app, team_id, "bo@example.com")
    page = text(bo.get(team_path(team_id)))
    assert 'id="add-member-form"' not in page and "remove-member-" not in page
    resp = post_form(
        bo,
        team_path(team_id, "/members"),
        {"email": "cy@example.com", "role": "owner"},
        page=team_path(team_id),
    )
    assert resp.status_code == 403 and "Only owners of the team" in text(resp)
    with services(app).db.session_scope() as conn:
        ann_id = user_of(conn, "ann@example.com")
    resp = post_form(bo, team_path(team_id, f"/members/{ann_id}/remove"), {}, page=team_path(team_id))
    assert resp.status_code == 403
    assert role(app, team_id, "cy@example.com") is None and role(app, team_id, "ann@example.com") == "owner"


def test_team_forms_refuse_a_missing_or_wrong_csrf_token(app):
    ann = signed_in(app, "ann@example.com")
    bo_id = add_user(app, "bo@example.com")
    team_id = make_team(app, owner="ann@example.com")
    join(app, team_id, "bo@example.com")
    with services(app).db.session_scope() as conn:
        key_id, _ = keys.create_key(conn, bo_id, name="bo's", team_id=team_id)
    for path, data in (
        (team_path(team_id, "/members"), {"email": "bo@example.com", "role": "owner"}),
        (team_path(team_id, f"/members/{bo_id}/remove"), {}),
        (team_path(team_id, "/keys"), {"name": "sneaky"}),
        (team_path(team_id, f"/keys/{key_id}/revoke"), {}),
    ):
        for token in (None, "forged"):
            sent = data if token is None else {**data, "csrf_token": token}
            resp = ann.post(path, data=sent)
            assert resp.status_code == 400 and "CSRF" in text(resp), path
    assert role(app, team_id, "bo@example.com") == "member"
    with services(app).db.session_scope() as conn:
        assert [k.state for k in list_keys(conn, team_id=team_id)] == ["active"]


def test_an_owner_removes_a_member_and_their_team_key_stops_working(app):
    ann = signed_in(app, "ann@example.com")
    bo = signed_in(app, "bo@example.com")
    team_id = make_team(app, owner="ann@example.com", credit=10_000_000)
    bo_id = join(app, team_id, "bo@example.com")
    made = post_form(bo, team_path(team_id, "/keys"), {"name": "bo's notebook"}, page=team_path(team_id))
    secret = NEW_KEY.search(text(made)).group(1)
    headers = {"Authorization": f"Bearer {secret}"}
    assert (
        app.test_client()
        .post("/api/v1/chat/completions", json=chat("priced:echo"), headers=headers)
        .status_code
        == 200
    )

    resp = post_form(ann, team_path(team_id, f"/members/{bo_id}/remove"), {}, page=team_path(team_id))
    assert resp.status_code == 302 and resp.location == team_path(team_id)
    assert role(app, team_id, "bo@example.com") is None
    assert "bo@example.com is no longer in the team" in text(ann.get(team_path(team_id)))
    assert (
        app.test_client()
        .post("/api/v1/chat/completions", json=chat("priced:echo"), headers=headers)
        .status_code
        == 401
    )
    assert bo.get(team_path(team_id)).status_code == 404
    again = post_form(ann, team_path(team_id, f"/members/{bo_id}/remove"), {}, page=team_path(team_id))
    assert again.status_code == 404


def test_the_last_owner_cannot_be_removed_or_demoted(app):
    ann = signed_in(app, "ann@example.com")
    team_id = make_team(app, owner="ann@example.com")
    with services(app).db.session_scope() as conn:
        ann_id = user_of(conn, "ann@example.com")
    resp = post_form(ann, team_path(team_id, f"/members/{ann_id}/remove"), {}, page=team_path(team_id))
    assert resp.status_code == 409 and "at least one owner" in text(resp)
    resp = post_form(
        ann,
        team_path(team_id, "/members"),
        {"email": "ann@example.com", "role": "member"},
        page=team_path(team_id),
    )
    assert resp.status_code == 409 and "at least one owner" in text(resp)
    assert role(app, team_id, "ann@example.com") == "owner"


def test_a_member_makes_a_team_key_shown_once_on_the_teams_balance(app):
    signed_in(app, "ann@example.com")
    bo = signed_in(app, "bo@example.com")
    team_id = make_team(app, owner="ann@example.com", credit=10_000_000)
    join(app, team_id, "bo@example.com")
    resp = post_form(bo, team_path(team_id, "/keys"), {"name": "notebook"}, page=team_path(team_id))
    assert resp.status_code == 201 and resp.headers["Cache-Control"] == "no-store"
    secret = NEW_KEY.search(text(resp)).group(1)
    with services(app).db.session_scope() as conn:
        (key,) = list_keys(conn, team_id=team_id)
    assert key.name == "notebook" and key.email == "bo@example.com" and secret.startswith(key.prefix)
    assert secret not in text(bo.get(team_path(team_id)))
    keys_page = text(bo.get("/console/keys"))
    assert key.prefix in keys_page and "team research" in keys_page and secret not in keys_page
    empty = post_form(bo, team_path(team_id, "/keys"), {"name": ""}, page=team_path(team_id))
    assert empty.status_code == 400 and "This field is required" in text(empty)


def test_owners_see_every_members_keys_and_usage_members_only_their_own(app):
    ann = signed_in(app, "ann@example.com")
    bo = signed_in(app, "bo@example.com")
    team_id = make_team(app, owner="ann@example.com", credit=10_000_000)
    join(app, team_id, "bo@example.com")
    with services(app).db.session_scope() as conn:
        ann_key, ann_secret = keys.create_key(
            conn, user_of(conn, "ann@example.com"), name="ann-key", team_id=team_id
        )
        bo_key, bo_secret = keys.create_key(
            conn, user_of(conn, "bo@example.com"), name="bo-key", team_id=team_id
        )
    api = app.test_client()
    for secret, model in (
        (ann_secret.secret, "priced:echo"),
        (bo_secret.secret, "priced:echo"),
        (bo_secret.secret, "mock:echo"),
    ):
        resp = api.post(
            "/api/v1/chat/completions", json=chat(model), headers={"Authorization": f"Bearer {secret}"}
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)

    owner_page = text(ann.get(team_path(team_id)))
    usage = owner_page.split('id="team-usage"')[1]
    assert "ann-key" in owner_page and "bo-key" in owner_page
    assert usage.count("<tr><td") == 3  # ann × priced, bo × priced, bo × mock
    assert "ann@example.com" in usage and "bo@example.com" in usage and "mock:echo" in usage

    member_page = text(bo.get(team_path(team_id)))
    usage = member_page.split('id="team-usage"')[1]
    assert "bo-key" in member_page and "ann-key" not in member_page
    assert usage.count("<tr><td") == 2 and "ann@example.com" not in usage


def test_an_admin_manages_members_of_any_team(app):
    admin = signed_in(app, "root@example.com", is_admin=True)
    add_user(app, "bo@example.com")
    team_id = make_team(app)
    page = admin.get(team_path(team_id))
    assert page.status_code == 200 and "as an administrator" in text(page)
    resp = post_form(
        admin,
        team_path(team_id, "/members"),
        {"email": "bo@example.com", "role": "owner"},
        page=team_path(team_id),
    )
    assert resp.status_code == 302 and role(app, team_id, "bo@example.com") == "owner"
    assert admin.get(team_path(999_999)).status_code == 404
    key = post_form(admin, team_path(team_id, "/keys"), {"name": "x"}, page=team_path(team_id))
    assert key.status_code == 403  # a team key is a member's


def test_keys_and_usage_pages_show_the_periods_spend_against_each_budget(app):
    ann = signed_in(app, "ann@example.com", balance_micros=10_000_000)
    team_id = make_team(app, owner="ann@example.com", credit=10_000_000)
    with services(app).db.session_scope() as conn:
        ann_id = user_of(conn, "ann@example.com")
        key_id, minted = keys.create_key(conn, ann_id, name="capped")
        keys.create_key(conn, ann_id, name="free")
        budgets.set_budget(conn, "key", key_id, 1_000_000, "day")
        budgets.set_budget(conn, "user", ann_id, 3_000_000, "week")
        budgets.set_budget(conn, "team", team_id, 4_000_000, "month")
    resp = app.test_client().post(
        "/api/v1/chat/completions",
        json=chat("priced:echo"),
        headers={"Authorization": f"Bearer {minted.secret}"},
    )
    assert resp.status_code == 200
    with services(app).db.session_scope() as conn:
        spent = keys.get_key(conn, key_id).period_spent_micros
    assert spent > 0
    keys_page = text(ann.get("/console/keys"))
    bars = re.findall(r'<progress class="budget-bar (\w+)" max="100" value="(\d+)"', keys_page)
    assert bars == [("ok", str(spent * 100 // 1_000_000))]  # the key without a budget has no bar
    assert f"{usd(spent)} of $1.00 this day" in keys_page

    # 85% spent this period turns the bar amber; a counter of an older period reads as nothing spent.
    now = clock.utcnow()
    for start, expected in (
        (period_start("day", now), ("warn", "85")),
        (now - timedelta(days=2), ("ok", "0")),
    ):
        with services(app).db.session_scope() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id)
                .values(period_start=start, period_spent_micros=850_000)
            )
        bars = re.findall(
            r'<progress class="budget-bar (\w+)" max="100" value="(\d+)"', text(ann.get("/console/keys"))
        )
        assert bars == [expected]

    usage_page = text(ann.get("/console/usage"))
    table = usage_page.split('id="budgets"')[1].split("</table>")[0]
    assert "Your budget" in table and f"{usd(spent)}</strong> of $3.00 this week" in table
    assert "Key capped" in table and "Key free" not in table
    assert "Team research" in table and "of $4.00 this month" in table


def test_the_usage_page_has_no_budgets_card_without_budgets(app):
    ann = signed_in(app, "ann@example.com")
    assert 'id="budgets"' not in text(ann.get("/console/usage"))


def test_an_owner_revokes_a_members_team_key_a_member_only_their_own(app):
    ann = signed_in(app, "ann@example.com")
    bo = signed_in(app, "bo@example.com")
    cy = signed_in(app, "cy@example.com")
    team_id = make_team(app, owner="ann@example.com", credit=10_000_000)
    join(app, team_id, "bo@example.com")
    join(app, team_id, "cy@example.com")
    with services(app).db.session_scope() as conn:
        bo_key, bo_minted = keys.create_key(conn, user_of(conn, "bo@example.com"), name="bo", team_id=team_id)
        cy_key, _ = keys.create_key(conn, user_of(conn, "cy@example.com"), name="cy", team_id=team_id)
        own_key, _ = keys.create_key(conn, user_of(conn, "bo@example.com"), name="not a team key")
    headers = {"Authorization": f"Bearer {bo_minted.secret}"}
    api = app.test_client()
    assert api.post("/api/v1/chat/completions", json=chat("priced:echo"), headers=headers).status_code == 200

    page = team_path(team_id)
    for key_id in (cy_key, own_key, 999_999):  # another member's, not the team's, none at all
        resp = post_form(bo, team_path(team_id, f"/keys/{key_id}/revoke"), {}, page=page)
        assert resp.status_code == 404, key_id
    resp = post_form(ann, team_path(team_id, f"/keys/{bo_key}/revoke"), {}, page=page)
    assert resp.status_code == 302 and resp.location == page
    assert "of bo@example.com is revoked" in text(ann.get(page))
    assert api.post("/api/v1/chat/completions", json=chat("priced:echo"), headers=headers).status_code == 401
    again = post_form(ann, team_path(team_id, f"/keys/{bo_key}/revoke"), {}, page=page)
    assert again.status_code == 404
    assert post_form(bo, team_path(team_id, f"/keys/{cy_key}/revoke"), {}, page=page).status_code == 404
    with services(app).db.session_scope() as conn:
        states = {k.id: k.state for k in list_keys(conn)}
    assert (states[bo_key], states[cy_key], states[own_key]) == ("revoked", "active", "active")
    assert post_form(cy, team_path(team_id, f"/keys/{cy_key}/revoke"), {}, page=page).status_code == 302
    with services(app).db.session_scope() as conn:
        assert keys.get_key(conn, cy_key).state == "revoked"
