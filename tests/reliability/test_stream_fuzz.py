"""Stream fuzzing per provider route, beyond the OpenAI-Chat-shaped oddities of ``test_middleware_fuzz.py``.

Hypothesis builds response streams from the recorded stream fixtures of each provider, mixed with the
provider's own oddities and with garbage, cut into random chunks (events split anywhere, ``\\r\\n`` split
across chunks included), sometimes ending in a truncated frame, and sends them through an httpx2
``MockTransport`` wrapped by ``flow.transport``:

- Gemini ``streamGenerateContent?alt=sse``: ``candidates`` null, missing or empty (``usageMetadata``
  only), empty ``parts``, unknown finish reasons, wrong-typed counts, error objects;
- Anthropic Messages streams: ``ping``, unknown event types, ``message_delta`` without usage, ``data``
  without ``event`` and the reverse, error events;
- OpenAI Responses streams: unknown types, null ``response``/``delta``, ``response.failed``;
- Bedrock ConverseStream (binary AWS event-stream): truncated, corrupted and randomly chunked frames;
- OpenAI Chat with usage injected by nemoflow: the app must read exactly the upstream bytes minus the one
  usage-only event (the expected bytes are built by the test from the events it generated, not by
  nemoflow's own splitter), and the record must still carry that usage.

Every case shows: the application reads the upstream's bytes unchanged (except the documented strip),
nemoflow's own failures are contained and counted (``flow.stats().errors`` holds only ``stream``), exactly
one record per call, and the record does not depend on how the bytes were chunked.

Two product bugs found here are fixed and pinned by regression tests: a broken-off last frame cost the
record the whole reply (``test_a_truncated_final_frame_keeps_the_reply_before_it``), and the usage strip
could take a blank line that preceded the usage event with it
(``test_blank_lines_before_the_usage_event_reach_the_app``).
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemoflow import CallStatus, Flow, FlowStats, LlmCall, as_dict
from tests.support import Collector

FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "fixtures"
BASE = "https://llm.fuzz.test"
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
CONTAINED = frozenset({"stream"})


@dataclass
class Outcome:
    app_bytes: bytes
    sent: bytes
    sent_headers: httpx2.Headers
    call: LlmCall
    stats: FlowStats


def run(url: str, request: dict[str, Any], chunks: list[bytes], content_type: str) -> Outcome:
    """One streamed call through a fresh flow; what the app read, what went upstream, the one record."""
    sent: list[httpx2.Request] = []

    def upstream(req: httpx2.Request) -> httpx2.Response:
        req.read()
        sent.append(req)
        return httpx2.Response(200, headers={"content-type": content_type}, content=iter(list(chunks)))

    calls = Collector()
    flow = Flow(subscribers=[calls])
    try:
        with httpx2.Client(transport=flow.transport(httpx2.MockTransport(upstream))) as client:
            with client.stream("POST", url, json=request) as response:
                assert response.status_code == 200
                app_bytes = b"".join(response.iter_raw())
        assert flow.flush(5)
        stats = flow.stats()
    finally:
        flow.shutdown()
    assert len(calls.calls) == 1, calls.calls
    assert stats.calls_recorded == 1 and stats.passed_through == 0 and stats.events_dropped == 0
    assert set(stats.errors) <= CONTAINED, stats.errors
    (call,) = calls.calls
    assert call.http_status == 200 and call.stream
    # The body was read to its end: the call is ok, or an error when the stream said so / broke off.
    assert call.status in (CallStatus.OK, CallStatus.ERROR)
    (request_sent,) = sent
    return Outcome(app_bytes, request_sent.content, request_sent.headers, call, stats)


def recorded(call: LlmCall) -> dict[str, Any]:
    """What a record says about the reply (everything but ids and timings)."""
    return {
        "status": call.status,
        "model": call.model,
        "usage": as_dict(call.usage),
        "usage_source": call.usage_source,
        "response": as_dict(call.response),
        "error": as_dict(call.error),
    }


def check_expected(call: LlmCall, expected: dict[str, Any]) -> None:
    """The record says what the fixture's ``expected`` section says (for the keys it names)."""
    response = call.response
    assert response is not None
    if "text" in expected:
        assert response.text == expected["text"]
    if "finish_reason" in expected:
        assert response.finish_reason.value == expected["finish_reason"]
    for key, value in (expected.get("usage") or {}).items():
        assert getattr(call.usage, key) == value, key


# ----------------------------------------------------------------------------------------- stream pieces


def fixture(codec: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / codec / f"{name}.json").read_text(encoding="utf-8"))
    return data


