"""What users of the anthropic-messages codec rely on: routes, system edits, block order, streams, errors."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

import nemoflow
from nemoflow import (
    ErrorKind,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolResultPart,
)
from nemoflow_codec_anthropic import AnthropicMessagesCodec
from tests.codec_anthropic.strategies import assert_json_equal

codec = AnthropicMessagesCodec()

BEDROCK = "https://bedrock-runtime.us-east-1.amazonaws.com"
VERTEX = "https://us-east5-aiplatform.googleapis.com/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models"

# ----------------------------------------------------------------------------------------- routes


@pytest.mark.parametrize(
    ("method", "path", "claimed"),
    [
        ("POST", "/v1/messages", True),
        ("POST", "/anthropic/v1/messages", True),
        ("POST", "/api/providers/anthropic/v1/messages", True),
        ("GET", "/v1/messages", False),
        ("POST", "/v1/messages/count_tokens", False),
        ("POST", "/v1/messages/batches", False),
        ("POST", "/v1/messages/batches/msgbatch_01/cancel", False),
        ("POST", "/v1/complete", False),
        ("POST", "/v1/chat/completions", False),
        ("POST", "/model/anthropic.claude-3-5-sonnet-20241022-v2:0/invoke", True),
        ("POST", "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream", True),
        ("POST", "/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.anthropic.claude/invoke", True),
        ("POST", "/model/anthropic.claude-3-haiku-20240307-v1:0/converse", False),
        ("POST", "/model/anthropic.claude-3-haiku-20240307-v1:0/converse-stream", False),
        (
            "POST",
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict",
            True,
        ),
        (
            "POST",
            "/v1/projects/p/locations/global/publishers/anthropic/models/claude-opus-4-1:streamRawPredict",
            True,
        ),
        (
            "POST",
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict",
            False,
        ),
        (
            "POST",
            "/v1/projects/p/locations/us-east5/publishers/google/models/gemini-2.5-pro:generateContent",
            False,
        ),
    ],
)
def test_match_route(method: str, path: str, claimed: bool) -> None:
    assert codec.match_route(method, path) is claimed


def test_the_registry_routes_anthropic_traffic_here() -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []}
    for url in (
        "https://api.anthropic.com/v1/messages?beta=true",
        f"{BEDROCK}/model/anthropic.claude-3-5-haiku-20241022-v1:0/invoke",
        f"{VERTEX}/claude-sonnet-4@20250514:rawPredict",
    ):
        routed = nemoflow.resolve_codec("POST", url, body)
        assert routed is not None and routed.name == "anthropic-messages", url
    counted = nemoflow.resolve_codec("POST", "https://api.anthropic.com/v1/messages/count_tokens", body)
    assert counted is None or counted.name != "anthropic-messages"


@pytest.mark.parametrize(
    ("url", "model", "stream"),
    [
        (
            f"{BEDROCK}/model/anthropic.claude-3-5-sonnet-20241022-v2:0/invoke",
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            False,
        ),
        (
            f"{BEDROCK}/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke-with-response-stream",
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            True,
        ),
        (
            f"{BEDROCK}/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Aapplication-inference-profile%2Fab12/invoke",
            "arn:aws:bedrock:us-east-1:123:application-inference-profile/ab12",
            False,
        ),
        (  # a client that sends the ARN's slash unencoded
            f"{BEDROCK}/model/arn:aws:bedrock:us-east-1:123:application-inference-profile/ab12/invoke",
            "arn:aws:bedrock:us-east-1:123:application-inference-profile/ab12",
            False,
        ),
        (f"{VERTEX}/claude-3-5-sonnet-v2%4020241022:streamRawPredict", "claude-3-5-sonnet-v2@20241022", True),
        (f"{VERTEX}/claude-opus-4-1@20250805:rawPredict", "claude-opus-4-1@20250805", False),
        ("https://api.anthropic.com/v1/messages", None, False),
    ],
)
def test_model_and_stream_come_from_the_url_when_the_body_lacks_them(
    url: str, model: str | None, stream: bool
) -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []}
    decoded = codec.decode(body, url=url)
    assert (decoded.model, decoded.stream) == (model, stream)
    assert codec.encode(decoded, body, url=url) is body
    named = {**body, "model": "claude-x", "stream": not stream}
    assert (codec.decode(named, url=url).model, codec.decode(named, url=url).stream) == (
        "claude-x",
        not stream,
    )


def test_body_edits_still_work_on_bedrock_and_vertex_routes() -> None:
    url = f"{BEDROCK}/model/anthropic.claude-3-5-haiku-20241022-v1:0/invoke-with-response-stream"
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
    }
    decoded = codec.decode(body, url=url)
    out = codec.encode(
        replace(decoded, params=replace(decoded.params, max_tokens=256), system="Be brief."), body, url=url
    )
    assert out == {**body, "max_tokens": 256, "system": "Be brief."}
    assert "model" not in out and "stream" not in out


# ----------------------------------------------------------------------------------------- sniff


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (
            {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
            "request",
        ),
        ({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": []}, "request"),
        ({"model": "m", "system": "s", "messages": [{"role": "user", "content": "hi"}]}, "request"),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}],
            },
            "request",
        ),
        ({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}, None),
        (
            {
                "model": "gpt-4o",
                "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            },
            None,
        ),
        ({"messages": [{"role": "user", "content": [{"text": "hi"}]}], "system": [{"text": "s"}]}, None),
        ({"messages": [{"role": "user", "content": "hi"}], "inferenceConfig": {"maxTokens": 5}}, None),
        ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, None),
        ({"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "m"}, "response"),
        (
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
            "stream_chunk",
        ),
        ({"type": "ping"}, "stream_chunk"),
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"),
        ({"object": "chat.completion", "choices": []}, None),
    ],
)
def test_sniff(payload: dict[str, Any], kind: str | None) -> None:
    assert codec.sniff(payload) == kind


# ----------------------------------------------------------------------------------------- system


def _request(system: Any = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if system is not None:
        body["system"] = system
    body.update(overrides)
    return body


BLOCKS = [
    {"type": "text", "text": "You are a support agent.", "x_note": 1},
    {"type": "text", "text": "<manual>", "cache_control": {"type": "ephemeral"}},
]


def test_system_text_joins_blocks_with_a_blank_line() -> None:
    assert codec.decode(_request(BLOCKS)).system == "You are a support agent.\n\n<manual>"
    assert codec.decode(_request("plain")).system == "plain"
    assert codec.decode(_request([])).system is None
    assert codec.decode(_request()).system is None


def test_system_edit_keeps_a_string_a_string() -> None:
    body = _request("Be brief.")
    out = codec.encode(replace(codec.decode(body), system="Be kind."), body)
    assert out == {**body, "system": "Be kind."}
    assert out["messages"] is body["messages"]


def test_system_added_and_removed() -> None:
    body = _request()
    assert codec.encode(replace(codec.decode(body), system="New."), body) == {**body, "system": "New."}
    with_system = _request(BLOCKS)
    removed = codec.encode(replace(codec.decode(with_system), system=None), with_system)
    assert "system" not in removed


def test_text_added_before_or_after_keeps_every_block_and_its_cache_breakpoint() -> None:
    body = _request(BLOCKS)
    decoded = codec.decode(body)
    out = codec.encode(replace(decoded, system="Never share secrets.\n\n" + (decoded.system or "")), body)
    assert out["system"][0] == {"type": "text", "text": "Never share secrets."}
    assert out["system"][1] is BLOCKS[0] and out["system"][2] is BLOCKS[1]
    out = codec.encode(replace(decoded, system=(decoded.system or "") + "\n\nAnswer in French."), body)
    assert out["system"][:2] == BLOCKS and out["system"][2] == {"type": "text", "text": "Answer in French."}
    assert codec.decode(out).system == "You are a support agent.\n\n<manual>\n\nAnswer in French."


def test_other_system_edits_write_one_block_with_the_first_blocks_keys() -> None:
    body = _request(BLOCKS)
    out = codec.encode(replace(codec.decode(body), system="Completely new."), body)
    assert out["system"] == [{"type": "text", "text": "Completely new.", "x_note": 1}]


# ----------------------------------------------------------------------------------------- messages

ASSISTANT: dict[str, Any] = {
    "role": "assistant",
    "content": [
        {"type": "thinking", "thinking": "plan", "signature": "sig"},
        {"type": "text", "text": "First,"},
        {"type": "tool_use", "id": "toolu_a", "name": "search", "input": {"q": "a"}},
        {"type": "text", "text": "then"},
        {"type": "tool_use", "id": "toolu_b", "name": "search", "input": {"q": "b"}},
    ],
    "x_meta": True,
}


def test_assistant_turn_splits_into_parts_and_tool_calls() -> None:
    message = codec.decode(_request(messages=[ASSISTANT])).messages[0]
    assert [p.kind for p in message.content] == ["reasoning", "text", "text"]  # type: ignore[union-attr]
    assert [(c.id, c.arguments) for c in message.tool_calls] == [
        ("toolu_a", {"q": "a"}),
        ("toolu_b", {"q": "b"}),
    ]
    assert message.text == "First,then"


def test_rebuilt_assistant_turn_keeps_block_order() -> None:
    body = _request(messages=[ASSISTANT])
    decoded = codec.decode(body)
    message = decoded.messages[0]
    assert isinstance(message.content, tuple)
    parts = list(message.content)
    parts[2] = TextPart(text="and then")
    new_call = ToolCall(id="toolu_c", name="search", arguments={"q": "c"})
    edited = replace(message, content=tuple(parts), tool_calls=(*message.tool_calls, new_call))
    out = codec.encode(replace(decoded, messages=(edited,)), body)
    blocks = out["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["thinking", "text", "tool_use", "text", "tool_use", "tool_use"]
    assert blocks[0] is ASSISTANT["content"][0] and blocks[2] is ASSISTANT["content"][2]
    assert blocks[3] == {"type": "text", "text": "and then"}
    assert blocks[5] == {"type": "tool_use", "id": "toolu_c", "name": "search", "input": {"q": "c"}}
    assert out["messages"][0]["x_meta"] is True


def test_removing_a_tool_call_or_a_part_removes_only_its_block() -> None:
    body = _request(messages=[ASSISTANT])
    decoded = codec.decode(body)
    message = decoded.messages[0]
    assert isinstance(message.content, tuple)
    out = codec.encode(
        replace(decoded, messages=(replace(message, tool_calls=message.tool_calls[1:]),)), body
    )
    blocks = ASSISTANT["content"]
    assert out["messages"][0]["content"] == [blocks[0], blocks[1], blocks[3], blocks[4]]
    without_thinking = replace(message, content=message.content[1:])
    out = codec.encode(replace(decoded, messages=(without_thinking,)), body)
    assert out["messages"][0]["content"] == blocks[1:]
    without_first_text = replace(message, content=(message.content[0], message.content[2]))
    out = codec.encode(replace(decoded, messages=(without_first_text,)), body)
    assert out["messages"][0]["content"] == [blocks[0], blocks[2], blocks[3], blocks[4]]


def test_string_turn_gaining_a_tool_call_becomes_blocks() -> None:
    body = _request(messages=[{"role": "assistant", "content": "Let me check."}])
    decoded = codec.decode(body)
    call = ToolCall(id="toolu_1", name="lookup", arguments={"id": 7})
    out = codec.encode(replace(decoded, messages=(replace(decoded.messages[0], tool_calls=(call,)),)), body)
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"id": 7}},
    ]


def test_new_messages_are_written_in_native_form() -> None:
    body = _request()
    decoded = codec.decode(body)
    turn = Message(
        role="assistant",
        content=(
            ReasoningPart(text="hmm", signature="s1"),
            ReasoningPart(signature="opaque", redacted=True),
            TextPart(text="ok"),
        ),
        tool_calls=(ToolCall(id="toolu_9", name="f", arguments=None, arguments_raw='{"x": 1}'),),
    )
    result = Message(
        role="user",
        content=(
            ToolResultPart(tool_call_id="toolu_9", content=(TextPart(text="done"),), is_error=False),
            ImagePart(url="data:image/png;base64,iVBORw0KGgo="),
            ImagePart(url="https://example.com/cat.jpg"),
            FilePart(data="JVBERi0=", media_type="application/pdf"),
            FilePart(data="plain words", media_type="text/plain"),
            FilePart(file_id="file_abc"),
        ),
    )
    out = codec.encode(replace(decoded, messages=(*decoded.messages, turn, result)), body)
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"x": 1}},
        ],
    }
    assert out["messages"][2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_9",
            "content": [{"type": "text", "text": "done"}],
            "is_error": False,
        },
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
        {"type": "document", "source": {"type": "file", "file_id": "file_abc"}},
    ]
    assert codec.encode(codec.decode(out), out) is out


def test_editing_a_source_keeps_unknown_keys_of_a_source_of_the_same_type() -> None:
    image = {
        "type": "image",
        "source": {"type": "url", "url": "https://x/a.png", "x_src": 1},
        "cache_control": {"type": "ephemeral"},
    }
    body = _request(messages=[{"role": "user", "content": [image]}])
    decoded = codec.decode(body)
    part = decoded.messages[0].content[0]  # type: ignore[index]
    assert isinstance(part, ImagePart)
    for new, source in [
        (replace(part, url="https://x/b.png"), {"type": "url", "url": "https://x/b.png", "x_src": 1}),
        (
            replace(part, url=None, data="AAAA", media_type="image/gif"),
            {"type": "base64", "media_type": "image/gif", "data": "AAAA"},
        ),
    ]:
        message = replace(decoded.messages[0], content=(new,))
        out = codec.encode(replace(decoded, messages=(message,)), body)
        assert out["messages"][0]["content"][0] == {**image, "source": source}


def test_redacting_tool_result_text_touches_only_that_text() -> None:
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "card 4111-1111"}, {"type": "text", "text": "ok", "x": 1}],
        "cache_control": {"type": "ephemeral"},
    }
    body = _request(messages=[{"role": "user", "content": [result]}])
    decoded = codec.decode(body)
    part = decoded.messages[0].content[0]  # type: ignore[index]
    assert isinstance(part, ToolResultPart) and isinstance(part.content, tuple)
    first = part.content[0]
    assert isinstance(first, TextPart)
    new_part = replace(part, content=(replace(first, text="card [REDACTED]"), part.content[1]))
    out = codec.encode(replace(decoded, messages=(replace(decoded.messages[0], content=(new_part,)),)), body)
    wire = out["messages"][0]["content"][0]
    assert wire == {**result, "content": [{"type": "text", "text": "card [REDACTED]"}, result["content"][1]]}
    assert wire["content"][1] is result["content"][1]


# ----------------------------------------------------------------------------------------- params, tools


def test_dropping_every_tool_drops_tool_choice() -> None:
    body = _request(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice={"type": "any"})
    out = codec.encode(replace(codec.decode(body), tools=()), body)
    assert "tools" not in out and "tool_choice" not in out


def test_tool_choice_modes_map_both_ways() -> None:
    for wire_type, mode in [("auto", "auto"), ("any", "required"), ("none", "none")]:
        decoded = codec.decode(_request(tool_choice={"type": wire_type, "disable_parallel_tool_use": True}))
        assert decoded.tool_choice is not None and decoded.tool_choice.mode == mode
        assert decoded.tool_choice.extra == {"disable_parallel_tool_use": True}
    body = _request(tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    decoded = codec.decode(body)
    assert decoded.tool_choice is not None
    forced = replace(decoded.tool_choice, mode="tool", name="search")
    out = codec.encode(replace(decoded, tool_choice=forced), body)
    assert out["tool_choice"] == {"type": "tool", "name": "search", "disable_parallel_tool_use": True}


def test_reasoning_effort_and_response_format_live_in_output_config() -> None:
    fmt = {"type": "json_schema", "schema": {"type": "object"}}
    body = _request(output_config={"format": fmt, "x_cfg": 1})
    decoded = codec.decode(body)
    assert (decoded.params.reasoning_effort, decoded.params.response_format) == (None, fmt)
    out = codec.encode(replace(decoded, params=replace(decoded.params, reasoning_effort="high")), body)
    assert out["output_config"] == {"format": fmt, "x_cfg": 1, "effort": "high"}
    plain = _request()
    out = codec.encode(
        replace(codec.decode(plain), params=replace(codec.decode(plain).params, reasoning_effort="low")),
        plain,
    )
    assert out["output_config"] == {"effort": "low"}


def test_sampling_params_and_stop_sequences() -> None:
    body = _request(temperature=1, top_k=5, stop_sequences=["END"])
    decoded = codec.decode(body)
    assert decoded.params.stop == ("END",)
    params = replace(decoded.params, temperature=0.2, top_k=None, stop=("A", "B"), max_tokens=50)
    out = codec.encode(replace(decoded, params=params), body)
    assert out == {
        **{k: v for k, v in body.items() if k != "top_k"},
        "temperature": 0.2,
        "stop_sequences": ["A", "B"],
        "max_tokens": 50,
    }


def test_stream_flag_is_never_given_stream_options() -> None:
    body = _request(stream=True)
    decoded = codec.decode(body)
    assert decoded.stream is True
    assert codec.encode(decoded, body) is body
    assert codec.encode(replace(decoded, stream=False), body) == {**body, "stream": False}


# ----------------------------------------------------------------------------------------- responses, streams

FULL_MESSAGE: dict[str, Any] = {
    "id": "msg_eq",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Step one. Step two.", "signature": "sig-1"},
        {
            "type": "text",
            "text": "Here is the answer, ",
            "citations": [{"type": "char_location", "cited_text": "x"}],
        },
        {"type": "text", "text": "with a tool."},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"id": [1, 2], "deep": {"x": None}}},
        {"type": "redacted_thinking", "data": "opaque"},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 2,
        "output_tokens": 40,
        "server_tool_use": {"web_search_requests": 1},
    },
}


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _stream_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events the API sends for ``message``, its deltas cut small."""
    usage = message["usage"]
    start_usage = {
        k: usage[k] for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    }
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                **message,
                "content": [],
                "stop_reason": None,
                "usage": {**start_usage, "output_tokens": 1},
            },
        }
    ]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": "", "citations": []},
                }
            )
            for citation in block.get("citations") or []:
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "citations_delta", "citation": citation},
                    }
                )
            for piece in _split(block["text"], 4):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    }
                )
        elif kind == "thinking":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                }
            )
            for piece in _split(block["thinking"], 5):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": piece},
                    }
                )
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                }
            )
        elif kind in ("tool_use", "server_tool_use"):
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}
            )
            for piece in _split(json.dumps(block["input"]), 3):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    }
                )
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": block})
        events.append({"type": "content_block_stop", "index": index})
        if index == 1:
            events.append({"type": "ping"})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"], "server_tool_use": usage["server_tool_use"]},
        }
    )
    events.append({"type": "message_stop"})
    return events


