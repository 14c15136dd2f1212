"""The ways to reach a provider: its base URL, its channels (endpoints and keys by weight), its proxy."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from gateway.config.values import expand, header_value
from gateway.errors import ConfigError

_CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # no '/': provider/channel names a channel


@dataclass(frozen=True)
class ChannelConfig:
    """One way to reach a provider: an endpoint and a key; requests spread over channels by weight."""

    name: str
    base_url: str
    api_key: str = field(default="", repr=False)
    weight: int = 1
    proxy: str = field(default="", repr=False)  # may hold a password


def parse_base_url(where: str, raw: Any, kind: str, env: dict[str, str]) -> str:
    """Read an http(s) base URL (the mock provider's may be mock://)."""
    base_url = expand(where, raw, env).rstrip("/")
    if kind != "mock" and not re.match(r"^https?://[^/\s]+[^\x00-\x20\x7f]*\Z", base_url):
        raise ConfigError(f"{where} must be an http(s) URL, e.g. https://api.deepseek.com/v1")
    return base_url


def parse_proxy(where: str, raw: Any, url: str, env: dict[str, str]) -> str:
    """Return the proxy to reach url through: the configured one ("none": no proxy), else the
    environment's HTTPS_PROXY or HTTP_PROXY, unless NO_PROXY names the host; "" for none.

    Read once here: the upstream module keeps the environment out of every request.
    """
    if raw is not None:
        value = expand(where, raw, env)
        if value in ("", "none"):
            return ""
        if not re.match(r"^https?://[^/\s]+/?\Z", value):
            raise ConfigError(f'{where} must be an http(s) proxy URL such as http://proxy:3128, or "none"')
        return value.rstrip("/")
    scheme, host = urllib.parse.urlsplit(url).scheme, urllib.parse.urlsplit(url).hostname or ""
    found: dict[str, str] = {}
    for name in ("no", "http", "https", "all"):
        setting = env.get(f"{name}_proxy") or env.get(f"{name.upper()}_PROXY")
        if setting:
            found[name] = setting
    if scheme not in ("http", "https") or urllib.request.proxy_bypass_environment(host, found):  # type: ignore[attr-defined]
        return ""
    return found.get(scheme) or found.get("all", "")


def parse_channels(
    where: str, raw: Any, defaults: dict[str, Any], kind: str, env: dict[str, str]
) -> tuple[ChannelConfig, ...]:
    """Read [[providers.NAME.channels]]: each row may set name, base_url, api_key, weight and proxy;
    defaults holds the provider's base_url, api_key and raw proxy setting."""
    if not isinstance(raw, list) or not raw or not all(isinstance(row, dict) for row in raw):
        raise ConfigError(
            f'{where} must be an array of tables, e.g. [{{ api_key = "${{KEY_A}}", weight = 2 }}]'
        )
    channels = []
    for i, row in enumerate(raw):
        at = f"{where}[{i}]"
        unknown = set(row) - {"name", "base_url", "api_key", "weight", "proxy"}
        if unknown:
            raise ConfigError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
        name = row.get("name", str(i + 1))
        if not isinstance(name, str) or not _CHANNEL.fullmatch(name):
            raise ConfigError(f"{at}.name must be a short name of letters, digits, '.', '_', '-'")
        weight = row.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise ConfigError(f"{at}.weight must be a positive integer")
        url = parse_base_url(f"{at}.base_url", row["base_url"], kind, env) if "base_url" in row else ""
        key = defaults["api_key"]
        if "api_key" in row:
            key = header_value(f"{at}.api_key", expand(f"{at}.api_key", row["api_key"], env))
        url = url or defaults["base_url"]
        proxy = parse_proxy(f"{at}.proxy", row.get("proxy", defaults["proxy"]), url, env)
        channels.append(ChannelConfig(name, url, key, weight, proxy))
    if len({c.name for c in channels}) != len(channels):
        raise ConfigError(f"{where}: channel names must differ")
    return tuple(channels)
