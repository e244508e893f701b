"""The AWS event-stream frame decoder: any chunking, CRC checks, bounds, and agreement with botocore.

botocore's own parser (``botocore.eventstream.EventStreamBuffer``) is the outside reference: every frame the
test encoder builds must come out of both decoders the same, and both must reject a corrupted one.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, InvalidPayloadLength, ParserError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemoflow import DecodeError
from nemoflow_codec_bedrock import EventStreamDecoder, EventStreamMessage
from tests.codec_bedrock.frames import (
    BOOL_FALSE,
    BOOL_TRUE,
    BYTE,
    BYTES,
    INT,
    LONG,
    SHORT,
    STRING,
    TIMESTAMP,
    UUID,
    Header,
    encode_frame,
    encode_header,
    event_frame,
)

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_all(decoder: EventStreamDecoder) -> list[EventStreamMessage]:
    messages: list[EventStreamMessage] = []
    while (message := decoder.next_message()) is not None:
        messages.append(message)
    return messages


def decode_chunked(data: bytes, size: int) -> list[EventStreamMessage]:
    decoder = EventStreamDecoder()
    messages: list[EventStreamMessage] = []
    for start in range(0, len(data), size):
        decoder.feed(data[start : start + size])
        messages.extend(decode_all(decoder))
    assert decoder.pending == 0
    return messages


def botocore_messages(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(message.headers), message.payload) for message in buffer]


def as_botocore(value: Any) -> Any:
    """A header value as botocore reports it (UUIDs as their 16 bytes)."""
    return value.bytes if isinstance(value, uuid.UUID) else value


ALL_TYPES: list[Header] = [
    (":message-type", STRING, "event"),
    ("flag-true", BOOL_TRUE, True),
    ("flag-false", BOOL_FALSE, False),
    ("a-byte", BYTE, -7),
    ("a-short", SHORT, -30000),
    ("an-int", INT, 2_000_000_000),
    ("a-long", LONG, -(2**62)),
    ("some-bytes", BYTES, b"\x00\xff\x10"),
    ("a-timestamp", TIMESTAMP, 1_732_000_000_123),
    ("a-uuid", UUID, uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("unicodé", STRING, "häagen ☃"),
]


def test_every_header_type_decodes_and_agrees_with_botocore() -> None:
    frame = encode_frame(ALL_TYPES, b'{"hello":"world"}')
    decoder = EventStreamDecoder()
    decoder.feed(frame)
    (message,) = decode_all(decoder)
    assert dict(message.headers) == {name: value for name, _, value in ALL_TYPES}
    assert message.payload == b'{"hello":"world"}'
    (reference,) = botocore_messages(frame)
    assert reference == ({k: as_botocore(v) for k, v in message.headers.items()}, message.payload)


def test_empty_frame_and_empty_payload() -> None:
    frames = encode_frame([], b"") + encode_frame([(":event-type", STRING, "x")], b"")
    assert len(frames) == 16 + 16 + len(encode_header(":event-type", STRING, "x"))
    messages = decode_chunked(frames, 1)
    assert [(dict(m.headers), m.payload) for m in messages] == [({}, b""), ({":event-type": "x"}, b"")]
    assert botocore_messages(frames) == [({}, b""), ({":event-type": "x"}, b"")]


def test_same_messages_for_every_chunk_size() -> None:
    body = b"".join(
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "é" * n}}, n)
        for n in range(6)
    )
    whole = decode_chunked(body, len(body))
    assert len(whole) == 6
    for size in range(1, len(body) + 1):
        assert decode_chunked(body, size) == whole, f"chunk size {size}"


headers_strategy = st.lists(
    st.one_of(
        st.builds(lambda v: (BOOL_TRUE if v else BOOL_FALSE, v), st.booleans()),
        st.builds(lambda v: (BYTE, v), st.integers(-128, 127)),
        st.builds(lambda v: (SHORT, v), st.integers(-(2**15), 2**15 - 1)),
        st.builds(lambda v: (INT, v), st.integers(-(2**31), 2**31 - 1)),
        st.builds(lambda v: (LONG, v), st.integers(-(2**63), 2**63 - 1)),
        st.builds(lambda v: (TIMESTAMP, v), st.integers(-(2**63), 2**63 - 1)),
        st.builds(lambda v: (BYTES, v), st.binary(max_size=40)),
        st.builds(lambda v: (STRING, v), st.text(max_size=20)),
        st.builds(lambda v: (UUID, v), st.uuids()),
    ),
    max_size=5,
)


@st.composite
def frames(draw: st.DrawFn) -> tuple[list[tuple[dict[str, Any], bytes]], bytes]:
    expected: list[tuple[dict[str, Any], bytes]] = []
    body = b""
    for _ in range(draw(st.integers(0, 4))):
        typed = draw(headers_strategy)
        names = draw(
            st.lists(st.text(min_size=1, max_size=8), min_size=len(typed), max_size=len(typed), unique=True)
        )
        headers = [(name, kind, value) for name, (kind, value) in zip(names, typed, strict=True)]
        payload = draw(st.binary(max_size=80))
        body += encode_frame(headers, payload)
        expected.append(({name: value for name, _, value in headers}, payload))
    return expected, body


@PROPERTY
@given(data=frames(), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_any_frames_in_any_chunking_match_the_encoder_and_botocore(
    data: tuple[list[tuple[dict[str, Any], bytes]], bytes], cuts: list[int]
) -> None:
    expected, body = data
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    decoder = EventStreamDecoder()
    messages: list[EventStreamMessage] = []
    for start, end in zip([0, *points], [*points, len(body)], strict=True):
        decoder.feed(body[start:end])
        messages.extend(decode_all(decoder))
    assert [(dict(m.headers), m.payload) for m in messages] == expected
    assert botocore_messages(body) == [({k: as_botocore(v) for k, v in h.items()}, p) for h, p in expected]


# ----------------------------------------------------------------------------------------- corruption


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_bad_message_crc_is_rejected_by_both_and_only_that_frame_is_lost() -> None:
    first = event_frame("messageStart", {"role": "assistant"})
    bad = _flip(event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}), -6)
    last = event_frame("messageStop", {"stopReason": "end_turn"})
    with pytest.raises(ChecksumMismatch):
        botocore_messages(bad)
    decoder = EventStreamDecoder()
    decoder.feed(first + bad + last)
    assert decoder.next_message() is not None
    with pytest.raises(DecodeError, match="message CRC mismatch") as info:
        decoder.next_message()
    assert info.value.path == "$" and info.value.codec == "bedrock-converse"
    after = decoder.next_message()
    assert after is not None and after.header_str(":event-type") == "messageStop"
    assert not decoder.broken


def test_bad_prelude_crc_is_rejected_by_both_and_breaks_the_stream() -> None:
    frame = event_frame("messageStart", {"role": "assistant"})
    for index in range(12):  # any bit of the prelude, its CRC included
        corrupt = _flip(frame, index)
        with pytest.raises(ParserError):
            botocore_messages(corrupt + frame)
        decoder = EventStreamDecoder()
        decoder.feed(corrupt + frame)
        with pytest.raises(DecodeError, match="prelude CRC mismatch"):
            decoder.next_message()
        assert decoder.broken and decoder.error is not None
        decoder.feed(frame)  # the boundaries are lost: nothing more comes out
        assert decoder.next_message() is None
        assert decoder.pending == 0


def test_prelude_is_checked_before_the_rest_of_the_frame_arrives() -> None:
    frame = event_frame("messageStart", {"role": "assistant"})
    decoder = EventStreamDecoder()
    decoder.feed(_flip(frame, 2)[:12])
    with pytest.raises(DecodeError):
        decoder.next_message()


def _prelude(total: int, headers: int) -> bytes:
    head = struct.pack("!II", total, headers)
    return head + struct.pack("!I", zlib.crc32(head))


@pytest.mark.parametrize(
    ("total", "headers", "message"),
    [
        (15, 0, "impossible lengths"),
        (100, 90, "impossible lengths"),
        (64 * 1024 * 1024, 0, "exceeds the limit"),
        (16 + 200 * 1024, 200 * 1024, "headers of"),
    ],
)
def test_impossible_or_oversized_frames_fail_without_buffering(
    total: int, headers: int, message: str
) -> None:
    decoder = EventStreamDecoder()
    decoder.feed(_prelude(total, headers))
    with pytest.raises(DecodeError, match=message):
        decoder.next_message()
    assert decoder.broken
    decoder.feed(b"\x00" * 1024)
    assert decoder.pending == 0


def test_botocore_rejects_the_oversized_frame_too() -> None:
    with pytest.raises(InvalidPayloadLength):
        botocore_messages(_prelude(64 * 1024 * 1024, 0))


def test_the_frame_limit_is_configurable() -> None:
    frame = event_frame("messageStart", {"role": "assistant"})
    decoder = EventStreamDecoder(max_frame_bytes=len(frame) - 1)
    decoder.feed(frame)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decoder.next_message()
    exact = EventStreamDecoder(max_frame_bytes=len(frame))
    exact.feed(frame)
    assert exact.next_message() is not None
    with pytest.raises(ValueError):
        EventStreamDecoder(max_frame_bytes=8)


def _frame_with_raw_headers(header_bytes: bytes, payload: bytes = b"{}") -> bytes:
    total = 12 + len(header_bytes) + len(payload) + 4
    body = _prelude(total, len(header_bytes)) + header_bytes + payload
    return body + struct.pack("!I", zlib.crc32(body))


@pytest.mark.parametrize(
    ("header_bytes", "message"),
    [
        (b"\x03abc\x0a", "unknown value type 10"),
        (b"\x03abc", "no value type"),
        (b"\x09abc", "name is truncated"),
        (b"\x03abc\x07\x00\x09xy", "is truncated"),
        (b"\x03abc\x04\x00\x01", "is truncated"),
        (b"\x03abc\x09" + b"\x00" * 15, "is truncated"),
        (b"\x02\xff\xfe\x00", "not valid UTF-8"),
        (b"\x01a\x00\x01a\x01", "appears twice"),
    ],
)
def test_malformed_headers_lose_only_their_frame(header_bytes: bytes, message: str) -> None:
    good = event_frame("messageStop", {"stopReason": "end_turn"})
    decoder = EventStreamDecoder()
    decoder.feed(_frame_with_raw_headers(header_bytes) + good)
    with pytest.raises(DecodeError, match=message):
        decoder.next_message()
    assert not decoder.broken
    following = decoder.next_message()
    assert following is not None and following.header_str(":event-type") == "messageStop"


def test_buffer_is_compacted_on_long_streams() -> None:
    frame = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x" * 500}})
    decoder = EventStreamDecoder()
    count = 0
    for _ in range(400):  # ~200 KiB through one decoder, fed a frame and a half at a time
        decoder.feed(frame + frame[:100])
        count += len(decode_all(decoder))
        decoder.feed(frame[100:])
        count += len(decode_all(decoder))
    assert count == 800 and decoder.pending == 0


def test_header_str_only_returns_strings() -> None:
    message = EventStreamMessage({"a": "x", "b": 3, "c": True}, b"")
    assert (message.header_str("a"), message.header_str("b"), message.header_str("c")) == ("x", None, None)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
