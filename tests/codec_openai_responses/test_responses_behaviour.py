"""What users of the ``openai-responses`` codec rely on: edits land where they belong, replies decode."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from nemoflow import (
    ErrorKind,
    FinishReason,
    Message,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResultPart,
)
from nemoflow_codec_openai import OpenAIResponsesCodec

codec = OpenAIResponsesCodec()


def body(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "gpt-5",
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "Use metric units.", "x_dev": 1},
            {"role": "user", "content": "Weather in Oslo?"},
        ],
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"verbosity": "low"},
        "x_top": True,
    }
    request.update(overrides)
    return request


def sse(*events: dict[str, Any]) -> bytes:
    return "".join(f"data: {json.dumps(event)}\n\n" for event in events).encode()


# ----------------------------------------------------------------------------------------- requests


def test_string_input_stays_a_string_while_it_is_one_plain_user_message() -> None:
    request = {"model": "gpt-4.1", "input": "hi"}
    decoded = codec.decode(request)
    edited = replace(decoded, messages=(replace(decoded.messages[0], content="hello"),))
    assert codec.encode(edited, request) == {"model": "gpt-4.1", "input": "hello"}
    appended = replace(decoded, messages=(*decoded.messages, Message(role="user", content="more")))
    assert codec.encode(appended, request)["input"] == [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "more"},
    ]
    as_developer = replace(decoded, messages=(replace(decoded.messages[0], role="developer"),))
    assert codec.encode(as_developer, request)["input"] == [{"role": "developer", "content": "hi"}]
    parts = replace(decoded, messages=(replace(decoded.messages[0], content=(TextPart(text="hi"),)),))
    assert codec.encode(parts, request)["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    ]


def test_system_edits_write_instructions_and_never_touch_system_messages() -> None:
    request = body()
    decoded = codec.decode(request)
    assert decoded.system == "Be brief."
    out = codec.encode(replace(decoded, system="Answer in French."), request)
    assert out == {**request, "instructions": "Answer in French."}
    assert out["input"] is request["input"]
    removed = codec.encode(replace(decoded, system=None), request)
    assert "instructions" not in removed and removed["input"] is request["input"]
    added = codec.encode(replace(codec.decode({"input": "x"}), system="New"), {"input": "x"})
    assert added == {"input": "x", "instructions": "New"}


def test_parameter_edits_land_in_their_responses_keys() -> None:
    request = body()
    decoded = codec.decode(request)
    params = replace(
        decoded.params,
        max_tokens=300,
        temperature=0.1,
        top_p=0.5,
        reasoning_effort="high",
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": {}, "strict": True}},
    )
    out = codec.encode(replace(decoded, params=params), request)
    assert out["max_output_tokens"] == 300
    assert (out["temperature"], out["top_p"]) == (0.1, 0.5)
    assert out["reasoning"] == {"effort": "high", "summary": "auto"}  # summary kept
    assert out["text"] == {
        "verbosity": "low",
        "format": {"type": "json_schema", "name": "n", "schema": {}, "strict": True},
    }
    cleared = codec.encode(replace(decoded, params=replace(decoded.params, reasoning_effort=None)), request)
    assert cleared["reasoning"] == {"summary": "auto"}
    only_effort = {"input": "x", "reasoning": {"effort": "low"}}
    none_left = codec.encode(
        replace(
            codec.decode(only_effort), params=replace(codec.decode(only_effort).params, reasoning_effort=None)
        ),
        only_effort,
    )
    assert "reasoning" not in none_left


def test_streamed_requests_get_nothing_injected_and_unstreaming_drops_stream_options() -> None:
    request = body(stream=True)
    decoded = codec.decode(request)
    assert codec.encode(decoded, request) is request
    own = body(stream=True, stream_options={"include_obfuscation": False})
    out = codec.encode(replace(codec.decode(own), stream=False), own)
    assert out["stream"] is False and "stream_options" not in out


def test_removing_the_last_tool_removes_what_needs_tools() -> None:
    request = body(
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    out = codec.encode(replace(codec.decode(request), tools=()), request)
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(out)


def test_new_objects_are_written_in_the_responses_form() -> None:
    request = body()
    decoded = codec.decode(request)
    tool = ToolDefinition(name="get_time", description="Time", parameters={"type": "object"}, strict=True)
    turn = Message(
        role="assistant",
        content=(ReasoningPart(text="Need the time."), TextPart(text="Let me check.")),
        tool_calls=(ToolCall(id="call_9", name="get_time", arguments={"tz": "CET"}),),
    )
    result = Message(role="tool", tool_call_id="call_9", content="12:00", name="get_time")
    neutral = Message(role="user", content=(ToolResultPart(tool_call_id="call_9", content={"ok": True}),))
    edited = replace(
        decoded,
        messages=(*decoded.messages, turn, result, neutral),
        tools=(tool,),
        tool_choice=ToolChoice(mode="tool", name="get_time"),
    )
    out = codec.encode(edited, request)
    assert out["input"][2:] == [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Need the time."}]},
        {
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}],
        },
        {"type": "function_call", "call_id": "call_9", "name": "get_time", "arguments": '{"tz":"CET"}'},
        {"type": "function_call_output", "call_id": "call_9", "output": "12:00", "name": "get_time"},
        {"type": "function_call_output", "call_id": "call_9", "output": '{"ok":true}'},
    ]
    assert out["tools"] == [
        {
            "type": "function",
            "name": "get_time",
            "description": "Time",
            "parameters": {"type": "object"},
            "strict": True,
        }
    ]
    assert out["tool_choice"] == {"type": "function", "name": "get_time"}
    again = codec.decode(out)
    assert again.messages[4].tool_calls[0].arguments == {"tz": "CET"}


def test_a_call_item_given_text_becomes_a_message_and_its_call() -> None:
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "f",
        "arguments": "{}",
        "x": 1,
    }
    request = {"input": [call]}
    decoded = codec.decode(request)
    out = codec.encode(
        replace(decoded, messages=(replace(decoded.messages[0], content="Calling f."),)), request
    )
    assert out["input"] == [{"role": "assistant", "content": "Calling f."}, call]
    assert out["input"][1] is call


@pytest.mark.parametrize(
    ("raw", "new_mode", "expected"),
    [
        ("auto", "required", "required"),
        ({"type": "function", "name": "f"}, "auto", "auto"),
        (
            {"type": "allowed_tools", "mode": "auto", "tools": []},
            "required",
            {"type": "allowed_tools", "mode": "required", "tools": []},
        ),
        ({"type": "web_search_preview"}, "none", "none"),
    ],
)
def test_tool_choice_mode_edits(raw: Any, new_mode: Any, expected: Any) -> None:
    request = {"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": raw}
    decoded = codec.decode(request)
    assert decoded.tool_choice is not None
    out = codec.encode(replace(decoded, tool_choice=replace(decoded.tool_choice, mode=new_mode)), request)
    assert out["tool_choice"] == expected


def test_a_builtin_tool_choice_renamed_becomes_a_function_choice() -> None:
    request = {"input": "x", "tool_choice": {"type": "web_search_preview"}}
    decoded = codec.decode(request)
    assert decoded.tool_choice == ToolChoice(mode="tool", name="web_search_preview")
    out = codec.encode(replace(decoded, tool_choice=ToolChoice(mode="tool", name="lookup")), request)
    assert out["tool_choice"] == {"type": "function", "name": "lookup"}


def test_unknown_tool_choice_strings_survive_a_rebuild() -> None:
    request = {"input": "x", "tool_choice": "any"}
    decoded = codec.decode(request)
    assert decoded.tool_choice is not None and decoded.tool_choice.mode == "auto"
    rebuilt_choice = replace(decoded.tool_choice)
    assert codec.encode(replace(decoded, tool_choice=rebuilt_choice), request) == request


def test_model_falls_back_to_an_azure_deployment_in_the_url() -> None:
    url = "https://r.openai.azure.com/openai/deployments/my-dep/responses?api-version=2025-04-01-preview"
    assert codec.decode({"input": "x"}, url=url).model == "my-dep"
    assert codec.decode({"input": "x", "model": "m"}, url=url).model == "m"


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"model": "gpt-4.1", "input": [{"role": "user", "content": "hi"}]}, "request"),
        ({"model": "gpt-4.1", "instructions": "x", "input": "hi"}, "request"),
        ({"previous_response_id": "resp_1", "input": "more"}, "request"),
        ({"object": "response", "id": "resp_1", "output": []}, "response"),
        ({"type": "response.output_text.delta", "delta": "x"}, "stream_chunk"),
        ({"type": "error", "message": "m", "sequence_number": 3}, "stream_chunk"),
        ({"error": {"message": "m"}}, "error"),
        ({"model": "m", "messages": []}, None),
        ({"model": "text-embedding-3-small", "input": "hi"}, None),
    ],
)
def test_sniff(payload: dict[str, Any], kind: str | None) -> None:
    assert codec.sniff(payload) == kind


# ----------------------------------------------------------------------------------------- replies


def test_think_tags_in_output_text_go_to_reasoning() -> None:
    reply = codec.decode_response(
        {
            "status": "completed",
            "output": [
                {"type": "message", "content": [{"type": "output_text", "text": "<think>hmm</think>Yes."}]}
            ],
        }
    )
    assert (reply.text, reply.reasoning_text, reply.finish_reason) == ("Yes.", "hmm", FinishReason.STOP)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("server_error", ErrorKind.SERVER),
        ("rate_limit_exceeded", ErrorKind.RATE_LIMIT),
        ("invalid_prompt", ErrorKind.INVALID_REQUEST),
        ("invalid_image_url", ErrorKind.INVALID_REQUEST),
        ("image_content_policy_violation", ErrorKind.CONTENT_FILTER),
        ("vector_store_timeout", ErrorKind.TIMEOUT),
    ],
)
def test_failed_responses_classify_their_error_code(code: str, kind: ErrorKind) -> None:
    reply = codec.decode_response({"status": "failed", "error": {"code": code, "message": "m"}, "output": []})
    assert reply.finish_reason is FinishReason.ERROR
    assert reply.error is not None and reply.error.kind is kind


def test_stream_without_indexes_keys_argument_deltas_to_the_latest_call() -> None:
    """llama.cpp-style events: no sequence_number, output_index or item_id anywhere."""
    reply = codec.decode_stream(
        [
            sse(
                {
                    "type": "response.output_item.added",
                    "item": {"type": "function_call", "call_id": "a", "name": "f"},
                },
                {"type": "response.function_call_arguments.delta", "delta": '{"x":'},
                {"type": "response.function_call_arguments.delta", "delta": " 1}"},
                {
                    "type": "response.output_item.added",
                    "item": {"type": "function_call", "call_id": "b", "name": "g"},
                },
                {"type": "response.function_call_arguments.delta", "delta": "{}"},
                {"type": "response.output_item.added", "item": {"type": "message", "role": "assistant"}},
                {"type": "response.output_text.delta", "delta": "Done."},
            )
        ]
    )
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("a", "f", {"x": 1}), ("b", "g", {})]
    assert reply.text == "Done."
    assert reply.finish_reason is FinishReason.ERROR  # no terminal event


def test_interleaved_calls_are_kept_apart_by_item_id() -> None:
    reply = codec.decode_stream(
        [
            sse(
                {
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": {"type": "function_call", "id": "fc_a", "call_id": "a", "name": "f"},
                },
                {
                    "type": "response.output_item.added",
                    "output_index": 1,
                    "item": {"type": "function_call", "id": "fc_b", "call_id": "b", "name": "g"},
                },
                {"type": "response.function_call_arguments.delta", "item_id": "fc_a", "delta": '{"p":'},
                {"type": "response.function_call_arguments.delta", "item_id": "fc_b", "delta": '{"q":'},
                {"type": "response.function_call_arguments.delta", "item_id": "fc_a", "delta": "1}"},
                {"type": "response.function_call_arguments.delta", "item_id": "fc_b", "delta": "2}"},
                {"type": "response.completed", "response": {"id": "r", "status": "completed"}},
            )
        ]
    )
    # The completed snapshot has no output items, so what the deltas built stands, with its status.
    assert [(c.id, c.arguments) for c in reply.tool_calls] == [("a", {"p": 1}), ("b", {"q": 2})]
    assert reply.finish_reason is FinishReason.TOOL_CALLS
    assert reply.finish_reason_raw == "completed"


def test_stream_usage_is_never_summed_and_null_usage_does_not_clobber() -> None:
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    reply = codec.decode_stream(
        [
            sse(
                {"type": "response.created", "response": {"id": "r", "status": "in_progress", "usage": None}},
                {
                    "type": "response.in_progress",
                    "response": {"id": "r", "status": "in_progress", "usage": usage},
                },
                {
                    "type": "response.in_progress",
                    "response": {"id": "r", "status": "in_progress", "usage": None},
                },
            )
        ]
    )
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (10, 5, 15)
    assert reply.finish_reason is FinishReason.ERROR


def test_stream_error_event_keeps_the_text_and_wins_over_nothing() -> None:
    reply = codec.decode_stream(
        [
            sse(
                {"type": "response.output_text.delta", "delta": "Half"},
                {
                    "type": "error",
                    "code": "rate_limit_exceeded",
                    "message": "Slow down",
                    "param": None,
                    "sequence_number": 2,
                },
            )
        ]
    )
    assert reply.text == "Half"
    assert reply.finish_reason is FinishReason.ERROR
    assert reply.error is not None and reply.error.kind is ErrorKind.RATE_LIMIT


def test_a_server_tool_is_not_a_client_tool_call() -> None:
    reply = codec.decode_response(
        {
            "status": "completed",
            "output": [
                {
                    "type": "mcp_call",
                    "id": "mcp_1",
                    "name": "ask",
                    "server_label": "deepwiki",
                    "arguments": "{}",
                },
                {"type": "code_interpreter_call", "id": "ci_1", "status": "completed"},
            ],
        }
    )
    assert reply.tool_calls == ()
    assert reply.finish_reason is FinishReason.STOP
    assert reply.choices[0].extra["server_tool_calls"] == [
        {"type": "mcp_call", "id": "mcp_1", "name": "ask", "server_label": "deepwiki"},
        {"type": "code_interpreter_call", "id": "ci_1", "status": "completed"},
    ]


def test_chat_style_usage_from_compatible_servers() -> None:
    reply = codec.decode_response(
        {"status": "completed", "output": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    )
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (3, 2, 5)
