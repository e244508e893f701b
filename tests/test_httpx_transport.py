"""httpx2 and httpx transports, sync and async: pass-through, rewriting, the tee, and every exit path."""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

import nemoflow
from nemoflow import CallStatus, Flow
from tests.support import Collector, chunk

CHAT_URL = "https://api.openai.com/v1/chat/completions"


USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
STREAM = [
    chunk("Hel"),
    chunk("lo"),
    chunk(finish="stop"),
    chunk(choices=False, usage=USAGE),
    b"data: [DONE]\n\n",
]
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}


@pytest.fixture(params=["httpx2", "httpx"])
def mod(request: pytest.FixtureRequest) -> Any:
    return importlib.import_module(request.param)


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def flow(collector: Collector) -> Iterator[Flow]:
    made = Flow(subscribers=[collector])
    yield made
    made.shutdown()


class Upstream:
    """Records what was sent and answers with canned bodies (a list of chunks streams them)."""

    def __init__(
        self, mod: Any, chunks: list[bytes], status: int = 200, content_type: str = "text/event-stream"
    ):
        self.mod = mod
        self.chunks = chunks
        self.status = status
        self.content_type = content_type
        self.sent: list[Any] = []

    def _record(self, request: Any) -> None:
        self.sent.append({"url": str(request.url), "headers": dict(request.headers), "body": request.content})

    def handler(self, request: Any) -> Any:
        self._record(request)
        chunks = self.chunks

        class Body(self.mod.SyncByteStream):  # type: ignore[name-defined,misc]
            def __iter__(self) -> Iterator[bytes]:
                yield from chunks

        return self.mod.Response(self.status, headers={"content-type": self.content_type}, stream=Body())

    async def async_handler(self, request: Any) -> Any:
        self._record(request)
        chunks = self.chunks

        class Body(self.mod.AsyncByteStream):  # type: ignore[name-defined,misc]
            async def __aiter__(self) -> AsyncIterator[bytes]:
                for piece in chunks:
                    yield piece

        return self.mod.Response(self.status, headers={"content-type": self.content_type}, stream=Body())


def test_non_llm_requests_pass_through_unread(mod: Any, flow: Flow) -> None:
    upstream = Upstream(mod, [b'{"data": []}'], content_type="application/json")
    with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
        response = client.get("https://api.openai.com/v1/models")
        posted = client.post("https://api.openai.com/v1/files", content=b"--boundary\r\nraw multipart")
    assert response.json() == {"data": []} and posted.status_code == 200
    assert upstream.sent[1]["body"] == b"--boundary\r\nraw multipart"
    assert flow.stats().passed_through == 2


def test_unchanged_request_bytes_are_identical(mod: Any, flow: Flow, collector: Collector) -> None:
    raw = orjson.dumps(REQUEST)
    upstream = Upstream(
        mod, [orjson.dumps({"id": "x", "choices": [], "usage": USAGE})], content_type="application/json"
    )
    with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
        client.post(CHAT_URL, content=raw, headers={"content-type": "application/json"}).read()
    assert upstream.sent[0]["body"] == raw
    assert flow.flush(5) and collector.calls[0].usage.prompt_tokens == 7


def test_a_traceparent_alone_keeps_the_original_bytes(mod: Any, collector: Collector) -> None:
    flow = Flow(subscribers=[collector], propagate_trace_context=lambda url: "internal" in url)
    raw = b'{"model": "gpt-4o-mini",  "messages": [{"role": "user", "content": "hi"}]}'  # odd spacing kept
    upstream = Upstream(
        mod, [orjson.dumps({"id": "x", "choices": [], "usage": USAGE})], content_type="application/json"
    )
    internal = "http://llm.internal:8000/v1/chat/completions"
    try:
        with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
            for url in (internal, CHAT_URL):
                client.post(url, content=raw, headers={"content-type": "application/json"}).read()
        assert flow.flush(5)
    finally:
        flow.shutdown()
    to_internal, to_public = upstream.sent
    assert to_internal["body"] == raw == to_public["body"]
    assert to_internal["headers"]["content-length"] == str(len(raw))
    assert "traceparent" not in to_public["headers"]
    record = next(call for call in collector.calls if "internal" in call.url)
    assert to_internal["headers"]["traceparent"] == f"00-{record.trace_id:032x}-{record.span_id:016x}-01"


