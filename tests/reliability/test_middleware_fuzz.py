"""Fuzzing the httpx2 transport: whatever the application sends or receives, nemoflow stays out of the way.

Request side: arbitrary JSON-ish bodies (wrong types, nulls, deep nesting, huge numbers, raw non-UTF-8
bytes, truncated JSON) go to the LLM routes of every codec. The upstream must receive the application's
bytes unchanged, except for the one sanctioned rewrite (``stream_options`` added to a streamed chat
request), the application must get the upstream's answer unchanged, and every call is either recorded or
counted as passed through.

Response side: SSE bodies full of oddities, split at random points, must reach the application byte for
byte (no usage injection in play) and always end in a record.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemoflow import Flow, LlmCall, Subscriber

BASE = "https://llm.fuzz.test"
ROUTES = (
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1beta/models/m:generateContent",
    "/model/m/converse",
    "/v1/embeddings",
)
KNOWN_ERROR_KINDS = frozenset({"codec", "stream"})
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


class Collector(Subscriber):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[LlmCall] = []

    def on_call(self, call: LlmCall) -> None:
        with self._lock:
            self.calls.append(call)


class Upstream:
    """A MockTransport handler that keeps what it received and answers with a queued reply."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.reply_status = 200
        self.reply_headers: dict[str, str] = {"content-type": "application/json"}
        self.reply_chunks: list[bytes] = [b"{}"]

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.received.append(request.read())
        return httpx2.Response(
            self.reply_status, headers=self.reply_headers, content=iter(list(self.reply_chunks))
        )


# ----------------------------------------------------------------------------------------- strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**80),  # past what a 64-bit parser keeps exact
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
known_keys = st.sampled_from(
    [
        "model",
        "messages",
        "input",
        "contents",
        "stream",
        "stream_options",
        "system",
        "max_tokens",
        "tools",
        "tool_choice",
        "content",
        "role",
        "inferenceConfig",
        "generationConfig",
        "n",
        "temperature",
    ]
)


