"""Settings: defaults, then the TOML file, then GATEWAY_* environment, then test_config.

Everything the gateway reads from the outside world at start-up is read and validated here, once;
the provider tables are read by provider_config.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from gateway.config import bounds
from gateway.config.providers import ProviderConfig, parse_aliases, parse_providers
from gateway.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/gateway.db"
    providers: tuple[ProviderConfig, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()  # bare model name -> provider:model
    max_body_bytes: int = 4 * 1024 * 1024
    max_upstream_body_bytes: int = 64 * 1024 * 1024
    key_cache_ttl: float = 5.0
    default_max_tokens: int = 4096
    hold_timeout: float = 3600.0  # a hold whose worker stopped refreshing it this long is swept
    spool_dir: str = "var/spool"  # settlements the database refused, until it takes them
    write_timeout: float = 60.0  # a client that reads nothing for this long is cut (and billed)
    drain_timeout: float = 3.0  # after a client leaves, read on this long for the upstream's usage
    max_attempts: int = 4  # upstream tries per request, over channels and fallbacks
    db_pool_size: int = 5
    db_lock_timeout: float = 3.0  # the longest wait for another writer's lock (SQLite busy_timeout)
    db_statement_timeout: float = 15.0  # PostgreSQL statement_timeout, per connection
    admin_token: str = field(default="", repr=False)
    testing: bool = False
    signup: str = "open"  # "closed": only admins create console accounts
    cookie_secure: bool = False  # True behind HTTPS: the session cookie is never sent in clear
    secret_key: str = field(default="", repr=False)  # empty: read or create var/secret_key
    metrics_token: str = field(default="", repr=False)  # set: /metrics wants this Bearer token
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")  # else: these networks may scrape
    metrics_dir: str = ""  # PROMETHEUS_MULTIPROC_DIR: workers share metrics through files there
    trusted_proxies: int = 0  # proxies (nginx) in front whose X-Forwarded-* headers are believed
    response_retention_days: int = 30  # stored Responses API responses; 0 stores none
    usage_retention_days: int = 0  # 0 keeps every usage row; N deletes rows older (the sums stay)
    alerts_webhook_url: str = field(default="", repr=False)  # [alerts] webhook_url; empty: no alerts
    alerts_threshold: float = 0.8  # a budget alert when the period's spend passes this share of it
    alerts_interval: float = 5.0  # seconds between two looks for new alerts, in each worker


def normalise_database_url(url: str) -> str:
    """Point plain PostgreSQL URLs at psycopg2, the driver the design card names."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def signup_mode(value: str) -> str:
    """Accept the console's sign-up modes, open or closed."""
    if value not in ("open", "closed"):
        raise ValueError(value)
    return value


def boolean(value: str) -> bool:
    """Read an on/off environment value such as true, 1, yes, false, 0 or no."""
    lowered = value.strip().lower()
    if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        raise ValueError(value)
    return lowered in ("1", "true", "yes", "on")


def networks(value: str) -> tuple[str, ...]:
    """Read a comma-separated list of networks such as 10.0.0.0/8,127.0.0.1."""
    return tuple(
        str(ipaddress.ip_network(part.strip(), strict=False)) for part in value.split(",") if part.strip()
    )


_ENV_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "GATEWAY_DATABASE_URL": ("database_url", str),
    "DATABASE_URL": ("database_url", str),
    "GATEWAY_MAX_BODY_BYTES": ("max_body_bytes", int),
    "GATEWAY_KEY_CACHE_TTL": ("key_cache_ttl", float),
    "GATEWAY_DEFAULT_MAX_TOKENS": ("default_max_tokens", int),
    "GATEWAY_HOLD_TIMEOUT": ("hold_timeout", float),
    "GATEWAY_SPOOL_DIR": ("spool_dir", str),
    "GATEWAY_WRITE_TIMEOUT": ("write_timeout", float),
    "GATEWAY_DRAIN_TIMEOUT": ("drain_timeout", float),
    "GATEWAY_MAX_ATTEMPTS": ("max_attempts", int),
    "GATEWAY_DB_POOL_SIZE": ("db_pool_size", int),
    "GATEWAY_DB_LOCK_TIMEOUT": ("db_lock_timeout", float),
    "GATEWAY_DB_STATEMENT_TIMEOUT": ("db_statement_timeout", float),
    "GATEWAY_ADMIN_TOKEN": ("admin_token", str),
    "GATEWAY_SIGNUP": ("signup", signup_mode),
    "GATEWAY_COOKIE_SECURE": ("cookie_secure", boolean),
    "GATEWAY_SECRET_KEY": ("secret_key", str),
    "GATEWAY_METRICS_TOKEN": ("metrics_token", str),
    "GATEWAY_METRICS_ALLOW": ("metrics_allow", networks),
    "PROMETHEUS_MULTIPROC_DIR": ("metrics_dir", str),
    "GATEWAY_TRUSTED_PROXIES": ("trusted_proxies", int),
    "GATEWAY_RESPONSE_RETENTION_DAYS": ("response_retention_days", int),
    "GATEWAY_USAGE_RETENTION_DAYS": ("usage_retention_days", int),
    "GATEWAY_ALERTS_WEBHOOK_URL": ("alerts_webhook_url", str),
    "GATEWAY_ALERTS_THRESHOLD": ("alerts_threshold", float),
    "GATEWAY_ALERTS_INTERVAL": ("alerts_interval", float),
}
_TOML_FIELDS = {
    "database_url": str,
    "max_body_bytes": int,
    "key_cache_ttl": float,
    "default_max_tokens": int,
    "hold_timeout": float,
    "spool_dir": str,
    "write_timeout": float,
    "drain_timeout": float,
    "max_attempts": int,
    "db_pool_size": int,
    "db_lock_timeout": float,
    "db_statement_timeout": float,
    "response_retention_days": int,
    "usage_retention_days": int,
}
# [alerts] keys -> (setting, type)
_ALERTS_FIELDS = {
    "webhook_url": ("alerts_webhook_url", str),
    "threshold": ("alerts_threshold", float),
    "interval": ("alerts_interval", float),
}
_TOML_TABLES = ("gateway", "providers", "aliases", "alerts")


