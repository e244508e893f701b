"""Round-trip properties of the OpenAI codecs: lossless encode, lossless merge, minimal edits.

The contract (``nemoflow.LlmCodec``, ``/spec``): ``encode(decode(x), x) == x`` with unknown keys at every
depth, ``original`` itself when nothing changed, and an edit made with :func:`dataclasses.replace` rewrites
only what it touched. The one sanctioned difference is the stream-usage rule: a streamed request without
``stream_options`` gains ``{"include_usage": true}``.

Equality here is *strict JSON equality* (:func:`json_diff`): ``true`` is not ``1``, and ``1`` is not ``1.0``,
because those are different JSON documents even though Python's ``==`` calls them equal.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Protocol, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from nemoflow import (
    AnnotatedLlmRequest,
    Message,
    TextPart,
    ToolCall,
    ToolDefinition,
)
from nemoflow.codec_support import is_pristine
from nemoflow_codec_openai import OpenAIChatCodec, OpenAIEmbeddingsCodec
from tests.strategies import (
    CHAT_SAMPLES,
    EMBEDDINGS_SAMPLES,
    chat_requests,
    embedding_inputs,
    embeddings_requests,
    json_values,
    models,
    names,
    texts,
)

_T = TypeVar("_T")


class Draw(Protocol):
    """``DataObject.draw`` (and ``DrawFn``): draw one value from a strategy."""

    def __call__(self, strategy: st.SearchStrategy[_T], label: Any = None) -> _T: ...


CHAT = OpenAIChatCodec()
EMBEDDINGS = OpenAIEmbeddingsCodec()
SENTINEL = "\N{SNOWMAN} sentinel"

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ----------------------------------------------------------------------------------------- helpers


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def json_diff(actual: Any, expected: Any, path: str = "$") -> str | None:
    """Where ``actual`` and ``expected`` first differ as JSON documents (``None`` when they do not)."""
    kind = _kind(actual)
    if kind != _kind(expected):
        return f"{path}: {kind} {actual!r} != {_kind(expected)} {expected!r}"
    if isinstance(actual, Mapping):
        if set(actual) != set(expected):
            extra = sorted(map(repr, set(actual) - set(expected)))
            missing = sorted(map(repr, set(expected) - set(actual)))
            return f"{path}: keys differ (unexpected {extra}, missing {missing})"
        for key in actual:
            diff = json_diff(actual[key], expected[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(actual, list | tuple):
        if len(actual) != len(expected):
            return f"{path}: length {len(actual)} != {len(expected)}"
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            diff = json_diff(left, right, f"{path}[{index}]")
            if diff:
                return diff
        return None
    if actual != expected:
        return f"{path}: {actual!r} != {expected!r}"
    return None


def assert_json_equal(actual: Any, expected: Any) -> None:
    diff = json_diff(actual, expected)
    assert diff is None, diff


def injects_usage(request: Mapping[str, Any]) -> bool:
    """Whether the stream-usage rule applies to a chat ``request``."""
    return request.get("stream") is True and "stream_options" not in request


def expected_wire(request: Mapping[str, Any]) -> Mapping[str, Any]:
    """What encoding an unedited chat ``request`` must give: itself, plus forced stream usage."""
    if injects_usage(request):
        return {**request, "stream_options": {"include_usage": True}}
    return request


def rebuilt(value: Any) -> Any:
    """``value`` with every annotated object in it rebuilt by ``replace``: same fields, no pristine flag."""
    if is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: rebuilt(getattr(value, f.name)) for f in fields(value) if f.init and f.name != "raw"
        }
        return replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(rebuilt(item) for item in value)
    return value


def annotated_objects(value: Any) -> Iterator[Any]:
    """Every annotated object in the tree under ``value`` (``value`` included)."""
    if is_dataclass(value) and not isinstance(value, type):
        yield value
        for f in fields(value):
            if f.name != "raw":
                yield from annotated_objects(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from annotated_objects(item)


def twin(value: Any) -> Any:
    """A value Python calls equal to ``value`` that JSON does not (``true``/``1``), or ``None``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def new_extra_value(draw: Draw, old: Any) -> Any:
    """A replacement for an unknown key's value: random, or the old value's bool/int twin."""
    flipped = twin(old)
    if flipped is not None and draw(st.booleans()):
        return flipped
    return draw(json_values)


_Test = TypeVar("_Test", bound=Callable[..., None])


