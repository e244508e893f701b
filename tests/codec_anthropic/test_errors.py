"""Bad input makes the anthropic-messages codec raise ``CodecError`` with a correct JSON path, nothing else.

Decoding raises ``DecodeError`` (also a ``ValueError``) pointing at the offending value; encoding a wrongly
typed edit raises ``EncodeError``; ``decode_error`` never raises; a stream decoder that rejected an event
stays usable.
"""

from __future__ import annotations

import base64
import email.utils
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nemoflow import (
    AnnotatedLlmRequest,
    AudioPart,
    CodecError,
    DecodeError,
    EncodeError,
    FilePart,
    GenerationParams,
    ImagePart,
    Message,
    RefusalPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResultPart,
)
from nemoflow_codec_anthropic import AnthropicMessagesCodec
from tests.codec_anthropic.strategies import messages_requests, messages_responses, stream_events
from tests.strategies import junk_values, mutated, obj

CODEC = AnthropicMessagesCodec()
FUZZ = settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
BEDROCK_URL = (
    "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1:0/invoke"
)
VERTEX_URL = (
    "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/"
    "models/claude-sonnet-4@20250514:streamRawPredict"
)

# ----------------------------------------------------------------------------------------- helpers

_INDEX = re.compile(r"\[(\d+)\]")


def assert_path_points_into(document: Any, path: str) -> None:
    """``path`` leads through ``document``; only its last step may name a missing key."""
    assert path.startswith("$"), path
    node, rest = document, path[1:]
    while rest:
        if rest.startswith("["):
            match = _INDEX.match(rest)
            assert match, f"path {path!r}: bad index at {rest!r}"
            index = int(match[1])
            assert isinstance(node, list | tuple) and index < len(node), f"path {path!r}: no item at {rest!r}"
            node, rest = node[index], rest[match.end() :]
            continue
        assert rest.startswith("."), f"path {path!r}: bad step at {rest!r}"
        assert isinstance(node, Mapping), f"path {path!r}: {rest!r} steps into a {type(node).__name__}"
        body = rest[1:]
        keys = [
            key
            for key in node
            if isinstance(key, str)
            and body.startswith(key)
            and body[len(key) : len(key) + 1] in ("", ".", "[")
        ]
        if not keys:
            assert not re.search(r"[.\[]", body), f"path {path!r}: no key {body!r} on the way"
            return
        key = max(keys, key=len)
        node, rest = node[key], body[len(key) :]


def check_decode_error(exc: CodecError, document: Any) -> None:
    assert isinstance(exc, DecodeError), f"decoding raised {type(exc).__name__}"
    assert isinstance(exc, ValueError)
    assert exc.codec in (None, CODEC.name)
    assert_path_points_into(document, exc.path)


def parsed_or_none(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


Steps = tuple[tuple[str, int | None], ...]


def annotated_nodes(value: Any, steps: Steps = ()) -> Iterator[tuple[Steps, Any]]:
    yield steps, value
    for f in fields(value):
        if f.name == "raw":
            continue
        child = getattr(value, f.name)
        if is_dataclass(child):
            yield from annotated_nodes(child, (*steps, (f.name, None)))
        elif isinstance(child, tuple):
            for index, item in enumerate(child):
                if is_dataclass(item):
                    yield from annotated_nodes(item, (*steps, (f.name, index)))


def set_field(root: Any, steps: Steps, name: str, value: Any) -> Any:
    if not steps:
        return replace(root, **{name: value})
    (field_name, index), rest = steps[0], steps[1:]
    child = getattr(root, field_name)
    if index is None:
        return replace(root, **{field_name: set_field(child, rest, name, value)})
    items = list(child)
    items[index] = set_field(items[index], rest, name, value)
    return replace(root, **{field_name: tuple(items)})


wrong_values: st.SearchStrategy[Any] = st.one_of(
    junk_values,
    st.lists(junk_values, max_size=2).map(tuple),
    st.builds(object),
    st.sampled_from(
        [
            TextPart(text="t"),
            Message(role="user", content="hi"),
            ToolCall(id=None, name="f"),
            ToolDefinition(name="t"),
            ToolChoice(mode="tool"),
            GenerationParams(),
            (TextPart(text="t"), 7),
            AudioPart(data="AA=="),
        ]
    ),
)

# ----------------------------------------------------------------------------------------- fuzzing


@FUZZ
@given(data=st.data())
def test_decode_raises_only_codec_errors(data: st.DataObject) -> None:
    document = data.draw(st.one_of(junk_values, mutated(messages_requests())), label="document")
    try:
        decoded = CODEC.decode(document)
    except CodecError as exc:
        check_decode_error(exc, document)
        return
    try:  # whatever decodes must also encode back without a foreign exception
        CODEC.encode(decoded, document)
    except CodecError:
        pass


@FUZZ
@given(data=st.data())
def test_decode_response_raises_only_codec_errors(data: st.DataObject) -> None:
    document = data.draw(st.one_of(junk_values, mutated(messages_responses())), label="document")
    try:
        CODEC.decode_response(document)
    except CodecError as exc:
        check_decode_error(exc, document)


def _bedrock_chunk(event: Any) -> str:
    return json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()})


