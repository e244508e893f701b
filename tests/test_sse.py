"""Tests for the incremental Server-Sent Events decoder in ``nemoflow._sse``."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemoflow._errors import DecodeError
from nemoflow._sse import SSEDecoder, SSEEvent

MIB = 1024 * 1024
BOM = b"\xef\xbb\xbf"


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def decode(chunks: Iterable[bytes], **options: Any) -> list[SSEEvent]:
    """Feed every chunk to a fresh decoder, then finish it; return all events."""
    decoder = SSEDecoder(**options)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.finish())
    return events


def split_at(stream: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Cut ``stream`` at the given offsets (any order, duplicates allowed, empty chunks kept)."""
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[start:end] for start, end in itertools.pairwise(bounds)]


def every_two_way_split(stream: bytes) -> Iterator[list[bytes]]:
    for offset in range(len(stream) + 1):
        yield [stream[:offset], stream[offset:]]


def reference_parse(stream: bytes) -> tuple[list[SSEEvent], str]:
    """A deliberately plain, character-at-a-time reading of the WHATWG algorithm plus nemoflow's rules.

    Returns the events and the final "last event ID buffer".
    """
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]

    lines: list[str] = []
    current = ""
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\r":
            lines.append(current)
            current = ""
            if position + 1 < len(text) and text[position + 1] == "\n":
                position += 1
        elif char == "\n":
            lines.append(current)
            current = ""
        else:
            current += char
        position += 1
    if current:
        lines.append(current)  # nemoflow: an unterminated last line still counts
    lines.append("")  # nemoflow: the end of the stream dispatches what is pending

    events: list[SSEEvent] = []
    data_buffer = ""
    event_type: str | None = None
    event_id: str | None = None
    retry: int | None = None
    last_event_id = ""
    for line in lines:
        if line == "":
            if data_buffer != "":
                if data_buffer.endswith("\n"):
                    data_buffer = data_buffer[:-1]
                events.append(SSEEvent(data=data_buffer, event=event_type, id=event_id, retry=retry))
            data_buffer = ""
            event_type = None
            event_id = None
            retry = None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
        else:
            field, value = line, ""
        if field == "event":
            event_type = value
        elif field == "data":
            data_buffer += value + "\n"
        elif field == "id":
            if "\x00" not in value:
                event_id = value
                last_event_id = value
        elif field == "retry":
            if value != "" and all(c in "0123456789" for c in value):
                retry = int(value)
    return events, last_event_id


def longest_line(stream: bytes) -> int:
    """Length in bytes of the longest line of ``stream`` (after the BOM, without line endings)."""
    if stream.startswith(BOM):
        stream = stream[len(BOM) :]
    return max(len(line) for line in stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"))


# --------------------------------------------------------------------------------------------------
# API surface and construction
# --------------------------------------------------------------------------------------------------


def test_public_names() -> None:
    import nemoflow._sse as module

    assert module.__all__ == ["SSEDecoder", "SSEEvent"]


def test_event_is_frozen_value_object() -> None:
    event = SSEEvent(data="x", event=None, id=None, retry=None)
    assert event == SSEEvent("x", None, None, None)
    assert hash(event) == hash(SSEEvent("x", None, None, None))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "y"  # type: ignore[misc]


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10", None])
def test_max_line_bytes_must_be_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        SSEDecoder(max_line_bytes=bad)


def test_initial_state() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id == ""
    assert decoder.feed(b"") == []
    assert decoder.finish() == []


# --------------------------------------------------------------------------------------------------
# line endings
# --------------------------------------------------------------------------------------------------

LF_STREAM = b"event: a\nid: 1\ndata: one\ndata: two\n\n: note\ndata: three\n\n"
EXPECTED_LINE_ENDING_EVENTS = [
    SSEEvent(data="one\ntwo", event="a", id="1", retry=None),
    SSEEvent(data="three", event=None, id=None, retry=None),
]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_all_line_endings_give_the_same_events(ending: bytes) -> None:
    stream = LF_STREAM.replace(b"\n", ending)
    assert decode([stream]) == EXPECTED_LINE_ENDING_EVENTS
    for chunks in every_two_way_split(stream):
        assert decode(chunks) == EXPECTED_LINE_ENDING_EVENTS
    assert decode([bytes([b]) for b in stream]) == EXPECTED_LINE_ENDING_EVENTS


def test_mixed_line_endings() -> None:
    stream = b"data: a\rdata: b\r\ndata: c\n\r\n"
    assert decode([stream]) == [SSEEvent("a\nb\nc", None, None, None)]


def test_crlf_split_between_chunks_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    # "data: a" CR | LF "data: b" CR LF CR | LF: if the split CRLF counted twice, "a" would be
    # dispatched on its own.
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r\n\r") == [SSEEvent("a\nb", None, None, None)]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: c\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r\n") == [SSEEvent("c", None, None, None)]
    assert decoder.finish() == []


