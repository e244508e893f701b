"""Bad input makes the OpenAI codecs raise ``CodecError`` with a correct JSON path, and nothing else.

The contract: codecs never raise anything but :class:`nemoflow.CodecError` (decoding raises its subclass
``DecodeError``, also a ``ValueError``), the error's ``path`` points at the offending value, and
``decode_error`` never raises at all. The property tests throw arbitrary data at every entry point; any
other exception escaping is a codec bug and fails the test with its own traceback.
"""

from __future__ import annotations

import email.utils
import json
import re
import reprlib
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nemoflow import (
    AnnotatedLlmRequest,
    CodecError,
    DecodeError,
    GenerationParams,
    LlmCodec,
    Message,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
)
from nemoflow_codec_openai import OpenAIChatCodec, OpenAIEmbeddingsCodec
from tests.strategies import (
    chat_chunks,
    chat_requests,
    chat_responses,
    embeddings_requests,
    embeddings_responses,
    junk_values,
    mutated,
    obj,
)

CHAT = OpenAIChatCodec()
EMBEDDINGS = OpenAIEmbeddingsCodec()
CODECS = pytest.mark.parametrize("codec", [CHAT, EMBEDDINGS], ids=lambda codec: codec.name)

FUZZ = settings(
    max_examples=50,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# ----------------------------------------------------------------------------------------- helpers

_INDEX = re.compile(r"\[(\d+)\]")


def assert_path_points_into(document: Any, path: str) -> None:
    """``path`` leads through ``document``; only its last step may name a key that is missing.

    Keys are matched against the object's real keys (longest first), so a key holding ``.`` or ``[`` (a
    provider's odd tool ``type``, say) still resolves.
    """
    assert path.startswith("$"), f"path {path!r} does not start at the root"
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
            return  # the last step names a missing (required) key
        key = max(keys, key=len)
        node, rest = node[key], body[len(key) :]


def check_decode_error(exc: CodecError, codec: LlmCodec, document: Any) -> None:
    """A decoding failure is a ``DecodeError`` (so also a ``ValueError``) pointing into ``document``."""
    assert isinstance(exc, DecodeError), f"decoding raised {type(exc).__name__}, not DecodeError"
    assert isinstance(exc, ValueError)
    assert exc.codec in (None, codec.name)
    assert_path_points_into(document, exc.path)


def short_id(value: Any) -> str:
    """A readable test id for a parameter (payloads are cut: some hold 400-digit numbers)."""
    name = getattr(value, "name", None)
    if isinstance(name, str) and hasattr(value, "decode_response"):
        return name
    text = reprlib.repr(value)  # depth-limited: some payloads nest a thousand levels
    return text if len(text) <= 40 else text[:37] + "..."


def parsed_or_none(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def dumps_loosely(value: Any) -> str:
    """JSON text for ``value``; ``NaN``/``Infinity`` and 400-digit numbers make it invalid on purpose."""
    return json.dumps(value)


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
        ]
    ),
)
"""Values of the wrong type for any annotated field."""

Steps = tuple[tuple[str, int | None], ...]


def annotated_nodes(value: Any, steps: Steps = ()) -> Iterator[tuple[Steps, Any]]:
    """Every annotated object under ``value``, with the steps (field, tuple index) that reach it."""
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
    """``root`` with the field ``name`` of the object at ``steps`` set to ``value`` (by ``replace``)."""
    if not steps:
        return replace(root, **{name: value})
    (field_name, index), rest = steps[0], steps[1:]
    child = getattr(root, field_name)
    if index is None:
        return replace(root, **{field_name: set_field(child, rest, name, value)})
    items = list(child)
    items[index] = set_field(items[index], rest, name, value)
    return replace(root, **{field_name: tuple(items)})


# ----------------------------------------------------------------------------------------- decode


