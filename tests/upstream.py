"""A real loopback upstream for adapter tests: an ASGI app replaying canned responses, served by uvicorn.

``CannedApp`` answers each request with the next queued :class:`Canned` response (status, headers, body
chunks sent one ``http.response.body`` message each) and records every request it received. A response
can hold before any chunk on a :class:`Gate` that the test opens, so a test can prove that the first event
reached the application while the server was still holding the rest. ``abort_after`` drops the
connection mid-body, for broken-stream tests.

``UpstreamServer`` serves an app with uvicorn (h11, plain asyncio) on 127.0.0.1 on a free port, in a
thread, with bounded waits for start and stop. Typical use, with a module-scoped server and a per-test
reset::

    @pytest.fixture(scope="module")
    def server() -> Iterator[UpstreamServer]:
        with UpstreamServer() as running:
            yield running

    @pytest.fixture
    def upstream(server: UpstreamServer) -> Iterator[UpstreamServer]:
        server.app.reset()
        yield server
        server.app.reset()

    def test_something(upstream: UpstreamServer) -> None:
        upstream.app.enqueue(Canned.sse([b"data: {}\\n\\n"]))
        requests.post(upstream.url("/v1/chat/completions"), json={...})
        assert upstream.app.received[0].json() == {...}
"""

from __future__ import annotations

import asyncio
import socket
import threading
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import uvicorn

