"""Anthropic on Bedrock, streamed: ``invoke-with-response-stream`` (event-stream frames of base64 events).

Outside check: the anthropic SDK's own Bedrock stream decoder (botocore's event-stream parser and the
bedrock-runtime service model) unwraps the same bytes, and its events fed to the Messages stream decoder
must give exactly what the byte decoder gives.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from anthropic.lib.bedrock._stream_decoder import AWSEventStreamDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from nemoflow import CallStatus, DecodeError, ErrorKind, FinishReason, Flow, as_dict, get_codec
from nemoflow_codec_anthropic._bedrock_stream import BedrockInvokeStreamDecoder
from nemoflow_codec_anthropic._response import MessagesStreamDecoder
from tests.codec_bedrock.frames import event_frame, exception_frame
from tests.support import Collector

URL = (
    "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
    "anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke-with-response-stream"
)
MODEL = "claude-3-5-sonnet-20240620"
METRICS = {"inputTokenCount": 25, "outputTokenCount": 9, "invocationLatency": 812, "firstByteLatency": 301}


def events(text: list[str]) -> list[dict[str, Any]]:
    """The Messages events of one streamed reply, as Bedrock wraps them (metrics on message_stop)."""
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_bdrk_01",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1},
        },
    }
    out: list[dict[str, Any]] = [
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    out += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        for piece in text
    ]
    out += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": METRICS},
    ]
    return out


def chunk_frame(event: dict[str, Any], serial: int) -> bytes:
    encoded = base64.b64encode(json.dumps(event, separators=(",", ":")).encode()).decode()
    return event_frame("chunk", {"bytes": encoded}, serial)


def body(text: list[str]) -> bytes:
    return b"".join(chunk_frame(event, serial) for serial, event in enumerate(events(text)))


TEXT = ["Hello", " from", " Bedrock", "!"]
BODY = body(TEXT)


def decode(chunks: list[bytes]) -> Any:
    decoder = BedrockInvokeStreamDecoder()
    for chunk in chunks:
        decoder.feed(chunk)
    return decoder.finish()


def test_a_whole_stream_decodes_to_the_reply_with_usage() -> None:
    reply = decode([BODY])
    assert reply.text == "Hello from Bedrock!"
    assert reply.model == MODEL and reply.id == "msg_bdrk_01"
    assert reply.finish_reason is FinishReason.STOP and reply.choices[0].finish_reason_raw == "end_turn"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (25, 9)
    assert reply.error is None


def test_the_anthropic_sdks_own_bedrock_decoder_unwraps_the_same_events() -> None:
    sdk_events = list(AWSEventStreamDecoder().iter_bytes(iter([BODY])))
    assert [event.event for event in sdk_events] == [event["type"] for event in events(TEXT)]
    reference = MessagesStreamDecoder()
    for event in sdk_events:
        reference.feed(event.data, event.event)
    assert as_dict(decode([BODY])) == as_dict(reference.finish())


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(BODY)), max_size=40))
def test_any_chunking_gives_the_same_reply(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [BODY[a:b] for a, b in zip([0, *points], [*points, len(BODY)], strict=True)]
    assert as_dict(decode(pieces)) == as_dict(decode([BODY]))


def test_an_exception_frame_is_the_replys_error_and_keeps_the_text_before_it() -> None:
    partial = b"".join(chunk_frame(event, serial) for serial, event in enumerate(events(TEXT)[:4]))
    throttled = exception_frame("throttlingException", {"message": "Too many tokens, please wait."})
    reply = decode([partial + throttled])
    assert reply.text == "Hello from"
    assert reply.error is not None and reply.error.kind is ErrorKind.RATE_LIMIT
    assert (
        reply.error.type == "ThrottlingException" and reply.error.message == "Too many tokens, please wait."
    )
    assert reply.finish_reason is FinishReason.ERROR


@pytest.mark.parametrize(
    ("payload", "path"),
    [({"bytes": "%%% not base64"}, "$.bytes"), ({"bytes": base64.b64encode(b"{oops").decode()}, "$.bytes")],
    ids=["not-base64", "not-json"],
)
def test_a_bad_chunk_raises_a_codec_error_and_the_other_frames_still_count(payload: Any, path: str) -> None:
    frames = [chunk_frame(event, serial) for serial, event in enumerate(events(TEXT))]
    broken = event_frame("chunk", payload, 99)
    decoder = BedrockInvokeStreamDecoder()
    with pytest.raises(DecodeError) as raised:
        decoder.feed(b"".join(frames[:3]) + broken + b"".join(frames[3:]))
    assert raised.value.path == path and raised.value.codec == "anthropic-messages"
    assert decoder.finish().text == "Hello from Bedrock!"


def test_decode_stream_reads_event_stream_bodies_on_the_bedrock_route() -> None:
    codec = get_codec("anthropic-messages")
    assert codec.decode_stream([BODY[:100], BODY[100:]], url=URL).text == "Hello from Bedrock!"


def test_the_runtime_records_a_bedrock_stream_with_usage_and_first_token_time() -> None:
    collector = Collector()
    flow = Flow(subscribers=[collector], max_recorded_text=10)
    request = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    try:
        handle = flow.start_call("POST", URL, {"content-type": "application/json"}, orjson.dumps(request))
        assert handle is not None and handle.request.stream is True
        handle.response_started(200, {"content-type": "application/vnd.amazon.eventstream"})
        for start in range(0, len(BODY), 37):
            handle.stream_chunk(BODY[start : start + 37])
        handle.finish(CallStatus.OK)
        assert flow.flush(5)
    finally:
        flow.shutdown()
    [call] = collector.calls
    assert call.status is CallStatus.OK and call.stream
    assert call.response is not None and call.response.text == "Hello from"  # cut at max_recorded_text
    assert call.content_truncated
    assert (call.usage.prompt_tokens, call.usage.completion_tokens) == (25, 9)
    assert call.first_token_time_ns is not None and call.model == MODEL
    assert dict(flow.stats().errors) == {}