def with_samples(samples: list[dict[str, Any]]) -> Callable[[_Test], _Test]:
    """Run a one-argument property on each hand-written rich sample too (as explicit examples)."""

    def decorate(test: _Test) -> _Test:
        for sample in reversed(samples):
            test = example(copy.deepcopy(sample))(test)
        return test

    return decorate


# ----------------------------------------------------------------------------------------- lossless


@PROPERTY
@given(chat_requests())
@with_samples(CHAT_SAMPLES)
def test_chat_encode_of_decode_is_lossless(request: dict[str, Any]) -> None:
    before = copy.deepcopy(request)
    out = CHAT.encode(CHAT.decode(request), request)
    assert_json_equal(out, expected_wire(request))
    assert_json_equal(request, before)  # the original is never mutated
    if injects_usage(request):
        assert all(out[key] is request[key] for key in request)
    else:
        assert out is request
    # With stream-usage injection switched off, nothing at all changes.
    quiet = OpenAIChatCodec(inject_stream_usage=False)
    assert quiet.encode(quiet.decode(request), request) is request


@PROPERTY
@given(chat_requests())
@with_samples(CHAT_SAMPLES)
def test_chat_merge_of_rebuilt_objects_is_lossless(request: dict[str, Any]) -> None:
    annotated = rebuilt(CHAT.decode(request))
    assert not any(is_pristine(obj) for obj in annotated_objects(annotated))
    assert_json_equal(CHAT.encode(annotated, request), expected_wire(request))


@PROPERTY
@given(chat_requests())
@with_samples(CHAT_SAMPLES)
def test_chat_merge_writes_rebuilt_objects_back_unchanged(request: dict[str, Any]) -> None:
    """Force every container to be re-encoded, so each rebuilt object goes through the merge.

    A sentinel is appended to every list (messages, each message's parts and tool calls, tools); the
    sentinels must come out as new entries and everything else exactly as it was sent.
    """
    decoded = CHAT.decode(request)
    messages: list[Message] = []
    for message in rebuilt(decoded.messages):
        if isinstance(message.content, tuple):
            message = replace(message, content=(*message.content, TextPart(text=SENTINEL)))
        if message.tool_calls:
            sentinel_call = ToolCall(id="call_sentinel", name="sentinel", arguments={"s": SENTINEL})
            message = replace(message, tool_calls=(*message.tool_calls, sentinel_call))
        messages.append(message)
    messages.append(Message(role="user", content=SENTINEL))
    annotated = replace(
        rebuilt(decoded),
        messages=tuple(messages),
        tools=(*rebuilt(decoded.tools), ToolDefinition(name="sentinel", description=SENTINEL)),
    )
    out = dict(CHAT.encode(annotated, request))

    wire_messages = list(out.pop("messages"))
    assert_json_equal(wire_messages.pop(), {"role": "user", "content": SENTINEL})
    assert len(wire_messages) == len(request["messages"])
    for wire, original, message in zip(wire_messages, request["messages"], decoded.messages, strict=True):
        wire = dict(wire)
        if isinstance(message.content, tuple):
            parts = list(wire["content"])
            assert_json_equal(parts.pop(), {"type": "text", "text": SENTINEL})
            wire["content"] = parts
        if message.tool_calls:
            calls = list(wire["tool_calls"])
            sentinel = CHAT.decode({"messages": [{"role": "assistant", "tool_calls": [calls.pop()]}]})
            call = sentinel.messages[0].tool_calls[0]
            assert (call.id, call.name, call.arguments) == ("call_sentinel", "sentinel", {"s": SENTINEL})
            wire["tool_calls"] = calls
        assert_json_equal(wire, original)

    wire_tools = list(out.pop("tools"))
    tool = CHAT.decode({"tools": [wire_tools.pop()]}).tools[0]
    assert (tool.name, tool.description, tool.type) == ("sentinel", SENTINEL, "function")
    assert_json_equal(wire_tools, request.get("tools", []))

    rest = {key: value for key, value in expected_wire(request).items() if key not in ("messages", "tools")}
    assert_json_equal(out, rest)


# ----------------------------------------------------------------------------------------- edits


@dataclass
class Edit:
    """One edit of a decoded request and what encoding it may change."""

    name: str
    edited: AnnotatedLlmRequest
    verify: Callable[[AnnotatedLlmRequest, Mapping[str, Any]], None]
    """Checks the decoded output (and the output itself) show the edit."""
    changed: frozenset[str] = frozenset()
    """Top-level keys the edit may rewrite; every other one must come out unchanged."""
    may_drop: frozenset[str] = frozenset()
    """Top-level keys the edit may remove (if kept, unchanged)."""
    message_count: int | None = None
    """Length of the output ``messages`` when the edit touches them."""
    kept_messages: dict[int, int] = field(default_factory=dict)
    """Output index -> original index of message dicts that must be reused as they are (``is``)."""
    exact_messages: dict[int, Any] = field(default_factory=dict)
    """Output index -> the exact wire message expected there."""


