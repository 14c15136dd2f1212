"""Settings: defaults, then the TOML file, then GATEWAY_* environment, then test_config.

Everything the gateway reads from the outside world at start-up is read and validated here, once.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

PROVIDER_TYPES = ("openai", "azure", "anthropic", "gemini", "mock")
AUTH_STYLES = ("bearer", "api-key", "x-api-key", "x-goog-api-key", "none")
OPERATIONS = ("chat", "completions", "embeddings", "models")
REASONING_FIELDS = ("reasoning_content", "reasoning", "none")
# How each type authenticates unless the provider table says otherwise.
DEFAULT_AUTH = {
    "openai": "bearer",
    "azure": "api-key",
    "anthropic": "x-api-key",
    "gemini": "x-goog-api-key",
    "mock": "none",
}
DEFAULT_API_VERSION = {"azure": "2024-10-21", "anthropic": "2023-06-01"}
_COMMON_KEYS = {"type", "base_url", "api_key", "models", "connect_timeout", "read_timeout", "auth", "headers"}
# Options that only make sense for some wire formats; anything else is refused by name.
_TYPE_KEYS = {
    "openai": {"paths", "drop_params", "rename_params", "developer_role", "reasoning_field", "stream_usage"},
    "azure": {"paths", "drop_params", "rename_params", "developer_role", "stream_usage", "api_version"},
    "anthropic": {"api_version", "max_tokens"},
    "gemini": set(),
    "mock": set(),
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ModelConfig:
    name: str
    upstream_id: str
    input_price: Decimal = Decimal(0)  # USD per million prompt tokens
    output_price: Decimal = Decimal(0)  # USD per million completion tokens
    cached_input_price: Decimal | None = None  # USD per million cached prompt tokens
    max_output_tokens: int | None = None  # reservation cap when the client sets none
    context_length: int | None = None  # shown by GET /models; not enforced
    priced: bool = False


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    type: str
    base_url: str
    api_key: str = field(default="", repr=False)
    models: tuple[ModelConfig, ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    auth: str = "bearer"  # how the api_key is sent: one of AUTH_STYLES
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # extra static headers
    paths: tuple[tuple[str, str], ...] = ()  # operation -> path under base_url, when not the usual
    drop_params: tuple[str, ...] = ()  # request fields removed before sending
    rename_params: tuple[tuple[str, str], ...] = ()  # request fields renamed before sending
    developer_role: str = "developer"  # "system": send developer messages as system messages
    reasoning_field: str = "reasoning_content"  # the upstream's name for reasoning text
    stream_usage: bool = True  # send stream_options.include_usage when streaming
    api_version: str = ""  # Azure's api-version query, Anthropic's anthropic-version header
    max_tokens: int | None = None  # output cap sent when the client sets none (Anthropic needs one)

    def path(self, operation: str, default: str) -> str:
        """Return the path of an operation under base_url."""
        return dict(self.paths).get(operation, default)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/gateway.db"
    providers: tuple[ProviderConfig, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()  # bare model name -> provider:model
    max_body_bytes: int = 4 * 1024 * 1024
    max_upstream_body_bytes: int = 64 * 1024 * 1024
    key_cache_ttl: float = 5.0
    default_max_tokens: int = 4096
    hold_timeout: float = 3600.0
    db_pool_size: int = 5
    admin_token: str = field(default="", repr=False)
    testing: bool = False
    signup: str = "open"  # "closed": only admins create console accounts
    cookie_secure: bool = False  # True behind HTTPS: the session cookie is never sent in clear
    secret_key: str = field(default="", repr=False)  # empty: read or create var/secret_key
    metrics_token: str = field(default="", repr=False)  # set: /metrics wants this Bearer token
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")  # else: these networks may scrape
    metrics_dir: str = ""  # PROMETHEUS_MULTIPROC_DIR: workers share metrics through files there
    trusted_proxies: int = 0  # proxies (nginx) in front whose X-Forwarded-* headers are believed


def _price(where: str, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ConfigError(f"{where}: price must be a number of USD per million tokens")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"{where}: price {raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{where}: price must be a finite number >= 0, got {raw!r}")
    return value


def _expand(where: str, raw: Any, env: dict[str, str]) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{where} must be a string")

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"{where} uses ${{{name}}}, but {name} is not set in the environment")
        return env[name]

    return _VAR.sub(sub, raw)


def _model(provider: str, name: str, raw: Any) -> ModelConfig:
    where = f"providers.{provider}.models.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(raw) - {
        "upstream_id",
        "input_price",
        "output_price",
        "cached_input_price",
        "max_output_tokens",
        "context_length",
    }
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    upstream_id = raw.get("upstream_id", name)
    if not isinstance(upstream_id, str) or not upstream_id:
        raise ConfigError(f"{where}.upstream_id must be a non-empty string")
    cap = _optional_count(f"{where}.max_output_tokens", raw.get("max_output_tokens"))
    cached = raw.get("cached_input_price")
    return ModelConfig(
        name=name,
        upstream_id=upstream_id,
        input_price=_price(f"{where}.input_price", raw.get("input_price", 0)),
        output_price=_price(f"{where}.output_price", raw.get("output_price", 0)),
        cached_input_price=None if cached is None else _price(f"{where}.cached_input_price", cached),
        max_output_tokens=cap,
        context_length=_optional_count(f"{where}.context_length", raw.get("context_length")),
        priced="input_price" in raw or "output_price" in raw,
    )


def _optional_count(where: str, raw: Any) -> int | None:
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or raw < 1):
        raise ConfigError(f"{where} must be a positive integer")
    return raw


def _timeout(where: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise ConfigError(f"{where} must be a positive number of seconds")
    return float(raw)


def _choice(where: str, raw: Any, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise ConfigError(f"{where} {raw!r} is unknown; use one of {', '.join(choices)}")
    return raw


def _strings(where: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise ConfigError(f'{where} must be an array of names, e.g. ["logit_bias", "user"]')
    return tuple(raw)


def _table(where: str, raw: Any, env: dict[str, str], example: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
        raise ConfigError(f"{where} must be a table of strings, e.g. {example}")
    return tuple((k, _expand(f"{where}.{k}", v, env)) for k, v in raw.items())


def _paths(where: str, raw: Any, env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    paths = _table(where, raw, env, '{ chat = "/api/chat/completions" }')
    for operation, path in paths:
        _choice(f"{where}: operation", operation, OPERATIONS)
        if not path.startswith("/"):
            raise ConfigError(f"{where}.{operation} must start with '/', got {path!r}")
    return paths


def _options(where: str, kind: str, raw: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Validate the per-type options of one provider table."""
    unknown = set(raw) - _COMMON_KEYS - _TYPE_KEYS[kind]
    if unknown:
        others = sorted(k for k in unknown if any(k in keys for keys in _TYPE_KEYS.values()))
        hint = f" ({', '.join(others)} do not apply to type {kind!r})" if others else ""
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}{hint}")
    options: dict[str, Any] = {
        "auth": _choice(f"{where}.auth", raw.get("auth", DEFAULT_AUTH[kind]), AUTH_STYLES),
        "headers": _table(f"{where}.headers", raw.get("headers", {}), env, '{ "X-Title" = "gateway" }'),
        "api_version": DEFAULT_API_VERSION.get(kind, ""),
    }
    if "paths" in raw:
        options["paths"] = _paths(f"{where}.paths", raw["paths"], env)
    if "drop_params" in raw:
        options["drop_params"] = _strings(f"{where}.drop_params", raw["drop_params"])
    if "rename_params" in raw:
        example = '{ max_completion_tokens = "max_tokens" }'
        options["rename_params"] = _table(f"{where}.rename_params", raw["rename_params"], env, example)
    if "developer_role" in raw:
        options["developer_role"] = _choice(
            f"{where}.developer_role", raw["developer_role"], ("developer", "system")
        )
    if "reasoning_field" in raw:
        options["reasoning_field"] = _choice(
            f"{where}.reasoning_field", raw["reasoning_field"], REASONING_FIELDS
        )
    if "stream_usage" in raw:
        if not isinstance(raw["stream_usage"], bool):
            raise ConfigError(f"{where}.stream_usage must be true or false")
        options["stream_usage"] = raw["stream_usage"]
    if "api_version" in raw:
        version = raw["api_version"]
        if not isinstance(version, str) or not re.match(r"^[A-Za-z0-9._-]+$", version):
            raise ConfigError(f"{where}.api_version must be a version string, e.g. 2024-10-21")
        options["api_version"] = version
    if "max_tokens" in raw:
        options["max_tokens"] = _optional_count(f"{where}.max_tokens", raw["max_tokens"])
    return options


