"""Recording long streams: gathered in blocks after the first token, compacted, capped; the tee fast path."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nemoflow import CallStatus, Flow, LlmCall, SSEDecoder
from nemoflow._tee import ResponseTee
from nemoflow.codec_support import TEXT_BLOCK, compact_text
from tests.support import Collector, chunk, words

CHAT_URL = "https://api.openai.com/v1/chat/completions"
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def stream_events(pieces: list[str], *, usage_null: bool = True) -> list[bytes]:
    """A Chat stream as OpenAI sends it once usage is on: ``"usage": null`` on every chunk, then usage."""
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    if usage_null:
        base["usage"] = None
    events = [b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
    events += [
        b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {"content": piece}}]})
        for piece in pieces
    ]
    events.append(
        b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    return [event + b"\n\n" for event in events]


USAGE_EVENT = (
    b"data: "
    + orjson.dumps(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": USAGE,
        }
    )
    + b"\n\n"
)
DONE = b"data: [DONE]\n\n"


@pytest.fixture
def collector() -> Collector:
    return Collector()


def make_flow(collector: Collector, **options: Any) -> Flow:
    return Flow(subscribers=[collector], **options)


def run_stream(flow: Flow, chunks: list[bytes], *, stream_options: bool = False) -> tuple[bytes, Any]:
    """Drive one streamed call through a tee as an adapter does; returns (bytes the app got, handle)."""
    request: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    if stream_options:
        request["stream_options"] = {"include_usage": True}
    handle = flow.start_call("POST", CHAT_URL, {"content-type": "application/json"}, orjson.dumps(request))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    tee = ResponseTee(handle)
    out = b"".join(tee.pass_through(piece) for piece in chunks) + tee.remainder()
    tee.finish(CallStatus.OK)
    return out, handle


def only_call(flow: Flow, collector: Collector) -> LlmCall:
    assert flow.flush(5)
    assert len(collector.calls) == 1
    return collector.calls[0]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return [piece for piece in pieces if piece]


def test_a_long_stream_is_recorded_in_full_across_blocks_and_compactions(collector: Collector) -> None:
    flow = make_flow(collector)
    pieces = words(5000)  # well past one 32 KiB block and many compactions
    _, _handle = run_stream(
        flow, [*stream_events(pieces, usage_null=False), USAGE_EVENT, DONE], stream_options=True
    )
    call = only_call(flow, collector)
    assert call.response is not None
    assert call.response.text == "".join(pieces)
    assert call.usage.completion_tokens == 3
    assert call.content_truncated is False
    assert call.first_token_time_ns is not None
    flow.shutdown()


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10**7), max_size=60))
def test_any_chunking_records_the_same_text_and_the_app_gets_every_byte_but_the_injected_usage(
    cuts: list[int],
) -> None:
    collector = Collector()
    flow = make_flow(collector)
    pieces = words(400)
    upstream = b"".join(stream_events(pieces)) + USAGE_EVENT + DONE
    out, handle = run_stream(flow, split(upstream, cuts))
    assert handle.injected_stream_usage
    assert out == upstream.replace(USAGE_EVENT, b"")  # exactly the event the app did not ask for
    call = only_call(flow, collector)
    assert call.response is not None and call.response.text == "".join(pieces)
    assert call.usage.total_tokens == 10
    flow.shutdown()


def test_whole_events_without_a_usage_object_pass_at_once_and_unchanged(collector: Collector) -> None:
    flow = make_flow(collector)
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    handle = flow.start_call("POST", CHAT_URL, {}, orjson.dumps(request))
    assert handle is not None and handle.injected_stream_usage
    handle.response_started(200, {"content-type": "text/event-stream"})
    tee = ResponseTee(handle)
    for event in stream_events(words(30)):
        assert tee.pass_through(event) is event  # "usage": null is no usage object: nothing held back
    assert tee.pass_through(USAGE_EVENT) == b""
    assert tee.pass_through(DONE) == DONE
    tee.finish()
    flow.shutdown()


def test_the_app_still_gets_a_usage_event_it_asked_for(collector: Collector) -> None:
    flow = make_flow(collector)
    upstream = b"".join(stream_events(words(10))) + USAGE_EVENT + DONE
    out, handle = run_stream(
        flow, [upstream[i : i + 7] for i in range(0, len(upstream), 7)], stream_options=True
    )
    assert not handle.injected_stream_usage
    assert out == upstream
    flow.shutdown()


def test_cancelling_long_after_the_first_token_records_every_byte_the_app_read(collector: Collector) -> None:
    flow = make_flow(collector)
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    handle = flow.start_call("POST", CHAT_URL, {}, orjson.dumps(request))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    tee = ResponseTee(handle)
    pieces = words(700)
    events = stream_events(pieces)
    for event in events[:600]:  # role chunk + 599 pieces: many below one block, so they are pending
        tee.pass_through(event)
    tee.finish(CallStatus.CANCELLED)
    call = only_call(flow, collector)
    assert call.status is CallStatus.CANCELLED
    assert call.response is not None and call.response.text == "".join(pieces[:599])
    flow.shutdown()


def test_recorded_text_is_cut_at_max_recorded_text_and_says_so(collector: Collector) -> None:
    flow = make_flow(collector, max_recorded_text=1000)
    pieces = words(3000)
    out, _ = run_stream(
        flow, [*stream_events(pieces, usage_null=False), USAGE_EVENT, DONE], stream_options=True
    )
    call = only_call(flow, collector)
    full = "".join(pieces)
    assert call.response is not None and call.response.text == full[:1000]
    assert call.content_truncated is True
    assert call.usage.total_tokens == 10  # what comes after the cut is still read
    assert (
        full.encode()
        in b"".join(  # the application's bytes are never cut
            orjson.loads(line[6:])["choices"][0]["delta"].get("content", "").encode()
            for line in out.split(b"\n\n")
            if line.startswith(b"data: {") and orjson.loads(line[6:])["choices"]
        )
    )
    flow.shutdown()


def test_a_short_stream_under_the_cap_is_not_marked_truncated(collector: Collector) -> None:
    flow = make_flow(collector, max_recorded_text=1000)
    run_stream(flow, [chunk("hello"), chunk(finish="stop"), DONE])
    call = only_call(flow, collector)
    assert call.response is not None and call.response.text == "hello"
    assert call.content_truncated is False
    flow.shutdown()


def _peak_bytes(flow: Flow, count: int) -> int:
    """tracemalloc peak of streaming ``count`` events through a tee, the app dropping what it reads."""
    events = stream_events(words(count), usage_null=False)  # built before tracing starts
    request = orjson.dumps({"model": "gpt-4o-mini", "messages": [], "stream": True})
    gc.collect()
    tracemalloc.start()
    try:
        handle = flow.start_call("POST", CHAT_URL, {}, request)
        assert handle is not None
        handle.response_started(200, {"content-type": "text/event-stream"})
        tee = ResponseTee(handle)
        for event in events:
            tee.pass_through(event)
        tee.finish(CallStatus.OK)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_for_a_long_stream_under_the_cap(collector: Collector) -> None:
    flow = make_flow(collector, max_recorded_text=4096)
    _peak_bytes(flow, 300)  # first use loads codecs, compiles constructors...: not the stream's memory
    short = _peak_bytes(flow, 2_000)
    long = _peak_bytes(flow, 40_000)
    # 38,000 more events of ~100 bytes each: kept one object per event, that would be megabytes more.
    assert long - short < 512 * 1024, (short, long)
    assert flow.flush(5)
    assert [call.content_truncated for call in collector.calls] == [False, True, True]
    flow.shutdown()


@pytest.mark.parametrize("option", ["max_queue", "max_recorded_text"])
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "10"])
def test_flow_limits_must_be_positive_integers(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        Flow(**{option: value})


def test_feed_fields_matches_feed() -> None:
    body = b": hi\r\nevent: delta\r\nid: 7\r\nretry: 50\r\ndata: a\r\ndata: b\r\n\r\ndata: c\n\ndata:d\n\n"
    events = SSEDecoder().feed(body)
    fields = SSEDecoder().feed_fields(body)
    assert [(e.data, e.event, e.id, e.retry) for e in events] == fields
    assert fields[0] == ("a\nb", "delta", "7", 50)
    assert [field[0] for field in fields[1:]] == ["c", "d"]


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(st.text(max_size=40), st.integers(0, 3).map(lambda n: "x" * (n * 40_000))), max_size=60
    ),
    compact_at=st.sets(st.integers(0, 60)),
    limit=st.sampled_from([1, 50, 70_000, 150_000, 10**7]),
)
def test_compact_text_keeps_exactly_the_first_limit_characters(
    pieces: list[str], compact_at: set[int], limit: int
) -> None:
    parts: list[str] = []
    cut = False
    for index, piece in enumerate(pieces):
        parts.append(piece)
        if index in compact_at:
            cut |= compact_text(parts, limit)
    cut |= compact_text(parts, limit)
    full = "".join(pieces)
    assert "".join(parts) == full[:limit]
    assert cut == (len(full) > limit)
    if not cut:  # no two short pieces left side by side: at most one per block of long text
        assert not any(len(a) < TEXT_BLOCK and len(b) < TEXT_BLOCK for a, b in itertools.pairwise(parts))
