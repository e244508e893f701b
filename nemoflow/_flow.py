"""The runtime: a :class:`Flow` holds hooks and subscribers and drives each LLM call, without doing I/O.

HTTP adapters call :meth:`Flow.start_call` with the request they are about to send and get back an
:class:`LlmCallHandle` (or ``None`` for traffic nemoflow leaves alone); they send ``handle.body``, then
report the response through the handle. Scopes and tool runs (``flow.scope``, ``flow.tool``) live in
``contextvars``, so threads and asyncio tasks never see each other's parents.

Fail-open: an error inside nemoflow (codec, hook, subscriber) never changes the application's call; it is
logged once per kind and counted in :meth:`Flow.stats`. With ``fail_open=False`` it is raised instead. A
guardrail block is the one deliberate failure.
"""

from __future__ import annotations

import contextvars
import gzip
import json
import logging
import random
import re
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType, TracebackType
from typing import Any, Literal

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace

from nemoflow._codec import LlmCodec, StreamDecoder, resolve_codec
from nemoflow._cost import PriceTable, compute_cost
from nemoflow._dispatch import Dispatcher, delivery_thread_active
from nemoflow._errors import CodecError, GuardrailBlocked, PolicyError
from nemoflow._hooks import Block, CallContext, GuardrailLike, PolicyLike, Sanitizer, hook_name
from nemoflow._model import AnnotatedLlmError, AnnotatedLlmRequest, AnnotatedLlmResponse, FinishReason, Usage
from nemoflow._records import CallStatus, FlowStats, LlmCall, ScopeKind, ScopeRecord, Subscriber
from nemoflow._sse import SSEDecoder
from nemoflow.codec_support import STREAM_TEXT_LIMIT

__all__ = ["Flow", "LlmCallHandle", "Scope", "ToolRun", "configure", "default_flow"]

_log = logging.getLogger("nemoflow")

_RECORD_BLOCK_BYTES = 32 * 1024
"""Stream bytes gathered after the first token before they are decoded for the record."""


@dataclass(frozen=True, slots=True)
class _Parent:
    """The innermost open scope, as seen by code running inside it."""

    span_id: int
    trace_id: int
    path: tuple[str, ...]
    session_id: str | None
    user_id: str | None
    outer: Any = None
    """The application's OpenTelemetry context the root scope opened under (its sampling, its tracestate)."""


_current: contextvars.ContextVar[_Parent | None] = contextvars.ContextVar("nemoflow_scope", default=None)


def _new_span_id() -> int:
    return random.getrandbits(64) or 1


def _new_trace_id() -> int:
    return random.getrandbits(128) or 1


def _outer_otel_context() -> Any:
    """The application's OpenTelemetry context, when a span of its own is active (else ``None``)."""
    if otel_trace.get_current_span().get_span_context().is_valid:
        return otel_context.get_current()
    return None


def _root_trace_id(outer: Any) -> int:
    """The trace id of a new root: the application's span's when ``outer`` holds one, else a fresh one."""
    if outer is not None:
        span_context = otel_trace.get_current_span(outer).get_span_context()
        if span_context.is_valid:
            return int(span_context.trace_id)
    return _new_trace_id()


def _trace_context_headers(trace_id: int, span_id: int, outer: Any) -> dict[str, str]:
    """W3C Trace Context headers naming ``span_id`` in ``trace_id``.

    Under an application span (``outer``) its sampling decision and ``tracestate`` carry over, so a
    downstream service samples as the application did; otherwise the call is sampled (nemoflow records
    every call) and there is no ``tracestate``.
    """
    flags = "01"
    headers: dict[str, str] = {}
    if outer is not None:
        span_context = otel_trace.get_current_span(outer).get_span_context()
        if span_context.is_valid:
            flags = f"{int(span_context.trace_flags) & 0xFF:02x}"
            state = span_context.trace_state.to_header() if span_context.trace_state else ""
            if state:
                headers["tracestate"] = state
    headers["traceparent"] = f"00-{trace_id:032x}-{span_id:016x}-{flags}"
    return headers


# ----------------------------------------------------------------------------------------- scopes


class Scope:
    """An open scope: use as ``with flow.scope(...)`` or ``async with flow.scope(...)``."""

    __slots__ = ("_attributes", "_flow", "_kind", "_name", "_record", "_session_id", "_token", "_user_id")

    def __init__(
        self,
        flow: Flow,
        name: str,
        kind: ScopeKind,
        session_id: str | None,
        user_id: str | None,
        attributes: Mapping[str, Any],
    ) -> None:
        """Prepare the scope; it opens on ``__enter__``."""
        self._flow = flow
        self._name = name
        self._kind = kind
        self._session_id = session_id
        self._user_id = user_id
        self._attributes = dict(attributes)
        self._record: ScopeRecord | None = None
        self._token: contextvars.Token[_Parent | None] | None = None

    @property
    def span_id(self) -> int | None:
        """Our id of this scope once it is open."""
        return self._record.span_id if self._record is not None else None

    def _extra_end_fields(self) -> dict[str, Any]:
        return {}

    def __enter__(self) -> Scope:
        """Open the scope: later LLM calls and scopes in this context become its children."""
        parent = _current.get()
        span_id = _new_span_id()
        path: tuple[str, ...] = ()
        if parent is None:
            outer = _outer_otel_context()
            trace_id, parent_id = _root_trace_id(outer), None
            session_id, user_id = self._session_id, self._user_id
            inherited = outer
        else:
            trace_id, parent_id, path = parent.trace_id, parent.span_id, parent.path
            session_id = self._session_id or parent.session_id
            user_id = self._user_id or parent.user_id
            outer = None
            inherited = parent.outer
        self._record = ScopeRecord(
            span_id=span_id,
            parent_id=parent_id,
            trace_id=trace_id,
            kind=self._kind,
            name=self._name,
            start_time_ns=time.time_ns(),
            session_id=session_id,
            user_id=user_id,
            attributes=MappingProxyType(self._attributes),
            otel_context=outer,
            **self._start_fields(),
        )
        self._token = _current.set(
            _Parent(span_id, trace_id, (*path, self._name), session_id, user_id, inherited)
        )
        self._flow._dispatcher.scope_started(self._record)
        return self

    def _start_fields(self) -> dict[str, Any]:
        return {}

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the scope; an exception marks it as failed (and keeps propagating)."""
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # exited in another context (generator finalized elsewhere): keep going
                _current.set(None)
            self._token = None
        record = self._record
        if record is None:
            return
        error = f"{type(exc).__name__}: {exc}" if exc is not None else None
        finished = replace(
            record,
            end_time_ns=time.time_ns(),
            status="error" if exc is not None else "ok",
            error=error,
            **self._extra_end_fields(),
        )
        self._flow._dispatcher.scope_ended(finished)

    async def __aenter__(self) -> Scope:
        """Async form of ``__enter__``."""
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Async form of ``__exit__``."""
        self.__exit__(exc_type, exc, tb)


