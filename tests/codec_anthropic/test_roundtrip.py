"""Round-trip properties of the anthropic-messages codec: lossless encode, lossless merge, minimal edits.

``encode(decode(x), x)`` must be ``x`` itself (Anthropic never gets stream usage injected), a request
rebuilt object by object with :func:`dataclasses.replace` must merge back to exactly ``x``, and an edit
must rewrite only what it touched. Equality is strict JSON equality (``true`` is not ``1``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from nemoflow import AnnotatedLlmRequest, Message, OtherPart, TextPart, ToolCall, ToolDefinition
from nemoflow.codec_support import is_pristine
from nemoflow_codec_anthropic import AnthropicMessagesCodec
from tests.codec_anthropic.strategies import (
    ANTHROPIC_SAMPLES,
    annotated_objects,
    assert_json_equal,
    json_diff,
    messages_requests,
    models,
    names,
    rebuilt,
    texts,
)
from tests.strategies import json_objects, json_values

_T = TypeVar("_T")


class Draw(Protocol):
    def __call__(self, strategy: st.SearchStrategy[_T], label: Any = None) -> _T: ...


CODEC = AnthropicMessagesCodec()
SENTINEL = "\N{SNOWMAN} sentinel"
SEPARATOR = "\n\n"

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_Test = TypeVar("_Test", bound=Callable[..., None])


def with_samples(test: _Test) -> _Test:
    for sample in reversed(ANTHROPIC_SAMPLES):
        test = example(copy.deepcopy(sample))(test)
    return test


def twin(value: Any) -> Any:
    """A value Python calls equal to ``value`` that JSON does not (``true``/``1``), or ``None``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


# ----------------------------------------------------------------------------------------- lossless


@PROPERTY
@given(messages_requests())
@with_samples
def test_encode_of_decode_returns_the_original_itself(request: dict[str, Any]) -> None:
    before = copy.deepcopy(request)
    out = CODEC.encode(CODEC.decode(request), request)
    assert out is request  # no stream-usage injection for Anthropic, ever
    assert_json_equal(request, before)


@PROPERTY
@given(messages_requests())
@with_samples
def test_merge_of_rebuilt_objects_is_lossless(request: dict[str, Any]) -> None:
    annotated = rebuilt(CODEC.decode(request))
    assert not any(is_pristine(obj) for obj in annotated_objects(annotated))
    before = copy.deepcopy(request)
    out = CODEC.encode(annotated, request)
    assert_json_equal(out, request)
    assert out is request  # nothing changed, so the original itself comes back (its bytes are forwarded)
    assert_json_equal(request, before)


def _is_sentinel_text(block: Any) -> bool:
    return bool(block == {"type": "text", "text": SENTINEL})


def _is_sentinel_call(block: Any) -> bool:
    return bool(
        block == {"type": "tool_use", "id": "toolu_sentinel", "name": "sentinel", "input": {"s": SENTINEL}}
    )


@PROPERTY
@given(messages_requests())
@with_samples
def test_merge_writes_rebuilt_objects_back_unchanged(request: dict[str, Any]) -> None:
    """Force every container to be re-encoded, so each rebuilt object goes through the merge.

    A sentinel is added to every block list (a text part and, where the message has tool calls, a call),
    to every ``tool_result`` content list, to the messages and to the tools. Removing the sentinels must
    give back exactly what was sent, in the same order.
    """
    decoded = CODEC.decode(request)
    messages: list[Message] = []
    for message in rebuilt(decoded.messages):
        if isinstance(message.content, tuple):
            parts = tuple(
                replace(part, content=(*part.content, TextPart(text=SENTINEL)))
                if part.kind == "tool_result" and isinstance(part.content, tuple)
                else part
                for part in message.content
            )
            message = replace(message, content=(*parts, TextPart(text=SENTINEL)))
        if message.tool_calls:
            sentinel = ToolCall(id="toolu_sentinel", name="sentinel", arguments={"s": SENTINEL})
            message = replace(message, tool_calls=(*message.tool_calls, sentinel))
        messages.append(message)
    messages.append(Message(role="user", content=SENTINEL))
    edited = replace(
        rebuilt(decoded),
        messages=tuple(messages),
        tools=(*rebuilt(decoded.tools), ToolDefinition(name="sentinel", description=SENTINEL)),
    )
    out = dict(CODEC.encode(edited, request))

    wire_messages = list(out.pop("messages"))
    assert_json_equal(wire_messages.pop(), {"role": "user", "content": SENTINEL})
    for wire, original, message in zip(wire_messages, request["messages"], decoded.messages, strict=True):
        wire = dict(wire)
        if isinstance(message.content, tuple):
            blocks = list(wire["content"])
            assert sum(map(_is_sentinel_text, blocks)) == 1
            if message.tool_calls:
                assert _is_sentinel_call(blocks.pop())  # new calls go last
                # new parts go right after the last part, before any later tool_use block
                last_part = max(
                    (i for i, block in enumerate(original["content"]) if block.get("type") != "tool_use"),
                    default=-1,
                )
                assert _is_sentinel_text(blocks[last_part + 1])
            cleaned = []
            for block in blocks:
                if _is_sentinel_text(block):
                    continue
                if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                    assert _is_sentinel_text(block["content"][-1])
                    block = {**block, "content": block["content"][:-1]}
                cleaned.append(block)
            wire["content"] = cleaned
        assert_json_equal(wire, original)

    wire_tools = list(out.pop("tools"))
    assert_json_equal(
        wire_tools.pop(), {"name": "sentinel", "description": SENTINEL, "input_schema": {"type": "object"}}
    )
    assert_json_equal(wire_tools, request.get("tools", []))
    assert_json_equal(out, {k: v for k, v in request.items() if k not in ("messages", "tools")})


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
    exact_messages: dict[int, Any] = field(default_factory=dict)
    """Message index -> the exact wire message expected there (every other message is reused as is)."""
    message_count: int | None = None