def _sse(events: list[dict[str, Any]]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def test_a_stream_decodes_to_the_same_reply_as_the_whole_message() -> None:
    whole = codec.decode_response(FULL_MESSAGE)
    streamed = codec.decode_stream([_sse(_stream_events(FULL_MESSAGE))])
    assert nemoflow.as_dict(streamed) == nemoflow.as_dict(whole)
    assert whole.text == "Here is the answer, with a tool."
    assert whole.reasoning_text == "Step one. Step two."
    assert [c.name for c in whole.tool_calls] == ["lookup"]  # the server tool is not a client call
    assert whole.finish_reason is FinishReason.TOOL_CALLS
    assert whole.usage.prompt_tokens == 17 and whole.usage.total_tokens == 57
    assert whole.extra["redacted_thinking"] == ["opaque"]
    assert [b["type"] for b in whole.extra["server_tool_blocks"]] == [
        "server_tool_use",
        "web_search_tool_result",
    ]


def test_bedrock_payload_chunks_are_unwrapped() -> None:
    decoder = codec.stream_decoder()
    for event in _stream_events(FULL_MESSAGE):
        payload = base64.b64encode(json.dumps(event).encode()).decode()
        decoder.feed(json.dumps({"bytes": payload}))
    assert nemoflow.as_dict(decoder.finish()) == nemoflow.as_dict(codec.decode_response(FULL_MESSAGE))


def test_stream_usage_takes_the_latest_value_and_never_sums() -> None:
    decoder = codec.stream_decoder()
    decoder.feed(
        json.dumps(
            {
                "type": "message_start",
                "message": {
                    "id": "m",
                    "usage": {"input_tokens": 100, "cache_read_input_tokens": 50, "output_tokens": 1},
                },
            }
        )
    )
    decoder.feed(json.dumps({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 10}}))
    decoder.feed(
        json.dumps(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 25, "input_tokens": 120, "cache_read_input_tokens": None},
            }
        )
    )
    usage = decoder.finish().usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cache_read_tokens, usage.total_tokens) == (
        170,
        25,
        50,
        195,
    )


