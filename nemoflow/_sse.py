r"""Incremental decoder for ``text/event-stream`` (Server-Sent Events) bodies.

Streaming LLM APIs (OpenAI, Anthropic, OpenRouter, ...) send their output as Server-Sent Events.
:class:`SSEDecoder` turns the raw response bytes, in whatever chunks the transport happens to deliver
them, into :class:`SSEEvent` objects, following the *event stream interpretation* rules of the WHATWG
HTML standard:

* lines end with CRLF, LF or a lone CR (a CR that ends one chunk and an LF that starts the next form a
  single line ending);
* the body is UTF-8 (multi-byte characters may be split across chunks; invalid bytes become U+FFFD) and
  one leading byte order mark is dropped;
* a blank line dispatches the event gathered so far, lines starting with ``:`` are comments, and the
  ``event``, ``data``, ``id`` and ``retry`` fields are understood while other fields are ignored.

nemoflow departs from the standard in two places. :meth:`SSEDecoder.finish` hands back an event the
server left without its closing blank line instead of throwing it away, because some LLM servers close
the connection that way. And a line longer than ``max_line_bytes`` raises :class:`DecodeError` as soon
as the buffered part of it passes the limit, so a misbehaving server cannot make the decoder hold an
ever-growing line in memory.

Example:
    >>> decoder = SSEDecoder()
    >>> decoder.feed(b'event: ping\ndata: {"n": 1}\n')
    []
    >>> decoder.feed(b"\n")
    [SSEEvent(data='{"n": 1}', event='ping', id=None, retry=None)]
"""

from __future__ import annotations

from dataclasses import dataclass

from nemoflow._errors import DecodeError
from nemoflow._model import constructor

__all__ = ["SSEDecoder", "SSEEvent"]

_BOM = b"\xef\xbb\xbf"
_NO_LINES: list[str] = []  # returned, never changed: _process only reads its lines
_CR = 0x0D