def _provider(name: str, raw: Any, env: dict[str, str]) -> ProviderConfig:
    where = f"providers.{name}"
    if not _NAME.match(name) or ":" in name:
        raise ConfigError(f"{where}: provider names may use letters, digits, '.', '_', '-', '/'")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    kind = raw.get("type", "openai")
    if kind not in PROVIDER_TYPES:
        raise ConfigError(f"{where}.type {kind!r} is unknown; use one of {', '.join(PROVIDER_TYPES)}")
    options = _options(where, kind, raw, env)
    base_url = _expand(
        f"{where}.base_url", raw.get("base_url", "mock://local" if kind == "mock" else ""), env
    ).rstrip("/")
    if kind != "mock" and not re.match(r"^https?://[^/\s]+", base_url):
        raise ConfigError(f"{where}.base_url must be an http(s) URL, e.g. https://api.deepseek.com/v1")
    models = raw.get("models", {})
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{where}.models must list at least one model")
    return ProviderConfig(
        name=name,
        type=kind,
        base_url=base_url,
        api_key=_expand(f"{where}.api_key", raw.get("api_key", ""), env),
        models=tuple(_model(name, m, body) for m, body in models.items()),
        connect_timeout=_timeout(f"{where}.connect_timeout", raw.get("connect_timeout", 5.0)),
        read_timeout=_timeout(f"{where}.read_timeout", raw.get("read_timeout", 300.0)),
        **options,
    )


