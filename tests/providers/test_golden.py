"""The golden runner itself: a case without its expected files fails, and GOLDEN_UPDATE only fills gaps."""

from __future__ import annotations

import shutil

import pytest

from gateway.config.providers import ProviderConfig
from gateway.providers.openai import OpenAIAdapter
from tests.providers import golden

SOURCE = golden.FIXTURES / "openai"


def adapter() -> OpenAIAdapter:
    return OpenAIAdapter(ProviderConfig(name="acme", type="openai", base_url="http://10.0.0.7:8000/v1"))


@pytest.fixture(autouse=True)
def no_update(monkeypatch):
    monkeypatch.delenv("GOLDEN_UPDATE", raising=False)


def planted(tmp_path, *names: str) -> golden.Golden:
    for name in names:
        shutil.copy(SOURCE / name, tmp_path / name)
    return golden.Golden(tmp_path, adapter)


def test_a_stream_without_its_expected_files_fails(tmp_path):
    cases = planted(tmp_path, "plain_text.sse")
    params = cases.stream_params()
    assert [p.id for p in params] == ["plain_text-no_usage", "plain_text-include_usage"]
    for param in params:
        with pytest.raises(AssertionError, match="missing golden file plain_text"):
            cases.check_stream(*param.values)


def test_a_stream_without_its_usage_file_fails(tmp_path):
    cases = planted(tmp_path, "plain_text.sse", "plain_text.expected.sse")
    with pytest.raises(AssertionError, match="missing golden file plain_text.usage.json"):
        cases.check_stream("plain_text", ".expected.sse", False)


def test_requests_and_answers_without_their_expected_files_fail(tmp_path):
    (tmp_path / "hello.request.json").write_text('{"messages": [{"role": "user", "content": "Hi"}]}')
    (tmp_path / "hello.response.json").write_text('{"choices": []}')
    cases = golden.Golden(tmp_path, adapter)
    with pytest.raises(AssertionError, match="missing golden file hello.upstream.json"):
        cases.check_request("hello")
    with pytest.raises(AssertionError, match="missing golden file hello.expected.json"):
        cases.check_response("hello")


def test_golden_update_writes_missing_files_and_never_overwrites_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDEN_UPDATE", "1")
    cases = planted(tmp_path, "plain_text.sse")
    (tmp_path / "plain_text.expected.sse").write_text("stale\n")
    with pytest.raises(AssertionError):
        cases.check_stream("plain_text", ".expected.sse", False)
    assert (tmp_path / "plain_text.expected.sse").read_text() == "stale\n"
    cases.check_stream("plain_text", ".include_usage.expected.sse", True)
    for name in ("plain_text.include_usage.expected.sse", "plain_text.usage.json"):
        assert (tmp_path / name).read_bytes() == (SOURCE / name).read_bytes()


def test_files_of_no_case_are_orphans(tmp_path):
    cases = planted(tmp_path, "plain_text.expected.sse", "plain_text.usage.json", "mid_stream_error.sse")
    (tmp_path / "notes.txt").write_text("?")
    assert cases.orphans() == ["notes.txt", "plain_text.expected.sse", "plain_text.usage.json"]
