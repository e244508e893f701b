"""Bad input makes the bedrock-converse codec raise ``CodecError`` with a correct JSON path, and nothing else.

Arbitrary and almost-right data is thrown at every entry point: request decode and encode, response decode,
the per-event stream decoder, the raw event-stream decoder (garbage, corrupted frames, any chunking) and
``decode_error``, which must never raise. Any other exception escaping fails the test with its traceback.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nemoflow import CodecError, DecodeError, EncodeError, ErrorKind, FinishReason, Message
from nemoflow_codec_bedrock import BedrockConverseCodec
from tests.codec_bedrock.frames import encode_frame, event_frame, exception_frame
from tests.codec_bedrock.strategies import converse_requests, converse_responses, stream_events
from tests.strategies import junk_values, mutated, obj
from tests.test_codec_errors import (
    annotated_nodes,
    assert_path_points_into,
    check_decode_error,
    dumps_loosely,
    header_values,
    parsed_or_none,
    set_field,
    wrong_values,
)

CODEC = BedrockConverseCodec()
URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-pro-v1%3A0/converse-stream"

FUZZ = settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

bodies = converse_requests().map(lambda case: case[1])

# ----------------------------------------------------------------------------------------- decode


@FUZZ
@given(document=st.one_of(junk_values, mutated(bodies)))
def test_decode_raises_only_codec_errors(document: Any) -> None:
    try:
        decoded = CODEC.decode(document, url=URL)
    except CodecError as exc:
        check_decode_error(exc, CODEC, document)
        return
    try:  # whatever decodes must also encode back without a foreign exception
        CODEC.encode(decoded, document, url=URL)
    except CodecError:
        pass


@FUZZ
@given(document=st.one_of(junk_values, mutated(converse_responses())))
def test_decode_response_raises_only_codec_errors(document: Any) -> None:
    try:
        CODEC.decode_response(document, url=URL)
    except CodecError as exc:
        check_decode_error(exc, CODEC, document)


# ----------------------------------------------------------------------------------------- streams

payloads = stream_events.map(lambda event: event[1])
event_data: st.SearchStrategy[str | bytes] = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    junk_values.map(dumps_loosely),
    mutated(payloads).map(dumps_loosely),
    mutated(stream_events.map(lambda event: {event[0]: event[1]})).map(dumps_loosely).map(str.encode),
)
event_names = st.none() | st.sampled_from(
    [
        "messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop",
        "metadata", "throttlingException", "initial-response",
    ]
)  # fmt: skip


@FUZZ
@given(events=st.lists(st.tuples(event_data, event_names), max_size=6))
def test_stream_decoder_raises_only_codec_errors(events: list[tuple[str | bytes, str | None]]) -> None:
    decoder = CODEC.stream_decoder(url=URL)
    for data, event in events:
        try:
            decoder.feed(data, event)
        except CodecError as exc:  # a malformed event; the decoder stays usable
            parsed = parsed_or_none(data)
            if parsed is None:
                assert exc.path == "$"
            else:
                check_decode_error(exc, CODEC, parsed)
    decoder.finish()


@st.composite
def event_stream_bodies(draw: st.DrawFn) -> list[bytes]:
    """A body of good, malformed and corrupted frames and garbage, cut into chunks at random places."""
    frames: list[bytes] = []
    for serial, (name, payload) in enumerate(draw(st.lists(stream_events, max_size=5))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            payload = draw(mutated(st.just(payload)))
        frame = (
            exception_frame(name, payload)
            if name.endswith("Exception")
            else event_frame(name, payload if isinstance(payload, dict) else {"x": 1}, serial)
        )
        if kind == 1:  # payload that is not JSON, or not an object
            frame = encode_frame(
                [(":event-type", 7, name), (":message-type", 7, "event")], draw(st.binary(max_size=9))
            )
        if kind == 2 and len(frame) > 12:  # one flipped byte anywhere
            at = draw(st.integers(0, len(frame) - 1))
            frame = frame[:at] + bytes([frame[at] ^ 0xFF]) + frame[at + 1 :]
        frames.append(frame)
    body = b"".join(frames)
    if draw(st.booleans()):
        body += draw(st.binary(max_size=40))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=4)))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@FUZZ
@given(chunks=event_stream_bodies())
def test_event_stream_decoders_raise_only_codec_errors(chunks: list[bytes]) -> None:
    decoder = CODEC.byte_stream_decoder(url=URL)
    for chunk in chunks:
        try:
            decoder.feed(chunk)
        except CodecError as exc:
            assert exc.path.startswith("$")
    result = decoder.finish()
    assert result.finish_reason in FinishReason
    try:
        CODEC.decode_stream(chunks, url=URL)
    except CodecError:
        pass


def test_decode_stream_takes_only_bytes() -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        CODEC.decode_stream(["not bytes"], url=URL)  # type: ignore[list-item]


# ----------------------------------------------------------------------------------------- encode


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_encode_of_wrongly_typed_edits_raises_only_codec_errors(data: st.DataObject) -> None:
    url, request = data.draw(converse_requests(), label="request")
    decoded = CODEC.decode(request, url=url)
    steps, node = data.draw(st.sampled_from(list(annotated_nodes(decoded))), label="node")
    name = data.draw(st.sampled_from(sorted(f.name for f in fields(node) if f.init)), label="field")
    edited = set_field(decoded, steps, name, data.draw(wrong_values, label="value"))
    if data.draw(st.booleans(), label="force a merge") and isinstance(edited.messages, tuple):
        edited = replace(edited, messages=(*edited.messages, Message(role="user", content="force")))
    try:
        CODEC.encode(edited, request, url=url)
    except CodecError:
        pass


@settings(FUZZ, max_examples=12)
@given(data=st.data())
def test_encode_over_a_bad_original_raises_only_codec_errors(data: st.DataObject) -> None:
    url, request = data.draw(converse_requests(), label="request")
    annotated = replace(CODEC.decode(request, url=url), system="edited")
    original = data.draw(st.one_of(junk_values, mutated(bodies)), label="original")
    try:
        CODEC.encode(annotated, original, url=url)
    except CodecError:
        pass


# ----------------------------------------------------------------------------------------- decode_error

error_types = st.sampled_from(
    [
        "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "ValidationException",
        "com.amazon.coral.service#AccessDeniedException",
        ":",
        "#",
        "",
    ]
) | st.text(max_size=20)
header_maps = st.dictionaries(
    st.sampled_from(["x-amzn-errortype", "X-Amzn-ErrorType", "retry-after", "x-amzn-requestid"])
    | st.text(max_size=8),
    header_values | error_types,
    max_size=3,
)
error_documents = obj(
    {"message": st.text(max_size=30)}, {"__type": error_types, "Message": st.text(max_size=10)}
)
error_bodies: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.binary(max_size=60),
    st.text(max_size=60),
    st.dictionaries(st.text(max_size=6), junk_values, max_size=3),
    mutated(error_documents),
    mutated(error_documents).map(dumps_loosely),
    mutated(error_documents).map(dumps_loosely).map(str.encode),
).filter(lambda body: body is None or isinstance(body, str | bytes | dict))


@settings(FUZZ, max_examples=40)
@given(status=st.integers(min_value=-1, max_value=1000), headers=header_maps, body=error_bodies)
def test_decode_error_never_raises(status: int, headers: dict[str, str], body: Any) -> None:
    error = CODEC.decode_error(status, headers, body)
    assert error.status == status
    assert error.kind in ErrorKind
    assert error.body is None or len(error.body.encode("utf-8")) <= 4096


# ----------------------------------------------------------------------------------------- exact paths

_MESSAGES = "messages"


@pytest.mark.parametrize(
    ("request_body", "path"),
    [
        ([], "$"),
        ({_MESSAGES: "hi"}, "$.messages"),
        ({_MESSAGES: [{"content": []}]}, "$.messages[0].role"),
        ({_MESSAGES: [{"role": "user", "content": "hi"}]}, "$.messages[0].content"),
        ({_MESSAGES: [{"role": "user", "content": [{}]}]}, "$.messages[0].content[0]"),
        ({_MESSAGES: [{"role": "user", "content": ["hi"]}]}, "$.messages[0].content[0]"),
        ({_MESSAGES: [{"role": "user", "content": [{"text": 1}]}]}, "$.messages[0].content[0].text"),
        (
            {_MESSAGES: [{"role": "user", "content": [{"image": {"format": 2, "source": {}}}]}]},
            "$.messages[0].content[0].image.format",
        ),
        (
            {
                _MESSAGES: [
                    {"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": 5}}}]}
                ]
            },
            "$.messages[0].content[0].image.source.bytes",
        ),
        (
            {_MESSAGES: [{"role": "user", "content": [{"document": {"name": 3, "source": {}}}]}]},
            "$.messages[0].content[0].document.name",
        ),
        (
            {_MESSAGES: [{"role": "user", "content": [{"video": {"source": {"s3Location": {"uri": []}}}}]}]},
            "$.messages[0].content[0].video.source.s3Location.uri",
        ),
        (
            {_MESSAGES: [{"role": "assistant", "content": [{"toolUse": {"toolUseId": 1, "name": "f"}}]}]},
            "$.messages[0].content[0].toolUse.toolUseId",
        ),
        (
            {
                _MESSAGES: [
                    {
                        "role": "user",
                        "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": 2}]}}],
                    }
                ]
            },
            "$.messages[0].content[0].toolResult.content[0].text",
        ),
        (
            {_MESSAGES: [{"role": "user", "content": [{"toolResult": {"toolUseId": "t", "status": True}}]}]},
            "$.messages[0].content[0].toolResult.status",
        ),
        (
            {
                _MESSAGES: [
                    {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": 1}}}]}
                ]
            },
            "$.messages[0].content[0].reasoningContent.reasoningText.text",
        ),
        ({"system": {"text": "x"}}, "$.system"),
        ({"system": [{"text": None}]}, "$.system[0].text"),
        ({"inferenceConfig": {"maxTokens": "100"}}, "$.inferenceConfig.maxTokens"),
        ({"inferenceConfig": {"temperature": True}}, "$.inferenceConfig.temperature"),
        ({"inferenceConfig": {"stopSequences": ["a", 1]}}, "$.inferenceConfig.stopSequences[1]"),
        ({"toolConfig": []}, "$.toolConfig"),
        ({"toolConfig": {"tools": [{"toolSpec": {"name": 7}}]}}, "$.toolConfig.tools[0].toolSpec.name"),
        (
            {"toolConfig": {"tools": [{"toolSpec": {"name": "f", "strict": "yes"}}]}},
            "$.toolConfig.tools[0].toolSpec.strict",
        ),
        (
            {"toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": []}}]}},
            "$.toolConfig.tools[0].toolSpec.inputSchema",
        ),
        (
            {"toolConfig": {"tools": [], "toolChoice": {"tool": {"name": 1}}}},
            "$.toolConfig.toolChoice.tool.name",
        ),
        ({"outputConfig": {"effort": 3}}, "$.outputConfig.effort"),
    ],
)
def test_decode_error_paths(request_body: Any, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        CODEC.decode(request_body, url=URL)
    assert info.value.path == path
    assert info.value.codec == "bedrock-converse"
    assert_path_points_into(request_body, info.value.path)


@pytest.mark.parametrize(
    ("response", "path"),
    [
        ({"output": []}, "$.output"),
        ({"output": {"message": {"content": {}}}}, "$.output.message.content"),
        ({"output": {"message": {"content": [{"text": 1}]}}}, "$.output.message.content[0].text"),
        (
            {"output": {"message": {"content": [{"toolUse": {"name": 3}}]}}},
            "$.output.message.content[0].toolUse.name",
        ),
        ({"stopReason": 5}, "$.stopReason"),
        ({"usage": {"inputTokens": "5"}}, "$.usage.inputTokens"),
        ({"usage": {"inputTokens": 5, "cacheReadInputTokens": 1.5}}, "$.usage.cacheReadInputTokens"),
    ],
)
def test_decode_response_error_paths(response: Any, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        CODEC.decode_response(response)
    assert info.value.path == path


@pytest.mark.parametrize(
    ("payload", "event", "path"),
    [
        ({"contentBlockIndex": "0", "delta": {"text": "x"}}, "contentBlockDelta", "$.contentBlockIndex"),
        ({"contentBlockIndex": 0, "delta": {"text": 1}}, "contentBlockDelta", "$.delta.text"),
        (
            {"contentBlockIndex": 0, "delta": {"toolUse": {"input": {}}}},
            "contentBlockDelta",
            "$.delta.toolUse.input",
        ),
        ({"delta": {"text": "x"}}, "contentBlockDelta", "$.contentBlockIndex"),
        ({"contentBlockIndex": 0, "start": {"toolUse": []}}, "contentBlockStart", "$.start.toolUse"),
        ({"stopReason": 1}, "messageStop", "$.stopReason"),
        ({"usage": {"outputTokens": "9"}}, "metadata", "$.usage.outputTokens"),
        (
            {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": 2}}},
            None,
            "$.contentBlockDelta.delta.text",
        ),
    ],
)
def test_stream_event_error_paths(payload: Any, event: str | None, path: str) -> None:
    decoder = CODEC.stream_decoder()
    with pytest.raises(DecodeError) as info:
        decoder.feed(json.dumps(payload), event)
    assert info.value.path == path
    assert_path_points_into(payload, path)
    decoder.feed(json.dumps({"contentBlockIndex": 0, "delta": {"text": "ok"}}), "contentBlockDelta")
    assert decoder.finish().text == "ok"  # the decoder stayed usable


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", 7),
        ("n", 2),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 0.1),
        ("dimensions", 256),
        ("encoding_format", "float"),
    ],
)
def test_params_bedrock_cannot_express_are_refused(field: str, value: Any) -> None:
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    decoded = CODEC.decode(body, url=URL)
    with pytest.raises(EncodeError, match=field):
        CODEC.encode(replace(decoded, params=replace(decoded.params, **{field: value})), body, url=URL)
