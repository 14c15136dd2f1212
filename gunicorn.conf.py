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

# One JSON line per request from gateway.access, warnings and errors from the rest, on stderr.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(message)s"},
        "full": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "access": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        "errors": {"class": "logging.StreamHandler", "formatter": "full", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "gateway.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        "gateway": {"level": "WARNING", "handlers": ["errors"], "propagate": False},
    },
}
