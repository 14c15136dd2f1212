"""Settings: the TOML file, ${VAR} expansion, GATEWAY_* overrides and the messages of bad configs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.config.settings import load_settings, normalise_database_url
from gateway.errors import ConfigError
from tests.support.settings import load, provider, refused

ROOT = Path(__file__).resolve().parent.parent

# The catalog example from the README, as an operator would paste it.
README_EXAMPLE = """
[providers.deepseek]
type = "openai"                        # wire protocol
base_url = "https://api.deepseek.com/v1"
api_key = "${DEEPSEEK_API_KEY}"        # ${VAR} is read from the environment

[providers.deepseek.models.deepseek-chat]
input_price = 0.27                     # USD per million prompt tokens
output_price = 1.10                    # USD per million completion tokens
cached_input_price = 0.07              # optional: cached prompt tokens
"""

MINIMAL = """
[providers.up]
base_url = "http://upstream.test/v1"
models = { m = {} }
"""


def test_readme_example_works_as_written(tmp_path):
    settings = load(tmp_path, README_EXAMPLE, DEEPSEEK_API_KEY="sk-ds-123")
    deepseek = provider(settings, "deepseek")
    assert (deepseek.type, deepseek.base_url, deepseek.api_key) == (
        "openai",
        "https://api.deepseek.com/v1",
        "sk-ds-123",
    )
    (chat,) = deepseek.models
    assert (chat.name, chat.upstream_id, chat.priced) == ("deepseek-chat", "deepseek-chat", True)
    assert (chat.input_price, chat.output_price) == (Decimal("0.27"), Decimal("1.10"))
    assert chat.cached_input_price == Decimal("0.07")
    timeouts = (deepseek.connect_timeout, deepseek.first_byte_timeout, deepseek.idle_timeout)
    assert timeouts == (5.0, 300.0, 300.0)
    assert (deepseek.total_timeout, deepseek.cooldown) == (900.0, 30.0)


def test_example_file_in_the_repository_loads_with_its_variables_set():
    env = {
        "GATEWAY_CONFIG": str(ROOT / "gateway.example.toml"),
        "DEEPSEEK_API_KEY": "a",
        "OPENAI_API_KEY": "b",
    }
    settings = load_settings(env=env)
    names = {p.name for p in settings.providers}
    assert {"mock", "deepseek", "openai", "vllm"} <= names
    assert provider(settings, "vllm").api_key == ""


def test_example_file_without_its_variables_names_the_missing_one():
    with pytest.raises(ConfigError, match=r"DEEPSEEK_API_KEY is not set"):
        load_settings(env={"GATEWAY_CONFIG": str(ROOT / "gateway.example.toml")})


def test_variables_expand_inside_base_url_and_api_key(tmp_path):
    toml = """
