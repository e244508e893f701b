"""Round-trip properties of the gemini-generate-content codec: lossless encode, lossless merge, minimal edits.

``encode(decode(x), x)`` is ``x`` itself (Gemini reports usage in every stream: nothing is injected), also
with every field spelled camelCase or snake_case at random and unknown keys at every depth; objects
rebuilt with :func:`dataclasses.replace` merge back to exactly the original; and one edit rewrites only the
top-level key it belongs to (``generationConfig`` for a parameter, ``systemInstruction`` for the system
text, ...), leaving every untouched ``Content`` the very same dict.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nemoflow import AnnotatedLlmRequest, Message, TextPart, ToolCall, ToolChoice, ToolDefinition
from nemoflow.codec_support import is_pristine
from nemoflow_codec_gemini import GeminiGenerateContentCodec
from tests.codec_gemini.strategies import GEMINI_SAMPLES, gemini_requests, snake
from tests.strategies import json_values, names, texts
from tests.test_roundtrip import PROPERTY as BASE
from tests.test_roundtrip import (
    Draw,
    annotated_objects,
    assert_json_equal,
    json_diff,
    new_extra_value,
    rebuilt,
    twin,
    with_samples,
)

CODEC = GeminiGenerateContentCodec()
PROPERTY = settings(BASE, max_examples=30)
URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
SENTINEL = "\N{SNOWMAN} sentinel"


def both(name: str) -> frozenset[str]:
    """A field's two spellings."""
    return frozenset({name, snake(name)})


def field_of(body: Mapping[str, Any], name: str) -> tuple[str | None, Any]:
    """The key holding the field ``name`` (camelCase first) and its value."""
    for key in (name, snake(name)):
        if key in body:
            return key, body[key]
    return None, None


def without(body: Any, *names: str) -> Any:
    """``body`` (an object) without the fields ``names`` under either spelling."""
    if not isinstance(body, Mapping):
        return body
    dropped = {spelling for name in names for spelling in both(name)}
    return {key: value for key, value in body.items() if key not in dropped}


# ----------------------------------------------------------------------------------------- lossless


@PROPERTY
@given(gemini_requests())
@with_samples(GEMINI_SAMPLES)
def test_encode_of_decode_returns_the_original(request: dict[str, Any]) -> None:
    before = copy.deepcopy(request)
    decoded = CODEC.decode(request, url=URL)
    assert CODEC.encode(decoded, request, url=URL) is request
    assert CODEC.encode(decoded, request) is request  # the URL is not needed to encode
    assert_json_equal(request, before)  # never mutated


@PROPERTY
@given(gemini_requests())
@with_samples(GEMINI_SAMPLES)
def test_merge_of_rebuilt_objects_is_lossless(request: dict[str, Any]) -> None:
    before = copy.deepcopy(request)
    annotated = rebuilt(CODEC.decode(request, url=URL))
    assert not any(is_pristine(obj) for obj in annotated_objects(annotated))
    out = CODEC.encode(annotated, request, url=URL)
    assert_json_equal(out, request)
    assert_json_equal(request, before)


def _sentinel_call() -> ToolCall:
    return ToolCall(id="call_sentinel", name="sentinel", arguments={"s": SENTINEL})


