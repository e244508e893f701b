"""The life of a streamed call, across every adapter, against a real loopback upstream.

One matrix over six clients (httpx2 and httpx, each sync and async; requests; aiohttp) and the ways a
streamed chat call can end other than by being read to its end: the connection dropped before any response,
the stream broken midway, a client read timeout, the application stopping early (closing the response, or
cancelling the task that reads it), and a response abandoned to the garbage collector. Each test runs the
scenario twice, once through the plain library and once through nemoflow, and asserts that the application
saw the same thing both times (same bytes, same exception type and message), and that the call ended
exactly one record with the right status, partial reply and error.

Then two faults outside the call itself: records still queued when the interpreter exits reach a JSON Lines
file without a flush (one subprocess per adapter, ``lifecycle_child.py``), and an OTLP endpoint that accepts
connections and never answers neither slows the calls down nor makes ``flow.flush(timeout)`` overrun.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import re
import selectors
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp
import httpx
import httpx2
import orjson
import pytest
import requests

from nemoflow import CallStatus, Flow, LlmCall
from nemoflow_exporter_openinference import OpenInferenceExporter
from tests.support import Collector, chunk
from tests.upstream import Canned, Gate, UpstreamServer

CHAT = "/v1/chat/completions"
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
BODY = orjson.dumps(REQUEST)
HEADERS = {"content-type": "application/json"}
USAGE = {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
STREAM = [
    chunk("Hel"),
    chunk("lo"),
    chunk(" world"),
    chunk(finish="stop"),
    chunk(choices=False, usage=USAGE),
    b"data: [DONE]\n\n",
]
# What the application reads of a complete stream: nemoflow asked for the usage event and strips it.
WHOLE = b"".join(STREAM[:4]) + STREAM[5]
REPLY = {
    "id": "r1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}

BOUND_S = 10.0  # no wait on the network or another thread is longer than this
READ_TIMEOUT_S = 0.3  # the client read timeout of the timeout case (the server holds far longer)
LOOP_TURNS = 100  # event-loop turns given to finalize an abandoned async stream
# One TLS context for every client: building one per client (certifi) costs more than the calls.
TLS = ssl.create_default_context()
ADAPTERS = ("httpx2", "httpx", "requests", "aiohttp")
CHILD = Path(__file__).with_name("lifecycle_child.py")

HTTPX: dict[str, Any] = {"httpx2": httpx2, "httpx": httpx}
# The base class of each library's transport errors: what applications catch today.
LIBRARY_ERRORS: dict[str, type[BaseException]] = {
    "httpx2": httpx2.HTTPError,
    "httpx": httpx.HTTPError,
    "requests": requests.RequestException,
    "aiohttp": aiohttp.ClientError,
}


# ----------------------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as running:
        yield running


@pytest.fixture
def upstream(server: UpstreamServer) -> Iterator[UpstreamServer]:
    server.app.reset()
    yield server
    server.app.reset()


def _request_complete(data: bytes | bytearray) -> int:
    """Length of the first complete HTTP/1.1 request in ``data``, or 0 when it has not all arrived."""
    head_end = data.find(b"\r\n\r\n")
    if head_end == -1:
        return 0
    head = bytes(data[:head_end]).decode("latin-1").lower()
    start = head_end + 4
    length = re.search(r"^content-length:\s*(\d+)\s*$", head, re.MULTILINE)
    if length is not None:
        end = start + int(length.group(1))
        return end if len(data) >= end else 0
    if re.search(r"^transfer-encoding:.*chunked", head, re.MULTILINE):
        last = data.find(b"\r\n0\r\n\r\n", start - 2)
        return last + 7 if last != -1 else 0
    return start


class SilentServer:
    """A bare TCP server on 127.0.0.1 that reads each request whole and sends no response.

    ``mode`` says what then happens to the connection: ``"reset"`` aborts it (RST), ``"close"`` closes it
    cleanly (FIN), ``"hang"`` keeps it open and silent until :meth:`answer` (after which every request held
    or still to come gets an empty ``200``) or :meth:`stop`. One thread serves every connection; it stops
    within a bounded time.
    """

    _ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"

    def __init__(self, mode: Literal["reset", "close", "hang"]) -> None:
        self.mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._buffers: dict[socket.socket, bytearray] = {}
        self._held: dict[socket.socket, int] = {}
        self._stop = threading.Event()
        self._answer = threading.Event()
        self._lock = threading.Lock()
        self.connections = 0
        """Connections accepted."""
        self.requests = 0
        """Complete requests received."""
        self.first_request_at: float | None = None
        """``time.monotonic()`` when the first complete request arrived."""
        self._thread = threading.Thread(target=self._serve, name=f"silent-{self.port}", daemon=True)

    def url(self, path: str) -> str:
        """An absolute URL on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def answer(self) -> None:
        """Stop hanging: answer the held requests and every later one with an empty ``200``."""
        self._answer.set()

    def stop(self) -> None:
        """Close every connection (with a reset) and the listener, and wait for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(BOUND_S)
        assert not self._thread.is_alive(), "the silent server did not stop"

    def _drop(self, selector: selectors.BaseSelector, conn: socket.socket, *, reset: bool) -> None:
        selector.unregister(conn)
        self._buffers.pop(conn, None)
        self._held.pop(conn, None)
        if reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(0.02):
                    if key.fileobj is self._listener:
                        self._accept(selector)
                    else:
                        assert isinstance(key.fileobj, socket.socket)
                        self._read(selector, key.fileobj)
                if self._answer.is_set():
                    for conn, count in list(self._held.items()):
                        if count:
                            self._held[conn] = 0
                            try:
                                conn.sendall(self._ANSWER * count)
                            except OSError:  # the client gave up meanwhile
                                self._drop(selector, conn, reset=True)
        finally:
            for conn in list(self._buffers):
                self._drop(selector, conn, reset=True)
            selector.close()
            self._listener.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ)
        self._buffers[conn] = bytearray()
        self._held[conn] = 0
        with self._lock:
            self.connections += 1

    def _read(self, selector: selectors.BaseSelector, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(selector, conn, reset=False)
            return
        buffer = self._buffers[conn]
        buffer += data
        while (end := _request_complete(buffer)) > 0:
            del buffer[:end]
            with self._lock:
                self.requests += 1
                if self.first_request_at is None:
                    self.first_request_at = time.monotonic()
            if self.mode != "hang":
                self._drop(selector, conn, reset=self.mode == "reset")
                return
            self._held[conn] += 1


# ----------------------------------------------------------------------------------------- clients


def headers(fresh: bool) -> dict[str, str]:
    """The request headers; ``fresh`` asks the server to close the connection after its response.

    Back-to-back calls on one kept-alive connection to the loopback upstream wait out TCP's delayed
    acknowledgement (~40 ms each, the server writes a response in several pieces); a new connection per
    call does not, which keeps a test making many calls fast.
    """
    return {**HEADERS, "connection": "close"} if fresh else HEADERS


class SyncDriver(Protocol):
    """A synchronous HTTP library as an application uses it for a streamed call."""

    library: str

    def client(self, flow: Flow | None) -> AbstractContextManager[Any]: ...

    def open(self, client: Any, url: str, *, fresh: bool = False) -> Any: ...

    def chunks(self, response: Any) -> Iterator[bytes]: ...

    def close(self, response: Any) -> None: ...


class AsyncDriver(Protocol):
    """An asyncio HTTP library as an application uses it for a streamed call."""

    library: str

    def client(self, flow: Flow | None) -> AbstractAsyncContextManager[Any]: ...

    async def open(self, client: Any, url: str, *, fresh: bool = False) -> Any: ...

    def chunks(self, response: Any) -> AsyncIterator[bytes]: ...

    async def close(self, response: Any) -> None: ...


class HttpxSync:
    """httpx2 or httpx, ``Client``; with a flow, the client comes from ``flow.httpx2_client()`` etc."""

    def __init__(self, library: str, read_timeout: float) -> None:
        self.library = library
        self.mod = HTTPX[library]
        self.read_timeout = read_timeout

    @contextmanager
    def client(self, flow: Flow | None) -> Iterator[Any]:
        timeout = self.mod.Timeout(BOUND_S, read=self.read_timeout)
        if flow is None:
            made = self.mod.Client(timeout=timeout, verify=TLS)
        elif self.library == "httpx2":
            made = flow.httpx2_client(timeout=timeout, verify=TLS)
        else:
            made = flow.httpx_client(timeout=timeout, verify=TLS)
        with made:
            yield made

    def open(self, client: Any, url: str, *, fresh: bool = False) -> Any:
        request = client.build_request("POST", url, content=BODY, headers=headers(fresh))
        return client.send(request, stream=True)

    def chunks(self, response: Any) -> Iterator[bytes]:
        return response.iter_bytes()  # type: ignore[no-any-return]

    def close(self, response: Any) -> None:
        response.close()


class RequestsSync:
    """requests, ``Session``; with a flow, the session comes from ``flow.requests_session()``."""

    library = "requests"

    def __init__(self, read_timeout: float) -> None:
        self.read_timeout = read_timeout

    @contextmanager
    def client(self, flow: Flow | None) -> Iterator[requests.Session]:
        with flow.requests_session() if flow is not None else requests.Session() as session:
            yield session

    def open(self, client: Any, url: str, *, fresh: bool = False) -> Any:
        timeout = (BOUND_S, self.read_timeout)
        return client.post(url, data=BODY, headers=headers(fresh), stream=True, timeout=timeout)

    def chunks(self, response: Any) -> Iterator[bytes]:
        return response.iter_content(chunk_size=None)  # type: ignore[no-any-return]

    def close(self, response: Any) -> None:
        response.close()


class HttpxAsync:
    """httpx2 or httpx, ``AsyncClient``; with a flow, from ``flow.async_httpx2_client()`` etc."""

    def __init__(self, library: str, read_timeout: float) -> None:
        self.library = library
        self.mod = HTTPX[library]
        self.read_timeout = read_timeout

    @asynccontextmanager
    async def client(self, flow: Flow | None) -> AsyncIterator[Any]:
        timeout = self.mod.Timeout(BOUND_S, read=self.read_timeout)
        if flow is None:
            made = self.mod.AsyncClient(timeout=timeout, verify=TLS)
        elif self.library == "httpx2":
            made = flow.async_httpx2_client(timeout=timeout, verify=TLS)
        else:
            made = flow.async_httpx_client(timeout=timeout, verify=TLS)
        async with made:
            yield made

    async def open(self, client: Any, url: str, *, fresh: bool = False) -> Any:
        request = client.build_request("POST", url, content=BODY, headers=headers(fresh))
        return await client.send(request, stream=True)

    def chunks(self, response: Any) -> AsyncIterator[bytes]:
        return response.aiter_bytes()  # type: ignore[no-any-return]

    async def close(self, response: Any) -> None:
        await response.aclose()


class AiohttpAsync:
    """aiohttp, ``ClientSession``; with a flow, the session comes from ``flow.aiohttp_session()``."""

    library = "aiohttp"

    def __init__(self, read_timeout: float) -> None:
        self.read_timeout = read_timeout

    @asynccontextmanager
    async def client(self, flow: Flow | None) -> AsyncIterator[aiohttp.ClientSession]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=BOUND_S, sock_read=self.read_timeout)
        made = (
            aiohttp.ClientSession(timeout=timeout) if flow is None else flow.aiohttp_session(timeout=timeout)
        )
        async with made:
            yield made

    async def open(self, client: Any, url: str, *, fresh: bool = False) -> Any:
        return await client.post(url, data=BODY, headers=headers(fresh))

    def chunks(self, response: Any) -> AsyncIterator[bytes]:
        return response.content.iter_any()  # type: ignore[no-any-return]

    async def close(self, response: Any) -> None:
        response.close()


@dataclass(frozen=True)
class Variant:
    """One client of the matrix."""

    library: str
    asynchronous: bool

    @property
    def name(self) -> str:
        return f"{self.library}-{'async' if self.asynchronous else 'sync'}"

    def sync_driver(self, read_timeout: float = BOUND_S) -> SyncDriver:
        assert not self.asynchronous
        if self.library == "requests":
            return RequestsSync(read_timeout)
        return HttpxSync(self.library, read_timeout)

    def async_driver(self, read_timeout: float = BOUND_S) -> AsyncDriver:
        assert self.asynchronous
        if self.library == "aiohttp":
            return AiohttpAsync(read_timeout)
        return HttpxAsync(self.library, read_timeout)


VARIANTS = (
    Variant("httpx2", False),
    Variant("httpx2", True),
    Variant("httpx", False),
    Variant("httpx", True),
    Variant("requests", False),
    Variant("aiohttp", True),
)
ASYNC_VARIANTS = tuple(v for v in VARIANTS if v.asynchronous)


def variant_id(variant: Variant) -> str:
    return variant.name


# ----------------------------------------------------------------------------------------- scenarios


@dataclass
class Outcome:
    """What the application saw, and the records at the moment the call had ended (nemoflow runs only)."""

    pieces: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    records_then: list[LlmCall] | None = None

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)


class Probe:
    """Snapshots a flow's records: delivery flushed first, so what was ended is there."""

    def __init__(self, flow: Flow, recorder: Collector) -> None:
        self.flow = flow
        self.recorder = recorder

    def __call__(self) -> list[LlmCall]:
        assert self.flow.flush(BOUND_S)
        return list(self.recorder.calls)


