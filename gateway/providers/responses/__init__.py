"""The OpenAI Responses API as an upstream: its event framing, and the native relay to servers with it."""