event_data: st.SearchStrategy[str | bytes] = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    junk_values.map(json.dumps),
    stream_events.map(json.dumps),
    mutated(stream_events).map(json.dumps),
    mutated(stream_events).map(json.dumps).map(str.encode),
    mutated(stream_events).map(_bedrock_chunk),
)
event_names = st.none() | st.sampled_from(["message_start", "error", "ping", "content_block_delta"])


@FUZZ
@given(events=st.lists(st.tuples(event_data, event_names), max_size=6))
def test_stream_decoder_raises_only_codec_errors(events: list[tuple[str | bytes, str | None]]) -> None:
    decoder = CODEC.stream_decoder()
    for data, event in events:
        try:
            decoder.feed(data, event)
        except CodecError as exc:
            parsed = parsed_or_none(data)
            if parsed is None:
                assert exc.path == "$"
            else:
                check_decode_error(exc, parsed)
    decoder.finish()  # never raises: everything kept was checked when fed


@st.composite
def sse_bodies(draw: st.DrawFn) -> list[bytes]:
    """An SSE body of good, bad and garbage events, cut into chunks at random places."""
    lines: list[str] = []
    for data in draw(
        st.lists(event_data.map(lambda d: d if isinstance(d, str) else d.decode("utf-8", "replace")))
    ):
        if draw(st.booleans()):
            lines.append("event: " + draw(st.sampled_from(["error", "message_delta", "ping"])))
        lines.append("data: " + data.replace("\n", " "))
        lines.append("")
    body = "\n".join(lines).encode("utf-8", "surrogatepass")
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=4)))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@FUZZ
@given(chunks=sse_bodies())
def test_decode_stream_raises_only_codec_errors(chunks: list[bytes]) -> None:
    try:
        CODEC.decode_stream(chunks)
    except CodecError:
        pass


@FUZZ
@given(data=st.data())
def test_encode_of_wrongly_typed_edits_raises_only_codec_errors(data: st.DataObject) -> None:
    request = data.draw(messages_requests(), label="request")
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
    annotated = replace(CODEC.decode(data.draw(messages_requests(), label="request")), model="edited")
    original = data.draw(st.one_of(junk_values, mutated(messages_requests())), label="original")
    try:
        CODEC.encode(annotated, original)
    except CodecError:
        pass