@PROPERTY
@given(gemini_requests())
@with_samples(GEMINI_SAMPLES)
def test_merge_writes_rebuilt_objects_back_unchanged(request: dict[str, Any]) -> None:
    """Force every list to be re-encoded so each rebuilt object goes through the merge.

    A sentinel is appended to every list (contents, each content's parts and calls, tools); the sentinels
    come out as new entries at the end, everything else exactly as it was sent.
    """
    decoded = CODEC.decode(request, url=URL)
    messages: list[Message] = []
    for message in rebuilt(decoded.messages):
        content = message.content if isinstance(message.content, tuple) else ()
        message = replace(message, content=(*content, TextPart(text=SENTINEL)))
        if message.tool_calls:
            message = replace(message, tool_calls=(*message.tool_calls, _sentinel_call()))
        messages.append(message)
    messages.append(Message(role="user", content=SENTINEL))
    tool = ToolDefinition(name="sentinel", description=SENTINEL, parameters={"type": "object"})
    annotated = replace(rebuilt(decoded), messages=tuple(messages), tools=(*rebuilt(decoded.tools), tool))
    out = dict(CODEC.encode(annotated, request, url=URL))

    wire = list(out.pop("contents"))
    assert_json_equal(wire.pop(), {"role": "user", "parts": [{"text": SENTINEL}]})
    assert len(wire) == len(request["contents"])
    for sent, original, message in zip(wire, request["contents"], decoded.messages, strict=True):
        tail: list[Any] = [{"text": SENTINEL}]
        if message.tool_calls:
            tail.append(
                {"functionCall": {"id": "call_sentinel", "name": "sentinel", "args": {"s": SENTINEL}}}
            )
        assert_json_equal(sent, {**original, "parts": [*original["parts"], *tail]})

    declaration = {"name": "sentinel", "description": SENTINEL, "parametersJsonSchema": {"type": "object"}}
    wire_tools = out.pop("tools")
    originals = json.loads(json.dumps(request.get("tools", [])))  # deepcopy would keep shared objects shared
    for tool_dict in reversed(originals):
        key, value = field_of(tool_dict, "functionDeclarations")
        if key is not None and isinstance(value, list):
            value.append(declaration)
            break
    else:
        originals.append({"functionDeclarations": [declaration]})
    assert_json_equal(wire_tools, originals)
    rest = {key: value for key, value in request.items() if key not in ("contents", "tools")}
    assert_json_equal(out, rest)


# ----------------------------------------------------------------------------------------- edits


@dataclass
class Edit:
    """One edit of a decoded request and what encoding it may change."""

    name: str
    edited: AnnotatedLlmRequest
    verify: Callable[[AnnotatedLlmRequest, Mapping[str, Any]], None]
    changed: frozenset[str] = frozenset()
    """Top-level keys the edit may rewrite; every other one must come out unchanged."""
    may_drop: frozenset[str] = frozenset()
    """Top-level keys the edit may remove."""
    content_count: int | None = None
    kept_contents: dict[int, int] = field(default_factory=dict)
    """Output index -> original index of contents that must be the same dict (``is``)."""
    exact_contents: dict[int, Any] = field(default_factory=dict)


EditMaker = Callable[[Draw, AnnotatedLlmRequest, dict[str, Any]], Edit]


def _config_edit(
    name: str, request: AnnotatedLlmRequest, wire: dict[str, Any], touched: tuple[str, ...], **params: Any
) -> Edit:
    """An edit of ``params`` that may rewrite only the ``touched`` fields of ``generationConfig``."""
    _, before = field_of(wire, "generationConfig")

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        for key, value in params.items():
            assert_json_equal(getattr(decoded.params, key), value)
        _, config = field_of(out, "generationConfig")
        diff = json_diff(without(config or {}, *touched), without(before or {}, *touched))
        assert diff is None, f"{name}: untouched generationConfig fields changed: {diff}"

    edited = replace(request, params=replace(request.params, **params))
    return Edit(name, edited, verify, changed=both("generationConfig"))