[providers.up]
base_url = "http://${UP_HOST}:${UP_PORT}/v1/"
api_key = "Bearer-less-${UP_KEY}"
models = { m = {} }
"""
    up = provider(load(tmp_path, toml, UP_HOST="10.0.0.7", UP_PORT="8000", UP_KEY="k1"), "up")
    assert up.base_url == "http://10.0.0.7:8000/v1", "the trailing slash is dropped"
    assert up.api_key == "Bearer-less-k1"


def test_only_braced_variables_expand(tmp_path):
    toml = (
        '[providers.up]\nbase_url = "http://upstream.test/v1"\napi_key = "$NOT_A_VAR"\nmodels = { m = {} }\n'
    )
    assert provider(load(tmp_path, toml), "up").api_key == "$NOT_A_VAR"


def test_unset_variable_names_the_key_and_the_variable(tmp_path):
    message = refused(tmp_path, README_EXAMPLE)
    assert "providers.deepseek.api_key" in message
    assert "${DEEPSEEK_API_KEY}" in message and "not set" in message


def test_secrets_are_not_in_the_settings_repr(tmp_path):
    settings = load(
        tmp_path, README_EXAMPLE, DEEPSEEK_API_KEY="sk-very-secret", GATEWAY_ADMIN_TOKEN="t0ken-x"
    )
    assert "sk-very-secret" not in repr(settings)
    assert "t0ken-x" not in repr(settings)


def test_unknown_provider_type_is_refused_with_the_choices(tmp_path):
    message = refused(tmp_path, MINIMAL.replace("[providers.up]", '[providers.up]\ntype = "carrier-pigeon"'))
    assert "providers.up.type 'carrier-pigeon' is unknown" in message
    assert "openai" in message


def test_missing_base_url_is_refused(tmp_path):
    message = refused(tmp_path, '[providers.up]\ntype = "openai"\nmodels = { m = {} }\n')
    assert "providers.up.base_url must be an http(s) URL" in message


@pytest.mark.parametrize("url", ["api.deepseek.com/v1", "ftp://host/v1", "http://", "https:// spaced"])
def test_base_url_that_is_not_http_is_refused(tmp_path, url):
    message = refused(tmp_path, MINIMAL.replace("http://upstream.test/v1", url))
    assert "providers.up.base_url" in message


@pytest.mark.parametrize(
    "value, words",
    [
        ("-0.01", "finite number >= 0"),
        ('"cheap"', "is not a number"),
        ("nan", "finite number >= 0"),
        ("inf", "finite number >= 0"),
        ("true", "must be a number"),
        ("[1]", "must be a number"),
    ],
)
def test_bad_prices_are_refused_naming_the_key(tmp_path, value, words):
    toml = MINIMAL.replace("models = { m = {} }", f"models = {{ m = {{ output_price = {value} }} }}")
    message = refused(tmp_path, toml)
    assert "providers.up.models.m.output_price" in message
    assert words in message


def test_prices_are_exact_decimals_not_floats(tmp_path):
    toml = MINIMAL.replace("{ m = {} }", "{ m = { input_price = 0.1, output_price = 3 } }")
    (m,) = provider(load(tmp_path, toml), "up").models
    assert m.input_price == Decimal("0.1") and m.output_price == Decimal(3)


def test_a_model_without_prices_is_marked_unpriced(tmp_path):
    (m,) = provider(load(tmp_path, MINIMAL), "up").models
    assert (m.priced, m.input_price, m.output_price, m.cached_input_price) == (False, 0, 0, None)


@pytest.mark.parametrize(
    "toml, words",
    [
        (MINIMAL.replace("base_url", "api-key = 'x'\nbase_url"), "providers.up: unknown key(s) api-key"),
        (
            MINIMAL.replace("{ m = {} }", "{ m = { price = 1 } }"),
            "providers.up.models.m: unknown key(s) price",
        ),
        ("[gateway]\nmax_body = 10\n" + MINIMAL, "[gateway] has unknown key(s) max_body"),
        ('[provider.deepseek]\nbase_url = "https://api.deepseek.com"\n', "unknown table(s) provider"),
        ("gateway = 5\n", "gateway must be a [gateway] table"),
    ],
    ids=["provider", "model", "gateway", "top-level-table", "gateway-not-a-table"],
)
def test_unknown_keys_are_refused_by_name(tmp_path, toml, words):
    assert words in refused(tmp_path, toml)


@pytest.mark.parametrize(
    "line, words",
    [
        ('max_body_bytes = "big"', "max_body_bytes must be an integer"),
        ("db_pool_size = 2.5", "db_pool_size must be an integer"),
        ("key_cache_ttl = true", "key_cache_ttl must be a number"),
        ("database_url = 5", "database_url must be a string"),
        ("max_body_bytes = 0", "max_body_bytes must be from 1 to"),
    ],
)
def test_gateway_values_of_the_wrong_type_are_refused(tmp_path, line, words):
    assert words in refused(tmp_path, f"[gateway]\n{line}\n")


def test_gateway_values_from_the_file_are_used(tmp_path):
    settings = load(tmp_path, "[gateway]\nmax_body_bytes = 1000\nkey_cache_ttl = 1\nhold_timeout = 60.5\n")
    assert (settings.max_body_bytes, settings.key_cache_ttl, settings.hold_timeout) == (1000, 1.0, 60.5)


@pytest.mark.parametrize(
    "toml",
    ["[providers.up\n", "[providers.up]\nbase_url = http://x\n", 'a = "unterminated\n'],
)
def test_bad_toml_is_refused_with_the_file_name(tmp_path, toml):
    message = refused(tmp_path, toml)
    assert "gateway.toml: not valid TOML" in message


def test_missing_config_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"GATEWAY_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize(
    "toml, words",
    [
        ('[providers.up]\nbase_url = "http://u.test"\n', "providers.up.models must list at least one model"),
        ('[providers.up]\nbase_url = "http://u.test"\nmodels = {}\n', "must list at least one model"),
        ('[providers."a:b"]\nbase_url = "http://u.test"\nmodels = { m = {} }\n', "provider names may use"),
        ('providers = "x"\n', "providers must be a table"),
        (MINIMAL.replace("{ m = {} }", "{ m = { max_output_tokens = 0 } }"), "max_output_tokens must be"),
        (MINIMAL.replace("{ m = {} }", '{ m = { upstream_id = "" } }'), "upstream_id must be a non-empty"),
        (MINIMAL + "read_timeout = 0\n", "providers.up.read_timeout must be a positive number"),
    ],
)
def test_malformed_providers_are_refused(tmp_path, toml, words):
    assert words in refused(tmp_path, toml)


def test_built_in_mock_is_there_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./gateway.toml
    settings = load_settings(env={})
    (mock,) = settings.providers
    assert (mock.name, mock.type, [m.name for m in mock.models]) == ("mock", "mock", ["echo"])
    assert settings.database_url == "sqlite:///var/gateway.db"


def test_built_in_mock_is_there_next_to_configured_providers(tmp_path):
    settings = load(tmp_path, MINIMAL)
    assert [p.name for p in settings.providers] == ["mock", "up"]


def test_gateway_toml_in_the_working_directory_is_read(tmp_path, monkeypatch):
    (tmp_path / "gateway.toml").write_text(MINIMAL)
    monkeypatch.chdir(tmp_path)
    assert "up" in {p.name for p in load_settings(env={}).providers}


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u:p@db/gw", "postgresql+psycopg2://u:p@db/gw"),
        ("postgres://u@db/gw", "postgresql+psycopg2://u@db/gw"),
        ("postgresql+psycopg2://u@db/gw", "postgresql+psycopg2://u@db/gw"),
        ("postgresql+psycopg://u@db/gw", "postgresql+psycopg://u@db/gw"),
        ("sqlite:///var/gateway.db", "sqlite:///var/gateway.db"),
    ],
)
def test_database_urls_are_pointed_at_psycopg2(url, expected):
    assert normalise_database_url(url) == expected


def test_database_url_from_env_and_from_file_is_normalised(tmp_path):
    from_env = load(tmp_path, MINIMAL, DATABASE_URL="postgresql://u@db/gw")
    assert from_env.database_url == "postgresql+psycopg2://u@db/gw"
    from_file = load(tmp_path, '[gateway]\ndatabase_url = "postgres://u@db/file"\n')
    assert from_file.database_url == "postgresql+psycopg2://u@db/file"


def test_gateway_database_url_wins_over_database_url(tmp_path):
    settings = load(
        tmp_path,
        '[gateway]\ndatabase_url = "sqlite:///file.db"\n',
        DATABASE_URL="postgresql://u@db/plain",
        GATEWAY_DATABASE_URL="postgresql://u@db/ours",
    )
    assert settings.database_url == "postgresql+psycopg2://u@db/ours"


def test_gateway_env_overrides_the_file(tmp_path):
    settings = load(
        tmp_path,
        "[gateway]\nmax_body_bytes = 1000\ndefault_max_tokens = 10\n",
        GATEWAY_MAX_BODY_BYTES="2048",
        GATEWAY_KEY_CACHE_TTL="0.5",
        GATEWAY_HOLD_TIMEOUT="90",
        GATEWAY_DB_POOL_SIZE="3",
        GATEWAY_ADMIN_TOKEN="adm",
    )
    assert settings.max_body_bytes == 2048
    assert settings.default_max_tokens == 10, "values the env does not set come from the file"
    assert (settings.key_cache_ttl, settings.hold_timeout, settings.db_pool_size) == (0.5, 90.0, 3)
    assert settings.admin_token == "adm"


@pytest.mark.parametrize(
    "var, value",
    [("GATEWAY_MAX_BODY_BYTES", "4MiB"), ("GATEWAY_KEY_CACHE_TTL", "soon"), ("GATEWAY_DB_POOL_SIZE", "")],
)
def test_env_values_of_the_wrong_type_are_refused_by_name(tmp_path, var, value):
    assert f"{var}={value!r} is not a valid" in refused(tmp_path, MINIMAL, **{var: value})


def test_env_pool_size_of_zero_is_refused(tmp_path):
    assert "db_pool_size must be from 1 to 100" in refused(tmp_path, MINIMAL, GATEWAY_DB_POOL_SIZE="0")


def test_test_config_is_laid_over_file_and_env(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text("[gateway]\nmax_body_bytes = 1000\n" + MINIMAL)
    providers = {"other": {"base_url": "http://other.test", "models": {"x": {"input_price": 1}}}}
    settings = load_settings(
        {"max_body_bytes": 5, "providers": providers},
        env={"GATEWAY_CONFIG": str(path), "GATEWAY_MAX_BODY_BYTES": "7"},
    )
    assert settings.max_body_bytes == 5
    assert [p.name for p in settings.providers] == ["mock", "other"]
