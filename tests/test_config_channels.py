"""Channels, cooldowns, timeouts, fallbacks and max_attempts in the TOML catalog: read, defaulted, refused."""

from __future__ import annotations

import math

import pytest

from gateway.config.channels import ChannelConfig
from gateway.config.settings import load_settings
from gateway.errors import ConfigError
from gateway.routing.catalog import Catalog
from tests.support.settings import load, provider, refused

MINIMAL = """
[providers.up]
base_url = "http://upstream.test/v1"
models = { m = {} }
"""

CHANNELS = """
[providers.up]
base_url = "http://upstream.test/v1"
api_key = "top-key"
models = { m = {} }

[[providers.up.channels]]
api_key = "${KEY_A}"
weight = 3

[[providers.up.channels]]
name = "backup"
base_url = "http://backup.test/v1/"

[[providers.up.channels]]
base_url = "http://third.test"
api_key = "own-key"
"""


def with_channels(rows: str, top: str = 'base_url = "http://upstream.test/v1"\n') -> str:
    return f"[providers.up]\n{top}models = {{ m = {{}} }}\n{rows}"


def test_channels_inherit_the_providers_url_and_key_unless_they_set_their_own(tmp_path):
    up = provider(load(tmp_path, CHANNELS, KEY_A="sk-a"), "up")
    assert up.channels == (
        ChannelConfig("1", "http://upstream.test/v1", "sk-a", 3),
        ChannelConfig("backup", "http://backup.test/v1", "top-key", 1),
        ChannelConfig("3", "http://third.test", "own-key", 1),
    )
    assert up.all_channels() == up.channels
    assert (up.base_url, up.api_key) == ("http://upstream.test/v1", "top-key")


def test_a_channel_key_names_its_missing_variable(tmp_path):
    assert "KEY_A is not set in the environment" in refused(tmp_path, CHANNELS)


def test_a_provider_without_channels_has_one_implicit_channel(tmp_path):
    up = provider(load(tmp_path, MINIMAL.replace("models", 'api_key = "k"\nmodels')), "up")
    assert up.channels == ()
    assert up.all_channels() == (ChannelConfig("default", "http://upstream.test/v1", "k", 1),)


def test_channels_may_carry_every_base_url_when_the_provider_has_none(tmp_path):
    rows = '[[providers.up.channels]]\nbase_url = "http://a.test"\n'
    rows += '[[providers.up.channels]]\nbase_url = "http://b.test"\n'
    up = provider(load(tmp_path, with_channels(rows, top="")), "up")
    assert up.base_url == "http://a.test"
    assert [c.base_url for c in up.all_channels()] == ["http://a.test", "http://b.test"]


def test_cooldown_and_timeouts_default(tmp_path):
    up = provider(load(tmp_path, MINIMAL), "up")
    assert (up.cooldown, up.connect_timeout, up.first_byte_timeout, up.idle_timeout, up.total_timeout) == (
        30.0,
        5.0,
        300.0,
        300.0,
        900.0,
    )


def test_read_timeout_sets_first_byte_and_idle_unless_they_are_given(tmp_path):
    toml = MINIMAL.replace("models", "read_timeout = 60\nmodels")
    up = provider(load(tmp_path, toml), "up")
    assert (up.first_byte_timeout, up.idle_timeout, up.total_timeout) == (60.0, 60.0, 900.0)
    toml = MINIMAL.replace("models", "read_timeout = 60\nidle_timeout = 7.5\nmodels")
    up = provider(load(tmp_path, toml), "up")
    assert (up.first_byte_timeout, up.idle_timeout) == (60.0, 7.5)


def test_explicit_timeouts_and_cooldown_win(tmp_path):
    lines = (
        "cooldown = 0\nconnect_timeout = 2\nfirst_byte_timeout = 20\nidle_timeout = 9\ntotal_timeout = 120\n"
    )
    up = provider(load(tmp_path, MINIMAL.replace("models", lines + "models")), "up")
    assert (up.cooldown, up.connect_timeout, up.first_byte_timeout, up.idle_timeout, up.total_timeout) == (
        0.0,
        2.0,
        20.0,
        9.0,
        120.0,
    )


def test_max_attempts_comes_from_the_gateway_table_and_the_environment(tmp_path):
    assert load(tmp_path, MINIMAL).max_attempts == 4
    toml = "[gateway]\nmax_attempts = 2\n" + MINIMAL
    assert load(tmp_path, toml).max_attempts == 2
    assert load(tmp_path, toml, GATEWAY_MAX_ATTEMPTS="7").max_attempts == 7


