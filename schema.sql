-- The gateway's schema for PostgreSQL (what an operator runs with psql -f schema.sql).
-- gateway/store/tables.py defines the same tables in code; tests/test_schema.py proves they agree.
-- Money is integer micro-USD (1 USD = 1,000,000); timestamps are UTC.

CREATE TABLE IF NOT EXISTS users (
    id             BIGSERIAL PRIMARY KEY,
    email          VARCHAR(320) NOT NULL UNIQUE,
    password_hash  VARCHAR(255),
    is_admin       BOOLEAN NOT NULL DEFAULT false,
    unlimited      BOOLEAN NOT NULL DEFAULT false,
    balance_micros BIGINT NOT NULL DEFAULT 0,
    held_micros    BIGINT NOT NULL DEFAULT 0,   -- sum of open holds
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    rpm_limit      INTEGER,                     -- requests per minute; NULL = no limit
    tpm_limit      BIGINT,                      -- tokens per minute; NULL = no limit
    max_concurrent INTEGER,                     -- requests in flight; NULL = no limit
    session_generation INTEGER NOT NULL DEFAULT 0, -- bumped by sign-out: older console sessions end
    budget_micros  BIGINT,                      -- periodic budget; NULL = none
    budget_period  VARCHAR(8),                  -- 'day' | 'week' | 'month' (UTC calendar periods)
    period_start   TIMESTAMP WITH TIME ZONE,    -- start of the period period_spent counts
    period_spent_micros BIGINT NOT NULL DEFAULT 0,
    period_held_micros  BIGINT NOT NULL DEFAULT 0
);