__all__ = ["Canned", "CannedApp", "Gate", "Received", "UpstreamServer", "refused_port"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

GATE_TIMEOUT_S = 10.0
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class Gate:
    """Holds a response before one of its chunks until the test calls :meth:`open`.

    Opening is thread-safe, so a test can open a gate from its own thread or event loop while the server
    runs in another. A gate never opened lets the response go on after ``timeout`` seconds and sets
    :attr:`timed_out`, so a test that would otherwise deadlock (an adapter that buffers the body) fails
    on an assertion instead of hanging.
    """

    def __init__(self, timeout: float = GATE_TIMEOUT_S) -> None:
        self.timeout = timeout
        self._opened = threading.Event()
        self._reached = threading.Event()
        self.timed_out = False
        """The server stopped waiting because nobody opened the gate in time."""

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` was called (or the server was reset)."""
        return self._opened.is_set()

    @property
    def reached(self) -> bool:
        """Whether the server got to this gate (sent everything before it)."""
        return self._reached.is_set()

    def open(self) -> None:
        """Let the held response go on."""
        self._opened.set()

    def wait_reached(self, timeout: float = GATE_TIMEOUT_S) -> bool:
        """Block until the server reaches this gate; ``False`` if it did not within ``timeout``."""
        return self._reached.wait(timeout)

    async def _pass(self) -> None:
        """Server side: wait until opened (or the timeout)."""
        self._reached.set()
        if not await asyncio.to_thread(self._opened.wait, self.timeout):
            self.timed_out = True


@dataclass
class Canned:
    """One response to replay.

    Attributes:
        status: HTTP status.
        headers: Response headers (without ``content-length`` the body is sent chunked).
        chunks: Body chunks, each sent as its own ``http.response.body`` message (an HTTP chunk).
        gates: ``{i: gate}`` holds the response before ``chunks[i]`` until the gate opens.
        abort_after: Drop the connection after sending this many chunks, without ending the body.
    """

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    chunks: Sequence[bytes] = ()
    gates: Mapping[int, Gate] = field(default_factory=dict)
    abort_after: int | None = None

    @classmethod
    def json(cls, body: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Canned:
        """A JSON response with a ``content-length``."""
        data = orjson.dumps(body)
        return cls(
            status,
            [("content-type", "application/json"), ("content-length", str(len(data))), *headers],
            [data],
        )

    @classmethod
    def sse(
        cls,
        events: Sequence[bytes],
        *,
        status: int = 200,
        headers: Iterable[tuple[str, str]] = (),
        gates: Mapping[int, Gate] | None = None,
        abort_after: int | None = None,
    ) -> Canned:
        """A ``text/event-stream`` response sent chunked, one chunk per element of ``events``."""
        return cls(
            status,
            [("content-type", "text/event-stream"), *headers],
            list(events),
            dict(gates or {}),
            abort_after,
        )

    def gzipped(self) -> Canned:
        """The same response gzip-encoded, each chunk flushed so it can be decoded as it arrives."""
        compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
        chunks = [compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH) for chunk in self.chunks]
        tail = compressor.flush()
        if chunks:
            chunks[-1] += tail
        else:
            chunks = [tail]
        headers = [(k, v) for k, v in self.headers if k.lower() not in ("content-length", "content-encoding")]
        headers.append(("content-encoding", "gzip"))
        if any(k.lower() == "content-length" for k, _ in self.headers):
            headers.append(("content-length", str(sum(len(c) for c in chunks))))
        return replace(self, headers=headers, chunks=chunks)


@dataclass(frozen=True)
class Received:
    """A request the upstream received."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    """As received, names lower-cased, in order."""
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


class CannedApp:
    """An ASGI app that answers each HTTP request with the next queued :class:`Canned` response.

    With nothing queued it answers ``599`` (so a test that forgot to enqueue fails loudly).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Canned] = deque()
        self._gates: list[Gate] = []
        self.received: list[Received] = []
        """Every request received, in order (appended before its response starts)."""

    def enqueue(self, *responses: Canned) -> None:
        """Queue responses, answered in order."""
        with self._lock:
            self._queue.extend(responses)
            for response in responses:
                self._gates.extend(response.gates.values())

    def reset(self) -> None:
        """Forget queued responses and received requests; open every gate so nothing stays held."""
        with self._lock:
            self._queue.clear()
            self.received.clear()
            gates, self._gates = self._gates, []
        for gate in gates:
            gate.open()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
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
        request = Received(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=bytes(body),
        )
        with self._lock:
            self.received.append(request)
            canned = self._queue.popleft() if self._queue else None
        if canned is None:
            canned = Canned(599, [("content-type", "text/plain")], [b"no canned response queued"])
        await self._reply(canned, send)

    @staticmethod
    async def _reply(canned: Canned, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": canned.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in canned.headers],
            }
        )
        for index, chunk in enumerate(canned.chunks):
            if canned.abort_after is not None and index >= canned.abort_after:
                return  # uvicorn closes a connection whose response was left unfinished
            gate = canned.gates.get(index)
            if gate is not None:
                await gate._pass()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if canned.abort_after is not None and canned.abort_after < len(canned.chunks):
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


class UpstreamServer:
    """Serves an ASGI app (a fresh :class:`CannedApp` by default) on 127.0.0.1 in a background thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Both wait a bounded time and raise
    ``RuntimeError`` when the server does not come up or go down.
    """

    def __init__(self, app: CannedApp | None = None) -> None:
        self.app = app if app is not None else CannedApp()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """An absolute URL on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start serving; returns once the server accepts connections."""
        # IPPROTO_TCP named explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say so,
        # and with Nagle on, every second write waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            http="h11",
            loop="asyncio",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = _Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"upstream-{self.port}", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        if not server.ready.wait(timeout) or not server.started:
            self.stop()
            sock.close()
            raise RuntimeError(f"the upstream did not start within {timeout} s")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop serving (held gates are opened first) and wait for the server thread to end."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.app.reset()
        server.should_exit = True
        thread.join(timeout)
        self._server = self._thread = None
        if thread.is_alive():
            raise RuntimeError(f"the upstream did not stop within {timeout} s")

    def __enter__(self) -> UpstreamServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections while the generator is open (bound, never listening).

    Use as a fixture body: ``yield from refused_port()``. Holding the bound socket keeps any other
    process from taking the port, so the refusal is certain.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