def test_malformed_streamed_tool_input_keeps_the_raw_text() -> None:
    decoder = codec.stream_decoder()
    decoder.feed(
        json.dumps(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            }
        )
    )
    decoder.feed(
        json.dumps(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "Par'},
            }
        )
    )
    call = decoder.finish().tool_calls[0]
    assert (call.arguments, call.arguments_raw, call.arguments_valid) == (None, '{"city": "Par', False)


def test_an_error_event_keeps_the_text_and_the_usage_so_far() -> None:
    decoder = codec.stream_decoder()
    decoder.feed(
        json.dumps({"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}})
    )
    decoder.feed(
        json.dumps(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}}
        )
    )
    decoder.feed(
        json.dumps({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}),
        "error",
    )
    result = decoder.finish()
    assert (result.text, result.finish_reason, result.usage.prompt_tokens) == (
        "partial",
        FinishReason.ERROR,
        9,
    )
    assert result.error is not None and result.error.kind is ErrorKind.SERVER and result.error.retryable


@pytest.mark.parametrize(
    ("stop_reason", "has_calls", "finish"),
    [
        ("end_turn", False, "stop"),
        ("end_turn", True, "tool_calls"),
        ("stop_sequence", False, "stop"),
        ("max_tokens", True, "length"),
        ("tool_use", True, "tool_calls"),
        ("refusal", False, "content_filter"),
        ("pause_turn", False, "unknown"),
        ("model_context_window_exceeded", False, "length"),
        ("something_new", False, "unknown"),
        (None, False, "unknown"),
    ],
)
def test_finish_reasons(stop_reason: str | None, has_calls: bool, finish: str) -> None:
    content: list[Any] = [{"type": "tool_use", "id": "t", "name": "f", "input": {}}] if has_calls else []
    result = codec.decode_response({"type": "message", "content": content, "stop_reason": stop_reason})
    assert (result.finish_reason.value, result.finish_reason_raw) == (finish, stop_reason)


