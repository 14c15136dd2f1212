"""The OpenAI wire format: OpenAI itself and every compatible upstream (DeepSeek, vLLM, Ollama …)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamError, UpstreamProtocolError
from gateway.providers.base import (
    CHAT,
    COMPACT,
    COMPLETIONS,
    EMBEDDINGS,
    INPUT_TOKENS,
    RESPONSES,
    Adapter,
    Completion,
    StreamTranslator,
    UpstreamRequest,
    Usage,
    text_weight,
    upstream_error,
)
from gateway.providers.chunks import dumps, usage_object
from gateway.providers.events import DONE, Event, encode_comment, encode_data
from gateway.providers.plain_chunk import content_weight, delta_weight
from gateway.providers.responses import native as responses_native


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


CAP_FIELDS = ("max_completion_tokens", "max_tokens")  # the client's first; the newer name wins


def usage_from(raw: Any) -> Usage | None:
    """Read an OpenAI-style usage object, with DeepSeek's and Moonshot's cache fields."""
    if not isinstance(raw, dict):
        return None
    prompt, completion = _count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens"))
    if prompt is None and completion is None:
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    cached = (
        (_count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None)
        or _count(raw.get("prompt_cache_hit_tokens"))
        or _count(raw.get("cached_tokens"))
        or 0
    )
    reasoning = (
        _count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else None
    )
    return Usage(
        prompt_tokens=prompt or 0,
        completion_tokens=completion or 0,
        cached_tokens=cached,
        reasoning_tokens=reasoning or 0,
    )


def chunk_usage(chunk: dict[str, Any]) -> Usage | None:
    """Find usage in a stream chunk: top level, or choices[0] (Moonshot), or x_groq (old Groq)."""
    usage = usage_from(chunk.get("usage"))
    if usage is None:
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            usage = usage_from(choices[0].get("usage"))
    if usage is None and isinstance(chunk.get("x_groq"), dict):
        usage = usage_from(chunk["x_groq"].get("usage"))
    return usage


def rename_reasoning(message: Any) -> None:
    """Rename vLLM's, Ollama's and OpenRouter's `reasoning` to the gateway's `reasoning_content`."""
    if isinstance(message, dict) and isinstance(message.get("reasoning"), str):
        message.setdefault("reasoning_content", message.pop("reasoning"))


def error_fields(raw: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """Return message, type, code and param from any upstream error shape we know."""
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        raw = raw[0]  # Gemini's OpenAI-compatible endpoint wraps errors in an array
    if not isinstance(raw, dict):
        return None, None, None, None
    err = raw.get("error", raw)
    if isinstance(err, str):
        return err, None, None, None
    if not isinstance(err, dict):
        return None, None, None, None

    def text(name: str) -> str | None:
        value = err.get(name)
        return value if isinstance(value, str) and value else None

    return text("message"), text("type"), text("code"), text("param")


class OpenAIAdapter(Adapter):
    """Relays OpenAI's format almost untouched: the model id is swapped, usage is always asked for.

    The provider's options (config.ProviderConfig) cover the compatible servers' deviations: fields
    dropped or renamed, developer messages sent as system, the reasoning field's name, paths, auth.
    """

    operations = frozenset({CHAT, COMPLETIONS, EMBEDDINGS})
    default_paths = {
        CHAT: "/chat/completions",
        COMPLETIONS: "/completions",
        EMBEDDINGS: "/embeddings",
        RESPONSES: "/responses",
        INPUT_TOKENS: "/responses/input_tokens",
        COMPACT: "/responses/compact",
    }

    def __init__(self, provider: ProviderConfig) -> None:
        super().__init__(provider)
        if provider.responses == "native":
            self.operations = type(self).operations | {RESPONSES, INPUT_TOKENS, COMPACT}

    def url(self, upstream_model: str, operation: str) -> str:
        return self.provider.base_url + self.provider.path(operation, self.default_paths[operation])

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
        if operation in (RESPONSES, INPUT_TOKENS, COMPACT):
            cap = max_output if operation == RESPONSES else None
            raw = responses_native.native_body(body, upstream_model, cap)
            return self.request(self.url(upstream_model, operation), raw, stream, self.auth_headers())
        body = dict(body, model=upstream_model)
        if max_output is not None and operation in (CHAT, COMPLETIONS):
            self._cap(body, operation, max_output)
        if operation == EMBEDDINGS:
            # Ask for floats whatever the client wants: not every server has base64, and the
            # gateway encodes it itself (docs/wire-formats.md#openai-embeddings-base64).
            body.pop("encoding_format", None)
        elif stream and self.provider.stream_usage:
            body["stream_options"] = dict(body.get("stream_options") or {}, include_usage=True)
        elif not stream:
            # OpenAI and Azure 400 stream_options without stream (docs/wire-formats.md#openai-stream-usage).
            body.pop("stream_options", None)
        if operation == CHAT and isinstance(body.get("messages"), list):
            body["messages"] = self.messages(body["messages"])
        for name in self.provider.drop_params:
            if name not in CAP_FIELDS or max_output is None:  # the held cap always goes upstream
                body.pop(name, None)
        for old, new in self.provider.rename_params:
            if old in body:
                body.setdefault(new, body.pop(old))
        return self.request(self.url(upstream_model, operation), dumps(body), stream, self.auth_headers())

    def _cap(self, body: dict[str, Any], operation: str, cap: int) -> None:
        """Put the held cap in one field: the one the client used, else the provider's own."""
        if operation == COMPLETIONS:
            field = "max_tokens"  # the legacy endpoint has no other
        else:
            field = next((name for name in CAP_FIELDS if name in body), self.provider.max_tokens_field)
        for name in CAP_FIELDS:
            body.pop(name, None)
        body[field] = cap

    def messages(self, messages: list[Any]) -> list[Any]:
        """Apply the role mapping and the reasoning rules to the messages, copying only what changes."""
        system = self.provider.developer_role == "system"
        field = self.provider.reasoning_field
        out = []
        for message in messages:
            if not isinstance(message, dict):
                out.append(message)
                continue
            if system and message.get("role") == "developer":
                message = dict(message, role="system")
            if "reasoning_content" in message or "reasoning" in message:
                message = dict(message)
                text = message.pop("reasoning_content", None) or message.pop("reasoning", None) or ""
                message.pop("reasoning", None)
                # An empty reasoning goes back too: DeepSeek refuses a tool-call turn without the field.
                # DeepSeek needs reasoning back on tool-call turns and 400s or ignores it elsewhere
                # (docs/wire-formats.md#deepseek-reasoning-in-history); sending it only there is
                # safe for every upstream that reads it.
                if isinstance(text, str) and field != "none" and message.get("tool_calls"):
                    message[field] = text
            out.append(message)
        return out

    def parse_response(self, raw: bytes, public_model: str, operation: str = CHAT) -> Completion:
        if operation == RESPONSES:
            body, usage, _ = responses_native.native_whole(raw, public_model)
            return Completion(body=body, usage=usage)
        if operation in (INPUT_TOKENS, COMPACT):
            return responses_native.native_other(raw, public_model)
        try:
            # DeepSeek sends blank lines before the body while a request is queued.
            data = json.loads(raw.lstrip())
        except (ValueError, RecursionError):
            raise UpstreamProtocolError(
                f"Provider '{self.provider.name}' sent a response that is not JSON."
            ) from None
        if not isinstance(data, dict):
            raise UpstreamProtocolError(
                f"Provider '{self.provider.name}' sent a response that is not a JSON object."
            )
        if data.get("error") and "choices" not in data and "data" not in data:
            raise self.error_from(data, 502)
        data["model"] = public_model
        if self.provider.reasoning_field == "reasoning":
            for choice in data.get("choices") or ():
                if isinstance(choice, dict):
                    rename_reasoning(choice.get("message"))
        usage = chunk_usage(data)
        return Completion(body=dumps(data), usage=usage)

    def parse_error(self, status: int, raw: bytes, headers: dict[str, str]) -> UpstreamError:
        try:
            data = json.loads(raw.lstrip() or b"null")
        except (ValueError, RecursionError):
            data = None  # an HTML page from a proxy, say
        error = self.error_from(data, status)
        if status in (429, 503):
            for name in ("retry-after", "retry-after-ms"):
                if name in headers:
                    error.headers[name] = headers[name]
        return error

    def error_from(self, data: Any, status: int) -> UpstreamError:
        """Normalise an upstream error body into ours."""
        message, kind, code, param = error_fields(data)
        # OpenAI's 429 insufficient_quota is the gateway's provider account running dry, not the
        # client's balance, which is what our own insufficient_quota means.
        credential = "insufficient_quota" in (kind, code)
        return upstream_error(self.provider, status, message, kind, code, param, credential=credential)

    def translator(
        self, public_model: str, upstream_model: str, client_usage: bool, operation: str = CHAT
    ) -> StreamTranslator:
        if operation == RESPONSES:
            return responses_native.NativeStreamReader(public_model, self.provider.name)
        return OpenAIStreamTranslator(self, public_model, upstream_model, client_usage)


