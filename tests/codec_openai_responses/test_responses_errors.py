"""Bad input makes the ``openai-responses`` codec raise ``CodecError`` with a correct JSON path, nothing else.

The property tests throw junk and almost-right payloads at every entry point; any other exception escaping
is a codec bug. ``decode_error`` never raises at all.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nemoflow import CodecError, DecodeError, EncodeError, Message, ReasoningPart, ToolCall, ToolResultPart
from nemoflow_codec_openai import OpenAIResponsesCodec
from tests.codec_openai_responses.strategies import (
    RESPONSES_SAMPLES,
    responses_bodies,
    responses_events,
    responses_requests,
)
from tests.strategies import junk_values, mutated
from tests.test_codec_errors import (
    FUZZ,
    annotated_nodes,
    check_decode_error,
    dumps_loosely,
    error_bodies,
    headers,
    parsed_or_none,
    set_field,
    wrong_values,
)

CODEC = OpenAIResponsesCodec()

# ----------------------------------------------------------------------------------------- decode


@FUZZ
@given(data=st.data())
def test_decode_raises_only_codec_errors(data: st.DataObject) -> None:
    document = data.draw(st.one_of(junk_values, mutated(responses_requests())), label="document")
    try:
        decoded = CODEC.decode(document)
    except CodecError as exc:
        check_decode_error(exc, CODEC, document)
        return
    try:  # whatever decodes must also encode back without a foreign exception
        assert CODEC.encode(decoded, document) is document
    except CodecError:
        pass


@FUZZ
@given(data=st.data())
def test_decode_response_raises_only_codec_errors(data: st.DataObject) -> None:
    document = data.draw(st.one_of(junk_values, mutated(responses_bodies)), label="document")
    try:
        CODEC.decode_response(document)
    except CodecError as exc:
        check_decode_error(exc, CODEC, document)


event_data: st.SearchStrategy[str | bytes] = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    st.just("[DONE]"),
    junk_values.map(dumps_loosely),
    responses_events.map(dumps_loosely),
    mutated(responses_events).map(dumps_loosely),
    mutated(responses_events).map(dumps_loosely).map(str.encode),
)


@FUZZ
@given(
    events=st.lists(
        st.tuples(event_data, st.none() | st.sampled_from(["error", "response.completed"])), max_size=6
    )
)
def test_stream_decoder_raises_only_codec_errors(events: list[tuple[str | bytes, str | None]]) -> None:
    decoder = CODEC.stream_decoder()
    for data, event in events:
        try:
            decoder.feed(data, event)
        except CodecError as exc:  # a malformed event; the decoder stays usable
            parsed = parsed_or_none(data)
            if parsed is None:
                assert exc.path == "$"
            else:
                check_decode_error(exc, CODEC, parsed)
    decoder.finish()  # finish never fails: every event was checked as it came


@FUZZ
@given(data=st.lists(event_data, max_size=5), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_decode_stream_raises_only_codec_errors(data: list[str | bytes], cuts: list[int]) -> None:
    lines = [
        "data: " + (item if isinstance(item, str) else item.decode("utf-8", "replace")) + "\n\n"
        for item in data
    ]
    body = "".join(lines).encode("utf-8", "surrogatepass")
    points = sorted(min(cut, len(body)) for cut in cuts)
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    try:
        CODEC.decode_stream(chunks)
    except CodecError:
        pass


# ----------------------------------------------------------------------------------------- encode


@FUZZ
@given(data=st.data())
def test_encode_of_wrongly_typed_edits_raises_only_codec_errors(data: st.DataObject) -> None:
    request = data.draw(responses_requests() | st.sampled_from(RESPONSES_SAMPLES), label="request")
    decoded = CODEC.decode(request)
    steps, node = data.draw(st.sampled_from(list(annotated_nodes(decoded))), label="node")
    name = data.draw(st.sampled_from(sorted(f.name for f in fields(node) if f.init)), label="field")
    edited = set_field(decoded, steps, name, data.draw(wrong_values, label="value"))
    if data.draw(st.booleans(), label="force a merge") and isinstance(edited.messages, tuple):
        edited = replace(edited, messages=(*edited.messages, Message(role="user", content="force")))
    try:
        CODEC.encode(edited, request)
    except CodecError:
        pass


@FUZZ
@given(data=st.data())
def test_encode_over_a_bad_original_raises_only_codec_errors(data: st.DataObject) -> None:
    annotated = replace(CODEC.decode(data.draw(responses_requests(), label="request")), model="edited")
    original = data.draw(st.one_of(junk_values, mutated(responses_requests())), label="original")
    try:
        CODEC.encode(annotated, original)
    except CodecError:
        pass


@FUZZ
@given(status=st.integers(min_value=-1, max_value=1000), headers=headers, body=error_bodies)
def test_decode_error_never_raises(status: int, headers: dict[str, str], body: Any) -> None:
    assert CODEC.decode_error(status, headers, body).status == status


# ----------------------------------------------------------------------------------------- exact paths


@pytest.mark.parametrize(
    ("request_body", "path"),
    [
        ([], "$"),
        ({"model": 3}, "$.model"),
        ({"input": 5}, "$.input"),
        ({"input": [5]}, "$.input[0]"),
        ({"input": [{"content": "hi"}]}, "$.input[0].type"),
        ({"input": [{"type": 7}]}, "$.input[0].type"),
        ({"input": [{"type": "message", "content": "hi"}]}, "$.input[0].role"),
        ({"input": [{"role": "user", "content": 5}]}, "$.input[0].content"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]},
            "$.input[0].content[0].text",
        ),
        ({"input": [{"role": "user", "content": [{"text": "t"}]}]}, "$.input[0].content[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": 1}]}]},
            "$.input[0].content[0].image_url",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": "x"}]}]},
            "$.input[0].content[0].input_audio",
        ),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": 5}]},
            "$.input[0].arguments",
        ),
        ({"input": [{"type": "function_call", "call_id": 9, "name": "f"}]}, "$.input[0].call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]}, "$.input[0].output"),
        ({"input": [{"type": "reasoning", "id": "r", "summary": "s"}]}, "$.input[0].summary"),
        (
            {"input": [{"type": "reasoning", "id": "r", "summary": [{"text": 1}]}]},
            "$.input[0].summary[0].text",
        ),
        (
            {"input": [{"type": "reasoning", "id": "r", "summary": [], "encrypted_content": 1}]},
            "$.input[0].encrypted_content",
        ),
        ({"instructions": ["a"]}, "$.instructions"),
        ({"tools": {}}, "$.tools"),
        ({"tools": [{"type": "function"}]}, "$.tools[0].name"),
        ({"tools": [{"type": "function", "function": {"name": 7}}]}, "$.tools[0].function.name"),
        ({"tools": [{"type": "function", "name": "f", "strict": "no"}]}, "$.tools[0].strict"),
        ({"tools": [{"type": "custom"}]}, "$.tools[0].name"),
        ({"tool_choice": 3}, "$.tool_choice"),
        ({"temperature": "hot"}, "$.temperature"),
        ({"top_p": float("nan")}, "$.top_p"),
        ({"max_output_tokens": 1.5}, "$.max_output_tokens"),
        ({"reasoning": "high"}, "$.reasoning"),
        ({"reasoning": {"effort": 3}}, "$.reasoning.effort"),
        ({"text": []}, "$.text"),
        ({"stream": "yes"}, "$.stream"),
    ],
)
def test_decode_error_paths(request_body: Any, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(request_body)
    assert caught.value.path == path
    assert caught.value.codec == "openai-responses"


@pytest.mark.parametrize(
    ("response", "path"),
    [
        ([], "$"),
        ({"output": {}}, "$.output"),
        ({"output": [5]}, "$.output[0]"),
        ({"output": [{"type": 5}]}, "$.output[0].type"),
        ({"output": [{"type": "message", "content": 5}]}, "$.output[0].content"),
        (
            {"output": [{"type": "message", "content": [{"type": "output_text", "text": 3}]}]},
            "$.output[0].content[0].text",
        ),
        ({"output": [{"type": "function_call", "name": "f", "arguments": 5}]}, "$.output[0].arguments"),
        ({"output": [{"type": "reasoning", "summary": {}}]}, "$.output[0].summary"),
        ({"output": [], "usage": {"input_tokens": "x"}}, "$.usage.input_tokens"),
        (
            {"output": [], "usage": {"output_tokens_details": {"reasoning_tokens": 1.5}}},
            "$.usage.output_tokens_details.reasoning_tokens",
        ),
        ({"output": [], "usage": 7}, "$.usage"),
        ({"output": [], "model": 4}, "$.model"),
        ({"output": [], "status": 4}, "$.status"),
        ({"output": [], "created_at": "today"}, "$.created_at"),
    ],
)
def test_decode_response_error_paths(response: Any, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode_response(response)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ("not json", "$"),
        (b"\xff\xfe", "$"),
        ("[1, 2]", "$"),
        ('{"type": "response.completed", "response": 5}', "$.response"),
        (
            '{"type": "response.completed", "response": {"usage": {"input_tokens": "many"}}}',
            "$.response.usage.input_tokens",
        ),
        ('{"type": "response.output_item.done", "item": 3}', "$.item"),
        (
            '{"type": "response.output_item.done", '
            '"item": {"type": "function_call", "name": "f", "arguments": 1}}',
            "$.item.arguments",
        ),
    ],
)
def test_stream_event_errors_leave_the_decoder_usable(data: str | bytes, path: str) -> None:
    decoder = CODEC.stream_decoder()
    decoder.feed('{"type": "response.output_text.delta", "delta": "still "}')
    with pytest.raises(DecodeError) as caught:
        decoder.feed(data)
    assert caught.value.path == path
    decoder.feed('{"type": "response.output_text.delta", "delta": "usable"}')
    assert decoder.finish().text == "still usable"


def _request_with_everything() -> tuple[dict[str, Any], Any]:
    request = json.loads(json.dumps(RESPONSES_SAMPLES[0]))
    return request, CODEC.decode(request)


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda r: replace(r, messages=(Message(role="tool", content="x"),)), "$.input[0].tool_call_id"),
        (lambda r: replace(r, messages=(Message(role="user", content="x", name="ada"),)), "$.input[0].name"),
        (
            lambda r: replace(
                r, messages=(Message(role="assistant", tool_calls=(ToolCall(id=None, name="f"),)),)
            ),
            "$.input[0].tool_calls[0].id",
        ),
        (
            lambda r: replace(
                r, messages=(Message(role="assistant", tool_calls=(ToolCall(id="c", name="f", type="mcp"),)),)
            ),
            "$.input[0].tool_calls[0].type",
        ),
        (
            lambda r: replace(r, messages=(Message(role="user", content=(ToolResultPart(),)),)),
            "$.input[0].content[0].tool_call_id",
        ),
        (
            lambda r: replace(r, messages=(Message(role="user", content=5),)),  # type: ignore[arg-type]
            "$.input[0].content",
        ),
        (lambda r: replace(r, params=replace(r.params, stop=("END",))), "$.stop"),
        (lambda r: replace(r, params=replace(r.params, seed=7)), "$.seed"),
        (lambda r: replace(r, operation="embeddings"), "$"),
    ],
)
def test_encode_errors_name_the_offending_path(edit: Any, path: str) -> None:
    request, decoded = _request_with_everything()
    with pytest.raises(EncodeError) as caught:
        CODEC.encode(edit(decoded), request)
    assert caught.value.path == path


def test_a_reasoning_part_inside_a_tool_result_is_an_encode_error() -> None:
    request, decoded = _request_with_everything()
    result = ToolResultPart(tool_call_id="c", content=(ReasoningPart(text="x"),))
    edited = replace(decoded, messages=(Message(role="user", content=(result,)),))
    with pytest.raises(EncodeError):
        CODEC.encode(edited, request)


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        "<html>502</html>",
        {"error": {"message": "m", "code": 2**70}},
        {"error": "plain"},
        b"{" * 5000,
    ],
)
def test_decode_error_never_raises_on_odd_bodies(body: Any) -> None:
    assert CODEC.decode_error(500, {"retry-after": "nan"}, body).status == 500
