"""OpenAI's chat completions, legacy completions and embeddings as client requests: the canonical form.

parse() checks the fields the gateway itself reads, drops or refuses those the prices cannot price
(surfaces/priced_fields.py; the rest goes upstream untouched) and returns a ParsedRequest: the body,
and what the hold needs to know of it, read from the parsed JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError, InvalidRequestError
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.providers.events import encode_data
from gateway.surfaces import priced_fields
from gateway.surfaces.base import ClientFormat

# The hold multiplies max_tokens by a price: 10**30 tokens overflowed the BIGINT micro-units (a 500).
# 2**31 - 1 tokens for each of at most 128 choices (n; OpenAI's own limit) stays inside BIGINT at any
# price below ~30 million USD per million tokens.
MAX_COUNT = 2**31 - 1


MAX_CHOICES = 128


def _positive_int(body: dict[str, Any], name: str, limit: int = MAX_COUNT) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise InvalidRequestError(f"'{name}' must be a positive integer up to {limit}.", param=name)


def validate_chat(body: dict[str, Any]) -> None:
    """Check the fields the gateway itself reads; the rest goes upstream untouched."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("'model' is required: a string such as 'mock:echo'.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty array of messages.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequestError(
                f"messages[{i}] must be an object with a string 'role'.", param=f"messages[{i}]"
            )
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise InvalidRequestError("'stream' must be true or false.", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequestError("'stream_options' must be an object.", param="stream_options")
    _positive_int(body, "max_tokens")
    _positive_int(body, "max_completion_tokens")
    _positive_int(body, "n", MAX_CHOICES)  # the hold covers n answers


def validate_model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("'model' is required: a string such as 'mock:echo'.", param="model")


def validate_completion(body: dict[str, Any]) -> None:
    """Check a legacy completions body: a prompt, and the fields the gateway reads."""
    validate_model(body)
    prompt = body.get("prompt")
    if not isinstance(prompt, str | list) or (isinstance(prompt, list) and not prompt):
        raise InvalidRequestError("'prompt' must be a string or a non-empty array.", param="prompt")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise InvalidRequestError("'stream' must be true or false.", param="stream")
    _positive_int(body, "max_tokens")
    _positive_int(body, "max_completion_tokens")  # not a legacy field, but the hold reads it
    _positive_int(body, "n", MAX_CHOICES)
    _positive_int(body, "best_of", MAX_CHOICES)  # best_of answers are generated, and billed, per prompt


def validate_embeddings(body: dict[str, Any]) -> None:
    """Check an embeddings body: input is a string, strings, token ids or arrays of token ids."""
    validate_model(body)
    value = body.get("input")
    items = [value] if isinstance(value, str) else value
    valid = isinstance(items, list) and 0 < len(items) <= 2048
    if valid and isinstance(items, list) and not all(isinstance(i, str) for i in items):
        ints = [x for i in items for x in (i if isinstance(i, list) else [i])]
        valid = all(isinstance(x, int) and not isinstance(x, bool) for x in ints) and all(
            not isinstance(i, list) or i for i in items
        )
    if not valid:
        raise InvalidRequestError(
            "'input' must be a string, or an array of 1 to 2048 strings or token arrays.", param="input"
        )
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequestError("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    _positive_int(body, "dimensions")


VALIDATORS = {CHAT: validate_chat, COMPLETIONS: validate_completion, EMBEDDINGS: validate_embeddings}


@dataclass(frozen=True)
class ParsedRequest:
    """A checked client request in the canonical form, and what its hold is computed from."""

    operation: str  # CHAT, COMPLETIONS or EMBEDDINGS
    body: dict[str, Any]
    stream: bool
    images: int = 0  # image parts in the prompt: each may cost far more tokens than its bytes
    client: ClientFormat | None = None  # another client format this request came in; None for chat

    @property
    def choices(self) -> int:
        """The answers generated: n, or best_of on legacy completions (each is billed)."""
        names = ("n", "best_of") if self.operation == COMPLETIONS else ("n",)
        counts = [self.body.get(name) for name in names]
        return max([1, *(c for c in counts if isinstance(c, int) and not isinstance(c, bool))])

    @property
    def output_cap(self) -> int | None:
        """The client's own cap on each answer's tokens, or None when it set none."""
        for name in ("max_completion_tokens", "max_tokens"):
            value = self.body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    @property
    def client_usage(self) -> bool:
        """Whether the client asked for OpenAI's own usage chunk at the end of a stream."""
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


def parse(operation: str, body: dict[str, Any], client: ClientFormat | None = None) -> ParsedRequest:
    """Check a decoded JSON body for an operation; raise a 400 naming the field that is wrong."""
    VALIDATORS[operation](body)
    if operation != EMBEDDINGS:
        body = priced_fields.unpriced(body)
    stream = body.get("stream") is True and operation != EMBEDDINGS
    images = count_images(body.get("messages")) if operation == CHAT else 0
    return ParsedRequest(operation, body, stream, images, client)


def error_event(exc: GatewayError, request_id: str) -> bytes:
    """Return the in-band error of a chat stream: one data event with OpenAI's envelope, no [DONE]."""
    return encode_data(json.dumps({"error": exc.to_error(), "request_id": request_id}).encode())


def count_images(messages: Any) -> int:
    """Count the image parts of chat messages, as parsed (an escaped key cannot hide one)."""
    count = 0
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image_url")
    return count
