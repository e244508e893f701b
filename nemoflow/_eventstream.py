"""AWS event-stream framing (``application/vnd.amazon.eventstream``): an incremental frame decoder.

Wire format (AWS "Event stream encoding" reference, as implemented by the AWS SDKs): every message is

====================  ==========================================================================
prelude (12 bytes)    total length (u32 BE), headers length (u32 BE), CRC32 of those 8 bytes
headers               repeated: name length (u8), name (UTF-8), value type (u8), value
payload               ``total - headers - 16`` bytes (JSON for Bedrock events)
message CRC (4)       CRC32 of everything before it, prelude included
====================  ==========================================================================

Header value types: 0 true, 1 false (no value bytes), 2 byte (i8), 3 short (i16), 4 integer (i32),
5 long (i64), 6 byte array (u16 length + bytes), 7 string (u16 length + UTF-8), 8 timestamp (i64
milliseconds since the epoch), 9 UUID (16 bytes). Integers are big-endian.

The decoder takes bytes in any chunking and hands out complete messages. A bad prelude CRC (or a frame
larger than the limit) means the frame boundaries are lost: the decoder reports it once and ignores the
rest of the stream. A bad message CRC or malformed headers only lose that one frame.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nemoflow._errors import DecodeError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "MAX_HEADERS_BYTES",
    "EventStreamDecoder",
    "EventStreamMessage",
    "HeaderValue",
]

HeaderValue = bool | int | bytes | str | uuid.UUID
"""A decoded header value (timestamps are integers: milliseconds since the epoch)."""

PRELUDE_BYTES = 12
CRC_BYTES = 4
MIN_FRAME_BYTES = PRELUDE_BYTES + CRC_BYTES
MAX_HEADERS_BYTES = 128 * 1024
"""Largest headers section accepted (the limit the AWS SDKs enforce)."""
DEFAULT_MAX_FRAME_BYTES = MIN_FRAME_BYTES + MAX_HEADERS_BYTES + 24 * 1024 * 1024
"""Largest frame accepted by default: 24 MiB of payload plus the largest headers (as the AWS SDKs)."""

_PRELUDE = struct.Struct("!III")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_FIXED_WIDTH = {
    2: struct.Struct("!b"),
    3: struct.Struct("!h"),
    4: struct.Struct("!i"),
    5: struct.Struct("!q"),
}
_TIMESTAMP = struct.Struct("!q")
_COMPACT_AT = 64 * 1024


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One decoded event-stream message."""

    headers: Mapping[str, HeaderValue]
    """Headers by name (``:message-type``, ``:event-type``, ``:content-type``, ...)."""
    payload: bytes
    """The payload bytes (a JSON document for Bedrock events)."""

    def header_str(self, name: str) -> str | None:
        """The header ``name`` if it is a string, else ``None``."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else None


def _error(message: str, codec: str | None = None) -> DecodeError:
    return DecodeError(message, path="$", codec=codec)


def parse_headers(data: bytes | memoryview, codec: str | None = None) -> dict[str, HeaderValue]:
    """Decode a headers section.

    Raises:
        DecodeError: A header is truncated, has an unknown value type, repeats a name, or is not UTF-8.
    """
    view = memoryview(data)
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(view)
    try:
        while pos < end:
            name_length = view[pos]
            pos += 1
            if pos + name_length > end:
                raise _error("event-stream header name is truncated", codec)
            name = bytes(view[pos : pos + name_length]).decode("utf-8")
            pos += name_length
            if pos >= end:
                raise _error(f"event-stream header {name!r} has no value type", codec)
            value_type = view[pos]
            pos += 1
            value: HeaderValue
            if value_type in (0, 1):
                value = value_type == 0
            elif value_type in _FIXED_WIDTH:
                layout = _FIXED_WIDTH[value_type]
                if pos + layout.size > end:
                    raise _error(f"event-stream header {name!r} is truncated", codec)
                (value,) = layout.unpack_from(view, pos)
                pos += layout.size
            elif value_type in (6, 7):
                if pos + 2 > end:
                    raise _error(f"event-stream header {name!r} is truncated", codec)
                (length,) = _U16.unpack_from(view, pos)
                pos += 2
                if pos + length > end:
                    raise _error(f"event-stream header {name!r} is truncated", codec)
                raw = bytes(view[pos : pos + length])
                pos += length
                value = raw if value_type == 6 else raw.decode("utf-8")
            elif value_type == 8:
                if pos + 8 > end:
                    raise _error(f"event-stream header {name!r} is truncated", codec)
                (value,) = _TIMESTAMP.unpack_from(view, pos)
                pos += 8
            elif value_type == 9:
                if pos + 16 > end:
                    raise _error(f"event-stream header {name!r} is truncated", codec)
                value = uuid.UUID(bytes=bytes(view[pos : pos + 16]))
                pos += 16
            else:
                raise _error(f"event-stream header {name!r} has unknown value type {value_type}", codec)
            if name in headers:
                raise _error(f"event-stream header {name!r} appears twice", codec)
            headers[name] = value
    except UnicodeDecodeError as exc:
        raise _error(f"event-stream header is not valid UTF-8: {exc}", codec) from exc
    return headers


_HEADER_CACHE: dict[bytes, dict[str, HeaderValue]] = {}
_HEADER_CACHE_SIZE = 256


def _cached_headers(header_bytes: bytes, codec: str | None) -> dict[str, HeaderValue]:
    """:func:`parse_headers`, remembered by the raw bytes (a copy each time, so callers may change it).

    A stream repeats the same few header blocks (``:event-type``, ``:content-type``, ``:message-type``)
    for every event; parsing them was most of the cost of a frame.
    """
    cached = _HEADER_CACHE.get(header_bytes)
    if cached is None:
        cached = parse_headers(header_bytes, codec)  # a malformed block raises and is never cached
        if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[header_bytes] = cached
    return dict(cached)


class EventStreamDecoder:
    """Incremental decoder of AWS event-stream frames, correct for any split of the bytes.

    Feed bytes with :meth:`feed`, then pull complete messages with :meth:`next_message` until it returns
    ``None``. A frame that fails its checks raises :class:`~nemoflow.DecodeError` from ``next_message``;
    the frames before and after it (when the boundaries are still known) are not lost.

    Args:
        max_frame_bytes: Largest frame accepted; a larger declared length is an error (so a corrupt length
            never makes the decoder buffer without bound).
        codec: The codec named in the errors raised (the one decoding the stream).
    """

    __slots__ = ("_buffer", "_codec", "_error", "_max_frame_bytes", "_start")

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, codec: str | None = None) -> None:
        if max_frame_bytes < MIN_FRAME_BYTES:
            raise ValueError(f"max_frame_bytes must be at least {MIN_FRAME_BYTES}")
        self._codec = codec
        self._max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._start = 0
        self._error: str | None = None

    @property
    def broken(self) -> bool:
        """Whether the frame boundaries were lost (a bad prelude): the rest of the stream is ignored."""
        return self._error is not None

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a complete frame."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take the next bytes of the stream (ignored once the stream is broken)."""
        if self._error is None and data:
            self._buffer += data

    def next_message(self) -> EventStreamMessage | None:
        """The next complete message, or ``None`` when more bytes are needed.

        Raises:
            DecodeError: The next frame is corrupt (CRC mismatch, impossible lengths, malformed headers).
        """
        if self._error is not None:
            return None
        buffer, start = self._buffer, self._start
        available = len(buffer) - start
        if available < PRELUDE_BYTES:
            return None
        total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, start)
        computed = zlib.crc32(buffer[start : start + 8])
        if computed != prelude_crc:
            raise self._break(
                f"event-stream prelude CRC mismatch (sent {prelude_crc:#010x}, got {computed:#010x})"
            )
        if total < MIN_FRAME_BYTES or headers_length > total - MIN_FRAME_BYTES:
            raise self._break(
                f"event-stream frame has impossible lengths (total {total}, headers {headers_length})"
            )
        if total > self._max_frame_bytes:
            raise self._break(
                f"event-stream frame of {total} bytes exceeds the limit of {self._max_frame_bytes}"
            )
        if headers_length > MAX_HEADERS_BYTES:
            raise self._break(f"event-stream headers of {headers_length} bytes exceed {MAX_HEADERS_BYTES}")
        if available < total:
            return None
        view = memoryview(buffer)
        try:
            end = start + total
            (message_crc,) = _U32.unpack_from(buffer, end - CRC_BYTES)
            computed = zlib.crc32(view[start : end - CRC_BYTES])
            headers_end = start + PRELUDE_BYTES + headers_length
            header_bytes = bytes(view[start + PRELUDE_BYTES : headers_end])
            payload = bytes(view[headers_end : end - CRC_BYTES])
        finally:
            view.release()
        self._consume(total)
        if computed != message_crc:
            raise _error(
                f"event-stream message CRC mismatch (sent {message_crc:#010x}, got {computed:#010x})",
                self._codec,
            )
        return EventStreamMessage(_cached_headers(header_bytes, self._codec), payload)

    def _consume(self, count: int) -> None:
        self._start += count
        if self._start == len(self._buffer):
            self._buffer.clear()
            self._start = 0
        elif self._start >= _COMPACT_AT:
            del self._buffer[: self._start]
            self._start = 0

    def _break(self, message: str) -> DecodeError:
        self._error = message
        self._buffer = bytearray()
        self._start = 0
        return _error(message, self._codec)

    @property
    def error(self) -> str | None:
        """Why the stream broke, when it did."""
        return self._error


