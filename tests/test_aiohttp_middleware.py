"""The aiohttp client middleware against a real loopback upstream: pass-through, rewriting, the tee, exits."""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.streams import StreamReader

import nemoflow
from nemoflow import CallStatus, Flow, LlmCall
from nemoflow._aiohttp import _TeeStreamReader, aiohttp_middleware, aiohttp_session
from tests.support import Collector, chunk
from tests.upstream import Canned, Gate, UpstreamServer, refused_port

CHAT_PATH = "/v1/chat/completions"
BOUND_S = 10.0  # no test waits longer than this for the network


USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
STREAM = [
    chunk("Hel"),
    chunk("lo"),
    chunk(finish="stop"),
    chunk(choices=False, usage=USAGE),
    b"data: [DONE]\n\n",
]
STRIPPED = b"".join(STREAM[:3]) + STREAM[4]  # what the app reads when nemoflow injected include_usage
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}
COMPLETION = {
    "id": "x",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": USAGE,
}


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as running:
        yield running


@pytest.fixture
def upstream(server: UpstreamServer) -> Iterator[UpstreamServer]:
    server.app.reset()
    yield server
    server.app.reset()


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def flow(collector: Collector) -> Iterator[Flow]:
    made = Flow(subscribers=[collector])
    yield made
    made.shutdown()


def run(flow: Flow, body: Callable[[aiohttp.ClientSession], Awaitable[Any]]) -> Any:
    """Run ``body`` with a nemoflow session on a fresh event loop, within a bounded time."""

    async def main() -> Any:
        async with aiohttp_session(flow) as session:
            async with asyncio.timeout(BOUND_S):
                return await body(session)

    return asyncio.run(main())


def test_non_llm_requests_pass_through_unread(upstream: UpstreamServer, flow: Flow) -> None:
    upstream.app.enqueue(Canned.json({"data": []}), Canned.json({"id": "file-1"}))
    multipart = b"--boundary\r\nraw multipart \xff\xfe"

    async def body(session: aiohttp.ClientSession) -> tuple[Any, Any]:
        async with session.get(upstream.url("/v1/models")) as listed:
            models = await listed.json()
        async with session.post(upstream.url("/v1/files"), data=multipart) as posted:
            return models, await posted.json()

    assert run(flow, body) == ({"data": []}, {"id": "file-1"})
    assert upstream.app.received[1].body == multipart
    assert flow.stats().passed_through == 2
    assert flow.flush(5) and flow.stats().calls_recorded == 0


def test_a_streamed_upload_to_an_llm_route_passes_through(upstream: UpstreamServer, flow: Flow) -> None:
    upstream.app.enqueue(Canned.json(COMPLETION))
    parts = [b'{"model": "gpt-4o-mini", ', b'"messages": []}']

    async def upload() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async def body(session: aiohttp.ClientSession) -> Any:
        async with session.post(upstream.url(CHAT_PATH), data=upload()) as response:
            return await response.json()

    assert run(flow, body)["id"] == "x" and upstream.app.received[0].body == b"".join(parts)
    assert flow.stats().passed_through == 1
    assert flow.flush(5) and flow.stats().calls_recorded == 0


def test_unchanged_request_bytes_are_identical(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    raw = b'{"model": "gpt-4o-mini",  "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}'
    upstream.app.enqueue(Canned.json(COMPLETION))

    async def body(session: aiohttp.ClientSession) -> Any:
        headers = {"content-type": "application/json"}
        async with session.post(upstream.url(CHAT_PATH), data=raw, headers=headers) as response:
            return await response.json()

    assert run(flow, body)["choices"][0]["message"]["content"] == "Hi"
    assert upstream.app.received[0].body == raw
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.usage.prompt_tokens == 7 and call.http_status == 200


def test_stream_is_teed_and_injected_usage_stripped(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    flow.policies = (nemoflow.cap_max_tokens(50),)
    upstream.app.enqueue(Canned.sse(STREAM))

    async def body(session: aiohttp.ClientSession) -> bytes:
        async with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}) as response:
            return b"".join([line async for line in response.content])

    received = run(flow, body)
    sent = upstream.app.received[0]
    assert sent.json()["max_tokens"] == 50 and sent.json()["stream_options"] == {"include_usage": True}
    assert sent.header("content-length") == str(len(sent.body)) and sent.header("transfer-encoding") is None
    assert received == STRIPPED  # the usage-only chunk the app never asked for is gone
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.response is not None and call.response.text == "Hello"
    assert call.usage.prompt_tokens == 7 and call.policies_applied