def test_cr_then_lf_in_later_chunk_after_empty_chunks() -> None:
    assert decode([b"data: a\r", b"", b"", b"\n", b"data: b\n\n"]) == [SSEEvent("a\nb", None, None, None)]


def test_cr_cr_is_two_line_endings() -> None:
    assert decode([b"data: a\r", b"\r", b"data: b\r\r"]) == [
        SSEEvent("a", None, None, None),
        SSEEvent("b", None, None, None),
    ]


def test_cr_followed_by_other_byte_ends_the_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [SSEEvent("a", None, None, None)]
    # The LF after a CR that was *not* last in its chunk is its own line ending (a blank line).
    assert decoder.feed(b"data: b\rx") == []
    assert decoder.feed(b"\n") == []  # "x" is an unknown field; nothing dispatched yet
    assert decoder.feed(b"\n") == [SSEEvent("b", None, None, None)]


def test_splitlines_separators_are_not_line_breaks() -> None:
    payload = "a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i"
    stream = f"data: {payload}\n\n".encode()
    assert decode([stream]) == [SSEEvent(payload, None, None, None)]


# --------------------------------------------------------------------------------------------------
# fields
# --------------------------------------------------------------------------------------------------


def test_comments_are_ignored() -> None:
    stream = b": keep-alive\n\n: OPENROUTER PROCESSING\ndata: x\n:\n:data: y\n\n"
    assert decode([stream]) == [SSEEvent("x", None, None, None)]


def test_multiline_data_is_joined_with_newlines() -> None:
    assert decode([b"data: first\ndata: second\ndata: third\n\n"]) == [
        SSEEvent("first\nsecond\nthird", None, None, None)
    ]


@pytest.mark.parametrize(
    ("line", "value"),
    [
        (b"data:no-space", "no-space"),
        (b"data: one-space", "one-space"),
        (b"data:  two-spaces", " two-spaces"),
        (b"data:\ttab", "\ttab"),
        (b"data: ", ""),
        (b"data:", ""),
        (b"data", ""),
        (b"data: a:b: c", "a:b: c"),
    ],
)
def test_data_value_parsing(line: bytes, value: str) -> None:
    assert decode([line + b"\n\n"]) == [SSEEvent(value, None, None, None)]


def test_empty_data_lines_still_count() -> None:
    assert decode([b"data\ndata\n\n"]) == [SSEEvent("\n", None, None, None)]
    assert decode([b"data:\n\n"]) == [SSEEvent("", None, None, None)]


def test_unknown_and_misspelled_fields_are_ignored() -> None:
    stream = b"foo: bar\nDATA: loud\ndata : spaced\nData: x\n dat: y\nevent\n\n"
    # "event" alone sets an empty event type, but there is no data, so nothing is dispatched.
    assert decode([stream]) == []


def test_event_type_and_reset_between_events() -> None:
    stream = b"event: delta\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n"
    assert decode([stream]) == [
        SSEEvent("1", "delta", None, None),
        SSEEvent("2", None, None, None),
        SSEEvent("3", "", None, None),
    ]


def test_last_event_type_line_wins() -> None:
    assert decode([b"event: a\nevent: b\ndata: x\n\n"]) == [SSEEvent("x", "b", None, None)]