header_values = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.datetimes(timezones=st.none() | st.timezones()).map(email.utils.format_datetime),
    st.sampled_from(["Mon, 01 Jan 99999 00:00:00 GMT", "1e400", "-5", "nan", "inf", "ThrottlingException:"]),
)
headers = st.dictionaries(
    st.sampled_from(["retry-after", "Retry-After", "retry-after-ms", "x-amzn-ErrorType", "x-request-id"])
    | st.text(max_size=8),
    header_values,
    max_size=3,
)
error_objects = obj(
    {
        "type": st.just("error"),
        "error": obj(
            {"type": st.text(max_size=12), "message": st.text(max_size=20)}, {"details": junk_values}
        ),
    },
    {"request_id": st.text(max_size=10)},
)
error_bodies: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.binary(max_size=80),
    st.text(max_size=80),
    st.dictionaries(st.text(max_size=6), junk_values, max_size=3),
    st.lists(junk_values, max_size=2),
    mutated(error_objects),
    mutated(error_objects).map(json.dumps),
    mutated(error_objects).map(json.dumps).map(str.encode),
)


@FUZZ
@given(status=st.integers(min_value=-1, max_value=1000) | st.integers(), headers=headers, body=error_bodies)
def test_decode_error_never_raises(status: int, headers: dict[str, str], body: Any) -> None:
    error = CODEC.decode_error(status, headers, body)
    assert error.status == status


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        b"\xff\xfe\x00",
        "<html>502 Bad Gateway</html>",
        {"type": "error", "error": {"type": 5, "message": 10**400, "code": 2**70}},
        {"type": "error", "error": "plain"},
        {"error": {"details": {"error_code": ["x"]}}},
        [{"error": None}],
        orjson.loads('{"a":' * 1000 + "1" + "}" * 1000),
        b"{" * 5000,
    ],
    ids=range(10),
)
def test_decode_error_never_raises_on_odd_bodies(body: Any) -> None:
    error = CODEC.decode_error(500, {"retry-after": "Wed, 01 Jan 0001 00:00:00 +2359", 3: None}, body)  # type: ignore[dict-item]
    assert error.status == 500


# ----------------------------------------------------------------------------------------- exact paths


