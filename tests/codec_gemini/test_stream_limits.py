"""Long Gemini streams: decoded in full, cut at ``text_limit`` (text and thoughts), memory flat.

Gemini sends each chunk's new text (a delta), never the text so far, and the running ``usageMetadata``
on every chunk: the last one wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest

from nemoflow import AnnotatedLlmResponse, CallStatus, DecodeError, FinishReason, Flow
from nemoflow.codec_support import STREAM_TEXT_LIMIT
from nemoflow_codec_gemini import _response
from nemoflow_codec_gemini._response import GeminiStreamDecoder
from tests.support import FLAT_STREAM_BYTES, Collector, stream_memory_growth, words

URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


def chunk(parts: list[dict[str, Any]], serial: int, finish: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return orjson.dumps(
        {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": 9,
                "candidatesTokenCount": serial + 1,
                "totalTokenCount": 10 + serial,
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
        }
    )


def stream(
    text: Sequence[str] = (), thoughts: Sequence[str] = (), call: dict[str, Any] | None = None
) -> list[bytes]:
    """Thought chunks, then text chunks, then a last chunk (with the function call, if any) that finishes."""
    parts = [[{"text": piece, "thought": True}] for piece in thoughts]
    parts += [[{"text": piece}] for piece in text]
    last: list[dict[str, Any]] = [{"functionCall": call}] if call is not None else [{"text": ""}]
    chunks = [chunk(part, serial) for serial, part in enumerate(parts)]
    chunks.append(chunk(last, len(parts), finish="STOP"))
    return chunks


def decode(chunks: list[bytes], limit: int | None = None) -> tuple[AnnotatedLlmResponse, GeminiStreamDecoder]:
    decoder = GeminiStreamDecoder(URL)
    if limit is not None:
        decoder.text_limit = limit
    for data in chunks:
        decoder.feed(data)
    return decoder.finish(), decoder


def test_the_default_limit_is_the_shared_one() -> None:
    assert GeminiStreamDecoder().text_limit == STREAM_TEXT_LIMIT
    assert GeminiStreamDecoder().truncated is False


def test_a_long_stream_decodes_to_exactly_its_text_and_thoughts_and_the_last_usage() -> None:
    text, thoughts = words(5000), words(3000, "t")
    reply, decoder = decode(stream(text, thoughts))
    assert reply.text == "".join(text)
    assert reply.reasoning_text == "".join(thoughts)
    assert reply.usage.prompt_tokens == 9
    assert reply.usage.completion_tokens == 8001  # the last chunk's count: never summed
    assert reply.usage.total_tokens == 8010
    assert (reply.id, reply.model) == ("r1", "gemini-2.5-flash")
    assert reply.finish_reason is FinishReason.STOP
    assert decoder.truncated is False


def test_text_and_thoughts_beyond_the_limit_are_cut_and_what_follows_is_still_read() -> None:
    text, thoughts = words(3000), words(3000, "t")
    reply, decoder = decode(stream(text, thoughts), limit=1000)
    assert reply.text == "".join(text)[:1000]
    assert reply.reasoning_text == "".join(thoughts)[:1000]
    assert reply.choices[0].text == reply.text
    assert decoder.truncated is True
    assert reply.usage.completion_tokens == 6001
    assert reply.finish_reason is FinishReason.STOP


def test_a_function_call_arrives_whole_and_is_kept_whole() -> None:
    # Gemini sends a call's args as one object in one chunk: bounded by that chunk, not a text to cut.
    args = {"data": "x" * 5000}
    reply, decoder = decode(stream(["ok"], call={"name": "store", "args": args}), limit=1000)
    assert reply.tool_calls[0].arguments == args
    assert reply.text == "ok"
    assert reply.finish_reason is FinishReason.TOOL_CALLS
    assert decoder.truncated is False


def test_a_text_of_exactly_the_limit_is_not_truncated() -> None:
    reply, decoder = decode(stream(["x" * 10] * 100), limit=1000)
    assert reply.text == "x" * 1000
    assert decoder.truncated is False


def test_a_bad_usage_count_is_refused_when_it_arrives_with_its_path() -> None:
    decoder = GeminiStreamDecoder(URL)
    decoder.feed(chunk([{"text": "a"}], 0))
    bad = orjson.loads(chunk([{"text": "b"}], 1))
    bad["usageMetadata"]["candidatesTokenCount"] = "2"
    with pytest.raises(DecodeError) as raised:
        decoder.feed(orjson.dumps([orjson.loads(chunk([{"text": "c"}], 1)), bad]))
    assert raised.value.path == "$[1].usageMetadata.candidatesTokenCount"


def test_usage_in_snake_case_or_with_integral_floats_is_read() -> None:
    decoder = GeminiStreamDecoder(URL)
    decoder.feed(chunk([{"text": "a"}], 0))
    decoder.feed(orjson.dumps({"usage_metadata": {"prompt_token_count": 5.0, "candidates_token_count": 2}}))
    usage = decoder.finish().usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 2, 7)


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
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    handle = flow.start_call("POST", URL, {}, orjson.dumps(request))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    text = words(3000)
    for data in stream(text):
        handle.stream_chunk(b"data: " + data + b"\r\n\r\n")
    handle.finish(CallStatus.OK)
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.response is not None and call.response.text == "".join(text)[:1000]
    assert call.content_truncated is True
    assert call.usage.completion_tokens == 3001
    flow.shutdown()