Scenario = Callable[[Variant, Flow | None, str, Probe | None], Outcome]


def read_to_the_end(
    variant: Variant, flow: Flow | None, url: str, probe: Probe | None, *, read_timeout: float = BOUND_S
) -> Outcome:
    """Read the stream until it ends or the library raises; the exception is what the app caught."""
    seen = Outcome()
    if not variant.asynchronous:
        driver = variant.sync_driver(read_timeout)
        try:
            with driver.client(flow) as client:
                response = driver.open(client, url)
                try:
                    for piece in driver.chunks(response):
                        seen.pieces.append(piece)
                finally:
                    driver.close(response)
        except Exception as exc:
            seen.error = exc
        seen.records_then = probe() if probe else None
        return seen

    adriver = variant.async_driver(read_timeout)

    async def main() -> None:
        try:
            async with adriver.client(flow) as client:
                response = await adriver.open(client, url)
                try:
                    async for piece in adriver.chunks(response):
                        seen.pieces.append(piece)
                finally:
                    await adriver.close(response)
        except Exception as exc:
            seen.error = exc
        seen.records_then = probe() if probe else None

    run_bounded(main())
    return seen


def close_after_the_first_event(
    variant: Variant, flow: Flow | None, url: str, probe: Probe | None
) -> Outcome:
    """Read one chunk, then close the response while the server still holds the rest."""
    seen = Outcome()
    if not variant.asynchronous:
        driver = variant.sync_driver()
        with driver.client(flow) as client:
            response = driver.open(client, url)
            pieces = driver.chunks(response)
            seen.pieces.append(next(pieces))
            driver.close(response)
            # The response and its iterator are still referenced: the close alone ended the record.
            seen.records_then = probe() if probe else None
            del pieces, response
        return seen

    adriver = variant.async_driver()

    async def main() -> None:
        async with adriver.client(flow) as client:
            response = await adriver.open(client, url)
            pieces = adriver.chunks(response)
            seen.pieces.append(await pieces.__anext__())
            await adriver.close(response)
            seen.records_then = probe() if probe else None
            del pieces, response

    run_bounded(main())
    return seen


