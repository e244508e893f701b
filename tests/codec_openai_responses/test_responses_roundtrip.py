"""Round-trip properties of the ``openai-responses`` codec: lossless encode, lossless merge, minimal edits.

Equality is strict JSON equality (``true`` is not ``1``). Unlike Chat Completions, nothing is ever
injected into a streamed request, so an unedited request always encodes to the very same object.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nemoflow import (
    AnnotatedLlmRequest,
    Message,
    OtherPart,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolDefinition,
)
from nemoflow.codec_support import is_pristine
from nemoflow_codec_openai import OpenAIResponsesCodec
from tests.codec_openai_responses.strategies import RESPONSES_SAMPLES, responses_requests
from tests.strategies import json_values, models, names, texts
from tests.test_roundtrip import (
    PROPERTY,
    Draw,
    annotated_objects,
    assert_json_equal,
    json_diff,
    new_extra_value,
    rebuilt,
    twin,
    with_samples,
)

CODEC = OpenAIResponsesCodec()
SENTINEL = "\N{SNOWMAN} sentinel"


def item_kind(item: Any) -> str:
    """The kind of a wire input item (messages and references may leave out ``type``)."""
    kind = item.get("type")
    if kind is None:
        return "message" if "role" in item else "item_reference"
    return str(kind)


def wire_items(request: Mapping[str, Any]) -> list[Any]:
    """The request's input as items (a string input is one user message)."""
    value = request.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value)


# ----------------------------------------------------------------------------------------- lossless


@PROPERTY
@given(responses_requests())
@with_samples(RESPONSES_SAMPLES)
def test_encode_of_decode_is_the_original(request: dict[str, Any]) -> None:
    before = copy.deepcopy(request)
    assert CODEC.encode(CODEC.decode(request), request) is request
    assert_json_equal(request, before)  # never mutated


@PROPERTY
@given(responses_requests())
@with_samples(RESPONSES_SAMPLES)
def test_merge_of_rebuilt_objects_is_lossless(request: dict[str, Any]) -> None:
    annotated = rebuilt(CODEC.decode(request))
    assert not any(is_pristine(obj) for obj in annotated_objects(annotated))
    before = copy.deepcopy(request)
    out = CODEC.encode(annotated, request)
    assert_json_equal(out, request)
    assert_json_equal(request, before)


def _sentinel_part(role: str) -> dict[str, Any]:
    if role == "assistant":
        return {"type": "output_text", "text": SENTINEL, "annotations": []}
    return {"type": "input_text", "text": SENTINEL}


SENTINEL_CALL = {
    "type": "function_call",
    "call_id": "call_sentinel",
    "name": "sentinel",
    "arguments": '{"s":"☃ sentinel"}',
}


@PROPERTY
@given(responses_requests())
@with_samples(RESPONSES_SAMPLES)
def test_merge_writes_rebuilt_objects_back_unchanged(request: dict[str, Any]) -> None:
    """Force every container to be re-encoded, so each rebuilt object goes through the merge.

    A sentinel text part goes to every message and tool result with a parts list, a sentinel call to
    every call message, a sentinel user message and a sentinel tool at the end; the sentinels must come out
    where they belong and everything else exactly as it was sent.
    """
    decoded = CODEC.decode(request)
    originals = wire_items(request)
    messages: list[Message] = []
    expected: list[Any] = []
    for message, wire in zip(rebuilt(decoded.messages), originals, strict=True):
        kind = item_kind(wire)
        if kind == "message" and isinstance(message.content, tuple):
            message = replace(message, content=(*message.content, TextPart(text=SENTINEL)))
            expected.append({**wire, "content": [*wire["content"], _sentinel_part(wire["role"])]})
        elif kind in ("function_call_output", "custom_tool_call_output") and isinstance(
            message.content, tuple
        ):
            message = replace(message, content=(*message.content, TextPart(text=SENTINEL)))
            expected.append({**wire, "output": [*wire["output"], _sentinel_part("user")]})
        elif message.tool_calls:
            call = ToolCall(id="call_sentinel", name="sentinel", arguments={"s": SENTINEL})
            message = replace(message, tool_calls=(*message.tool_calls, call))
            expected.extend([wire, SENTINEL_CALL])
        elif kind not in ("message",) and not kind.endswith("_output") and message.role == "assistant":
            # Reasoning and built-in items cannot hold text: the text becomes a message after them.
            message = replace(message, content=(*(message.content or ()), TextPart(text=SENTINEL)))
            expected.extend([wire, {"role": "assistant", "content": [_sentinel_part("assistant")]}])
        else:
            expected.append(wire)
        messages.append(message)
    messages.append(Message(role="user", content=SENTINEL))
    expected.append({"role": "user", "content": SENTINEL})
    annotated = replace(
        rebuilt(decoded),
        messages=tuple(messages),
        tools=(*rebuilt(decoded.tools), ToolDefinition(name="sentinel", description=SENTINEL)),
    )
    out = dict(CODEC.encode(annotated, request))
    items = out.pop("input")
    for position, (got, want) in enumerate(zip(items, expected, strict=True)):
        diff = json_diff(got, want, f"$.input[{position}]")
        assert diff is None, diff
    assert len(items) == len(expected)
    wire_tools = list(out.pop("tools"))
    assert_json_equal(wire_tools.pop(), {"type": "function", "name": "sentinel", "description": SENTINEL})
    assert_json_equal(wire_tools, request.get("tools", []))
    assert_json_equal(out, {k: v for k, v in request.items() if k not in ("input", "tools")})


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
    """Top-level keys the edit may remove (if kept, unchanged)."""
    items: list[Any] | None = None
    """The exact ``input`` item list expected, when the edit touches ``input``."""
    kept: dict[int, int] = field(default_factory=dict)
    """Output item index -> original item index of items that must be reused as they are (``is``)."""


