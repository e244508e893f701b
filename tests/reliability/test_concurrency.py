"""Concurrency: many async streams and threads at once, each in its own scope, through one flow.

One loopback upstream echoes a per-call marker back (streamed or as JSON), with token counts derived from
the marker, so every record, span and reply can be matched to the call that made it. The tests prove that
records keep their own parent, content and usage under heavy interleaving; that every span ends; that a
full delivery queue drops and counts instead of blocking callers; and that a flow keeps no per-call state
once the calls are over.
"""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx2
import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from nemoflow import CallStatus, Flow, LlmCall, ScopeRecord, Subscriber
from nemoflow._flow import LlmCallHandle, Scope, _Parent
from nemoflow._model import AnnotatedLlmRequest, AnnotatedLlmResponse
from nemoflow._tee import ResponseTee
from nemoflow_exporter_openinference import EVICTED_ATTRIBUTE, OpenInferenceExporter
from tests.upstream import CannedApp, Received, UpstreamServer
from tests.upstream import Receive as AsgiReceive
from tests.upstream import Scope as AsgiScope
from tests.upstream import Send as AsgiSend

CHAT = "/v1/chat/completions"
MODEL = "gpt-4o-mini"
HOLD_HEADER = "x-test-hold"
TIMEOUT_S = 20.0
"""Bound on any single wait of these tests (a hang fails them instead of stalling the suite)."""
HOLD_TIMEOUT_S = 15.0
"""How long the upstream holds streams waiting for every expected request (then it lets them go)."""

MARKER = re.compile(r"mk-\d{4}-[0-9a-f]{8}")

STREAMS = 200
THREADS = 8
CALLS_PER_THREAD = 5


# ----------------------------------------------------------------------------------------- markers


def make_marker(index: int) -> str:
    """A marker no other call shares; the index sets the token counts the upstream reports."""
    return f"mk-{index:04d}-{uuid.uuid4().hex[:8]}"


def usage_for(marker: str) -> dict[str, int]:
    index = int(marker[3:7])
    prompt, completion = 1000 + index, 3 + index % 7
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def reply_text(marker: str) -> str:
    return f"echo {marker}."


