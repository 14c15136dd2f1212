"""Provider options, provider types and aliases in the TOML catalog: accepted, defaulted, refused by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config.settings import load_settings
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def load(tmp_path: Path, toml: str, **env: str):
    path = tmp_path / "gateway.toml"
    path.write_text(toml)
    return load_settings(env={"GATEWAY_CONFIG": str(path), **env})


def refused(tmp_path: Path, toml: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml)
    return str(info.value)


def provider(settings, name: str):
    return next(p for p in settings.providers if p.name == name)


OPENAI_OPTIONS = """
[providers.ds]
base_url = "https://api.deepseek.com"
api_key = "k"
auth = "api-key"
headers = { "X-Title" = "${TITLE}" }
paths = { chat = "/v2/chat", embeddings = "/v2/embed" }
drop_params = ["logit_bias", "user"]
rename_params = { max_completion_tokens = "max_tokens" }
developer_role = "system"
reasoning_field = "reasoning"
stream_usage = false
models = { m = { context_length = 65536 } }
"""


def test_every_openai_option_is_read_and_expanded(tmp_path):
    ds = provider(load(tmp_path, OPENAI_OPTIONS, TITLE="gw"), "ds")
    assert (ds.auth, ds.headers, ds.developer_role, ds.reasoning_field, ds.stream_usage) == (
        "api-key",
        (("X-Title", "gw"),),
        "system",
        "reasoning",
        False,
    )
    assert ds.path("chat", "/chat/completions") == "/v2/chat"
    assert ds.path("completions", "/completions") == "/completions"
    assert ds.drop_params == ("logit_bias", "user")
    assert ds.rename_params == (("max_completion_tokens", "max_tokens"),)
    assert ds.models[0].context_length == 65536


def test_types_default_their_auth_and_versions(tmp_path):
    toml = """
[providers.az]
type = "azure"
base_url = "https://res.openai.azure.com"
models = { d = {} }
[providers.an]
type = "anthropic"
base_url = "https://api.anthropic.com/v1"
max_tokens = 8192
models = { c = {} }
[providers.ge]
type = "gemini"
base_url = "https://generativelanguage.googleapis.com/v1beta"
models = { f = {} }
"""
    settings = load(tmp_path, toml)
    az, an, ge = (provider(settings, n) for n in ("az", "an", "ge"))
    assert (az.auth, az.api_version) == ("api-key", "2024-10-21")
    assert (an.auth, an.api_version, an.max_tokens) == ("x-api-key", "2023-06-01", 8192)
    assert ge.auth == "x-goog-api-key"


@pytest.mark.parametrize(
    "line, words",
    [
        ('auth = "basic"', "providers.up.auth 'basic' is unknown; use one of bearer, api-key"),
        ('developer_role = "user"', "providers.up.developer_role 'user' is unknown"),
        ('reasoning_field = "thoughts"', "providers.up.reasoning_field 'thoughts' is unknown"),
        ('drop_params = "user"', "providers.up.drop_params must be an array of names"),
        ("rename_params = { a = 1 }", "providers.up.rename_params must be a table of strings"),
        ('paths = { chat = "v1/chat" }', "providers.up.paths.chat must start with '/'"),
        ('paths = { images = "/img" }', "providers.up.paths: operation 'images' is unknown"),
        ('stream_usage = "yes"', "providers.up.stream_usage must be true or false"),
        ("max_tokens = 100", "unknown key(s) max_tokens (max_tokens do not apply to type 'openai')"),
        ('api_version = "2024"', "(api_version do not apply to type 'openai')"),
    ],
)
def test_bad_options_are_refused_naming_the_key(tmp_path, line, words):
    toml = f'[providers.up]\nbase_url = "http://u.test"\n{line}\nmodels = {{ m = {{}} }}\n'
    assert words in refused(tmp_path, toml)


def test_anthropic_refuses_openai_only_options(tmp_path):
    toml = '[providers.an]\ntype = "anthropic"\nbase_url = "http://a.test"\ndrop_params = ["x"]\n'
    toml += "models = { c = {} }\n"
    assert "drop_params do not apply to type 'anthropic'" in refused(tmp_path, toml)


def test_aliases_point_at_configured_models(tmp_path):
    toml = '[providers.up]\nbase_url = "http://u.test"\nmodels = { m = {} }\n'
    toml += '[aliases]\nfast = "up:m"\necho = "mock:echo"\n'
    assert load(tmp_path, toml).aliases == (("fast", "up:m"), ("echo", "mock:echo"))


@pytest.mark.parametrize(
    "aliases, words",
    [
        ('fast = "up:nope"', "aliases.fast points at 'up:nope', which is not a configured model"),
        ('"a:b" = "up:m"', "aliases.a:b: an alias is a bare model name"),
    ],
)
def test_bad_aliases_are_refused(tmp_path, aliases, words):
    toml = f'[providers.up]\nbase_url = "http://u.test"\nmodels = {{ m = {{}} }}\n[aliases]\n{aliases}\n'
    assert words in refused(tmp_path, toml)


def test_every_commented_preset_in_the_example_file_loads(tmp_path):
    # The presets are commented out so the example runs with two keys; uncommented, all must load.
    lines = (ROOT / "gateway.example.toml").read_text().splitlines()
    toml = "\n".join(line[2:] if re.match(r"^# (\[|[A-Za-z0-9_.-]+ = )", line) else line for line in lines)
    names = re.findall(r"\$\{([A-Z_]+)\}", toml)
    settings = load(tmp_path, toml, **{name: "x" for name in names})
    types = {p.name: p.type for p in settings.providers}
    for name in (
        "deepseek",
        "openai",
        "vllm",
        "ollama",
        "mistral",
        "groq",
        "openrouter",
        "moonshot",
        "dashscope",
    ):
        assert types[name] == "openai", name
    assert (types["anthropic"], types["gemini"], types["azure"]) == ("anthropic", "gemini", "azure")
    assert dict(settings.aliases) == {"gpt-4o-mini": "openai:gpt-4o-mini"}


def test_a_models_thinking_option_is_read_and_checked(tmp_path):
    toml = (
        '[providers.a]\ntype = "anthropic"\nbase_url = "https://api.anthropic.com"\napi_key = "k"\n'
        'models = { m = { thinking = "%s" } }\n'
    )
    (model,) = provider(load(tmp_path, toml % "adaptive"), "a").models
    assert model.thinking == "adaptive"
    assert "providers.a.models.m.thinking" in refused(tmp_path, toml % "sometimes")