def cancel_the_reading_task(variant: Variant, flow: Flow | None, url: str, probe: Probe | None) -> Outcome:
    """Cancel the task iterating the stream once it has one chunk (the rest is held by the server)."""
    assert variant.asynchronous
    seen = Outcome()
    adriver = variant.async_driver()

    async def main() -> None:
        async with adriver.client(flow) as client:
            first = asyncio.Event()
            responses: list[Any] = []  # keeps the response alive: the record must not come from the GC

            async def consume() -> None:
                response = await adriver.open(client, url)
                responses.append(response)
                async for piece in adriver.chunks(response):
                    seen.pieces.append(piece)
                    first.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), BOUND_S)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError as exc:
                seen.error = exc
            seen.records_then = probe() if probe else None
            for response in responses:
                await adriver.close(response)

    run_bounded(main())
    return seen


def abandon_after_the_first_event(
    variant: Variant, flow: Flow | None, url: str, probe: Probe | None
) -> Outcome:
    """Read one chunk, drop every reference to the response and its iterator, and collect garbage.

    The client stays open until the records were looked at, so nothing but the collector ended the call.
    """
    seen = Outcome()
    with warnings.catch_warnings():  # the abandoned connection may be collected unclosed
        warnings.simplefilter("ignore", ResourceWarning)
        if not variant.asynchronous:
            driver = variant.sync_driver()
            with driver.client(flow) as client:
                response = driver.open(client, url)
                pieces = driver.chunks(response)
                seen.pieces.append(next(pieces))
                del pieces, response
                gc.collect()
                seen.records_then = probe() if probe else None
            return seen

        adriver = variant.async_driver()

        async def main() -> None:
            async with adriver.client(flow) as client:
                response = await adriver.open(client, url)
                pieces = adriver.chunks(response)
                seen.pieces.append(await pieces.__anext__())
                del pieces, response
                gc.collect()
                # asyncio finalizes an abandoned async generator on the loop (PEP 525), one step per turn
                # through the chain of generators (httpx needs eight): give it the turns, no wall time.
                for _ in range(LOOP_TURNS):
                    await asyncio.sleep(0)
                seen.records_then = probe() if probe else None

        run_bounded(main())
        gc.collect()
    return seen


