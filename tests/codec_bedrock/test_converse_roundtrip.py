"""Round-trip properties of the bedrock-converse codec: lossless encode, lossless merge, minimal edits.

Equality is strict JSON equality (``json_diff``: ``true`` is not ``1``). Every property also runs on the
request fixtures of ``spec/fixtures/bedrock-converse`` and on a hand-written request holding every feature.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from nemoflow import (
    AnnotatedLlmRequest,
    EncodeError,
    Message,
    TextPart,
    ToolCall,
    ToolDefinition,
    ToolResultPart,
)
from nemoflow.codec_support import is_pristine
from nemoflow_codec_bedrock import BedrockConverseCodec
from tests.codec_bedrock.strategies import converse_requests, converse_url
from tests.strategies import json_values, names, texts
from tests.test_roundtrip import (
    annotated_objects,
    assert_json_equal,
    json_diff,
    new_extra_value,
    rebuilt,
    twin,
)

CODEC = BedrockConverseCodec()
SENTINEL = "\N{SNOWMAN} sentinel"
FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "fixtures" / "bedrock-converse"

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Case = tuple[str, dict[str, Any]]

RICH: Case = (
    converse_url("anthropic.claude-3-5-sonnet-20240620-v1:0", True),
    {
        "x_top": {"deep": [{"deeper": [True, 1, 1.0, "1"]}]},
        "system": [
            {"text": "Be brief.", "x_sys": 1},
            {"cachePoint": {"type": "default", "x_cp": True}},
            {"guardContent": {"text": {"text": "No advice."}}},
            {"text": "Metric units."},
        ],
        "messages": [
            {
                "role": "user",
                "x_msg": 0,
                "content": [
                    {"x_before": 1, "text": "Compare \N{SNOWMAN}", "x_after": [None]},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo=", "x_src": 1}, "x_img": 2}},
                    {
                        "image": {
                            "format": "jpeg",
                            "source": {"s3Location": {"uri": "s3://b/k.jpg", "x_loc": 0}},
                        }
                    },
                    {
                        "document": {
                            "format": "pdf",
                            "name": "Report",
                            "source": {"bytes": "JVBERi0="},
                            "x_doc": {},
                        }
                    },
                    {"document": {"format": "txt", "name": "Notes", "source": {"text": "plain notes"}}},
                    {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/v.mp4"}}}, "x_v": 1},
                    {"audio": {"format": "wav", "source": {"bytes": "UklGRg=="}}},
                    {"cachePoint": {"type": "default"}, "x_cache": False},
                    {"guardContent": {"text": {"text": "guarded", "qualifiers": ["query"]}}},
                    {"searchResult": {"source": "kb", "title": "T", "content": [{"text": "r"}]}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig", "x_rt": 1}}},
                    {"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}, "x_red": True},
                    {"text": "Calling tools."},
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_a",
                            "name": "weather",
                            "input": {"city": "Par"},
                            "x_tu": 1,
                        }
                    },
                    {"text": "And another."},
                    {
                        "toolUse": {"toolUseId": "tooluse_b", "name": "search", "input": [1, "two"]},
                        "x_call": 0,
                    },
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_s",
                            "name": "grounding",
                            "input": {},
                            "type": "server_tool_use",
                        }
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "tooluse_a",
                            "content": [{"json": {"t": 18}}, {"text": "sunny", "x_res": 1}],
                            "status": "success",
                            "x_tr": 2,
                        },
                        "x_block": None,
                    },
                    {
                        "toolResult": {
                            "toolUseId": "tooluse_b",
                            "content": [{"text": "failed"}],
                            "status": "error",
                        }
                    },
                    {"text": "Thanks"},
                ],
            },
        ],
        "inferenceConfig": {
            "maxTokens": 512,
            "temperature": 1,
            "topP": 0.9,
            "stopSequences": ["END"],
            "x_ic": 1,
        },
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "weather",
                        "description": "Weather",
                        "inputSchema": {"json": {"type": "object"}, "x_schema": 1},
                        "strict": True,
                        "x_spec": "s",
                    },
                    "x_entry": 1,
                },
                {"cachePoint": {"type": "default"}},
                {
                    "toolSpec": {
                        "name": "search",
                        "inputSchema": {"json": {"type": "object", "properties": {}}},
                    }
                },
                {"systemTool": {"name": "nova_grounding", "x_sys_tool": 1}},
            ],
            "toolChoice": {"tool": {"name": "weather", "x_why": "forced"}, "x_choice": 1},
            "x_tc": True,
        },
        "additionalModelRequestFields": {"top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 1024}},
        "outputConfig": {"effort": "low", "x_oc": 1},
        "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"},
        "requestMetadata": {"k": "v"},
        "performanceConfig": {"latency": "optimized"},
        "additionalModelResponseFieldPaths": ["/stop_sequence"],
    },
)


ODD: Case = (
    "/model/amazon.nova-micro-v1:0/converse",
    {
        "system": [{"cachePoint": {"type": "default"}}],
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {}},
                    {"toolUse": {"toolUseId": "t", "name": "f", "input": None}},
                    {"toolUse": {"name": "g"}},
                    {"image": {"format": "png", "source": None}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "t", "content": None, "status": None}},
                    {"toolResult": {"toolUseId": "t", "status": "unknown"}},
                    {"document": {"name": "n", "source": {"content": [{"text": "chunk"}]}}},
                    {"video": {"source": {"bytes": "AAAA"}}},
                    {"text": ""},
                ],
            },
            {"role": "user", "content": []},
            {"role": "user", "content": None},
        ],
        "inferenceConfig": {"maxTokens": None, "stopSequences": []},
        "toolConfig": {
            "tools": [
                {"toolSpec": {"name": "f"}},
                {"mcpServer": {"url": "https://mcp.example"}},
                {"systemTool": {}},
            ],
            "toolChoice": {"x_future_mode": {}},
        },
        "outputConfig": {},
        "additionalModelRequestFields": {"top_k": True},
    },
)


def _fixture_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(FIXTURES.glob("request-*.json")):
        fixture = json.loads(path.read_text(encoding="utf-8"))
        cases.append((fixture["url"], fixture["input"]))
    return cases


SAMPLES: list[Case] = [RICH, ODD, *_fixture_cases()]

_Test = Callable[..., None]


def with_samples(test: _Test) -> _Test:
    for sample in reversed(SAMPLES):
        test = example(copy.deepcopy(sample))(test)
    return test


# ----------------------------------------------------------------------------------------- lossless


def check_identity(url: str, request: dict[str, Any]) -> None:
    """``encode(decode(x), x)`` is ``x`` itself (with and without the URL) and ``x`` is not mutated."""
    before = copy.deepcopy(request)
    decoded = CODEC.decode(request, url=url)
    assert CODEC.encode(decoded, request, url=url) is request
    assert CODEC.encode(decoded, request) is request
    assert_json_equal(request, before)


def check_rebuilt_merge(url: str, request: dict[str, Any]) -> None:
    """Every object rebuilt by ``replace`` (none pristine) still encodes to exactly ``x``."""
    annotated = rebuilt(CODEC.decode(request, url=url))
    assert not any(is_pristine(obj) for obj in annotated_objects(annotated))
    before = copy.deepcopy(request)
    assert_json_equal(CODEC.encode(annotated, request, url=url), request)
    assert_json_equal(request, before)


def _with_result_sentinels(part: Any) -> Any:
    if isinstance(part, ToolResultPart) and isinstance(part.content, tuple):
        return replace(part, content=(*part.content, TextPart(text=SENTINEL)))
    return part


def _is_tool_use(block: Mapping[str, Any]) -> bool:
    return next((key for key in block if not str(key).startswith("x_")), None) == "toolUse" or (
        "toolUse" in block and "text" not in block
    )


def check_sentinels(url: str, request: dict[str, Any]) -> None:
    """Sentinels appended everywhere force every container to be re-encoded around the rebuilt objects.

    A sentinel text part goes into every message (after its last non-tool block), every tool result's
    content, a sentinel tool call into every message with calls (at the end), a sentinel message and a
    sentinel tool at the end. Removing the sentinels from the output must give the request back exactly.
    """
    decoded = CODEC.decode(request, url=url)
    messages: list[Message] = []
    for message in rebuilt(decoded.messages):
        content = tuple(_with_result_sentinels(part) for part in message.content or ())
        message = replace(message, content=(*content, TextPart(text=SENTINEL)))
        if message.tool_calls:
            sentinel_call = ToolCall(id="tooluse_sentinel", name="sentinel", arguments={"s": SENTINEL})
            message = replace(message, tool_calls=(*message.tool_calls, sentinel_call))
        messages.append(message)
    messages.append(Message(role="user", content=SENTINEL))
    sentinel_tool = ToolDefinition(name="sentinel", description=SENTINEL)
    annotated = replace(
        rebuilt(decoded), messages=tuple(messages), tools=(*rebuilt(decoded.tools), sentinel_tool)
    )
    out = dict(CODEC.encode(annotated, request, url=url))

    wire_messages = list(out.pop("messages"))
    assert_json_equal(wire_messages.pop(), {"role": "user", "content": [{"text": SENTINEL}]})
    assert len(wire_messages) == len(request.get("messages", []))
    for wire, original, message in zip(
        wire_messages, request.get("messages", []), decoded.messages, strict=True
    ):
        blocks = list(wire["content"])
        if message.tool_calls:
            assert_json_equal(
                blocks.pop(),
                {"toolUse": {"toolUseId": "tooluse_sentinel", "name": "sentinel", "input": {"s": SENTINEL}}},
            )
        original_blocks = original.get("content") or []
        part_slots = [i for i, block in enumerate(original_blocks) if not _is_tool_use(block)]
        expected_at = part_slots[-1] + 1 if part_slots else 0
        assert_json_equal(blocks.pop(expected_at), {"text": SENTINEL})
        for position, block in enumerate(blocks):
            previous = original_blocks[position].get("toolResult")
            if (
                "toolResult" in block
                and isinstance(previous, Mapping)
                and isinstance(previous.get("content"), list)
            ):
                result = dict(block["toolResult"])
                result_content = list(result["content"])
                assert_json_equal(result_content.pop(), {"text": SENTINEL})
                blocks[position] = {**block, "toolResult": {**result, "content": result_content}}
        restored = {**wire, "content": blocks}
        if original.get("content") is None:  # a null content gained only the sentinel
            assert blocks == []
            restored = {key: value for key, value in wire.items() if key != "content"}
            if "content" in original:
                restored["content"] = None
        assert_json_equal(restored, original)

    config = dict(out.pop("toolConfig"))
    tools = list(config.pop("tools"))
    assert_json_equal(
        tools.pop(),
        {
            "toolSpec": {
                "name": "sentinel",
                "description": SENTINEL,
                "inputSchema": {"json": {"type": "object", "properties": {}}},
            }
        },
    )
    original_config = dict(request.get("toolConfig", {"tools": []}))
    assert_json_equal(tools, original_config.pop("tools"))
    assert_json_equal(config, original_config)
    assert_json_equal(out, {k: v for k, v in request.items() if k not in ("messages", "toolConfig")})


@PROPERTY
@given(converse_requests())
@with_samples
def test_request_round_trip_laws(case: Case) -> None:
    """Lossless encode, lossless merge of rebuilt objects, and untouched objects around new ones."""
    url, request = case
    check_identity(url, request)
    check_rebuilt_merge(url, request)
    check_sentinels(url, request)


# ----------------------------------------------------------------------------------------- edits

Verify = Callable[[AnnotatedLlmRequest, Mapping[str, Any]], None]


def check_edit(
    url: str,
    request: dict[str, Any],
    edited: AnnotatedLlmRequest,
    changed: frozenset[str],
    verify: Verify,
    *,
    may_drop: frozenset[str] = frozenset(),
    kept_messages: Mapping[int, int] | None = None,
) -> Mapping[str, Any]:
    """Encode ``edited``; only ``changed`` top-level keys may differ (the rest are the very same objects)."""
    before = copy.deepcopy(request)
    out = CODEC.encode(edited, request, url=url)
    assert_json_equal(request, before)
    for key in set(request) | set(out):
        if key in changed or (key in may_drop and key not in out):
            continue
        assert key in out, f"top-level {key!r} was dropped"
        assert key in request, f"top-level {key!r} was added"
        assert out[key] is request[key], (
            f"top-level {key!r} was rewritten: {json_diff(out[key], request[key])}"
        )
    if kept_messages is not None:
        for position, source in kept_messages.items():
            assert out["messages"][position] is request["messages"][source], f"message {source} was rewritten"
    verify(CODEC.decode(out, url=url), out)
    again = CODEC.encode(CODEC.decode(out, url=url), out, url=url)
    assert again is out
    return out


def _same(count: int, skip: int | None = None) -> dict[int, int]:
    return {i: i for i in range(count) if i != skip}


@dataclass
class Edit:
    """One edit of a decoded request and what its encoding may change."""

    edited: AnnotatedLlmRequest
    changed: frozenset[str]
    verify: Verify
    may_drop: frozenset[str] = frozenset()
    kept_messages: Mapping[int, int] | None = None


EditMaker = Callable[[st.DataObject, str, dict[str, Any], AnnotatedLlmRequest], Edit]


def edit_temperature(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    value = data.draw(st.floats(min_value=0, max_value=1), label="temperature")
    previous = wire.get("inferenceConfig", {})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.temperature == value
        assert_json_equal(out["inferenceConfig"], {**previous, "temperature": value})

    edited = replace(request, params=replace(request.params, temperature=value))
    return Edit(edited, frozenset({"inferenceConfig"}), verify)


def edit_max_tokens(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    value = data.draw(st.integers(min_value=1, max_value=200_000), label="max_tokens")
    previous = wire.get("inferenceConfig", {})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.max_tokens == value
        assert_json_equal(out["inferenceConfig"], {**previous, "maxTokens": value})

    edited = replace(request, params=replace(request.params, max_tokens=value))
    return Edit(edited, frozenset({"inferenceConfig"}), verify)


def edit_stop(data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest) -> Edit:
    value = tuple(data.draw(st.lists(texts, min_size=1, max_size=3), label="stop"))
    previous = wire.get("inferenceConfig", {})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.stop == value
        assert_json_equal(out["inferenceConfig"], {**previous, "stopSequences": list(value)})

    return Edit(
        replace(request, params=replace(request.params, stop=value)), frozenset({"inferenceConfig"}), verify
    )


def edit_top_k(data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest) -> Edit:
    value = data.draw(st.integers(min_value=1, max_value=500), label="top_k")

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.params.top_k == value

    edited = replace(request, params=replace(request.params, top_k=value))
    return Edit(edited, frozenset({"additionalModelRequestFields"}), verify)


def _first_key(block: Mapping[str, Any]) -> str | None:
    for key in block:
        if key in ("text", "cachePoint", "guardContent"):
            return str(key)
    return None


def edit_system(data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest) -> Edit:
    value = data.draw(texts, label="system")
    others = [block for block in wire.get("system", []) if _first_key(block) != "text"]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.system == value
        if value != request.system:
            kept = [block for block in out["system"] if _first_key(block) != "text"]
            assert len(kept) == len(others) and all(a is b for a, b in zip(kept, others, strict=True))
            assert [block["text"] for block in out["system"] if _first_key(block) == "text"] == [value]

    return Edit(
        replace(request, system=value),
        frozenset({"system"}),
        verify,
        kept_messages=_same(len(wire["messages"])),
    )


def _text_layout(original: list[Any], text: str) -> list[Any]:
    """What a message's content becomes when its content is set to ``text``: tool calls stay in place."""
    blocks: list[Any] = []
    placed = False
    for block in original:
        if _is_tool_use(block):
            blocks.append(block)
        elif not placed:
            blocks.append({"text": text})
            placed = True
    if not placed:
        blocks.insert(0, {"text": text})
    return blocks