def edit_temperature(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    value = draw(st.floats(min_value=0, max_value=2))
    return _config_edit("temperature", request, wire, ("temperature",), temperature=value)


def edit_max_tokens(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    value = draw(st.integers(min_value=1, max_value=1_000_000))
    return _config_edit("max_tokens", request, wire, ("maxOutputTokens",), max_tokens=value)


def edit_stop(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    value = draw(st.none() | st.lists(texts, min_size=1, max_size=3).map(tuple))
    return _config_edit("stop", request, wire, ("stopSequences",), stop=value)


def edit_reasoning_effort(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    value = draw(st.sampled_from(["low", "high", "medium"]) | st.none())
    return _config_edit("reasoning_effort", request, wire, ("thinkingConfig",), reasoning_effort=value)


def edit_config_extra(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    """Change (or add) one unknown key of ``generationConfig`` through ``extra['generationConfig']``."""
    key_name, before = field_of(wire, "generationConfig")
    key_name = key_name or "generationConfig"
    nested = request.extra.get(key_name, {})
    if nested and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(nested)))
        value = new_extra_value(draw, nested[key])
    else:
        key, value = "x_added", draw(json_values)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(decoded.extra[key_name][key], value)
        assert_json_equal(out[key_name], {**(before or {}), key: value})

    edited = replace(request, extra={**request.extra, key_name: {**nested, key: value}})
    return Edit("config extra", edited, verify, changed=frozenset({key_name}))


def edit_system(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    system = draw(texts)
    key_name, before = field_of(wire, "systemInstruction")

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.system == system
        if system != request.system:
            key, after = field_of(out, "systemInstruction")
            assert key == (
                key_name or ("system_instruction" if "contents" in out and _snake_top(wire) else key)
            )
            if before is not None:  # keys beside parts (role, unknown keys) stay as they were
                assert_json_equal(without(after, "parts"), without(before, "parts"))
            else:
                assert_json_equal(after, {"parts": [{"text": system}]})

    return Edit("system", replace(request, system=system), verify, changed=both("systemInstruction"))


def _snake_top(wire: Mapping[str, Any]) -> bool:
    return any("_" in key and not key.startswith("x_") for key in wire)


def edit_message_text(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    originals = wire["contents"]
    index = draw(st.integers(min_value=0, max_value=len(originals) - 1))
    text = draw(texts)
    messages = list(request.messages)
    messages[index] = replace(messages[index], content=text)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        message = decoded.messages[index]
        assert message.text == text
        assert [call.name for call in message.tool_calls] == [
            call.name for call in request.messages[index].tool_calls
        ]
        assert_json_equal(without(out["contents"][index], "parts"), without(originals[index], "parts"))

    return Edit(
        "message text",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"contents"}),
        content_count=len(originals),
        kept_contents={i: i for i in range(len(originals)) if i != index},
    )


def edit_append_user(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    count = len(wire["contents"])
    text = draw(texts)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        last = decoded.messages[-1]
        assert (last.role, last.text) == ("user", text)

    edited = replace(request, messages=(*request.messages, Message(role="user", content=text)))
    return Edit(
        "append user",
        edited,
        verify,
        frozenset({"contents"}),
        content_count=count + 1,
        kept_contents={i: i for i in range(count)},
        exact_contents={count: {"role": "user", "parts": [{"text": text}]}},
    )


def edit_message_extra(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    originals = wire["contents"]
    twins = [
        (i, key) for i, m in enumerate(request.messages) for key in m.extra if twin(m.extra[key]) is not None
    ]
    use_twin = draw(st.booleans())
    if twins and use_twin:  # a change only strict JSON equality sees: true -> 1
        index, key = draw(st.sampled_from(twins))
        value = twin(request.messages[index].extra[key])
    else:
        index = draw(st.integers(min_value=0, max_value=len(originals) - 1))
        extra = request.messages[index].extra
        if extra:
            key = draw(st.sampled_from(sorted(extra)))
            value = new_extra_value(draw, extra[key])
        else:
            key, value = "x_added", draw(json_values)
    messages = list(request.messages)
    messages[index] = replace(messages[index], extra={**messages[index].extra, key: value})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(decoded.messages[index].extra[key], value)

    return Edit(
        "message extra",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"contents"}),
        content_count=len(originals),
        kept_contents={i: i for i in range(len(originals)) if i != index},
        exact_contents={index: {**originals[index], key: value}},
    )


def edit_drop_tool(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    index = draw(st.integers(min_value=0, max_value=len(request.tools) - 1))
    remaining = request.tools[:index] + request.tools[index + 1 :]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tools == remaining
        if not remaining:
            assert "tools" not in out
            assert decoded.tool_choice is None

    may_drop = both("toolConfig") if not remaining else frozenset()
    changed = frozenset({"tools"}) | (both("toolConfig") if not remaining else frozenset())
    return Edit("drop tool", replace(request, tools=remaining), verify, changed, may_drop=may_drop)


def edit_forced_tool(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    """Rename the function a ``toolConfig`` forces: only ``allowedFunctionNames`` may change."""
    choice = request.tool_choice
    assert choice is not None and choice.mode == "tool"
    name = draw(names)
    key_name, config = field_of(wire, "toolConfig")
    assert key_name is not None
    calling_key, calling = field_of(config, "functionCallingConfig")
    assert calling_key is not None
    names_key, _ = field_of(calling, "allowedFunctionNames")
    assert names_key is not None

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tool_choice is not None
        assert (decoded.tool_choice.mode, decoded.tool_choice.name) == ("tool", name)
        wanted = {**config, calling_key: {**calling, names_key: [name]}}
        assert_json_equal(out[key_name], wanted)

    return Edit(
        "forced tool", replace(request, tool_choice=replace(choice, name=name)), verify, frozenset({key_name})
    )


def edit_tool_choice_mode(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    mode: Literal["auto", "none", "required"] = draw(st.sampled_from(["auto", "none", "required"]))
    choice = (
        ToolChoice(mode=mode)
        if request.tool_choice is None
        else replace(request.tool_choice, mode=mode, name=None)
    )

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tool_choice is not None
        assert decoded.tool_choice.mode == mode or (mode == "required" and decoded.tool_choice.mode == "tool")

    return Edit("tool_choice mode", replace(request, tool_choice=choice), verify, both("toolConfig"))


# The model and the streaming mode live in the URL: editing them is refused (EncodeError), see
# test_gemini_behaviour.test_model_and_stream_edits_are_refused_not_lost, so they are no body edits here.
EDITS: dict[str, EditMaker] = {
    "temperature": edit_temperature,
    "max_tokens": edit_max_tokens,
    "stop": edit_stop,
    "reasoning_effort": edit_reasoning_effort,
    "config extra": edit_config_extra,
    "system": edit_system,
    "message text": edit_message_text,
    "append user": edit_append_user,
    "message extra": edit_message_extra,
    "drop tool": edit_drop_tool,
    "forced tool": edit_forced_tool,
    "tool_choice mode": edit_tool_choice_mode,
}


def check_edit(edit: Edit, original: dict[str, Any]) -> None:
    """Encode ``edit`` over ``original``; check it wrote only what it touched."""
    before = copy.deepcopy(original)
    out = CODEC.encode(edit.edited, original, url=URL)
    assert_json_equal(original, before)
    for key in set(original) | set(out):
        if key in edit.changed or (key in edit.may_drop and key not in out):
            continue
        assert key in out, f"{edit.name}: top-level {key!r} was dropped"
        assert key in original, f"{edit.name}: top-level {key!r} was added"
        diff = json_diff(out[key], original[key], f"$.{key}")
        assert diff is None, f"{edit.name}: {diff}"
    if "contents" in edit.changed and edit.content_count is not None:
        wire = out["contents"]
        assert len(wire) == edit.content_count
        for position, source in edit.kept_contents.items():
            assert wire[position] is original["contents"][source], f"{edit.name}: content {source} rewritten"
        for position, content in edit.exact_contents.items():
            diff = json_diff(wire[position], content, f"$.contents[{position}]")
            assert diff is None, f"{edit.name}: {diff}"
    else:
        assert out.get("contents") is original["contents"]
    decoded = CODEC.decode(out, url=URL)
    edit.verify(decoded, out)
    again = CODEC.encode(CODEC.decode(out, url=URL), out)
    assert again is out, json_diff(again, out)


def _requests_for(edit_name: str) -> st.SearchStrategy[dict[str, Any]]:
    return gemini_requests(with_tools=edit_name == "drop tool", forced_tool_choice=edit_name == "forced tool")


@settings(PROPERTY, max_examples=10)
@pytest.mark.parametrize("edit_name", list(EDITS))
@given(data=st.data())
def test_edit_writes_only_what_changed(edit_name: str, data: st.DataObject) -> None:
    request = data.draw(_requests_for(edit_name), label="request")
    edit = EDITS[edit_name](data.draw, CODEC.decode(request, url=URL), request)
    check_edit(edit, request)


@settings(PROPERTY, max_examples=3)
@pytest.mark.parametrize("sample", range(len(GEMINI_SAMPLES)))
@pytest.mark.parametrize("edit_name", [name for name in EDITS if name != "forced tool"])
@given(data=st.data())
def test_edit_of_rich_request_writes_only_what_changed(
    edit_name: str, sample: int, data: st.DataObject
) -> None:
    request = copy.deepcopy(GEMINI_SAMPLES[sample])
    decoded = CODEC.decode(request, url=URL)
    if edit_name == "drop tool" and not decoded.tools:
        return
    edit = EDITS[edit_name](data.draw, decoded, request)
    check_edit(edit, request)


@settings(PROPERTY, max_examples=5)
@given(data=st.data())
def test_forced_tool_edit_of_rich_request(data: st.DataObject) -> None:
    request = copy.deepcopy(GEMINI_SAMPLES[0])
    check_edit(edit_forced_tool(data.draw, CODEC.decode(request, url=URL), request), request)
