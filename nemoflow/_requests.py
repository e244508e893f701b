"""A transport adapter for ``requests``: LLM calls made through a session run through a flow.

Mount :class:`NemoflowAdapter` on a session (or use :func:`requests_session`). Requests that no codec
claims go to the normal ``HTTPAdapter`` untouched, their bodies never read. For LLM requests the adapter
runs the flow (guardrails, policies, encode), sends the resulting bytes, and replaces ``response.raw``
with a stand-in that tees every byte the application reads into the call record. The tee sits where
``iter_content`` reads (``raw.stream(..., decode_content=True)``), so the record sees the decoded body even
when the server compressed it, and the usage event nemoflow asked for is removed before the application
sees it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, cast

import requests
from requests.adapters import HTTPAdapter

from nemoflow._codec import resolve_codec
from nemoflow._flow import Flow, LlmCallHandle, default_flow
from nemoflow._records import CallStatus
from nemoflow._tee import ResponseTee

if TYPE_CHECKING:
    from urllib3 import BaseHTTPResponse, HTTPResponse

__all__ = ["NemoflowAdapter", "requests_adapter", "requests_session"]

# urllib3 2 sends a str body as UTF-8; urllib3 1 left it to http.client, which uses Latin-1.
_STR_ENCODING = "latin-1" if version("urllib3").startswith("1.") else "utf-8"
# Encodings the record can still decode when the application reads the body undecoded.
_SIDE_DECODABLE = frozenset({"gzip", "x-gzip", "deflate"})

_Timeout = float | tuple[float, float] | tuple[float, None] | None
_Cert = bytes | str | tuple[bytes | str, bytes | str] | None


def _status_for(exc: BaseException) -> CallStatus:
    if isinstance(exc, KeyboardInterrupt | GeneratorExit):
        return CallStatus.CANCELLED
    return CallStatus.ERROR


def _body_bytes(body: object) -> bytes | None:
    """The request body as sent on the wire, or ``None`` for streamed uploads (generators, files)."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        try:
            return body.encode(_STR_ENCODING)
        except UnicodeEncodeError:
            return None
    return None


def _rebuilt_request(request: requests.PreparedRequest, handle: LlmCallHandle) -> requests.PreparedRequest:
    # A copy, so a redirect (which requests rebuilds from the original) runs the flow on the app's bytes.
    sent = request.copy()
    if handle.url_changed:  # a policy moved the model, and the model is named in the URL
        sent.url = handle.url
    if handle.body_changed:  # else the application's own body goes out as it was
        sent.body = handle.body
        sent.headers.pop("Transfer-Encoding", None)
    for name, value in handle.headers_update.items():
        sent.headers[name] = value
    return sent


def _as_requests_error(exc: BaseException) -> BaseException:
    """The exception the application sees for ``exc``: requests wraps urllib3's read errors.

    ``Response.iter_content`` (behind ``.content``, ``iter_lines``, ``json()``) re-raises urllib3's
    ``ProtocolError`` as ``ChunkedEncodingError``, ``ReadTimeoutError`` as ``ConnectionError`` and so
    on; the record names what the application caught, not what the tee saw underneath.
    """
    from urllib3 import exceptions as urllib3_errors

    wrappers: tuple[tuple[type[BaseException], type[BaseException]], ...] = (
        (urllib3_errors.ProtocolError, requests.exceptions.ChunkedEncodingError),
        (urllib3_errors.DecodeError, requests.exceptions.ContentDecodingError),
        (urllib3_errors.ReadTimeoutError, requests.exceptions.ConnectionError),
        (urllib3_errors.SSLError, requests.exceptions.SSLError),
    )
    for source, wrapper in wrappers:
        if isinstance(exc, source):
            return wrapper(exc)
    return exc