class OpenAIStreamTranslator(StreamTranslator):
    """Relays chunks as they come, with the client's model id, and puts usage where the client wants it.

    A client that asked for stream_options.include_usage gets OpenAI's own shape (a last chunk with
    empty choices), made up at the end when the upstream put usage elsewhere (Moonshot). One that
    did not gets usage on the final chunk, as the seed's quickstart shows: the chunk with
    finish_reason is held until the usage chunk or the end arrives, then sent with usage merged.
    """

    def __init__(
        self, adapter: OpenAIAdapter, public_model: str, upstream_model: str, client_usage: bool
    ) -> None:
        self.adapter = adapter
        self.public_model = public_model
        self.client_usage = client_usage
        self.usage: Usage | None = None
        self.relayed_bytes = 0
        self._finished = False
        self._done = False
        self._held: dict[str, Any] | None = None
        self._usage_sent = False  # a top-level usage object went to a client that asked for it
        self._head: dict[str, Any] = {}  # id and created, for a usage chunk we have to make up
        self._rename = adapter.provider.reasoning_field == "reasoning"
        self._needle = b'"model":' + json.dumps(upstream_model).encode()
        self._model = b'"model":' + json.dumps(public_model, ensure_ascii=False).encode()

    def feed(self, event: Event) -> list[bytes]:
        if event.comment is not None:
            return [encode_comment(event.comment)]  # keep-alives keep idle timers from firing
        data = event.data
        if data is None or self._done:
            return []
        if data.strip() == b"[DONE]":
            return self._end()
        # A client that asked for usage may need a made-up usage chunk with the stream's id and created.
        head_seen = not self.client_usage or len(self._head) == 2
        if event.event is None and self._held is None and head_seen and self._needle in data:
            weight = content_weight(data)
            if weight is not None:  # a plain content chunk: relayed as it came, model swapped
                self.relayed_bytes += weight
                return [encode_data(data.replace(self._needle, self._model, 1))]
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise UpstreamProtocolError(
                f"Provider '{self.adapter.provider.name}' sent a stream event that is not JSON."
            ) from None
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError(
                f"Provider '{self.adapter.provider.name}' sent a stream event that is not an object."
            )
        if chunk.get("error") or event.event == "error":
            raise self.adapter.error_from(chunk, 502)
        usage = chunk_usage(chunk)
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if self._rename and b'"reasoning"' in data and isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict):
                    rename_reasoning(choice.get("delta"))
            data = dumps(chunk)
        finishing = False
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict):
                    self.relayed_bytes += delta_weight(choice.get("delta"))
                    if isinstance(choice.get("text"), str):  # legacy completions
                        self.relayed_bytes += text_weight(choice["text"])
                    finishing = finishing or choice.get("finish_reason") is not None
        self._finished = self._finished or finishing
        if usage is None and isinstance(choices, list) and not choices:
            # Azure's prompt_filter_results chunk, xAI's trailing one: nothing for the client, and
            # OpenAI itself never sends an empty choices list except with usage (code that reads
            # chunk.choices[0] breaks on them).
            return []
        if self.client_usage:
            self._usage_sent = self._usage_sent or usage_from(chunk.get("usage")) is not None
            self._head.update((k, chunk[k]) for k in ("id", "created") if chunk.get(k))
            return [self._encode(data, chunk)]
        if usage is not None and not choices:
            return self._release(usage)  # the usage-only chunk merges into the held final chunk
        out = self._release()
        if finishing:
            self._held = chunk
            return out
        out.append(self._encode(data, chunk))
        return out

    def finish(self) -> list[bytes]:
        if self._done:
            return []
        if not self._finished:
            raise UpstreamProtocolError(
                f"Provider '{self.adapter.provider.name}' ended the stream before the answer was complete."
            )
        # Anthropic- and Gemini-like upstreams just close; a finished answer is still whole.
        return self._end()

    def _end(self) -> list[bytes]:
        self._done = True
        # Usage may have come inside the final chunk itself (Moonshot's choices[0].usage, x_groq).
        out = self._release(self.usage)
        if self.client_usage and self.usage is not None and not self._usage_sent:
            chunk = {
                "id": self._head.get("id", ""),
                "object": "chat.completion.chunk",
                "created": self._head.get("created", 0),
                "model": self.public_model,
                "choices": [],
                "usage": usage_object(self.usage),
            }
            out.append(encode_data(dumps(chunk)))
        return out + [DONE]

    def _release(self, usage: Usage | None = None) -> list[bytes]:
        held, self._held = self._held, None
        if held is None:
            return []
        if usage is not None:
            held["usage"] = usage_object(usage)
        held["model"] = self.public_model
        return [encode_data(dumps(held))]

    def _encode(self, data: bytes, chunk: dict[str, Any]) -> bytes:
        # Swapping the model id in the bytes avoids re-encoding every chunk. An unescaped
        # '"model":"x"' can only be the key itself: quotes inside JSON strings are escaped.
        if self._needle in data:
            return encode_data(data.replace(self._needle, self._model, 1))
        chunk["model"] = self.public_model
        return encode_data(dumps(chunk))
