"""A loopback upstream that replays recorded provider wire transcripts (``spec/fixtures``) to the real SDKs.

:class:`Replay` is a plain ASGI app: a test scripts the replies it wants (:meth:`Replay.expect`), the SDK
sends its requests, and every request is answered by the next scripted reply, in order, and kept in
:attr:`Replay.received`. :class:`ReplayServer` serves it with uvicorn on ``127.0.0.1`` (a free port), in a
thread started and stopped with bounded waits.

Replies are bytes fixed before the request arrives, so the SDK reads exactly the same bytes with and
without nemoflow in between. Streams are sent event by event, each event cut in two, so a response
reaches the client in many small chunks with events split across them. One reply depends on the
request: an OpenAI Chat stream (:func:`openai_chat_stream`) sends its usage-only chunk only when the
request asked for it (``stream_options.include_usage``), as OpenAI does.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "fixtures"

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def load_fixture(codec: str, name: str) -> dict[str, Any]:
    """The fixture ``spec/fixtures/<codec>/<name>.json``."""
    data: dict[str, Any] = json.loads((FIXTURES / codec / f"{name}.json").read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------------------------- exchanges


@dataclass(frozen=True)
class Received:
    """One request as the upstream saw it."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """A scripted HTTP reply: status, headers, and the body in the pieces it is sent in."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    pieces: tuple[bytes, ...] = ()

    @property
    def body(self) -> bytes:
        """The whole body."""
        return b"".join(self.pieces)


Responder = Callable[[Received], Reply]
"""A reply that depends on the request."""