def edit_message_text(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    originals = wire["messages"]
    index = data.draw(st.integers(min_value=0, max_value=len(originals) - 1), label="index")
    text = data.draw(texts, label="text")
    messages = list(request.messages)
    messages[index] = replace(messages[index], content=text)
    expected = {**originals[index], "content": _text_layout(originals[index]["content"], text)}

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(out["messages"][index], expected)
        assert decoded.messages[index].text == text

    edited = replace(request, messages=tuple(messages))
    return Edit(edited, frozenset({"messages"}), verify, kept_messages=_same(len(originals), index))


def edit_append_user(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    count = len(wire["messages"])
    text = data.draw(texts, label="text")

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(out["messages"][count], {"role": "user", "content": [{"text": text}]})
        assert decoded.system == request.system

    new = Message(role="user", content=(TextPart(text=text),))
    edited = replace(request, messages=(*request.messages, new))
    return Edit(edited, frozenset({"messages"}), verify, kept_messages=_same(count))


def edit_drop_tool(data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest) -> Edit:
    index = data.draw(st.integers(min_value=0, max_value=len(request.tools) - 1), label="index")
    remaining = request.tools[:index] + request.tools[index + 1 :]
    kept_wire = [tool for i, tool in enumerate(wire["toolConfig"]["tools"]) if i != index]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tools == remaining
        if remaining:
            assert all(a is b for a, b in zip(out["toolConfig"]["tools"], kept_wire, strict=True))
            assert_json_equal(out["toolConfig"], {**wire["toolConfig"], "tools": kept_wire})
        else:
            assert "toolConfig" not in out  # Bedrock rejects an empty tool list and a choice without tools

    return Edit(
        replace(request, tools=remaining),
        frozenset({"toolConfig"}),
        verify,
        may_drop=frozenset({"toolConfig"}),
    )


def edit_message_extra(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    originals = wire["messages"]
    index = data.draw(st.integers(min_value=0, max_value=len(originals) - 1), label="index")
    message = request.messages[index]
    if message.extra:
        key = data.draw(st.sampled_from(sorted(message.extra)), label="key")
        value = new_extra_value(data.draw, message.extra[key])
    else:
        key, value = "x_added", data.draw(json_values, label="value")
    messages = list(request.messages)
    messages[index] = replace(message, extra={**message.extra, key: value})

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(out["messages"][index], {**originals[index], key: value})

    edited = replace(request, messages=tuple(messages))
    return Edit(edited, frozenset({"messages"}), verify, kept_messages=_same(len(originals), index))


def edit_part_extra(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    """Change one block-level unknown key of one content part (a flag twin when there is one)."""
    originals = wire["messages"]
    index = data.draw(st.integers(min_value=0, max_value=len(originals) - 1), label="message")
    message = request.messages[index]
    parts = message.content if isinstance(message.content, tuple) else ()
    position = data.draw(st.integers(min_value=0, max_value=len(parts) - 1), label="part") if parts else None
    if position is None:
        return edit_message_extra(data, url, wire, request)
    part = parts[position]
    twins = [key for key in part.extra if twin(part.extra[key]) is not None]
    if twins and part.kind != "other" and data.draw(st.booleans(), label="twin"):
        key = data.draw(st.sampled_from(sorted(twins)), label="key")
        value = twin(part.extra[key])
    else:
        key, value = "x_added_key", data.draw(json_values, label="value")
    new_parts = list(parts)
    new_parts[position] = replace(part, extra={**part.extra, key: value})
    messages = list(request.messages)
    messages[index] = replace(message, content=tuple(new_parts))
    blocks = list(originals[index]["content"])
    slot = [i for i, block in enumerate(blocks) if not _is_tool_use(block)][position]
    blocks[slot] = {**blocks[slot], key: value}

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(out["messages"][index], {**originals[index], "content": blocks})
        for i, (new, old) in enumerate(
            zip(out["messages"][index]["content"], originals[index]["content"], strict=True)
        ):
            if i != slot:
                assert new is old, f"untouched block {i} was rewritten"

    edited = replace(request, messages=tuple(messages))
    return Edit(edited, frozenset({"messages"}), verify, kept_messages=_same(len(originals), index))


def edit_tool_arguments(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    located = [(i, j) for i, message in enumerate(request.messages) for j in range(len(message.tool_calls))]
    if not located:
        return edit_append_user(data, url, wire, request)
    index, position = data.draw(st.sampled_from(located), label="call")
    arguments = data.draw(st.dictionaries(names, json_values, max_size=3), label="arguments")
    message = request.messages[index]
    calls = list(message.tool_calls)
    calls[position] = replace(calls[position], arguments=arguments)
    messages = list(request.messages)
    messages[index] = replace(message, tool_calls=tuple(calls))
    blocks = list(wire["messages"][index]["content"])
    slot = [i for i, block in enumerate(blocks) if _is_tool_use(block)][position]
    blocks[slot] = {**blocks[slot], "toolUse": {**blocks[slot]["toolUse"], "input": arguments}}

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(out["messages"][index], {**wire["messages"][index], "content": blocks})
        assert decoded.messages[index].tool_calls[position].arguments == arguments

    edited = replace(request, messages=tuple(messages))
    return Edit(edited, frozenset({"messages"}), verify, kept_messages=_same(len(wire["messages"]), index))


def edit_forced_tool(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    assert request.tool_choice is not None and request.tool_choice.mode == "tool"
    name = data.draw(names, label="name")
    config = wire["toolConfig"]
    choice = config["toolChoice"]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert decoded.tool_choice is not None and decoded.tool_choice.name == name
        wanted = {**choice, "tool": {**choice["tool"], "name": name}}
        assert_json_equal(out["toolConfig"], {**config, "toolChoice": wanted})
        assert out["toolConfig"]["tools"] is config["tools"]

    edited = replace(request, tool_choice=replace(request.tool_choice, name=name))
    return Edit(edited, frozenset({"toolConfig"}), verify)


def edit_tool_choice_extra(
    data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest
) -> Edit:
    choice = request.tool_choice
    assert choice is not None
    if choice.extra:
        key = data.draw(st.sampled_from(sorted(choice.extra)), label="key")
        value = new_extra_value(data.draw, choice.extra[key])
    else:
        key, value = "x_added", data.draw(json_values, label="value")
    config = wire["toolConfig"]

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(out["toolConfig"], {**config, "toolChoice": {**config["toolChoice"], key: value}})

    edited = replace(request, tool_choice=replace(choice, extra={**choice.extra, key: value}))
    return Edit(edited, frozenset({"toolConfig"}), verify)


def edit_extra(data: st.DataObject, url: str, wire: dict[str, Any], request: AnnotatedLlmRequest) -> Edit:
    key = data.draw(
        st.sampled_from(sorted(request.extra)) if request.extra else st.just("x_added"), label="key"
    )
    value = new_extra_value(data.draw, request.extra.get(key))

    def verify(decoded: AnnotatedLlmRequest, out: Mapping[str, Any]) -> None:
        assert_json_equal(out[key], value)

    return Edit(replace(request, extra={**request.extra, key: value}), frozenset({key}), verify)


EDITS: dict[str, EditMaker] = {
    "temperature": edit_temperature,
    "max_tokens": edit_max_tokens,
    "stop": edit_stop,
    "top_k": edit_top_k,
    "system": edit_system,
    "message text": edit_message_text,
    "append user message": edit_append_user,
    "drop tool": edit_drop_tool,
    "message extra": edit_message_extra,
    "part extra": edit_part_extra,
    "tool arguments": edit_tool_arguments,
    "forced tool": edit_forced_tool,
    "tool_choice extra": edit_tool_choice_extra,
    "request extra": edit_extra,
}


@settings(PROPERTY, max_examples=5)
@pytest.mark.parametrize("edit_name", list(EDITS))
@given(data=st.data())
def test_edit_writes_only_what_changed(edit_name: str, data: st.DataObject) -> None:
    requests = converse_requests(
        with_tools=edit_name == "drop tool",
        forced_tool_choice=edit_name in ("forced tool", "tool_choice extra"),
    )
    url, request = data.draw(st.one_of(requests, st.just(RICH).map(copy.deepcopy)), label="request")
    edit = EDITS[edit_name](data, url, request, CODEC.decode(request, url=url))
    check_edit(
        url,
        request,
        edit.edited,
        edit.changed,
        edit.verify,
        may_drop=edit.may_drop,
        kept_messages=edit.kept_messages,
    )


@settings(PROPERTY, max_examples=5)
@given(case=converse_requests(), model=names)
def test_model_and_stream_edits_are_refused_with_the_url(case: Case, model: str) -> None:
    url, request = case
    decoded = CODEC.decode(request, url=url)
    with pytest.raises(EncodeError) as info:
        CODEC.encode(replace(decoded, model=f"{decoded.model}-{model}"), request, url=url)
    assert info.value.path == "$"
    with pytest.raises(EncodeError):
        CODEC.encode(replace(decoded, stream=not decoded.stream), request, url=url)