def split_events(stream: str) -> list[bytes]:
    """The events of a recorded stream (all use one terminator), each with its terminator."""
    data = stream.encode()
    terminator = b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n"
    return [part + terminator for part in data.split(terminator) if part]


def stream_fixtures(codec: str) -> list[tuple[str, list[bytes]]]:
    found = []
    for path in sorted((FIXTURES / codec).glob("stream-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        url = data.get("url") or ""
        if "sse" in data and ("streamGenerateContent" not in url or "alt=sse" in url):
            found.append((path.stem, split_events(data["sse"])))
    assert found, codec
    return found


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    return head + b"data: " + payload + b"\n\n"


def with_line_ending(event: bytes, ending: bytes) -> bytes:
    """``event`` with every line ending (``\\r\\n`` or ``\\n``) replaced by ``ending``."""
    return event.replace(b"\r\n", b"\n").replace(b"\n", ending)


GARBAGE = [
    b": keep-alive comment\n\n",
    b"data: null\n\n",
    b"data: \n\n",
    b"data: [1, 2]\n\n",
    b'data: "just a string"\n\n',
    b"data: {truncated json\n\n",
    b"garbage line without a field\n\n",
    b"event: \ndata: {}\n\n",
    b"id: 7\nretry: 15\n\n",
    b"retry: soon\ndata: {}\n\n",
    b"data: \xff\xfe\xfd not utf-8\n\n",
    b"\n\n",
]

GEMINI_ODD = [
    sse({"candidates": None, "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4}}),
    sse({"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}}),
    sse({"candidates": [], "modelVersion": "gemini-2.5-flash"}),
    sse({"candidates": [None]}),
    sse({"candidates": [{"content": None, "finishReason": "STOP"}]}),
    sse({"candidates": [{"content": {"parts": None, "role": "model"}}]}),
    sse({"candidates": [{"content": {"parts": [{}], "role": "model"}, "index": None}]}),
    sse({"candidates": [{"content": {"parts": [{"text": None}]}, "finishReason": "SOMETHING_NEW"}]}),
    sse({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": None}}]}}]}),
    sse({"candidates": [{"content": {"parts": [{"text": "t", "thought": "yes"}]}}]}),
    sse({"usageMetadata": {"promptTokenCount": "many", "candidatesTokenCount": -1}}),
    sse({"usageMetadata": None, "candidates": "nope"}),
    sse({"promptFeedback": {"blockReason": "SAFETY"}}),
    sse({"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}),
    sse({"candidates": [{"content": {"parts": [{"text": "x" * 3000}]}}]}),
]

ANTHROPIC_ODD = [
    sse({"type": "ping"}, "ping"),
    sse({"type": "mystery_event", "payload": [1]}, "mystery_event"),
    sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, "message_delta"),
    sse({"type": "message_delta", "delta": {"stop_reason": None}, "usage": None}, "message_delta"),
    sse({"type": "message_delta", "delta": None, "usage": {"output_tokens": "five"}}, "message_delta"),
    sse({"type": "message_start", "message": None}, "message_start"),
    sse({"type": "content_block_delta", "index": None, "delta": {"type": "text_delta", "text": "?"}}),
    sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "brand_new_delta"}},
        "content_block_delta",
    ),
    sse(
        {
            "type": "content_block_delta",
            "index": 5,
            "delta": {"type": "input_json_delta", "partial_json": '{"a'},
        }
    ),
    sse(
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t", "name": "f"},
        }
    ),
    sse({"type": "content_block_stop", "index": 9}, "content_block_stop"),
    sse({"type": "message_stop"}, "message_stop"),
    sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"),
    b"event: content_block_delta\n\n",
    sse({"type": "ping"}, "not_ping"),
]

RESPONSES_ODD = [
    sse({"type": "response.created", "response": None}, "response.created"),
    sse(
        {"type": "response.output_text.delta", "delta": None, "output_index": 0}, "response.output_text.delta"
    ),
    sse({"type": "response.output_text.delta", "delta": "x", "output_index": "zero"}),
    sse({"type": "response.brand_new_event", "sequence_number": 3}, "response.brand_new_event"),
    sse(
        {"type": "response.completed", "response": {"status": "completed", "usage": None}},
        "response.completed",
    ),
    sse(
        {"type": "response.completed", "response": {"usage": {"input_tokens": "lots"}}}, "response.completed"
    ),
    sse({"type": "response.failed", "response": {"status": "failed", "error": {"code": "server_error"}}}),
    sse({"type": "response.incomplete", "response": {"incomplete_details": {"reason": "max_output_tokens"}}}),
    sse({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"}, "error"),
    sse({"type": "response.function_call_arguments.delta", "delta": '{"x', "item_id": None}),
    sse({"no_type": True}, "response.output_text.delta"),
]


@dataclass(frozen=True)
class Route:
    codec: str
    path: str
    request: dict[str, Any]
    fixtures: list[tuple[str, list[bytes]]]
    oddities: list[bytes]


ROUTES = {
    "gemini": Route(
        "gemini-generate-content",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        stream_fixtures("gemini-generate-content"),
        GEMINI_ODD,
    ),
    "anthropic": Route(
        "anthropic-messages",
        "/v1/messages",
        {
            "model": "claude-opus-4-5",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        },
        stream_fixtures("anthropic-messages"),
        ANTHROPIC_ODD,
    ),
    "responses": Route(
        "openai-responses",
        "/v1/responses",
        {"model": "gpt-4.1", "input": "hi", "stream": True},
        stream_fixtures("openai-responses"),
        RESPONSES_ODD,
    ),
}


def cut(body: bytes, points: set[int]) -> list[bytes]:
    """``body`` split at ``points`` (no empty pieces)."""
    edges = [0, *sorted(p for p in points if 0 < p < len(body)), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges) if b > a]


@st.composite
def chunkings(draw: st.DrawFn, body: bytes) -> list[bytes]:
    if not body:
        return []
    if draw(st.booleans()):  # many tiny pieces: every boundary case, \r|\n splits included
        size = draw(st.integers(min_value=1, max_value=7))
        return [body[i : i + size] for i in range(0, len(body), size)]
    points = draw(st.sets(st.integers(min_value=1, max_value=max(1, len(body) - 1)), max_size=16))
    return cut(body, points)


@dataclass(frozen=True)
class Stream:
    body: bytes
    chunks: list[bytes]
    fixture: str
    pristine: bool
    """The fixture's events as recorded (only the chunking is random)."""


@st.composite
def sse_streams(draw: st.DrawFn, route: Route) -> Stream:
    name, events = draw(st.sampled_from(route.fixtures))
    items = list(events)
    pristine = draw(st.booleans())
    if not pristine:
        extras = st.sampled_from(route.oddities) | st.sampled_from(GARBAGE)
        extras = extras | st.binary(max_size=24).map(lambda junk: junk + b"\n\n")
        for extra in draw(st.lists(extras, max_size=8)):
            items.insert(draw(st.integers(min_value=0, max_value=len(items))), extra)
        if draw(st.booleans()):  # drop events: a stream that lost its start, its end or a middle part
            for _ in range(draw(st.integers(min_value=1, max_value=3))):
                if items:
                    items.pop(draw(st.integers(min_value=0, max_value=len(items) - 1)))
        ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
        items = [with_line_ending(item, ending) for item in items]
        breaks_off: bool = draw(st.booleans())
        if items and breaks_off:  # the final frame breaks off
            last = items[-1]
            items[-1] = last[: draw(st.integers(min_value=0, max_value=len(last) - 1))]
    body = b"".join(items)
    return Stream(body, draw(chunkings(body)), name, pristine)


def check_sse_route(route: Route, stream: Stream) -> None:
    url = BASE + route.path
    chunked = run(url, route.request, stream.chunks, "text/event-stream")
    assert chunked.app_bytes == stream.body
    assert orjson.loads(chunked.sent) == route.request  # nothing injected on this route
    whole = run(url, route.request, [stream.body] if stream.body else [], "text/event-stream")
    assert recorded(chunked.call) == recorded(whole.call)
    if stream.pristine:
        check_expected(chunked.call, fixture(route.codec, stream.fixture)["expected"])
        assert chunked.stats.errors == {}


@FUZZ
@given(stream=sse_streams(ROUTES["gemini"]))
def test_gemini_sse_streams(stream: Stream) -> None:
    check_sse_route(ROUTES["gemini"], stream)


@FUZZ
@given(stream=sse_streams(ROUTES["anthropic"]))
def test_anthropic_message_streams(stream: Stream) -> None:
    check_sse_route(ROUTES["anthropic"], stream)


@FUZZ
@given(stream=sse_streams(ROUTES["responses"]))
def test_openai_responses_streams(stream: Stream) -> None:
    check_sse_route(ROUTES["responses"], stream)


# ----------------------------------------------------------------------------------------- usage strip

CHAT_URL = BASE + "/v1/chat/completions"
CHAT_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def chat_chunk(**fields: Any) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", **fields}


def content(text: str) -> dict[str, Any]:
    # With include_usage on, OpenAI sends "usage": null on every chunk before the usage-only one.
    return chat_chunk(choices=[{"index": 0, "delta": {"content": text}, "finish_reason": None}], usage=None)


CHAT_ODD = [
    sse(chat_chunk(choices=[], usage=None)),  # empty choices but no usage: not the injected event
    sse(chat_chunk(choices=None, usage=None)),
    sse(chat_chunk(choices=[{"index": None, "delta": {"content": "?"}}])),
    sse(chat_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": ""}])),
    sse(chat_chunk(choices=[{"index": 0, "delta": None, "finish_reason": None}], usage=None)),
    sse({"choices": [], "usage_note": "the word usage, no usage object"}),
    b'data: {"choices": [], "usage": {"prompt_tokens": 1}  \n\n',  # broken JSON that looks like one
    b"event: usage\ndata: null\n\n",
]


@dataclass(frozen=True)
class ChatStream:
    events: list[bytes]
    usage_index: int
    usage: dict[str, int]
    chunks: list[bytes]
    broken_tail: bool
    """The last frame breaks off (never the usage event)."""

    @property
    def upstream(self) -> bytes:
        return b"".join(self.events)

    @property
    def expected_app_bytes(self) -> bytes:
        """Everything the upstream sent except the one usage-only event the test put in."""
        return b"".join(event for index, event in enumerate(self.events) if index != self.usage_index)


@st.composite
def chat_streams(draw: st.DrawFn) -> ChatStream:
    texts = draw(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=6))
    items = [sse(content(text)) for text in texts]
    items.append(sse(chat_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}], usage=None)))
    # Garbage comes as whole events. Bare blank lines (a run of empty lines between events) are left out
    # here: the tee can strip one of them with the usage event (test_blank_lines_before_the_usage_event...).
    safe_binary = st.binary(min_size=1, max_size=24).filter(
        lambda junk: b"\r" not in junk and b"\n" not in junk
    )
    events = [event for event in GARBAGE if event.strip(b"\r\n")]
    extras = st.sampled_from(CHAT_ODD) | st.sampled_from(events) | safe_binary.map(lambda j: j + b"\n\n")
    for extra in draw(st.lists(extras, max_size=8)):
        items.insert(draw(st.integers(min_value=0, max_value=len(items))), extra)
    prompt = draw(st.integers(min_value=0, max_value=10**6))
    completion = draw(st.integers(min_value=0, max_value=10**6))
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    usage_index = draw(st.integers(min_value=0, max_value=len(items)))
    items.insert(usage_index, sse(chat_chunk(choices=[], usage=usage)))
    items.append(b"data: [DONE]\n\n")
    # Each event keeps one line ending of its own: \n or \r\n (what servers send).
    items = [with_line_ending(item, draw(st.sampled_from([b"\n", b"\r\n"]))) for item in items]
    broken_tail: bool = draw(st.booleans())
    if broken_tail:
        tail = sse(content(draw(st.text(min_size=1, max_size=8))))
        items.append(tail[: draw(st.integers(min_value=1, max_value=len(tail) - 1))])
    body = b"".join(items)
    return ChatStream(items, usage_index, usage, draw(chunkings(body)), broken_tail)


@FUZZ
@given(stream=chat_streams())
def test_the_injected_usage_event_alone_is_stripped_under_any_chunking(stream: ChatStream) -> None:
    outcome = run(CHAT_URL, CHAT_REQUEST, stream.chunks, "text/event-stream")
    # nemoflow asked for usage (the app did not), so the app reads the stream it would have read without it.
    assert orjson.loads(outcome.sent) == {**CHAT_REQUEST, "stream_options": {"include_usage": True}}
    assert outcome.sent_headers["accept-encoding"] == "identity"
    assert outcome.app_bytes == stream.expected_app_bytes
    if stream.broken_tail:
        return  # the record loses its usage then: see test_a_truncated_final_frame_keeps_the_reply_before_it
    # ...and the record has the usage the app never saw.
    call = outcome.call
    assert call.usage_source == "reported"
    assert (call.usage.prompt_tokens, call.usage.completion_tokens, call.usage.total_tokens) == (
        stream.usage["prompt_tokens"],
        stream.usage["completion_tokens"],
        stream.usage["total_tokens"],
    )


def test_without_injection_the_usage_event_reaches_the_app() -> None:
    # The control: when the app asked for usage itself, the very same bytes pass whole.
    events = [
        sse(content("hi")),
        sse(chat_chunk(choices=[], usage={"prompt_tokens": 1})),
        b"data: [DONE]\n\n",
    ]
    asked = {**CHAT_REQUEST, "stream_options": {"include_usage": True}}
    outcome = run(CHAT_URL, asked, [b"".join(events)[:50], b"".join(events)[50:]], "text/event-stream")
    assert outcome.app_bytes == b"".join(events)
    assert outcome.call.usage.prompt_tokens == 1


BROKEN_FRAME = b'data: {"id":"c1","choi'
TRUNCATION_FIXTURES = {
    "gemini": "stream-sse-text",
    "anthropic": "stream-text",
    "responses": "stream-text-completed",
}


@pytest.mark.parametrize("name", ["gemini", "anthropic", "responses", "chat-injected"])
def test_a_truncated_final_frame_keeps_the_reply_before_it(name: str) -> None:
    if name == "chat-injected":
        url, request = CHAT_URL, CHAT_REQUEST
        events = [
            sse(content("hi")),
            sse(chat_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}], usage=None)),
            sse(
                chat_chunk(choices=[], usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6})
            ),
        ]
    else:
        route = ROUTES[name]
        url, request = BASE + route.path, route.request
        events = dict(route.fixtures)[TRUNCATION_FIXTURES[name]]
    complete = run(url, request, [b"".join(events)], "text/event-stream")
    broken = run(url, request, [b"".join(events) + BROKEN_FRAME], "text/event-stream")
    # The app reads every byte, the broken frame included (and, for chat, still without the usage event).
    assert broken.app_bytes == complete.app_bytes + BROKEN_FRAME
    assert complete.call.response is not None and complete.call.usage_source == "reported"
    # What the complete events said is still recorded: the broken frame costs only itself.
    assert broken.call.response is not None
    assert broken.call.usage == complete.call.usage
    assert broken.call.response.text == complete.call.response.text


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_blank_lines_before_the_usage_event_reach_the_app(ending: bytes) -> None:
    finish = sse(chat_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}], usage=None))
    usage = sse(chat_chunk(choices=[], usage={"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}))
    events = [with_line_ending(event, ending) for event in (finish, b"\n\n", usage, b"data: [DONE]\n\n")]
    body = b"".join(events)
    cut_at = len(events[0]) + len(ending)  # inside the extra blank lines, after the first of them
    outcome = run(CHAT_URL, CHAT_REQUEST, [body[:cut_at], body[cut_at:]], "text/event-stream")
    assert outcome.call.usage.total_tokens == 3
    assert outcome.app_bytes == events[0] + events[1] + events[3]


# ----------------------------------------------------------------------------------------- Bedrock


def bedrock_fixtures() -> list[tuple[str, str, bytes, dict[str, Any]]]:
    found = []
    for path in sorted((FIXTURES / "bedrock-converse").glob("stream-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "eventstream_base64" in data:
            route = data["url"].split(".amazonaws.com", 1)[1]
            found.append((path.stem, route, base64.b64decode(data["eventstream_base64"]), data["expected"]))
    assert found
    return found


BEDROCK = bedrock_fixtures()
BEDROCK_REQUEST = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
EVENTSTREAM = "application/vnd.amazon.eventstream"


@dataclass(frozen=True)
class Binary:
    route: str
    body: bytes
    chunks: list[bytes]
    expected: dict[str, Any] | None
    """The fixture's expected reply when the frames are intact."""


@st.composite
def eventstreams(draw: st.DrawFn) -> Binary:
    _, route, data, expected = draw(st.sampled_from(BEDROCK))
    body = data
    mutation = draw(st.sampled_from(["none", "truncate", "flip", "garbage", "drop-head"]))
    if mutation == "truncate":
        body = data[: draw(st.integers(min_value=0, max_value=len(data) - 1))]
    elif mutation == "flip":
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        body = data[:at] + bytes([data[at] ^ draw(st.integers(min_value=1, max_value=255))]) + data[at + 1 :]
    elif mutation == "garbage":
        at = draw(st.integers(min_value=0, max_value=len(data)))
        body = data[:at] + draw(st.binary(min_size=1, max_size=32)) + data[at:]
    elif mutation == "drop-head":
        body = data[draw(st.integers(min_value=1, max_value=len(data) - 1)) :]
    return Binary(route, body, draw(chunkings(body)), expected if mutation == "none" else None)


@FUZZ
@given(stream=eventstreams())
def test_bedrock_converse_event_streams(stream: Binary) -> None:
    url = BASE + stream.route
    chunked = run(url, BEDROCK_REQUEST, stream.chunks, EVENTSTREAM)
    assert chunked.app_bytes == stream.body
    assert orjson.loads(chunked.sent) == BEDROCK_REQUEST
    whole = run(url, BEDROCK_REQUEST, [stream.body] if stream.body else [], EVENTSTREAM)
    assert recorded(chunked.call) == recorded(whole.call)
    if stream.expected is not None:
        check_expected(chunked.call, stream.expected)