@pytest.mark.parametrize(
    ("request_body", "path"),
    [
        ([], "$"),
        ({"model": 3, "messages": []}, "$.model"),
        ({"messages": "hi"}, "$.messages"),
        ({"messages": [{"content": "hi"}]}, "$.messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "$.messages[0].content"),
        ({"messages": [{"role": "user", "content": ["hi"]}]}, "$.messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"text": "t"}]}]}, "$.messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "$.messages[0].content[0].text",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "image"}]}]}, "$.messages[0].content[0].source"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": 7}}]}
                ]
            },
            "$.messages[0].content[0].source.url",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": 1}}]}]},
            "$.messages[0].content[0].source.type",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]}]},
            "$.messages[0].content[0].name",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": 4, "name": "f"}]}]},
            "$.messages[0].content[0].id",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 3}]}
                ]
            },
            "$.messages[0].content[0].content",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "content": [{"type": "text", "text": None}]}],
                    }
                ]
            },
            "$.messages[0].content[0].content[0].text",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "is_error": "yes"}]}]},
            "$.messages[0].content[0].is_error",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "thinking", "signature": 1}]}]},
            "$.messages[0].content[0].signature",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "redacted_thinking", "data": {}}]}]},
            "$.messages[0].content[0].data",
        ),
        ({"messages": [], "system": 5}, "$.system"),
        ({"messages": [], "system": ["x"]}, "$.system[0]"),
        ({"messages": [], "system": [{"type": "text"}]}, "$.system[0].text"),
        ({"messages": [], "tools": {}}, "$.tools"),
        ({"messages": [], "tools": [{"input_schema": {}}]}, "$.tools[0].name"),
        ({"messages": [], "tools": [{"name": "f", "description": 3}]}, "$.tools[0].description"),
        ({"messages": [], "tools": [{"name": "f", "strict": "no"}]}, "$.tools[0].strict"),
        ({"messages": [], "tools": [{"type": 9}]}, "$.tools[0].type"),
        ({"messages": [], "tools": [{"type": "web_search_20250305", "name": 1}]}, "$.tools[0].name"),
        ({"messages": [], "tool_choice": 3}, "$.tool_choice"),
        ({"messages": [], "tool_choice": {"type": "tool", "name": 3}}, "$.tool_choice.name"),
        ({"messages": [], "temperature": "hot"}, "$.temperature"),
        ({"messages": [], "temperature": float("nan")}, "$.temperature"),
        ({"messages": [], "top_p": 10**400}, "$.top_p"),
        ({"messages": [], "top_k": 1.5}, "$.top_k"),
        ({"messages": [], "max_tokens": True}, "$.max_tokens"),
        ({"messages": [], "stop_sequences": ["a", 1]}, "$.stop_sequences[1]"),
        ({"messages": [], "stop_sequences": 5}, "$.stop_sequences"),
        ({"messages": [], "stream": "yes"}, "$.stream"),
        ({"messages": [], "output_config": {"effort": 2}}, "$.output_config.effort"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_decode_error_paths(request_body: Any, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(request_body)
    assert caught.value.path == path
    assert caught.value.codec == "anthropic-messages"


def test_bedrock_body_without_anthropic_version_is_not_anthropic() -> None:
    titan = {"inputText": "hello", "textGenerationConfig": {"maxTokenCount": 50}}
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(titan, url=BEDROCK_URL)
    assert caught.value.path == "$.anthropic_version"


@pytest.mark.parametrize(
    ("response", "path"),
    [
        ([], "$"),
        ({"content": {}}, "$.content"),
        ({"content": [5]}, "$.content[0]"),
        ({"content": [{"text": "x"}]}, "$.content[0].type"),
        ({"content": [{"type": "text", "text": 5}]}, "$.content[0].text"),
        ({"content": [{"type": "tool_use", "name": "f", "id": 5}]}, "$.content[0].id"),
        ({"content": [{"type": "thinking", "thinking": 1}]}, "$.content[0].thinking"),
        ({"content": [], "usage": 7}, "$.usage"),
        ({"content": [], "usage": {"input_tokens": "x"}}, "$.usage.input_tokens"),
        ({"content": [], "usage": {"cache_read_input_tokens": 1.5}}, "$.usage.cache_read_input_tokens"),
        (
            {"content": [], "usage": {"output_tokens_details": {"thinking_tokens": "many"}}},
            "$.usage.output_tokens_details.thinking_tokens",
        ),
        ({"content": [], "model": 4}, "$.model"),
        ({"content": [], "stop_reason": 4}, "$.stop_reason"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
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
        ('{"type": "message_start", "message": 3}', "$.message"),
        (
            '{"type": "message_start", "message": {"usage": {"input_tokens": "x"}}}',
            "$.message.usage.input_tokens",
        ),
        ('{"type": "content_block_start", "content_block": {"type": "text"}}', "$.index"),
        ('{"type": "content_block_start", "index": 0, "content_block": {"type": 3}}', "$.content_block.type"),
        ('{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}', "$.delta.text"),
        (
            '{"type": "content_block_start", "index": 1, '
            '"content_block": {"type": "tool_use", "id": 5, "name": "f"}}',
            "$.content_block.id",
        ),
        ('{"type": "content_block_delta", "index": "0", "delta": {}}', "$.index"),
        ('{"type": "message_delta", "delta": {"stop_reason": 1}}', "$.delta.stop_reason"),
        ('{"type": "message_delta", "usage": {"output_tokens": -0.5}}', "$.usage.output_tokens"),
        ('{"bytes": "!!not base64!!"}', "$.bytes"),
        (_bedrock_chunk({"type": "message_delta", "usage": 5}), "$.bytes"),
    ],
)
def test_stream_event_errors_leave_the_decoder_usable(data: str | bytes, path: str) -> None:
    decoder = CODEC.stream_decoder()
    decoder.feed(
        '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "kept "}}'
    )
    with pytest.raises(DecodeError) as caught:
        decoder.feed(data)
    assert caught.value.path == path
    decoder.feed(
        '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "usable"}}'
    )
    decoder.feed(
        '{"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}'
    )
    result = decoder.finish()
    assert result.text == "kept usable"
    assert result.usage.completion_tokens == 2  # the rejected usage did not leak in


def test_decode_stream_rejects_a_line_over_the_cap() -> None:
    line = b"data: " + b"x" * (1024 * 1024 + 1)
    with pytest.raises(DecodeError):
        CODEC.decode_stream([line[i : i + 65536] for i in range(0, len(line), 65536)] + [b"\n\n"])


# ----------------------------------------------------------------------------------------- encode errors

_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
    ],
}


def _decoded() -> AnnotatedLlmRequest:
    return CODEC.decode(_REQUEST)


def _with_part(part: Any) -> AnnotatedLlmRequest:
    decoded = _decoded()
    return replace(decoded, messages=(replace(decoded.messages[0], content=(part,)), decoded.messages[1]))


@pytest.mark.parametrize(
    ("edited", "path"),
    [
        (lambda: replace(_decoded(), params=replace(_decoded().params, seed=7)), "$.seed"),
        (lambda: replace(_decoded(), params=replace(_decoded().params, n=2)), "$.n"),
        (lambda: replace(_decoded(), params=replace(_decoded().params, stop="END")), "$.stop_sequences"),  # type: ignore[arg-type]
        (lambda: _with_part(AudioPart(data="AA==", format="wav")), "$.messages[0].content[0]"),
        (lambda: _with_part(RefusalPart(refusal="no")), "$.messages[0].content[0]"),
        (lambda: _with_part(ImagePart(url="https://x/a.png", detail="high")), "$.messages[0].content[0]"),
        (lambda: _with_part(ImagePart(data="AAAA")), "$.messages[0].content[0]"),
        (lambda: _with_part(ImagePart()), "$.messages[0].content[0]"),
        (lambda: _with_part(FilePart(filename="a.pdf", file_id="file_1")), "$.messages[0].content[0]"),
        (lambda: _with_part(ToolResultPart(tool_call_id="t", name="f")), "$.messages[0].content[0]"),
        (lambda: _with_part(ToolResultPart(tool_call_id="t", content={"a": 1})), "$.messages[0].content[0]"),
        (
            lambda: replace(
                _decoded(), messages=(replace(_decoded().messages[0], name="ada"), _decoded().messages[1])
            ),
            "$.messages[0].name",
        ),
        (
            lambda: replace(
                _decoded(),
                messages=(
                    _decoded().messages[0],
                    replace(
                        _decoded().messages[1],
                        tool_calls=(ToolCall(id="t2", name="g", arguments=None, arguments_raw='{"a": '),),
                    ),
                ),
            ),
            "$.messages[1].content[0].input",
        ),
        (lambda: replace(_decoded(), tool_choice=ToolChoice(mode="tool")), "$.tool_choice"),
        (
            lambda: replace(
                _decoded(), tools=(ToolDefinition(name="s", type="web_search_20250305", strict=True),)
            ),
            "$.tools[0]",
        ),
        (lambda: replace(_decoded(), operation="embeddings"), "$"),
        (lambda: replace(_decoded(), system=5), "$.system"),  # type: ignore[arg-type]
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_unwritable_edits_raise_encode_errors_with_paths(edited: Any, path: str) -> None:
    with pytest.raises(EncodeError) as caught:
        CODEC.encode(edited(), _REQUEST)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("url", "edit", "path"),
    [
        (BEDROCK_URL, lambda r: replace(r, model="anthropic.claude-3-5-haiku-20241022-v1:0"), "$.model"),
        (BEDROCK_URL, lambda r: replace(r, stream=True), "$.stream"),
        (VERTEX_URL, lambda r: replace(r, stream=False), "$.stream"),
        (VERTEX_URL, lambda r: replace(r, model="claude-opus-4-1@20250805"), "$.model"),
    ],
)
def test_route_facts_cannot_be_edited_in_the_body(url: str, edit: Any, path: str) -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": []}
    if "aiplatform" in url:
        body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 10, "messages": [], "stream": True}
    with pytest.raises(EncodeError) as caught:
        CODEC.encode(edit(CODEC.decode(body, url=url)), body, url=url)
    assert caught.value.path == path