@st.composite
def plausible_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Objects using the keys codecs look at, with values of any type (the wrong ones included)."""
    body: dict[str, Any] = {}
    for key in draw(st.lists(known_keys, max_size=6, unique=True)):
        body[key] = draw(json_values)
    if draw(st.booleans()):
        role = draw(st.sampled_from(["user", "assistant", "system", "tool", None, 3]))
        body["messages"] = [{"role": role, "content": draw(json_values)}]
    if draw(st.booleans()):
        body["stream"] = draw(st.sampled_from([True, False, None, "yes", 1]))
    return body


def _nested(depth: int) -> bytes:
    return b'{"messages":' + b"[" * depth + b"]" * depth + b',"model":"m"}'


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()


good_chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}

bodies = st.one_of(
    plausible_requests().map(_encode),
    json_values.map(_encode),
    st.binary(min_size=1, max_size=64),
    st.binary(min_size=1, max_size=32).map(lambda junk: b'{"model":"' + junk + b'"}'),  # not UTF-8
    st.integers(min_value=1, max_value=len(_encode(good_chat)) - 1).map(lambda n: _encode(good_chat)[:n]),
    st.integers(min_value=1, max_value=3000).map(_nested),
    plausible_requests().map(lambda body: _encode({**good_chat, "metadata": body})),
)


def _without_stream_options(value: Any) -> Any:
    return {k: v for k, v in value.items() if k != "stream_options"} if isinstance(value, dict) else value


def _only_stream_options_added(sent: bytes, received: bytes) -> bool:
    # Read exactly (the standard library keeps integers past 64 bits, which orjson would turn into floats).
    before, after = json.loads(sent), json.loads(received)
    return (
        isinstance(before, dict)
        and isinstance(after, dict)
        and "stream_options" not in before
        and "stream_options" in after
        and _without_stream_options(after) == before
    )


@pytest.fixture
def recorded() -> Iterator[tuple[Flow, Collector]]:
    collector = Collector()
    flow = Flow(subscribers=[collector])
    yield flow, collector
    flow.shutdown()


# ----------------------------------------------------------------------------------------- requests


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    body=bodies,
    answer=st.one_of(st.binary(max_size=64), json_values.map(_encode)),
    status=st.sampled_from([200, 200, 400, 429, 500]),
)
def test_any_request_body_reaches_the_upstream_unchanged(
    route: str, body: bytes, answer: bytes, status: int
) -> None:
    upstream = Upstream()
    upstream.reply_status = status
    upstream.reply_chunks = [answer]
    collector = Collector()
    flow = Flow(subscribers=[collector])
    try:
        with httpx2.Client(transport=flow.transport(httpx2.MockTransport(upstream))) as client:
            response = client.post(BASE + route, content=body, headers={"content-type": "application/json"})
        assert response.status_code == status
        assert response.content == answer
        (received,) = upstream.received
        assert received == body or _only_stream_options_added(body, received), (body, received)
        assert flow.flush(5)
        stats = flow.stats()
        assert stats.calls_recorded + stats.passed_through == 1
        assert stats.calls_recorded == len(collector.calls)
        assert set(stats.errors) <= KNOWN_ERROR_KINDS, stats.errors
    finally:
        flow.shutdown()


def test_codec_errors_are_contained_and_counted(recorded: tuple[Flow, Collector]) -> None:
    flow, collector = recorded
    upstream = Upstream()
    bad = [
        {"model": "m", "messages": "not a list"},
        {"model": "m", "messages": [{"role": 7, "content": {"x": None}}]},
        {"model": 12, "messages": None, "stream": "maybe"},
    ]
    with httpx2.Client(transport=flow.transport(httpx2.MockTransport(upstream))) as client:
        for body in bad:
            response = client.post(BASE + "/v1/chat/completions", content=orjson.dumps(body))
            assert response.status_code == 200 and response.content == b"{}"
    assert upstream.received == [orjson.dumps(body) for body in bad]
    assert flow.flush(5)
    stats = flow.stats()
    assert stats.calls_recorded + stats.passed_through == len(bad)
    # A body the codec rejects is passed through, and the rejection is counted as a contained codec error.
    assert stats.errors.get("codec", 0) == stats.passed_through > 0
    assert len(collector.calls) == stats.calls_recorded


def test_huge_integers_survive_the_stream_options_rewrite() -> None:
    upstream = Upstream()
    flow = Flow()
    body = _encode({**good_chat, "metadata": {"big": 2**80 + 1}})
    try:
        with httpx2.Client(transport=flow.transport(httpx2.MockTransport(upstream))) as client:
            client.post(BASE + "/v1/chat/completions", content=body)
    finally:
        flow.shutdown()
    assert _only_stream_options_added(body, upstream.received[0])


def test_application_exceptions_escape_unchanged(recorded: tuple[Flow, Collector]) -> None:
    flow, collector = recorded

    class Boom(Exception):
        pass

    def explode(request: httpx2.Request) -> httpx2.Response:
        raise Boom("upstream handler failed")

    with httpx2.Client(transport=flow.transport(httpx2.MockTransport(explode))) as client:
        with pytest.raises(Boom):
            client.post(BASE + "/v1/chat/completions", json=good_chat)
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.exception is not None and "Boom" in call.exception


# ----------------------------------------------------------------------------------------- SSE tee


def _chunk(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}],
    }
    event.update(overrides)
    return event


def _data(value: Any) -> bytes:
    return b"data: " + orjson.dumps(value) + b"\n\n"


ODD_EVENTS = [
    _data(_chunk()),
    _data(None),
    b"data: null\n\n",
    _data(_chunk(choices=None)),
    _data(_chunk(choices=[{"index": None, "delta": {"content": "y"}}])),
    _data(_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": ""}])),
    _data(_chunk(choices=[{"index": 0, "delta": None, "finish_reason": "stop"}])),
    _data(_chunk(choices=[], usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})),
    _data(_chunk(choices=[], usage=None)),
    _data(_chunk(usage={"prompt_tokens": "many"})),
    _data([1, 2, 3]),
    b"data: {truncated\n\n",
    b"event: error\ndata: {}\n\n",
    b": comment line\n\n",
    b"garbage without a field\n\n",
    b"data: \xff\xfe not utf-8\n\n",
    b"\r\n\r\n",
    b"id: 5\r\nretry: 10\r\ndata: [DONE]\r\n\r\n",
    b"data: [DONE]\n\n",
]
SSE_ROUTES = {
    "/v1/chat/completions": {**good_chat, "stream_options": {"include_usage": True}},
    "/v1/responses": {"model": "gpt-4o-mini", "input": "hi", "stream": True},
    "/v1/messages": {"model": "claude", "max_tokens": 5, "messages": good_chat["messages"], "stream": True},
}


@st.composite
def sse_bodies(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    events = draw(st.lists(st.sampled_from(ODD_EVENTS) | st.binary(max_size=40), max_size=25))
    body = b"".join(events)
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(1, len(body) - 1)), max_size=12)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return body, [piece for piece in pieces if piece]


def _stream_through(flow: Flow, route: str, chunks: list[bytes]) -> bytes:
    upstream = Upstream()
    upstream.reply_headers = {"content-type": "text/event-stream"}
    upstream.reply_chunks = chunks
    with httpx2.Client(transport=flow.transport(httpx2.MockTransport(upstream))) as client:
        with client.stream("POST", BASE + route, json=SSE_ROUTES[route]) as response:
            got = b"".join(response.iter_raw())
    # The app asked for usage itself (or the codec never injects): nothing may have been added.
    assert upstream.received == [orjson.dumps(SSE_ROUTES[route])] or route != "/v1/chat/completions"
    return got


@FUZZ
@given(route=st.sampled_from(sorted(SSE_ROUTES)), stream=sse_bodies())
def test_odd_sse_streams_reach_the_app_byte_for_byte(route: str, stream: tuple[bytes, list[bytes]]) -> None:
    body, chunks = stream
    collector = Collector()
    flow = Flow(subscribers=[collector])
    try:
        assert _stream_through(flow, route, chunks) == body
        assert flow.flush(5)
        assert len(collector.calls) == 1
        assert set(flow.stats().errors) <= KNOWN_ERROR_KINDS
    finally:
        flow.shutdown()


def test_a_two_mebibyte_sse_line_passes_and_is_still_recorded(recorded: tuple[Flow, Collector]) -> None:
    flow, collector = recorded
    huge = _data(_chunk(choices=[{"index": 0, "delta": {"content": "z" * (2 * 1024 * 1024)}}]))
    body = (
        _data(_chunk()) + huge + _data(_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    )
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert _stream_through(flow, "/v1/chat/completions", chunks) == body
    assert flow.flush(5)
    (call,) = collector.calls
    # The line is past the SSE decoder's 1 MiB limit: the record keeps no reply, the error is counted.
    assert call.response is None and call.http_status == 200
    assert flow.stats().errors.get("stream", 0) >= 1
