"""The response tee, sans-I/O: bytes pass to the application as they arrive, a copy feeds the call record.

Every adapter (httpx2, httpx, requests, aiohttp) wraps the response byte stream with a :class:`ResponseTee`
and calls :meth:`ResponseTee.pass_through` for each chunk. The chunk goes to the application unchanged and
unbuffered, with one exception: when nemoflow itself asked the server for stream usage
(``LlmCallHandle.injected_stream_usage``), the usage-only event the application did not ask for is removed.
To find it, the tee holds back only the unfinished tail of an event, which the application's SSE parser
could not have used yet anyway.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from nemoflow._flow import LlmCallHandle
from nemoflow._records import CallStatus

__all__ = ["ResponseTee"]

_EVENT_ENDS = (b"\r\n\r\n", b"\n\n", b"\r\r")
# A usage *object* (not the ``"usage": null`` every chunk carries once usage is on): only an event with
# one can be the injected usage-only event, so bytes without it pass without being split into events.
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')


def _last_event_end(buffer: bytes | bytearray) -> int:
    """Index just past the last complete event (blank line) in ``buffer``, or 0."""
    best = 0
    for marker in _EVENT_ENDS:
        found = buffer.rfind(marker)
        if found != -1:
            best = max(best, found + len(marker))
    return best


def _split_events(block: bytes) -> list[bytes]:
    """Split complete events, keeping each one's bytes (terminator included) exactly."""
    events: list[bytes] = []
    start = 0
    length = len(block)
    while start < length:
        ends = [(block.find(marker, start), marker) for marker in _EVENT_ENDS]
        found = [(index, marker) for index, marker in ends if index != -1]
        if not found:
            events.append(block[start:])
            break
        index, marker = min(found, key=lambda item: (item[0], -len(item[1])))
        events.append(block[start : index + len(marker)])
        start = index + len(marker)
    return events


def _is_injected_usage_event(event: bytes) -> bool:
    """A ``chat.completion.chunk`` carrying only usage (``"choices": []``) — what include_usage adds."""
    if b"usage" not in event or b"choices" not in event:
        return False
    data = b"".join(
        line[5:].lstrip(b" ")
        for line in event.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        if line.startswith(b"data:")
    )
    try:
        chunk: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


def _without_injected_usage(event: bytes) -> bytes:
    """``event``, or only the blank lines before it when it is the injected usage event.

    Blank lines between events can be split so that some land at the start of the next event's bytes;
    they were never part of the usage event, so the application still gets them.
    """
    if not _is_injected_usage_event(event):
        return event
    body = event.lstrip(b"\r\n")
    return event[: len(event) - len(body)]


class ResponseTee:
    """Feeds the call record from a response body while handing the body to the application.

    Args:
        handle: The call in flight.
        strip_injected_usage: Remove the usage-only event nemoflow asked for (default: when it did).
        decoded: The adapter passes bytes after ``Content-Encoding`` was undone (requests, aiohttp);
            otherwise the record decodes a copy itself (httpx transports see the raw bytes).
    """

    __slots__ = ("_decoded", "_done", "_handle", "_held", "_strip")

    def __init__(
        self, handle: LlmCallHandle, *, strip_injected_usage: bool | None = None, decoded: bool = False
    ) -> None:
        """Start teeing one response."""
        self._handle = handle
        self._decoded = decoded
        strip = handle.injected_stream_usage if strip_injected_usage is None else strip_injected_usage
        # Event boundaries cannot be seen in compressed bytes: holding back until one appears would
        # buffer the whole stream, so a compressed body passes as it is (nemoflow asks for identity).
        self._strip = strip and (decoded or not handle.response_compressed)
        self._held = bytearray()
        self._done = False

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` already ran."""
        return self._done

    def pass_through(self, chunk: bytes) -> bytes:
        """Record ``chunk`` and return the bytes to give the application now (may be empty)."""
        try:
            self._handle.stream_chunk(chunk, decoded=self._decoded)
        except Exception as exc:  # the record is best effort; the application's bytes are not
            self._handle._flow._contain("stream", exc)
        if not self._strip:
            return chunk
        if not self._held and chunk.endswith(_EVENT_ENDS) and _USAGE_OBJECT.search(chunk) is None:
            return chunk  # whole events, none with a usage object: nothing to hold back or remove
        self._held += chunk
        end = _last_event_end(self._held)
        if end == 0:
            return b""
        complete = bytes(self._held[:end])
        del self._held[:end]
        if b"usage" not in complete:
            return complete
        return b"".join(_without_injected_usage(event) for event in _split_events(complete))

    def remainder(self) -> bytes:
        """Bytes still held back at the end of the body (an unterminated last event), to give the app."""
        held = bytes(self._held)
        self._held.clear()
        return _without_injected_usage(held) if held else held

    def finish(self, status: CallStatus = CallStatus.OK, exception: BaseException | None = None) -> None:
        """End the record: exhausted (``ok``), closed early (``cancelled``) or failed (``error``)."""
        if self._done:
            return
        self._done = True
        self._handle.finish(status, exception)