class ToolRun(Scope):
    """An open tool run (``with flow.tool(...) as t: t.result = ...``)."""

    __slots__ = ("_arguments", "_tool_call_id", "result")

    def __init__(
        self, flow: Flow, name: str, arguments: Any, tool_call_id: str | None, attributes: Mapping[str, Any]
    ) -> None:
        """Prepare the tool run; it opens on ``__enter__``."""
        super().__init__(flow, name, "TOOL", None, None, attributes)
        self._arguments = arguments
        self._tool_call_id = tool_call_id
        self.result: Any = None
        """Set this to what the tool returned; it is recorded when the block ends."""

    def _start_fields(self) -> dict[str, Any]:
        return {"tool_arguments": self._arguments, "tool_call_id": self._tool_call_id}

    def _extra_end_fields(self) -> dict[str, Any]:
        return {"tool_result": self.result}

    def __enter__(self) -> ToolRun:
        """Open the tool run."""
        super().__enter__()
        return self

    async def __aenter__(self) -> ToolRun:
        """Async form of ``__enter__``."""
        return self.__enter__()


# ----------------------------------------------------------------------------------------- calls


def _attempt_from(headers: Mapping[str, str]) -> int:
    """The try number from ``headers`` (lower-case names): the openai and anthropic SDKs count retries."""
    value = headers.get("x-stainless-retry-count")  # 0 for the first try
    try:
        return int(value) + 1 if value is not None else 1
    except ValueError:
        return 1


def _lowercase_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """One pass over the headers into a plain dict with lower-case names, so lookups cost one probe.

    httpx ``Headers`` and requests' ``CaseInsensitiveDict`` answer ``get`` by scanning; the hot path reads
    several headers per call, so it pays for one scan instead.
    """
    return {key.lower(): value for key, value in headers.items()}


_CREDENTIAL_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
)
_CREDENTIAL_PARAMETERS = ("key", "api_key", "api-key", "apikey", "access_token", "token")
_SHORTEST_SECRET = 8  # shorter values would redact ordinary words


def _request_secrets(headers: Mapping[str, str], url: str) -> tuple[str, ...]:
    """The credential values a request carried (header values, their tokens, ``key=`` values), longest first.

    Providers echo keys back (``Incorrect API key provided: sk-...``) and HTTP libraries quote URLs in
    their exception messages, so recorded error text is searched for these before it is kept.
    """
    found: set[str] = set()
    for name in _CREDENTIAL_HEADERS:
        value = headers.get(name)
        if not value:
            continue
        found.add(value.strip())
        found.add(value.partition(" ")[2].strip())  # the token of "Bearer <token>", "Basic <token>"
        if name == "cookie":
            found.update(part.partition("=")[2].strip() for part in value.split(";"))
    query_start = url.find("?")
    if query_start != -1:
        for item in url[query_start + 1 :].split("&"):
            name, _, value = item.partition("=")
            if name.lower() in _CREDENTIAL_PARAMETERS and value:
                found.update((value, urllib.parse.unquote(value)))
    return tuple(sorted((v for v in found if len(v) >= _SHORTEST_SECRET), key=len, reverse=True))


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    return text


