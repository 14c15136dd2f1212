"""Request fields that change what the provider charges, which the model's prices cannot price.

The gateway bills text tokens at the prices configured per model. A few fields make the provider
charge another rate for the same tokens; each is dropped (the provider's default applies, which is
what the prices price) or refused (dropping it would silently change the answer):

| field                                  | what the provider charges         | here    |
|----------------------------------------|-----------------------------------|---------|
| service_tier ("priority", "flex", ...) | a tier's own rate (priority ~1.8x)| dropped |
| modalities containing "audio", audio   | audio output tokens (~8x text)    | refused |
| input_audio content parts              | audio input tokens (~16x text)    | refused |

Other fields that cost more, such as predicted outputs' rejected tokens or reasoning effort, are
counted by the provider in the usage it reports, and so billed.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequestError

DROPPED = ("service_tier",)
AUDIO_REFUSED = (
    "Audio input and output are priced differently from text and are not offered through this gateway."
)


def unpriced(body: dict[str, Any]) -> dict[str, Any]:
    """Return the body without the dropped fields; refuse audio with a 400 naming the field."""
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise InvalidRequestError(AUDIO_REFUSED, param="modalities", code="unsupported_parameter")
    if body.get("audio") is not None:
        raise InvalidRequestError(AUDIO_REFUSED, param="audio", code="unsupported_parameter")
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") == "input_audio" for part in content
        ):
            raise InvalidRequestError(
                AUDIO_REFUSED, param=f"messages[{i}].content", code="unsupported_parameter"
            )
    if any(name in body for name in DROPPED):
        return {name: value for name, value in body.items() if name not in DROPPED}
    return body
