"""Keep-alive under the repo's gunicorn.conf.py with its default thread count, against real gunicorn.

gthread closes a connection after its answer unless worker_connections leaves room beside the
threads; with one worker and 1,024 threads the default 1,000 left none, and every request paid a
new connection (nginx's upstream keepalive too).
"""

from __future__ import annotations

import http.client
import json

from tests.fakes.gateway_server import run_gateway, store_url

CHAT = "/api/v1/chat/completions"
BODY = json.dumps({"model": "mock:echo", "messages": [{"role": "user", "content": "hi"}]})


def test_one_connection_serves_many_requests_with_the_default_threads(tmp_path):
    with store_url("sqlite", tmp_path) as url, run_gateway(tmp_path, url, threads=1024) as gw:
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        try:
            headers = {**gw.headers, "Content-Type": "application/json"}
            sockets = set()
            for _ in range(3):
                conn.request("POST", CHAT, body=BODY, headers=headers)
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 200
                assert resp.getheader("Connection", "").lower() != "close"
                sockets.add(id(conn.sock))
            assert len(sockets) == 1  # http.client reconnects when the server closes
        finally:
            conn.close()