def test_block_without_data_dispatches_nothing_and_resets_event_type() -> None:
    stream = b"event: x\n\ndata: y\n\n"
    assert decode([stream]) == [SSEEvent("y", None, None, None)]


def test_id_field_and_last_event_id() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 42\ndata: a\n\n") == [SSEEvent("a", None, "42", None)]
    assert decoder.last_event_id == "42"
    # No id in this event: the event's id is None, but the buffer keeps its value.
    assert decoder.feed(b"data: b\n\n") == [SSEEvent("b", None, None, None)]
    assert decoder.last_event_id == "42"
    # The last id line of an event wins.
    assert decoder.feed(b"id: 1\nid: 2\ndata: c\n\n") == [SSEEvent("c", None, "2", None)]
    assert decoder.last_event_id == "2"
    # An id in a block without data still updates the buffer.
    assert decoder.feed(b"id: 7\n\n") == []
    assert decoder.last_event_id == "7"
    # An id line without a value resets the buffer to "".
    assert decoder.feed(b"id\ndata: d\n\n") == [SSEEvent("d", None, "", None)]
    assert decoder.last_event_id == ""


def test_id_containing_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: ok\ndata: a\n\n") == [SSEEvent("a", None, "ok", None)]
    assert decoder.feed(b"id: bad\x00id\ndata: b\n\n") == [SSEEvent("b", None, None, None)]
    assert decoder.last_event_id == "ok"
    # A NUL-free id earlier in the same event is kept.
    assert decoder.feed(b"id: good\nid: \x00\ndata: c\n\n") == [SSEEvent("c", None, "good", None)]
    assert decoder.last_event_id == "good"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"3000", 3000),
        (b"0", 0),
        (b"007", 7),
        (b"", None),
        (b"3.5", None),
        (b"-1", None),
        (b"+1", None),
        (b"1e3", None),
        (b" 10", None),  # a second space is part of the value
        (b"10 ", None),
        ("\u0663".encode(), None),  # ARABIC-INDIC DIGIT THREE: a digit, but not an ASCII one
        ("\u00b2".encode(), None),  # SUPERSCRIPT TWO
    ],
)
def test_retry_field(value: bytes, expected: int | None) -> None:
    assert decode([b"retry: " + value + b"\ndata: x\n\n"]) == [SSEEvent("x", None, None, expected)]


def test_retry_does_not_leak_into_next_event() -> None:
    stream = b"retry: 10\ndata: a\n\ndata: b\n\nretry: 5\nretry: x\ndata: c\n\n"
    assert decode([stream]) == [
        SSEEvent("a", None, None, 10),
        SSEEvent("b", None, None, None),
        SSEEvent("c", None, None, 5),
    ]


# --------------------------------------------------------------------------------------------------
# UTF-8 and the byte order mark
# --------------------------------------------------------------------------------------------------


def test_bom_at_start_is_stripped() -> None:
    stream = BOM + b"data: a\n\n"
    expected = [SSEEvent("a", None, None, None)]
    assert decode([stream]) == expected
    for chunks in every_two_way_split(stream):
        assert decode(chunks) == expected
    assert decode([bytes([b]) for b in stream]) == expected
    assert decode([b"", b"\xef", b"", b"\xbb", b"\xbf", b"data: a", b"\n", b"\n"]) == expected


def test_bom_only_stream_gives_nothing() -> None:
    assert decode([BOM]) == []
    assert decode([b"\xef", b"\xbb\xbf"]) == []


def test_bom_later_in_the_stream_is_kept() -> None:
    assert decode([b"data: " + BOM + b"x\n\n"]) == [SSEEvent("\ufeffx", None, None, None)]
    # Only one BOM is stripped; a second one makes the first field name "\ufeffdata", which is unknown.
    assert decode([BOM + BOM + b"data: x\n\ndata: y\n\n"]) == [SSEEvent("y", None, None, None)]
    # A BOM at the start of a later line is not stripped either.
    assert decode([b"data: a\n\n" + BOM + b"data: b\n\n"]) == [SSEEvent("a", None, None, None)]