def run_bounded(coroutine: Awaitable[None]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(BOUND_S * 2):
            await coroutine

    asyncio.run(bounded())


@dataclass
class Result:
    """The same scenario without nemoflow (``plain``) and through it (``traced``), and the flow's records."""

    plain: Outcome
    traced: Outcome
    records: list[LlmCall]
    flow: Flow


def run_both(
    scenario: Scenario,
    variant: Variant,
    url: str,
    before_each: Callable[[], Callable[[], None]] | None = None,
) -> Result:
    """Run ``scenario`` with the plain library, then through a fresh flow; ``before_each`` queues the
    upstream's answer and returns what to do after the run (open its gate)."""
    outcomes: list[Outcome] = []
    recorder = Collector()
    flow = Flow(subscribers=[recorder])
    try:
        for traced in (False, True):
            after = before_each() if before_each is not None else None
            try:
                outcomes.append(
                    scenario(
                        variant, flow if traced else None, url, Probe(flow, recorder) if traced else None
                    )
                )
            finally:
                if after is not None:
                    after()
        assert flow.flush(BOUND_S)
        records = list(recorder.calls)
    finally:
        flow.shutdown()
    return Result(outcomes[0], outcomes[1], records, flow)


def assert_same_to_the_app(result: Result) -> None:
    """nemoflow changed nothing the application saw: the same bytes, the same exception."""
    plain, traced = result.plain, result.traced
    assert traced.body == plain.body
    if plain.error is None:
        assert traced.error is None
        return
    assert traced.error is not None, f"the plain library raised {plain.error!r}, nemoflow's client did not"
    assert type(traced.error) is type(plain.error)
    assert str(traced.error) == str(plain.error)


def the_one_record(result: Result) -> LlmCall:
    """The call's record: exactly one, there as soon as the call ended, and no later duplicate."""
    then = result.traced.records_then
    assert then is not None and len(then) == 1, f"records when the call had ended: {then}"
    assert len(result.records) == 1, f"records in the end: {result.records}"
    assert result.records[0] is then[0]
    stats = result.flow.stats()
    assert stats.calls_recorded == 1 and stats.errors == {}
    return then[0]


def described(error: BaseException) -> str:
    """How a record names an exception."""
    return f"{type(error).__name__}: {error}"


def names_in_chain(error: BaseException) -> set[str]:
    """``error`` and the exceptions it was raised from or while handling, as records name them."""
    names: set[str] = set()
    current: BaseException | None = error
    while current is not None and described(current) not in names:
        names.add(described(current))
        current = current.__cause__ or current.__context__
    return names


def queue(
    upstream: UpstreamServer, *, held: bool = False, abort_after: int | None = None
) -> Callable[[], Callable[[], None]]:
    """Before each run, queue the stream: ``held`` holds all but its first event until the run is over
    (a fresh gate each run), ``abort_after`` drops the connection after that many events."""

    def before() -> Callable[[], None]:
        gate = Gate(timeout=BOUND_S)
        upstream.app.enqueue(Canned.sse(STREAM, gates={1: gate} if held else {}, abort_after=abort_after))
        return gate.open

    return before


# ----------------------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize("mode", ["reset", "close"])
@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_a_connection_dropped_before_any_response(variant: Variant, mode: Literal["reset", "close"]) -> None:
    with SilentServer(mode) as silent:
        result = run_both(read_to_the_end, variant, silent.url(CHAT))
        # One connection and one request each: neither the library nor nemoflow retried the POST.
        assert silent.connections == 2 and silent.requests == 2
    assert_same_to_the_app(result)
    error = result.traced.error
    assert isinstance(error, LIBRARY_ERRORS[variant.library]) and result.traced.pieces == []
    call = the_one_record(result)
    assert call.status is CallStatus.ERROR
    assert call.http_status is None and call.first_byte_time_ns is None and call.response is None
    # The record names the very exception the application caught.
    assert call.exception == described(error)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_a_stream_cut_off_midway_is_an_error_that_keeps_the_partial_reply(
    variant: Variant, upstream: UpstreamServer
) -> None:
    result = run_both(read_to_the_end, variant, upstream.url(CHAT), queue(upstream, abort_after=2))
    assert_same_to_the_app(result)
    assert result.traced.body == STREAM[0] + STREAM[1]
    error = result.traced.error
    assert isinstance(error, LIBRARY_ERRORS[variant.library])
    call = the_one_record(result)
    assert call.status is CallStatus.ERROR and call.http_status == 200
    # The exception the application caught, or the transport error it wraps (requests, see below).
    assert call.exception in names_in_chain(error)
    assert call.response is not None and call.response.text == "Hello"


def test_a_requests_record_names_the_exception_the_app_caught(upstream: UpstreamServer) -> None:
    # Every other adapter records exactly what the application caught (the matrix above checks the chain).
    result = run_both(
        read_to_the_end, Variant("requests", False), upstream.url(CHAT), queue(upstream, abort_after=2)
    )
    assert result.traced.error is not None
    assert the_one_record(result).exception == described(result.traced.error)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_a_client_read_timeout_midway_is_an_error_that_keeps_the_partial_reply(
    variant: Variant, upstream: UpstreamServer
) -> None:
    read_with_timeout = functools.partial(read_to_the_end, read_timeout=READ_TIMEOUT_S)
    result = run_both(read_with_timeout, variant, upstream.url(CHAT), queue(upstream, held=True))
    assert_same_to_the_app(result)
    assert result.traced.pieces == [STREAM[0]]
    error = result.traced.error
    assert isinstance(error, LIBRARY_ERRORS[variant.library])
    call = the_one_record(result)
    assert call.status is CallStatus.ERROR and call.http_status == 200
    assert call.exception in names_in_chain(error)
    assert re.search("time(d )?out", call.exception, re.IGNORECASE)
    assert call.response is not None and call.response.text == "Hel"


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_closing_the_response_after_the_first_event_cancels_with_the_partial_reply(
    variant: Variant, upstream: UpstreamServer
) -> None:
    result = run_both(close_after_the_first_event, variant, upstream.url(CHAT), queue(upstream, held=True))
    assert_same_to_the_app(result)
    assert result.traced.pieces == [STREAM[0]]
    call = the_one_record(result)
    assert call.status is CallStatus.CANCELLED and call.exception is None
    assert call.response is not None and call.response.text == "Hel"


@pytest.mark.parametrize("variant", ASYNC_VARIANTS, ids=variant_id)
def test_cancelling_the_task_reading_the_stream_cancels_with_the_partial_reply(
    variant: Variant, upstream: UpstreamServer
) -> None:
    result = run_both(cancel_the_reading_task, variant, upstream.url(CHAT), queue(upstream, held=True))
    assert_same_to_the_app(result)
    assert result.traced.pieces == [STREAM[0]]
    assert isinstance(result.traced.error, asyncio.CancelledError)
    call = the_one_record(result)
    assert call.status is CallStatus.CANCELLED
    assert call.exception is not None and call.exception.startswith("CancelledError")
    assert call.response is not None and call.response.text == "Hel"


AIOHTTP_KEEPS_ABANDONED_RESPONSES = pytest.mark.xfail(
    strict=True,
    reason="aiohttp's connection keeps an unreleased response reachable (its eof callback), so the "
    "collector cannot end the record until the body ends or the session closes",
)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(v, marks=AIOHTTP_KEEPS_ABANDONED_RESPONSES) if v.library == "aiohttp" else v
        for v in VARIANTS
    ],
    ids=variant_id,
)
def test_an_abandoned_stream_is_cancelled_by_the_garbage_collector_with_the_partial_reply(
    variant: Variant, upstream: UpstreamServer
) -> None:
    result = run_both(abandon_after_the_first_event, variant, upstream.url(CHAT), queue(upstream, held=True))
    assert_same_to_the_app(result)
    assert result.traced.pieces == [STREAM[0]]
    call = the_one_record(result)
    assert call.status is CallStatus.CANCELLED and call.exception is None
    assert call.response is not None and call.response.text == "Hel"


