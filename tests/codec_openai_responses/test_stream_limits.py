"""Long Responses streams: decoded in full, cut at ``text_limit`` (text, reasoning, call arguments).

The Responses wire repeats each whole text after its deltas (``*.done`` events, ``output_item.done``, the
terminal ``response``): those copies are cut as they arrive too, so memory stays flat over a long stream.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest

from nemoflow import AnnotatedLlmResponse, CallStatus, FinishReason, Flow
from nemoflow.codec_support import STREAM_TEXT_LIMIT
from nemoflow_codec_openai import _responses_response
from nemoflow_codec_openai._responses_response import ResponsesStreamDecoder
from tests.support import FLAT_STREAM_BYTES, Collector, stream_memory_growth, words

URL = "https://api.openai.com/v1/responses"
Feed = tuple[bytes, str]
USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 4321,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 4333,
}


def arguments_pieces(count: int) -> tuple[str, list[str]]:
    """Call arguments of ``count`` list items, streamed as one delta per item."""
    pieces = ['{"items": [0', *(f", {index}" for index in range(1, count)), "]}"]
    return "".join(pieces), pieces


class Stream:
    """Builds the events of one streamed reply, item by item, as the Responses API sends them."""

    def __init__(self) -> None:
        self.feeds: list[Feed] = []
        self.items: list[dict[str, Any]] = []
        self.serial = 0
        head = {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-4.1"}
        self.head: dict[str, Any] = head
        self.event("response.created", response={**head, "status": "in_progress", "output": []})

    def event(self, kind: str, **fields: Any) -> None:
        self.feeds.append((orjson.dumps({"type": kind, "sequence_number": self.serial, **fields}), kind))
        self.serial += 1

    def reasoning(self, pieces: Sequence[str], done: bool) -> None:
        at = {"item_id": "rs_1", "output_index": len(self.items)}
        self.event(
            "response.output_item.added",
            output_index=len(self.items),
            item={"id": "rs_1", "type": "reasoning", "summary": []},
        )
        self.event(
            "response.reasoning_summary_part.added",
            **at,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        )
        for piece in pieces:
            self.event("response.reasoning_summary_text.delta", **at, summary_index=0, delta=piece)
        text = "".join(pieces)
        item = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}
        if done:
            self.event("response.reasoning_summary_text.done", **at, summary_index=0, text=text)
            self.event("response.reasoning_summary_part.done", **at, summary_index=0, part=item["summary"][0])
            self.event("response.output_item.done", output_index=len(self.items), item=item)
        self.items.append(item)

    def message(self, parts: Sequence[Sequence[str]], done: bool) -> None:
        at = {"item_id": "msg_1", "output_index": len(self.items)}
        base = {"id": "msg_1", "type": "message", "role": "assistant"}
        self.event(
            "response.output_item.added",
            output_index=len(self.items),
            item={**base, "status": "in_progress", "content": []},
        )
        content = []
        for index, pieces in enumerate(parts):
            empty = {"type": "output_text", "text": "", "annotations": []}
            self.event("response.content_part.added", **at, content_index=index, part=empty)
            for piece in pieces:
                self.event("response.output_text.delta", **at, content_index=index, delta=piece, logprobs=[])
            part = {"type": "output_text", "text": "".join(pieces), "annotations": []}
            if done:
                self.event(
                    "response.output_text.done", **at, content_index=index, text=part["text"], logprobs=[]
                )
                self.event("response.content_part.done", **at, content_index=index, part=part)
            content.append(part)
        item = {**base, "status": "completed", "content": content}
        if done:
            self.event("response.output_item.done", output_index=len(self.items), item=item)
        self.items.append(item)

    def call(self, pieces: Sequence[str], done: bool) -> None:
        at = {"item_id": "fc_1", "output_index": len(self.items)}
        base = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "store"}
        self.event("response.output_item.added", output_index=len(self.items), item={**base, "arguments": ""})
        for piece in pieces:
            self.event("response.function_call_arguments.delta", **at, delta=piece)
        item = {**base, "arguments": "".join(pieces), "status": "completed"}
        if done:
            self.event("response.function_call_arguments.done", **at, arguments=item["arguments"])
            self.event("response.output_item.done", output_index=len(self.items), item=item)
        self.items.append(item)

    def completed(self) -> list[Feed]:
        response = {**self.head, "status": "completed", "output": self.items, "usage": USAGE}
        self.event("response.completed", response=response)
        return self.feeds


def stream(
    text: Sequence[str] = (),
    reasoning: Sequence[str] = (),
    arguments: Sequence[str] = (),
    extra_text: Sequence[str] = (),
    *,
    complete: bool = True,
) -> list[Feed]:
    """A reply's events; without ``complete``, only the deltas (a stream cut off before the done events)."""
    built = Stream()
    if reasoning:
        built.reasoning(reasoning, complete)
    if text:
        built.message([text, extra_text] if extra_text else [text], complete)
    if arguments:
        built.call(arguments, complete)
    return built.completed() if complete else built.feeds


def decode(
    feeds: list[Feed], limit: int | None = None
) -> tuple[AnnotatedLlmResponse, ResponsesStreamDecoder]:
    decoder = ResponsesStreamDecoder()
    if limit is not None:
        decoder.text_limit = limit
    for data, kind in feeds:
        decoder.feed(data, kind)
    return decoder.finish(), decoder


def test_the_default_limit_is_the_shared_one() -> None:
    assert ResponsesStreamDecoder().text_limit == STREAM_TEXT_LIMIT
    assert ResponsesStreamDecoder().truncated is False


