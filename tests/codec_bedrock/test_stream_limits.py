"""Long ConverseStream replies: decoded in full, cut at ``text_limit`` (text, reasoning, tool input).

Both decoders bound their text: the event decoder, and the byte decoder that wraps it (its ``text_limit``
is the event decoder's). The event decoder's memory stays flat over a long stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest

from nemoflow import AnnotatedLlmResponse, CallStatus, FinishReason, Flow
from nemoflow.codec_support import STREAM_TEXT_LIMIT
from nemoflow_codec_bedrock import _response
from nemoflow_codec_bedrock._response import ConverseByteStreamDecoder, ConverseStreamDecoder
from tests.codec_bedrock.frames import STRING, encode_frame
from tests.support import FLAT_STREAM_BYTES, Collector, stream_memory_growth, words

URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
Event = tuple[str, dict[str, Any]]


def arguments_pieces(count: int) -> tuple[str, list[str]]:
    """A tool input of ``count`` list items, streamed as one ``toolUse.input`` delta per item."""
    pieces = ['{"items": [0', *(f", {index}" for index in range(1, count)), "]}"]
    return "".join(pieces), pieces


def delta(index: int, body: dict[str, Any]) -> Event:
    return "contentBlockDelta", {"contentBlockIndex": index, "delta": body}


def events(
    text: Sequence[str] = (),
    reasoning: Sequence[str] = (),
    tool_input: Sequence[str] = (),
    extra_text: Sequence[str] = (),
) -> list[Event]:
    """messageStart, a reasoning block, a text block, a toolUse block, a second text block, stop, metadata."""
    out: list[Event] = [("messageStart", {"role": "assistant"})]
    index = 0
    if reasoning:
        out += [delta(index, {"reasoningContent": {"text": piece}}) for piece in reasoning]
        out.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for pieces in (text, extra_text):
        if pieces:
            out += [delta(index, {"text": piece}) for piece in pieces]
            out.append(("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
    if tool_input:
        start = {"toolUse": {"toolUseId": "tooluse_1", "name": "store"}}
        out.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        out += [delta(index, {"toolUse": {"input": piece}}) for piece in tool_input]
        out.append(("contentBlockStop", {"contentBlockIndex": index}))
    out.append(("messageStop", {"stopReason": "tool_use" if tool_input else "end_turn"}))
    usage = {"inputTokens": 12, "outputTokens": 4321, "totalTokens": 4333}
    out.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 100}}))
    return out


def frames(stream: list[Event]) -> list[bytes]:
    """One event-stream frame per event, as Bedrock sends them (with the ``p`` padding key)."""
    return [
        encode_frame(
            [
                (":event-type", STRING, name),
                (":content-type", STRING, "application/json"),
                (":message-type", STRING, "event"),
            ],
            orjson.dumps({**payload, "p": "abcdefghijklmnop"[: 1 + serial % 16]}),
        )
        for serial, (name, payload) in enumerate(stream)
    ]


def decode(
    chunks: list[bytes], limit: int | None = None
) -> tuple[AnnotatedLlmResponse, ConverseByteStreamDecoder]:
    decoder = ConverseByteStreamDecoder("m")
    if limit is not None:
        decoder.text_limit = limit
    for chunk in chunks:
        decoder.feed(chunk)
    return decoder.finish(), decoder


def test_the_default_limit_is_the_shared_one_and_the_byte_decoder_passes_it_on() -> None:
    assert ConverseStreamDecoder().text_limit == STREAM_TEXT_LIMIT
    assert ConverseStreamDecoder().truncated is False
    decoder = ConverseByteStreamDecoder()
    assert decoder.text_limit == STREAM_TEXT_LIMIT and decoder.truncated is False
    decoder.text_limit = 5
    assert decoder.text_limit == 5
    decoder.feed(b"".join(frames(events(["abc", "def"]))))
    assert decoder.finish().text == "abcde"
    assert decoder.truncated is True


def test_a_long_stream_decodes_to_exactly_its_text_reasoning_and_tool_input() -> None:
    text, reasoning = words(5000), words(3000, "r")
    arguments, pieces = arguments_pieces(2000)
    reply, decoder = decode(frames(events(text, reasoning, pieces)))
    assert reply.text == "".join(text)
    assert reply.reasoning_text == "".join(reasoning)
    assert reply.tool_calls[0].arguments == {"items": list(range(2000))}
    assert reply.tool_calls[0].arguments_raw == arguments
    assert reply.usage.completion_tokens == 4321
    assert reply.finish_reason is FinishReason.TOOL_CALLS
    assert decoder.truncated is False


def test_text_beyond_the_limit_is_cut_and_what_follows_is_still_read() -> None:
    text = words(3000)
    reply, decoder = decode(frames(events(text)), limit=1000)
    assert reply.text == "".join(text)[:1000]
    assert reply.choices[0].text == reply.text
    assert decoder.truncated is True
    assert reply.usage.completion_tokens == 4321 and reply.usage.prompt_tokens == 12
    assert reply.finish_reason is FinishReason.STOP
    assert reply.extra == {"metrics": {"latencyMs": 100}}


def test_reasoning_and_tool_input_beyond_the_limit_are_cut() -> None:
    reasoning = words(3000, "r")
    arguments, pieces = arguments_pieces(1000)
    reply, decoder = decode(frames(events(["ok"], reasoning, pieces)), limit=1000)
    assert reply.reasoning_text == "".join(reasoning)[:1000]
    call = reply.tool_calls[0]
    assert call.arguments_raw == arguments[:1000]
    assert call.arguments is None  # the cut JSON no longer parses: kept as text
    assert (call.id, call.name) == ("tooluse_1", "store")
    assert reply.text == "ok"
    assert reply.finish_reason is FinishReason.TOOL_CALLS
    assert decoder.truncated is True


def test_the_limit_applies_to_the_text_joined_over_blocks() -> None:
    first, second = words(150, "a"), words(150, "b")  # about 900 characters each
    reply, decoder = decode(frames(events(first, extra_text=second)), limit=1000)
    assert reply.text == ("".join(first) + "".join(second))[:1000]
    assert decoder.truncated is True


def test_a_text_of_exactly_the_limit_is_not_truncated() -> None:
    reply, decoder = decode(frames(events(["x" * 10] * 100)), limit=1000)
    assert reply.text == "x" * 1000
    assert decoder.truncated is False


def test_the_event_decoder_cuts_too() -> None:
    text = words(3000)
    decoder = ConverseStreamDecoder("m")
    decoder.text_limit = 1000
    for name, payload in events(text):
        decoder.feed(orjson.dumps(payload), name)
    reply = decoder.finish()
    assert reply.text == "".join(text)[:1000]
    assert decoder.truncated is True
    assert reply.usage.total_tokens == 4333


def _feed_events(stream: list[tuple[bytes, str]]) -> None:
    decoder = ConverseStreamDecoder("m")
    decoder.text_limit = 4096
    for data, name in stream:
        decoder.feed(data, name)
    decoder.finish()


def _growth(long_count: int) -> int:
    """The event decoder is fed each event's JSON (what the byte decoder hands it, without the framing, whose
    buffer the event-stream decoder keeps small by itself; tracing it would make this test slow)."""

    def prepare(count: int) -> Callable[[], object]:
        prepared = [(orjson.dumps(payload), name) for name, payload in events(words(count))]
        return lambda: _feed_events(prepared)

    return stream_memory_growth(prepare, long_count)


def test_memory_stays_flat_for_a_long_stream() -> None:
    assert _growth(40_000) < FLAT_STREAM_BYTES


def test_the_memory_check_fails_without_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_response, "COMPACT_EVERY", 10**9)
    assert _growth(10_000) >= FLAT_STREAM_BYTES  # a quarter of the stream is already enough to fail the check


def test_the_runtime_limit_reaches_the_wrapped_event_decoder() -> None:
    collector = Collector()
    flow = Flow(subscribers=[collector], max_recorded_text=1000)
    request = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    handle = flow.start_call("POST", URL, {}, orjson.dumps(request))
    assert handle is not None
    handle.response_started(200, {"content-type": "application/vnd.amazon.eventstream"})
    text = words(3000)
    for chunk in frames(events(text)):
        handle.stream_chunk(chunk)
    handle.finish(CallStatus.OK)
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.response is not None and call.response.text == "".join(text)[:1000]
    assert call.content_truncated is True
    assert call.usage.completion_tokens == 4321
    flow.shutdown()
