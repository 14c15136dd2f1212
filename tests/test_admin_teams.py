"""The admin API's teams and budgets, on SQLite and PostgreSQL: teams, members, team keys, credit, budgets."""

from __future__ import annotations

import pytest

from tests.support.admin import TOKEN, call_chat, create_key, create_user
from tests.support.app import PRICED, assert_envelope, make_account

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_app):
    return make_app(providers=PRICED, admin_token=TOKEN)


@pytest.fixture
def admin(app):
    client = app.test_client()

    def call(method: str, path: str, json=None, headers=None):
        return client.open("/api/admin" + path, method=method, json=json, headers=headers or ADMIN)

    return call


def create_team(admin, name: str = "research", **fields) -> dict:
    resp = admin("POST", "/teams", {"name": name, **fields})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def test_a_team_is_created_listed_and_shown_with_its_budget(admin):
    team = create_team(admin, budget_usd=50, budget_period="month")
    assert team["object"] == "team" and team["name"] == "research"
    assert team["budget_micros"] == 50_000_000 and team["budget_period"] == "month"
    assert team["period_spent_micros"] == 0 and team["period_resets_at"]
    assert team["balance_micros"] == 0 and team["members"] == []
    listed = admin("GET", "/teams").get_json()
    assert [t["name"] for t in listed["data"]] == ["research"]
    assert admin("GET", f"/teams/{team['id']}").get_json()["id"] == team["id"]
    again = admin("POST", "/teams", {"name": "research"})
    assert again.status_code == 409


def test_members_credit_and_budget_change_the_team(admin):
    team = create_team(admin)
    ada = create_user(admin, "ada@example.com")
    resp = admin("POST", f"/teams/{team['id']}/members", {"user_id": ada["id"], "role": "owner"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["members"] == [{"email": "ada@example.com", "role": "owner"}]
    credited = admin("POST", f"/teams/{team['id']}/credit", {"amount_usd": "2.5", "note": "q4"}).get_json()
    assert credited["team"]["balance_micros"] == 2_500_000
    too_much = admin("POST", f"/teams/{team['id']}/credit", {"amount_usd": -3})
    assert_envelope(too_much, 400, "insufficient_balance", "amount_usd")
    patched = admin("PATCH", f"/teams/{team['id']}", {"budget_micros": 1000, "budget_period": "day"})
    assert patched.get_json()["budget_micros"] == 1000 and patched.get_json()["budget_period"] == "day"
    cleared = admin("PATCH", f"/teams/{team['id']}", {"budget_micros": None}).get_json()
    assert cleared["budget_micros"] is None and cleared["budget_period"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"budget_usd": -1, "budget_period": "day"}, "budget_usd"),
        ({"budget_usd": 1, "budget_period": "fortnight"}, "period"),
        ({"budget_usd": 1}, "period"),
        ({"budget_usd": 1, "budget_period": 7}, "budget_period"),
        ({"name": "x"}, "name"),
    ],
)
def test_bad_budgets_are_400s_naming_the_field(admin, body, param):
    team = create_team(admin)
    resp = admin("PATCH", f"/teams/{team['id']}", body)
    assert_envelope(resp, 400, "invalid_request", param)


def test_a_team_key_is_only_for_members_and_stops_when_they_leave(app, admin):
    team = create_team(admin)
    ada = create_user(admin, "ada@example.com", credit_usd=1)
    refused = admin("POST", "/keys", {"user_id": ada["id"], "team_id": team["id"]})
    assert_envelope(refused, 400, "not_a_team_member", "team")
    assert admin("POST", "/keys", {"user_id": ada["id"], "team_id": 999_999}).status_code == 404
    admin("POST", f"/teams/{team['id']}/members", {"user_id": ada["id"]})
    admin("POST", f"/teams/{team['id']}/credit", {"amount_usd": 1})
    key = create_key(admin, ada["id"], team_id=team["id"], budget_usd="0.5", budget_period="week")
    assert key["budget_micros"] == 500_000 and key["budget_period"] == "week"
    assert call_chat(app, key["key"]).status_code == 200
    assert admin("DELETE", f"/teams/{team['id']}/members/{ada['id']}").status_code == 200
    assert call_chat(app, key["key"]).status_code == 401
    again = admin("DELETE", f"/teams/{team['id']}/members/{ada['id']}")
    assert_envelope(again, 400, "invalid_request", "user_id")


def test_keys_and_users_take_budgets(admin):
    ada = create_user(admin, "ada@example.com")
    key = create_key(admin, ada["id"])
    patched = admin("PATCH", f"/keys/{key['id']}", {"budget_usd": 3, "budget_period": "day"}).get_json()
    assert patched["budget_micros"] == 3_000_000 and patched["budget_period"] == "day"
    user = admin("PATCH", f"/users/{ada['id']}", {"budget_micros": 10, "budget_period": "month"}).get_json()
    assert user["budget_micros"] == 10 and user["budget_period"] == "month"
    assert user["period_spent_micros"] == 0 and user["period_resets_at"]


def test_only_admins_manage_teams(app, admin):
    stranger = make_account(app, email="stranger@example.com")
    resp = admin("GET", "/teams", headers=stranger.headers)
    assert_envelope(resp, 403, "permission_denied")
    assert admin("POST", "/teams", {"name": "x"}, headers=stranger.headers).status_code == 403