-- A team: members, its own balance (team keys draw on it) and optionally a periodic budget.
CREATE TABLE IF NOT EXISTS teams (
    id             BIGSERIAL PRIMARY KEY,
    name           VARCHAR(200) NOT NULL UNIQUE,
    balance_micros BIGINT NOT NULL DEFAULT 0,
    held_micros    BIGINT NOT NULL DEFAULT 0,   -- sum of the team keys' open holds
    budget_micros  BIGINT,                      -- periodic budget; NULL = none
    budget_period  VARCHAR(8),                  -- 'day' | 'week' | 'month' (UTC calendar periods)
    period_start   TIMESTAMP WITH TIME ZONE,    -- start of the period period_spent counts
    period_spent_micros BIGINT NOT NULL DEFAULT 0,
    period_held_micros  BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS team_members (
    id             BIGSERIAL PRIMARY KEY,
    team_id        BIGINT NOT NULL REFERENCES teams (id),
    user_id        BIGINT NOT NULL REFERENCES users (id),
    role           VARCHAR(16) NOT NULL,        -- 'owner' | 'member'
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uq_team_members UNIQUE (team_id, user_id)
);
CREATE INDEX IF NOT EXISTS ix_team_members_user_id ON team_members (user_id);

-- Credits and debits of a team's balance made by admins, with their reason.
CREATE TABLE IF NOT EXISTS team_ledger_entries (
    id             BIGSERIAL PRIMARY KEY,
    team_id        BIGINT NOT NULL REFERENCES teams (id),
    amount_micros  BIGINT NOT NULL,
    note           TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS ix_team_ledger_entries_team_id ON team_ledger_entries (team_id);

-- Only the SHA-256 of a key and a short display prefix are stored, never the key.
CREATE TABLE IF NOT EXISTS api_keys (
    id             BIGSERIAL PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id),
    name           VARCHAR(200) NOT NULL DEFAULT '',
    key_hash       VARCHAR(64) NOT NULL UNIQUE,
    prefix         VARCHAR(16) NOT NULL,
    allowed_models TEXT,                        -- comma-separated provider:model ids; NULL = all
    limit_micros   BIGINT,                      -- NULL = no limit of the key's own
    spent_micros   BIGINT NOT NULL DEFAULT 0,
    held_micros    BIGINT NOT NULL DEFAULT 0,
    disabled       BOOLEAN NOT NULL DEFAULT false,
    expires_at     TIMESTAMP WITH TIME ZONE,
    revoked_at     TIMESTAMP WITH TIME ZONE,
    last_used_at   TIMESTAMP WITH TIME ZONE,
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    rpm_limit      INTEGER,                     -- requests per minute; NULL = no limit
    tpm_limit      BIGINT,                      -- tokens per minute; NULL = no limit
    max_concurrent INTEGER,                     -- requests in flight; NULL = no limit
    budget_micros  BIGINT,                      -- periodic budget; NULL = none
    budget_period  VARCHAR(8),                  -- 'day' | 'week' | 'month' (UTC calendar periods)
    period_start   TIMESTAMP WITH TIME ZONE,    -- start of the period period_spent counts
    period_spent_micros BIGINT NOT NULL DEFAULT 0,
    period_held_micros  BIGINT NOT NULL DEFAULT 0,
    team_id        BIGINT REFERENCES teams (id) -- a team key: draws on the team; only while a member
);
CREATE INDEX IF NOT EXISTS ix_api_keys_user_id ON api_keys (user_id);
CREATE INDEX IF NOT EXISTS ix_api_keys_team_id ON api_keys (team_id);

-- Credits and debits made by admins, with their reason.
CREATE TABLE IF NOT EXISTS ledger_entries (
    id             BIGSERIAL PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id),
    amount_micros  BIGINT NOT NULL,
    note           TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS ix_ledger_entries_user_id ON ledger_entries (user_id);

-- One row per request in flight: its worst-case cost, held on the user and the key.
-- Request ids are the client's (X-Request-Id): unique per user, never across users.
CREATE TABLE IF NOT EXISTS holds (
    id             BIGSERIAL PRIMARY KEY,
    request_id     VARCHAR(128) NOT NULL,
    user_id        BIGINT NOT NULL REFERENCES users (id),
    key_id         BIGINT NOT NULL REFERENCES api_keys (id),
    model          VARCHAR(255) NOT NULL,
    amount_micros  BIGINT NOT NULL,
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    heartbeat_at   TIMESTAMP WITH TIME ZONE,    -- refreshed while the request runs; NULL: created_at
    team_id        BIGINT REFERENCES teams (id), -- a team key's hold: held on the team, not the user
    CONSTRAINT uq_holds_user_request UNIQUE (user_id, request_id)
);
CREATE INDEX IF NOT EXISTS ix_holds_created_at ON holds (created_at);

-- Exactly one row per billed request, written when its hold is settled.
CREATE TABLE IF NOT EXISTS usage_records (
    id                BIGSERIAL PRIMARY KEY,
    request_id        VARCHAR(128) NOT NULL,
    user_id           BIGINT NOT NULL REFERENCES users (id),
    key_id            BIGINT NOT NULL REFERENCES api_keys (id),
    model             VARCHAR(255) NOT NULL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_micros       BIGINT NOT NULL DEFAULT 0,
    status            INTEGER NOT NULL,          -- HTTP status the client got
    stream            BOOLEAN NOT NULL DEFAULT false,
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    ttfb_ms           INTEGER,
    outcome           VARCHAR(32) NOT NULL,      -- ok, upstream_error, client_disconnected, timeout, abandoned
    estimated         BOOLEAN NOT NULL DEFAULT false,
    created_at        TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    team_id           BIGINT REFERENCES teams (id), -- the team whose balance paid (team keys)
    CONSTRAINT uq_usage_records_user_request UNIQUE (user_id, request_id)
);
CREATE INDEX IF NOT EXISTS ix_usage_records_user_id_created_at ON usage_records (user_id, created_at);
CREATE INDEX IF NOT EXISTS ix_usage_records_key_id_created_at ON usage_records (key_id, created_at);
CREATE INDEX IF NOT EXISTS ix_usage_records_created_at_id ON usage_records (created_at, id);

-- Sums of usage_records per UTC hour, user, key and model, kept in the settlement's transaction;
-- they outlive the raw rows when usage_retention_days is set.
CREATE TABLE IF NOT EXISTS usage_hourly (
    id                BIGSERIAL PRIMARY KEY,
    hour_at           TIMESTAMP WITH TIME ZONE NOT NULL,   -- the hour's start, UTC
    user_id           BIGINT NOT NULL REFERENCES users (id),
    key_id            BIGINT NOT NULL REFERENCES api_keys (id),
    model             VARCHAR(255) NOT NULL,
    team_id           BIGINT,                              -- the key's team, written at settlement
    requests          BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens  BIGINT NOT NULL DEFAULT 0,
    cost_micros       BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT uq_usage_hourly UNIQUE (hour_at, user_id, key_id, model)
);
CREATE INDEX IF NOT EXISTS ix_usage_hourly_user_id_hour_at ON usage_hourly (user_id, hour_at);
CREATE INDEX IF NOT EXISTS ix_usage_hourly_key_id_hour_at ON usage_hourly (key_id, hour_at);
CREATE INDEX IF NOT EXISTS ix_usage_hourly_team_id_hour_at ON usage_hourly (team_id, hour_at);

-- The same sums per UTC day, kept beside the hourly ones: reports over whole days read a row per day.
CREATE TABLE IF NOT EXISTS usage_daily (
    id                BIGSERIAL PRIMARY KEY,
    day_at            TIMESTAMP WITH TIME ZONE NOT NULL,   -- the day's start, UTC
    user_id           BIGINT NOT NULL REFERENCES users (id),
    key_id            BIGINT NOT NULL REFERENCES api_keys (id),
    model             VARCHAR(255) NOT NULL,
    team_id           BIGINT,                              -- the key's team, written at settlement
    requests          BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens  BIGINT NOT NULL DEFAULT 0,
    cost_micros       BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT uq_usage_daily UNIQUE (day_at, user_id, key_id, model)
);
CREATE INDEX IF NOT EXISTS ix_usage_daily_user_id_day_at ON usage_daily (user_id, day_at);
CREATE INDEX IF NOT EXISTS ix_usage_daily_key_id_day_at ON usage_daily (key_id, day_at);
CREATE INDEX IF NOT EXISTS ix_usage_daily_team_id_day_at ON usage_daily (team_id, day_at);

-- Console sign-in attempts per account (SHA-256 of the email) in a fixed window, shared by all workers.
CREATE TABLE IF NOT EXISTS login_attempts (
    id                BIGSERIAL PRIMARY KEY,
    subject           VARCHAR(64) NOT NULL UNIQUE,
    attempts          INTEGER NOT NULL DEFAULT 0,
    window_started_at TIMESTAMP WITH TIME ZONE NOT NULL
);

-- Each rate-limited subject's current one-minute window ('key:12', 'user:3'), reset in place.
CREATE TABLE IF NOT EXISTS rate_limit_windows (
    id                BIGSERIAL PRIMARY KEY,
    subject           VARCHAR(64) NOT NULL UNIQUE,
    window_minute     BIGINT NOT NULL,           -- minutes since the Unix epoch
    requests          INTEGER NOT NULL DEFAULT 0,
    tokens            BIGINT NOT NULL DEFAULT 0
);

-- Channels benched after a failure ('provider/channel'), shared by all workers and hosts, moved in place.
CREATE TABLE IF NOT EXISTS channel_cooldowns (
    id                BIGSERIAL PRIMARY KEY,
    channel           VARCHAR(255) NOT NULL UNIQUE,
    until_at          TIMESTAMP WITH TIME ZONE NOT NULL
);

-- Stored Responses API responses (previous_response_id, GET/DELETE /v1/responses/{id}), per user,
-- until expires_at; channel is the provider/channel that answered natively ('' when translated).
CREATE TABLE IF NOT EXISTS responses (
    id                VARCHAR(128) PRIMARY KEY,
    user_id           BIGINT NOT NULL REFERENCES users (id),
    channel           VARCHAR(255) NOT NULL DEFAULT '',
    response          TEXT NOT NULL,              -- the response object, as JSON
    input_items       TEXT NOT NULL,              -- its input items, history included, as JSON
    created_at        TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at        TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_responses_user_id ON responses (user_id);
CREATE INDEX IF NOT EXISTS ix_responses_expires_at ON responses (expires_at);

-- One row: bumped by every change to a key or a limit, so every process's key cache forgets it.
CREATE TABLE IF NOT EXISTS access_changes (
    id             INTEGER PRIMARY KEY,
    version        BIGINT NOT NULL DEFAULT 0
);

-- One row per budget alert for a subject ('team:3', 'user:2', 'key:5') and period: exactly one each.
CREATE TABLE IF NOT EXISTS budget_alerts (
    id             BIGSERIAL PRIMARY KEY,
    subject        VARCHAR(64) NOT NULL,
    period_start   TIMESTAMP WITH TIME ZONE NOT NULL,
    kind           VARCHAR(16) NOT NULL,        -- 'threshold' | 'exhausted'
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    sent_at        TIMESTAMP WITH TIME ZONE,
    attempts       INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT uq_budget_alerts UNIQUE (subject, period_start, kind)
);