def test_partial_bom_is_ordinary_data() -> None:
    # EF BB followed by something else is not a BOM: it is an invalid UTF-8 sequence, replaced.
    assert decode([b"\xef\xbb", b"data: x\n\n"]) == []  # field name "\ufffddata"
    assert decode([b"\xef\xbb"]) == []
    assert decode([b"data: \xef\xbb\n\n"]) == [SSEEvent("\ufffd", None, None, None)]


def test_multibyte_utf8_split_at_every_offset() -> None:
    text = "héllo 世界 🎉"
    stream = f"event: größe\ndata: {text}\nid: ü\n\n".encode()
    expected = [SSEEvent(text, "größe", "ü", None)]
    assert decode([stream]) == expected
    for chunks in every_two_way_split(stream):
        assert decode(chunks) == expected
    assert decode([bytes([b]) for b in stream]) == expected
    for first in range(len(stream)):
        for second in range(first, len(stream)):
            assert decode(split_at(stream, [first, second])) == expected


def test_invalid_utf8_is_replaced_not_raised() -> None:
    stream = b"data: \xff\xfe ok\ndata: \xe4\xb8\ndata: \xc3\n\n"
    expected = [SSEEvent("\ufffd\ufffd ok\n\ufffd\n\ufffd", None, None, None)]
    assert decode([stream]) == expected
    for chunks in every_two_way_split(stream):
        assert decode(chunks) == expected


def test_incomplete_utf8_at_end_of_stream_is_replaced() -> None:
    assert decode([b"data: ok \xf0\x9f\x8e"]) == [SSEEvent("ok \ufffd", None, None, None)]


# --------------------------------------------------------------------------------------------------
# line length limit
# --------------------------------------------------------------------------------------------------


def test_two_mib_line_exceeds_default_limit() -> None:
    stream = b"data: " + b"x" * (2 * MIB) + b"\n\n"
    decoder = SSEDecoder()
    with pytest.raises(DecodeError) as info:
        decoder.feed(stream)
    assert "1048576-byte limit" in str(info.value)
    assert "max_line_bytes" in str(info.value)
    assert info.value.path == "$"
    assert isinstance(info.value, ValueError)


def test_two_mib_line_decodes_with_raised_limit() -> None:
    payload = "x" * (2 * MIB)
    stream = b"data: " + payload.encode() + b"\n\n"
    assert decode([stream], max_line_bytes=4 * MIB) == [SSEEvent(payload, None, None, None)]
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    assert decode(chunks, max_line_bytes=4 * MIB) == [SSEEvent(payload, None, None, None)]


def test_endless_line_raises_before_it_is_all_buffered() -> None:
    decoder = SSEDecoder()
    piece = b"x" * 65536
    for _ in range(16):  # exactly 1 MiB buffered: still allowed
        assert decoder.feed(piece) == []
    with pytest.raises(DecodeError, match="1048576-byte limit"):
        decoder.feed(b"x")


def test_server_sending_an_endless_line_is_stopped_early() -> None:
    decoder = SSEDecoder()
    piece = b"data: " + b"y" * 65530
    fed = 0
    with pytest.raises(DecodeError):
        for _ in range(1000):  # 64 MiB if nothing stopped it
            decoder.feed(piece)
            fed += 1
    assert fed == 16


def test_line_exactly_at_limit_is_accepted_and_one_more_byte_is_not() -> None:
    # 10 bytes of line, line endings do not count.
    assert decode([b"data:12345\r\n\r\n"], max_line_bytes=10) == [SSEEvent("12345", None, None, None)]
    assert decode([b"data:1234", b"5", b"\r", b"\n\r\n"], max_line_bytes=10) == [
        SSEEvent("12345", None, None, None)
    ]
    with pytest.raises(DecodeError, match="10-byte limit"):
        decode([b"data:123456\n\n"], max_line_bytes=10)
    decoder = SSEDecoder(max_line_bytes=10)
    decoder.feed(b"data:12345")
    with pytest.raises(DecodeError):
        decoder.feed(b"6")  # no line ending yet, but the partial line is already too long


