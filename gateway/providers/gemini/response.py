"""Gemini's whole generateContent and batchEmbedContents answers as OpenAI bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamProtocolError
from gateway.providers import chunks
from gateway.providers.base import EMBEDDINGS, Completion, as_object
from gateway.providers.gemini.mapping import error_from, finish_reason, parts_to_message, usage_from


def parse_answer(
    raw: bytes,
    public_model: str,
    operation: str,
    provider: ProviderConfig,
    clock: Callable[[], float],
    new_id: Callable[[], str],
) -> Completion:
    """Return the chat completion (or embeddings list) for a Gemini answer; an error body raises."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise UpstreamProtocolError(f"Provider '{provider.name}' sent a response that is not a JSON object.")
    if data.get("error"):
        raise error_from(provider, data, 502)
    if operation == EMBEDDINGS:
        return _embeddings(data, public_model, provider)
    choices = []
    for n, candidate in enumerate(data.get("candidates") or ()):
        content = as_object(candidate.get("content"))
        text, reasoning, calls = parts_to_message(content.get("parts"), new_id)
        choices.append(
            {
                "index": candidate.get("index", n),
                "message": chunks.message(text, calls, reasoning),
                "logprobs": None,
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
            }
        )
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
        message = chunks.message("", [])
        choices = [{"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"}]
    usage = usage_from(data.get("usageMetadata"))
    ident = str(data.get("responseId") or new_id())
    body = chunks.completion_body("chatcmpl-" + ident, int(clock()), public_model, choices, usage)
    return Completion(body=body, usage=usage)


def _embeddings(data: dict[str, Any], public_model: str, provider: ProviderConfig) -> Completion:
    items = data.get("embeddings")
    if not isinstance(items, list) or not items:
        raise UpstreamProtocolError(f"Provider '{provider.name}' sent no embeddings.")
    vectors = [
        {"object": "embedding", "index": i, "embedding": e.get("values") or []} for i, e in enumerate(items)
    ]
    # batchEmbedContents reports no token counts: the relay estimates them from the request.
    body = {"object": "list", "model": public_model, "data": vectors, "usage": None}
    return Completion(body=chunks.dumps(body), usage=None)
