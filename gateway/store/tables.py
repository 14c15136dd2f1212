"""The tables, as SQLAlchemy Core; schema.sql is the same schema as PostgreSQL DDL (a test compares)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData()

# BIGINT identities on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column:
    return Column("id", Id, primary_key=True, autoincrement=True)


def _created_at() -> Column:
    return Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=text("CURRENT_TIMESTAMP")
    )


def _rate_limits() -> list[Column]:
    """Requests and tokens per minute and concurrent requests; NULL means no limit."""
    return [Column("rpm_limit", Integer), Column("tpm_limit", BigInteger), Column("max_concurrent", Integer)]


def _budget() -> list[Column]:
    """A periodic budget (store/periods.py): NULL budget_micros means none.

    period_spent_micros counts settled cost since period_start; period_held_micros the open holds.
    A row whose period_start is older than the current period's start has spent nothing in it.
    """
    return [
        Column("budget_micros", BigInteger),
        Column("budget_period", String(8)),  # 'day' | 'week' | 'month'
        Column("period_start", DateTime(timezone=True)),
        Column("period_spent_micros", BigInteger, nullable=False, server_default=text("0")),
        Column("period_held_micros", BigInteger, nullable=False, server_default=text("0")),
    ]


users = Table(
    "users",
    metadata,
    _id(),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255)),
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("unlimited", Boolean, nullable=False, server_default=false()),
    Column("balance_micros", BigInteger, nullable=False, server_default=text("0")),
    Column("held_micros", BigInteger, nullable=False, server_default=text("0")),
    _created_at(),
    *_rate_limits(),
    # Bumped by sign-out and "sign out everywhere": a console session made before it is refused.
    Column("session_generation", Integer, nullable=False, server_default=text("0")),
    *_budget(),
)

# A team has members, its own balance (team keys draw on it) and optionally a periodic budget.
teams = Table(
    "teams",
    metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("balance_micros", BigInteger, nullable=False, server_default=text("0")),
    Column("held_micros", BigInteger, nullable=False, server_default=text("0")),
    *_budget(),
    _created_at(),
)

team_members = Table(
    "team_members",
    metadata,
    _id(),
    Column("team_id", Id, ForeignKey("teams.id"), nullable=False),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("role", String(16), nullable=False),  # 'owner' | 'member'
    _created_at(),
    UniqueConstraint("team_id", "user_id", name="uq_team_members"),
)

# Credits and debits of a team's balance made by admins, with their reason.
team_ledger_entries = Table(
    "team_ledger_entries",
    metadata,
    _id(),
    Column("team_id", Id, ForeignKey("teams.id"), nullable=False, index=True),
    Column("amount_micros", BigInteger, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    _created_at(),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("allowed_models", Text),  # comma-separated provider:model ids; NULL allows all
    Column("limit_micros", BigInteger),  # NULL means no limit of the key's own
    Column("spent_micros", BigInteger, nullable=False, server_default=text("0")),
    Column("held_micros", BigInteger, nullable=False, server_default=text("0")),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    _created_at(),
    *_rate_limits(),
    *_budget(),
    # A team key draws on the team's balance and budget; it works only while its user is a member.
    Column("team_id", Id, ForeignKey("teams.id"), index=True),
)

# One row per request in flight: the worst-case amount held on the user (or the team) and the key.
# Request ids are the client's (X-Request-Id), so they are unique per user, not across users.
holds = Table(
    "holds",
    metadata,
    _id(),
    Column("request_id", String(128), nullable=False),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("key_id", Id, ForeignKey("api_keys.id"), nullable=False),
    Column("model", String(255), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    _created_at(),
    # The worker refreshes it while the request runs; the sweep takes only holds it stopped refreshing.
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("team_id", Id, ForeignKey("teams.id")),  # a team key's hold: held on the team, not the user
    UniqueConstraint("user_id", "request_id", name="uq_holds_user_request"),
    Index("ix_holds_created_at", "created_at"),
)

usage_records = Table(
    "usage_records",
    metadata,
    _id(),
    Column("request_id", String(128), nullable=False),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("key_id", Id, ForeignKey("api_keys.id"), nullable=False),
    Column("model", String(255), nullable=False),
    Column("prompt_tokens", Integer, nullable=False, server_default=text("0")),
    Column("completion_tokens", Integer, nullable=False, server_default=text("0")),
    Column("cached_tokens", Integer, nullable=False, server_default=text("0")),
    Column("reasoning_tokens", Integer, nullable=False, server_default=text("0")),
    Column("cost_micros", BigInteger, nullable=False, server_default=text("0")),
    Column("status", Integer, nullable=False),
    Column("stream", Boolean, nullable=False, server_default=false()),
    Column("latency_ms", Integer, nullable=False, server_default=text("0")),
    Column("ttfb_ms", Integer),
    Column("outcome", String(32), nullable=False),
    Column("estimated", Boolean, nullable=False, server_default=false()),
    _created_at(),
    Column("team_id", Id, ForeignKey("teams.id")),  # the team whose balance paid (team keys)
    UniqueConstraint("user_id", "request_id", name="uq_usage_records_user_request"),
    Index("ix_usage_records_user_id_created_at", "user_id", "created_at"),
    Index("ix_usage_records_key_id_created_at", "key_id", "created_at"),
    # The newest rows for everyone (the admin's console) and the retention's oldest-first deletes.
    Index("ix_usage_records_created_at_id", "created_at", "id"),
)


def _sums(name: str, moment: str) -> Table:
    """A table of usage sums per period (its start in `moment`, UTC), user, key and model."""
    return Table(
        name,
        metadata,
        _id(),
        Column(moment, DateTime(timezone=True), nullable=False),
        Column("user_id", Id, ForeignKey("users.id"), nullable=False),
        Column("key_id", Id, ForeignKey("api_keys.id"), nullable=False),
        Column("model", String(255), nullable=False),
        # The key's team, written at settlement (a key never changes team, so it is one per row).
        Column("team_id", Id),
        Column("requests", BigInteger, nullable=False, server_default=text("0")),
        Column("prompt_tokens", BigInteger, nullable=False, server_default=text("0")),
        Column("completion_tokens", BigInteger, nullable=False, server_default=text("0")),
        Column("cached_tokens", BigInteger, nullable=False, server_default=text("0")),
        Column("reasoning_tokens", BigInteger, nullable=False, server_default=text("0")),
        Column("cost_micros", BigInteger, nullable=False, server_default=text("0")),
        UniqueConstraint(moment, "user_id", "key_id", "model", name=f"uq_{name}"),
        Index(f"ix_{name}_user_id_{moment}", "user_id", moment),
        Index(f"ix_{name}_key_id_{moment}", "key_id", moment),
        Index(f"ix_{name}_team_id_{moment}", "team_id", moment),
    )


# Sums of usage_records per UTC hour and per UTC day, user, key and model, kept in the settlement's
# transaction, so reports read a row per day or hour instead of a row per request, and survive the
# raw rows' retention (store/aggregates.py).
usage_hourly = _sums("usage_hourly", "hour_at")
usage_daily = _sums("usage_daily", "day_at")

ledger_entries = Table(
    "ledger_entries",
    metadata,
    _id(),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("amount_micros", BigInteger, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    _created_at(),
)

# Console sign-in attempts per account (its email's SHA-256) in a fixed window: shared by every
# worker and host, so password guessing is limited however the requests are spread.
login_attempts = Table(
    "login_attempts",
    metadata,
    _id(),
    Column("subject", String(64), nullable=False, unique=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("window_started_at", DateTime(timezone=True), nullable=False),
)

# Each rate-limited subject's current one-minute window ("key:12", "user:3"): one row a subject,
# reset in place when a new minute starts, so the table never grows with time.
rate_limit_windows = Table(
    "rate_limit_windows",
    metadata,
    _id(),
    Column("subject", String(64), nullable=False, unique=True),
    Column("window_minute", BigInteger, nullable=False),  # minutes since the Unix epoch
    Column("requests", Integer, nullable=False, server_default=text("0")),
    Column("tokens", BigInteger, nullable=False, server_default=text("0")),
)

# Channels benched after a failure ("provider/channel"), shared by every worker and host: one row a
# channel, moved forward in place, so the table never grows beyond the configured channels.
channel_cooldowns = Table(
    "channel_cooldowns",
    metadata,
    _id(),
    Column("channel", String(255), nullable=False, unique=True),
    Column("until_at", DateTime(timezone=True), nullable=False),
)

# Stored Responses API responses, for previous_response_id and GET/DELETE /v1/responses/{id}: the
# response object and the input items it answered (the history before it included), per user,
# until expires_at. channel names the provider/channel that answered natively ("" if translated).
responses = Table(
    "responses",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("channel", String(255), nullable=False, server_default=""),
    Column("response", Text, nullable=False),
    Column("input_items", Text, nullable=False),
    _created_at(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_responses_expires_at", "expires_at"),
)

# One row: a counter bumped by every change to a key or a limit (store/changes.py), so the key
# cache of every process, on every host, learns of it within half a second.
access_changes = Table(
    "access_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False, server_default=text("0")),
)

# One row per alert sent (or being sent) for a subject ('team:3', 'user:2', 'key:5') and period:
# the unique constraint makes "exactly one per threshold and period" hold across workers and hosts.
budget_alerts = Table(
    "budget_alerts",
    metadata,
    _id(),
    Column("subject", String(64), nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),  # 'threshold' | 'exhausted'
    _created_at(),
    Column("sent_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("subject", "period_start", "kind", name="uq_budget_alerts"),
)