def test_an_abandoned_aiohttp_stream_is_cancelled_once_its_session_lets_go(upstream: UpstreamServer) -> None:
    # What aiohttp users get today (see the xfail above): the record ends, once, when the session closes.
    variant = Variant("aiohttp", True)
    result = run_both(abandon_after_the_first_event, variant, upstream.url(CHAT), queue(upstream, held=True))
    assert_same_to_the_app(result)
    (call,) = result.records
    assert call.status is CallStatus.CANCELLED and call.exception is None
    assert call.response is not None and call.response.text == "Hel"
    assert result.flow.stats().calls_recorded == 1 and result.flow.stats().errors == {}


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_a_stream_read_to_its_end_is_one_ok_record(variant: Variant, upstream: UpstreamServer) -> None:
    # The baseline the other endings differ from, run the same way.
    result = run_both(read_to_the_end, variant, upstream.url(CHAT), queue(upstream))
    assert result.plain.body == b"".join(STREAM) and result.traced.body == WHOLE
    assert result.plain.error is None and result.traced.error is None
    call = the_one_record(result)
    assert call.status is CallStatus.OK and call.exception is None and call.usage.total_tokens == 7
    assert call.response is not None and call.response.text == "Hello world"


# ----------------------------------------------------------------------------------------- interpreter exit


