"""The [alerts] settings: read from the file and the environment, and refused at start-up when wrong."""

from __future__ import annotations

import pytest

from tests.support.settings import load, refused


def test_alerts_are_off_by_default_with_a_threshold_of_four_fifths(tmp_path):
    settings = load(tmp_path, "")
    assert (settings.alerts_webhook_url, settings.alerts_threshold, settings.alerts_interval) == (
        "",
        0.8,
        5.0,
    )


def test_the_alerts_table_sets_url_threshold_and_interval(tmp_path):
    toml = '[alerts]\nwebhook_url = "https://hooks.example.com/T1/B2"\nthreshold = 0.9\ninterval = 2\n'
    settings = load(tmp_path, toml)
    assert settings.alerts_webhook_url == "https://hooks.example.com/T1/B2"
    assert (settings.alerts_threshold, settings.alerts_interval) == (0.9, 2.0)
    assert "T1/B2" not in repr(settings)  # a Slack webhook's path is its secret


def test_the_environment_overrides_the_alerts_table(tmp_path):
    settings = load(
        tmp_path,
        "[alerts]\nthreshold = 0.9\n",
        GATEWAY_ALERTS_WEBHOOK_URL="http://127.0.0.1:9/hook",
        GATEWAY_ALERTS_THRESHOLD="0.5",
    )
    assert (settings.alerts_webhook_url, settings.alerts_threshold) == ("http://127.0.0.1:9/hook", 0.5)


@pytest.mark.parametrize(
    "toml, words",
    [
        ('[alerts]\nwebhook_url = "ftp://files.example.com/x"\n', "[alerts] webhook_url must be an http"),
        ('[alerts]\nwebhook_url = "hooks.example.com/x"\n', "[alerts] webhook_url must be an http"),
        ('[alerts]\nwebhook_url = "https:///no-host"\n', "[alerts] webhook_url must be an http"),
        ("[alerts]\nthreshold = 0\n", "alerts_threshold must be more than 0 and less than 1"),
        ("[alerts]\nthreshold = 1\n", "alerts_threshold must be more than 0 and less than 1"),
        ("[alerts]\nthreshold = 1.5\n", "alerts_threshold must be more than 0 and less than 1"),
        ("[alerts]\ninterval = 0\n", "alerts_interval must be more than 0 and at most 3600 seconds"),
        ('[alerts]\nthreshold = "high"\n', "[alerts] threshold must be a number"),
        ('[alerts]\nwebhok_url = "https://x.example.com"\n', "[alerts] has unknown key(s) webhok_url"),
    ],
)
def test_wrong_alerts_settings_are_refused_naming_the_key(tmp_path, toml, words):
    assert words in refused(tmp_path, toml)


def test_a_wrong_webhook_url_from_the_environment_names_the_variable(tmp_path):
    message = refused(tmp_path, "", GATEWAY_ALERTS_WEBHOOK_URL="file:///etc/passwd")
    assert "GATEWAY_ALERTS_WEBHOOK_URL" in message and "/etc/passwd" not in message
