"""The OpenAI Responses API (/v1/responses) as a client surface over canonical chat completions.

request turns a Responses request into a canonical chat body (tools in tools.py), response and
stream turn canonical answers back, count estimates input tokens, events frames the wire events.
"""