def test_limit_applies_to_every_kind_of_line() -> None:
    with pytest.raises(DecodeError):
        decode([b": a very long comment\n"], max_line_bytes=10)
    with pytest.raises(DecodeError):
        decode([b"data: ok\nunknownfield: 123456\n\n"], max_line_bytes=10)
    decoder = SSEDecoder(max_line_bytes=10)
    with pytest.raises(DecodeError):  # the unfinished tail of a chunk is checked at once, too
        decoder.feed(b"data: ok\n\nxxxxxxxxxxx")
    with pytest.raises(DecodeError):  # and the multi-byte length, not the character count
        decode(["data:éééé\n\n".encode()], max_line_bytes=8)


def test_bom_does_not_count_towards_the_limit() -> None:
    assert decode([BOM + b"data:12345\n\n"], max_line_bytes=10) == [SSEEvent("12345", None, None, None)]


def test_decoder_is_closed_after_limit_error() -> None:
    decoder = SSEDecoder(max_line_bytes=10)
    with pytest.raises(DecodeError):
        decoder.feed(b"data: 0123456789\n\n")
    with pytest.raises(DecodeError):
        decoder.feed(b"data: ok\n\n")
    assert decoder.finish() == []


# --------------------------------------------------------------------------------------------------
# finish()
# --------------------------------------------------------------------------------------------------


def test_finish_surfaces_unterminated_last_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\nevent: end\ndata: tail") == [SSEEvent("a", None, None, None)]
    assert decoder.finish() == [SSEEvent("tail", "end", None, None)]


@pytest.mark.parametrize("ending", [b"\n", b"\r", b"\r\n"])
def test_finish_surfaces_event_missing_its_blank_line(ending: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 9" + ending + b"data: x" + ending + b"data: y" + ending) == []
    assert decoder.finish() == [SSEEvent("x\ny", None, "9", None)]


def test_finish_with_nothing_pending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n") == [SSEEvent("a", None, None, None)]
    assert decoder.finish() == []
    assert SSEDecoder().finish() == []


def test_finish_without_data_dispatches_nothing() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: x\nid: 3\n: comment")
    assert decoder.finish() == []
    assert decoder.last_event_id == "3"


def test_finish_twice_and_feed_after_finish() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a")
    assert decoder.finish() == [SSEEvent("a", None, None, None)]
    assert decoder.finish() == []
    with pytest.raises(DecodeError, match="finish"):
        decoder.feed(b"data: b\n\n")
    with pytest.raises(DecodeError):
        decoder.feed(b"")


# --------------------------------------------------------------------------------------------------
# realistic transcripts
# --------------------------------------------------------------------------------------------------


def openai_transcript() -> bytes:
    base = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": ""},
        {"content": "Héllo"},
        {"content": ", 世界"},
        {"content": " 🎉"},
        {},
    ]
    parts = [b": keep-alive\n\n"]
    for index, delta in enumerate(deltas):
        finish = "stop" if index == len(deltas) - 1 else None
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        parts.append(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")
        if index == 2:
            parts.append(b": keep-alive\n\n")
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def check_openai_events(events: list[SSEEvent]) -> None:
    assert [event.event for event in events] == [None] * 6
    assert events[-1].data == "[DONE]"
    chunks = [json.loads(event.data) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text == "Héllo, 世界 🎉"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 1 << 20])
def test_openai_chat_stream(chunk_size: int) -> None:
    stream = openai_transcript()
    events = decode(stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size))
    check_openai_events(events)


def test_openai_chat_stream_with_crlf() -> None:
    check_openai_events(decode([openai_transcript().replace(b"\n", b"\r\n")]))


def anthropic_transcript() -> bytes:
    def event(name: str, payload: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps(payload)}\n\n"

    return "".join(
        [
            event(
                "message_start",
                {"type": "message_start", "message": {"id": "msg_1", "role": "assistant", "content": []}},
            ),
            event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            event("ping", {"type": "ping"}),
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
            ),
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " ✓"}},
            ),
            event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 2},
                },
            ),
            event("message_stop", {"type": "message_stop"}),
        ]
    ).encode()


