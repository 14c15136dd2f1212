"""Pricing: token usage times per-million prices is an integer number of micro-USD, rounded up."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gateway.config.providers import ModelConfig
from gateway.providers.base import Usage, text_weight
from gateway.relay.pricing import (
    cost_micros,
    estimate_answer_tokens,
    estimate_prompt_tokens,
    estimate_tokens,
    worst_case_micros,
)


def model(input_price="0.27", output_price="1.10", cached=None, written=None) -> ModelConfig:
    return ModelConfig(
        name="m",
        upstream_id="m",
        input_price=Decimal(input_price),
        output_price=Decimal(output_price),
        cached_input_price=None if cached is None else Decimal(cached),
        cache_write_price=None if written is None else Decimal(written),
        priced=True,
    )


def test_a_thousand_tokens_at_027_usd_per_million_is_270_micros():
    assert cost_micros(model(), Usage(prompt_tokens=1000)) == 270


def test_prompt_and_completion_are_priced_separately():
    # 1000 × 0.27 + 500 × 1.10 = 270 + 550
    assert cost_micros(model(), Usage(prompt_tokens=1000, completion_tokens=500)) == 820


def test_cost_is_an_int_not_a_float_or_decimal():
    assert type(cost_micros(model(), Usage(prompt_tokens=3, completion_tokens=3))) is int


@pytest.mark.parametrize(
    "prompt, completion, expected",
    [
        (1, 0, 1),  # 0.27 micros is charged as one
        (3, 0, 1),  # 0.81
        (4, 0, 2),  # 1.08
        (0, 1, 2),  # 1.10
        (1, 1, 2),  # 0.27 + 1.10 = 1.37: rounded once, on the total
        (0, 0, 0),
    ],
)
def test_fractions_of_a_micro_round_up_once_on_the_total(prompt, completion, expected):
    assert cost_micros(model(), Usage(prompt_tokens=prompt, completion_tokens=completion)) == expected


def test_exact_amounts_are_not_rounded_up():
    assert cost_micros(model("1", "2"), Usage(prompt_tokens=9, completion_tokens=2)) == 13


def test_cached_tokens_are_priced_at_the_cached_input_price():
    # DeepSeek-style: 1000 prompt tokens of which 800 cache hits; hits at 0.07, misses at 0.27.
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cached_tokens=800)
    assert cost_micros(model(cached="0.07"), usage) == 200 * Decimal("0.27") + 800 * Decimal("0.07")
    assert cost_micros(model(cached="0.07"), usage) == 110


def test_cached_tokens_without_a_cached_price_cost_the_input_price():
    usage = Usage(prompt_tokens=1000, cached_tokens=800)
    assert cost_micros(model(), usage) == cost_micros(model(), Usage(prompt_tokens=1000)) == 270


def test_cached_tokens_beyond_the_prompt_are_not_priced_twice():
    usage = Usage(prompt_tokens=100, cached_tokens=500)
    assert cost_micros(model(cached="0"), usage) == 0


def test_reasoning_tokens_are_already_inside_completion_tokens():
    plain = Usage(prompt_tokens=10, completion_tokens=300)
    reasoning = Usage(prompt_tokens=10, completion_tokens=300, reasoning_tokens=250)
    assert cost_micros(model(), reasoning) == cost_micros(model(), plain)


def test_unpriced_model_costs_nothing():
    free = ModelConfig(name="m", upstream_id="m")
    assert cost_micros(free, Usage(prompt_tokens=10**6, completion_tokens=10**6)) == 0


def test_large_usage_stays_exact():
    # 10^9 tokens at 123.456789 USD/M: a float would lose the last digits.
    usage = Usage(prompt_tokens=10**9, completion_tokens=0)
    assert cost_micros(model("123.456789"), usage) == 123_456_789_000


def test_worst_case_bounds_every_usage_the_body_can_produce():
    m = model(cached="0.07")
    bound = worst_case_micros(m, prompt_bytes=1000, max_output=500)
    assert bound == 820
    for prompt, completion, cached in [(1000, 500, 0), (1000, 500, 1000), (1, 1, 0), (999, 499, 3)]:
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)
        assert cost_micros(m, usage) <= bound


def test_worst_case_holds_when_cached_tokens_cost_more_than_fresh_ones():
    # An odd price list (cache writes billed as cache reads, say) must not let a call overspend.
    m = model(input_price="1", output_price="0", cached="3")
    bound = worst_case_micros(m, prompt_bytes=1000, max_output=0)
    assert cost_micros(m, Usage(prompt_tokens=1000, cached_tokens=1000)) == 3000 <= bound


def test_worst_case_rounds_up():
    assert worst_case_micros(model(), prompt_bytes=1, max_output=0) == 1


@pytest.mark.parametrize("size, tokens", [(0, 0), (1, 1), (4, 1), (5, 2), (4000, 1000)])
def test_estimate_is_a_token_per_four_bytes_rounded_up(size, tokens):
    assert estimate_tokens(size) == tokens


def test_cache_writes_are_billed_at_their_own_price():
    # Anthropic: 2049 prompt tokens = 849 plain + 1000 cache reads + 200 cache writes.
    # 849 × 3 + 1000 × 0.30 + 200 × 3.75 + 47 × 15 = 2547 + 300 + 750 + 705
    usage = Usage(prompt_tokens=2049, completion_tokens=47, cached_tokens=1000, cache_write_tokens=200)
    assert cost_micros(model("3", "15", cached="0.30", written="3.75"), usage) == 4302
    # Without a cache_write_price the writes cost the input price, as before.
    assert cost_micros(model("3", "15", cached="0.30"), usage) == 4302 - 150


def test_cache_writes_never_count_more_than_the_uncached_prompt():
    usage = Usage(prompt_tokens=100, cached_tokens=80, cache_write_tokens=500)
    assert cost_micros(model("1", "1", cached="0", written="10"), usage) == 20 * 10


def test_the_worst_case_takes_the_cache_write_price_when_it_is_dearest():
    assert worst_case_micros(model("3", "15", cached="0.30", written="3.75"), 100, 0) == 375


CJK = "漢" * 30_000


def test_text_weight_counts_a_token_for_each_non_ascii_character():
    assert text_weight("hello world") == 11
    assert text_weight(CJK) == 4 * 30_000
    assert text_weight("né") == 1 + 4
    assert estimate_tokens(text_weight(CJK)) == 30_000  # bytes / 4 would say 22,500


def test_prompt_estimate_is_at_least_a_token_a_cjk_character_however_the_body_spells_it():
    body = {"model": "m", "messages": [{"role": "user", "content": CJK}]}
    for raw in (json.dumps(body).encode(), json.dumps(body, ensure_ascii=False).encode()):
        assert estimate_prompt_tokens(body, len(raw)) >= 30_000
    english = {"model": "m", "messages": [{"role": "user", "content": "word " * 4000}]}
    raw = json.dumps(english).encode()
    assert estimate_prompt_tokens(english, len(raw)) == estimate_tokens(len(raw))


def test_answer_estimate_counts_cjk_characters_in_a_raw_utf8_body():
    raw = json.dumps({"choices": [{"message": {"content": CJK}}]}, ensure_ascii=False).encode()
    assert estimate_answer_tokens(raw) >= 30_000
