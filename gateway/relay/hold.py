"""The hold: the most a request can cost, reserved before any upstream call; the one owner of the estimate.

A token is never shorter than one byte of the body, so the body's size bounds the prompt, and each
image part counts IMAGE_TOKENS more, since an image costs far more tokens than the bytes of its URL.
The output is the cap the client set, else the model's or the provider's default, once per choice.
A fallback may answer instead of the model asked for, at its own price: the dearest is held.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.clock import Clock
from gateway.providers.base import EMBEDDINGS
from gateway.relay import pricing
from gateway.relay.call import Call
from gateway.routing.catalog import Target
from gateway.store import billing, ratelimit
from gateway.store.billing import Hold
from gateway.store.database import Database

# OpenAI's dearest tiling of one high-detail image is about 2,500 tokens; this is also what the
# estimate held before it read parts (two 2,000-token matches of "image_url" per part).
IMAGE_TOKENS = 4000
# Tokens an upstream adds that are not in the body: chat templates frame each message with a few,
# and tool use brings a system prompt of its own (Anthropic's is about 350 tokens).
FRAMING_TOKENS = 16
MESSAGE_TOKENS = 4
TOOL_PROMPT_TOKENS = 400
# What a call that would cost nothing holds instead, unless its model is free: so it needs a positive
# balance (or an unlimited user), and a stranger from open sign-up cannot use an unpriced model.
# The charge is still the real cost (zero); the hold is released at settlement like any other.
MIN_HOLD_MICROS = 1


@dataclass(frozen=True)
class Estimate:
    """The worst case of one request: what is held, and the tokens the rate limits count."""

    amount_micros: int
    tokens: int


def prompt_tokens(call: Call) -> int:
    """Bound the prompt's tokens from above."""
    body = call.body
    messages = body.get("messages")
    framing = FRAMING_TOKENS + MESSAGE_TOKENS * (len(messages) if isinstance(messages, list) else 1)
    tools = TOOL_PROMPT_TOKENS if body.get("tools") else 0
    return call.raw_size + call.request.images * IMAGE_TOKENS + framing + tools


def output_cap(call: Call, target: Target, default: int) -> int:
    """The cap on each answer's tokens for one target: the client's, else the model's default.

    It is held, and it is what goes upstream, in the provider's own field.
    """
    cap = call.request.output_cap
    # The provider's max_tokens is what an adapter sends when the client sets none: hold that much.
    return cap or target.model.max_output_tokens or target.provider.max_tokens or default


def output_tokens(call: Call, target: Target, default: int) -> int:
    """Bound the output's tokens from above for one target: the cap, once per answer generated."""
    if call.operation == EMBEDDINGS:
        return 0  # embeddings are billed on input tokens only
    # n (and best_of) are validated by the surface: at most MAX_CHOICES.
    return output_cap(call, target, default) * call.request.choices


def estimate(call: Call, default_max_tokens: int) -> Estimate:
    """Return the most the call can cost on any of its candidate targets."""
    prompt = prompt_tokens(call)
    outputs = [(t, output_tokens(call, t, default_max_tokens)) for t in call.candidates()]
    amount = max(pricing.worst_case_micros(t.model, prompt, out) for t, out in outputs)
    if amount < MIN_HOLD_MICROS and not all(is_free(t) for t, _ in outputs):
        amount = MIN_HOLD_MICROS
    return Estimate(amount, prompt + max(out for _, out in outputs))


def is_free(target: Target) -> bool:
    """Tell whether anyone may call a target at no cost: marked `free`, or the built-in mock."""
    return target.model.free or target.provider.type == "mock"


def reserve(db: Database, clock: Clock, call: Call, default_max_tokens: int) -> Hold:
    """Hold the call's worst-case cost, within the rate limits and budgets; raises a 429 when it cannot."""
    worst = estimate(call, default_max_tokens)
    principal = call.principal
    # A transaction even where the reservation is one statement (PostgreSQL): a refusal by a later
    # subject (the key, the team) must undo the hold the same statement took on the user.
    with db.session_scope() as conn:
        now = clock.now()
        hold = Hold(
            call.request_id,
            principal.user_id,
            principal.key_id,
            call.target.public_id,
            worst.amount_micros,
            team_id=principal.team_id,
            created_at=now,
        )
        if principal.limits:  # rate limits: same transaction, so the hold counts as in flight
            ratelimit.admit(conn, principal.limits, worst.tokens, now)
        billing.reserve(conn, hold, now)
    return hold
