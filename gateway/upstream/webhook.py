"""Outbound webhooks (budget alerts): one JSON POST, a short timeout, and a yes or no for the sender.

The URL is never logged or raised: a Slack webhook's path is its secret.
"""

from __future__ import annotations

from typing import Any

import requests


def post_json(url: str, body: dict[str, Any], timeout: float) -> str | None:
    """POST body as JSON; return None when the receiver answered 2xx, else what went wrong."""
    try:
        resp = requests.post(url, json=body, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return f"the webhook could not be reached ({type(exc).__name__})"
    with resp:
        if 200 <= resp.status_code < 300:
            return None
        return f"the webhook answered {resp.status_code}"
