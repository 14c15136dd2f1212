"""Google's Gemini API (generateContent) behind OpenAI's chat completions and embeddings.

request builds the upstream bodies, response reads whole answers, stream translates events, and
mapping holds what they share; none of them imports another in a circle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gateway.errors import UpstreamError
from gateway.providers import chunks
from gateway.providers.base import CHAT, EMBEDDINGS, Adapter, Completion, StreamTranslator, UpstreamRequest
from gateway.providers.gemini.mapping import error_from
from gateway.providers.gemini.request import content_body, embeddings_body
from gateway.providers.gemini.response import parse_answer
from gateway.providers.gemini.stream import GeminiStreamTranslator


class GeminiAdapter(Adapter):
    """Translates chat completions to generateContent, embeddings to batchEmbedContents."""

    operations = frozenset({CHAT, EMBEDDINGS})

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
        base = f"{self.provider.base_url}/models/{upstream_model}"
        if operation == EMBEDDINGS:
            out = embeddings_body(body, self.provider, upstream_model)
            return self.request(base + ":batchEmbedContents", chunks.dumps(out), False, self.auth_headers())
        url = base + (":streamGenerateContent?alt=sse" if stream else ":generateContent")
        return self.request(url, chunks.dumps(content_body(body, max_output)), stream, self.auth_headers())

    def parse_response(self, raw: bytes, public_model: str, operation: str = CHAT) -> Completion:
        return parse_answer(raw, public_model, operation, self.provider, self.clock, self.new_id)

    def parse_error(self, status: int, raw: bytes, headers: dict[str, str]) -> UpstreamError:
        try:
            data = json.loads(raw or b"null")
        except (ValueError, RecursionError):
            data = None
        error = error_from(self.provider, data, status)
        if status in (429, 503) and "retry-after" in headers:
            error.headers["retry-after"] = headers["retry-after"]
        return error

    def translator(
        self, public_model: str, upstream_model: str, client_usage: bool, operation: str = CHAT
    ) -> StreamTranslator:
        return GeminiStreamTranslator(self.provider, public_model, client_usage, self.clock, self.new_id)