class FramedStreamDecoder:
    """Base of a codec's byte-stream decoder for event-stream bodies: frames in, one event decoder behind.

    Subclasses set ``_events`` (the codec's stream decoder, which keeps the reply) and implement
    :meth:`_dispatch` (what one frame means) and ``finish``. This class feeds the frames, keeps going past
    a bad frame (the first error is raised once the chunk's other frames are used), and passes the
    runtime's probes (``has_content``, ``text_limit``, ``truncated``) through to the event decoder.
    """

    __slots__ = ("_codec_name", "_events", "_frames")

    _events: Any

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, codec: str | None = None) -> None:
        """Start reading frames; ``codec`` names the codec in the errors raised."""
        self._codec_name = codec
        self._frames = EventStreamDecoder(max_frame_bytes=max_frame_bytes, codec=codec)

    @property
    def has_content(self) -> bool:
        """Whether generated output has arrived (time to first token)."""
        return bool(self._events.has_content)

    @property
    def text_limit(self) -> int:
        """Most characters kept per text of the reply (set on the event decoder behind)."""
        return int(self._events.text_limit)

    @text_limit.setter
    def text_limit(self, value: int) -> None:
        self._events.text_limit = value

    @property
    def truncated(self) -> bool:
        """Whether some text passed :attr:`text_limit` and was cut."""
        return bool(self._events.truncated)

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the body."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError(f"expected bytes, got {type(data).__name__}", path="$", codec=self._codec_name)
        self._frames.feed(data)
        first_error: DecodeError | None = None
        while True:
            try:
                message = self._frames.next_message()
                if message is None:
                    break
                self._dispatch(message)
            except DecodeError as exc:
                if first_error is None:
                    first_error = exc
                if self._frames.broken:
                    break
        if first_error is not None:
            raise first_error

    def _dispatch(self, message: EventStreamMessage) -> None:
        raise NotImplementedError