@dataclass
class ExitRun:
    """One child process (``lifecycle_child.py``) and the upstream it calls."""

    server: UpstreamServer
    gate: Gate
    out: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def exit_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ExitRun]]:
    """A child per adapter, all started at once (each with an upstream of its own), as they take a while."""
    runs: dict[str, ExitRun] = {}
    try:
        for adapter in ADAPTERS:
            server = UpstreamServer()
            server.start()
            gate = Gate(timeout=BOUND_S)
            server.app.enqueue(Canned.json(REPLY), Canned.sse(STREAM), Canned.sse(STREAM, gates={1: gate}))
            out = tmp_path_factory.mktemp(f"exit-{adapter}") / "records.jsonl"
            command = [sys.executable, str(CHILD), adapter, server.base_url, str(out)]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            runs[adapter] = ExitRun(server, gate, out, process)
        yield runs
    finally:
        for run in runs.values():
            if run.process.poll() is None:
                run.process.kill()
            run.process.communicate(timeout=BOUND_S)
            run.gate.open()
            run.server.stop()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_records_still_queued_at_interpreter_exit_reach_the_jsonl_file(
    adapter: str, exit_runs: dict[str, ExitRun]
) -> None:
    run = exit_runs[adapter]
    try:
        stdout, stderr = run.process.communicate(timeout=60)
    finally:
        run.gate.open()
    assert run.process.returncode == 0, stderr.decode()
    # When the script ended, delivery was held on the first record: nothing had reached the file.
    assert stdout.decode().split() == ["written-before-exit=0"]
    assert len(run.server.app.received) == 3
    lines = [orjson.loads(line) for line in run.out.read_bytes().splitlines()]
    assert [line["type"] for line in lines] == ["llm_call"] * 3
    assert [line["status"] for line in lines] == ["ok", "ok", "cancelled"]
    assert [line["response"]["text"] for line in lines] == ["hello", "Hello world", "Hel"]
    assert [line["stream"] for line in lines] == [False, True, True]
    assert len({line["call_id"] for line in lines}) == 3


