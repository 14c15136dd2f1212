"""Read a request's JSON body: its content type, its size (chunked too), strict UTF-8, a bounded depth."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import request

from gateway.errors import InvalidRequestError, RequestTooLargeError, UnsupportedMediaTypeError

# Deeper JSON parses, but re-encoding it for the upstream a few stack frames further down then hits
# Python's recursion limit (a 500 at ~977 levels); no OpenAI body nests anywhere near this deep.
MAX_JSON_DEPTH = 128


_TOO_DEEP = f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels."


# A JSON escape of a UTF-16 surrogate: in strict UTF-8, only these can leave a lone one in a string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_json_body() -> tuple[bytes, dict[str, Any]]:
    """Return the raw body and its JSON object, or raise a 4xx that says what is wrong."""
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"The request body must be JSON sent as 'Content-Type: application/json', not '{mimetype[:100]}'."
        )
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH, this raises a 413
    # Without a Content-Length (chunked), werkzeug stops reading at the limit and returns the body
    # silently cut short; one more byte from the server's stream tells a larger body apart.
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise RequestTooLargeError()
    try:
        # Strict UTF-8 (RFC 8259 §8.1): json.loads(bytes) would also take UTF-16/32 and, through
        # "surrogatepass", encoded surrogates, which then fail as a 500 when the body goes upstream.
        body = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InvalidRequestError("The request body is not valid UTF-8.") from None
    except RecursionError:
        raise InvalidRequestError(_TOO_DEEP) from None
    except ValueError:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. Send a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    _check_depth(body)
    if _SURROGATE_ESCAPE.search(raw):
        try:
            # A lone surrogate ("\\ud800") parses, then fails as UTF-8 when the body goes upstream.
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidRequestError(
                "The JSON body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text."
            ) from None
    return raw, body


def _check_depth(body: dict[str, Any]) -> None:
    """Raise a 400 when the parsed body nests deeper than MAX_JSON_DEPTH (a walk of containers only)."""
    level: list[Any] = [body]
    for _depth in range(MAX_JSON_DEPTH):
        level = [
            v
            for node in level
            for v in (node.values() if isinstance(node, dict) else node)
            if isinstance(v, (dict, list))
        ]
        if not level:
            return
    raise InvalidRequestError(_TOO_DEEP)