@FUZZ
@CODECS
@given(data=st.data())
def test_decode_raises_only_codec_errors(codec: LlmCodec, data: st.DataObject) -> None:
    requests = chat_requests() if codec is CHAT else embeddings_requests
    document = data.draw(st.one_of(junk_values, mutated(requests)), label="document")
    try:
        decoded = codec.decode(document)
    except CodecError as exc:
        check_decode_error(exc, codec, document)
        return
    # Whatever decodes must also encode back without a foreign exception.
    try:
        codec.encode(decoded, document)
    except CodecError:
        pass


@FUZZ
@CODECS
@given(data=st.data())
def test_decode_response_raises_only_codec_errors(codec: LlmCodec, data: st.DataObject) -> None:
    responses = chat_responses() if codec is CHAT else embeddings_responses()
    document = data.draw(st.one_of(junk_values, mutated(responses)), label="document")
    try:
        codec.decode_response(document)
    except CodecError as exc:
        check_decode_error(exc, codec, document)


# ----------------------------------------------------------------------------------------- streams

event_data: st.SearchStrategy[str | bytes] = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    st.just("[DONE]"),
    junk_values.map(dumps_loosely),
    mutated(chat_chunks).map(dumps_loosely),
    mutated(chat_chunks).map(dumps_loosely).map(str.encode),
)
event_names = st.none() | st.sampled_from(["message", "error", "chunk"]) | st.text(max_size=8)


@FUZZ
@CODECS
@given(events=st.lists(st.tuples(event_data, event_names), max_size=5))
def test_stream_decoder_raises_only_codec_errors(
    codec: LlmCodec, events: list[tuple[str | bytes, str | None]]
) -> None:
    decoder = codec.stream_decoder()
    for data, event in events:
        try:
            decoder.feed(data, event)
        except CodecError as exc:  # a malformed event; the decoder stays usable
            parsed = parsed_or_none(data)
            if parsed is None:
                assert exc.path == "$"
            else:
                check_decode_error(exc, codec, parsed)
    try:
        decoder.finish()
    except CodecError:
        pass


@st.composite
def sse_bodies(draw: st.DrawFn) -> list[bytes]:
    """An SSE body of good, bad and garbage events, cut into chunks at random places."""
    lines: list[str] = []
    for data in draw(
        st.lists(event_data.map(lambda d: d if isinstance(d, str) else d.decode("utf-8", "replace")))
    ):
        if draw(st.booleans()):
            lines.append("event: " + draw(st.sampled_from(["error", "message", "ping"])))
        lines.append("data: " + data)
        lines.append("")
    body = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        body = draw(st.binary(max_size=60)) + body
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=4)))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@FUZZ
@CODECS
@given(chunks=sse_bodies())
def test_decode_stream_raises_only_codec_errors(codec: LlmCodec, chunks: list[bytes]) -> None:
    try:
        codec.decode_stream(chunks)
    except CodecError:
        pass


# ----------------------------------------------------------------------------------------- encode


@FUZZ
@CODECS
@given(data=st.data())
def test_encode_of_wrongly_typed_edits_raises_only_codec_errors(codec: LlmCodec, data: st.DataObject) -> None:
    requests = chat_requests() if codec is CHAT else embeddings_requests
    request = data.draw(requests, label="request")
    decoded = codec.decode(request)
    steps, node = data.draw(st.sampled_from(list(annotated_nodes(decoded))), label="node")
    name = data.draw(st.sampled_from(sorted(f.name for f in fields(node) if f.init)), label="field")
    edited = set_field(decoded, steps, name, data.draw(wrong_values, label="value"))
    if data.draw(st.booleans(), label="force a merge"):
        # Change something else too, so the edited object is written even when Python calls it equal to
        # the old one (and the top-level merge runs for the embeddings codec).
        if codec is CHAT and isinstance(edited.messages, tuple):
            edited = replace(edited, messages=(*edited.messages, Message(role="user", content="force")))
        elif isinstance(edited.extra, Mapping):
            edited = replace(edited, extra={**edited.extra, "x_force": True})
    try:
        codec.encode(edited, request)
    except CodecError:
        pass


