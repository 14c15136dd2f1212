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
# gunicorn 23+ opens a control socket at one fixed path per user; several gateways on one host
# (or the tests' two) would fight over it, and the gateway does not use it.
control_socket_disable = True

# One JSON line per request from gateway.access; warnings and errors from the rest; all on stderr.
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
    },
}
