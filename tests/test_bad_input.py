"""Bad input through the Flask test client: a property-based flood of generated requests, then the
named cases of issue 6 one by one. Every answer is a clear 4xx in the envelope, never a 500, never a
hang, and a rejected request changes nothing in the database.

The upstream of provider "up" is `responses` at the HTTP boundary, so valid bodies for legacy
completions and embeddings are relayed and billed too; `mock:echo` answers chat.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from datetime import timedelta
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.http import parse_options_header

from gateway.blueprints.body import MAX_JSON_DEPTH
from gateway.store.tables import api_keys, holds, ledger_entries, usage_records, users
from gateway.surfaces.openai_chat import MAX_CHOICES, MAX_COUNT
from tests.support.app import chat, make_account, services
from tests.support.examples import examples

LIMIT = 256 * 1024  # max_body_bytes of the apps here: big strings can cross it cheaply
HANG_BOUND_S = 5.0  # one in-process request on this 2-core machine takes milliseconds
EXAMPLES = {"sqlite": examples(10_000), "postgresql": examples(2_500)}
PROVIDERS = {
    "up": {
        "type": "openai",
        "base_url": "http://upstream.test/v1",
        "api_key": "sk-upstream-secret-789",
        "models": {"m": {"input_price": 1, "output_price": 2}, "emb": {"input_price": 2}},
    }
}
CHAT, COMPLETIONS, EMBEDDINGS = "/api/v1/chat/completions", "/api/v1/completions", "/api/v1/embeddings"
MODELS = ("mock:echo", "up:m", "up:emb")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def _reply(request) -> tuple[int, dict[str, str], str]:
    """Answer as an OpenAI-compatible upstream would: whole, streamed, or embeddings."""
    body = json.loads(request.body)
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    if request.url.endswith("/embeddings"):
        data = [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}]
        return 200, {}, json.dumps({"object": "list", "model": "emb", "data": data, "usage": usage})
    choice = {"index": 0, "text": "ok", "finish_reason": "stop"}
    if request.url.endswith("/chat/completions"):
        choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    answer = {"id": "x", "object": "text_completion", "created": 1, "model": "m", "choices": [choice]}
    if not body.get("stream"):
        return 200, {"Content-Type": "application/json"}, json.dumps({**answer, "usage": usage})
    events = [{**answer, "choices": [choice]}, {**answer, "choices": [], "usage": usage}]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return 200, {"Content-Type": "text/event-stream"}, sse


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for path in ("chat/completions", "completions", "embeddings"):
            mock.add_callback(responses.POST, f"http://upstream.test/v1/{path}", callback=_reply)
        yield mock


@pytest.fixture
def app(make_app, upstream):
    app = make_app(providers=PROVIDERS, max_body_bytes=LIMIT, key_cache_ttl=60.0)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # an unexpected error must show as a 500, not raise
    return app


@pytest.fixture
def funded(app):
    """A metered user with a large balance, so a hold and a charge both show in the sums."""
    return make_account(app, email="flood@example.com", balance_micros=10**13)


def snapshot(app) -> dict[str, int]:
    """Row counts and money sums of every table a request may write."""
    with services(app).db.session_scope() as conn:
        one = lambda q: int(conn.execute(q).scalar_one() or 0)  # noqa: E731
        return {
            "users": one(select(func.count()).select_from(users)),
            "balance": one(select(func.sum(users.c.balance_micros))),
            "user_held": one(select(func.sum(users.c.held_micros))),
            "keys": one(select(func.count()).select_from(api_keys)),
            "spent": one(select(func.sum(api_keys.c.spent_micros))),
            "key_held": one(select(func.sum(api_keys.c.held_micros))),
            "holds": one(select(func.count()).select_from(holds)),
            "usage": one(select(func.count()).select_from(usage_records)),
            "cost": one(select(func.sum(usage_records.c.cost_micros))),
            "ledger": one(select(func.count()).select_from(ledger_entries)),
        }


# The reference rules: what a valid body is, written from the API's contract, not from the code.


def _depth(value: Any) -> int:
    """How many containers deep a JSON value nests."""
    level, depth = [value], 0
    while level:
        level = [c for c in level if isinstance(c, dict | list)]
        depth += bool(level)
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c)]
    return depth


def _count(value: Any, limit: int = MAX_COUNT) -> bool:
    return value is None or (type(value) is int and 0 < value <= limit)


def _model_ok(body: dict, path: str) -> bool:
    model = body.get("model")
    return model in MODELS and (model.startswith("up:") or path == CHAT)


def body_is_valid(path: str, raw: bytes) -> bool:
    """Tell whether an authorised JSON request with this body must be answered 200."""
    try:
        body = json.loads(raw.decode("utf-8-sig"))  # JSON is UTF-8 (RFC 8259 §8.1); a BOM is tolerated
        json.dumps(body, ensure_ascii=False).encode()  # a lone surrogate is not text
    except (ValueError, RecursionError, UnicodeError):
        return False
    if not isinstance(body, dict) or _depth(body) > MAX_JSON_DEPTH or not _model_ok(body, path):
        return False
    stream_ok = body.get("stream") is None or isinstance(body["stream"], bool)
    if path == CHAT:
        messages = body.get("messages")
        return (
            isinstance(messages, list)
            and bool(messages)
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
            and stream_ok
            and isinstance(body.get("stream_options", {}), dict | type(None))
            and _count(body.get("max_tokens"))
            and _count(body.get("max_completion_tokens"))
            and _count(body.get("n"), MAX_CHOICES)
        )
    if path == COMPLETIONS:
        prompt = body.get("prompt")
        prompt_ok = isinstance(prompt, str) or (isinstance(prompt, list) and bool(prompt))
        counts = [_count(body.get("max_tokens")), _count(body.get("max_completion_tokens"))]
        return prompt_ok and stream_ok and all(counts) and _count(body.get("n"), MAX_CHOICES)
    value = body.get("input")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not 0 < len(items) <= 2048:
        return False
    tokens = all(
        (type(i) is int) or (isinstance(i, list) and i and all(type(x) is int for x in i)) for i in items
    )
    return (
        (all(isinstance(i, str) for i in items) or tokens)
        and body.get("encoding_format") in (None, "float", "base64")
        and _count(body.get("dimensions"))
    )


# The strategies: bodies, then headers, then whole requests.

SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\ud83d\ude00", "\x00", "\u202e", "é", "\ufeff"])
TEXT = st.one_of(st.text(max_size=20), SURROGATES)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, MAX_COUNT, MAX_COUNT + 1, 2**63, 10**40]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=8,
)
MESSAGE = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"role": st.one_of(st.sampled_from(["user", "system", "assistant", "developer"]), JSON_VALUES)},
        optional={"content": JSON_VALUES, "tool_calls": JSON_VALUES, "name": JSON_VALUES},
    ),
)
FIELD_VALUES = {
    "model": st.one_of(st.sampled_from([*MODELS, "mock:", ":echo", "up:nope", "MOCK:ECHO"]), JSON_VALUES),
    "messages": st.one_of(st.lists(MESSAGE, max_size=4), JSON_VALUES),
    "stream": st.one_of(st.booleans(), JSON_VALUES),
    "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": JSON_VALUES}), JSON_VALUES),
    "max_tokens": JSON_VALUES,
    "max_completion_tokens": JSON_VALUES,
    "n": st.one_of(st.integers(min_value=-1, max_value=130), JSON_VALUES),
    "prompt": st.one_of(st.lists(TEXT, max_size=3), JSON_VALUES),
    "input": st.one_of(
        st.lists(st.integers(min_value=-5, max_value=10**6), max_size=4),
        st.lists(st.lists(st.integers(min_value=0, max_value=9), max_size=3), max_size=3),
        JSON_VALUES,
    ),
    "encoding_format": st.one_of(st.sampled_from(["float", "base64", "FLOAT", ""]), JSON_VALUES),
    "dimensions": JSON_VALUES,
    "tools": JSON_VALUES,
}
TEMPLATES = {
    CHAT: chat(content="one two three"),
    COMPLETIONS: {"model": "up:m", "prompt": "hello", "max_tokens": 5},
    EMBEDDINGS: {"model": "up:emb", "input": ["a b", "c"]},
}


@st.composite
def mutated(draw, path: str) -> dict:
    """A valid body for the path with some of the fields the gateway reads replaced or dropped."""
    body = dict(TEMPLATES[path])
    for name in draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), max_size=3, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            body.pop(name, None)
        else:
            body[name] = draw(FIELD_VALUES[name])
    return body


def _encode(body: Any, ascii_only: bool) -> bytes:
    text = json.dumps(body, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8 bytes


def _nested(depth: int, opener: str) -> str:
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@st.composite
def raw_bodies(draw, path: str) -> bytes:
    """Body bytes of every kind: JSON values, mutated bodies, deep nesting, huge, invalid UTF-8, junk."""
    kind = draw(
        st.sampled_from(["valid", "mutated", "mutated", "mutated", "any", "deep", "huge", "utf8", "junk"])
    )
    ascii_only = draw(st.booleans())
    if kind == "valid":
        return _encode(TEMPLATES[path], ascii_only)
    if kind == "mutated":
        return _encode(draw(mutated(path)), ascii_only)
    if kind == "any":
        return _encode(draw(JSON_VALUES), ascii_only)
    if kind == "deep":
        depth = draw(
            st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 977, 978, 5000])
        )
        nest = _nested(depth, draw(st.sampled_from(["[", "{"])))
        field = draw(st.sampled_from(["content", "top", "messages"]))
        template = _encode(TEMPLATES[path], True).decode()
        if field == "top":
            return ('{"deep":' + nest + "," + template[1:]).encode()
        if field == "messages" and path == CHAT:
            return template.replace('[{"role"', "[" + nest + ', {"role"', 1).encode()
        return (
            template.replace('"one two three"', nest).replace('"hello"', nest).replace('"c"', nest).encode()
        )
    if kind == "huge":
        size = draw(st.sampled_from([LIMIT // 2, LIMIT - 200, LIMIT, LIMIT + 1, 2 * LIMIT]))
        char = draw(st.sampled_from(["x", "é", "\U0001f600", "\\n", " "]))
        body = dict(TEMPLATES[path])
        body["messages" if path == CHAT else "prompt" if path == COMPLETIONS else "input"] = "@"
        head, tail = _encode(body, ascii_only).split(b'"@"')
        filler = (char * (size // len(char.encode()))).encode()[: max(0, size - len(head) - len(tail) - 2)]
        if path == CHAT:
            return head + b'[{"role": "user", "content": "' + filler + b'"}]' + tail
        return head + b'"' + filler + b'"' + tail
    if kind == "utf8":
        good = _encode(TEMPLATES[path], False)
        bad = draw(
            st.sampled_from(
                [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80"]
            )
        )
        at = draw(st.integers(0, len(good)))
        return good[:at] + bad + good[at:]
    return draw(st.binary(max_size=64))


LATIN1 = st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n")
CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/vnd.api+json",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            "application/json\x00",
            "\tapplication/json ",
            "application/json;;;==",
        ]
    ),
    st.text(LATIN1, max_size=40),
)


GOOD_AUTH = st.sampled_from(["Bearer {}", "bearer {}", "BEARER  {}", "  Bearer\t{}  ", "Bearer \t {}"])
BAD_AUTH = st.one_of(
    st.sampled_from(["Basic {}", "Token {}", "Bearer{}", "{}", "Bearer {}x", "Bearer sk-{}", "Bearer", ""]),
    st.text(LATIN1, max_size=40).map(lambda t: t.replace("{", "").replace("}", "")),
    st.integers(100, 9000).map(lambda n: "Bearer sk-" + "A" * n),
)


@dataclasses.dataclass(frozen=True)
class Case:
    path: str
    raw: bytes
    headers: dict[str, str]
    authorised: bool


@st.composite
def cases(draw, secret: str) -> Case:
    path = draw(st.sampled_from([CHAT, CHAT, COMPLETIONS, EMBEDDINGS]))
    authorised = draw(st.integers(0, 9)) > 0
    headers = {"Authorization": draw(GOOD_AUTH if authorised else BAD_AUTH).format(secret)}
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers["X-Request-Id"] = draw(st.one_of(st.text(LATIN1, max_size=140), st.just("ok-" + "z" * 200)))
    return Case(path, draw(raw_bodies(path)), headers, authorised)


def _json_mimetype(headers: dict[str, str]) -> bool:
    mimetype = parse_options_header(headers.get("Content-Type", ""))[0].lower()
    return not mimetype or mimetype == "application/json" or mimetype.endswith("+json")


def send(client, case: Case):
    started = time.monotonic()
    resp = client.post(case.path, data=case.raw, headers=case.headers)
    resp.get_data()  # a stream settles when it is read to the end
    elapsed = time.monotonic() - started
    assert elapsed < HANG_BOUND_S, f"{case.path} took {elapsed:.1f}s"
    return resp


def check(resp, case: Case, used_ids: set[str]) -> None:
    """The properties: never a 5xx; a 200 only for a valid request; every error is the envelope.

    used_ids holds the X-Request-Id of every accepted request so far: a repeat is a 409.
    """
    status = resp.status_code
    detail = f"{case.path} {case.headers!r} {case.raw[:300]!r} -> {status} {resp.get_data()[:300]!r}"
    assert status < 500, detail
    assert REQUEST_ID.fullmatch(resp.headers["X-Request-Id"]), detail
    valid = case.authorised and _json_mimetype(case.headers) and len(case.raw) <= LIMIT
    valid = valid and body_is_valid(case.path, case.raw)
    if not case.authorised:
        assert status == 401, detail
    elif not _json_mimetype(case.headers):
        assert status == 415, detail
    elif len(case.raw) > LIMIT:
        assert status == 413, detail
    given_id = case.headers.get("X-Request-Id", "")
    if valid and given_id in used_ids:
        assert status == 409, detail
        valid = False
    assert (status == 200) == valid, detail
    if status == 200 and REQUEST_ID.fullmatch(given_id):
        used_ids.add(given_id)
    if status >= 400:
        body = resp.get_json(force=True, silent=True)
        assert isinstance(body, dict) and set(body) == {"error", "request_id"}, detail
        assert set(body["error"]) == {"message", "type", "param", "code"}, detail
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], detail
        assert body["request_id"] == resp.headers["X-Request-Id"], detail


@pytest.mark.postgres
def test_generated_requests_get_4xx_envelopes_and_leave_the_store_alone(app, funded, db_url, upstream):
    store = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    client = app.test_client()
    before = snapshot(app)
    answered = {"sent": 0, "ok": 0}
    used_ids: set[str] = set()

    @settings(
        max_examples=-(-EXAMPLES[store] // 3),
        derandomize=True,  # the same requests on every run
        database=None,  # no example database written into the repo
        deadline=timedelta(seconds=HANG_BOUND_S),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(case=cases(funded.secret))
    def three_requests(case: Case) -> None:
        # The same body and headers go to every endpoint: three requests for one generation.
        for path in (CHAT, COMPLETIONS, EMBEDDINGS):
            one = dataclasses.replace(case, path=path)
            resp = send(client, one)
            answered["sent"] += 1
            answered["ok"] += resp.status_code == 200
            check(resp, one, used_ids)

    three_requests()
    after = snapshot(app)
    assert answered["sent"] >= EXAMPLES[store]
    assert answered["ok"] > 0, "some generated requests must be valid and answered"
    # Only the accepted requests wrote: one usage row each, charged exactly what the rows say.
    charged = after["cost"] - before["cost"]
    assert after["usage"] - before["usage"] == answered["ok"]
    assert after["balance"] == before["balance"] - charged
    assert after["spent"] == before["spent"] + charged
    unchanged = ("users", "keys", "user_held", "key_held", "holds", "ledger")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["holds"] == 0 and after["user_held"] == 0


# The named cases of issue 6, one by one.


def post(client, path: str, data: bytes, headers: dict[str, str], **kwargs):
    return client.post(path, data=data, headers={"Content-Type": "application/json", **headers}, **kwargs)


def assert_rejected(resp, status: int, param: str | None = None) -> dict:
    """The envelope, with the status and param, and the request id echoed."""
    assert resp.status_code == status, resp.get_data()[:300]
    body = resp.get_json()
    assert set(body) == {"error", "request_id"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] == param
    assert body["request_id"] == resp.headers["X-Request-Id"]
    return body


@pytest.mark.postgres
def test_declared_length_over_the_limit_is_413_before_reading(app, funded):
    before = snapshot(app)
    resp = post(
        app.test_client(),
        CHAT,
        b"{}",
        funded.headers,
        environ_overrides={"CONTENT_LENGTH": str(10**12)},
    )
    body = assert_rejected(resp, 413)
    assert body["error"]["code"] == "request_too_large"
    assert snapshot(app) == before


def test_body_one_byte_over_the_limit_is_413_and_at_the_limit_is_served(app, funded):
    client = app.test_client()
    head = b'{"model": "mock:echo", "messages": [{"role": "user", "content": "'
    tail = b'"}]}'
    at_limit = head + b"x" * (LIMIT - len(head) - len(tail)) + tail
    assert post(client, CHAT, at_limit, funded.headers).status_code == 200
    over = head + b"x" * (LIMIT + 1 - len(head) - len(tail)) + tail
    assert (
        assert_rejected(post(client, CHAT, over, funded.headers), 413)["error"]["code"] == "request_too_large"
    )


@pytest.mark.postgres
@pytest.mark.parametrize(
    "opener, depth",
    [("[", MAX_JSON_DEPTH + 1), ("[", 977), ("[", 100_000), ('{"a":', 977), ('{"a":', 40_000)],
)
def test_deep_json_is_400_quickly(app, funded, depth, opener):
    closer = "]" if opener == "[" else "}"
    nest = opener * depth + ("" if opener == "[" else "1") + closer * depth
    client = app.test_client()
    before = snapshot(app)
    for raw in (nest, json.dumps(chat()).replace('"Hi there"', nest)):
        started = time.monotonic()
        body = assert_rejected(post(client, CHAT, raw.encode(), funded.headers), 400)
        assert time.monotonic() - started < 2.0
    assert "nests deeper" in body["error"]["message"]  # the nest inside a message, at any depth
    assert snapshot(app) == before


def test_json_at_the_depth_limit_is_served(app, funded):
    nest = "[" * (MAX_JSON_DEPTH - 3) + "]" * (MAX_JSON_DEPTH - 3)  # body, messages and message: 3 levels
    raw = json.dumps(chat()).replace('"Hi there"', nest).encode()
    assert post(app.test_client(), CHAT, raw, funded.headers).status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "mock:echo", "messages": [{"role": "user", "content": "\xff"}]}',
        b'{"model": "mock:echo", "messages": [{"role": "user", "content": "\xc0\xaf"}]}',
        b'{"model": "mock:echo", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',
        json.dumps(chat()).encode("utf-16"),
    ],
    ids=["ff", "overlong", "encoded-surrogate", "utf-16"],
)
def test_invalid_utf8_is_400(app, funded, raw):
    before = snapshot(app)
    body = assert_rejected(post(app.test_client(), CHAT, raw, funded.headers), 400)
    assert "UTF-8" in body["error"]["message"]
    assert snapshot(app) == before


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, EMBEDDINGS])
def test_lone_surrogate_escape_is_400_not_500(app, funded, path):
    raw = json.dumps({**TEMPLATES[path], "user": "\ud800"}).encode()
    body = assert_rejected(post(app.test_client(), path, raw, funded.headers), 400)
    assert "surrogate" in body["error"]["message"]


def test_surrogate_pairs_are_text_and_served(app, funded):
    raw = json.dumps(chat(content="smile \U0001f600")).encode()  # ensure_ascii: "\ud83d\ude00"
    assert b"\\ud83d" in raw
    assert post(app.test_client(), CHAT, raw, funded.headers).status_code == 200


WRONG_TYPES = [
    (CHAT, "model", 5, "model"),
    (CHAT, "model", ["mock:echo"], "model"),
    (CHAT, "messages", {"role": "user"}, "messages"),
    (CHAT, "messages", [None], "messages[0]"),
    (CHAT, "messages", [{"role": 1, "content": "x"}], "messages[0]"),
    (CHAT, "stream", "true", "stream"),
    (CHAT, "stream", 1, "stream"),
    (CHAT, "stream_options", "include_usage", "stream_options"),
    (CHAT, "max_tokens", 1.5, "max_tokens"),
    (CHAT, "max_tokens", 2**63, "max_tokens"),
    (CHAT, "max_completion_tokens", MAX_COUNT + 1, "max_completion_tokens"),
    (CHAT, "n", 0, "n"),
    (CHAT, "n", MAX_CHOICES + 1, "n"),
    (COMPLETIONS, "n", "2", "n"),
    (COMPLETIONS, "max_completion_tokens", 2**62, "max_completion_tokens"),
    (COMPLETIONS, "model", None, "model"),
    (COMPLETIONS, "prompt", {"text": "x"}, "prompt"),
    (COMPLETIONS, "prompt", [], "prompt"),
    (COMPLETIONS, "stream", "no", "stream"),
    (COMPLETIONS, "max_tokens", 10**40, "max_tokens"),
    (EMBEDDINGS, "model", {}, "model"),
    (EMBEDDINGS, "input", 5.5, "input"),
    (EMBEDDINGS, "input", [[]], "input"),
    (EMBEDDINGS, "input", ["a", 1], "input"),
    (EMBEDDINGS, "input", [True], "input"),
    (EMBEDDINGS, "input", ["x"] * 2049, "input"),
    (EMBEDDINGS, "encoding_format", "int8", "encoding_format"),
    (EMBEDDINGS, "dimensions", 0, "dimensions"),
    (EMBEDDINGS, "dimensions", 2**64, "dimensions"),
]


@pytest.mark.postgres
@pytest.mark.parametrize("path, field, value, param", WRONG_TYPES)
def test_wrong_type_in_a_read_field_is_400_naming_it(app, funded, path, field, value, param):
    before = snapshot(app)
    raw = json.dumps({**TEMPLATES[path], field: value}).encode()
    assert_rejected(post(app.test_client(), path, raw, funded.headers), 400, param)
    assert snapshot(app) == before


def test_largest_max_tokens_on_a_priced_model_is_not_a_500(app, funded):
    # Before the bound, 10**30 tokens × the price overflowed BIGINT: a 500 from the hold.
    body = {"model": "up:m", "messages": [{"role": "user", "content": "x"}], "max_tokens": MAX_COUNT}
    resp = post(app.test_client(), CHAT, json.dumps(body).encode(), funded.headers)
    assert resp.status_code == 200


@pytest.mark.parametrize(
    "form", ["Bearer\t{}", "bearer {}", "BEARER    {}", "\t Bearer \t {} \t", "Bearer \t\t{}"]
)
def test_authorization_with_odd_spacing(app, funded, form):
    client = app.test_client()
    good = post(client, CHAT, json.dumps(chat()).encode(), {"Authorization": form.format(funded.secret)})
    assert good.status_code == 200, good.get_data()[:300]
    wrong = funded.secret[:-4] + "zzzz"
    bad = post(client, CHAT, json.dumps(chat()).encode(), {"Authorization": form.format(wrong)})
    assert assert_rejected(bad, 401)["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("name", ["Authorization", "Content-Type", "X-Request-Id"])
@pytest.mark.parametrize("junk", ["\x00", "\x1b[31m", "\x7f", "\xff", "\t", "x" * 20_000])
def test_control_characters_and_long_values_in_headers_are_4xx_or_ignored(app, funded, name, junk):
    headers = {**funded.headers, "Content-Type": "application/json"}
    headers[name] = headers.get(name, "abcdefgh") + junk
    resp = app.test_client().post(CHAT, data=json.dumps(chat()), headers=headers)
    assert REQUEST_ID.fullmatch(resp.headers["X-Request-Id"])
    if name == "Authorization" and junk != "\t":
        assert_rejected(resp, 401)
    elif name == "Content-Type" and junk not in ("\t",):
        assert resp.status_code in (200, 415), resp.get_data()[:300]
    else:
        assert resp.status_code == 200, resp.get_data()[:300]


def test_request_id_with_a_trailing_newline_is_replaced(app, funded):
    # A header object refuses "\n", but a WSGI server may hand it over; it must not be echoed.
    resp = app.test_client().post(
        CHAT, json=chat(), headers=funded.headers, environ_overrides={"HTTP_X_REQUEST_ID": "abcdefgh\n"}
    )
    assert resp.status_code == 200
    assert resp.headers["X-Request-Id"].startswith("req_")