@FUZZ
@CODECS
@given(data=st.data())
def test_encode_over_a_bad_original_raises_only_codec_errors(codec: LlmCodec, data: st.DataObject) -> None:
    requests = chat_requests() if codec is CHAT else embeddings_requests
    annotated = codec.decode(data.draw(requests, label="request"))
    annotated = replace(annotated, model="edited")
    original = data.draw(st.one_of(junk_values, mutated(requests)), label="original")
    try:
        codec.encode(annotated, original)
    except CodecError:
        pass


# ----------------------------------------------------------------------------------------- decode_error

header_values = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.floats().map(str),
    st.datetimes(timezones=st.none() | st.timezones()).map(email.utils.format_datetime),
    st.sampled_from(
        [
            "Mon, 01 Jan 99999 00:00:00 GMT",
            "Tue, 31 Feb 2024 25:61:61 +9999",
            "Wed, 01 Jan 0001 00:00:00 +2359",
            "Fri, 31 Dec 9999 23:59:59 -2359",
            "1e400",
            "-5",
            "nan",
            "inf",
        ]
    ),
)
headers = st.dictionaries(
    st.sampled_from(["retry-after", "Retry-After", "retry-after-ms", "RETRY-AFTER-MS", "x-request-id"])
    | st.text(max_size=8),
    header_values,
    max_size=3,
)
error_objects = obj(
    {
        "error": obj(
            {"message": st.text(max_size=20)}, {"type": st.text(max_size=10), "code": st.text(max_size=10)}
        )
    }
)
error_bodies: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.binary(max_size=80),
    st.text(max_size=80),
    st.dictionaries(st.text(max_size=6), junk_values, max_size=3),
    mutated(error_objects),
    mutated(error_objects).map(dumps_loosely),
    mutated(error_objects).map(dumps_loosely).map(str.encode),
).filter(lambda body: body is None or isinstance(body, str | bytes | Mapping))


@FUZZ
@CODECS
@given(status=st.integers(min_value=-1, max_value=1000) | st.integers(), headers=headers, body=error_bodies)
def test_decode_error_never_raises(codec: LlmCodec, status: int, headers: dict[str, str], body: Any) -> None:
    error = codec.decode_error(status, headers, body)
    assert error.status == status


# ----------------------------------------------------------------------------------------- exact paths