@pytest.mark.parametrize(
    "toml, env, words",
    [
        ("[gateway]\nmax_attempts = 0\n" + MINIMAL, {}, "max_attempts must be from 1 to 20"),
        (MINIMAL, {"GATEWAY_MAX_ATTEMPTS": "0"}, "max_attempts must be from 1 to 20"),
        (MINIMAL, {"GATEWAY_MAX_ATTEMPTS": "two"}, "GATEWAY_MAX_ATTEMPTS='two' is not a valid int"),
        ('[gateway]\nmax_attempts = "3"\n' + MINIMAL, {}, "[gateway] max_attempts must be an integer"),
    ],
)
def test_bad_max_attempts_are_refused(tmp_path, toml, env, words):
    assert words in refused(tmp_path, toml, **env)


@pytest.mark.parametrize(
    "line, words",
    [
        ("cooldown = -1", "providers.up.cooldown must be a number of seconds"),
        ("total_timeout = 0", "providers.up.total_timeout must be a positive number of seconds"),
        ("connect_timeout = -2", "providers.up.connect_timeout must be a positive number of seconds"),
        ('idle_timeout = "10"', "providers.up.idle_timeout must be a positive number of seconds"),
        ("first_byte_timeout = true", "providers.up.first_byte_timeout must be a positive number"),
        ("read_timeout = 0", "providers.up.read_timeout must be a positive number of seconds"),
        # TOML has nan and inf literals: neither is a duration a timer or a cooldown can use.
        ("idle_timeout = nan", "providers.up.idle_timeout must be a positive number of seconds"),
        ("total_timeout = inf", "providers.up.total_timeout must be a positive number of seconds"),
        ("read_timeout = +inf", "providers.up.read_timeout must be a positive number of seconds"),
        ("connect_timeout = -nan", "providers.up.connect_timeout must be a positive number of seconds"),
        ("cooldown = inf", "providers.up.cooldown must be a number of seconds"),
        ("cooldown = nan", "providers.up.cooldown must be a number of seconds"),
    ],
)
def test_bad_cooldowns_and_timeouts_are_refused(tmp_path, line, words):
    assert words in refused(tmp_path, MINIMAL.replace("models", f"{line}\nmodels"))


@pytest.mark.parametrize(
    "rows, words",
    [
        (
            "[[providers.up.channels]]\nweight = 0\n",
            "providers.up.channels[0].weight must be a positive integer",
        ),
        ("[[providers.up.channels]]\nweight = -2\n", "channels[0].weight must be a positive integer"),
        ("[[providers.up.channels]]\nweight = true\n", "channels[0].weight must be a positive integer"),
        ("[[providers.up.channels]]\nweight = 1.5\n", "channels[0].weight must be a positive integer"),
        (
            "[[providers.up.channels]]\n[[providers.up.channels]]\nwieght = 2\n",
            "channels[1]: unknown key(s) wieght",
        ),
        (
            '[[providers.up.channels]]\nname = "a"\n[[providers.up.channels]]\nname = "a"\n',
            "providers.up.channels: channel names must differ",
        ),
        (
            '[[providers.up.channels]]\n[[providers.up.channels]]\nname = "1"\n',
            "providers.up.channels: channel names must differ",
        ),
        ('[[providers.up.channels]]\nname = "a b"\n', "channels[0].name must be a short name"),
        # '/' would make provider/channel keys ambiguous: "up/a/b" could be provider "up/a", channel "b".
        ('[[providers.up.channels]]\nname = "a/b"\n', "channels[0].name must be a short name"),
        ('[[providers.up.channels]]\nname = "/"\n', "channels[0].name must be a short name"),
        ('[[providers.up.channels]]\nname = "-a"\n', "channels[0].name must be a short name"),
        ('[[providers.up.channels]]\nname = ""\n', "channels[0].name must be a short name"),
        ("[[providers.up.channels]]\nname = 1\n", "channels[0].name must be a short name"),
        ("[[providers.up.channels]]\napi_key = 5\n", "providers.up.channels[0].api_key must be a string"),
        ('[[providers.up.channels]]\nbase_url = "ftp://x"\n', "channels[0].base_url must be an http(s) URL"),
    ],
)
def test_bad_channel_rows_are_refused_naming_the_row(tmp_path, rows, words):
    assert words in refused(tmp_path, with_channels(rows))


