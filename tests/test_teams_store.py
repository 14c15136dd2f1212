"""Teams in the store, on SQLite and PostgreSQL: members, roles, credits, budgets, team keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from gateway.errors import InvalidRequestError, NameTakenError, NotFoundError
from gateway.store import budgets, changes, keys, teams
from gateway.store.database import Database
from gateway.store.principals import find_principal
from gateway.store.tables import api_keys, team_ledger_entries, users
from gateway.store.users import create_user, list_users

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    database.create_schema()
    yield database
    database.dispose()


def test_create_team_and_refuse_a_second_of_the_same_name(db):
    with db.session_scope() as conn:
        team_id = teams.create_team(conn, "  research ", NOW)
    with pytest.raises(NameTakenError):
        with db.session_scope() as conn:
            teams.create_team(conn, "research", NOW)
    with db.session_scope() as conn:
        team = teams.get_team(conn, "research", NOW)
    assert (team.id, team.name, team.balance_micros, team.members) == (team_id, "research", 0, [])
    assert team.to_json()["period_resets_at"] is None


def test_members_have_roles_and_changes_bump_the_counter(db):
    with db.session_scope() as conn:
        team_id = teams.create_team(conn, "research", NOW)
        ann, bob = create_user(conn, "ann@example.com"), create_user(conn, "bob@example.com")
        before = changes.read_version(conn)
        teams.add_member(conn, team_id, ann, "owner", NOW)
        teams.add_member(conn, team_id, bob, "member", NOW)
        teams.add_member(conn, team_id, bob, "owner", NOW)  # a second add changes the role
        assert changes.read_version(conn) == before + 3
        assert teams.get_team(conn, "research", NOW).members == [
            {"email": "ann@example.com", "role": "owner"},
            {"email": "bob@example.com", "role": "owner"},
        ]
        assert teams.remove_member(conn, team_id, bob) is True
        assert teams.remove_member(conn, team_id, bob) is False
        assert changes.read_version(conn) == before + 4
        assert teams.role_of(conn, team_id, bob) is None
        with pytest.raises(InvalidRequestError):
            teams.add_member(conn, team_id, bob, "boss", NOW)


def test_credit_team_writes_a_ledger_entry_and_refuses_a_debit_below_available(db):
    with db.session_scope() as conn:
        team_id = teams.create_team(conn, "research", NOW)
        assert teams.credit_team(conn, team_id, 5_000_000, "budget Q4", NOW) == 5_000_000
        conn.execute(update(teams.teams).where(teams.teams.c.id == team_id).values(held_micros=4_000_000))
    with pytest.raises(InvalidRequestError) as info:
        with db.session_scope() as conn:
            teams.credit_team(conn, team_id, -2_000_000, "", NOW)
    assert info.value.code == "insufficient_balance"
    with db.session_scope() as conn:
        assert teams.credit_team(conn, team_id, -1_000_000, "back", NOW) == 4_000_000
        notes = conn.execute(select(team_ledger_entries.c.note).order_by(team_ledger_entries.c.id)).scalars()
        assert list(notes) == ["budget Q4", "back"]
        with pytest.raises(NotFoundError):
            teams.credit_team(conn, team_id + 99, 1, "", NOW)


def test_budget_read_fields_count_this_period_only(db):
    with db.session_scope() as conn:
        team_id = teams.create_team(conn, "research", NOW)
        user_id = create_user(conn, "ann@example.com")
        key_id, _ = keys.create_key(conn, user_id)
        for subject, subject_id in (("team", team_id), ("user", user_id), ("key", key_id)):
            assert budgets.set_budget(conn, subject, subject_id, 2_000_000, "day") is True
        spent = {"period_start": datetime(2026, 12, 2, tzinfo=UTC), "period_spent_micros": 700}
        conn.execute(update(users).where(users.c.id == user_id).values(**spent))
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**spent))
        conn.execute(update(teams.teams).where(teams.teams.c.id == team_id).values(**spent))
        tomorrow = datetime(2026, 12, 3, 0, 0, 1, tzinfo=UTC)
        for now, expect_spent, resets in ((NOW, 700, "2026-12-03"), (tomorrow, 0, "2026-12-04")):
            user = list_users(conn, user_id=user_id, now=now)[0].to_json()
            key = keys.list_keys(conn, key_id=key_id, now=now)[0].to_json()
            team = teams.get_team(conn, "research", now).to_json()
            for shown in (user, key, team):
                assert shown["budget_micros"] == 2_000_000
                assert shown["budget_period"] == "day"
                assert shown["period_spent_micros"] == expect_spent
                assert shown["period_resets_at"] == resets + "T00:00:00+00:00"


def test_set_budget_validates_clears_and_restarts_on_a_new_period_kind(db):
    with db.session_scope() as conn:
        user_id = create_user(conn, "ann@example.com")
        with pytest.raises(InvalidRequestError):
            budgets.set_budget(conn, "user", user_id, 1000, None)
        with pytest.raises(InvalidRequestError):
            budgets.set_budget(conn, "user", user_id, -1, "day")
        assert budgets.set_budget(conn, "user", user_id + 99, 1000, "day") is False
        budgets.set_budget(conn, "user", user_id, 1000, "day")
        start = datetime(2026, 12, 2, tzinfo=UTC)
        conn.execute(
            update(users).where(users.c.id == user_id).values(period_start=start, period_spent_micros=9)
        )
        budgets.set_budget(conn, "user", user_id, 5000, "day")  # same kind: the count goes on
        assert list_users(conn, user_id=user_id, now=NOW)[0].period_spent_micros == 9
        budgets.set_budget(conn, "user", user_id, 5000, "month")  # another kind: a fresh count
        assert list_users(conn, user_id=user_id, now=NOW)[0].period_spent_micros == 0
        budgets.set_budget(conn, "user", user_id, None, "month")
        user = list_users(conn, user_id=user_id, now=NOW)[0]
        assert (user.budget_micros, user.budget_period, user.period_resets_at) == (None, None, None)


def test_team_key_needs_a_member_and_stops_when_they_leave(db):
    with db.session_scope() as conn:
        team_id = teams.create_team(conn, "research", NOW)
        ann, bob = create_user(conn, "ann@example.com"), create_user(conn, "bob@example.com")
        teams.add_member(conn, team_id, ann, "member", NOW)
        key_id, minted = keys.create_key(conn, ann, team_id=team_id)
        with pytest.raises(InvalidRequestError) as info:
            keys.create_key(conn, bob, team_id=team_id)
        assert info.value.code == "not_a_team_member"
        principal = find_principal(conn, minted.hash)
        assert principal is not None and principal.team_id == team_id
        assert keys.list_keys(conn, team_id=team_id)[0].id == key_id
        teams.remove_member(conn, team_id, ann)
        assert find_principal(conn, minted.hash) is None
        own_id, own = keys.create_key(conn, ann)  # her own keys still work
        own_principal = find_principal(conn, own.hash)
        assert own_principal is not None and own_principal.team_id is None