def json_reply(payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON reply (the body is serialized once, here)."""
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    merged = {"content-type": "application/json", **(headers or {})}
    merged["content-length"] = str(len(body))
    return Reply(status, tuple(merged.items()), (body,))


def fixture_reply(codec: str, name: str) -> Reply:
    """The recorded response of a ``response`` fixture, as a 200 JSON reply."""
    fixture = load_fixture(codec, name)
    assert fixture["kind"] == "response", f"{codec}/{name} is a {fixture['kind']} fixture"
    return json_reply(fixture["input"])


def error_reply(codec: str, name: str, *, headers: Mapping[str, str] | None = None) -> Reply:
    """The recorded error of an ``error`` fixture (its status, headers and body); ``headers`` win."""
    fixture = load_fixture(codec, name)
    assert fixture["kind"] == "error", f"{codec}/{name} is a {fixture['kind']} fixture"
    recorded = {key.lower(): value for key, value in (fixture.get("headers") or {}).items()}
    recorded.pop("content-length", None)
    recorded.update({key.lower(): value for key, value in (headers or {}).items()})
    return json_reply(fixture["body"], status=int(fixture["status"]), headers=recorded)


_EVENT_END = (b"\r\n\r\n", b"\n\n", b"\r\r")


def sse_events(stream: bytes) -> list[bytes]:
    """Split a server-sent-event stream into its events, terminators included (bytes kept exactly)."""
    events: list[bytes] = []
    start = 0
    while start < len(stream):
        ends = [(found, marker) for marker in _EVENT_END if (found := stream.find(marker, start)) != -1]
        if not ends:
            events.append(stream[start:])
            break
        found, marker = min(ends, key=lambda item: (item[0], -len(item[1])))
        events.append(stream[start : found + len(marker)])
        start = found + len(marker)
    return events


def _cut(events: Iterable[bytes]) -> tuple[bytes, ...]:
    """Every event in two pieces, so events arrive split across reads."""
    pieces: list[bytes] = []
    for event in events:
        middle = max(1, len(event) // 2)
        pieces.extend(piece for piece in (event[:middle], event[middle:]) if piece)
    return tuple(pieces)


def sse_reply(events: Iterable[bytes]) -> Reply:
    """A ``text/event-stream`` reply of ``events``."""
    headers = (("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"))
    return Reply(200, headers, _cut(events))


def stream_fixture_events(codec: str, name: str) -> list[bytes]:
    """The events of a ``stream`` fixture, as recorded."""
    fixture = load_fixture(codec, name)
    assert fixture["kind"] == "stream", f"{codec}/{name} is a {fixture['kind']} fixture"
    return sse_events(fixture["sse"].encode("utf-8"))


def stream_reply(codec: str, name: str) -> Reply:
    """The recorded stream of a ``stream`` fixture, replayed as it is."""
    return sse_reply(stream_fixture_events(codec, name))


def is_usage_only_chunk(event: bytes) -> bool:
    """An OpenAI Chat chunk with ``"choices": []`` and a usage object (what ``include_usage`` adds)."""
    lines = event.replace(b"\r\n", b"\n").split(b"\n")
    data = b"".join(line[5:].lstrip() for line in lines if line.startswith(b"data:"))
    try:
        chunk = json.loads(data)
    except ValueError:
        return False
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


def openai_chat_stream(name: str) -> Responder:
    """An ``openai-chat`` stream fixture that reports usage only when asked, as OpenAI does.

    The recorded stream ends with its usage-only chunk; it is sent only when the request had
    ``stream_options.include_usage`` true.
    """
    events = stream_fixture_events("openai-chat", name)
    assert any(is_usage_only_chunk(event) for event in events), f"{name} has no usage chunk"
    with_usage = sse_reply(events)
    without_usage = sse_reply(event for event in events if not is_usage_only_chunk(event))

    def respond(request: Received) -> Reply:
        options = request.json().get("stream_options") or {}
        return with_usage if options.get("include_usage") is True else without_usage

    return respond


# --------------------------------------------------------------------------------------------- the app


@dataclass
class Replay:
    """The ASGI app: answers each request with the next scripted reply, and keeps what it received."""

    received: list[Received] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    _script: deque[Reply | Responder] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, *replies: Reply | Responder) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Forget the script and what was received."""
        with self._lock:
            self._script.clear()
            self.received.clear()
            self.unexpected.clear()

    def take(self, count: int) -> list[Received]:
        """The requests received so far, checking there were exactly ``count``; forgets them."""
        with self._lock:
            taken = list(self.received)
            self.received.clear()
        assert len(taken) == count, f"expected {count} requests, the upstream got {len(taken)}"
        return taken

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point (HTTP only)."""
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        request = Received(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={
                key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]
            },
            body=b"".join(chunks),
        )
        with self._lock:
            self.received.append(request)
            scripted = self._script.popleft() if self._script else None
            if scripted is None:
                self.unexpected.append(f"{request.method} {request.path}")
        if scripted is None:
            reply = json_reply({"error": {"message": "replay: nothing scripted"}}, status=418)
        elif isinstance(scripted, Reply):
            reply = scripted
        else:
            reply = scripted(request)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(key.encode("latin-1"), value.encode("latin-1")) for key, value in reply.headers],
            }
        )
        pieces = reply.pieces or (b"",)
        for index, piece in enumerate(pieces):
            more = index < len(pieces) - 1
            await send({"type": "http.response.body", "body": piece, "more_body": more})


# --------------------------------------------------------------------------------------------- the server


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


class ReplayServer:
    """Serves a :class:`Replay` with uvicorn on a free loopback port, in a thread of its own."""

    def __init__(self, app: Replay) -> None:
        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            http="h11",
            ws="none",
            loop="asyncio",
            server_header=False,
            date_header=False,  # replies must be the same bytes every time (google-genai exposes headers)
            timeout_graceful_shutdown=STOP_TIMEOUT_S,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, name="replay-upstream", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._server.ready.set()  # wake a waiting start() when serving failed

    def start(self) -> None:
        """Start serving; fails when the server is not up within ``START_TIMEOUT_S``."""
        self._thread.start()
        if not self._server.ready.wait(START_TIMEOUT_S) or not self._server.started:
            self.stop()
            raise RuntimeError(f"the replay upstream did not start within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Stop serving and wait (bounded) for the thread to end."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError(f"the replay upstream did not stop within {STOP_TIMEOUT_S:.0f} s")
