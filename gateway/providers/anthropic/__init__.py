"""Anthropic's Messages API as an upstream: request, response, stream and their shared mapping."""
