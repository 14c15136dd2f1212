"""Anthropic's Messages API behind OpenAI's chat completions: the adapter that ties the rooms together.

request builds the upstream body, response reads whole answers, stream translates events, and
mapping holds what they share; none of them imports another in a circle.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import UpstreamError
from gateway.providers import chunks
from gateway.providers.anthropic.mapping import error_from
from gateway.providers.anthropic.request import build_body
from gateway.providers.anthropic.response import parse_message
from gateway.providers.anthropic.stream import AnthropicStreamTranslator
from gateway.providers.base import CHAT, Adapter, Completion, StreamTranslator, UpstreamRequest


class AnthropicAdapter(Adapter):
    """Translates chat completions to POST /v1/messages and the answers back."""

    def build_request(
        self, body: dict[str, Any], upstream_model: str, stream: bool, operation: str = CHAT
    ) -> UpstreamRequest:
        out = build_body(body, self.provider, upstream_model, stream)
        headers = [("anthropic-version", self.provider.api_version), *self.auth_headers()]
        return self.request(self.provider.base_url + "/messages", chunks.dumps(out), stream, headers)

    def parse_response(self, raw: bytes, public_model: str, operation: str = CHAT) -> Completion:
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

    def translator(self, public_model: str, upstream_model: str, client_usage: bool) -> StreamTranslator:
        return AnthropicStreamTranslator(self.provider, public_model, client_usage, self.clock, self.new_id)
