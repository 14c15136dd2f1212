"""The Anthropic Messages surface (Claude Code, the anthropic SDKs): requests, answers, streams, errors."""