@dataclass(frozen=True, slots=True)
class SSEEvent:
    r"""One dispatched Server-Sent Event.

    Attributes:
        data: The values of the event's ``data`` lines joined with ``"\n"``.
        event: The value of the event's ``event`` field, or ``None`` when it had none. Callers treat
            ``None`` as the default ``"message"`` type.
        id: The value of the last valid ``id`` field seen in this event, or ``None`` when the event had
            none. :attr:`SSEDecoder.last_event_id` keeps the value across events.
        retry: The reconnection time in milliseconds from the event's last ``retry`` field made only of
            ASCII digits, or ``None``.
    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


# Streams dispatch one event per few hundred bytes: building them through the frozen dataclass __init__
# (one object.__setattr__ per field) was a measurable share of the per-chunk cost.
_new_event = constructor(SSEEvent, pristine=False)


class SSEDecoder:
    """Turn a byte stream in the ``text/event-stream`` format into :class:`SSEEvent` objects.

    Feed the body chunk by chunk with :meth:`feed`, which returns the events each chunk completes, and
    call :meth:`finish` once the body has ended. A decoder reads one stream; it is not thread-safe.

    Once :meth:`feed` has raised :class:`DecodeError` (an over-long line) the decoder is closed: later
    calls to :meth:`feed` raise again and :meth:`finish` returns no events.
    """

    __slots__ = (
        "_at_start",
        "_buf",
        "_closed",
        "_data",
        "_event",
        "_failed",
        "_id",
        "_last_event_id",
        "_max_line_bytes",
        "_pending_cr",
        "_retry",
    )

    def __init__(self, *, max_line_bytes: int = 1024 * 1024) -> None:
        """Create a decoder.

        Args:
            max_line_bytes: The longest line, in bytes and without its line ending, that the decoder
                accepts. A longer line makes :meth:`feed` raise :class:`DecodeError`.

        Raises:
            ValueError: ``max_line_bytes`` is not a positive integer.
        """
        if isinstance(max_line_bytes, bool) or not isinstance(max_line_bytes, int) or max_line_bytes <= 0:
            raise ValueError(f"max_line_bytes must be a positive integer, got {max_line_bytes!r}")
        self._max_line_bytes = max_line_bytes
        # Bytes of the line that has not ended yet (no CR or LF in it). Before the first three bytes of
        # the stream have been seen it may instead hold the start of a possible byte order mark.
        self._buf = bytearray()
        self._at_start = True  # the byte order mark question is still open
        self._pending_cr = False  # the last byte seen was a CR, so an LF next is part of that line ending
        self._closed = False  # finish() was called
        self._failed = False  # feed() raised DecodeError
        # The event being gathered: its data lines, type, id and retry.
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._last_event_id = ""

    @property
    def last_event_id(self) -> str:
        """The standard's *last event ID buffer*: the most recent valid ``id`` value, kept across events.

        It is ``""`` until an ``id`` field is seen, and an ``id`` field with an empty value sets it back
        to ``""``. A client reconnecting would send it as the ``Last-Event-ID`` header.
        """
        return self._last_event_id

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode the next piece of the stream.

        Args:
            chunk: The next bytes of the body, split anywhere (even inside a line ending or a UTF-8
                character).

        Returns:
            The events that this chunk completed, in stream order; often empty.

        Raises:
            DecodeError: A line is longer than ``max_line_bytes``, or :meth:`finish` was already called,
                or an earlier call raised.
        """
        return [_new_event(*fields) for fields in self._process(self._lines(chunk))]

    def feed_fields(self, chunk: bytes) -> list[tuple[str, str | None, str | None, int | None]]:
        """:meth:`feed`, with each event as a plain ``(data, event, id, retry)`` tuple.

        The runtime decodes every streamed chunk of every call; tuples spare it an object per event.
        """
        return self._process(self._lines(chunk))

    def _lines(self, chunk: bytes) -> list[str]:
        """The complete lines ``chunk`` finishes (without line endings); the rest stays buffered."""
        if self._closed:
            raise DecodeError("SSE decoder already finished; feed() called after finish()")
        if self._failed:
            raise DecodeError("SSE decoder is unusable after an earlier decode error")
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        if not chunk:
            return _NO_LINES

        if self._at_start:
            head = bytes(self._buf) + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                # Could still become a byte order mark: wait for more bytes. (No CR or LF in here.)
                self._buf = bytearray(head)
                return _NO_LINES
            self._at_start = False
            self._buf = bytearray()
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
            if not chunk:
                return _NO_LINES

        if self._pending_cr:
            self._pending_cr = False
            if chunk[0] == 0x0A:  # the LF completing a CRLF that was split between chunks
                chunk = chunk[1:]
                if not chunk:
                    return _NO_LINES

        limit = self._max_line_bytes
        buf = self._buf
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
        if end == 0:
            # No line ending: the whole chunk belongs to the unfinished line.
            if len(buf) + len(chunk) > limit:
                raise self._failure()
            buf += chunk
            return _NO_LINES

        if end == len(chunk):
            tail = b""
            self._pending_cr = chunk[-1] == _CR
        else:
            tail = chunk[end:]
            chunk = chunk[:end]
        if buf:
            block = bytes(buf) + chunk
            self._buf = bytearray(tail)
        else:
            block = chunk
            if tail:
                buf += tail
        # ``block`` now holds whole lines only, each with its line ending. Normalise the endings to LF.
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        # A line can only be too long if the block (which has at least one line ending) is.
        if len(tail) > limit or (len(block) - 1 > limit and max(map(len, block.split(b"\n"))) > limit):
            raise self._failure()
        # A line ending is always an ASCII byte, so cutting there never splits a UTF-8 sequence and
        # decoding the block in one go equals decoding line by line.
        lines = block.decode("utf-8", "replace").split("\n")
        lines.pop()  # the empty string after the final line ending
        return lines

    def finish(self) -> list[SSEEvent]:
        """Signal the end of the stream and flush what is pending.

        Unlike the standard, which drops an event that the stream ends in the middle of, this treats an
        unterminated last line as a complete line and then dispatches the event gathered so far.

        Returns:
            The event left pending at the end of the stream, if any (at most one). A second call, or a
            call after :meth:`feed` raised, returns an empty list.

        Raises:
            DecodeError: The unterminated last line is longer than ``max_line_bytes``.
        """
        if self._closed:
            return []
        self._closed = True
        if self._failed:
            return []
        lines: list[str] = []
        if len(self._buf) > self._max_line_bytes:  # only possible for a stream that is a partial BOM
            raise self._failure()
        if self._buf:
            lines.append(self._buf.decode("utf-8", "replace"))
            self._buf = bytearray()
        lines.append("")  # end of stream acts as the missing blank line
        return [_new_event(*fields) for fields in self._process(lines)]

    def _failure(self) -> DecodeError:
        """Close the decoder after an over-long line and return the error to raise."""
        self._failed = True
        self._buf = bytearray()
        self._data = []
        return DecodeError(
            f"SSE line exceeds the {self._max_line_bytes}-byte limit (max_line_bytes)", path="$"
        )

    def finish_fields(self) -> list[tuple[str, str | None, str | None, int | None]]:
        """:meth:`finish`, with the event as a plain ``(data, event, id, retry)`` tuple."""
        return [(event.data, event.event, event.id, event.retry) for event in self.finish()]

    def _process(self, lines: list[str]) -> list[tuple[str, str | None, str | None, int | None]]:
        """Interpret complete lines (without line endings) and return the events they dispatch."""
        events: list[tuple[str, str | None, str | None, int | None]] = []
        data = self._data
        for line in lines:
            if line[:5] == "data:":  # nearly every line of an LLM stream: decided without the generic split
                data.append(line[6:] if line[5:6] == " " else line[5:])
                continue
            if not line:
                # Blank line: dispatch. With no data lines the standard dispatches nothing but still
                # resets the event type.
                if data:
                    joined = data[0] if len(data) == 1 else "\n".join(data)
                    events.append((joined, self._event, self._id, self._retry))
                    data = self._data = []
                self._event = None
                self._id = None
                self._retry = None
                continue
            colon = line.find(":")
            if colon == 0:
                continue  # comment, e.g. ": keep-alive"
            if colon < 0:
                name = line
                value = ""
            else:
                name = line[:colon]
                value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._id = value
                    self._last_event_id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self._retry = int(value)
            # Any other field name is ignored, as the standard requires.
        return events
