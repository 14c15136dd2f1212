"""The key that signs session cookies: from the settings, or a file created once with mode 0600."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.errors import ConfigError

SECRET_FILE = Path("var") / "secret_key"


def load_secret_key(configured: str, testing: bool, path: Path = SECRET_FILE) -> str:
    """Return the configured key, else the file's, creating the file on first run.

    Tests without a configured key get a fresh key per app, so they leave no file behind.
    """
    if configured:
        if len(configured) < 32:
            raise ConfigError("GATEWAY_SECRET_KEY must be at least 32 characters (secrets.token_urlsafe(48))")
        return configured
    if testing:
        return secrets.token_urlsafe(48)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Every gunicorn worker gets here at start-up: each writes its own temporary file, and
    # os.link() publishes exactly one of them, whole, so all workers read the same key.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"{path} holds a secret key shorter than 32 characters; delete it or fix it")
    return key
