"""gunicorn settings for the gateway; GATEWAY_BIND, GATEWAY_WORKERS, GATEWAY_THREADS override."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import gunicorn.util

wsgi_app = "gateway.wsgi:app"
bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
worker_class = "gthread"


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours taskset and cgroup cpusets
    except AttributeError:
        return os.cpu_count() or 1


# One worker per usable core: the GIL lets one worker use one core, and more workers on the same
# core only contend (make bench: +34 % requests/s on SQLite, +24 % on PostgreSQL with 1 instead of 2
# on one core). A stream holds a thread for its whole life, so concurrent streams <= workers x
# threads (the rest wait in the accept queue); threads default to ~1,024 per host in all. An idle
# thread costs a few dozen KiB, and threads do not hold database connections: each worker's pool
# (GATEWAY_DB_POOL_SIZE, default 5, plus as many overflow) is used only for the reserve and settle
# transactions, so hosts x workers x 10 must stay under PostgreSQL's max_connections (100).
workers = int(os.environ.get("GATEWAY_WORKERS") or _usable_cpus())
threads = int(os.environ.get("GATEWAY_THREADS") or max(64, -(-1024 // workers)))
# gthread keeps a connection alive only while fewer than worker_connections - threads are idle, so
# the default 1,000 with 1,024 threads closed every connection after one answer (nginx's upstream
# keepalive included): room for 1,000 idle keep-alive connections beside the busy threads.
worker_connections = threads + 1000
timeout = 60
# On reload or stop, old workers stop accepting and get this long to finish what they serve (streams).
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT") or 30)
keepalive = 5
# gunicorn 23+ opens a control socket at one fixed path per user; several gateways on one host
# (or the tests' two) would fight over it, and the gateway does not use it.
control_socket_disable = True

# One JSON line per request from gateway.access; budget alerts sent from gateway.alerts; warnings and
# errors from the rest; all on stderr.
# gunicorn merges this dict shallowly over its defaults, so its own loggers are restated here.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(message)s"},
        "full": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "plain": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        "full": {"class": "logging.StreamHandler", "formatter": "full", "stream": "ext://sys.stderr"},
    },
    "root": {"level": "WARNING", "handlers": ["full"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["full"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["plain"], "propagate": False},
        "gateway.access": {"level": "INFO", "handlers": ["plain"], "propagate": False},
        "gateway": {"level": "WARNING", "handlers": ["full"], "propagate": False},
        # Which worker sends budget alerts, and each one sent: rare lines an operator wants.
        "gateway.alerts": {"level": "INFO", "handlers": ["full"], "propagate": False},
    },
}


# prometheus-client multiprocess mode: every worker writes its samples to files in this folder and a
# scrape of any worker reads them all. One folder per master, emptied at start, so two gateways on one
# host never mix their numbers. It must be in the environment before workers import prometheus_client.
# A reload reads this file again, with the folder already in the environment: remember whose it is.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR") or (
    os.environ.get("GATEWAY_OWNS_METRICS_DIR") == str(os.getpid())
)
if _own_metrics_dir:
    os.environ["GATEWAY_OWNS_METRICS_DIR"] = str(os.getpid())
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(
    os.path.abspath("var"), "prometheus", str(os.getpid())
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def _config_check() -> subprocess.CompletedProcess[str]:
    # In a child process, so the master never imports the app (and never holds its memory).
    command = [sys.executable, "-c", "from gateway.cli import main; main()", "check"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def when_ready(server):
    """Check the configuration before each reload (SIGHUP, systemctl reload); refuse a broken one.

    gunicorn itself would start new workers on a broken file, which then fail to boot and take the
    whole server down. Checked first, the old workers keep serving the old configuration instead.
    """
    reload = server.handle_hup

    def checked_reload():
        proc = _config_check()
        if proc.returncode != 0:
            reason = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            server.log.error("reload refused, the workers keep the running configuration: %s", reason[0])
            return
        reload()

    server.handle_hup = checked_reload


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


def _json_error(sock, status_int, reason, mesg):
    """Answer a request gunicorn itself cannot parse in the gateway's JSON envelope, not an HTML page.

    gunicorn refuses, for instance, a control character in a header before the app sees it. Its own
    message is left out: it quotes the offending header, which may be an API key.
    """
    client = status_int < 500
    error = {
        "message": f"{reason}: the request line or a header is malformed." if client else reason,
        "type": "invalid_request_error" if client else "server_error",
        "param": None,
        "code": "invalid_request" if client else "internal_error",
    }
    body = json.dumps({"error": error, "request_id": "req_" + uuid.uuid4().hex}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


# Workers call gunicorn.util.write_error by attribute at the moment of the error; forked workers
# inherit this assignment from the master, which reads this file.
gunicorn.util.write_error = _json_error
