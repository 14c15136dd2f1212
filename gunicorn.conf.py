"""gunicorn settings for the gateway; GATEWAY_BIND, GATEWAY_WORKERS, GATEWAY_THREADS override."""

import os

wsgi_app = "gateway.wsgi:app"
bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
worker_class = "gthread"
# A stream holds a thread for its whole life: concurrent streams <= workers x threads.
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("GATEWAY_THREADS", "32"))
timeout = 60
graceful_timeout = 30
keepalive = 5