def builtin_mock() -> ProviderConfig:
    """Return the built-in mock provider, which needs no upstream and no key."""
    return ProviderConfig(
        name="mock",
        type="mock",
        base_url="mock://local",
        models=(ModelConfig(name="echo", upstream_id="echo"),),
    )


def parse_providers(data: dict[str, Any], env: dict[str, str]) -> tuple[ProviderConfig, ...]:
    """Validate the [providers] tables of a parsed TOML document."""
    raw = data.get("providers", {})
    if not isinstance(raw, dict):
        raise ConfigError("providers must be a table of [providers.NAME] tables")
    providers = [_provider(name, body, env) for name, body in raw.items()]
    if not any(p.name == "mock" for p in providers):
        providers.insert(0, builtin_mock())
    return tuple(providers)


def parse_aliases(data: dict[str, Any], providers: tuple[ProviderConfig, ...]) -> tuple[tuple[str, str], ...]:
    """Validate the [aliases] table: bare model names for clients that cannot send a prefix."""
    raw = data.get("aliases", {})
    if not isinstance(raw, dict):
        raise ConfigError('aliases must be a table, e.g. [aliases] gpt-4o = "openai:gpt-4o"')
    known = {f"{p.name}:{m.name}" for p in providers for m in p.models}
    for alias, target in raw.items():
        if ":" in alias or not _NAME.match(alias):
            raise ConfigError(f"aliases.{alias}: an alias is a bare model name without ':'")
        if target not in known:
            raise ConfigError(f"aliases.{alias} points at {target!r}, which is not a configured model")
    return tuple(raw.items())


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


_ENV_FIELDS = {
    "GATEWAY_DATABASE_URL": ("database_url", str),
    "DATABASE_URL": ("database_url", str),
    "GATEWAY_MAX_BODY_BYTES": ("max_body_bytes", int),
    "GATEWAY_KEY_CACHE_TTL": ("key_cache_ttl", float),
    "GATEWAY_DEFAULT_MAX_TOKENS": ("default_max_tokens", int),
    "GATEWAY_HOLD_TIMEOUT": ("hold_timeout", float),
    "GATEWAY_DB_POOL_SIZE": ("db_pool_size", int),
    "GATEWAY_ADMIN_TOKEN": ("admin_token", str),
    "GATEWAY_SIGNUP": ("signup", signup_mode),
    "GATEWAY_COOKIE_SECURE": ("cookie_secure", boolean),
    "GATEWAY_SECRET_KEY": ("secret_key", str),
    "GATEWAY_METRICS_TOKEN": ("metrics_token", str),
    "GATEWAY_METRICS_ALLOW": ("metrics_allow", networks),
    "PROMETHEUS_MULTIPROC_DIR": ("metrics_dir", str),
    "GATEWAY_TRUSTED_PROXIES": ("trusted_proxies", int),
}
_TOML_FIELDS = {
    "database_url": str,
    "max_body_bytes": int,
    "key_cache_ttl": float,
    "default_max_tokens": int,
    "hold_timeout": float,
    "db_pool_size": int,
}
_TOML_TABLES = ("gateway", "providers", "aliases")


def _gateway_table(path: str, data: dict[str, Any]) -> dict[str, Any]:
    """Check the file's top-level tables and [gateway] values; return the [gateway] table."""
    unknown = set(data) - set(_TOML_TABLES)
    if unknown:
        # A misspelt [provider.x] would otherwise vanish without a word.
        raise ConfigError(
            f"{path}: unknown table(s) {', '.join(sorted(unknown))}; use {', '.join(_TOML_TABLES)}"
        )
    gateway = data.get("gateway", {})
    if not isinstance(gateway, dict):
        raise ConfigError(f"{path}: gateway must be a [gateway] table")
    unknown = set(gateway) - set(_TOML_FIELDS)
    if unknown:
        raise ConfigError(f"{path}: [gateway] has unknown key(s) {', '.join(sorted(unknown))}")
    for name, value in gateway.items():
        kind = _TOML_FIELDS[name]
        allowed = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            what = {int: "an integer", float: "a number", str: "a string"}[kind]
            raise ConfigError(f"{path}: [gateway] {name} must be {what}, got {value!r}")
    return gateway


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
    for var, (name, kind) in _ENV_FIELDS.items():
        if var in env and (var != "DATABASE_URL" or "GATEWAY_DATABASE_URL" not in env):
            try:
                values[name] = kind(env[var])
            except ValueError:
                raise ConfigError(f"{var}={env[var]!r} is not a valid {kind.__name__}") from None
    test_config = dict(test_config or {})
    if "providers" in test_config and isinstance(test_config["providers"], dict):
        data = {"providers": test_config.pop("providers"), "aliases": test_config.pop("aliases", {})}
    values.update(test_config)
    values["providers"] = parse_providers(data, env)
    values["aliases"] = parse_aliases(data, values["providers"])
    values["database_url"] = normalise_database_url(values.get("database_url", Settings.database_url))
    settings = replace(Settings(), **values)
    for name in ("max_body_bytes", "default_max_tokens", "db_pool_size"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be a positive integer")
    return settings