# ----------------------------------------------------------------------------------------- exporter hanging


def timed_calls(variant: Variant, flow: Flow, url: str, count: int) -> float:
    """Seconds taken by ``count`` complete streamed calls on one client (each read to its end)."""

    def check(body: bytes) -> None:
        assert body == WHOLE

    if not variant.asynchronous:
        driver = variant.sync_driver()
        with driver.client(flow) as client:
            start = time.perf_counter()
            for _ in range(count):
                response = driver.open(client, url, fresh=True)
                check(b"".join(driver.chunks(response)))
                driver.close(response)
            return time.perf_counter() - start

    adriver = variant.async_driver()
    took: list[float] = []

    async def main() -> None:
        async with adriver.client(flow) as client:
            start = time.perf_counter()
            for _ in range(count):
                response = await adriver.open(client, url, fresh=True)
                check(b"".join([piece async for piece in adriver.chunks(response)]))
                await adriver.close(response)
            took.append(time.perf_counter() - start)

    run_bounded(main())
    return took[0]


EXPORTER_CALLS = 4  # per client: 24 calls in all, timed with the exporter and without
EXPORT_TIMEOUT_S = 5  # how long the OTLP exporter waits for the silent endpoint, per export
ADDED_BOUND_S = 2.0  # liveness bound on the time the hanging exporter may add to all the calls together
FLUSH_TIMEOUT_S = 0.5


