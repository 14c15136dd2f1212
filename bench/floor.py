"""THE FLOOR: a reference for `make bench`, not the product. Never deploy it: it has no billing.

The design card's stack with nothing on it: Flask + requests on gunicorn gthread, a dict of keys, no
database, one relay of the upstream's answer (whole, or SSE line by line). The gateway's costs are
measured as ratios to this. BENCH_UPSTREAM and BENCH_KEY come from the environment.
"""

import os
import threading

import requests
from flask import Flask, Response, abort, request

app = Flask(__name__)
UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9/v1") + "/chat/completions"
KEYS = {os.environ.get("BENCH_KEY", "sk-floor"): "bench"}
local = threading.local()


def session() -> requests.Session:
    if not hasattr(local, "session"):
        local.session = requests.Session()
    return local.session


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@app.post("/api/v1/chat/completions")
def chat() -> Response:
    if KEYS.get(request.headers.get("Authorization", "")[7:]) is None:
        abort(401)
    body = request.get_json()
    up = session().post(UPSTREAM, json=body, stream=bool(body.get("stream")), timeout=60)
    if not body.get("stream"):
        return Response(up.content, up.status_code, content_type="application/json")
    lines = (line + b"\n\n" for line in up.iter_lines(chunk_size=None) if line)
    return Response(lines, content_type="text/event-stream")