ChatEditMaker = Callable[[Draw, AnnotatedLlmRequest, dict[str, Any]], Edit]


def _same_messages(count: int) -> dict[int, int]:
    return {index: index for index in range(count)}


def edit_model(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    model = draw(models)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.model == model
        assert_json_equal(out["model"], model)

    return Edit("model", replace(request, model=model), verify, changed=frozenset({"model"}))


def edit_temperature(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    temperature = draw(st.floats(min_value=0, max_value=2))

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.temperature == temperature

    edited = replace(request, params=replace(request.params, temperature=temperature))
    return Edit("temperature", edited, verify, changed=frozenset({"temperature"}))


def edit_max_tokens(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    max_tokens = draw(st.integers(min_value=1, max_value=1_000_000))

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.max_tokens == max_tokens

    edited = replace(request, params=replace(request.params, max_tokens=max_tokens))
    return Edit("max_tokens", edited, verify, changed=frozenset({"max_tokens", "max_completion_tokens"}))


def edit_system(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    system = draw(texts)
    originals = wire["messages"]
    lead = 0
    while lead < len(originals) and originals[lead]["role"] in ("system", "developer"):
        lead += 1

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.system == system
        if system != request.system:
            first = out["messages"][0]
            assert first["role"] in ("system", "developer")
            if lead:  # the first system message keeps its own keys (name, unknown keys); only content changes
                assert_json_equal(
                    {k: v for k, v in first.items() if k != "content"},
                    {k: v for k, v in originals[0].items() if k != "content"},
                )

    edited = replace(request, system=system)
    if system == request.system:
        return Edit(
            "system",
            edited,
            verify,
            frozenset({"messages"}),
            message_count=len(originals),
            kept_messages=_same_messages(len(originals)),
        )
    kept = {1 + offset: lead + offset for offset in range(len(originals) - lead)}
    return Edit(
        "system", edited, verify, frozenset({"messages"}), message_count=1 + len(kept), kept_messages=kept
    )


def edit_message_text(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    originals = wire["messages"]
    index = draw(st.integers(min_value=0, max_value=len(originals) - 1))
    text = draw(texts)
    messages = list(request.messages)
    messages[index] = replace(messages[index], content=text)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.messages[index].content == text

    kept = {i: i for i in range(len(originals)) if i != index}
    exact = {index: {**originals[index], "content": text}}
    if originals[index].get("content") == text:
        kept, exact = _same_messages(len(originals)), {}
    return Edit(
        "message text",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"messages"}),
        message_count=len(originals),
        kept_messages=kept,
        exact_messages=exact,
    )


def edit_append_user(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    count = len(wire["messages"])
    text = draw(texts)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        last = decoded.messages[-1]
        assert (last.role, last.content) == ("user", text)
        assert decoded.system == request.system

    edited = replace(request, messages=(*request.messages, Message(role="user", content=text)))
    return Edit(
        "append user message",
        edited,
        verify,
        frozenset({"messages"}),
        message_count=count + 1,
        kept_messages=_same_messages(count),
        exact_messages={count: {"role": "user", "content": text}},
    )


def edit_drop_tool(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    index = draw(st.integers(min_value=0, max_value=len(request.tools) - 1))
    remaining = request.tools[:index] + request.tools[index + 1 :]
    kept_wire = [tool for i, tool in enumerate(wire["tools"]) if i != index]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tools == remaining
        if remaining:
            assert all(a is b for a, b in zip(out["tools"], kept_wire, strict=True))
            assert_json_equal(out["tools"], kept_wire)
        else:
            assert "tools" not in out  # OpenAI rejects an empty tools array

    # Without tools, OpenAI also rejects tool_choice and parallel_tool_calls: the codec may drop those too.
    may_drop = frozenset() if remaining else frozenset({"tool_choice", "parallel_tool_calls"})
    return Edit(
        "drop tool", replace(request, tools=remaining), verify, frozenset({"tools"}), may_drop=may_drop
    )


def edit_message_extra(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    originals = wire["messages"]
    twins = [
        (i, key) for i, m in enumerate(request.messages) for key in m.extra if twin(m.extra[key]) is not None
    ]
    use_twin = draw(st.booleans())
    if twins and use_twin:  # a change only strict JSON equality sees: true -> 1, 0 -> false
        index, key = draw(st.sampled_from(twins))
        message = request.messages[index]
        value = twin(message.extra[key])
    else:
        index = draw(st.integers(min_value=0, max_value=len(originals) - 1))
        message = request.messages[index]
        if message.extra:
            key = draw(st.sampled_from(sorted(message.extra)))
            value = new_extra_value(draw, message.extra[key])
        else:
            key, value = "x_added", draw(json_values)
    messages = list(request.messages)
    messages[index] = replace(message, extra={**message.extra, key: value})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(decoded.messages[index].extra[key], value)

    return Edit(
        "message extra",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"messages"}),
        message_count=len(originals),
        kept_messages={i: i for i in range(len(originals)) if i != index},
        exact_messages={index: {**originals[index], key: value}},
    )


def edit_forced_tool(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    """Rename the tool a ``tool_choice`` object forces: only its ``name`` may change."""
    assert request.tool_choice is not None
    name = draw(names)
    choice = wire["tool_choice"]
    body_key = choice.get("type") or "function"

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tool_choice is not None
        assert (decoded.tool_choice.mode, decoded.tool_choice.name) == ("tool", name)
        assert_json_equal(out["tool_choice"], {**choice, body_key: {**choice[body_key], "name": name}})

    edited = replace(request, tool_choice=replace(request.tool_choice, name=name))
    return Edit("forced tool", edited, verify, frozenset({"tool_choice"}))


def edit_tool_choice_extra(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    """Change (or add) one unknown key of a ``tool_choice`` object."""
    choice = request.tool_choice
    assert choice is not None
    if choice.extra:
        key = draw(st.sampled_from(sorted(choice.extra)))
        value = new_extra_value(draw, choice.extra[key])
    else:
        key, value = "x_added", draw(json_values)
    original = wire["tool_choice"]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tool_choice is not None
        assert_json_equal(decoded.tool_choice.extra[key], value)
        assert_json_equal(out["tool_choice"], {**original, key: value})

    edited = replace(request, tool_choice=replace(choice, extra={**choice.extra, key: value}))
    return Edit("tool_choice extra", edited, verify, frozenset({"tool_choice"}))


CHAT_EDITS: dict[str, ChatEditMaker] = {
    "model": edit_model,
    "temperature": edit_temperature,
    "max_tokens": edit_max_tokens,
    "system": edit_system,
    "message text": edit_message_text,
    "append user message": edit_append_user,
    "drop tool": edit_drop_tool,
    "message extra": edit_message_extra,
    "forced tool": edit_forced_tool,
    "tool_choice extra": edit_tool_choice_extra,
}


def check_edit(codec: Any, edit: Edit, original: dict[str, Any], want: Mapping[str, Any]) -> None:
    """Encode ``edit`` over ``original``; check it wrote only what it touched.

    ``want`` is what encoding with no edit gives (the original, plus forced stream usage).
    """
    before = copy.deepcopy(original)
    out = codec.encode(edit.edited, original)
    assert_json_equal(original, before)  # the original is never mutated

    for key in set(want) | set(out):
        if key in edit.changed or (key in edit.may_drop and key not in out):
            continue
        assert key in out, f"{edit.name}: top-level {key!r} was dropped"
        assert key in want, f"{edit.name}: top-level {key!r} was added"
        diff = json_diff(out[key], want[key], f"$.{key}")
        assert diff is None, f"{edit.name}: {diff}"

    if "messages" in original:
        wire_messages = out["messages"]
        kept, exact = edit.kept_messages, edit.exact_messages
        count = edit.message_count
        if "messages" not in edit.changed or count is None:
            kept, exact, count = _same_messages(len(original["messages"])), {}, len(original["messages"])
        assert len(wire_messages) == count, f"{edit.name}: {len(wire_messages)} messages, expected {count}"
        for position, source in kept.items():
            assert wire_messages[position] is original["messages"][source], (
                f"{edit.name}: untouched message {source} was rewritten (output position {position})"
            )
        for position, message in exact.items():
            diff = json_diff(wire_messages[position], message, f"$.messages[{position}]")
            assert diff is None, f"{edit.name}: {diff}"

    decoded = codec.decode(out)
    edit.verify(decoded, out)

    # Idempotent: the output decodes and encodes back to itself.
    again = codec.encode(codec.decode(out), out)
    assert again is out, json_diff(again, out)


@settings(PROPERTY, max_examples=20)
@pytest.mark.parametrize("edit_name", list(CHAT_EDITS))
@given(data=st.data())
def test_chat_edit_writes_only_what_changed(edit_name: str, data: st.DataObject) -> None:
    requests = chat_requests(
        with_tools=edit_name == "drop tool",
        forced_tool_choice=edit_name in ("forced tool", "tool_choice extra"),
    )
    request = data.draw(requests, label="request")
    edit = CHAT_EDITS[edit_name](data.draw, CHAT.decode(request), request)
    check_edit(CHAT, edit, request, expected_wire(request))


@settings(PROPERTY, max_examples=8)
@pytest.mark.parametrize("sample", range(len(CHAT_SAMPLES)))
@pytest.mark.parametrize("edit_name", list(CHAT_EDITS))
@given(data=st.data())
def test_chat_edit_of_rich_request_writes_only_what_changed(
    edit_name: str, sample: int, data: st.DataObject
) -> None:
    request = copy.deepcopy(CHAT_SAMPLES[sample])
    edit = CHAT_EDITS[edit_name](data.draw, CHAT.decode(request), request)
    check_edit(CHAT, edit, request, expected_wire(request))


# ----------------------------------------------------------------------------------------- embeddings


@PROPERTY
@given(embeddings_requests)
@with_samples(EMBEDDINGS_SAMPLES)
def test_embeddings_encode_of_decode_is_lossless(request: dict[str, Any]) -> None:
    before = copy.deepcopy(request)
    out = EMBEDDINGS.encode(EMBEDDINGS.decode(request), request)
    assert out is request
    assert_json_equal(request, before)


@PROPERTY
@given(embeddings_requests)
@with_samples(EMBEDDINGS_SAMPLES)
def test_embeddings_merge_of_rebuilt_objects_is_lossless(request: dict[str, Any]) -> None:
    annotated = rebuilt(EMBEDDINGS.decode(request))
    assert not is_pristine(annotated)
    assert_json_equal(EMBEDDINGS.encode(annotated, request), request)


def _as_inputs(value: Any) -> tuple[str | tuple[int, ...], ...]:
    """The annotated ``inputs`` for a wire ``input`` value."""
    if isinstance(value, str):
        return (value,)
    if all(isinstance(item, int) for item in value):
        return (tuple(value),)
    return tuple(item if isinstance(item, str) else tuple(item) for item in value)


@settings(PROPERTY, max_examples=30)
@pytest.mark.parametrize("kind", ["model", "inputs", "dimensions", "encoding_format", "extra"])
@given(data=st.data())
def test_embeddings_edit_writes_only_what_changed(kind: str, data: st.DataObject) -> None:
    samples = st.sampled_from(EMBEDDINGS_SAMPLES).map(copy.deepcopy)
    request = data.draw(st.one_of(embeddings_requests, samples), label="request")
    decoded = EMBEDDINGS.decode(request)
    edited: AnnotatedLlmRequest
    changed: frozenset[str]
    verify: Callable[[AnnotatedLlmRequest, Mapping[str, Any]], None]
    if kind == "model":
        model = data.draw(models)
        edited, changed = replace(decoded, model=model), frozenset({"model"})

        def verify(out_decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
            assert out_decoded.model == model

    elif kind == "inputs":
        inputs = _as_inputs(data.draw(embedding_inputs))
        edited, changed = replace(decoded, inputs=inputs), frozenset({"input"})

        def verify(out_decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
            assert out_decoded.inputs == inputs

    elif kind == "dimensions":
        dimensions = data.draw(st.integers(min_value=1, max_value=3072))
        edited = replace(decoded, params=replace(decoded.params, dimensions=dimensions))
        changed = frozenset({"dimensions"})

        def verify(out_decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
            assert out_decoded.params.dimensions == dimensions

    elif kind == "encoding_format":
        encoding_format = data.draw(st.sampled_from(["float", "base64"]))
        edited = replace(decoded, params=replace(decoded.params, encoding_format=encoding_format))
        changed = frozenset({"encoding_format"})

        def verify(out_decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
            assert out_decoded.params.encoding_format == encoding_format

    else:
        if decoded.extra:
            key = data.draw(st.sampled_from(sorted(decoded.extra)))
            value = new_extra_value(data.draw, decoded.extra[key])
        else:
            key, value = "x_added", data.draw(json_values)
        edited, changed = replace(decoded, extra={**decoded.extra, key: value}), frozenset({key})

        def verify(out_decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
            assert_json_equal(out_decoded.extra[key], value)
            assert_json_equal(out[key], value)

    check_edit(EMBEDDINGS, Edit(kind, edited, verify, changed), request, request)