def test_a_rewrite_of_a_compressed_upload_is_compressed_by_aiohttp(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    flow.policies = (nemoflow.cap_max_tokens(50),)
    upstream.app.enqueue(Canned.json(COMPLETION))

    async def body(session: aiohttp.ClientSession) -> Any:
        async with session.post(upstream.url(CHAT_PATH), json=REQUEST, compress="deflate") as response:
            return await response.json()

    assert run(flow, body)["id"] == "x"
    sent = upstream.app.received[0]
    assert sent.header("content-encoding") == "deflate" and sent.header("transfer-encoding") == "chunked"
    assert orjson.loads(zlib.decompress(sent.body))["max_tokens"] == 50
    assert flow.flush(5) and collector.calls[0].request is not None
    assert collector.calls[0].request.params.max_tokens == 50


def test_callers_own_stream_options_are_never_touched(upstream: UpstreamServer, flow: Flow) -> None:
    upstream.app.enqueue(Canned.sse(STREAM))
    raw = orjson.dumps({**REQUEST, "stream": True, "stream_options": {"include_usage": True}})

    async def body(session: aiohttp.ClientSession) -> bytes:
        async with session.post(upstream.url(CHAT_PATH), data=raw) as response:
            return await response.read()

    assert run(flow, body) == b"".join(STREAM)
    assert upstream.app.received[0].body == raw


async def _lines(response: aiohttp.ClientResponse) -> bytes:
    return b"".join([line async for line in response.content])


async def _chunked(response: aiohttp.ClientResponse) -> bytes:
    return b"".join([piece async for piece in response.content.iter_chunked(7)])


async def _any(response: aiohttp.ClientResponse) -> bytes:
    return b"".join([piece async for piece in response.content.iter_any()])


async def _chunks(response: aiohttp.ClientResponse) -> bytes:
    return b"".join([piece async for piece, _ in response.content.iter_chunks()])


async def _read(response: aiohttp.ClientResponse) -> bytes:
    return await response.read()


async def _text(response: aiohttp.ClientResponse) -> bytes:
    return (await response.text()).encode()


async def _exactly(response: aiohttp.ClientResponse) -> bytes:
    head = await response.content.readexactly(10)
    with pytest.raises(asyncio.IncompleteReadError) as short:
        await response.content.readexactly(len(STRIPPED))
    return head + short.value.partial


async def _until_at_eof(response: aiohttp.ClientResponse) -> bytes:
    pieces = []
    while not response.content.at_eof():
        pieces.append(await response.content.readuntil(b"\n\n"))
    return b"".join(pieces)


READERS = [_lines, _chunked, _any, _chunks, _read, _text, _exactly, _until_at_eof]


@pytest.mark.parametrize("reader", READERS, ids=[r.__name__.strip("_") for r in READERS])
def test_every_way_of_reading_is_teed(
    upstream: UpstreamServer,
    flow: Flow,
    collector: Collector,
    reader: Callable[[aiohttp.ClientResponse], Awaitable[bytes]],
) -> None:
    upstream.app.enqueue(Canned.sse(STREAM))

    async def body(session: aiohttp.ClientSession) -> bytes:
        async with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}) as response:
            return await reader(response)

    assert run(flow, body) == STRIPPED
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.usage.total_tokens == 9
    assert call.response is not None and call.response.text == "Hello"