def _redact_error(error: AnnotatedLlmError, secrets: tuple[str, ...]) -> AnnotatedLlmError:
    """``error`` with every credential value replaced in its texts (message, body, extra)."""
    changes: dict[str, Any] = {}
    for name in ("message", "body", "type", "code", "param"):
        value = getattr(error, name)
        if isinstance(value, str):
            redacted = _redact(value, secrets)
            if redacted != value:
                changes[name] = redacted
    if error.extra:
        try:
            dumped = orjson.dumps(error.extra, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
            redacted = _redact(dumped, secrets)
            if redacted != dumped:
                changes["extra"] = orjson.loads(redacted)
        except (TypeError, ValueError):  # cannot be searched (too deep for orjson): not kept
            changes["extra"] = {}
    return replace(error, **changes) if changes else error


def _signed(headers: Mapping[str, str], url: str) -> bool:
    """Whether the request carries an AWS Signature Version 4 (header or presigned query)."""
    return headers.get("authorization", "").startswith("AWS4-") or "X-Amz-Signature=" in url


def redact_url(url: str) -> str:
    """``url`` without credentials: user info and ``key=`` style query parameters are removed."""
    scheme_end = url.find("://")
    if scheme_end != -1:
        at = url.find("@", scheme_end + 3)
        slash = url.find("/", scheme_end + 3)
        if at != -1 and (slash == -1 or at < slash):
            url = url[: scheme_end + 3] + url[at + 1 :]
    query_start = url.find("?")
    if query_start == -1:
        return url
    base, query = url[:query_start], url[query_start + 1 :]
    kept = [
        item
        for item in query.split("&")
        if item.split("=", 1)[0].lower()
        not in ("key", "api_key", "api-key", "apikey", "access_token", "token")
    ]
    return f"{base}?{'&'.join(kept)}" if kept else base


def _decompress(body: bytes, encoding: str | None) -> bytes | None:
    if not encoding or encoding == "identity":
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some clients send
    return None  # br, zstd...: leave the request alone


def _compress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


def _has_content(decoder: Any) -> bool:
    """Whether the decoder has seen generated output; decoders without ``has_content`` count any event."""
    try:
        probe = getattr(decoder, "has_content", None)
    except Exception:  # a broken probe must not break the record: fall back to "an event arrived"
        return True
    return True if probe is None else bool(probe)


# An integer literal of 20+ digits cannot fit 64 bits (orjson would turn it into a float).
_BIG_INTEGER = re.compile(rb"(?<![0-9.eE])-?[0-9]{20,}(?![0-9.eE])")


def _dump_exact(value: Any) -> bytes:
    """Compact JSON that keeps integers of any size (the standard library's, slower than orjson)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _decompressor_for(encoding: str | None) -> Any:
    """An incremental decoder for a response ``Content-Encoding``, or ``None`` for plain bodies."""
    value = (encoding or "").strip().lower()
    if value == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if value == "deflate":
        return zlib.decompressobj()
    if value and value != "identity":  # br, zstd...: not read for the record
        return _Undecodable()
    return None


class _Undecodable:
    """An encoding nemoflow cannot read: the record gets no body, the app is unaffected."""

    def decompress(self, data: bytes) -> bytes:
        raise ValueError("response content encoding not supported for recording")


class LlmCallHandle:
    """One LLM call in flight, driven by an HTTP adapter (sans-I/O).

    The adapter sends :attr:`body` (and :attr:`headers_update`), then reports the response: headers with
    :meth:`response_started`, then either the whole body (:meth:`response_body`) or stream chunks as they
    pass to the application (:meth:`stream_chunk`), and finally :meth:`finish` exactly once (further calls
    are ignored). Nothing here raises: errors on this side path are contained and counted.
    """

    __slots__ = (
        "_bytes_decoder",
        "_content_truncated",
        "_ctx",
        "_decoder",
        "_decompressor",
        "_error_body",
        "_finished",
        "_first_byte_ns",
        "_first_token_ns",
        "_flow",
        "_http_status",
        "_outer",
        "_parent",
        "_pending",
        "_pending_decoded",
        "_response",
        "_sse",
        "_start_ns",
        "_stream_failed",
        "body",
        "body_changed",
        "codec",
        "headers_update",
        "injected_stream_usage",
        "policies_applied",
        "request",
        "span_id",
        "stream",
        "trace_id",
        "url",
        "url_changed",
    )

    def __init__(
        self,
        flow: Flow,
        codec: LlmCodec,
        ctx: CallContext,
        request: AnnotatedLlmRequest,
        body: bytes,
        body_changed: bool,
        injected_stream_usage: bool,
        policies_applied: tuple[str, ...],
        start_ns: int,
        parent: _Parent | None,
    ) -> None:
        """Created by :meth:`Flow.start_call`."""
        self._flow = flow
        self.codec = codec
        self._ctx = ctx
        self.url = ctx.url
        """Where the request goes: the application's URL, or where a policy's model edit moved it."""
        self.url_changed = False
        """Whether :attr:`url` differs from the application's (the adapter sends to :attr:`url`)."""
        self.request = request
        """The annotated request as sent (after policies, before sanitizers)."""
        self.body = body
        """The bytes to send (the original bytes when nothing changed)."""
        self.body_changed = body_changed
        """Whether :attr:`body` differs from what the application sent."""
        self.headers_update: dict[str, str] = {}
        """Headers the adapter must set (``content-length`` when the body changed, ``traceparent`` when
        trace context is propagated); the adapter applies them even when the body is unchanged."""
        if body_changed:
            self.headers_update["content-length"] = str(len(body))
        if injected_stream_usage:
            # The injected usage event is removed from what the app reads; that needs plain bytes.
            self.headers_update["accept-encoding"] = "identity"
        self.injected_stream_usage = injected_stream_usage
        """Whether nemoflow asked for stream usage the application did not (strip it from what it reads)."""
        self.policies_applied = policies_applied
        self.stream = request.stream
        self._start_ns = start_ns
        self._parent = parent
        # Captured here, on the caller's thread: the record is built later on the delivery thread.
        self._outer = None if parent else _outer_otel_context()
        self.span_id = _new_span_id()
        """Our id of this call's span, known before the request is sent."""
        self.trace_id = parent.trace_id if parent else _root_trace_id(self._outer)
        """The call's trace id: its scope's, else the application's current span's, else a new one."""
        self._first_byte_ns: int | None = None
        self._first_token_ns: int | None = None
        self._http_status: int | None = None
        self._response: bytearray | None = None
        self._error_body: tuple[int, Mapping[str, str], bytes] | None = None
        self._sse: SSEDecoder | None = None
        self._decoder: StreamDecoder | None = None
        self._bytes_decoder: Any = None
        self._decompressor: Any = None
        self._stream_failed = False
        self._finished = False
        self._pending: bytearray | None = None
        self._pending_decoded = False
        self._content_truncated = False

    def response_started(self, status: int, headers: Mapping[str, str]) -> None:
        """The response headers arrived."""
        self._first_byte_ns = time.time_ns()
        self._http_status = status
        lowered = _lowercase_headers(headers)
        content_type = lowered.get("content-type", "").lower()
        self._decompressor = _decompressor_for(lowered.get("content-encoding"))
        if status >= 400:
            self._error_body = (status, lowered, b"")
        elif "vnd.amazon.eventstream" in content_type and hasattr(self.codec, "byte_stream_decoder"):
            # Binary framing (Bedrock ConverseStream): the codec decodes raw bytes itself.
            self.stream = True
            try:
                self._bytes_decoder = self.codec.byte_stream_decoder(url=self.url)
                if hasattr(self._bytes_decoder, "text_limit"):
                    self._bytes_decoder.text_limit = self._flow.max_recorded_text
            except Exception as exc:
                self._stream_failed = True
                self._flow._contain("stream", exc)
        elif "text/event-stream" in content_type or (self.stream and "json" not in content_type):
            self.stream = True
            try:
                self._sse = SSEDecoder()
                self._decoder = self.codec.stream_decoder(url=self.url)
                if hasattr(self._decoder, "text_limit"):  # built-in decoders bound their text
                    self._decoder.text_limit = self._flow.max_recorded_text
            except Exception as exc:
                self._stream_failed = True
                self._flow._contain("stream", exc)

    def response_body(self, body: bytes) -> None:
        """The whole (non-streamed) response body, or an error body."""
        if self._error_body is not None:
            status, headers, _ = self._error_body
            self._error_body = (status, headers, body)
        else:
            self._response = bytearray(body)

    @property
    def response_compressed(self) -> bool:
        """Whether the response body arrives with a ``Content-Encoding`` (gzip, deflate, ...)."""
        return self._decompressor is not None

    def stream_chunk(self, chunk: bytes, *, decoded: bool = False) -> None:
        """A chunk of the response body, as it passes to the application.

        Adapters that see the bytes before content decoding (httpx transports) pass them as they are;
        ``decoded=True`` says the adapter already undid ``Content-Encoding`` (requests, aiohttp).
        """
        if self._finished:
            return  # the record may already be building on the delivery thread
        pending = self._pending
        if pending is not None:
            # After the first token nothing is timed per chunk any more: gather bytes and decode them in
            # blocks, which costs the application's loop one append per chunk instead of a decode.
            pending += chunk
            if len(pending) >= _RECORD_BLOCK_BYTES:
                self._drain_pending()
            return
        self._record_chunk(chunk, decoded)

    def _drain_pending(self) -> None:
        """Decode the bytes gathered since the first token (all of them, in one go)."""
        pending = self._pending
        if pending:
            block = bytes(pending)
            pending.clear()
            self._record_chunk(block, self._pending_decoded)

    def _record_chunk(self, chunk: bytes, decoded: bool) -> None:
        if self._decompressor is not None and not decoded:
            try:
                chunk = self._decompressor.decompress(chunk)
            except Exception as exc:
                self._decompressor = None
                self._stream_failed = True
                self._flow._contain("stream", exc)
                return
        if self._error_body is not None:
            status, headers, so_far = self._error_body
            if len(so_far) < 65536:
                self._error_body = (status, headers, so_far + chunk)
            return
        if self._bytes_decoder is not None and not self._stream_failed:
            try:
                self._bytes_decoder.feed(chunk)
            except Exception as exc:  # one bad frame must not end the record
                self._flow._contain("stream", exc)
            if self._first_token_ns is None and _has_content(self._bytes_decoder):
                self._first_token_ns = time.time_ns()
                self._start_gathering(decoded)
            return
        if self._stream_failed or self._sse is None or self._decoder is None:
            if self._sse is None and not self._stream_failed:
                if self._response is None:  # a JSON body read in pieces
                    self._response = bytearray()
                self._response += chunk
            return
        try:
            events = self._sse.feed_fields(chunk)
        except CodecError as exc:
            self._stream_failed = True
            self._flow._contain("stream", exc)
            return
        feed = self._decoder.feed
        for data, event_type, _, _ in events:
            try:
                feed(data, event_type)
            except Exception as exc:  # one bad event must not end the record
                self._flow._contain("stream", exc)
        if events and self._first_token_ns is None and _has_content(self._decoder):
            self._first_token_ns = time.time_ns()
            self._start_gathering(decoded)

    def _start_gathering(self, decoded: bool) -> None:
        self._pending = bytearray()
        self._pending_decoded = decoded

    def finish(
        self, status: CallStatus | str = CallStatus.OK, exception: BaseException | None = None
    ) -> None:
        """End the call (exhausted, closed early, failed); only the first call counts."""
        if self._finished:
            return
        self._finished = True
        end_ns = time.time_ns()
        outcome = CallStatus(status)
        partial: AnnotatedLlmResponse | None = None
        try:
            self._drain_pending()
        except Exception as exc:
            self._flow._contain("stream", exc)
        decoder: Any = self._bytes_decoder if self._bytes_decoder is not None else self._decoder
        if decoder is not None and not self._stream_failed:
            if self._sse is not None and self._bytes_decoder is None:
                try:
                    last = self._sse.finish_fields()
                except Exception as exc:
                    last = []
                    self._flow._contain("stream", exc)
                for data, event_type, _, _ in last:
                    try:  # a broken-off last frame must not cost the reply that came before it
                        decoder.feed(data, event_type)
                    except Exception as exc:
                        self._flow._contain("stream", exc)
            try:
                partial = decoder.finish()
                self._content_truncated = getattr(decoder, "truncated", False) is True
            except Exception as exc:
                self._flow._contain("stream", exc)
        if self._http_status is not None and 300 <= self._http_status < 400:
            return  # a redirect hop: the followed request is the LLM call
        if (
            outcome is CallStatus.CANCELLED
            and partial is not None
            and partial.finish_reason not in (FinishReason.UNKNOWN, FinishReason.ERROR)
        ):
            # SDKs close the response as soon as the reply is complete (OpenAI's [DONE]): that is no cancel.
            outcome = CallStatus.OK
        if self._http_status is not None and self._http_status >= 400 and outcome is not CallStatus.ERROR:
            outcome = CallStatus.ERROR
        if partial is not None and partial.finish_reason is FinishReason.ERROR:
            if outcome is CallStatus.OK:
                outcome = CallStatus.ERROR  # the body ended, but not as a complete reply
            elif outcome is CallStatus.CANCELLED and partial.error is not None:
                outcome = CallStatus.ERROR  # the provider sent an error; SDKs then close the response
        if exception is not None and outcome is CallStatus.OK:
            outcome = CallStatus.ERROR
        self._flow._submit(self, partial, outcome, exception, end_ns)


@dataclass(slots=True)
class _Counters:
    passed_through: int = 0
    recorded: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    logged: set[str] = field(default_factory=set)


def _require_methods(kind: str, value: object, methods: tuple[str, ...]) -> None:
    if isinstance(value, type) or not all(callable(getattr(value, name, None)) for name in methods):
        what = f"the class {value.__name__} (create an instance)" if isinstance(value, type) else repr(value)
        raise TypeError(f"{kind} must hold objects with {', '.join(methods)}(), got {what}")


class Flow:
    """Hooks and subscribers for LLM calls, and the scopes that parent them.

    Args:
        policies: Request rewriters ``(request, ctx) -> request | None``, applied in order.
        guardrails: ``(request, ctx) -> Block | None``; a block raises :class:`~nemoflow.GuardrailBlocked`.
        sanitizers: :class:`~nemoflow.Sanitizer` objects that change what is recorded, never what is sent.
        subscribers: Receivers of finished records (exporters are subscribers).
        fail_open: Contain nemoflow's own errors (default) or raise them.
        price_table: Prices for cost (default: the bundled, dated table).
        price_overrides: Per-model prices that win over the table.
        inject_stream_usage: Ask streamed requests to report usage (a bool, or a predicate on the URL to
            turn it off for servers that reject ``stream_options``).
        propagate_trace_context: Send a W3C ``traceparent`` header naming the call's own span upstream
            (off by default; a bool, or a predicate on the URL to turn it on for some hosts only). Under
            an application span, its sampling flag and ``tracestate`` carry over; a ``traceparent`` the
            application set itself is left as it is.
        max_queue: Records buffered for subscribers before new ones are dropped (and counted).
        max_recorded_text: Characters kept per text of a streamed reply (content, reasoning, each tool
            call's arguments); beyond it the recorded text is cut and the record says
            ``content_truncated``. The application's bytes are never cut. Bounds a long stream's memory.

    Raises:
        TypeError: A hook is not callable, a subscriber or sanitizer is not an instance with the
            expected methods (a class passed by mistake, say), or ``fail_open``/``price_table`` has the
            wrong type. Checked here so a mistake fails at set-up, not silently on the delivery thread.
        ValueError: ``max_queue`` or ``max_recorded_text`` is not a positive integer.
    """

    def __init__(
        self,
        *,
        policies: Iterable[PolicyLike] = (),
        guardrails: Iterable[GuardrailLike] = (),
        sanitizers: Iterable[Sanitizer] = (),
        subscribers: Iterable[Subscriber] = (),
        fail_open: bool = True,
        price_table: PriceTable | None = None,
        price_overrides: Mapping[str, Any] | None = None,
        inject_stream_usage: bool | Any = True,
        propagate_trace_context: bool | Callable[[str], bool] = False,
        max_queue: int = 10_000,
        max_recorded_text: int = STREAM_TEXT_LIMIT,
    ) -> None:
        """Create a flow; nothing starts until the first record is queued."""
        for name, number in (("max_queue", max_queue), ("max_recorded_text", max_recorded_text)):
            if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
                raise ValueError(f"{name} must be a positive integer, got {number!r}")
        if not isinstance(fail_open, bool):
            raise TypeError(f"fail_open must be True or False, got {fail_open!r}")
        if price_table is not None and not isinstance(price_table, PriceTable):
            raise TypeError(
                f"price_table must be a nemoflow PriceTable, got {type(price_table).__name__} "
                "(per-model prices go in price_overrides)"
            )
        self.max_recorded_text = max_recorded_text
        self.policies: tuple[PolicyLike, ...] = tuple(policies)
        self.guardrails: tuple[GuardrailLike, ...] = tuple(guardrails)
        self.sanitizers: tuple[Sanitizer, ...] = tuple(sanitizers)
        self._subscribers: tuple[Subscriber, ...] = tuple(subscribers)
        for kind, hooks in (("policies", self.policies), ("guardrails", self.guardrails)):
            for hook in hooks:
                if not callable(hook) or isinstance(hook, type):
                    raise TypeError(f"{kind} must hold callables (request, ctx) -> ..., got {hook!r}")
        for sanitizer in self.sanitizers:
            _require_methods("sanitizers", sanitizer, ("sanitize_request", "sanitize_response"))
        for subscriber in self._subscribers:
            _require_methods("subscribers", subscriber, ("on_call",))
        self.fail_open = fail_open
        table = price_table or PriceTable.default()
        self.price_table = table.with_overrides(price_overrides) if price_overrides else table
        self._inject_stream_usage = inject_stream_usage
        self._propagate_trace_context = propagate_trace_context
        self._counters = _Counters()
        self._lock = threading.Lock()
        self._dispatcher = Dispatcher(lambda: self._subscribers, max_queue=max_queue, on_error=self._contain)

    # ----------------------------------------------------------------------------------------- set-up

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        """The subscribers, in delivery order."""
        return self._subscribers

    def add_subscriber(self, subscriber: Subscriber) -> None:
        """Deliver later records to ``subscriber`` too."""
        _require_methods("subscribers", subscriber, ("on_call",))
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

    def remove_subscriber(self, subscriber: Subscriber) -> None:
        """Stop delivering to ``subscriber``."""
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

    def scope(
        self,
        name: str,
        kind: Literal["AGENT", "CHAIN"] = "AGENT",
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        **attributes: Any,
    ) -> Scope:
        """A parent span for what runs inside: ``with flow.scope("plan-trip", kind="AGENT"): ...``."""
        if kind not in ("AGENT", "CHAIN"):
            raise ValueError(f"scope kind must be 'AGENT' or 'CHAIN', not {kind!r}")
        return Scope(self, name, kind, session_id, user_id, attributes)

    def tool(
        self, name: str, arguments: Any = None, tool_call_id: str | None = None, **attributes: Any
    ) -> ToolRun:
        """A tool run: ``with flow.tool("search", arguments={...}) as t: t.result = search(...)``."""
        return ToolRun(self, name, arguments, tool_call_id, attributes)

    # ----------------------------------------------------------------------------------------- adapters

    def transport(self, inner: Any, *, asynchronous: bool | None = None) -> Any:
        """Wrap an httpx2 or httpx transport (sync or async) so its LLM calls run through this flow.

        ``asynchronous=True`` picks the async wrapper for transports that serve both (``MockTransport``).
        """
        from nemoflow._httpx import wrap_transport

        return wrap_transport(inner, self, asynchronous=asynchronous)

    def httpx2_client(self, **kwargs: Any) -> Any:
        """An ``httpx2.Client`` whose LLM calls run through this flow (SDK-like defaults; ``kwargs`` win)."""
        return _client(self, "httpx2", asynchronous=False, kwargs=kwargs)

    def async_httpx2_client(self, **kwargs: Any) -> Any:
        """An ``httpx2.AsyncClient`` whose LLM calls run through this flow."""
        return _client(self, "httpx2", asynchronous=True, kwargs=kwargs)

    def httpx_client(self, **kwargs: Any) -> Any:
        """An ``httpx.Client`` whose LLM calls run through this flow."""
        return _client(self, "httpx", asynchronous=False, kwargs=kwargs)

    def async_httpx_client(self, **kwargs: Any) -> Any:
        """An ``httpx.AsyncClient`` whose LLM calls run through this flow."""
        return _client(self, "httpx", asynchronous=True, kwargs=kwargs)

    def requests_adapter(self, **adapter_kwargs: Any) -> Any:
        """A ``requests`` ``HTTPAdapter`` whose LLM calls run through this flow (mount it on a Session)."""
        from nemoflow._requests import NemoflowAdapter

        return NemoflowAdapter(self, **adapter_kwargs)

    def requests_session(self, **adapter_kwargs: Any) -> Any:
        """A ``requests.Session`` with this flow's adapter mounted for ``http://`` and ``https://``."""
        from nemoflow._requests import requests_session

        return requests_session(self, **adapter_kwargs)

    def aiohttp_middleware(self) -> Any:
        """An aiohttp (>= 3.12) client middleware running LLM calls through this flow."""
        from nemoflow._aiohttp import aiohttp_middleware

        return aiohttp_middleware(self)

    def aiohttp_session(self, **session_kwargs: Any) -> Any:
        """An ``aiohttp.ClientSession`` with this flow's middleware installed."""
        from nemoflow._aiohttp import aiohttp_session

        return aiohttp_session(self, **session_kwargs)

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver every queued record and flush subscribers; ``False`` if ``timeout`` ran out."""
        return self._dispatcher.flush(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush, then shut subscribers down; later records are dropped."""
        self._dispatcher.shutdown(timeout)

    def stats(self) -> FlowStats:
        """Counters: records delivered, pass-throughs, drops, contained errors by kind."""
        counters = self._counters
        return FlowStats(
            calls_recorded=counters.recorded,
            passed_through=counters.passed_through,
            events_dropped=self._dispatcher.dropped,
            errors=dict(counters.errors),
        )

    # ----------------------------------------------------------------------------------------- fail-open

    def count_pass_through(self) -> None:
        """Count a request an adapter forwarded untouched (no codec claimed it)."""
        self._counters.passed_through += 1

    def _contain(self, kind: str, exc: BaseException) -> None:
        counters = self._counters
        counters.errors[kind] = counters.errors.get(kind, 0) + 1
        if kind not in counters.logged:
            counters.logged.add(kind)
            _log.warning("nemoflow: %s error contained (logged once per kind): %r", kind, exc, exc_info=exc)

    # ----------------------------------------------------------------------------------------- calls

    def start_call(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        codec: LlmCodec | None = None,
    ) -> LlmCallHandle | None:
        """Run the request side of one call; ``None`` means "send it untouched, record nothing".

        Raises:
            GuardrailBlocked: A guardrail refused the request (nothing may be sent).
            CodecError, PolicyError: Only with ``fail_open=False``.
        """
        if delivery_thread_active():
            return None  # never observe our own exporters
        if codec is None:
            codec = resolve_codec(method, url)
        if codec is None or not body:
            self._counters.passed_through += 1
            return None
        start_ns = time.time_ns()
        lowered = _lowercase_headers(headers)
        encoding = lowered.get("content-encoding", "").strip().lower() or None
        try:
            raw_body = _decompress(body, encoding)
            payload = orjson.loads(raw_body) if raw_body is not None else None
        except (orjson.JSONDecodeError, OSError, EOFError, zlib.error):
            payload = None
        if not isinstance(payload, dict):  # multipart uploads, unknown encodings: not ours to read
            self._counters.passed_through += 1
            return None
        try:
            request = codec.decode(payload, url=url)
        except CodecError as exc:
            if not self.fail_open:
                raise
            self._contain("codec", exc)
            self._counters.passed_through += 1
            return None
        parent = _current.get()
        ctx = CallContext(
            codec=codec.name,
            provider=codec.provider,
            method=method.upper(),
            url=url,
            headers=MappingProxyType(lowered),
            scope_path=parent.path if parent else (),
            attempt=_attempt_from(lowered),
            session_id=parent.session_id if parent else None,
            user_id=parent.user_id if parent else None,
        )
        self._run_guardrails(request, ctx, codec, start_ns, parent)
        decoded = request
        request, applied = self._run_policies(request, ctx)
        target = self._route(codec, url, decoded, request)
        send, changed, injected = self._encode(codec, request, payload, body, raw_body, encoding, target)
        if changed and raw_body is not None and _BIG_INTEGER.search(raw_body):
            # orjson reads integers beyond 64 bits as floats: rewriting from that parse would change them.
            # Rare, so only then: parse exactly, apply the policies again, and serialize without loss.
            exact = self._rewrite_exactly(codec, ctx, raw_body, body, encoding, url, target)
            if exact is None:
                return None
            request, applied, send, changed, injected = exact
        if (changed or target != url) and _signed(lowered, url):
            # AWS SigV4 signs the path and a hash of the body: any change would be refused upstream (403).
            error = PolicyError(
                "the request is signed (AWS SigV4): its body and URL cannot change, so it is sent as it was; "
                "edit it before the client signs it"
            )
            if not self.fail_open:
                raise error
            self._contain("policy", error)
            request, applied, send, changed, injected, target = decoded, (), body, False, False, url
        handle = LlmCallHandle(self, codec, ctx, request, send, changed, injected, applied, start_ns, parent)
        if target != url:
            handle.url = target
            handle.url_changed = True
        # An application's own traceparent wins; a broken predicate sends nothing (off unless asked).
        if "traceparent" not in lowered and self._allowed_for(
            self._propagate_trace_context, url, if_broken=False
        ):
            outer = parent.outer if parent is not None else handle._outer
            handle.headers_update.update(_trace_context_headers(handle.trace_id, handle.span_id, outer))
        return handle

    def _run_guardrails(
        self,
        request: AnnotatedLlmRequest,
        ctx: CallContext,
        codec: LlmCodec,
        start_ns: int,
        parent: _Parent | None,
    ) -> None:
        for guardrail in self.guardrails:
            try:
                verdict = guardrail(request, ctx)
            except Exception as exc:
                if not self.fail_open:
                    raise PolicyError(f"guardrail {hook_name(guardrail)} failed: {exc}") from exc
                self._contain("guardrail", exc)
                continue
            if isinstance(verdict, Block):
                handle = LlmCallHandle(self, codec, ctx, request, b"", False, False, (), start_ns, parent)
                handle._finished = True
                self._submit(
                    handle, None, CallStatus.BLOCKED, None, time.time_ns(), block_reason=verdict.reason
                )
                raise GuardrailBlocked(verdict.reason, guardrail=hook_name(guardrail))

    def _run_policies(
        self, request: AnnotatedLlmRequest, ctx: CallContext
    ) -> tuple[AnnotatedLlmRequest, tuple[str, ...]]:
        applied: list[str] = []
        for policy in self.policies:
            try:
                result: Any = policy(request, ctx)
            except Exception as exc:
                if not self.fail_open:
                    raise PolicyError(f"policy {hook_name(policy)} failed: {exc}") from exc
                self._contain("policy", exc)
                continue
            if result is None or result is request:
                continue
            if not isinstance(result, AnnotatedLlmRequest):
                error = PolicyError(f"policy {hook_name(policy)} returned {type(result).__name__}")
                if not self.fail_open:
                    raise error
                self._contain("policy", error)
                continue
            request = result
            applied.append(hook_name(policy))
        return request, tuple(applied)

    def _allowed_for(self, setting: bool | Callable[[str], Any], url: str, *, if_broken: bool) -> bool:
        """A per-URL switch: a bool or a predicate on the URL (one that raises counts, then ``if_broken``)."""
        if isinstance(setting, bool):
            return setting
        try:
            return bool(setting(url))
        except Exception as exc:
            self._contain("config", exc)
            return if_broken

    def _route(
        self, codec: LlmCodec, url: str, decoded: AnnotatedLlmRequest, edited: AnnotatedLlmRequest
    ) -> str:
        """The URL to send to: ``url``, or the codec's ``url_for`` when a policy moved model or stream.

        Gemini, Bedrock and Anthropic on Bedrock or Vertex name the model (and the streaming mode) in the
        URL, not in the body: an edit of either moves the request to another URL.
        """
        model_moved = edited.model != decoded.model and edited.model is not None
        stream_moved = edited.stream != decoded.stream
        url_for = getattr(codec, "url_for", None)
        if not (model_moved or stream_moved) or url_for is None:
            return url
        try:
            model = edited.model if model_moved else None
            target = url_for(url, model=model, stream=edited.stream if stream_moved else None)
        except Exception as exc:
            if not self.fail_open:
                raise PolicyError(f"cannot route the edited request: {exc}") from exc
            self._contain("codec", exc)
            return url
        return target if isinstance(target, str) and target else url

    def _rewrite_exactly(
        self,
        codec: LlmCodec,
        ctx: CallContext,
        raw_body: bytes,
        body: bytes,
        encoding: str | None,
        url: str,
        target: str,
    ) -> tuple[AnnotatedLlmRequest, tuple[str, ...], bytes, bool, bool] | None:
        """The request side again on an exact parse (big integers kept); ``None`` means pass through."""
        try:
            payload = json.loads(raw_body)
            request = codec.decode(payload, url=url)
        except (ValueError, RecursionError, CodecError) as exc:
            if not self.fail_open:
                raise
            self._contain("codec", exc)
            return None
        request, applied = self._run_policies(request, ctx)
        send, changed, injected = self._encode(
            codec, request, payload, body, raw_body, encoding, target, exact=True
        )
        return request, applied, send, changed, injected

    def _encode(
        self,
        codec: LlmCodec,
        request: AnnotatedLlmRequest,
        payload: dict[str, Any],
        body: bytes,
        raw_body: bytes | None,
        encoding: str | None,
        url: str,
        *,
        exact: bool = False,
    ) -> tuple[bytes, bool, bool]:
        try:
            encoded = codec.encode(request, payload, url=url)
        except CodecError as exc:
            if not self.fail_open:
                raise
            self._contain("codec", exc)
            return body, False, False
        injected = "stream_options" in encoded and "stream_options" not in payload
        if injected and not self._allowed_for(self._inject_stream_usage, url, if_broken=True):
            encoded = {key: value for key, value in encoded.items() if key != "stream_options"}
            injected = False
            if encoded == payload:
                return body, False, False
        if encoded is payload:
            return body, False, False
        try:
            data = _dump_exact(encoded) if exact else orjson.dumps(encoded)
        except (TypeError, ValueError) as exc:  # a policy put something that is not JSON into the request
            if not self.fail_open:
                raise PolicyError(f"the rewritten request is not JSON: {exc}") from exc
            self._contain("codec", exc)
            return body, False, False
        return _compress(data, encoding), True, injected

    # ----------------------------------------------------------------------------------------- records

    def _submit(
        self,
        handle: LlmCallHandle,
        partial: AnnotatedLlmResponse | None,
        status: CallStatus,
        exception: BaseException | None,
        end_ns: int,
        *,
        block_reason: str | None = None,
    ) -> None:
        # Decoding the body, sanitizing and pricing happen on the delivery thread, off the caller's path.
        def build() -> LlmCall | None:
            return self._build_record(handle, partial, status, exception, end_ns, block_reason)

        self._dispatcher.call_ended(build)

    def _build_record(
        self,
        handle: LlmCallHandle,
        partial: AnnotatedLlmResponse | None,
        status: CallStatus,
        exception: BaseException | None,
        end_ns: int,
        block_reason: str | None,
    ) -> LlmCall:
        codec, ctx = handle.codec, handle._ctx
        response = partial
        error: AnnotatedLlmError | None = None
        if handle._error_body is not None:
            status_code, headers, body = handle._error_body
            try:
                error = codec.decode_error(status_code, headers, body, url=handle.url)
            except Exception as exc:
                self._contain("codec", exc)
        elif response is None and handle._response:
            try:
                response = codec.decode_response(orjson.loads(handle._response), url=handle.url)
            except Exception as exc:
                self._contain("codec", exc)
        exception_text = f"{type(exception).__name__}: {exception}" if exception is not None else None
        if error is not None or exception_text is not None or (response is not None and response.error):
            # Only failed calls pay for this: error texts can quote the request's own credentials.
            secrets = _request_secrets(ctx.headers, ctx.url)
            if secrets:
                if error is not None:
                    error = _redact_error(error, secrets)
                if response is not None and response.error is not None:
                    response = replace(response, error=_redact_error(response.error, secrets))
                if exception_text is not None:
                    exception_text = _redact(exception_text, secrets)
        if response is not None and response.error is not None and error is None:
            error = response.error
        request: AnnotatedLlmRequest | None = handle.request
        for sanitizer in self.sanitizers:
            try:
                if request is not None:
                    request = sanitizer.sanitize_request(request, ctx)
                if response is not None:
                    response = sanitizer.sanitize_response(response, ctx)
            except Exception as exc:  # a broken sanitizer must not leak content: drop what it guarded
                self._contain("sanitizer", exc)
                request = None
                response = _without_content(response) if response is not None else None
                break
        usage = response.usage if response is not None else Usage()
        model = (response.model if response is not None else None) or handle.request.model
        cost = None
        try:
            cost = compute_cost(
                usage,
                model,
                provider=codec.provider,
                reported_cost=response.cost if response is not None else None,
                table=self.price_table,
            )
        except Exception as exc:
            self._contain("cost", exc)
        parent = handle._parent
        self._counters.recorded += 1
        return LlmCall(
            call_id=f"{random.getrandbits(128):032x}",  # uuid4 asks the OS for bytes each time
            span_id=handle.span_id,
            parent_id=parent.span_id if parent else None,
            trace_id=handle.trace_id,
            codec=codec.name,
            provider=codec.provider,
            operation=handle.request.operation,
            method=ctx.method,
            url=redact_url(handle.url),
            start_time_ns=handle._start_ns,
            end_time_ns=end_ns,
            status=status,
            request=request,
            response=response,
            error=error,
            exception=exception_text,
            http_status=handle._http_status,
            first_byte_time_ns=handle._first_byte_ns,
            first_token_time_ns=handle._first_token_ns,
            attempt=ctx.attempt,
            stream=handle.stream,
            usage=usage,
            usage_source="reported" if usage.reported else "missing",
            cost=cost,
            model=model,
            scope_path=ctx.scope_path,
            session_id=ctx.session_id,
            user_id=ctx.user_id,
            block_reason=block_reason,
            policies_applied=handle.policies_applied,
            content_truncated=handle._content_truncated,
            otel_context=handle._outer,
        )


def _without_content(response: AnnotatedLlmResponse) -> AnnotatedLlmResponse:
    return AnnotatedLlmResponse(
        id=response.id,
        model=response.model,
        finish_reason=response.finish_reason,
        finish_reason_raw=response.finish_reason_raw,
        usage=response.usage,
        cost=response.cost,
        operation=response.operation,
    )


_TRANSPORT_OPTIONS = ("verify", "cert", "trust_env", "http1", "http2", "limits", "proxy", "retries", "uds")


def _client(flow: Flow, library: str, *, asynchronous: bool, kwargs: dict[str, Any]) -> Any:
    """A client of ``library`` with the official SDKs' defaults and a nemoflow transport."""
    import importlib

    from nemoflow._httpx import transport_classes

    classes = transport_classes(library)
    if classes is None:
        raise ImportError(f"{library} is not installed (pip install {library})")
    mod = importlib.import_module(library)
    # The openai / anthropic SDKs' defaults: 10 min read timeout, 5 s connect, generous pools, redirects.
    kwargs.setdefault("timeout", mod.Timeout(600.0, connect=5.0))
    kwargs.setdefault("follow_redirects", True)
    transport_options = {name: kwargs.pop(name) for name in _TRANSPORT_OPTIONS if name in kwargs}
    transport_options.setdefault("limits", mod.Limits(max_connections=1000, max_keepalive_connections=100))
    if "transport" in kwargs:
        inner = kwargs.pop("transport")
    else:
        inner = (mod.AsyncHTTPTransport if asynchronous else mod.HTTPTransport)(**transport_options)
    wrapper = classes[1 if asynchronous else 0](inner, flow=flow)
    return (mod.AsyncClient if asynchronous else mod.Client)(transport=wrapper, **kwargs)


# ----------------------------------------------------------------------------------------- default flow

_default_lock = threading.Lock()
_default: Flow | None = None


def default_flow() -> Flow:
    """The process-wide flow used by ``instrument()`` (created empty on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Flow()
    return _default


def configure(**options: Any) -> Flow:
    """Replace the process-wide flow with ``Flow(**options)`` (the old one is flushed and shut down)."""
    global _default
    with _default_lock:
        old, _default = _default, Flow(**options)
    if old is not None:
        old.shutdown()
    return _default