@pytest.mark.parametrize("key", ["idle_timeout", "cooldown"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_numbers_from_a_python_config_are_refused_too(key, value):
    providers = {"up": {"base_url": "http://upstream.test/v1", key: value, "models": {"m": {}}}}
    with pytest.raises(ConfigError, match=rf"providers\.up\.{key} must be a (positive )?number of seconds"):
        load_settings(test_config={"providers": providers}, env={})


def test_channel_names_may_use_letters_digits_dots_underscores_and_dashes(tmp_path):
    rows = '[[providers.up.channels]]\nname = "eu-west.1_b"\n'
    catalog = Catalog(load(tmp_path, with_channels(rows)))
    assert [c.key for c in catalog.resolve("up:m").channels] == ["up/eu-west.1_b"]


@pytest.mark.parametrize(
    "line", ['channels = "a"', "channels = []", "channels = [1, 2]", "channels = { a = { weight = 1 } }"]
)
def test_channels_must_be_a_non_empty_array_of_tables(tmp_path, line):
    toml = MINIMAL.replace("models", f"{line}\nmodels")
    assert "providers.up.channels must be an array of tables" in refused(tmp_path, toml)


def test_channels_need_a_base_url_from_somewhere(tmp_path):
    rows = '[[providers.up.channels]]\nbase_url = "http://a.test"\n[[providers.up.channels]]\nweight = 2\n'
    words = "providers.up: give base_url to the provider or to every channel"
    assert words in refused(tmp_path, with_channels(rows, top=""))


FALLBACKS = """
[providers.up]
base_url = "http://upstream.test/v1"
models = {{ m = {{ fallbacks = {fallbacks} }}, n = {{}} }}
[providers.other]
base_url = "http://other.test/v1"
models = {{ o = {{}} }}
"""

# A fallback is a provider:model id, so the example must show one, not request field names.
FALLBACK_EXAMPLE = '["openai:gpt-4o-mini"]'


def test_fallbacks_are_read_in_order(tmp_path):
    settings = load(tmp_path, FALLBACKS.format(fallbacks='["other:o", "up:n", "mock:echo"]'))
    m = next(model for model in provider(settings, "up").models if model.name == "m")
    assert m.fallbacks == ("other:o", "up:n", "mock:echo")


@pytest.mark.parametrize(
    "fallbacks, words",
    [
        ('["other:x"]', "providers.up.models.m.fallbacks names 'other:x', which is not a configured"),
        ('["n"]', "fallbacks names 'n', which is not a configured provider:model"),
        ('["up:m"]', "providers.up.models.m.fallbacks: a model cannot be its own fallback"),
        ('["other:o", "up:n", "other:o"]', "providers.up.models.m.fallbacks names a model twice"),
        ('"other:o"', f"providers.up.models.m.fallbacks must be an array of names, e.g. {FALLBACK_EXAMPLE}"),
        ("[1]", f"providers.up.models.m.fallbacks must be an array of names, e.g. {FALLBACK_EXAMPLE}"),
        ('[""]', f"providers.up.models.m.fallbacks must be an array of names, e.g. {FALLBACK_EXAMPLE}"),
        ("{ a = 1 }", f"providers.up.models.m.fallbacks must be an array of names, e.g. {FALLBACK_EXAMPLE}"),
    ],
)
def test_bad_fallbacks_are_refused(tmp_path, fallbacks, words):
    assert words in refused(tmp_path, FALLBACKS.format(fallbacks=fallbacks))


def test_a_bad_fallbacks_value_does_not_show_the_request_field_example(tmp_path):
    message = refused(tmp_path, FALLBACKS.format(fallbacks='"other:o"'))
    assert message.endswith(f"e.g. {FALLBACK_EXAMPLE}")
    assert "logit_bias" not in message


def test_catalog_gives_each_channel_an_adapter_with_its_own_url_and_key(tmp_path):
    catalog = Catalog(load(tmp_path, CHANNELS, KEY_A="sk-a"))
    target = catalog.resolve("up:m")
    seen = [
        (c.key, c.weight, c.adapter.provider.base_url, c.adapter.provider.api_key) for c in target.channels
    ]
    assert seen == [
        ("up/1", 3, "http://upstream.test/v1", "sk-a"),
        ("up/backup", 1, "http://backup.test/v1", "top-key"),
        ("up/3", 1, "http://third.test", "own-key"),
    ]
    assert target.adapter is target.channels[0].adapter
    assert {c.adapter.provider.name for c in target.channels} == {"up"}


def test_catalog_gives_a_provider_without_channels_its_default_channel(tmp_path):
    (channel,) = Catalog(load(tmp_path, MINIMAL)).resolve("up:m").channels
    assert (channel.key, channel.weight, channel.adapter.provider.base_url) == (
        "up/default",
        1,
        "http://upstream.test/v1",
    )


def test_catalog_resolves_fallbacks_to_targets_in_order_one_level_deep(tmp_path):
    toml = FALLBACKS.format(fallbacks='["other:o", "up:n"]').replace("o = {}", 'o = { fallbacks = ["up:m"] }')
    catalog = Catalog(load(tmp_path, toml))
    target = catalog.resolve("up:m")
    assert [f.public_id for f in target.fallbacks] == ["other:o", "up:n"]
    assert target.fallbacks[0].channels[0].key == "other/default"
    assert catalog.resolve("other:o").fallbacks[0].public_id == "up:m"
    # A fallback's own fallbacks are not followed, so a loop of fallbacks ends.
    assert target.fallbacks[0].fallbacks == ()
    assert catalog.resolve("up:n").fallbacks == ()