def test_releasing_a_stream_early_cancels_with_partial_text(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    gate = Gate()  # holds everything after the first event, so the partial text is exact
    upstream.app.enqueue(Canned.sse([chunk("Hel"), chunk("lo"), chunk(" world")], gates={1: gate}))

    async def body(session: aiohttp.ClientSession) -> list[LlmCall]:
        async with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}) as response:
            assert await response.content.readany() == chunk("Hel")
        # The response is still referenced: the record was ended by release(), not by the collector.
        assert flow.flush(5)
        return list(collector.calls)

    (call,) = run(flow, body)
    assert call.status is CallStatus.CANCELLED
    assert call.response is not None and call.response.text == "Hel"


def test_closing_before_reading_cancels(upstream: UpstreamServer, flow: Flow, collector: Collector) -> None:
    upstream.app.enqueue(Canned.sse(STREAM))

    async def body(session: aiohttp.ClientSession) -> list[LlmCall]:
        response = await session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True})
        response.close()
        assert flow.flush(5)
        calls = list(collector.calls)
        assert not response.content.at_eof()  # keeps the response alive until here
        return calls

    assert [c.status for c in run(flow, body)] == [CallStatus.CANCELLED]


def test_task_cancellation_cancels_the_record(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    gate = Gate()
    upstream.app.enqueue(Canned.sse([chunk("Hel"), chunk("lo")], gates={1: gate}))

    async def body(session: aiohttp.ClientSession) -> None:
        first_seen = asyncio.Event()
        responses: list[aiohttp.ClientResponse] = []  # kept alive: the record must not come from the GC

        async def consume() -> None:
            async with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}) as response:
                responses.append(response)
                async for _ in response.content:
                    first_seen.set()

        task = asyncio.create_task(consume())
        await first_seen.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert flow.flush(5) and len(collector.calls) == 1 and responses

    run(flow, body)
    (call,) = collector.calls
    assert call.status is CallStatus.CANCELLED and call.exception is not None
    assert call.exception.startswith("CancelledError")
    assert call.response is not None and call.response.text == "Hel"


def test_an_abandoned_response_is_finished_when_collected(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse([chunk("partial")]))

    async def main() -> None:
        session = aiohttp_session(flow)
        response = await session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True})
        del response
        await session.close()  # drops the connection, the last thing that kept the response alive

    with warnings.catch_warnings():  # aiohttp warns about the connection the abandoned response held
        warnings.simplefilter("ignore", ResourceWarning)
        asyncio.run(main())
        gc.collect()
    assert flow.flush(5)
    assert [c.status for c in collector.calls] == [CallStatus.CANCELLED]


def test_upstream_failure_is_recorded_and_reraised(flow: Flow, collector: Collector) -> None:
    for port in refused_port():

        async def body(session: aiohttp.ClientSession, port: int = port) -> None:
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.post(f"http://127.0.0.1:{port}{CHAT_PATH}", json=REQUEST)

        run(flow, body)
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.exception is not None
    assert call.exception.startswith("ClientConnectorError")


def test_a_stream_broken_midway_is_an_error_with_partial_text(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse([chunk("Hel"), chunk("lo"), chunk(finish="stop")], abort_after=2))

    async def body(session: aiohttp.ClientSession) -> bytes:
        pieces: list[bytes] = []
        async with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}) as response:
            with pytest.raises(aiohttp.ClientPayloadError):
                async for piece in response.content.iter_any():
                    pieces.append(piece)
        return b"".join(pieces)

    assert run(flow, body) == chunk("Hel") + chunk("lo")
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.response is not None and call.response.text == "Hello"