def _deep(depth: int) -> Any:
    value: Any = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("request_body", "path"),
    [
        ([], "$"),
        ({"model": 3, "messages": []}, "$.model"),
        ({"messages": "hi"}, "$.messages"),
        ({"messages": [{"content": "hi"}]}, "$.messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "$.messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "$.messages[0].content[0].text",
        ),
        ({"messages": [{"role": "user", "content": [{"text": "t"}]}]}, "$.messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]}]},
            "$.messages[0].content[0].image_url.url",
        ),
        (
            {"messages": [{"role": "user", "content": ["hi", {"type": "input_audio", "input_audio": "x"}]}]},
            "$.messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": "x"}]}]},
            "$.messages[0].content[0].input_audio",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 5}}]}
                ]
            },
            "$.messages[0].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "tool", "content": "r", "tool_call_id": 9}]}, "$.messages[0].tool_call_id"),
        (
            {"messages": [], "tools": [{"type": "function", "function": {"name": 7}}]},
            "$.tools[0].function.name",
        ),
        (
            {"messages": [], "tools": [{"type": "function", "function": {"strict": "no", "name": "f"}}]},
            "$.tools[0].function.strict",
        ),
        ({"messages": [], "tools": {}}, "$.tools"),
        ({"messages": [], "temperature": "hot"}, "$.temperature"),
        ({"messages": [], "temperature": float("nan")}, "$.temperature"),
        ({"messages": [], "temperature": 10**400}, "$.temperature"),
        ({"messages": [], "stop": ["a", 1]}, "$.stop[1]"),
        ({"messages": [], "max_completion_tokens": 1.5}, "$.max_completion_tokens"),
        ({"messages": [], "max_tokens": True}, "$.max_tokens"),
        ({"messages": [], "stream": "yes"}, "$.stream"),
        ({"messages": [], "tool_choice": 3}, "$.tool_choice"),
    ],
)
def test_chat_decode_error_paths(request_body: Any, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        CHAT.decode(request_body)
    assert caught.value.path == path
    assert isinstance(caught.value, ValueError)
    assert caught.value.codec == "openai-chat"


@pytest.mark.parametrize(
    ("request_body", "path"),
    [
        ("text", "$"),
        ({"model": "m"}, "$.input"),
        ({"input": 5}, "$.input"),
        ({"input": ["a", 5]}, "$.input[1]"),
        ({"input": [[1, "2"]]}, "$.input[0]"),
        ({"input": "a", "model": 1}, "$.model"),
        ({"input": "a", "dimensions": "many"}, "$.dimensions"),
        ({"input": "a", "encoding_format": 64}, "$.encoding_format"),
    ],
)
def test_embeddings_decode_error_paths(request_body: Any, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        EMBEDDINGS.decode(request_body)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("codec", "response", "path"),
    [
        (CHAT, [], "$"),
        (CHAT, {"choices": {}}, "$.choices"),
        (CHAT, {"choices": [5]}, "$.choices[0]"),
        (CHAT, {"choices": [{"message": {"content": 5}}]}, "$.choices[0].message.content"),
        (CHAT, {"choices": [{"message": {"tool_calls": {}}}]}, "$.choices[0].message.tool_calls"),
        (CHAT, {"choices": [], "usage": {"prompt_tokens": "x"}}, "$.usage.prompt_tokens"),
        (CHAT, {"choices": [], "usage": {"cost": 10**400}}, "$.usage.cost"),
        (CHAT, {"choices": [], "usage": {"cost": float("inf")}}, "$.usage.cost"),
        (CHAT, {"choices": [], "model": 4}, "$.model"),
        (EMBEDDINGS, {"data": 5}, "$.data"),
        (EMBEDDINGS, {"data": [5]}, "$.data[0]"),
        (EMBEDDINGS, {"data": [{"embedding": 5}]}, "$.data[0].embedding"),
        (EMBEDDINGS, {"data": [{"embedding": "abc"}]}, "$.data[0].embedding"),
        (EMBEDDINGS, {"data": [{"embedding": "\N{LATIN SMALL LETTER E WITH ACUTE}"}]}, "$.data[0].embedding"),
        (EMBEDDINGS, {"data": [], "usage": {"prompt_tokens": 1.5}}, "$.usage.prompt_tokens"),
    ],
    ids=lambda value: short_id(value),
)
def test_decode_response_error_paths(codec: LlmCodec, response: Any, path: str) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode_response(response)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ("not json", "$"),
        (b"\xff\xfe", "$"),
        ("[1, 2]", "$"),
        ('{"choices": [], "usage": {"prompt_tokens": "many"}}', "$.usage.prompt_tokens"),
        ('{"choices": [], "usage": 7}', "$.usage"),
    ],
)
def test_chat_stream_event_errors(data: str | bytes, path: str) -> None:
    decoder = CHAT.stream_decoder()
    with pytest.raises(DecodeError) as caught:
        decoder.feed(data)
    assert caught.value.path == path
    decoder.feed('{"choices": [{"index": 0, "delta": {"content": "still usable"}}]}')
    assert decoder.finish().text == "still usable"