@pytest.mark.parametrize("batch", [True, False], ids=["batch-span-processor", "simple-span-processor"])
def test_an_otlp_endpoint_that_never_answers_neither_slows_calls_nor_overruns_flush(
    batch: bool, upstream: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With batching the OTLP exporter's worker thread is the one stuck on the endpoint (and its flush);
    span by span, nemoflow's delivery thread itself is stuck in ``on_call``. Neither may reach the app."""
    # Export soon after a span ends, so the exporter is stuck on the endpoint while the calls run.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", str(EXPORT_TIMEOUT_S))
    total = EXPORTER_CALLS * len(VARIANTS)
    url = upstream.url(CHAT)
    with SilentServer("hang") as endpoint:
        exporter = OpenInferenceExporter(endpoint=endpoint.url("/v1/traces"), batch=batch)
        collector, bare_collector = Collector(), Collector()
        flow = Flow(subscribers=[collector, exporter])
        bare = Flow(subscribers=[bare_collector])
        try:
            upstream.app.enqueue(*[Canned.sse(STREAM) for _ in range(2 * total + len(VARIANTS))])
            without = with_exporter = 0.0
            started = time.monotonic()
            for variant in VARIANTS:
                timed_calls(variant, bare, url, 1)  # warm-up, not timed
                without += timed_calls(variant, bare, url, EXPORTER_CALLS)
                with_exporter += timed_calls(variant, flow, url, EXPORTER_CALLS)
            calls_done = time.monotonic()
            # The exporter really was stuck on the endpoint while the calls ran.
            assert endpoint.first_request_at is not None and started < endpoint.first_request_at < calls_done
            assert with_exporter - without < ADDED_BOUND_S, (with_exporter, without)

            begin = time.monotonic()
            flushed = flow.flush(FLUSH_TIMEOUT_S)
            took = time.monotonic() - begin
            # Delivery is still waiting on the endpoint: flush says so, within its own timeout.
            assert not flushed and took < FLUSH_TIMEOUT_S + 1.0, took

            # Once the endpoint answers, everything queued is delivered: one record per call.
            endpoint.answer()
            assert flow.flush(BOUND_S) and bare.flush(BOUND_S)
            assert len(collector.calls) == total and flow.stats().calls_recorded == total
            assert {call.status for call in collector.calls} == {CallStatus.OK}
            assert flow.stats().errors == {} and flow.stats().events_dropped == 0
            assert len(bare_collector.calls) == total + len(VARIANTS)
        finally:
            endpoint.answer()  # the exports in flight complete, so shutting the exporter down is quick
            flow.shutdown(BOUND_S)
            bare.shutdown(BOUND_S)
    assert len(collector.calls) == total
