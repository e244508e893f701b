"""An aiohttp (3.12+) client middleware: LLM calls made with a ``ClientSession`` run through a flow.

Install it with ``aiohttp.ClientSession(middlewares=[aiohttp_middleware(flow)])`` or use
:func:`aiohttp_session`. Requests that no codec claims pass to the next handler untouched, their bodies
never read. For LLM requests the middleware runs the flow (guardrails, policies, encode), replaces the
request body when it changed, and swaps ``response.content`` for a reader that tees every byte the
application reads (``read()``, ``json()``, ``text()``, line iteration, ``iter_chunked``, ``iter_any``...)
into the call record. aiohttp has already decompressed what that reader sees.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import BytesPayload, ClientHandlerType, ClientMiddlewareType, ClientRequest, ClientResponse
from aiohttp.http_exceptions import LineTooLong
from aiohttp.streams import AsyncStreamIterator, ChunkTupleAsyncStreamIterator, StreamReader
from yarl import URL

from nemoflow._codec import resolve_codec
from nemoflow._flow import Flow, LlmCallHandle, default_flow
from nemoflow._records import CallStatus
from nemoflow._tee import ResponseTee

__all__ = ["aiohttp_middleware", "aiohttp_session"]


def _status_for(exc: BaseException) -> CallStatus:
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | GeneratorExit):
        return CallStatus.CANCELLED
    return CallStatus.ERROR


class _RewrittenPayload(BytesPayload):
    """The body nemoflow sent instead of the application's; remembers the application's bytes.

    aiohttp reuses a request's payload when it retries or follows a 307/308 redirect, so the next pass
    through the middleware starts again from what the application sent.
    """

    def __init__(self, value: bytes, original: bytes, content_type: str) -> None:
        super().__init__(value, content_type=content_type)
        self.original = original


async def _request_bytes(request: ClientRequest) -> bytes | None:
    """The body the application is sending, or ``None`` when it is streamed (files, async iterables)."""
    body = request.body
    if isinstance(body, _RewrittenPayload):
        return body.original
    if isinstance(body, BytesPayload):  # bytes, str, JSON
        return bytes(await body.as_bytes())
    if isinstance(body, bytes):  # no body at all (b"")
        return body
    return None


def _request_headers(request: ClientRequest) -> Mapping[str, str]:
    if request.compress:  # aiohttp compresses while writing: the payload still holds the plain bytes
        return {name: value for name, value in request.headers.items() if name.lower() != "content-encoding"}
    return request.headers


async def _apply_changes(request: ClientRequest, handle: LlmCallHandle, original: bytes) -> None:
    if handle.url_changed:  # a policy moved the model, and the model is named in the URL (same host)
        request.url = URL(handle.url, encoded=True)
    if handle.body_changed:  # else the application's own payload goes out as it was
        body = request.body
        content_type = body.content_type if isinstance(body, aiohttp.Payload) else "application/json"
        # update_body() recomputes Content-Length (or keeps chunked encoding when aiohttp compresses).
        await request.update_body(_RewrittenPayload(handle.body, original, content_type))
    for name, value in handle.headers_update.items():
        if name.lower() != "content-length":
            request.headers[name] = value


class _TeeStreamReader(StreamReader):
    """Stands in for ``response.content`` and tees what the application reads into the call record.

    Every reading method of ``StreamReader`` is reimplemented over the wrapped reader's ``readany()``
    (or ``readchunk()``), with a buffer of bytes already passed through the tee; producer-side methods
    (``feed_data``, ``feed_eof``, ``on_eof``...) are the wrapped reader's. ``set_exception`` is what
    ``ClientResponse.release()`` and ``close()`` call: before the end of the body it ends the record as
    cancelled.
    """

    # StreamReader.__init__ is not called: all stream state lives in the wrapped reader.
    __slots__ = ("_buf", "_ended", "_inner", "_tee")

    def __init__(self, inner: StreamReader, tee: ResponseTee) -> None:
        self._inner = inner
        self._tee = tee
        self._buf = bytearray()  # bytes already through the tee, not yet read by the application
        self._ended = False  # the wrapped reader is exhausted and the record finished

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self._buf)} bytes buffered, wrapping {self._inner!r}>"

    def __del__(self) -> None:
        # An abandoned response (never read to the end, never released) still ends its record.
        tee = getattr(self, "_tee", None)
        if tee is not None and not tee.finished:
            tee.finish(CallStatus.CANCELLED)

    # ------------------------------------------------------------------------------------ the tee

    def _check(self) -> None:
        exc = self._inner.exception()
        if exc is not None:
            self._tee.finish(CallStatus.ERROR, exc)  # no-op after release()/close() ended it
            raise exc

    def _end_body(self) -> None:
        self._ended = True
        self._buf += self._tee.remainder()
        self._tee.finish(CallStatus.OK)

    def _take(self, n: int) -> bytes:
        if n < 0 or n >= len(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
        else:
            out = bytes(self._buf[:n])
            del self._buf[:n]
        return out

    async def _fill(self) -> bool:
        """Add bytes for the application to the buffer; ``False`` once the body has nothing more."""
        while not self._ended:
            try:
                chunk = await self._inner.readany()
            except BaseException as exc:
                self._tee.finish(_status_for(exc), exc)
                raise
            if not chunk:
                held = len(self._buf)
                self._end_body()
                return len(self._buf) > held
            out = self._tee.pass_through(chunk)
            if out:
                self._buf += out
                return True
        return False

    def _set_chunk_size(self, n: int) -> None:
        setter: Callable[[int], None] | None = getattr(self._inner, "set_read_chunk_size", None)
        if setter is not None:  # aiohttp 3.14 scales its decompression limits with the read size
            setter(n)

    # ------------------------------------------------------------------------------------ reading

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all of the rest when ``n`` is negative); ``b""`` at the end."""
        self._check()
        if not n:
            return b""
        if n < 0:
            self._set_chunk_size(sys.maxsize)
            while await self._fill():
                pass
            return self._take(-1)
        self._set_chunk_size(n)
        if not self._buf:
            await self._fill()
        return self._take(n)

    async def readany(self) -> bytes:
        """Whatever is available, waiting for at least one byte; ``b""`` at the end."""
        self._check()
        if not self._buf:
            await self._fill()
        return self._take(-1)

    async def readchunk(self) -> tuple[bytes, bool]:
        """``(data, end_of_http_chunk)`` like ``StreamReader.readchunk``; ``(b"", False)`` at the end."""
        self._check()
        if self._buf:
            return self._take(-1), False
        while not self._ended:
            try:
                data, end_of_chunk = await self._inner.readchunk()
            except BaseException as exc:
                self._tee.finish(_status_for(exc), exc)
                raise
            if not data:
                if end_of_chunk:
                    return b"", True
                self._end_body()
                return self._take(-1), False
            out = self._tee.pass_through(data)
            if out:
                return out, end_of_chunk
        return b"", False

    async def readuntil(self, separator: bytes = b"\n", *, max_size: int | None = None) -> bytes:
        """Bytes up to and including ``separator`` (or the rest of the body)."""
        if not separator:
            raise ValueError("Separator should be at least one-byte string")
        self._check()
        limit = max_size or self._inner.get_read_buffer_limits()[1]
        start = 0
        while True:
            found = self._buf.find(separator, start)
            if found != -1:
                end = found + len(separator)
                if end > limit:
                    raise LineTooLong(bytes(self._buf[:100]) + b"...", limit)
                return self._take(end)
            if len(self._buf) > limit:
                raise LineTooLong(bytes(self._buf[:100]) + b"...", limit)
            start = max(0, len(self._buf) - len(separator) + 1)
            if not await self._fill():
                return self._take(-1)

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        """One line, newline included (the last one may lack it); ``b""`` at the end."""
        return await self.readuntil(b"\n", max_size=max_line_length)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes.

        Raises:
            asyncio.IncompleteReadError: The body ended first.
        """
        self._check()
        while len(self._buf) < n:
            if not await self._fill():
                partial = self._take(-1)
                raise asyncio.IncompleteReadError(partial, n)
        return self._take(n)

    def read_nowait(self, n: int = -1) -> bytes:
        """What is available now, without waiting (up to ``n`` bytes)."""
        self._check()
        if not self._buf and not self._ended:
            data = self._inner.read_nowait(-1)
            if data:
                self._buf += self._tee.pass_through(data)
            if self._inner.at_eof():
                self._end_body()
        return self._take(n)

    def unread_data(self, data: bytes) -> None:
        """Put ``data`` back in front of the stream (deprecated in aiohttp)."""
        warnings.warn(
            "unread_data() is deprecated and will be removed in future releases (#3260)",
            DeprecationWarning,
            stacklevel=2,
        )
        self._buf[:0] = data

    def __aiter__(self) -> AsyncStreamIterator[bytes]:
        """Iterate line by line."""
        return AsyncStreamIterator(self.readline)

    def iter_chunked(self, n: int) -> AsyncStreamIterator[bytes]:
        """Iterate in chunks of at most ``n`` bytes."""
        self._set_chunk_size(n)
        return AsyncStreamIterator(lambda: self.read(n))

    def iter_any(self) -> AsyncStreamIterator[bytes]:
        """Iterate over data as it arrives."""
        return AsyncStreamIterator(self.readany)

    def iter_chunks(self) -> ChunkTupleAsyncStreamIterator:
        """Iterate over ``(data, end_of_http_chunk)`` tuples."""
        return ChunkTupleAsyncStreamIterator(self)

    # ------------------------------------------------------------------------------------ state

    def at_eof(self) -> bool:
        """Whether the body is exhausted and everything has been read."""
        if self._buf:
            return False
        if not self._ended and self._inner.at_eof() and self._inner.exception() is None:
            self._end_body()  # may hand back bytes the tee held: then not at EOF yet
        return self._ended and not self._buf

    def is_eof(self) -> bool:
        """Whether the server finished sending the body."""
        return self._inner.is_eof()

    async def wait_eof(self) -> None:
        """Wait until the server finished sending the body."""
        await self._inner.wait_eof()

    def exception(self) -> BaseException | None:
        """The error set on the stream, if any."""
        return self._inner.exception()

    def set_exception(self, exc: BaseException, exc_cause: BaseException | None = None) -> None:
        """Fail the stream (``ClientResponse.release()``/``close()`` do): the call is cancelled."""
        if exc_cause is None:
            self._inner.set_exception(exc)
        else:
            self._inner.set_exception(exc, exc_cause)
        self._tee.finish(CallStatus.CANCELLED)  # no-op when the body was read to its end

    def get_read_buffer_limits(self) -> tuple[int, int]:
        """The wrapped reader's ``(low, high)`` water marks."""
        return self._inner.get_read_buffer_limits()

    def set_read_chunk_size(self, n: int) -> None:
        """Raise the wrapped reader's buffer limits to ``n``."""
        self._set_chunk_size(n)

    @property
    def total_bytes(self) -> int:
        """Bytes received so far (after decompression)."""
        return self._inner.total_bytes

    @total_bytes.setter
    def total_bytes(self, value: int) -> None:
        self._inner.total_bytes = value

    @property
    def total_compressed_bytes(self) -> int | None:
        """Bytes received on the wire when the body was compressed."""
        return getattr(self._inner, "total_compressed_bytes", None)

    @total_compressed_bytes.setter
    def total_compressed_bytes(self, value: int | None) -> None:
        self._inner.total_compressed_bytes = value

    @property
    def total_raw_bytes(self) -> int:
        """Bytes received on the wire."""
        return self._inner.total_raw_bytes

    # ------------------------------------------------------------------------------------ producer side

    def on_eof(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the server finished sending the body."""
        self._inner.on_eof(callback)

    def feed_eof(self) -> None:
        """Producer side: the body ended."""
        self._inner.feed_eof()

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        """Producer side: more body arrived."""
        return self._inner.feed_data(data, size)

    def begin_http_chunk_receiving(self) -> None:
        """Producer side: an HTTP chunk starts."""
        self._inner.begin_http_chunk_receiving()

    def end_http_chunk_receiving(self) -> None:
        """Producer side: an HTTP chunk ended."""
        self._inner.end_http_chunk_receiving()


def aiohttp_middleware(flow: Flow | None = None) -> ClientMiddlewareType:
    """An aiohttp client middleware that runs LLM calls through ``flow``.

    Args:
        flow: The flow to run (default: the process-wide :func:`~nemoflow.default_flow`, looked up on
            each request).

    Returns:
        ``async def middleware(request, handler) -> ClientResponse``, for
        ``ClientSession(middlewares=[...])`` or a single request's ``middlewares=``. Put it before
        middlewares that sign the request body, so they sign what is sent.
    """

    async def nemoflow_middleware(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        active = flow if flow is not None else default_flow()
        method, url = request.method, str(request.url)
        codec = resolve_codec(method, url)
        body = await _request_bytes(request) if codec is not None else None
        if codec is None or body is None:  # not an LLM call, or a streamed upload: never read
            active.count_pass_through()
            return await handler(request)
        handle = active.start_call(method, url, _request_headers(request), body, codec=codec)
        if handle is None:
            return await handler(request)
        try:
            if handle.body_changed or handle.headers_update or handle.url_changed:
                await _apply_changes(request, handle, body)
            response = await handler(request)
        except BaseException as exc:
            handle.finish(_status_for(exc), exc)
            raise
        handle.response_started(response.status, response.headers)
        response.content = _TeeStreamReader(response.content, ResponseTee(handle, decoded=True))
        return response

    return nemoflow_middleware


def aiohttp_session(flow: Flow | None = None, **session_kwargs: Any) -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` whose LLM calls run through ``flow`` (call it inside a running loop).

    ``session_kwargs`` go to ``ClientSession``; middlewares given there run after nemoflow's.
    """
    middlewares = (aiohttp_middleware(flow), *session_kwargs.pop("middlewares", ()))
    return aiohttp.ClientSession(middlewares=middlewares, **session_kwargs)
