"""The shipped nginx config (deploy/nginx-gateway.conf) in front of a live gateway, with real nginx.

Only the listen ports, the upstream address and the certificate paths are swapped; everything else
is the file operators install. It must relay streamed chunks as they are produced, not at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3

from tests.fakes.gateway_server import GatewayServer, free_port, run_gateway, store_url
from tests.fakes.upstream import FakeUpstream

SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx-gateway.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_or_skip() -> str:
    if os.path.exists(NGINX):
        return NGINX
    if os.environ.get("CI"):
        pytest.fail("nginx is missing in CI: .ci/run installs nginx-light")
    pytest.skip("nginx test skipped: install Debian's nginx-light to run it (CI does)")


def render_site(gateway_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    site = SITE.read_text()
    for old, new in [
        ("server 127.0.0.1:8000", f"server 127.0.0.1:{gateway_port}"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("/etc/ssl/certs/gateway.example.com.pem", str(cert)),
        ("/etc/ssl/private/gateway.example.com.key", str(key)),
    ]:
        assert old in site, f"deploy/nginx-gateway.conf no longer contains {old!r}"
        site = site.replace(old, new)
    return site


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[FakeUpstream, GatewayServer, str, str]]:
    nginx = nginx_or_skip()
    work = tmp_path_factory.mktemp("nginx")
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    with FakeUpstream() as fake, store_url("sqlite", work) as url, run_gateway(work, url, fake.url) as gw:
        http_port, https_port = free_port(), free_port()
        (work / "site.conf").write_text(render_site(gw.port, http_port, https_port, cert, key))
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = "".join(
            f" {kind}_temp_path {work}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (work / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {work}/nginx.pid;\n"
            f"error_log {work}/error.log warn;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n access_log off;\n{temp} include {work}/site.conf;\n}}\n"
        )
        proc = subprocess.Popen(
            [nginx, "-p", str(work), "-c", str(work / "nginx.conf")], stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
                    break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read().decode()
                    time.sleep(0.05)
            yield fake, gw, f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def _self_signed():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        yield


def test_streamed_chunks_arrive_through_nginx_as_they_are_produced(stack):
    fake, gw, base, _ = stack
    tag = "n" + uuid.uuid4().hex[:10]
    body = {
        "model": "fake:slow",
        "stream": True,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": tag}],
    }
    arrivals = []
    with requests.post(base + "/api/v1/chat/completions", json=body, headers=gw.headers, stream=True,
                       verify=False, timeout=30) as resp:  # fmt: skip
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith(b"data: {"):
                arrivals.append(time.monotonic())
    upstream = fake.find(tag)
    last_sent = max(t for t, _ in upstream.sent)
    # 20 chunks 50 ms apart: buffered, they would all arrive together after the last was sent.
    assert len(arrivals) >= 20
    assert arrivals[-1] - arrivals[0] > 0.6
    assert arrivals[0] < last_sent - 0.5


def test_whole_answer_and_request_id_pass_through_nginx(stack):
    _, gw, base, _ = stack
    resp = requests.post(
        base + "/api/v1/chat/completions",
        json={"model": "mock:echo", "messages": [{"role": "user", "content": "via nginx"}]},
        headers={**gw.headers, "X-Request-Id": "nginx-test-0001"},
        verify=False,
        timeout=10,
    )
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"]["content"] == "via nginx"
    assert resp.headers["X-Request-Id"] == "nginx-test-0001"


def test_nginx_gives_its_own_request_id_to_the_gateway(stack):
    _, gw, base, _ = stack
    resp = requests.get(base + "/api/v1/models", headers=gw.headers, verify=False, timeout=10)
    assert resp.status_code == 200
    assert len(resp.headers["X-Request-Id"]) == 32  # nginx's $request_id, kept by the gateway


def test_body_over_nginx_limit_gets_the_json_envelope(stack):
    _, gw, base, _ = stack
    big = json.dumps({"model": "mock:echo", "messages": [{"role": "user", "content": "x" * (6 << 20)}]})
    resp = requests.post(base + "/api/v1/chat/completions", data=big, verify=False, timeout=30,
                         headers={**gw.headers, "Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "request_too_large"


def test_plain_http_redirects_to_https(stack):
    _, _, _, http_base = stack
    resp = requests.get(http_base + "/api/v1/models", allow_redirects=False, timeout=10)
    assert resp.status_code == 301
    assert resp.headers["Location"].startswith("https://")


def test_metrics_path_is_closed_to_other_networks_in_the_shipped_config():
    site = SITE.read_text()
    block = site[site.index("location = /metrics") :]
    assert "allow 127.0.0.1;" in block and "deny all;" in block[: block.index("}")]


def test_https_answers_carry_hsts_errors_too(stack):
    _, gw, base, _ = stack
    ok = requests.get(base + "/api/v1/models", headers=gw.headers, verify=False, timeout=10)
    refused = requests.get(base + "/api/v1/models", verify=False, timeout=10)
    for resp in (ok, refused):
        assert resp.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert refused.status_code == 401


def _tls_socket(base: str) -> socket.socket:
    import ssl

    host, port = base.removeprefix("https://").split(":")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context.wrap_socket(socket.create_connection((host, int(port)), timeout=30), server_hostname=host)


def _closed_after(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Read until nginx closes the connection (or limit passes); return when and what it sent."""
    started, got = time.monotonic(), b""
    sock.settimeout(limit)
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except (TimeoutError, OSError):
        pass
    return time.monotonic() - started, got


HEADER_TIMEOUT = 10.0  # client_header_timeout and client_body_timeout in the shipped file
SLACK = 5.0


def test_a_client_that_stops_mid_headers_or_mid_body_is_cut(stack):
    _, gw, base, _ = stack
    site = SITE.read_text()
    assert "client_header_timeout 10s;" in site and "client_body_timeout 10s;" in site
    headers_only = _tls_socket(base)
    headers_only.sendall(b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    half_body = _tls_socket(base)
    half_body.sendall(
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {gw.key}\r\nContent-Length: 1000\r\n\r\n".encode()
        + b'{"model": "mock:echo", '
    )
    with headers_only, half_body:
        waited, sent = _closed_after(headers_only, HEADER_TIMEOUT + SLACK)
        assert HEADER_TIMEOUT - 1 <= waited < HEADER_TIMEOUT + SLACK, (
            "slowloris: the half-sent headers were kept"
        )
        assert b"200 OK" not in sent
        waited, sent = _closed_after(half_body, SLACK)  # its timer ran alongside the first one
        assert waited < SLACK, "the half-sent body was kept"
        assert b"200 OK" not in sent
    # The gateway's own threads were never involved: it still answers at once.
    resp = requests.get(base + "/api/v1/models", headers=gw.headers, verify=False, timeout=5)
    assert resp.status_code == 200


def test_the_service_unit_marks_the_session_cookie_secure():
    from gateway.config.settings import load_settings

    unit = (SITE.parent / "gateway.service").read_text()
    env = dict(
        line.removeprefix("Environment=").split("=", 1)
        for line in unit.splitlines()
        if line.startswith("Environment=")
    )
    assert env["GATEWAY_COOKIE_SECURE"] == "true"
    assert load_settings(env={"GATEWAY_CONFIG": "", **env}).cookie_secure is True