EditMaker = Callable[[Draw, AnnotatedLlmRequest, dict[str, Any]], Edit]


def edit_model(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    model = draw(models)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.model == model
        assert_json_equal(out["model"], model)

    return Edit("model", replace(request, model=model), verify, frozenset({"model"}))


def edit_temperature(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    temperature = draw(st.floats(min_value=0, max_value=1))

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.temperature == temperature

    edited = replace(request, params=replace(request.params, temperature=temperature))
    return Edit("temperature", edited, verify, frozenset({"temperature"}))


def edit_max_tokens(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    max_tokens = draw(st.integers(min_value=1, max_value=128_000))

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.max_tokens == max_tokens
        assert_json_equal(out["max_tokens"], max_tokens)

    edited = replace(request, params=replace(request.params, max_tokens=max_tokens))
    return Edit("max_tokens", edited, verify, frozenset({"max_tokens"}))


def edit_stop(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    stop = draw(st.none() | st.lists(texts, max_size=3).map(tuple))

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        if stop is None:
            assert "stop_sequences" not in out or request.params.stop is None
        else:
            assert decoded.params.stop == stop
            assert_json_equal(out["stop_sequences"], list(stop))

    edited = replace(request, params=replace(request.params, stop=stop))
    return Edit("stop", edited, verify, frozenset({"stop_sequences"}))


def edit_reasoning_effort(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    effort = draw(st.sampled_from(["low", "medium", "high"]) | st.none())
    before = wire.get("output_config")

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.reasoning_effort == effort
        after = out.get("output_config") or {}
        rest = {k: v for k, v in (before or {}).items() if k != "effort"}
        assert_json_equal({k: v for k, v in after.items() if k != "effort"}, rest)

    edited = replace(request, params=replace(request.params, reasoning_effort=effort))
    return Edit("reasoning_effort", edited, verify, frozenset({"output_config"}))


def edit_system(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    old = request.system
    choices = [texts, st.none()]
    if old:
        choices += [texts.map(lambda p: p + SEPARATOR + old), texts.map(lambda s: old + SEPARATOR + s)]
    system = draw(st.one_of(*choices))
    previous = wire.get("system")

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.system == system
        if system == old:
            return
        if system is None:
            assert "system" not in out
        elif isinstance(previous, list) and previous:
            blocks = out["system"]
            assert isinstance(blocks, list)
            kept = [b for b in blocks if any(b is p for p in previous)]
            # Either every original block survives (text added before or after) or one block with the
            # first text block's keys (cache_control and unknown keys included) replaces them.
            if len(kept) != len(previous):
                assert len(blocks) == 1
                first = next(b for b in previous if b.get("type") == "text")
                assert_json_equal(blocks[0], {**first, "text": system})
        else:
            assert_json_equal(out["system"], system)

    return Edit("system", replace(request, system=system), verify, frozenset({"system"}))


def _plain_messages(wire: dict[str, Any]) -> list[int]:
    return [
        i
        for i, m in enumerate(wire["messages"])
        if not (isinstance(m["content"], list) and any(b.get("type") == "tool_use" for b in m["content"]))
    ]


def edit_message_text(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    index = draw(st.sampled_from(_plain_messages(wire)))
    text = draw(texts)
    messages = list(request.messages)
    messages[index] = replace(messages[index], content=text)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.messages[index].content == text

    exact = {index: {**wire["messages"][index], "content": text}}
    return Edit(
        "message text",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"messages"}),
        exact_messages=exact,
    )


def _with_changes(blocks: list[Any], target: Any, changes: dict[str, Any]) -> list[Any]:
    """``blocks`` with ``changes`` applied to the one that is ``target``."""
    return [{**block, **changes} if block is target else block for block in blocks]


def _text_parts(request: AnnotatedLlmRequest) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, m in enumerate(request.messages)
        if isinstance(m.content, tuple)
        for j, part in enumerate(m.content)
        if isinstance(part, TextPart)
    ]


def edit_part_text(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    """Redact one text part (what a PII policy does): only that block's ``text`` may change."""
    candidates = _text_parts(request)
    if not candidates:
        return edit_message_text(draw, request, wire)
    index, position = draw(st.sampled_from(candidates))
    text = draw(texts)
    message = request.messages[index]
    assert isinstance(message.content, tuple)
    part = message.content[position]
    assert isinstance(part, TextPart)
    content = list(message.content)
    content[position] = replace(part, text=text)
    messages = list(request.messages)
    messages[index] = replace(message, content=tuple(content))
    original = wire["messages"][index]
    blocks = _with_changes(original["content"], part.raw, {"text": text})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        edited = decoded.messages[index].content
        assert isinstance(edited, tuple) and edited[position] == replace(part, text=text)
        for new, old in zip(out["messages"][index]["content"], original["content"], strict=True):
            assert new is old or old is part.raw  # every other block is reused as it was

    exact = {index: {**original, "content": blocks}}
    return Edit(
        "part text",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"messages"}),
        exact_messages=exact,
    )


def edit_tool_arguments(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    candidates = [(i, j) for i, m in enumerate(request.messages) for j in range(len(m.tool_calls))]
    if not candidates:
        return edit_model(draw, request, wire)
    index, position = draw(st.sampled_from(candidates))
    arguments = draw(json_objects)
    message = request.messages[index]
    call = message.tool_calls[position]
    calls = list(message.tool_calls)
    calls[position] = replace(call, arguments=arguments)
    messages = list(request.messages)
    messages[index] = replace(message, tool_calls=tuple(calls))
    original = wire["messages"][index]
    blocks = _with_changes(original["content"], call.raw, {"input": arguments})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.messages[index].tool_calls[position].arguments == arguments

    exact = {index: {**original, "content": blocks}}
    return Edit(
        "tool arguments",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"messages"}),
        exact_messages=exact,
    )


def edit_append_user(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    count = len(wire["messages"])
    text = draw(texts)

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert (decoded.messages[-1].role, decoded.messages[-1].content) == ("user", text)
        assert decoded.system == request.system

    edited = replace(request, messages=(*request.messages, Message(role="user", content=text)))
    exact = {count: {"role": "user", "content": text}}
    return Edit(
        "append user", edited, verify, frozenset({"messages"}), exact_messages=exact, message_count=count + 1
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
            assert "tools" not in out and "tool_choice" not in out  # the API rejects tool_choice alone

    may_drop = frozenset() if remaining else frozenset({"tool_choice"})
    return Edit("drop tool", replace(request, tools=remaining), verify, frozenset({"tools"}), may_drop)


def edit_message_extra(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    twins = [(i, k) for i, m in enumerate(request.messages) for k in m.extra if twin(m.extra[k]) is not None]
    use_twin = draw(st.booleans())
    if twins and use_twin:  # a change only strict JSON equality sees: true -> 1
        index, key = draw(st.sampled_from(twins))
        value = twin(request.messages[index].extra[key])
    else:
        index = draw(st.integers(min_value=0, max_value=len(request.messages) - 1))
        key, value = "x_added", draw(json_values)
    message = request.messages[index]
    messages = list(request.messages)
    messages[index] = replace(message, extra={**message.extra, key: value})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(decoded.messages[index].extra[key], value)

    exact = {index: {**wire["messages"][index], key: value}}
    return Edit(
        "message extra",
        replace(request, messages=tuple(messages)),
        verify,
        frozenset({"messages"}),
        exact_messages=exact,
    )


def edit_forced_tool(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    assert request.tool_choice is not None
    name = draw(names)
    choice = wire["tool_choice"]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tool_choice is not None
        assert (decoded.tool_choice.mode, decoded.tool_choice.name) == ("tool", name)
        assert_json_equal(out["tool_choice"], {**choice, "type": "tool", "name": name})

    edited = replace(request, tool_choice=replace(request.tool_choice, mode="tool", name=name))
    return Edit("forced tool", edited, verify, frozenset({"tool_choice"}))


def edit_tool_choice_mode(draw: Draw, request: AnnotatedLlmRequest, wire: dict[str, Any]) -> Edit:
    """Switch a forced choice to ``auto``/``required``: the type changes, the name goes, the rest stays."""
    assert request.tool_choice is not None
    mode: Literal["auto", "required"] = "auto" if draw(st.booleans()) else "required"
    choice = wire["tool_choice"]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        wanted = {k: v for k, v in choice.items() if k != "name"}
        assert_json_equal(out["tool_choice"], {**wanted, "type": "auto" if mode == "auto" else "any"})

    edited = replace(request, tool_choice=replace(request.tool_choice, mode=mode, name=None))
    return Edit("tool_choice mode", edited, verify, frozenset({"tool_choice"}))


CHAT_EDITS: dict[str, EditMaker] = {
    "model": edit_model,
    "temperature": edit_temperature,
    "max_tokens": edit_max_tokens,
    "stop": edit_stop,
    "reasoning_effort": edit_reasoning_effort,
    "system": edit_system,
    "message text": edit_message_text,
    "part text": edit_part_text,
    "tool arguments": edit_tool_arguments,
    "append user": edit_append_user,
    "drop tool": edit_drop_tool,
    "message extra": edit_message_extra,
    "forced tool": edit_forced_tool,
    "tool_choice mode": edit_tool_choice_mode,
}
NEEDS_TOOLS = frozenset({"drop tool"})
NEEDS_FORCED = frozenset({"forced tool", "tool_choice mode"})


def check_edit(edit: Edit, original: dict[str, Any]) -> None:
    """Encode ``edit`` over ``original``; check it wrote only what it touched."""
    before = copy.deepcopy(original)
    out = CODEC.encode(edit.edited, original)
    assert_json_equal(original, before)  # the original is never mutated
    for key in set(original) | set(out):
        if key in edit.changed or (key in edit.may_drop and key not in out):
            continue
        assert key in out, f"{edit.name}: top-level {key!r} was dropped"
        assert key in original, f"{edit.name}: top-level {key!r} was added"
        diff = json_diff(out[key], original[key], f"$.{key}")
        assert diff is None, f"{edit.name}: {diff}"
    wire_messages = out["messages"]
    count = edit.message_count if edit.message_count is not None else len(original["messages"])
    assert len(wire_messages) == count
    for index, message in enumerate(original["messages"]):
        if index in edit.exact_messages:
            diff = json_diff(wire_messages[index], edit.exact_messages[index], f"$.messages[{index}]")
            assert diff is None, f"{edit.name}: {diff}"
        else:
            assert wire_messages[index] is message, f"{edit.name}: untouched message {index} was rewritten"
    for index, message in edit.exact_messages.items():
        assert_json_equal(wire_messages[index], message)
    decoded = CODEC.decode(out)
    edit.verify(decoded, out)
    again = CODEC.encode(CODEC.decode(out), out)  # idempotent: the output round-trips to itself
    assert again is out, json_diff(again, out)


@settings(PROPERTY, max_examples=6)
@pytest.mark.parametrize("edit_name", list(CHAT_EDITS))
@given(data=st.data())
def test_edit_writes_only_what_changed(edit_name: str, data: st.DataObject) -> None:
    requests = messages_requests(
        with_tools=edit_name in NEEDS_TOOLS, forced_tool_choice=edit_name in NEEDS_FORCED
    )
    request = data.draw(requests, label="request")
    if edit_name in ("message text", "part text") and not _plain_messages(request):
        request["messages"].append({"role": "user", "content": "plain"})
    check_edit(CHAT_EDITS[edit_name](data.draw, CODEC.decode(request), request), request)


@settings(PROPERTY, max_examples=2)
@pytest.mark.parametrize("sample", range(len(ANTHROPIC_SAMPLES)))
@pytest.mark.parametrize("edit_name", list(CHAT_EDITS))
@given(data=st.data())
def test_edit_of_rich_request_writes_only_what_changed(
    edit_name: str, sample: int, data: st.DataObject
) -> None:
    request = copy.deepcopy(ANTHROPIC_SAMPLES[sample])
    check_edit(CHAT_EDITS[edit_name](data.draw, CODEC.decode(request), request), request)


def test_other_parts_are_written_back_whole() -> None:
    block = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [], "x_k": True}
    request = {"model": "m", "max_tokens": 1, "messages": [{"role": "assistant", "content": [block]}]}
    decoded = CODEC.decode(request)
    part = decoded.messages[0].content[0]  # type: ignore[index]
    assert isinstance(part, OtherPart) and part.type == "web_search_tool_result"
    message = replace(decoded.messages[0], content=(replace(part, extra={**part.extra, "x_k": 1}),))
    out = CODEC.encode(replace(decoded, messages=(message,)), request)
    assert_json_equal(out["messages"][0]["content"][0], {**block, "x_k": 1})
