"""OpenAI's chat completions, legacy completions and embeddings under /api/v1."""

from __future__ import annotations

import base64
import functools
import json
import struct

from flask import Blueprint, Response

from gateway.blueprints.serve import respond, serve
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.surfaces import openai_chat

bp = Blueprint("chat", __name__, url_prefix="/api/v1")


@bp.post("/chat/completions")
def create_chat_completion() -> Response:
    return respond(*serve(functools.partial(openai_chat.parse, CHAT)))


@bp.post("/completions")
def create_completion() -> Response:
    return respond(*serve(functools.partial(openai_chat.parse, COMPLETIONS)))


@bp.post("/embeddings")
def create_embedding() -> Response:
    call, answer = serve(functools.partial(openai_chat.parse, EMBEDDINGS))
    assert isinstance(answer, bytes)
    if call.body.get("encoding_format") == "base64":
        answer = _as_base64(answer)
    return respond(call, answer)


def _as_base64(answer: bytes) -> bytes:
    """Encode vectors as base64 of little-endian float32 (docs/wire-formats.md#openai-embeddings-base64)."""
    data = json.loads(answer)
    for item in data.get("data") or ():
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return json.dumps(data, separators=(",", ":")).encode()