def test_unreported_usage_is_none_never_zero() -> None:
    usage = codec.decode_response({"type": "message", "content": [], "usage": {"output_tokens": 3}}).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.cache_read_tokens) == (
        None,
        3,
        None,
        None,
    )
    assert codec.decode_response({"type": "message", "content": []}).usage.reported is False


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error_type", "message", "kind"),
    [
        (400, "invalid_request_error", "messages: roles must alternate", "invalid_request"),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 201000 tokens > 200000 maximum",
            "context_length_exceeded",
        ),
        (400, "invalid_request_error", "Output blocked by content filtering policy", "content_filter"),
        (401, "authentication_error", "invalid x-api-key", "authentication"),
        (402, "billing_error", "Payment required", "quota_exceeded"),
        (403, "permission_error", "nope", "permission"),
        (404, "not_found_error", "model: x", "not_found"),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", "invalid_request"),
        (429, "rate_limit_error", "slow down", "rate_limit"),
        (500, "api_error", "Internal server error", "server"),
        (504, "timeout_error", "Request timeout", "timeout"),
        (529, "overloaded_error", "Overloaded", "overloaded"),
        (529, None, None, "overloaded"),
        (418, "teapot_error", "short and stout", "invalid_request"),
    ],
)
def test_error_classification(status: int, error_type: str | None, message: str | None, kind: str) -> None:
    body = {"type": "error", "error": {"type": error_type, "message": message}} if error_type else b""
    error = codec.decode_error(status, {}, body)
    assert (error.kind.value, error.status, error.type, error.message) == (kind, status, error_type, message)


def test_error_details_retry_after_and_body_limit() -> None:
    body = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "m",
            "details": {"error_code": "image_dimensions_too_large"},
        },
        "request_id": "req_1",
    }
    error = codec.decode_error(400, {"Retry-After-Ms": "1500"}, json.dumps(body).encode())
    assert (error.code, error.retry_after) == ("image_dimensions_too_large", 1.5)
    assert error.extra == {"details": {"error_code": "image_dimensions_too_large"}, "request_id": "req_1"}
    huge = codec.decode_error(502, {"retry-after": "3"}, "é" * 5000)
    assert huge.kind is ErrorKind.SERVER and huge.retry_after == 3.0
    assert huge.body is not None and len(huge.body.encode()) <= 4096 and huge.message is None


def test_as_dict_of_a_decoded_request_is_json_ready() -> None:
    """The annotated request is plain data: as_dict of a decode is JSON-ready."""
    body = _request(BLOCKS, tools=[{"name": "f", "input_schema": {"type": "object"}}])
    assert_json_equal(
        json.loads(json.dumps(nemoflow.as_dict(codec.decode(body)))), nemoflow.as_dict(codec.decode(body))
    )
