"""Upstream requests through an HTTP(S) proxy: configured per provider or channel, or from the environment."""

from __future__ import annotations

import pytest

from gateway.config.settings import load_settings
from gateway.routing.catalog import Catalog
from tests.fakes.fault_upstream import FaultUpstream
from tests.support.app import chat, make_account
from tests.support.settings import load, provider, refused

HTTPS = """
[providers.up]
base_url = "https://api.example.com/v1"
models = { m = {} }
"""


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, ""),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
        ({"https_proxy": "http://lower:3128", "HTTPS_PROXY": "http://upper:3128"}, "http://lower:3128"),
        ({"HTTP_PROXY": "http://plain:3128"}, ""),  # an https upstream takes HTTPS_PROXY only
        ({"ALL_PROXY": "http://all:3128"}, "http://all:3128"),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "example.com"}, ""),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "other.org"}, "http://proxy:3128"),
    ],
    ids=["none", "https", "lower-case-wins", "http-only", "all", "no-proxy", "no-proxy-elsewhere"],
)
def test_the_environment_proxy_is_read_once_at_start_up(tmp_path, env, expected):
    assert provider(load(tmp_path, HTTPS, **env), "up").proxy == expected


@pytest.mark.parametrize(
    "line, expected",
    [
        ('proxy = "http://user:pw@squid:3128/"', "http://user:pw@squid:3128"),
        ('proxy = "none"', ""),
        ('proxy = ""', ""),
        ('proxy = "${EGRESS}"', "http://egress:8080"),
    ],
)
def test_a_configured_proxy_wins_over_the_environment(tmp_path, line, expected):
    toml = HTTPS.replace("models", line + "\nmodels")
    settings = load(tmp_path, toml, HTTPS_PROXY="http://env:3128", EGRESS="http://egress:8080")
    assert provider(settings, "up").proxy == expected


@pytest.mark.parametrize("value", ['"socks5://s:1080"', '"squid:3128"', "3128", '"http://a b:1"'])
def test_a_proxy_that_is_not_an_http_url_is_refused(tmp_path, value):
    assert "providers.up.proxy must be" in refused(
        tmp_path, HTTPS.replace("models", f"proxy = {value}\nmodels")
    )


def test_channels_take_the_providers_proxy_unless_they_set_their_own(tmp_path):
    toml = HTTPS.replace("models", 'proxy = "http://shared:3128"\nmodels') + (
        '[[providers.up.channels]]\nname = "a"\n'
        '[[providers.up.channels]]\nname = "b"\nproxy = "none"\n'
        '[[providers.up.channels]]\nname = "c"\nproxy = "http://own:3128"\n'
    )
    catalog = Catalog(load(tmp_path, toml))
    proxies = [c.adapter.provider.proxy for c in catalog.resolve("up:m").channels]
    assert proxies == ["http://shared:3128", "", "http://own:3128"]


def test_a_proxy_is_never_in_the_settings_repr(tmp_path):
    settings = load(tmp_path, HTTPS.replace("models", 'proxy = "http://user:s3cret@squid:3128"\nmodels'))
    assert "s3cret" not in repr(settings)


def test_requests_reach_the_upstream_through_the_proxy(make_app):
    # The fake answers whatever reaches it; a request line with the upstream's absolute URL shows it
    # came as a proxy request. upstream.invalid cannot resolve: a direct connection would fail.
    with FaultUpstream() as proxy:
        proxy_url = proxy.url.removesuffix("/v1")
        providers = {
            "up": {"base_url": "http://upstream.invalid/v1", "proxy": proxy_url, "models": {"ok": {}}}
        }
        app = make_app(providers=providers)
        key = make_account(app)
        resp = app.test_client().post("/api/v1/chat/completions", json=chat("up:ok"), headers=key.headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.get_json()["choices"][0]["message"]["content"] == "fine"
        (exchange,) = proxy.exchanges
        assert exchange.path == "http://upstream.invalid/v1/chat/completions"


def test_settings_from_the_environment_reach_the_catalog():
    settings = load_settings(
        test_config={"providers": {"up": {"base_url": "http://up.test/v1", "models": {"m": {}}}}},
        env={"HTTP_PROXY": "http://env-proxy:3128"},
    )
    (channel,) = Catalog(settings).resolve("up:m").channels
    assert channel.adapter.provider.proxy == "http://env-proxy:3128"