def test_no_traceparent_by_default(mod: Any, flow: Flow) -> None:
    upstream = Upstream(mod, [orjson.dumps({"id": "x", "choices": []})], content_type="application/json")
    with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
        client.post(CHAT_URL, content=orjson.dumps(REQUEST)).read()
    assert "traceparent" not in upstream.sent[0]["headers"]


def test_stream_is_teed_and_injected_usage_stripped(mod: Any, flow: Flow, collector: Collector) -> None:
    flow.policies = (nemoflow.cap_max_tokens(50),)
    upstream = Upstream(mod, STREAM)
    with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
        with client.stream("POST", CHAT_URL, json={**REQUEST, "stream": True}) as response:
            received = b"".join(response.iter_bytes())
    sent = orjson.loads(upstream.sent[0]["body"])
    assert sent["max_tokens"] == 50 and sent["stream_options"] == {"include_usage": True}
    assert upstream.sent[0]["headers"]["content-length"] == str(len(upstream.sent[0]["body"]))
    assert (
        received == b"".join(STREAM[:3]) + STREAM[4]
    )  # the usage-only chunk the app never asked for is gone
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.status is CallStatus.OK and call.response is not None and call.response.text == "Hello"
    assert call.usage.prompt_tokens == 7


def test_callers_own_stream_options_are_never_touched(mod: Any, flow: Flow) -> None:
    upstream = Upstream(mod, STREAM)
    body = orjson.dumps({**REQUEST, "stream": True, "stream_options": {"include_usage": True}})
    with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
        with client.stream("POST", CHAT_URL, content=body) as response:
            received = b"".join(response.iter_bytes())
    assert upstream.sent[0]["body"] == body and received == b"".join(STREAM)


def test_breaking_out_of_a_stream_cancels_with_partial_text(
    mod: Any, flow: Flow, collector: Collector
) -> None:
    upstream = Upstream(mod, [chunk("Hel"), chunk("lo"), chunk(" world")])
    with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
        with client.stream("POST", CHAT_URL, json={**REQUEST, "stream": True}) as response:
            for piece in response.iter_raw():
                assert piece
                break
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.CANCELLED
    assert call.response is not None and call.response.text == "Hel"


def test_an_abandoned_response_is_finished_when_collected(mod: Any, flow: Flow, collector: Collector) -> None:
    upstream = Upstream(mod, [chunk("partial")])
    client = mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler)))
    response = client.send(
        client.build_request("POST", CHAT_URL, json={**REQUEST, "stream": True}), stream=True
    )
    del response
    gc.collect()
    assert flow.flush(5)
    assert [c.status for c in collector.calls] == [CallStatus.CANCELLED]
    client.close()


def test_upstream_failure_is_recorded_and_reraised(mod: Any, flow: Flow, collector: Collector) -> None:
    def refuse(request: Any) -> Any:
        raise mod.ConnectError("connection refused", request=request)

    with mod.Client(transport=flow.transport(mod.MockTransport(refuse))) as client:
        with pytest.raises(mod.ConnectError):
            client.post(CHAT_URL, json=REQUEST)
    assert flow.flush(5)
    (call,) = collector.calls
    assert (
        call.status is CallStatus.ERROR
        and call.exception is not None
        and "connection refused" in call.exception
    )


