"""The official openai SDK as the reader of our bytes, through a mock transport: no server, no network.

Two checks per stream and per whole answer: the SDK's own code path (its SSE decoder, its stream
state machine, get_final_response), and strict validation against its pydantic types, since the SDK
builds models without validating them and would accept a missing required field silently.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx2
import openai
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

EVENT = TypeAdapter(ResponseStreamEvent)


def client(status: int, body: bytes, content_type: str) -> openai.OpenAI:
    """Return an SDK client whose every request gets this one answer."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers={"content-type": content_type})

    transport = httpx2.MockTransport(answer)
    return openai.OpenAI(
        base_url="http://gateway.test/v1",
        api_key="sk-test",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def stream_events(raw: bytes) -> list[Any]:
    """Return the events the SDK yields for a streamed answer (it raises on an error event)."""
    sdk = client(200, raw, "text/event-stream")
    return list(sdk.responses.create(model="acme:chat-model", input="Hi", stream=True))


def stream_final(raw: bytes, tools: list[dict[str, Any]] | None = None) -> Any:
    """Return the SDK's final response for a streamed answer, through responses.stream()."""
    sdk = client(200, raw, "text/event-stream")
    kwargs: dict[str, Any] = {"tools": tools} if tools else {}
    with sdk.responses.stream(model="acme:chat-model", input="Hi", **kwargs) as stream:
        for _ in stream:
            pass
        return stream.get_final_response()


def whole(body: dict[str, Any]) -> Any:
    """Return the SDK's Response for a whole answer."""
    sdk = client(200, json.dumps(body).encode(), "application/json")
    return sdk.responses.create(model="acme:chat-model", input="Hi")


def validate_response(body: dict[str, Any]) -> None:
    """Validate a response object strictly against the SDK's Response type."""
    Response.model_validate(_sdk_codes(body))


def validate_events(events: list[dict[str, Any]]) -> None:
    """Validate each event strictly against the SDK's ResponseStreamEvent union."""
    for event in events:
        if "response" in event:
            event = dict(event, response=_sdk_codes(event["response"]))
        EVENT.validate_python(event)


def _sdk_codes(response: dict[str, Any]) -> dict[str, Any]:
    # The SDK types error.code as a closed list, but Codex itself branches on codes outside it
    # (context_length_exceeded, insufficient_quota): we send our own stable codes, and check the rest.
    if not response.get("error"):
        return response
    response = copy.deepcopy(response)
    response["error"]["code"] = "server_error"
    return response
