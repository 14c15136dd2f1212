"""The anthropic SDK as a test client: it reads our bytes through a mock transport, strictly validated."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

REQUEST = {"model": "acme:claude-x", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}]}


def client(status: int, body: bytes, content_type: str) -> anthropic.Anthropic:
    """Return a client whose every request is answered with this status and body."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers={"content-type": content_type})

    return anthropic.Anthropic(
        api_key="sk-test",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
        # Validate every answer against the SDK's models, so a shape it would only half-read fails.
        _strict_response_validation=True,
    )


def final_message(raw: bytes) -> anthropic.types.Message:
    """Stream raw events through messages.stream() and return the message the SDK built."""
    with client(200, raw, "text/event-stream").messages.stream(**REQUEST) as stream:
        for _ in stream:
            pass
        return stream.get_final_message()


def whole_message(body: bytes) -> anthropic.types.Message:
    """Read a whole Messages answer through messages.create()."""
    return client(200, body, "application/json").messages.create(**REQUEST)


def raised(status: int, body: bytes, streaming: bool = False) -> anthropic.APIStatusError:
    """Return the exception the SDK raises for an error answer (or an in-band error event)."""
    content_type = "text/event-stream" if streaming else "application/json"
    try:
        if streaming:
            final_message(body)
        else:
            client(status, body, content_type).messages.create(**REQUEST)
    except anthropic.APIStatusError as exc:
        return exc
    raise AssertionError("the SDK did not raise")


def plain(message: anthropic.types.Message) -> dict[str, Any]:
    """Return the message as JSON data, holding only the fields the answer set."""
    return message.model_dump(mode="json", exclude_unset=True)
