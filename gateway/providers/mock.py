"""The built-in mock provider's adapter: OpenAI's format, chat only, sent to the mock:// transport."""

from __future__ import annotations

from gateway.providers.base import CHAT
from gateway.providers.openai import OpenAIAdapter


class MockAdapter(OpenAIAdapter):
    """Speaks OpenAI's format to the in-process mock upstream (gateway/upstream/mock.py)."""

    operations = frozenset({CHAT})
