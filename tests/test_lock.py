"""requirements.lock pins every dependency setup.cfg names, with hashes, and `make install` uses it."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _requirements() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = (
        cfg["options"]["install_requires"].splitlines() + cfg["options.extras_require"]["dev"].splitlines()
    )
    return [Requirement(line) for line in (raw.strip() for raw in lines) if line and not line.startswith("#")]


def _pins() -> dict[str, tuple[str, str]]:
    """Map each pinned name to its version and the text of its entry (the pin and its hash lines)."""
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    pins = {}
    for entry in entries:
        match = PIN.match(entry)
        if match:
            pins[canonicalize_name(match.group(1))] = (match.group(2), entry)
    return pins


def test_every_dependency_of_setup_cfg_is_pinned_in_the_lock_within_its_range():
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in setup.cfg but not in requirements.lock: run `make lock`"
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), f"{name}=={version} is outside {req}"


def test_every_pin_carries_a_hash_and_setuptools_is_locked_to_build_with():
    pins = _pins()
    assert "setuptools" in pins, "make install builds the gateway without fetching setuptools"
    for name, (version, entry) in pins.items():
        assert "--hash=sha256:" in entry, f"{name}=={version} has no hash"


def test_make_install_uses_the_lock_with_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK)" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile
    assert "pip check" in makefile
