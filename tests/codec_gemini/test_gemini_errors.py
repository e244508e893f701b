"""Bad input makes the gemini codec raise ``CodecError`` with a correct JSON path, and nothing else.

Same properties as ``tests/test_codec_errors.py`` for the OpenAI codecs: arbitrary data at every entry
point, wrongly typed edits, bad originals; ``decode_error`` never raises. Any other exception escaping is
a codec bug and fails the test with its own traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nemoflow import CodecError, DecodeError, EncodeError, Message, ToolCall, ToolDefinition
from nemoflow_codec_gemini import GeminiGenerateContentCodec
from tests.codec_gemini.strategies import (
    error_bodies_google,
    gemini_chunks,
    gemini_requests,
    gemini_responses,
)
from tests.strategies import junk_values, mutated
from tests.test_codec_errors import (
    FUZZ,
    annotated_nodes,
    assert_path_points_into,
    check_decode_error,
    dumps_loosely,
    headers,
    parsed_or_none,
    set_field,
    wrong_values,
)

CODEC = GeminiGenerateContentCodec()
URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
FUZZ_SMALL = settings(FUZZ, max_examples=25)

# ----------------------------------------------------------------------------------------- decode


@FUZZ_SMALL
@given(data=st.data())
def test_decode_raises_only_codec_errors(data: st.DataObject) -> None:
    document = data.draw(st.one_of(junk_values, mutated(gemini_requests())), label="document")
    try:
        decoded = CODEC.decode(document, url=URL)
    except CodecError as exc:
        check_decode_error(exc, CODEC, document)
        return
    try:  # whatever decodes must also encode back without a foreign exception
        assert CODEC.encode(decoded, document) is document
    except CodecError:
        pass


@FUZZ_SMALL
@given(data=st.data())
def test_decode_response_raises_only_codec_errors(data: st.DataObject) -> None:
    document = data.draw(st.one_of(junk_values, mutated(gemini_responses)), label="document")
    try:
        CODEC.decode_response(document, url=URL)
    except CodecError as exc:
        check_decode_error(exc, CODEC, document)


# ----------------------------------------------------------------------------------------- streams

event_data: st.SearchStrategy[str | bytes] = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    junk_values.map(dumps_loosely),
    gemini_chunks.map(json.dumps),
    mutated(gemini_chunks).map(dumps_loosely),
    mutated(gemini_chunks).map(dumps_loosely).map(str.encode),
)


@FUZZ_SMALL
@given(events=st.lists(st.tuples(event_data, st.none() | st.sampled_from(["message", "error"])), max_size=4))
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
def stream_bodies(draw: st.DrawFn) -> list[bytes]:
    """An SSE body or a JSON-array body of good, bad and garbage chunks, cut at random places."""
    items = draw(
        st.lists(event_data.map(lambda d: d if isinstance(d, str) else d.decode("utf-8", "replace")))
    )
    if draw(st.booleans()):
        text = "".join(f"data: {item}\r\n\r\n" for item in items)
    else:
        text = "[" + ",\r\n".join(items) + draw(st.sampled_from(["]", "", ",", "]\n"]))
    body = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        body = draw(st.binary(max_size=20)) + body
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=4)))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@FUZZ_SMALL
@given(chunks=stream_bodies())
def test_decode_stream_raises_only_codec_errors(chunks: list[bytes]) -> None:
    try:
        whole = CODEC.decode_stream([b"".join(chunks)], url=URL)
    except CodecError:
        return
    assert CODEC.decode_stream(chunks, url=URL) == whole  # any chunking gives the same result


# ----------------------------------------------------------------------------------------- encode


@FUZZ_SMALL
@given(data=st.data())
def test_encode_of_wrongly_typed_edits_raises_only_codec_errors(data: st.DataObject) -> None:
    request = data.draw(gemini_requests(), label="request")
    decoded = CODEC.decode(request, url=URL)
    steps, node = data.draw(st.sampled_from(list(annotated_nodes(decoded))), label="node")
    name = data.draw(st.sampled_from(sorted(f.name for f in fields(node) if f.init)), label="field")
    edited = set_field(decoded, steps, name, data.draw(wrong_values, label="value"))
    if data.draw(st.booleans(), label="force a merge") and isinstance(edited.messages, tuple):
        edited = replace(edited, messages=(*edited.messages, Message(role="user", content="force")))
    try:
        CODEC.encode(edited, request, url=URL)
    except CodecError:
        pass


@FUZZ_SMALL
@given(data=st.data())
def test_encode_over_a_bad_original_raises_only_codec_errors(data: st.DataObject) -> None:
    annotated = CODEC.decode(data.draw(gemini_requests(), label="request"), url=URL)
    annotated = replace(annotated, system="edited")
    original = data.draw(st.one_of(junk_values, mutated(gemini_requests())), label="original")
    try:
        CODEC.encode(annotated, original, url=URL)
    except CodecError:
        pass


# ----------------------------------------------------------------------------------------- decode_error

bodies: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.binary(max_size=60),
    st.text(max_size=60),
    error_bodies_google,
    error_bodies_google.map(lambda body: [body]),
    mutated(error_bodies_google),
    mutated(error_bodies_google).map(dumps_loosely),
    mutated(error_bodies_google).map(dumps_loosely).map(str.encode),
).filter(lambda body: body is None or isinstance(body, str | bytes | Mapping))


@FUZZ_SMALL
@given(status=st.integers(min_value=-1, max_value=1000), headers=headers, body=bodies)
def test_decode_error_never_raises(status: int, headers: dict[str, str], body: Any) -> None:
    error = CODEC.decode_error(status, headers, body, url=URL)
    assert error.status == status
    assert error.retry_after is None or error.retry_after >= 0


# ----------------------------------------------------------------------------------------- exact paths

_CALL_PART = {"functionCall": {"name": "f", "args": 5}}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "$"),
        ({"contents": "hi"}, "$.contents"),
        ({"contents": ["hi"]}, "$.contents[0]"),
        ({"contents": [{"role": 1, "parts": []}]}, "$.contents[0].role"),
        ({"contents": [{"parts": {"text": "hi"}}]}, "$.contents[0].parts"),
        ({"contents": [{"parts": [{"text": 3}]}]}, "$.contents[0].parts[0].text"),
        ({"contents": [{"parts": [{"inline_data": "x"}]}]}, "$.contents[0].parts[0].inline_data"),
        (
            {"contents": [{"parts": [{"inlineData": {"mime_type": 4}}]}]},
            "$.contents[0].parts[0].inlineData.mime_type",
        ),
        (
            {"contents": [{"parts": [{"fileData": {"fileUri": 4}}]}]},
            "$.contents[0].parts[0].fileData.fileUri",
        ),
        ({"contents": [{"parts": [_CALL_PART]}]}, "$.contents[0].parts[0].functionCall.args"),
        (
            {"contents": [{"parts": [{"function_call": {"id": 7}}]}]},
            "$.contents[0].parts[0].function_call.id",
        ),
        (
            {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": [1]}}]}]},
            "$.contents[0].parts[0].functionResponse.response",
        ),
        (
            {"contents": [{"parts": [{"text": "t", "thought": True, "thoughtSignature": 1}]}]},
            "$.contents[0].parts[0].thoughtSignature",
        ),
        ({"contents": [], "systemInstruction": 5}, "$.systemInstruction"),
        (
            {"contents": [], "system_instruction": {"parts": [{"text": 1}]}},
            "$.system_instruction.parts[0].text",
        ),
        ({"contents": [], "generationConfig": []}, "$.generationConfig"),
        (
            {"contents": [], "generation_config": {"max_output_tokens": "5"}},
            "$.generation_config.max_output_tokens",
        ),
        ({"contents": [], "generationConfig": {"temperature": True}}, "$.generationConfig.temperature"),
        ({"contents": [], "generationConfig": {"topK": "4"}}, "$.generationConfig.topK"),
        (
            {"contents": [], "generationConfig": {"stopSequences": ["a", 1]}},
            "$.generationConfig.stopSequences[1]",
        ),
        (
            {"contents": [], "generationConfig": {"thinkingConfig": {"thinking_level": 2}}},
            "$.generationConfig.thinkingConfig.thinking_level",
        ),
        ({"contents": [], "tools": {}}, "$.tools"),
        ({"contents": [], "tools": [3]}, "$.tools[0]"),
        ({"contents": [], "tools": [{"functionDeclarations": {}}]}, "$.tools[0].functionDeclarations"),
        (
            {"contents": [], "tools": [{"function_declarations": [{"name": 1}]}]},
            "$.tools[0].function_declarations[0].name",
        ),
        (
            {"contents": [], "tools": [{"functionDeclarations": [{"name": "f", "description": 2}]}]},
            "$.tools[0].functionDeclarations[0].description",
        ),
        ({"contents": [], "toolConfig": 1}, "$.toolConfig"),
        (
            {"contents": [], "tool_config": {"function_calling_config": []}},
            "$.tool_config.function_calling_config",
        ),
        (
            {"contents": [], "toolConfig": {"functionCallingConfig": {"mode": 1}}},
            "$.toolConfig.functionCallingConfig.mode",
        ),
    ],
)
def test_decode_error_paths(body: Any, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(body, url=URL)
    assert caught.value.path == path
    assert caught.value.codec == CODEC.name
    assert_path_points_into(body, path)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "$"),
        ({"candidates": {}}, "$.candidates"),
        ({"candidates": [1]}, "$.candidates[0]"),
        ({"candidates": [{"index": "0"}]}, "$.candidates[0].index"),
        ({"candidates": [{"index": -1}]}, "$.candidates[0].index"),
        ({"candidates": [{"content": []}]}, "$.candidates[0].content"),
        ({"candidates": [{"content": {"parts": [{"text": 1}]}}]}, "$.candidates[0].content.parts[0].text"),
        (
            {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": 1}}]}}]},
            "$.candidates[0].content.parts[0].functionCall.args",
        ),
        ({"candidates": [{"finishReason": 1}]}, "$.candidates[0].finishReason"),
        ({"usageMetadata": {"promptTokenCount": "1"}}, "$.usageMetadata.promptTokenCount"),
        ({"usage_metadata": {"total_token_count": 1.5}}, "$.usage_metadata.total_token_count"),
        ({"modelVersion": 1}, "$.modelVersion"),
        ({"promptFeedback": {"blockReason": 2}}, "$.promptFeedback.blockReason"),
    ],
)
def test_decode_response_error_paths(body: Any, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode_response(body, url=URL)
    assert caught.value.path == path
    assert_path_points_into(body, path)


def test_stream_decoder_survives_a_bad_event() -> None:
    decoder = CODEC.stream_decoder(url=URL)
    decoder.feed('{"candidates": [{"content": {"parts": [{"text": "a"}]}}]}')
    with pytest.raises(DecodeError) as caught:
        decoder.feed('{"candidates": [{"content": {"parts": [{"text": 5}]}}]}')
    assert caught.value.path == "$.candidates[0].content.parts[0].text"
    with pytest.raises(DecodeError):
        decoder.feed("not json")
    decoder.feed('{"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}]}')
    result = decoder.finish()
    assert (result.text, result.finish_reason) == ("ab", "stop")


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda r: replace(r, messages=(replace(r.messages[0], name="ada"),)), "$.contents[0]"),
        (
            lambda r: replace(
                r,
                messages=(
                    Message(role="assistant", tool_calls=(ToolCall(id=None, name="f", arguments_raw="{"),)),
                ),
            ),
            "$.contents[0].tool_calls[0]",
        ),
        (
            lambda r: replace(
                r,
                messages=(
                    Message(role="assistant", tool_calls=(ToolCall(id=None, name="f", arguments=[1]),)),
                ),
            ),
            "$.contents[0].tool_calls[0]",
        ),
        (lambda r: replace(r, tools=(ToolDefinition(name="f", strict=True),)), "$.tools[0]"),
        (
            lambda r: replace(
                r, tools=(ToolDefinition(name="googleSearch", type="googleSearch", description="d"),)
            ),
            "$.tools[0]",
        ),
        (
            lambda r: replace(r, params=replace(r.params, response_format={"type": "grammar"})),
            "$.generationConfig",
        ),
        (lambda r: replace(r, params=replace(r.params, dimensions=3)), "$.dimensions"),
        (lambda r: replace(r, operation="embeddings"), "$"),
        (lambda r: replace(r, extra={"generationConfig": 5}), "$.generationConfig"),
    ],
)
def test_encode_error_paths(edit: Any, path: str) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with pytest.raises(EncodeError) as caught:
        CODEC.encode(edit(CODEC.decode(body, url=URL)), body, url=URL)
    assert caught.value.path == path
    assert caught.value.codec == CODEC.name