EditMaker = Callable[[Draw, AnnotatedLlmRequest, dict[str, Any]], Edit]


def edit_model(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    model = draw(models)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.model == model

    return Edit("model", replace(request, model=model), verify, frozenset({"model"}))


def edit_temperature(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    temperature = draw(st.floats(min_value=0, max_value=2))

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.temperature == temperature

    edited = replace(request, params=replace(request.params, temperature=temperature))
    return Edit("temperature", edited, verify, frozenset({"temperature"}))


def edit_max_tokens(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    max_tokens = draw(st.integers(min_value=16, max_value=1_000_000))

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.max_tokens == max_tokens
        assert_json_equal(out["max_output_tokens"], max_tokens)

    edited = replace(request, params=replace(request.params, max_tokens=max_tokens))
    return Edit("max_tokens", edited, verify, frozenset({"max_output_tokens"}))


def edit_reasoning_effort(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    effort = draw(st.sampled_from(["minimal", "low", "medium", "high"]))
    before = wire.get("reasoning")

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.reasoning_effort == effort
        others = {k: v for k, v in (before or {}).items() if k != "effort"}
        assert_json_equal({k: v for k, v in out["reasoning"].items() if k != "effort"}, others)

    edited = replace(request, params=replace(request.params, reasoning_effort=effort))
    return Edit("reasoning_effort", edited, verify, frozenset({"reasoning"}))


def edit_response_format(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    name = draw(names)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    chat_style = draw(st.booleans())
    value = (
        {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
        if chat_style
        else {"type": "json_schema", "name": name, "schema": schema}
    )
    before = wire.get("text")

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        # Chat's nested json_schema form lands in the Responses (flat) form.
        assert_json_equal(
            decoded.params.response_format, {"type": "json_schema", "name": name, "schema": schema}
        )
        others = {k: v for k, v in (before or {}).items() if k != "format"}
        assert_json_equal({k: v for k, v in out["text"].items() if k != "format"}, others)

    edited = replace(request, params=replace(request.params, response_format=value))
    return Edit("response_format", edited, verify, frozenset({"text"}))


def edit_system(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    system = draw(texts | st.none())

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.system == system
        if system is not None:
            assert_json_equal(out["instructions"], system)

    # Input system/developer messages are never touched: only ``instructions`` changes.
    return Edit("system", replace(request, system=system), verify, frozenset({"instructions"}))


def edit_message_text(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    originals = wire_items(wire)
    candidates = [
        i
        for i, item in enumerate(originals)
        if item_kind(item) == "message"
        or item_kind(item) in ("function_call_output", "custom_tool_call_output")
    ]
    if not candidates:
        return edit_append_user(draw, request, wire)
    index = draw(st.sampled_from(candidates))
    text = draw(texts)
    messages = list(request.messages)
    messages[index] = replace(messages[index], content=text)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.messages[index].content == text

    key = "content" if item_kind(originals[index]) == "message" else "output"
    items = [*originals]
    items[index] = {**originals[index], key: text}
    if isinstance(wire.get("input"), str):
        return Edit(
            "message text",
            replace(request, messages=tuple(messages)),
            verify,
            frozenset({"input"}),
            items=None,
        )
    return Edit(
        "message text",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"input"}),
        items=items,
        kept={i: i for i in range(len(originals)) if i != index},
    )


def edit_append_user(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    originals = wire_items(wire)
    text = draw(texts)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        last = decoded.messages[-1]
        assert (last.role, last.content) == ("user", text)
        assert len(decoded.messages) == len(originals) + 1

    edited = replace(request, messages=(*request.messages, Message(role="user", content=text)))
    kept = {} if isinstance(wire.get("input"), str) else {i: i for i in range(len(originals))}
    return Edit(
        "append user message",
        edited,
        verify,
        frozenset({"input"}),
        items=[*originals, {"role": "user", "content": text}],
        kept=kept,
    )


def edit_drop_tool(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    index = draw(st.integers(min_value=0, max_value=len(request.tools) - 1))
    remaining = request.tools[:index] + request.tools[index + 1 :]
    kept_wire = [tool for i, tool in enumerate(wire["tools"]) if i != index]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tools == remaining
        if remaining:
            assert all(a is b for a, b in zip(out["tools"], kept_wire, strict=True))
        else:
            assert "tools" not in out
            assert "parallel_tool_calls" not in out

    may_drop = frozenset() if remaining else frozenset({"tool_choice", "parallel_tool_calls"})
    return Edit(
        "drop tool", replace(request, tools=remaining), verify, frozenset({"tools"}), may_drop=may_drop
    )


def edit_item_extra(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    """Add or change one unknown key of one item (for a call item, its tool call's or its message's)."""
    originals = wire_items(wire)
    if isinstance(wire.get("input"), str) or not originals:
        return edit_append_user(draw, request, wire)
    index = draw(st.integers(min_value=0, max_value=len(originals) - 1))
    message = request.messages[index]
    messages = list(request.messages)
    on_call: bool = draw(st.booleans())
    if message.tool_calls and on_call:
        call = message.tool_calls[0]
        key = draw(st.sampled_from(sorted(call.extra))) if call.extra else "x_added"
        value = new_extra_value(draw, call.extra[key]) if key in call.extra else draw(json_values)
        messages[index] = replace(message, tool_calls=(replace(call, extra={**call.extra, key: value}),))

        def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
            assert_json_equal(decoded.messages[index].tool_calls[0].extra[key], value)

    else:
        twins = [k for k in message.extra if twin(message.extra[k]) is not None]
        use_twin: bool = draw(st.booleans())
        if twins and use_twin:  # a change only strict JSON equality sees
            key = draw(st.sampled_from(twins))
            value = twin(message.extra[key])
        elif message.extra:
            key = draw(st.sampled_from(sorted(message.extra)))
            value = new_extra_value(draw, message.extra[key])
        else:
            key, value = "x_added", draw(json_values)
        messages[index] = replace(message, extra={**message.extra, key: value})

        def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
            owner = decoded.messages[index]
            found = owner.extra.get(key, owner.tool_calls[0].extra.get(key) if owner.tool_calls else None)
            if isinstance(owner.content, tuple) and len(owner.content) == 1 and key not in owner.extra:
                found = owner.content[0].extra.get(key, found)
            assert_json_equal(found, value)

    items = [*originals]
    items[index] = {**originals[index], key: value}
    return Edit(
        "item extra",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"input"}),
        items=items,
        kept={i: i for i in range(len(originals)) if i != index},
    )


def edit_forced_tool(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    """Rename the tool a ``tool_choice`` object forces: only its name may change."""
    assert request.tool_choice is not None
    name = draw(names)
    choice = wire["tool_choice"]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tool_choice is not None
        assert (decoded.tool_choice.mode, decoded.tool_choice.name) == ("tool", name)
        if "function" in choice and "name" not in choice:
            want = {**choice, "function": {**choice["function"], "name": name}}
        else:
            want = {**choice, "name": name}
        assert_json_equal(out["tool_choice"], want)

    edited = replace(request, tool_choice=replace(request.tool_choice, name=name))
    return Edit("forced tool", edited, verify, frozenset({"tool_choice"}))


def edit_tool_choice_extra(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
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
        assert_json_equal(out["tool_choice"], {**original, key: value})

    edited = replace(request, tool_choice=replace(choice, extra={**choice.extra, key: value}))
    return Edit("tool_choice extra", edited, verify, frozenset({"tool_choice"}))


EDITS: dict[str, EditMaker] = {
    "model": edit_model,
    "temperature": edit_temperature,
    "max_tokens": edit_max_tokens,
    "reasoning_effort": edit_reasoning_effort,
    "response_format": edit_response_format,
    "system": edit_system,
    "message text": edit_message_text,
    "append user message": edit_append_user,
    "drop tool": edit_drop_tool,
    "item extra": edit_item_extra,
    "forced tool": edit_forced_tool,
    "tool_choice extra": edit_tool_choice_extra,
}


def check_edit(edit: Edit, original: dict[str, Any]) -> None:
    """Encode ``edit`` over ``original``; check it wrote only what it touched."""
    before = copy.deepcopy(original)
    out = CODEC.encode(edit.edited, original)
    assert_json_equal(original, before)
    for key in set(original) | set(out):
        if key in edit.changed or (key in edit.may_drop and key not in out):
            continue
        assert key in out, f"{edit.name}: top-level {key!r} was dropped"
        assert key in original, f"{edit.name}: top-level {key!r} was added"
        diff = json_diff(out[key], original[key], f"$.{key}")
        assert diff is None, f"{edit.name}: {diff}"
    if edit.items is not None:
        got = out["input"]
        if isinstance(got, str):  # a single plain user message keeps the string form
            assert isinstance(original.get("input"), str)
            got = [{"role": "user", "content": got}]
        diff = json_diff(got, edit.items, "$.input")
        assert diff is None, f"{edit.name}: {diff}"
        for position, source in edit.kept.items():
            assert out["input"][position] is original["input"][source], (
                f"{edit.name}: item {source} rewritten"
            )
    decoded = CODEC.decode(out)
    edit.verify(decoded, out)
    again = CODEC.encode(CODEC.decode(out), out)
    assert again is out, json_diff(again, out)


@settings(PROPERTY, max_examples=15)
@pytest.mark.parametrize("edit_name", list(EDITS))
@given(data=st.data())
def test_edit_writes_only_what_changed(edit_name: str, data: st.DataObject) -> None:
    requests = responses_requests(
        with_tools=edit_name == "drop tool",
        forced_tool_choice=edit_name in ("forced tool", "tool_choice extra"),
    )
    request = data.draw(requests, label="request")
    check_edit(EDITS[edit_name](data.draw, CODEC.decode(request), request), request)


@settings(PROPERTY, max_examples=5)
@pytest.mark.parametrize("sample", range(len(RESPONSES_SAMPLES)))
@pytest.mark.parametrize("edit_name", [name for name in EDITS if name != "forced tool"])
@given(data=st.data())
def test_edit_of_rich_request_writes_only_what_changed(
    edit_name: str, sample: int, data: st.DataObject
) -> None:
    request = copy.deepcopy(RESPONSES_SAMPLES[sample])
    check_edit(EDITS[edit_name](data.draw, CODEC.decode(request), request), request)


def test_reasoning_and_other_parts_survive_a_fresh_rewrite() -> None:
    """A message rebuilt from scratch still writes reasoning and built-in parts as their own items."""
    request = copy.deepcopy(RESPONSES_SAMPLES[0])
    decoded = CODEC.decode(request)
    reasoning = decoded.messages[2].content
    search = decoded.messages[9].content
    assert isinstance(reasoning, tuple) and isinstance(reasoning[0], ReasoningPart)
    assert isinstance(search, tuple) and isinstance(search[0], OtherPart)
    merged = Message(role="assistant", content=(*reasoning, TextPart(text="done"), *search))
    out = CODEC.encode(replace(decoded, messages=(merged,)), request)
    assert out["input"] == [
        request["input"][2],
        {"role": "assistant", "content": [{"type": "output_text", "text": "done", "annotations": []}]},
        request["input"][9],
    ]
    assert json.dumps(out["input"][0]) == json.dumps(request["input"][2])
