"""Anthropic's Messages API behind OpenAI's chat completions: the adapter that ties the rooms together.

request builds the upstream body, response reads whole answers, stream translates events, and
mapping holds what they share; none of them imports another in a circle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gateway.errors import UpstreamError
from gateway.providers import chunks
from gateway.providers.anthropic import native
from gateway.providers.anthropic.mapping import error_from
from gateway.providers.anthropic.request import build_body
from gateway.providers.anthropic.response import parse_message
from gateway.providers.anthropic.stream import AnthropicStreamTranslator
from gateway.providers.base import (
    CHAT,
    COUNT_TOKENS,
    MESSAGES,
    Adapter,
    Completion,
    StreamTranslator,
    UpstreamRequest,
)


class AnthropicAdapter(Adapter):
    """Translates chat completions to POST /v1/messages and the answers back.

    Messages clients are relayed natively (MESSAGES, and COUNT_TOKENS for /v1/messages/count_tokens).
    """

    operations = frozenset({CHAT, MESSAGES, COUNT_TOKENS})

    def build_request(
        self,
        body: dict[str, Any],
        upstream_model: str,
        stream: bool,
        operation: str = CHAT,
        *,
        max_output: int | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> UpstreamRequest:
        url = self.provider.base_url + "/messages"
        if operation in (MESSAGES, COUNT_TOKENS):
            # The client's anthropic-version and anthropic-beta go up; the provider's version is the
            # default for a client that sent none.
            sent = dict(native.forwarded_headers(dict(headers)))
            sent.setdefault("anthropic-version", self.provider.api_version)
            up = [*sent.items(), *self.auth_headers()]
            if operation == COUNT_TOKENS:
                return self.request(url + "/count_tokens", native.count_body(body, upstream_model), False, up)
            raw = native.native_body(body, upstream_model, max_output or body.get("max_tokens") or 1)
            return self.request(url, raw, stream, up)
        out = build_body(body, self.provider, upstream_model, stream, max_output)
        auth = [("anthropic-version", self.provider.api_version), *self.auth_headers()]
        return self.request(url, chunks.dumps(out), stream, auth)

    def parse_response(self, raw: bytes, public_model: str, operation: str = CHAT) -> Completion:
        if operation == MESSAGES:
            body, usage = native.native_whole(raw, public_model)
            return Completion(body=body, usage=usage)
        if operation == COUNT_TOKENS:
            return Completion(body=native.count_answer(raw), usage=None)
        return parse_message(raw, public_model, self.provider, self.clock, self.new_id)

    def parse_error(self, status: int, raw: bytes, headers: dict[str, str]) -> UpstreamError:
        try:
            data = json.loads(raw or b"null")
        except (ValueError, RecursionError):
            data = None
        error = error_from(self.provider, data, status)
        if status in (429, 503, 529) and "retry-after" in headers:
            error.headers["retry-after"] = headers["retry-after"]
        return error

    def translator(
        self, public_model: str, upstream_model: str, client_usage: bool, operation: str = CHAT
    ) -> StreamTranslator:
        if operation == MESSAGES:
            return native.NativeStreamReader(public_model, self.provider)
        return AnthropicStreamTranslator(self.provider, public_model, client_usage, self.clock, self.new_id)