def test_error_status_is_classified(upstream: UpstreamServer, flow: Flow, collector: Collector) -> None:
    error = {
        "error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}
    }
    upstream.app.enqueue(Canned.json(error, status=401))

    async def body(session: aiohttp.ClientSession) -> tuple[int, Any]:
        async with session.post(upstream.url(CHAT_PATH), json=REQUEST) as response:
            return response.status, await response.json()

    status, payload = run(flow, body)
    assert status == 401 and payload["error"]["code"] == "invalid_api_key"
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.error is not None and call.error.kind == "authentication"


def test_guardrail_block_reaches_the_caller_and_nothing_is_sent(
    upstream: UpstreamServer, collector: Collector
) -> None:
    flow = Flow(guardrails=[lambda request, ctx: nemoflow.Block("off-topic")], subscribers=[collector])
    upstream.app.enqueue(Canned.sse(STREAM))

    async def body(session: aiohttp.ClientSession) -> None:
        with pytest.raises(nemoflow.GuardrailBlocked, match="off-topic"):
            await session.post(upstream.url(CHAT_PATH), json=REQUEST)

    run(flow, body)
    assert upstream.app.received == []
    assert flow.flush(5) and collector.calls[0].status is CallStatus.BLOCKED
    flow.shutdown()


def test_gzip_encoded_stream_is_decoded_for_the_app_and_the_record(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse(STREAM).gzipped())

    async def body(session: aiohttp.ClientSession) -> bytes:
        async with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}) as response:
            assert response.headers["content-encoding"] == "gzip"
            return b"".join([line async for line in response.content])

    assert run(flow, body) == STRIPPED
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.response is not None and call.response.text == "Hello"
    assert call.usage.total_tokens == 9


def test_the_first_event_reaches_the_app_before_the_rest_is_sent(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    gate = Gate(timeout=5.0)
    upstream.app.enqueue(Canned.sse(STREAM, gates={1: gate}))

    async def body(session: aiohttp.ClientSession) -> tuple[bytes, bytes]:
        async with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}) as response:
            pieces = response.content.iter_any()
            first = await anext(pieces)
            # Still held by the server: a buffering middleware could not have returned yet.
            assert not gate.is_open and not gate.timed_out
            gate.open()
            return first, b"".join([piece async for piece in pieces])

    first, rest = run(flow, body)
    assert not gate.timed_out
    assert first == STREAM[0] and first + rest == STRIPPED
    assert flow.flush(5) and collector.calls[0].status is CallStatus.OK


def test_a_redirect_runs_the_applications_body_through_the_flow_again(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(
        Canned(307, [("location", CHAT_PATH + "?hop=2"), ("content-length", "0")]), Canned.sse(STREAM)
    )

    async def body(session: aiohttp.ClientSession) -> bytes:
        async with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}) as response:
            return await response.read()

    assert run(flow, body) == STRIPPED
    first, second = upstream.app.received
    assert second.query == "hop=2" and second.body == first.body
    assert second.json()["stream_options"] == {"include_usage": True}
    assert flow.flush(5) and collector.calls[-1].status is CallStatus.OK


def test_every_public_stream_reader_method_is_wrapped() -> None:
    # A StreamReader method the wrapper does not override would run on state it never initialised.
    public = {
        name
        for name, member in inspect.getmembers(StreamReader)
        if (not name.startswith("_") or name == "__aiter__")
        and (callable(member) or isinstance(member, property))
    }
    missing = {name for name in public if getattr(_TeeStreamReader, name) is getattr(StreamReader, name)}
    assert not missing, f"_TeeStreamReader must override {sorted(missing)}"


def test_session_factory_puts_nemoflow_first(flow: Flow) -> None:
    async def other(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        return await handler(request)

    async def main() -> tuple[Any, ...]:
        async with aiohttp_session(flow, middlewares=(other,)) as session:
            return tuple(session._middlewares)

    middlewares = asyncio.run(main())
    assert len(middlewares) == 2 and middlewares[1] is other
    assert middlewares[0].__name__ == "nemoflow_middleware"
    assert aiohttp_middleware().__name__ == "nemoflow_middleware"