def test_chat_stream_tool_arguments_nested_too_deep_for_the_encoder() -> None:
    """orjson reads 1024 levels but writes only 255: object-valued arguments deeper than that."""
    call = {"index": 0, "function": {"name": "f", "arguments": _deep(300)}}
    chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
    decoder = CHAT.stream_decoder()
    try:
        decoder.feed(json.dumps(chunk))
    except CodecError:
        pass
    decoder.finish()


def test_embeddings_stream_events_are_decode_errors() -> None:
    decoder = EMBEDDINGS.stream_decoder()
    with pytest.raises(DecodeError):
        decoder.feed('{"data": []}')
    decoder.finish()


@CODECS
def test_decode_stream_rejects_a_line_over_the_cap(codec: LlmCodec) -> None:
    line = b"data: " + b"x" * (1024 * 1024 + 1)
    chunks = [line[i : i + 65536] for i in range(0, len(line), 65536)] + [b"\n\n"]
    with pytest.raises(DecodeError):
        codec.decode_stream(chunks)


@CODECS
def test_decode_stream_rejects_a_non_json_event(codec: LlmCodec) -> None:
    with pytest.raises(DecodeError):
        codec.decode_stream([b'data: {"choices": [\n', b"\n"])


@CODECS
@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        "",
        b"\xff\xfe\x00",
        "<html>502 Bad Gateway</html>",
        {"error": {"message": "m", "code": 2**70}},
        {"error": {"message": 10**400}},
        {"error": "plain"},
        {"detail": {"x": float("nan")}},
        _deep(300),
        orjson.loads('{"a":' * 1000 + "1" + "}" * 1000),  # parses fine (orjson reads 1024 levels)
        b"{" * 5000,
    ],
    ids=lambda value: short_id(value),
)
def test_decode_error_never_raises_on_odd_bodies(codec: LlmCodec, body: Any) -> None:
    error = codec.decode_error(500, {"retry-after": "Wed, 01 Jan 0001 00:00:00 +2359"}, body)
    assert error.status == 500


def _chat_with_call() -> tuple[dict[str, Any], AnnotatedLlmRequest]:
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
            },
        ],
        "stop": "END",
    }
    return request, CHAT.decode(request)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: replace(r, messages=(replace(r.messages[0], content=123), *r.messages[1:])),
        lambda r: replace(r, messages=(replace(r.messages[0], content=(123,)), *r.messages[1:])),
        lambda r: replace(r, messages=("hello",)),
        lambda r: replace(r, tools=(None,)),
        lambda r: replace(r, params=None),
        lambda r: replace(r, params=replace(r.params, stop=5)),
        lambda r: replace(r, tool_choice="auto"),
        lambda r: replace(
            r,
            messages=(
                r.messages[0],
                replace(
                    r.messages[1], tool_calls=(replace(r.messages[1].tool_calls[0], arguments={"n": 2**70}),)
                ),
            ),
        ),
        lambda r: replace(
            r,
            messages=(
                r.messages[0],
                replace(
                    r.messages[1], tool_calls=(replace(r.messages[1].tool_calls[0], arguments=object()),)
                ),
            ),
        ),
    ],
    ids=[
        "content=123",
        "content=(123,)",
        "messages=('hello',)",
        "tools=(None,)",
        "params=None",
        "stop=5",
        "tool_choice='auto'",
        "arguments with a 2**70 int",
        "arguments=object()",
    ],
)
def test_chat_encode_of_wrong_types_raises_only_codec_errors(edit: Any) -> None:
    request, decoded = _chat_with_call()
    try:
        CHAT.encode(edit(decoded), request)
    except CodecError:
        pass


@pytest.mark.parametrize("inputs", [(5,), 5, (("a", 1),)], ids=lambda value: short_id(value))
def test_embeddings_encode_of_wrong_inputs_raises_only_codec_errors(inputs: Any) -> None:
    request = {"model": "m", "input": "hi"}
    try:
        EMBEDDINGS.encode(replace(EMBEDDINGS.decode(request), inputs=inputs), request)
    except CodecError:
        pass
