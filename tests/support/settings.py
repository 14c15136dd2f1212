"""Settings from a TOML file written for the test: loaded, or refused with a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.settings import load_settings
from gateway.errors import ConfigError


def load(tmp_path: Path, toml: str, **env: str):
    """Write toml to tmp_path/gateway.toml and load the settings from it and env."""
    path = tmp_path / "gateway.toml"
    path.write_text(toml)
    return load_settings(env={"GATEWAY_CONFIG": str(path), **env})


def refused(tmp_path: Path, toml: str, **env: str) -> str:
    """Return the message of the ConfigError that loading toml must raise."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, **env)
    return str(info.value)


def provider(settings, name: str):
    return next(p for p in settings.providers if p.name == name)
