"""Dangerous settings are refused at start-up, each with a message that names its key."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gateway import create_app
from gateway.cli import main
from gateway.config.bounds import MAX_PRICE, MAX_TOKENS
from gateway.errors import ConfigError
from tests.support.settings import load, refused

MINIMAL = """
[providers.up]
base_url = "http://upstream.test/v1"
api_key = "sk-up"
models = { m = {} }
"""


@pytest.mark.parametrize(
    "line, words",
    [
        ("hold_timeout = 0", "hold_timeout must be more than 0"),
        ("hold_timeout = -5", "hold_timeout must be more than 0"),
        ("hold_timeout = nan", "hold_timeout must be more than 0"),
        ("hold_timeout = inf", "hold_timeout must be more than 0"),
        ("key_cache_ttl = 1e12", "key_cache_ttl must be from 0 to 300 seconds"),
        ("key_cache_ttl = -1", "key_cache_ttl must be from 0 to 300 seconds"),
        ("default_max_tokens = 10000000000000", "default_max_tokens must be from 1 to"),
        ("db_pool_size = 1000", "db_pool_size must be from 1 to 100"),
        ("max_attempts = 1000000", "max_attempts must be from 1 to 20"),
        ("max_body_bytes = 100000000000", "max_body_bytes must be from 1 to"),
        ("db_lock_timeout = 0", "db_lock_timeout must be more than 0"),
        ("db_statement_timeout = nan", "db_statement_timeout must be more than 0"),
        ("write_timeout = 0", "write_timeout must be more than 0 and at most 3600 seconds"),
        ("drain_timeout = 1e9", "drain_timeout must be more than 0 and at most 60 seconds"),
    ],
)
def test_dangerous_gateway_values_in_the_file_are_refused(tmp_path, line, words):
    assert words in refused(tmp_path, f"[gateway]\n{line}\n")


@pytest.mark.parametrize(
    "var, value, words",
    [
        ("GATEWAY_HOLD_TIMEOUT", "nan", "hold_timeout must be more than 0"),
        ("GATEWAY_HOLD_TIMEOUT", "0", "hold_timeout must be more than 0"),
        ("GATEWAY_HOLD_TIMEOUT", "-1", "hold_timeout must be more than 0"),
        ("GATEWAY_KEY_CACHE_TTL", "1e12", "key_cache_ttl must be from 0 to 300"),
        ("GATEWAY_TRUSTED_PROXIES", "-1", "trusted_proxies must be from 0 to 10"),
        ("GATEWAY_DB_LOCK_TIMEOUT", "inf", "db_lock_timeout must be more than 0"),
        ("GATEWAY_WRITE_TIMEOUT", "nan", "write_timeout must be more than 0"),
        ("GATEWAY_DRAIN_TIMEOUT", "-1", "drain_timeout must be more than 0"),
    ],
)
def test_dangerous_env_values_are_refused_naming_the_key_and_the_variable(tmp_path, var, value, words):
    message = refused(tmp_path, MINIMAL, **{var: value})
    assert words in message
    assert f"(from {var})" in message


def test_sane_values_at_the_bounds_are_accepted(tmp_path):
    settings = load(
        tmp_path,
        "[gateway]\nhold_timeout = 0.5\nkey_cache_ttl = 300\ndb_lock_timeout = 2\ndb_statement_timeout = 9\n",
        GATEWAY_TRUSTED_PROXIES="2",
    )
    assert (settings.hold_timeout, settings.key_cache_ttl, settings.trusted_proxies) == (0.5, 300.0, 2)
    assert (settings.db_lock_timeout, settings.db_statement_timeout) == (2.0, 9.0)


@pytest.mark.parametrize("name", ["input_price", "output_price", "cached_input_price", "cache_write_price"])
def test_a_price_that_would_overflow_bigint_is_refused(tmp_path, name):
    toml = MINIMAL.replace("models = { m = {} }", f"models = {{ m = {{ {name} = 1e30 }} }}")
    message = refused(tmp_path, toml)
    assert f"providers.up.models.m.{name}" in message
    assert f"at most {MAX_PRICE}" in message


def test_the_dearest_price_allowed_keeps_the_worst_hold_inside_bigint():
    # A whole body of prompt at the top price plus the largest output on every one of 128 choices.
    assert (MAX_TOKENS * 128 + 2**30) * MAX_PRICE < 2**63 - 1


@pytest.mark.parametrize("name", ["max_output_tokens", "context_length"])
def test_token_counts_past_the_bound_are_refused(tmp_path, name):
    toml = MINIMAL.replace("models = { m = {} }", f"models = {{ m = {{ {name} = {MAX_TOKENS + 1} }} }}")
    assert f"providers.up.models.m.{name} must be a positive integer" in refused(tmp_path, toml)


@pytest.mark.parametrize(
    "headers, words",
    [
        ('{ "X-Title" = "a\\r\\nX-Evil: 1" }', "providers.up.headers.X-Title must not contain CR, LF"),
        ('{ "X-Title" = "a\\nb" }', "providers.up.headers.X-Title must not contain CR, LF"),
        ('{ "X-Title" = "trailing\\n" }', "providers.up.headers.X-Title must not contain CR, LF"),
        ('{ "X-Title" = "nul\\u0000" }', "providers.up.headers.X-Title must not contain"),
        ('{ "Bad Name" = "x" }', "'Bad Name' is not a valid HTTP header name"),
        ('{ "X-Evil\\r\\nHost" = "x" }', "is not a valid HTTP header name"),
    ],
)
def test_header_values_with_cr_lf_are_refused(tmp_path, headers, words):
    assert words in refused(tmp_path, MINIMAL + f"headers = {headers}\n")


def test_an_api_key_with_cr_lf_from_the_environment_is_refused(tmp_path):
    toml = MINIMAL.replace('api_key = "sk-up"', 'api_key = "${UP_KEY}"')
    message = refused(tmp_path, toml, UP_KEY="sk-up\r\nX-Evil: 1")
    assert "providers.up.api_key must not contain CR, LF" in message
    assert "sk-up" not in message, "the secret itself is never echoed"


def test_a_channel_api_key_with_a_newline_is_refused(tmp_path):
    toml = MINIMAL + '[[providers.up.channels]]\napi_key = "sk-a\\n"\n'
    assert "providers.up.channels[0].api_key must not contain CR, LF" in refused(tmp_path, toml)


@pytest.mark.parametrize(
    "line, words",
    [
        ('base_url = "http://upstream.test/v1\\r\\nX: y"', "providers.up.base_url must be an http(s) URL"),
        ('base_url = "http://upstream.test/v1\\n"', "providers.up.base_url must be an http(s) URL"),
        ('proxy = "http://proxy:3128\\n"', "providers.up.proxy must be an http(s) proxy URL"),
        ('api_version = "2024-10-21\\n"', "providers.up.api_version must be a version string"),
    ],
)
def test_urls_and_versions_with_a_newline_are_refused(tmp_path, line, words):
    toml = MINIMAL.replace('base_url = "http://upstream.test/v1"', line)
    if not line.startswith("base_url"):
        toml = MINIMAL + line + "\n"
        toml = (
            toml.replace("[providers.up]", '[providers.up]\ntype = "azure"')
            if "api_version" in line
            else toml
        )
    assert words in refused(tmp_path, toml)


def test_the_app_does_not_start_with_a_dangerous_value(tmp_path):
    with pytest.raises(ConfigError, match="hold_timeout must be more than 0"):
        create_app({"database_url": f"sqlite:///{tmp_path}/g.db", "hold_timeout": float("nan")})


def test_the_cli_refuses_a_dangerous_value_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("[gateway]\nkey_cache_ttl = 1e12\n")
    result = CliRunner().invoke(main, ["db", "init"])
    assert result.exit_code != 0
    assert "key_cache_ttl must be from 0 to 300 seconds" in result.output
