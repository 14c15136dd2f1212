"""The [providers] and [aliases] tables: each provider's wire format, credentials, options and models.

Validated once at start-up; every mistake is a ConfigError that names the key and says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.config.channels import ChannelConfig, parse_base_url, parse_channels, parse_proxy
from gateway.config.values import (
    choice,
    expand,
    header_value,
    headers,
    optional_count,
    price,
    strings,
    table,
    timeout,
)
from gateway.errors import ConfigError

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
_COMMON_KEYS = {
    "type",
    "base_url",
    "api_key",
    "channels",
    "cooldown",
    "models",
    "connect_timeout",
    "read_timeout",
    "first_byte_timeout",
    "idle_timeout",
    "total_timeout",
    "auth",
    "headers",
    "proxy",
}
# Options that only make sense for some wire formats; anything else is refused by name.
_TYPE_KEYS = {
    "openai": {
        "paths",
        "drop_params",
        "rename_params",
        "developer_role",
        "reasoning_field",
        "stream_usage",
        "max_tokens_field",
        "responses",
    },
    "azure": {
        "paths",
        "drop_params",
        "rename_params",
        "developer_role",
        "stream_usage",
        "api_version",
        "max_tokens_field",
        "responses",
    },
    "anthropic": {"api_version", "max_tokens"},
    "gemini": set(),
    "mock": set(),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    upstream_id: str
    input_price: Decimal = Decimal(0)  # USD per million prompt tokens
    output_price: Decimal = Decimal(0)  # USD per million completion tokens
    cached_input_price: Decimal | None = None  # USD per million cached prompt tokens
    cache_write_price: Decimal | None = None  # USD per million prompt tokens written to the cache
    max_output_tokens: int | None = None  # reservation cap when the client sets none
    context_length: int | None = None  # shown by GET /models; not enforced
    priced: bool = False
    free: bool = False  # zero price for everyone, even users without balance (`free = true`)
    fallbacks: tuple[str, ...] = ()  # provider:model ids tried in order when every channel fails
    thinking: str | None = None  # Anthropic: "adaptive" or "budget"; None guesses from upstream_id


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    type: str
    base_url: str
    api_key: str = field(default="", repr=False)
    models: tuple[ModelConfig, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()  # empty: the one channel of base_url and api_key
    proxy: str = field(default="", repr=False)  # the HTTP(S) proxy to base_url; "" for none
    cooldown: float = 30.0  # seconds a failed channel sits out
    connect_timeout: float = 5.0
    first_byte_timeout: float = 300.0  # from sending until the first byte of the answer's body
    idle_timeout: float = 300.0  # the longest silence between two reads once the body has begun
    total_timeout: float = 900.0  # one attempt, from sending to the last byte
    auth: str = "bearer"  # how the api_key is sent: one of AUTH_STYLES
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # extra static headers
    paths: tuple[tuple[str, str], ...] = ()  # operation -> path under base_url, when not the usual
    drop_params: tuple[str, ...] = ()  # request fields removed before sending
    rename_params: tuple[tuple[str, str], ...] = ()  # request fields renamed before sending
    developer_role: str = "developer"  # "system": send developer messages as system messages
    reasoning_field: str = "reasoning_content"  # the upstream's name for reasoning text
    stream_usage: bool = True  # send stream_options.include_usage when streaming
    api_version: str = ""  # Azure's api-version query, Anthropic's anthropic-version header
    max_tokens_field: str = "max_tokens"  # where the output cap goes when the client named no field
    responses: str = "chat"  # "native": the upstream serves the Responses API itself
    max_tokens: int | None = None  # output cap sent when the client sets none (Anthropic needs one)

    def path(self, operation: str, default: str) -> str:
        """Return the path of an operation under base_url."""
        return dict(self.paths).get(operation, default)

    def all_channels(self) -> tuple[ChannelConfig, ...]:
        return self.channels or (ChannelConfig("default", self.base_url, self.api_key, 1, self.proxy),)


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false")
    return value


def _model(provider: str, name: str, raw: Any) -> ModelConfig:
    where = f"providers.{provider}.models.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(raw) - {
        "upstream_id",
        "input_price",
        "output_price",
        "cached_input_price",
        "cache_write_price",
        "max_output_tokens",
        "context_length",
        "fallbacks",
        "free",
        "thinking",
    }
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    upstream_id = raw.get("upstream_id", name)
    if not isinstance(upstream_id, str) or not upstream_id:
        raise ConfigError(f"{where}.upstream_id must be a non-empty string")
    cap = optional_count(f"{where}.max_output_tokens", raw.get("max_output_tokens"))
    thinking = raw.get("thinking")
    if thinking not in (None, "adaptive", "budget"):
        raise ConfigError(f'{where}.thinking must be "adaptive" or "budget"')
    cached, written = raw.get("cached_input_price"), raw.get("cache_write_price")
    return ModelConfig(
        name=name,
        upstream_id=upstream_id,
        input_price=price(f"{where}.input_price", raw.get("input_price", 0)),
        output_price=price(f"{where}.output_price", raw.get("output_price", 0)),
        cached_input_price=None if cached is None else price(f"{where}.cached_input_price", cached),
        cache_write_price=None if written is None else price(f"{where}.cache_write_price", written),
        max_output_tokens=cap,
        context_length=optional_count(f"{where}.context_length", raw.get("context_length")),
        priced="input_price" in raw or "output_price" in raw,
        free=_flag(f"{where}.free", raw.get("free", False)),
        fallbacks=strings(f"{where}.fallbacks", raw.get("fallbacks", []), '["openai:gpt-4o-mini"]'),
        thinking=thinking,
    )


def _timeouts(where: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Read the four timeouts; the older read_timeout is the default of first-byte and idle."""
    read = timeout(f"{where}.read_timeout", raw.get("read_timeout", 300.0))
    out: dict[str, Any] = {
        "connect_timeout": timeout(f"{where}.connect_timeout", raw.get("connect_timeout", 5.0))
    }
    for name, default in (("first_byte_timeout", read), ("idle_timeout", read), ("total_timeout", 900.0)):
        out[name] = timeout(f"{where}.{name}", raw.get(name, default))
    out["cooldown"] = timeout(f"{where}.cooldown", raw.get("cooldown", 30.0), zero=True)
    return out


