"""Long Messages streams: decoded in full, cut at ``text_limit`` (text, thinking, tool input), memory flat."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest

from nemoflow import AnnotatedLlmResponse, CallStatus, FinishReason, Flow
from nemoflow.codec_support import STREAM_TEXT_LIMIT
from nemoflow_codec_anthropic import _response
from nemoflow_codec_anthropic._response import MessagesStreamDecoder
from tests.support import FLAT_STREAM_BYTES, Collector, stream_memory_growth, words

URL = "https://api.anthropic.com/v1/messages"
Feed = tuple[bytes, str]


def arguments_pieces(count: int) -> tuple[str, list[str]]:
    """A tool input of ``count`` list items, streamed as one ``input_json_delta`` per item."""
    pieces = ['{"items": [0', *(f", {index}" for index in range(1, count)), "]}"]
    return "".join(pieces), pieces


def event(payload: dict[str, Any]) -> Feed:
    return orjson.dumps(payload), str(payload["type"])


def delta(index: int, kind: str, key: str, value: str) -> Feed:
    return event({"type": "content_block_delta", "index": index, "delta": {"type": kind, key: value}})


def stream(
    text: Sequence[str] = (),
    thinking: Sequence[str] = (),
    tool_input: Sequence[str] = (),
    extra_text: Sequence[str] = (),
) -> list[Feed]:
    """A Messages stream: optional thinking block, text block, tool_use block, a second text block."""
    start: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    feeds = [event({"type": "message_start", "message": start})]
    blocks: list[tuple[dict[str, Any], list[Feed]]] = []
    if thinking:
        pieces = [delta(len(blocks), "thinking_delta", "thinking", piece) for piece in thinking]
        pieces.append(delta(len(blocks), "signature_delta", "signature", "sig"))
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, pieces))
    if text:
        pieces = [delta(len(blocks), "text_delta", "text", piece) for piece in text]
        blocks.append(({"type": "text", "text": ""}, pieces))
    if tool_input:
        pieces = [delta(len(blocks), "input_json_delta", "partial_json", piece) for piece in tool_input]
        blocks.append(({"type": "tool_use", "id": "toolu_1", "name": "store", "input": {}}, pieces))
    if extra_text:
        pieces = [delta(len(blocks), "text_delta", "text", piece) for piece in extra_text]
        blocks.append(({"type": "text", "text": ""}, pieces))
    for index, (block, pieces) in enumerate(blocks):
        feeds.append(event({"type": "content_block_start", "index": index, "content_block": block}))
        feeds += pieces
        feeds.append(event({"type": "content_block_stop", "index": index}))
    stop = "tool_use" if tool_input else "end_turn"
    feeds.append(
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 4321},
            }
        )
    )
    feeds.append(event({"type": "message_stop"}))
    return feeds


def decode(feeds: list[Feed], limit: int | None = None) -> tuple[AnnotatedLlmResponse, MessagesStreamDecoder]:
    decoder = MessagesStreamDecoder()
    if limit is not None:
        decoder.text_limit = limit
    for data, name in feeds:
        decoder.feed(data, name)
    return decoder.finish(), decoder


def test_the_default_limit_is_the_shared_one() -> None:
    assert MessagesStreamDecoder().text_limit == STREAM_TEXT_LIMIT
    assert MessagesStreamDecoder().truncated is False


def test_a_long_stream_decodes_to_exactly_its_text_thinking_and_tool_input() -> None:
    text, thinking = words(5000), words(3000, "t")
    arguments, pieces = arguments_pieces(2000)
    reply, decoder = decode(stream(text, thinking, pieces))  # many compactions on the way
    assert reply.text == "".join(text)
    assert reply.reasoning_text == "".join(thinking)
    assert reply.tool_calls[0].arguments == {"items": list(range(2000))}
    assert reply.extra["thinking_signatures"] == ["sig"]
    assert reply.usage.completion_tokens == 4321
    assert reply.finish_reason is FinishReason.TOOL_CALLS
    assert decoder.truncated is False
    assert len(arguments) > 10_000


def test_text_beyond_the_limit_is_cut_and_what_follows_is_still_read() -> None:
    text = words(3000)
    reply, decoder = decode(stream(text), limit=1000)
    assert reply.text == "".join(text)[:1000]
    assert reply.choices[0].text == reply.text
    assert decoder.truncated is True
    assert reply.usage.completion_tokens == 4321 and reply.usage.prompt_tokens == 12
    assert reply.finish_reason is FinishReason.STOP


def test_thinking_and_tool_input_beyond_the_limit_are_cut() -> None:
    thinking = words(3000, "t")
    arguments, pieces = arguments_pieces(1000)
    reply, decoder = decode(stream(["ok"], thinking, pieces), limit=1000)
    assert reply.reasoning_text == "".join(thinking)[:1000]
    call = reply.tool_calls[0]
    assert call.arguments_raw == arguments[:1000]
    assert call.arguments is None  # the cut JSON no longer parses: kept as text
    assert call.name == "store" and call.id == "toolu_1"
    assert reply.text == "ok"
    assert reply.finish_reason is FinishReason.TOOL_CALLS
    assert decoder.truncated is True


def test_the_limit_applies_to_the_text_joined_over_blocks() -> None:
    first, second = words(150, "a"), words(150, "b")  # about 900 characters each
    reply, decoder = decode(stream(first, extra_text=second), limit=1000)
    assert reply.text == ("".join(first) + "".join(second))[:1000]
    assert decoder.truncated is True


def test_a_text_of_exactly_the_limit_is_not_truncated() -> None:
    text = ["x" * 10] * 100
    reply, decoder = decode(stream(text), limit=1000)
    assert reply.text == "x" * 1000
    assert decoder.truncated is False


def _growth(long_count: int) -> int:
    def prepare(count: int) -> Callable[[], object]:
        events = stream(words(count))
        return lambda: decode(events, limit=4096)

    return stream_memory_growth(prepare, long_count)


def test_memory_stays_flat_for_a_long_stream() -> None:
    assert _growth(40_000) < FLAT_STREAM_BYTES


def test_the_memory_check_fails_without_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_response, "COMPACT_EVERY", 10**9)
    assert _growth(10_000) >= FLAT_STREAM_BYTES  # a quarter of the stream is already enough to fail the check


def test_the_runtime_limit_reaches_the_decoder() -> None:
    collector = Collector()
    flow = Flow(subscribers=[collector], max_recorded_text=1000)
    request = {"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": True, "messages": []}
    handle = flow.start_call("POST", URL, {}, orjson.dumps(request))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    text = words(3000)
    for data, name in stream(text):
        handle.stream_chunk(b"event: " + name.encode() + b"\ndata: " + data + b"\n\n")
    handle.finish(CallStatus.OK)
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.response is not None and call.response.text == "".join(text)[:1000]
    assert call.content_truncated is True
    assert call.usage.completion_tokens == 4321
    flow.shutdown()