def request_body(marker: str, *, stream: bool, ask_usage: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": f"repeat {marker}"}]}
    if stream:
        body["stream"] = True
    if ask_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def markers_in(text: str) -> set[str]:
    return set(MARKER.findall(text))


# ----------------------------------------------------------------------------------------- upstream


def _event(marker: str, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
    event: dict[str, Any] = {
        "id": f"chatcmpl-{marker}",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": choices,
    }
    if usage is not None:
        event["usage"] = usage
    return b"data: " + orjson.dumps(event) + b"\n\n"


class EchoApp(CannedApp):
    """Answers every chat request with ``echo <marker>.``, the marker taken from the request's message.

    Streams go out as several SSE chunks (and a usage chunk when ``stream_options.include_usage`` is set);
    other requests get a JSON reply with usage. A stream sent with the ``x-test-hold`` header is held after
    its first chunk until :meth:`arm`'s expected numbers of held and other requests have all arrived, so a
    test can prove that all those calls were in flight at the same time.
    """

    def __init__(self) -> None:
        super().__init__()
        self.arm(0, 0)

    def arm(self, held: int, free: int) -> None:
        """Hold marked streams until ``held`` of them and ``free`` other requests have arrived."""
        self.expect_held, self.expect_free = held, free
        self.held_arrived = self.free_arrived = 0
        self.in_flight = self.max_in_flight = 0
        self.first_held = threading.Event()
        self.hold_timed_out = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None

    def reset(self) -> None:
        """Forget what was received and let any held stream go."""
        super().reset()
        loop, release = self._loop, self._release
        if loop is not None and release is not None and not loop.is_closed():
            loop.call_soon_threadsafe(release.set)

    def _release_event(self) -> asyncio.Event:
        # Created on the server's loop, and only ever set there (or through call_soon_threadsafe).
        if self._release is None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
        return self._release

    def _arrived(self, held: bool) -> None:
        if held:
            self.held_arrived += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.first_held.set()
        else:
            self.free_arrived += 1
        if self.held_arrived >= self.expect_held and self.free_arrived >= self.expect_free:
            self._release_event().set()

    async def __call__(self, scope: AsgiScope, receive: AsgiReceive, send: AsgiSend) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"])
        request = Received(scope["method"], scope["path"], "", headers, bytes(body))
        with self._lock:
            self.received.append(request)
        payload = request.json()
        found = MARKER.search(str(payload.get("messages")))
        if found is None:
            await self._send(send, 400, "application/json", [b'{"error":{"message":"no marker"}}'])
            return
        marker = found.group()
        if not payload.get("stream"):
            self._arrived(False)
            reply = {
                "id": f"chatcmpl-{marker}",
                "object": "chat.completion",
                "created": 1,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply_text(marker)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage_for(marker),
            }
            await self._send(send, 200, "application/json", [orjson.dumps(reply)])
            return
        held = request.header(HOLD_HEADER) == "1"
        self._arrived(held)
        await self._stream(
            send, marker, held, bool((payload.get("stream_options") or {}).get("include_usage"))
        )

    async def _stream(self, send: AsgiSend, marker: str, held: bool, include_usage: bool) -> None:
        pieces = ["echo ", marker[:7], marker[7:], "."]
        start = [{"index": 0, "delta": {"role": "assistant", "content": pieces[0]}, "finish_reason": None}]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": _event(marker, start), "more_body": True})
        try:
            if held:
                try:
                    await asyncio.wait_for(self._release_event().wait(), HOLD_TIMEOUT_S)
                except TimeoutError:
                    self.hold_timed_out = True
            events = [
                _event(marker, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
                for piece in pieces[1:]
            ]
            events.append(_event(marker, [{"index": 0, "delta": {}, "finish_reason": "stop"}]))
            if include_usage:
                events.append(_event(marker, [], usage_for(marker)))
            events.append(b"data: [DONE]\n\n")
            for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if held:
                self.in_flight -= 1

    @staticmethod
    async def _send(send: AsgiSend, status: int, content_type: str, chunks: list[bytes]) -> None:
        length = str(sum(len(chunk) for chunk in chunks)).encode()
        headers = [(b"content-type", content_type.encode()), (b"content-length", length)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@dataclass
class Upstream:
    server: UpstreamServer
    app: EchoApp

    @property
    def chat_url(self) -> str:
        return self.server.url(CHAT)


@pytest.fixture(scope="module")
def server() -> Iterator[Upstream]:
    app = EchoApp()
    with UpstreamServer(app) as running:
        yield Upstream(running, app)


@pytest.fixture
def upstream(server: Upstream) -> Iterator[Upstream]:
    server.app.reset()
    server.app.arm(0, 0)
    yield server
    server.app.reset()


# ----------------------------------------------------------------------------------------- subscribers


class Recorder(Subscriber):
    """Keeps (or only counts) what it is delivered; safe to read from any thread."""

    def __init__(self, *, keep: bool = True) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self.calls: list[LlmCall] = []
        self.scope_starts: list[ScopeRecord] = []
        self.scope_ends: list[ScopeRecord] = []
        self.delivered = 0
        self.calls_seen = 0
        self.unparented_calls = 0

    def on_scope_start(self, scope: ScopeRecord) -> None:
        with self._lock:
            self.delivered += 1
            if self._keep:
                self.scope_starts.append(scope)

    def on_scope_end(self, scope: ScopeRecord) -> None:
        with self._lock:
            self.delivered += 1
            if self._keep:
                self.scope_ends.append(scope)

    def on_call(self, call: LlmCall) -> None:
        with self._lock:
            self.delivered += 1
            self.calls_seen += 1
            if call.parent_id is None and call.scope_path == ():
                self.unparented_calls += 1
            if self._keep:
                self.calls.append(call)


class HeldDelivery(Subscriber):
    """Blocks the delivery thread on the first call it gets until released; forwards everything."""

    def __init__(self, inner: Subscriber) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()
        self.timed_out = False

    def on_scope_start(self, scope: ScopeRecord) -> None:
        self.inner.on_scope_start(scope)

    def on_scope_end(self, scope: ScopeRecord) -> None:
        self.inner.on_scope_end(scope)

    def on_call(self, call: LlmCall) -> None:
        if not self.entered.is_set():
            self.entered.set()
            if not self.release.wait(HOLD_TIMEOUT_S):
                self.timed_out = True
        self.inner.on_call(call)


class SpanSink:
    """A TracerProvider that keeps finished spans in memory."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))


# ----------------------------------------------------------------------------------------- callers


@dataclass(frozen=True)
class Issued:
    """One call as its caller saw it."""

    marker: str
    scope_name: str
    scope_span_id: int
    session_id: str
    stream: bool
    asked_usage: bool
    status: int
    text: str
    usage_seen: dict[str, int] | None


def read_sse(raw: bytes) -> tuple[str, dict[str, int] | None]:
    """The text and the usage (if any) of an OpenAI chat stream as the application received it."""
    text: list[str] = []
    usage: dict[str, int] | None = None
    for block in raw.split(b"\n\n"):
        if not block.startswith(b"data: ") or block == b"data: [DONE]":
            continue
        event = orjson.loads(block[6:])
        if event.get("usage"):
            usage = event["usage"]
        for choice in event["choices"]:
            text.append(choice["delta"].get("content") or "")
    return "".join(text), usage


def sync_stream(
    client: Any, url: str, marker: str, ask_usage: bool
) -> tuple[int, str, dict[str, int] | None]:
    body = request_body(marker, stream=True, ask_usage=ask_usage)
    with client.stream("POST", url, json=body) as response:
        raw = b"".join(response.iter_bytes())
        status = int(response.status_code)
    text, usage = read_sse(raw)
    return status, text, usage


async def async_stream(
    client: Any, url: str, marker: str, ask_usage: bool, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, int] | None]:
    body = request_body(marker, stream=True, ask_usage=ask_usage)
    async with client.stream("POST", url, json=body, headers=headers) as response:
        raw = b"".join([piece async for piece in response.aiter_bytes()])
        status = int(response.status_code)
    text, usage = read_sse(raw)
    return status, text, usage


def post_json(client: Any, url: str, marker: str) -> tuple[int, str, dict[str, int] | None]:
    response = client.post(url, json=request_body(marker, stream=False))
    reply = response.json()
    return int(response.status_code), reply["choices"][0]["message"]["content"], reply["usage"]


async def one_stream(flow: Flow, client: Any, url: str, index: int) -> Issued:
    marker = make_marker(index)
    asked = index % 2 == 0  # half ask for usage themselves, half rely on nemoflow asking for it
    name, session = f"stream-{marker}", f"session-{marker}"
    async with flow.scope(name, session_id=session) as scope:
        status, text, usage = await async_stream(client, url, marker, asked, {HOLD_HEADER: "1"})
    assert scope.span_id is not None
    return Issued(marker, name, scope.span_id, session, True, asked, status, text, usage)


async def run_streams(flow: Flow, url: str, count: int) -> list[Issued]:
    async with flow.async_httpx2_client(timeout=httpx2.Timeout(TIMEOUT_S, connect=5.0)) as client:
        tasks = [asyncio.create_task(one_stream(flow, client, url, index)) for index in range(count)]
        return list(await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT_S))


def thread_calls(
    flow: Flow, shared_client: Any, url: str, number: int, go: threading.Event, out: list[Issued]
) -> None:
    """One caller thread: waits for ``go``, then makes its calls inside one scope of its own.

    Even-numbered threads stream through the shared httpx2 client; odd ones post JSON with a requests
    session of their own (sessions are not meant to be shared across threads).
    """
    if not go.wait(TIMEOUT_S):
        raise TimeoutError("the streams never reached the upstream")
    session = flow.requests_session() if number % 2 else None
    name = f"thread-{number}"
    try:
        with flow.scope(name, kind="CHAIN", session_id=f"session-{name}") as scope:
            assert scope.span_id is not None
            for call in range(CALLS_PER_THREAD):
                marker = make_marker(STREAMS + number * CALLS_PER_THREAD + call)
                asked = call % 2 == 0
                if session is None:
                    status, text, usage = sync_stream(shared_client, url, marker, asked)
                else:
                    reply = session.post(url, json=request_body(marker, stream=False), timeout=TIMEOUT_S)
                    status, text = reply.status_code, reply.json()["choices"][0]["message"]["content"]
                    usage = reply.json()["usage"]
                stream = session is None
                out.append(
                    Issued(marker, name, scope.span_id, f"session-{name}", stream, asked, status, text, usage)
                )
    finally:
        if session is not None:
            session.close()


class Callers:
    """Caller threads running ``target(number)``, started at once; their exceptions are kept, not lost."""

    def __init__(self, target: Callable[[int], None], count: int) -> None:
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(
                target=self._guarded, args=(target, number), name=f"caller-{number}", daemon=True
            )
            for number in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _guarded(self, target: Callable[[int], None], number: int) -> None:
        try:
            target(number)
        except BaseException as exc:
            self.errors.append(exc)

    def join(self, timeout: float = TIMEOUT_S) -> list[str]:
        """Wait at most ``timeout`` seconds in all; the names of the threads still running."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in self.threads if thread.is_alive()]


# ------------------------------------------------------------------------------ parents and content


def test_200_streams_and_8_threads_keep_their_own_parents_content_and_spans(upstream: Upstream) -> None:
    app = upstream.app
    thread_call_count = THREADS * CALLS_PER_THREAD
    # Every stream is held mid-body until all streams and all thread calls reached the upstream.
    app.arm(held=STREAMS, free=thread_call_count)
    recorder = Recorder()
    sink = SpanSink()
    exporter = OpenInferenceExporter(sink.provider)
    flow = Flow(subscribers=[recorder, exporter])
    shared_client = flow.httpx2_client(timeout=httpx2.Timeout(TIMEOUT_S, connect=5.0))
    from_threads: list[Issued] = []
    callers: Callers | None = None
    try:
        callers = Callers(
            lambda number: thread_calls(
                flow, shared_client, upstream.chat_url, number, app.first_held, from_threads
            ),
            THREADS,
        )
        from_streams = asyncio.run(run_streams(flow, upstream.chat_url, STREAMS))
        assert callers.join() == [], "caller threads did not finish"
        assert callers.errors == []
        assert flow.flush(10)
        open_spans = exporter.open_spans
        spans = sink.memory.get_finished_spans()
    finally:
        app.first_held.set()  # callers still waiting (the streams failed) go on and end
        if callers is not None:
            callers.join(5)
        shared_client.close()
        flow.shutdown()
        sink.provider.shutdown()

    # All 240 calls were in flight together: no stream could finish before the last call arrived.
    assert not app.hold_timed_out
    assert app.max_in_flight == STREAMS
    issued = from_streams + from_threads
    calls = STREAMS + thread_call_count
    assert len(issued) == calls
    received = [markers_in(request.body.decode()) for request in app.received]
    assert all(len(found) == 1 for found in received)
    assert sorted(found.pop() for found in received) == sorted(item.marker for item in issued)

    # Each caller got its own reply, and the usage event only when it asked for it.
    for item in issued:
        assert item.status == 200
        assert item.text == reply_text(item.marker), item
        wants_usage = item.asked_usage or not item.stream
        assert item.usage_seen == (usage_for(item.marker) if wants_usage else None), item

    # Exactly one record per call, mentioning no other call's marker.
    by_marker: dict[str, LlmCall] = {}
    for call in recorder.calls:
        found = markers_in(repr(call))
        assert len(found) == 1, f"a record mixes {len(found)} calls: {sorted(found)[:4]}..."
        (marker,) = found
        assert marker not in by_marker, f"two records for {marker}"
        by_marker[marker] = call
    assert by_marker.keys() == {item.marker for item in issued}

    # Scopes: each opened and closed once, and none left open.
    starts = {scope.span_id: scope for scope in recorder.scope_starts}
    ends = {scope.span_id: scope for scope in recorder.scope_ends}
    scope_ids = {item.scope_span_id for item in issued}
    assert len(scope_ids) == STREAMS + THREADS
    assert len(recorder.scope_starts) == len(recorder.scope_ends) == len(scope_ids)
    assert starts.keys() == ends.keys() == scope_ids
    for span_id, end in ends.items():
        assert end.status == "ok" and end.end_time_ns is not None and end.parent_id is None
        assert end.trace_id == starts[span_id].trace_id

    # Each record is parented by the scope that issued it, with its own reply and token counts.
    for item in issued:
        call = by_marker[item.marker]
        scope = starts[item.scope_span_id]
        assert call.status is CallStatus.OK, call.status
        assert call.parent_id == item.scope_span_id
        assert call.trace_id == scope.trace_id
        assert call.scope_path == (item.scope_name,) and scope.name == item.scope_name
        assert call.session_id == item.session_id
        assert call.stream is item.stream
        assert call.response is not None and call.response.text == reply_text(item.marker)
        expected = usage_for(item.marker)
        assert call.usage_source == "reported"
        assert (call.usage.prompt_tokens, call.usage.completion_tokens, call.usage.total_tokens) == (
            expected["prompt_tokens"],
            expected["completion_tokens"],
            expected["total_tokens"],
        )
    stats = flow.stats()
    assert stats.calls_recorded == calls and stats.events_dropped == 0 and dict(stats.errors) == {}

    # Spans: one per call and per scope, all ended, each LLM span under its own scope's span.
    assert open_spans == 0 and exporter.evicted_spans == 0
    assert len(spans) == calls + len(scope_ids)
    by_span_id = {span.context.span_id: span for span in spans if span.context is not None}
    assert len(by_span_id) == len(spans)
    for span in spans:
        assert span.end_time is not None and span.start_time is not None and span.end_time >= span.start_time
        assert EVICTED_ATTRIBUTE not in (span.attributes or {})
    for span_id, scope in starts.items():
        scope_span = by_span_id[span_id]
        assert scope_span.parent is None and scope_span.name == scope.name
        assert scope_span.context is not None and scope_span.context.trace_id == scope.trace_id
    for item in issued:
        call = by_marker[item.marker]
        span = by_span_id[call.span_id]
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == item.scope_span_id
        assert span.context is not None and span.context.trace_id == starts[item.scope_span_id].trace_id
        attribute_text = " ".join(str(value) for value in (span.attributes or {}).values())
        assert markers_in(attribute_text) == {item.marker}


# ----------------------------------------------------------------------------------------- bounded queue

QUEUE = 8
FLOOD_THREADS = 8
FLOOD_CALLS = 25


def test_a_full_delivery_queue_drops_and_counts_instead_of_blocking_callers(upstream: Upstream) -> None:
    recorder = Recorder()
    held = HeldDelivery(recorder)
    flow = Flow(subscribers=[held], max_queue=QUEUE)
    client = flow.httpx2_client(timeout=httpx2.Timeout(TIMEOUT_S, connect=5.0))
    url = upstream.chat_url
    scope_of: dict[str, int | None] = {}
    replies: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    callers: Callers | None = None

    def flood(number: int) -> None:
        with flow.scope(f"flood-{number}") as scope:
            for call in range(FLOOD_CALLS):
                marker = make_marker(1 + number * FLOOD_CALLS + call)
                status, text, _ = post_json(client, url, marker)
                with lock:
                    scope_of[marker] = scope.span_id
                    replies.append((marker, status, text))

    try:
        first = make_marker(0)
        status, text, _ = post_json(client, url, first)
        scope_of[first] = None
        replies.append((first, status, text))
        # The delivery thread now holds the first record, outside the queue: nothing drains any more.
        assert held.entered.wait(TIMEOUT_S)
        callers = Callers(flood, FLOOD_THREADS)
        # put() never waits: every caller finishes while the subscriber is still held (well before it
        # would give up waiting), so a caller blocked on the full queue fails here.
        assert callers.join(10) == [], "callers blocked on the full delivery queue"
        assert callers.errors == [] and not held.release.is_set()
        # Queued: the first call; then for each scope its start, its calls and its end.
        issued_events = 1 + FLOOD_THREADS * (FLOOD_CALLS + 2)
        accepted = QUEUE + 1  # the held record and a full queue
        assert flow.stats().events_dropped == issued_events - accepted
        held.release.set()
        assert flow.flush(10)
        after_release = flow.stats()
        delivered_calls = list(recorder.calls)
        delivered = recorder.delivered

        # Delivery works again once the subscriber keeps up: later calls are all recorded.
        later = [make_marker(1 + FLOOD_THREADS * FLOOD_CALLS + n) for n in range(5)]
        for marker in later:
            post_json(client, url, marker)
        assert flow.flush(10)
        final = flow.stats()
    finally:
        held.release.set()
        if callers is not None:
            callers.join(5)
        client.close()
        flow.shutdown()

    assert not held.timed_out
    assert all(status == 200 and text == reply_text(marker) for marker, status, text in replies)
    assert len(replies) == 1 + FLOOD_THREADS * FLOOD_CALLS
    assert delivered == accepted
    assert after_release.events_dropped == issued_events - delivered
    assert after_release.calls_recorded == len(delivered_calls)
    assert dict(after_release.errors) == {}

    # What was delivered is whole and consistent: each record its own reply, usage and parent.
    assert delivered_calls[0].parent_id is None and markers_in(repr(delivered_calls[0])) == {first}
    seen: set[str] = set()
    flood_scopes = {span_id for span_id in scope_of.values() if span_id is not None}
    for call in delivered_calls:
        found = markers_in(repr(call))
        assert len(found) == 1
        (marker,) = found
        assert marker not in seen and marker in scope_of
        seen.add(marker)
        assert call.status is CallStatus.OK and call.parent_id == scope_of[marker]
        assert call.response is not None and call.response.text == reply_text(marker)
        assert call.usage.total_tokens == usage_for(marker)["total_tokens"]
    for scope in recorder.scope_starts + recorder.scope_ends:
        assert scope.span_id in flood_scopes

    assert [markers_in(repr(call)).pop() for call in recorder.calls[len(delivered_calls) :]] == later
    assert final.events_dropped == after_release.events_dropped
    assert final.calls_recorded == len(delivered_calls) + len(later)


# ----------------------------------------------------------------------------------------- no growth

TRACKED: tuple[type, ...] = (
    LlmCallHandle,
    LlmCall,
    ScopeRecord,
    Scope,
    _Parent,
    ResponseTee,
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
)
POOL = 8
BATCH_STREAMS = 200
BATCH_PER_WORKER = 8


def live_objects() -> Counter[str]:
    """How many nemoflow per-call and per-scope objects are alive (after a full collection)."""
    gc.collect()
    wanted = {cls: cls.__name__ for cls in TRACKED}
    counts: Counter[str] = Counter({name: 0 for name in wanted.values()})
    for obj in gc.get_objects():
        name = wanted.get(type(obj))
        if name is not None:
            counts[name] += 1
    return counts


def test_many_calls_leave_no_per_call_state_behind(upstream: Upstream) -> None:
    recorder = Recorder(keep=False)  # counts only: anything still alive afterwards is nemoflow's own
    spans = TracerProvider()  # no processor: spans are made and ended, then dropped
    exporter = OpenInferenceExporter(spans, max_open_spans=32)
    flow = Flow(subscribers=[recorder, exporter])
    url = upstream.chat_url
    sync_client = flow.httpx2_client(timeout=httpx2.Timeout(TIMEOUT_S, connect=5.0))

    async def streams(count: int) -> None:
        async def one(client: Any, index: int) -> None:
            async with flow.scope(f"s-{index}"):
                status, text, _ = await async_stream(client, url, make_marker(index), False)
                assert status == 200 and text.startswith("echo ")

        async with flow.async_httpx2_client(timeout=httpx2.Timeout(TIMEOUT_S, connect=5.0)) as client:
            await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(count))), TIMEOUT_S)

    def scoped_sync_calls(worker: int, count: int) -> None:
        with flow.scope(f"w-{worker}", kind="CHAIN"):
            for n in range(count):
                marker = make_marker(n)
                stream = n % 4 == 0
                status, _, _ = (
                    sync_stream(sync_client, url, marker, False)
                    if stream
                    else post_json(sync_client, url, marker)
                )
                assert status == 200

    def batch(pool: ThreadPoolExecutor, streamed: int, per_worker: int) -> None:
        futures = [pool.submit(scoped_sync_calls, worker, per_worker) for worker in range(POOL)]
        asyncio.run(streams(streamed))
        for future in futures:
            future.result(TIMEOUT_S)
        assert flow.flush(10)

    try:
        with ThreadPoolExecutor(POOL, thread_name_prefix="pool") as pool:
            batch(pool, 20, 4)  # warm-up: caches, connection pools, lazily built classes
            before = live_objects()
            batch(pool, BATCH_STREAMS, BATCH_PER_WORKER)
            after = live_objects()
            calls = 20 + POOL * 4 + BATCH_STREAMS + POOL * BATCH_PER_WORKER
            # Pool threads are reused: a scope leaked into a worker's context would parent this call.
            meet = threading.Barrier(POOL, timeout=TIMEOUT_S)

            def unscoped(worker: int) -> None:
                meet.wait()  # one per worker thread
                post_json(sync_client, url, make_marker(worker))

            for future in [pool.submit(unscoped, worker) for worker in range(POOL)]:
                future.result(TIMEOUT_S)
            assert flow.flush(10)
        stats = flow.stats()
        open_spans = exporter.open_spans
    finally:
        sync_client.close()
        flow.shutdown()
        spans.shutdown()

    growth = {name: after[name] - before[name] for name in after}
    assert all(delta <= 5 for delta in growth.values()), (
        f"per-call state left behind: {growth} after {BATCH_STREAMS + POOL * BATCH_PER_WORKER} calls"
    )
    assert recorder.calls_seen == calls + POOL == stats.calls_recorded
    assert recorder.unparented_calls == POOL
    assert stats.events_dropped == 0 and dict(stats.errors) == {}
    assert open_spans == 0