def test_error_status_is_classified(mod: Any, flow: Flow, collector: Collector) -> None:
    error = orjson.dumps(
        {"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}}
    )
    upstream = Upstream(mod, [error], status=401, content_type="application/json")
    with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
        response = client.post(CHAT_URL, json=REQUEST)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.status is CallStatus.ERROR and call.error is not None and call.error.kind == "authentication"


def test_guardrail_block_reaches_the_caller_and_nothing_is_sent(mod: Any, collector: Collector) -> None:
    flow = Flow(guardrails=[lambda request, ctx: nemoflow.Block("off-topic")], subscribers=[collector])
    upstream = Upstream(mod, STREAM)
    with mod.Client(transport=flow.transport(mod.MockTransport(upstream.handler))) as client:
        with pytest.raises(nemoflow.GuardrailBlocked, match="off-topic"):
            client.post(CHAT_URL, json=REQUEST)
    assert upstream.sent == []
    assert flow.flush(5) and collector.calls[0].status is CallStatus.BLOCKED


def test_async_stream_and_cancellation(mod: Any, flow: Flow, collector: Collector) -> None:
    upstream = Upstream(mod, STREAM)

    async def main() -> bytes:
        transport = flow.transport(mod.MockTransport(upstream.async_handler), asynchronous=True)
        async with mod.AsyncClient(transport=transport) as client:
            async with client.stream("POST", CHAT_URL, json={**REQUEST, "stream": True}) as response:
                whole = b"".join([piece async for piece in response.aiter_bytes()])
            async with client.stream("POST", CHAT_URL, json={**REQUEST, "stream": True}) as response:
                async for _ in response.aiter_raw():
                    break
        return whole

    received = asyncio.run(main())
    assert received == b"".join(STREAM[:3]) + STREAM[4]
    assert flow.flush(5)
    assert [c.status for c in collector.calls] == [CallStatus.OK, CallStatus.CANCELLED]
    assert collector.calls[0].usage.total_tokens == 9


def test_clients_with_sdk_defaults(flow: Flow) -> None:
    client = flow.httpx2_client()
    assert client.timeout.read == 600.0 and client.timeout.connect == 5.0
    assert type(client._transport).__name__ == "Httpx2Transport"
    client.close()
    with pytest.raises(TypeError):
        flow.transport(object())


def test_openai_sdk_through_the_transport(flow: Flow, collector: Collector) -> None:
    import httpx2
    import openai

    upstream = Upstream(httpx2, STREAM)
    client = openai.OpenAI(
        api_key="sk-test",
        max_retries=0,
        http_client=flow.httpx2_client(transport=httpx2.MockTransport(upstream.handler)),
    )
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert all(c.usage is None for c in chunks)  # the app never sees usage it did not ask for
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.status is CallStatus.OK and call.usage.completion_tokens == 2
    assert "sk-test" not in repr(call) and "sk-test" not in call.url


def test_gzip_streams_are_recorded_and_injection_asks_for_plain_bytes(
    mod: Any, flow: Flow, collector: Collector
) -> None:
    import gzip

    own_usage = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}
    compressed = gzip.compress(b"".join(STREAM))
    upstream = Upstream(mod, [compressed[:40], compressed[40:]])
    original_handler = upstream.handler

    def gzipped(request: Any) -> Any:
        response = original_handler(request)
        response.headers["content-encoding"] = "gzip"
        return response

    with mod.Client(transport=flow.transport(mod.MockTransport(gzipped))) as client:
        with client.stream("POST", CHAT_URL, json=own_usage) as response:
            received = b"".join(response.iter_bytes())
        client.post(CHAT_URL, json={**REQUEST, "stream": True}).read()
    assert received == b"".join(STREAM)  # the app decodes as usual
    assert upstream.sent[1]["headers"]["accept-encoding"] == "identity"  # nemoflow injected usage here
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.response is not None and call.response.text == "Hello" and call.usage.total_tokens == 9


def test_a_compressed_stream_is_never_held_back(mod: Any, flow: Flow, collector: Collector) -> None:
    import gzip
    import zlib

    # A server that compresses although nemoflow asked for identity: bytes must still flow at once.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    pieces = [compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH) for event in STREAM]
    pieces[-1] += compressor.flush()
    upstream = Upstream(mod, pieces)
    original_handler = upstream.handler

    def gzipped(request: Any) -> Any:
        response = original_handler(request)
        response.headers["content-encoding"] = "gzip"
        return response

    with mod.Client(transport=flow.transport(mod.MockTransport(gzipped))) as client:
        with client.stream("POST", CHAT_URL, json={**REQUEST, "stream": True}) as response:
            raw = response.iter_raw()
            first = next(raw)
            assert first == pieces[0]  # delivered as it came, not held for an event boundary
            rest = b"".join(raw)
    assert gzip.decompress(first + rest) == b"".join(STREAM)
    assert flow.flush(5)
    assert collector.calls[0].usage.total_tokens == 9 and collector.calls[0].response is not None