class _TeeRaw:
    """Stands in for ``response.raw`` (a urllib3 response) and tees what the application reads.

    ``read``, ``read1``, ``readinto``, ``stream``, ``read_chunked`` and line iteration go through the tee;
    ``close``, ``release_conn`` and ``drain_conn`` before the end of the body end the record as
    cancelled. Everything else is the urllib3 response's own.
    """

    __slots__ = ("_encoding", "_handle", "_inner", "_pending", "_side", "_tee")

    def __init__(self, inner: BaseHTTPResponse, handle: LlmCallHandle) -> None:
        self._inner = inner
        self._handle = handle
        self._tee = ResponseTee(handle, decoded=True)
        self._pending = bytearray()  # bytes for the app beyond what one read(amt) may return
        encoding = (inner.headers.get("content-encoding") or "").strip().lower()
        self._encoding = encoding if encoding not in ("", "identity") else None
        self._side: Any = None  # a zlib decompressor for the record when the app reads undecoded bytes

    # ------------------------------------------------------------------------------------ delegation

    def __getattr__(self, name: str) -> Any:
        if name in _TeeRaw.__slots__:  # not set yet (a failed __init__): never recurse
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _TeeRaw.__slots__:
            object.__setattr__(self, name, value)
        else:  # e.g. ``response.raw.decode_content = True``
            setattr(self._inner, name, value)

    # ------------------------------------------------------------------------------------ the tee

    def _give(self, chunk: bytes, decode_content: bool | None) -> bytes:
        """Record ``chunk`` and return the bytes the application gets for it."""
        decoded = self._inner.decode_content if decode_content is None else decode_content
        if self._encoding is None or decoded:
            return self._tee.pass_through(chunk)
        # The app reads the body still encoded: it gets those bytes as they are (the injected usage
        # event cannot be found in them), and the record gets a decoded copy when we can make one.
        if self._encoding in _SIDE_DECODABLE:
            try:
                if self._side is None:
                    self._side = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header
                self._handle.stream_chunk(self._side.decompress(chunk), decoded=True)
            except zlib.error:
                self._encoding = "undecodable"
        return chunk

    def _end(self) -> bytes:
        """The body is exhausted: finish the record and return what the tee still held."""
        rest = self._tee.remainder()
        self._tee.finish(CallStatus.OK)
        return rest

    def _fail(self, exc: BaseException) -> None:
        recorded = None if isinstance(exc, GeneratorExit) else _as_requests_error(exc)
        self._tee.finish(_status_for(exc), recorded)

    def _fill(self, next_bytes: Callable[[], bytes], decode_content: bool | None) -> None:
        """Read from the connection until bytes are pending for the application, or the body has ended."""
        while not self._pending:
            data = next_bytes()
            if not data:
                self._pending += self._end()
                break
            self._pending += self._give(data, decode_content)

    def _take(self, amt: int | None) -> bytes:
        if amt is None:
            out = bytes(self._pending)
            self._pending.clear()
        else:
            out = bytes(self._pending[:amt])
            del self._pending[:amt]
        return out

    # ------------------------------------------------------------------------------------ reading

    def read(
        self, amt: int | None = None, decode_content: bool | None = None, cache_content: bool = False
    ) -> bytes:
        """Read like ``urllib3.HTTPResponse.read``; returns ``b""`` only at the end of the body."""
        if amt is not None and amt < 0:
            amt = None
        if amt == 0:
            return b""
        try:
            if amt is None:
                data = self._inner.read(None, decode_content, cache_content)
                self._pending += self._give(data, decode_content)
                self._pending += self._end()
                return self._take(None)
            self._fill(lambda: self._inner.read(amt, decode_content), decode_content)
        except BaseException as exc:
            self._fail(exc)
            raise
        return self._take(amt)

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        """Read like ``urllib3.HTTPResponse.read1`` (at most one read from the connection per call)."""
        if amt is not None and amt < 0:
            amt = None
        if amt == 0:
            return b""
        try:
            self._fill(lambda: self._inner.read1(amt, decode_content), decode_content)
        except BaseException as exc:
            self._fail(exc)
            raise
        return self._take(amt)

    def readinto(self, b: bytearray | memoryview) -> int:
        """Read into ``b`` (for the ``io`` machinery)."""
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def _tee_iter(self, chunks: Iterator[bytes], decode_content: bool | None) -> Iterator[bytes]:
        if self._pending:
            yield self._take(None)
        try:
            for chunk in chunks:
                out = self._give(chunk, decode_content)
                if out:
                    yield out
            rest = self._end()
        except BaseException as exc:
            self._fail(exc)
            raise
        if rest:
            yield rest

    def stream(self, amt: int | None = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        """Yield the body as it arrives (what ``iter_content`` uses), through the tee."""
        return self._tee_iter(self._inner.stream(amt, decode_content), decode_content)

    def read_chunked(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        """Yield the body chunk by chunk (chunked transfer encoding), through the tee."""
        return self._tee_iter(self._inner.read_chunked(amt, decode_content), decode_content)

    def __iter__(self) -> Iterator[bytes]:
        """Yield the decoded body line by line (each line keeps its newline)."""
        partial = b""
        for chunk in self.stream(decode_content=True):
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()
            for line in lines:
                yield line + b"\n"
        if partial:
            yield partial

    # ------------------------------------------------------------------------------------ endings

    def close(self) -> None:
        """Close the connection; before the end of the body the record ends as cancelled."""
        try:
            self._inner.close()
        finally:
            self._tee.finish(CallStatus.CANCELLED)  # no-op when the body was read to its end

    def release_conn(self) -> None:
        """Give the connection back to its pool; before the end of the body the call is cancelled."""
        try:
            self._inner.release_conn()
        finally:
            self._tee.finish(CallStatus.CANCELLED)

    def drain_conn(self) -> None:
        """Discard the rest of the body; the application stopped reading, so the call is cancelled."""
        try:
            self._inner.drain_conn()
        finally:
            self._tee.finish(CallStatus.CANCELLED)

    def __del__(self) -> None:
        # An abandoned response (never read to the end, never closed) still ends its record.
        tee = getattr(self, "_tee", None)
        if tee is not None and not tee.finished:
            tee.finish(CallStatus.CANCELLED)


class NemoflowAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose LLM calls run through a flow; every other request passes untouched.

    Args:
        flow: The flow to run (default: the process-wide :func:`~nemoflow.default_flow`, looked up on
            each request).
        **adapter_kwargs: Passed to ``HTTPAdapter`` (``pool_connections``, ``pool_maxsize``,
            ``max_retries``, ``pool_block``).
    """

    _flow: Flow | None = None  # a class default, so an unpickled adapter falls back to the default flow

    def __init__(self, flow: Flow | None = None, **adapter_kwargs: Any) -> None:
        """Create the adapter."""
        super().__init__(**adapter_kwargs)
        self._flow = flow

    @property
    def flow(self) -> Flow:
        """The flow this adapter runs."""
        return self._flow if self._flow is not None else default_flow()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: _Timeout = None,
        verify: bool | str = True,
        cert: _Cert = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send ``request``; an LLM call goes through the flow and its response body is teed.

        Raises:
            GuardrailBlocked: A guardrail refused the request; nothing was sent.
        """
        flow = self.flow
        method, url = request.method or "GET", request.url or ""
        codec = resolve_codec(method, url)
        body = _body_bytes(request.body) if codec is not None else None
        if codec is None or body is None:  # not an LLM call, or a streamed upload: never read
            flow.count_pass_through()
            return super().send(request, stream, timeout, verify, cert, proxies)
        handle = flow.start_call(method, url, request.headers, body, codec=codec)
        if handle is None:
            return super().send(request, stream, timeout, verify, cert, proxies)
        rewritten = handle.body_changed or handle.headers_update or handle.url_changed
        sent = _rebuilt_request(request, handle) if rewritten else request
        try:
            # HTTPAdapter always leaves the body on the connection (urllib3 preload_content=False).
            response = super().send(sent, True, timeout, verify, cert, proxies)
        except BaseException as exc:
            handle.finish(_status_for(exc), exc)
            raise
        handle.response_started(response.status_code, response.headers)
        response.raw = cast("HTTPResponse", _TeeRaw(response.raw, handle))
        if not stream:
            _ = response.content  # what Session.send does for stream=False; the record ends here
        return response


def requests_adapter(flow: Flow | None = None, **adapter_kwargs: Any) -> NemoflowAdapter:
    """A :class:`NemoflowAdapter` for ``flow``, to mount on a session of your own.

    Example:
        ``session.mount("https://", nemoflow.requests_adapter(flow))``
    """
    return NemoflowAdapter(flow, **adapter_kwargs)


def requests_session(flow: Flow | None = None, **adapter_kwargs: Any) -> requests.Session:
    """A ``requests.Session`` with a :class:`NemoflowAdapter` mounted on ``http://`` and ``https://``."""
    session = requests.Session()
    adapter = NemoflowAdapter(flow, **adapter_kwargs)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