def _gateway_table(path: str, data: dict[str, Any]) -> dict[str, Any]:
    """Check the file's top-level tables, [gateway] and [alerts]; return the settings they give."""
    unknown = set(data) - set(_TOML_TABLES)
    if unknown:
        # A misspelt [provider.x] would otherwise vanish without a word.
        raise ConfigError(
            f"{path}: unknown table(s) {', '.join(sorted(unknown))}; use {', '.join(_TOML_TABLES)}"
        )
    values = dict(_table(path, data, "gateway", _TOML_FIELDS))
    alerts = _table(path, data, "alerts", {key: kind for key, (_, kind) in _ALERTS_FIELDS.items()})
    values.update({_ALERTS_FIELDS[key][0]: value for key, value in alerts.items()})
    return values


def _table(path: str, data: dict[str, Any], name: str, fields: dict[str, type]) -> dict[str, Any]:
    """Check one settings table of the file: only known keys, each of its type."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name} must be a [{name}] table")
    unknown = set(table) - set(fields)
    if unknown:
        raise ConfigError(f"{path}: [{name}] has unknown key(s) {', '.join(sorted(unknown))}")
    for key, value in table.items():
        kind = fields[key]
        allowed = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            what = {int: "an integer", float: "a number", str: "a string"}[kind]
            raise ConfigError(f"{path}: [{name}] {key} must be {what}, got {value!r}")
    return table


def load_settings(test_config: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the TOML file, the environment and test_config."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    path = env.get("GATEWAY_CONFIG") or ("gateway.toml" if os.path.exists("gateway.toml") else None)
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"GATEWAY_CONFIG names {path}, which does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        values.update(_gateway_table(path, data))
    from_env: dict[str, str] = {}
    for var, (name, kind) in _ENV_FIELDS.items():
        if var in env and (var != "DATABASE_URL" or "GATEWAY_DATABASE_URL" not in env):
            from_env[name] = var
            try:
                values[name] = kind(env[var])
            except ValueError:
                raise ConfigError(
                    f"{var}={env[var]!r} is not a valid {getattr(kind, '__name__', 'value')}"
                ) from None
    test_config = dict(test_config or {})
    if "providers" in test_config and isinstance(test_config["providers"], dict):
        data = {"providers": test_config.pop("providers"), "aliases": test_config.pop("aliases", {})}
    values.update(test_config)
    values["providers"] = parse_providers(data, env)
    values["aliases"] = parse_aliases(data, values["providers"])
    values["database_url"] = normalise_database_url(values.get("database_url", Settings.database_url))
    for name in set(test_config) & set(bounds.BOUNDS):
        from_env.pop(name, None)
    settings = replace(Settings(), **values)
    for name in bounds.BOUNDS:
        bounds.check(name, getattr(settings, name), from_env.get(name))
    check_webhook_url(settings.alerts_webhook_url, from_env.get("alerts_webhook_url"))
    return settings


def check_webhook_url(url: str, env_var: str | None = None) -> None:
    """Refuse an alerts webhook that is not an http(s) URL with a host (empty: alerts are off)."""
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        source = f" (from {env_var})" if env_var else ""
        # The URL is not repeated: a Slack webhook's path is its secret.
        raise ConfigError(f"[alerts] webhook_url must be an http:// or https:// URL with a host{source}")
