"""httpx2 and httpx transports against a real loopback server: unbuffered delivery and broken streams."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from nemoflow import CallStatus, Flow
from tests.support import Collector, chunk
from tests.upstream import Canned, Gate, UpstreamServer

CHAT_PATH = "/v1/chat/completions"
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


STREAM = [
    chunk("Hel"),
    chunk("lo"),
    chunk(finish="stop"),
    chunk(choices=False, usage={"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}),
    b"data: [DONE]\n\n",
]


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as running:
        yield running


@pytest.fixture
def upstream(server: UpstreamServer) -> Iterator[UpstreamServer]:
    server.app.reset()
    yield server
    server.app.reset()


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


def test_the_first_event_reaches_the_app_before_the_rest_is_sent(
    mod: Any, upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    gate = Gate(timeout=5.0)
    upstream.app.enqueue(Canned.sse(STREAM, gates={1: gate}))
    with mod.Client(transport=flow.transport(mod.HTTPTransport())) as client:
        with client.stream("POST", upstream.url(CHAT_PATH), json=REQUEST) as response:
            pieces = response.iter_raw()
            first = next(pieces)
            # The server is still holding the rest: a buffering transport could not have returned yet.
            assert first == STREAM[0] and not gate.is_open and not gate.timed_out
            gate.open()
            rest = b"".join(pieces)
    assert not gate.timed_out
    assert first + rest == b"".join(STREAM[:3]) + STREAM[4]
    assert upstream.app.received[0].json()["stream_options"] == {"include_usage": True}
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.status is CallStatus.OK and call.usage.total_tokens == 6


def test_async_first_event_is_not_buffered(
    mod: Any, upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    import asyncio

    gate = Gate(timeout=5.0)
    upstream.app.enqueue(Canned.sse(STREAM, gates={1: gate}))

    async def main() -> tuple[bytes, bytes]:
        async with mod.AsyncClient(transport=flow.transport(mod.AsyncHTTPTransport())) as client:
            async with client.stream("POST", upstream.url(CHAT_PATH), json=REQUEST) as response:
                pieces = response.aiter_raw()
                first = await pieces.__anext__()
                assert not gate.is_open and not gate.timed_out
                gate.open()
                rest = b"".join([piece async for piece in pieces])
        return first, rest

    first, rest = asyncio.run(main())
    assert first == STREAM[0] and first + rest == b"".join(STREAM[:3]) + STREAM[4]
    assert flow.flush(5) and collector.calls[0].status is CallStatus.OK


def test_connection_reset_mid_stream_keeps_the_partial_reply(
    mod: Any, upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse(STREAM, abort_after=2))
    with mod.Client(transport=flow.transport(mod.HTTPTransport())) as client:
        with pytest.raises(mod.RemoteProtocolError):
            with client.stream("POST", upstream.url(CHAT_PATH), json=REQUEST) as response:
                for _ in response.iter_raw():
                    pass
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.exception is not None
    assert call.response is not None and call.response.text == "Hello"


def test_client_timeout_mid_stream_is_an_error_record(
    mod: Any, upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    gate = Gate(timeout=5.0)
    upstream.app.enqueue(Canned.sse(STREAM, gates={1: gate}))
    timeout = mod.Timeout(5.0, read=0.3)
    with mod.Client(transport=flow.transport(mod.HTTPTransport()), timeout=timeout) as client:
        with pytest.raises(mod.ReadTimeout):
            with client.stream("POST", upstream.url(CHAT_PATH), json=REQUEST) as response:
                for _ in response.iter_raw():
                    pass
    gate.open()
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.exception is not None and "Timeout" in call.exception
    assert call.response is not None and call.response.text == "Hel"


def test_cancelling_the_task_mid_stream_cancels_the_record(
    mod: Any, upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    import asyncio

    gate = Gate(timeout=5.0)
    upstream.app.enqueue(Canned.sse(STREAM, gates={1: gate}))

    async def main() -> None:
        first_seen = asyncio.Event()

        async def consume() -> None:
            async with mod.AsyncClient(transport=flow.transport(mod.AsyncHTTPTransport())) as client:
                async with client.stream("POST", upstream.url(CHAT_PATH), json=REQUEST) as response:
                    async for _ in response.aiter_raw():
                        first_seen.set()  # then wait for more while the server holds the rest

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_seen.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    gate.open()
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.CANCELLED
    assert call.response is not None and call.response.text == "Hel"