@pytest.mark.parametrize("complete", [True, False], ids=["completed", "cut-off"])
def test_a_long_stream_decodes_to_exactly_its_text_reasoning_and_arguments(complete: bool) -> None:
    text, reasoning = words(5000), words(3000, "r")
    arguments, pieces = arguments_pieces(2000)
    reply, decoder = decode(stream(text, reasoning, pieces, complete=complete))
    assert reply.text == "".join(text)
    assert reply.reasoning_text == "".join(reasoning)
    assert reply.tool_calls[0].arguments == {"items": list(range(2000))}
    assert reply.tool_calls[0].arguments_raw == arguments
    assert decoder.truncated is False
    if complete:
        assert reply.usage.completion_tokens == 4321
        assert reply.finish_reason is FinishReason.TOOL_CALLS
    else:
        assert reply.finish_reason is FinishReason.ERROR  # never completed


@pytest.mark.parametrize("complete", [True, False], ids=["completed", "cut-off"])
def test_text_beyond_the_limit_is_cut_and_what_follows_is_still_read(complete: bool) -> None:
    text = words(3000)
    reply, decoder = decode(stream(text, complete=complete), limit=1000)
    assert reply.text == "".join(text)[:1000]
    assert reply.choices[0].text == reply.text
    assert decoder.truncated is True
    if complete:
        assert reply.usage.completion_tokens == 4321 and reply.usage.prompt_tokens == 12
        assert reply.finish_reason is FinishReason.STOP


@pytest.mark.parametrize("complete", [True, False], ids=["completed", "cut-off"])
def test_reasoning_and_call_arguments_beyond_the_limit_are_cut(complete: bool) -> None:
    reasoning = words(3000, "r")
    arguments, pieces = arguments_pieces(1000)
    reply, decoder = decode(stream(["ok"], reasoning, pieces, complete=complete), limit=1000)
    assert reply.reasoning_text == "".join(reasoning)[:1000]
    assert reply.choices[0].reasoning_text == reply.reasoning_text
    call = reply.tool_calls[0]
    assert call.arguments_raw == arguments[:1000]
    assert call.arguments is None  # the cut JSON no longer parses: kept as text
    assert (call.id, call.name) == ("call_1", "store")
    assert reply.text == "ok"
    assert decoder.truncated is True
    if complete:
        assert reply.finish_reason is FinishReason.TOOL_CALLS


@pytest.mark.parametrize("complete", [True, False], ids=["completed", "cut-off"])
def test_the_limit_applies_to_the_text_joined_over_parts(complete: bool) -> None:
    first, second = words(150, "a"), words(150, "b")  # about 900 characters each
    reply, decoder = decode(stream(first, extra_text=second, complete=complete), limit=1000)
    assert reply.text == ("".join(first) + "".join(second))[:1000]
    assert reply.choices[0].text == reply.text
    assert decoder.truncated is True


def test_a_text_of_exactly_the_limit_is_not_truncated() -> None:
    reply, decoder = decode(stream(["x" * 10] * 100), limit=1000)
    assert reply.text == "x" * 1000
    assert decoder.truncated is False


def _growth(long_count: int) -> int:
    """Only the deltas: each ``done`` event carries the whole text, and parsing one costs memory in proportion
    to its own size, whatever the decoder keeps (see the next test for what it keeps of them)."""

    def prepare(count: int) -> Callable[[], object]:
        events = stream(words(count), complete=False)
        return lambda: decode(events, limit=4096)

    return stream_memory_growth(prepare, long_count)


def test_memory_stays_flat_for_a_long_stream() -> None:
    assert _growth(40_000) < FLAT_STREAM_BYTES


def test_the_memory_check_fails_without_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_responses_response, "COMPACT_EVERY", 10**9)
    assert _growth(10_000) >= FLAT_STREAM_BYTES  # a quarter of the stream is already enough to fail the check


def _kept_bytes(feeds: list[Feed]) -> int:
    """Memory the decoder holds after the whole stream (its done events and terminal response included)."""
    gc.collect()
    tracemalloc.start()
    try:
        decoder = ResponsesStreamDecoder()
        decoder.text_limit = 4096
        for data, kind in feeds:
            decoder.feed(data, kind)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
        assert decoder.finish().text is not None
        return kept
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("cut", [True, False], ids=["cut", "cut-off"])
def test_whole_texts_repeated_by_done_events_are_kept_cut(monkeypatch: pytest.MonkeyPatch, cut: bool) -> None:
    if not cut:  # shows that the check below can fail
        monkeypatch.setattr(_responses_response, "_cut_item", lambda item, limit: item)
        monkeypatch.setattr(ResponsesStreamDecoder, "_limited", lambda self, text: text)
    long_words = [f" {'x' * 200}{index}" for index in range(1000)]  # about 200 KB per text
    feeds = stream(long_words, words(5, "r"), arguments_pieces(5)[1])  # built before tracing
    _kept_bytes(stream(["warm"]))
    kept = _kept_bytes(feeds)
    if cut:
        assert kept < 64 * 1024, kept
    else:  # the whole text twice over (the done item, the terminal response)
        assert kept > 2 * 200 * 1024, kept


def test_the_runtime_limit_reaches_the_decoder() -> None:
    collector = Collector()
    flow = Flow(subscribers=[collector], max_recorded_text=1000)
    request = {"model": "gpt-4.1", "input": "hi", "stream": True}
    handle = flow.start_call("POST", URL, {}, orjson.dumps(request))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    text = words(3000)
    for data, kind in stream(text):
        handle.stream_chunk(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")
    handle.finish(CallStatus.OK)
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.response is not None and call.response.text == "".join(text)[:1000]
    assert call.content_truncated is True
    assert call.usage.completion_tokens == 4321
    flow.shutdown()