@pytest.mark.parametrize("chunk_size", [1, 5, 100, 1 << 20])
def test_anthropic_stream_with_event_lines(chunk_size: int) -> None:
    stream = anthropic_transcript()
    events = decode(stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size))
    assert [event.event for event in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(event.data) for event in events]
    assert all(payload["type"] == event.event for payload, event in zip(payloads, events, strict=True))
    text = "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")
    assert text == "Hi ✓"
    assert all(event.id is None and event.retry is None for event in events)


def test_stream_closed_without_final_blank_line() -> None:
    stream = openai_transcript()[: -len(b"\n\n")]  # server forgot the last blank line
    check_openai_events(decode([stream]))


# --------------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------------

no_line_break = st.characters(codec="utf-8", exclude_characters="\r\n")
values = st.one_of(
    st.text(no_line_break, max_size=12),
    st.sampled_from(["", " ", "  x", "[DONE]", "a\x00b", "\ufeff", "12", "007", "-3", "1.5", ":", "é世🎉"]),
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
)
field_names = st.one_of(
    st.sampled_from(["data", "data", "data", "event", "id", "retry", "", "foo", "Data", "data "]),
    st.text(no_line_break, max_size=5),
)
separators = st.sampled_from([": ", ":", ":  ", ""])
field_lines = st.builds(lambda name, sep, value: name + sep + value, field_names, separators, values)
lines = st.one_of(field_lines, field_lines, st.just(""), st.builds(lambda t: ":" + t, values))
terminators = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def transcripts(draw: st.DrawFn) -> bytes:
    body = draw(st.lists(st.tuples(lines, terminators), max_size=30))
    text = "".join(line + ending for line, ending in body)
    if draw(st.booleans()):
        text += draw(field_lines)  # an unterminated last line
    prefix = draw(st.sampled_from(["", "", "\ufeff", "\ufeff\ufeff"]))
    return (prefix + text).encode()


@st.composite
def transcripts_with_cuts(draw: st.DrawFn, streams: st.SearchStrategy[bytes]) -> tuple[bytes, list[int]]:
    stream = draw(streams)
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=12))
    return stream, cuts


byte_pieces = st.sampled_from(
    [
        b"\r",
        b"\n",
        b"\r\n",
        b"data",
        b"data:",
        b"data: ",
        b"event:",
        b"id: ",
        b"retry: 5",
        b":",
        b" ",
        b"x",
        b"\x00",
        BOM,
        b"\xef\xbb",
        b"\xe4\xb8",
        b"\x96",
        b"\xf0\x9f\x8e\x89",
        b"\xff",
        b"\xc3",
    ]
)
raw_streams = st.lists(byte_pieces, max_size=40).map(b"".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transcripts_with_cuts(transcripts()))
def test_any_chunking_matches_whole_stream_and_reference(case: tuple[bytes, list[int]]) -> None:
    stream, cuts = case
    expected, expected_last_id = reference_parse(stream)

    whole = SSEDecoder()
    assert whole.feed(stream) + whole.finish() == expected
    assert whole.last_event_id == expected_last_id

    chunked = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in split_at(stream, cuts):
        events.extend(chunked.feed(chunk))
    events.extend(chunked.finish())
    assert events == expected
    assert chunked.last_event_id == expected_last_id


@settings(max_examples=300, deadline=None)
@given(transcripts_with_cuts(raw_streams))
def test_arbitrary_bytes_any_chunking_matches_reference(case: tuple[bytes, list[int]]) -> None:
    stream, cuts = case
    expected, _ = reference_parse(stream)
    assert decode([stream]) == expected
    assert decode(split_at(stream, cuts)) == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transcripts_with_cuts(st.one_of(transcripts(), raw_streams)), st.integers(1, 24))
def test_line_limit_does_not_depend_on_chunking(case: tuple[bytes, list[int]], limit: int) -> None:
    stream, cuts = case
    too_long = longest_line(stream) > limit
    for chunks in ([stream], split_at(stream, cuts)):
        if too_long:
            with pytest.raises(DecodeError):
                decode(chunks, max_line_bytes=limit)
        else:
            assert decode(chunks, max_line_bytes=limit) == reference_parse(stream)[0]