def _paths(where: str, raw: Any, env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    paths = table(where, raw, env, '{ chat = "/api/chat/completions" }')
    for operation, path in paths:
        choice(f"{where}: operation", operation, OPERATIONS)
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
        "auth": choice(f"{where}.auth", raw.get("auth", DEFAULT_AUTH[kind]), AUTH_STYLES),
        "headers": headers(f"{where}.headers", raw.get("headers", {}), env),
        "api_version": DEFAULT_API_VERSION.get(kind, ""),
    }
    if "paths" in raw:
        options["paths"] = _paths(f"{where}.paths", raw["paths"], env)
    if "drop_params" in raw:
        options["drop_params"] = strings(f"{where}.drop_params", raw["drop_params"])
    if "rename_params" in raw:
        example = '{ max_completion_tokens = "max_tokens" }'
        options["rename_params"] = table(f"{where}.rename_params", raw["rename_params"], env, example)
    if "developer_role" in raw:
        options["developer_role"] = choice(
            f"{where}.developer_role", raw["developer_role"], ("developer", "system")
        )
    if "reasoning_field" in raw:
        options["reasoning_field"] = choice(
            f"{where}.reasoning_field", raw["reasoning_field"], REASONING_FIELDS
        )
    if "stream_usage" in raw:
        if not isinstance(raw["stream_usage"], bool):
            raise ConfigError(f"{where}.stream_usage must be true or false")
        options["stream_usage"] = raw["stream_usage"]
    if "api_version" in raw:
        version = raw["api_version"]
        if not isinstance(version, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", version):
            raise ConfigError(f"{where}.api_version must be a version string, e.g. 2024-10-21")
        options["api_version"] = version
    if "max_tokens" in raw:
        options["max_tokens"] = optional_count(f"{where}.max_tokens", raw["max_tokens"])
    if "max_tokens_field" in raw:
        fields = ("max_tokens", "max_completion_tokens")
        options["max_tokens_field"] = choice(f"{where}.max_tokens_field", raw["max_tokens_field"], fields)
    if "responses" in raw:
        options["responses"] = choice(f"{where}.responses", raw["responses"], ("chat", "native"))
    return options


def _provider(name: str, raw: Any, env: dict[str, str]) -> ProviderConfig:
    where = f"providers.{name}"
    if not _NAME.fullmatch(name) or ":" in name:
        raise ConfigError(f"{where}: provider names may use letters, digits, '.', '_', '-', '/'")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    kind = raw.get("type", "openai")
    if kind not in PROVIDER_TYPES:
        raise ConfigError(f"{where}.type {kind!r} is unknown; use one of {', '.join(PROVIDER_TYPES)}")
    options = _options(where, kind, raw, env)
    default_url = "mock://local" if kind == "mock" else ""
    api_key = header_value(f"{where}.api_key", expand(f"{where}.api_key", raw.get("api_key", ""), env))
    channels: tuple[ChannelConfig, ...] = ()
    if "channels" in raw:
        # The provider's base_url and api_key are the defaults of channels that name none.
        top_url = parse_base_url(f"{where}.base_url", raw["base_url"], kind, env) if "base_url" in raw else ""
        defaults = {"base_url": top_url or default_url, "api_key": api_key, "proxy": raw.get("proxy")}
        channels = parse_channels(f"{where}.channels", raw["channels"], defaults, kind, env)
        if not all(c.base_url for c in channels):
            raise ConfigError(f"{where}: give base_url to the provider or to every channel")
        base_url = top_url or channels[0].base_url
    else:
        base_url = parse_base_url(f"{where}.base_url", raw.get("base_url", default_url), kind, env)
    models = raw.get("models", {})
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{where}.models must list at least one model")
    return ProviderConfig(
        name=name,
        type=kind,
        base_url=base_url,
        api_key=api_key,
        channels=channels,
        proxy=parse_proxy(f"{where}.proxy", raw.get("proxy"), base_url, env),
        models=tuple(_model(name, m, body) for m, body in models.items()),
        **_timeouts(where, raw),
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
    _check_fallbacks(providers)
    return tuple(providers)


def _check_fallbacks(providers: list[ProviderConfig]) -> None:
    """Each fallback must be another configured model, named once."""
    known = {f"{p.name}:{m.name}" for p in providers for m in p.models}
    for p in providers:
        for m in p.models:
            where = f"providers.{p.name}.models.{m.name}.fallbacks"
            for target in m.fallbacks:
                if target not in known:
                    raise ConfigError(f"{where} names {target!r}, which is not a configured provider:model")
                if target == f"{p.name}:{m.name}":
                    raise ConfigError(f"{where}: a model cannot be its own fallback")
            if len(set(m.fallbacks)) != len(m.fallbacks):
                raise ConfigError(f"{where} names a model twice")


def parse_aliases(data: dict[str, Any], providers: tuple[ProviderConfig, ...]) -> tuple[tuple[str, str], ...]:
    """Validate the [aliases] table: bare model names for clients that cannot send a prefix."""
    raw = data.get("aliases", {})
    if not isinstance(raw, dict):
        raise ConfigError('aliases must be a table, e.g. [aliases] gpt-4o = "openai:gpt-4o"')
    known = {f"{p.name}:{m.name}" for p in providers for m in p.models}
    for alias, target in raw.items():
        if ":" in alias or not _NAME.fullmatch(alias):
            raise ConfigError(f"aliases.{alias}: an alias is a bare model name without ':'")
        if target not in known:
            raise ConfigError(f"aliases.{alias} points at {target!r}, which is not a configured model")
    return tuple(raw.items())
