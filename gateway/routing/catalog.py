"""Providers and models from the settings; resolve("provider:model") to a Target."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gateway.config.providers import ModelConfig, ProviderConfig
from gateway.config.settings import Settings
from gateway.errors import ModelNotFoundError
from gateway.providers.anthropic.adapter import AnthropicAdapter
from gateway.providers.azure import AzureAdapter
from gateway.providers.base import Adapter
from gateway.providers.gemini.adapter import GeminiAdapter
from gateway.providers.mock import MockAdapter
from gateway.providers.openai import OpenAIAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    "openai": OpenAIAdapter,
    "azure": AzureAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "mock": MockAdapter,
}


@dataclass(frozen=True)
class Channel:
    """One endpoint and key of a provider, with the adapter that speaks to it."""

    key: str  # provider/channel: names the channel in cooldowns and logs
    weight: int
    adapter: Adapter


@dataclass(frozen=True)
class Target:
    """Where one public model id goes: the provider, its channels, the model's prices and fallbacks."""

    public_id: str
    provider: ProviderConfig
    model: ModelConfig
    adapter: Adapter  # the first channel's: for what every channel shares (operations, formats)
    channels: tuple[Channel, ...] = ()
    fallbacks: tuple[Target, ...] = field(default=(), compare=False)


class Catalog:
    """Every routable model, built once at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.targets: dict[str, Target] = {}
        self.aliases = dict(settings.aliases)
        for provider in settings.providers:
            channels = tuple(
                Channel(
                    f"{provider.name}/{c.name}",
                    c.weight,
                    ADAPTERS[provider.type](
                        replace(provider, base_url=c.base_url, api_key=c.api_key, proxy=c.proxy)
                    ),
                )
                for c in provider.all_channels()
            )
            for model in provider.models:
                public_id = f"{provider.name}:{model.name}"
                self.targets[public_id] = Target(public_id, provider, model, channels[0].adapter, channels)
        # One level deep: a fallback's own fallbacks are not followed, so no chain can loop.
        plain = dict(self.targets)
        for public_id, target in plain.items():
            fallbacks = tuple(plain[f] for f in target.model.fallbacks)
            self.targets[public_id] = replace(target, fallbacks=fallbacks)

    def resolve(self, model: str) -> Target:
        """Return the target for a provider:modelId, or raise model_not_found."""
        target = self.targets.get(model) or self.targets.get(self.aliases.get(model, ""))
        if target is None:
            shown = model if len(model) <= 200 else model[:200] + "…"
            raise ModelNotFoundError(
                f"The model `{shown}` does not exist or you do not have access to it. "
                "Use provider:modelId, e.g. mock:echo; GET /api/v1/models lists them.",
                param="model",
            )
        return target

    def unpriced(self) -> list[str]:
        """Return the models served at zero cost because the config gives them no price (nor `free`)."""
        return [
            t.public_id
            for t in self.targets.values()
            if not t.model.priced and not t.model.free and t.provider.type != "mock"
        ]
