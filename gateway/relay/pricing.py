"""Turn token usage and per-million prices into integer micro-USD (1 USD = 1,000,000)."""

from __future__ import annotations

import json
import math
from decimal import ROUND_CEILING, Decimal
from typing import Any

from gateway.config.providers import ModelConfig
from gateway.providers.base import Usage, text_weight


def _micros(tokens: int, usd_per_million: Decimal) -> Decimal:
    # USD per million tokens is exactly micro-USD per token.
    return Decimal(tokens) * usd_per_million


def cost_micros(model: ModelConfig, usage: Usage) -> int:
    """Price a usage in micro-USD, rounded up to the next micro-unit."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    cached_price = model.input_price if model.cached_input_price is None else model.cached_input_price
    write_price = model.input_price if model.cache_write_price is None else model.cache_write_price
    total = (
        _micros(usage.prompt_tokens - cached - written, model.input_price)
        + _micros(cached, cached_price)
        + _micros(written, write_price)
        + _micros(usage.completion_tokens, model.output_price)
    )
    return int(total.to_integral_value(rounding=ROUND_CEILING))


def estimate_tokens(weight: int) -> int:
    """Estimate tokens from a text's weight (providers.base.text_weight) when usage never came."""
    return math.ceil(weight / 4)


def estimate_prompt_tokens(body: dict[str, Any], raw_size: int) -> int:
    """Estimate a prompt's tokens when usage never came: the larger of body bytes / 4 and its weight.

    The body is weighed as parsed, since its raw bytes may spell a CJK character as a \\u escape.
    Only a request that ends without the upstream's usage pays for this.
    """
    weight = text_weight(json.dumps(body, ensure_ascii=False))
    return estimate_tokens(max(raw_size, weight))


def estimate_answer_tokens(raw: bytes) -> int:
    """Estimate a whole answer's tokens from its body when the upstream reported no usage."""
    return estimate_tokens(max(len(raw), text_weight(raw.decode("utf-8", "replace"))))


def worst_case_micros(model: ModelConfig, prompt_bytes: int, max_output: int) -> int:
    """Bound a request's cost from above: a token is never shorter than one byte of the body."""
    # Any prompt token may come back as cached or cache-written: the bound takes the dearest price.
    prompt_price = max(
        model.input_price, model.cached_input_price or Decimal(0), model.cache_write_price or Decimal(0)
    )
    total = _micros(prompt_bytes, prompt_price) + _micros(max_output, model.output_price)
    return int(total.to_integral_value(rounding=ROUND_CEILING))
