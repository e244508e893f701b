"""What users of the openai-chat codec rely on: edits land where they belong and nothing else moves."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import nemoflow
from nemoflow import FinishReason, Message, TextPart, ToolCall
from nemoflow_codec_openai import OpenAIChatCodec
from nemoflow_codec_openai._chat_response import split_think

codec = OpenAIChatCodec()


def request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief.", "x_sys": 1},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Weather in Oslo?", "x_user": {"deep": [1, 2]}},
        ],
        "temperature": 0.5,
        "x_top": True,
    }
    body.update(overrides)
    return body


def test_unchanged_request_is_returned_as_the_same_object() -> None:
    body = request()
    assert codec.encode(codec.decode(body), body) is body


def test_stream_usage_is_injected_only_when_the_caller_sent_no_stream_options() -> None:
    body = request(stream=True)
    out = codec.encode(codec.decode(body), body)
    assert out == {**body, "stream_options": {"include_usage": True}}
    assert "stream_options" not in body  # the caller's dict is never mutated
    own = request(stream=True, stream_options={"include_usage": False})
    assert codec.encode(codec.decode(own), own) is own
    quiet = OpenAIChatCodec(inject_stream_usage=False)
    assert quiet.encode(quiet.decode(body), body) is body


def test_system_edit_rewrites_the_leading_run_and_keeps_its_keys() -> None:
    body = request()
    decoded = codec.decode(body)
    assert decoded.system == "Be brief.\n\nUse metric units."
    out = codec.encode(replace(decoded, system="Answer in French."), body)
    assert out["messages"] == [
        {"role": "system", "content": "Answer in French.", "x_sys": 1},
        body["messages"][2],
    ]
    assert out["messages"][1] is body["messages"][2]
    assert {k: v for k, v in out.items() if k != "messages"} == {
        k: v for k, v in body.items() if k != "messages"
    }


def test_system_edit_inserts_and_removes() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    decoded = codec.decode(body)
    assert decoded.system is None
    out = codec.encode(replace(decoded, system="Be kind."), body)
    assert out["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}]
    removed = codec.encode(replace(codec.decode(request()), system=None), request())
    assert [m["role"] for m in removed["messages"]] == ["user"]


def test_system_and_messages_edited_together() -> None:
    body = request()
    decoded = codec.decode(body)
    extra_turn = Message(role="user", content="And tomorrow?")
    edited = replace(decoded, messages=(*decoded.messages, extra_turn), system="New rules.")
    out = codec.encode(edited, body)
    assert [m["role"] for m in out["messages"]] == ["system", "user", "user"]
    assert out["messages"][0]["content"] == "New rules."
    assert out["messages"][2] == {"role": "user", "content": "And tomorrow?"}


@pytest.mark.parametrize(
    ("body_keys", "url", "written"),
    [
        ({"max_tokens": 100}, None, ["max_tokens"]),
        (
            {"max_completion_tokens": 100},
            "http://localhost:8000/v1/chat/completions",
            ["max_completion_tokens"],
        ),
        ({}, "https://api.openai.com/v1/chat/completions", ["max_completion_tokens"]),
        ({}, "http://127.0.0.1:8080/v1/chat/completions", ["max_tokens"]),
        ({"max_tokens": 1, "max_completion_tokens": 2}, None, ["max_completion_tokens", "max_tokens"]),
    ],
)
def test_max_tokens_goes_to_the_key_the_server_understands(
    body_keys: dict[str, int], url: str | None, written: list[str]
) -> None:
    body = request(**body_keys)
    decoded = codec.decode(body, url=url)
    out = codec.encode(replace(decoded, params=replace(decoded.params, max_tokens=64)), body, url=url)
    for key in written:
        assert out[key] == 64
    assert {k for k in ("max_tokens", "max_completion_tokens") if k in out} == set(written)


def test_dropping_every_tool_also_drops_tool_choice_and_parallel_flag() -> None:
    body = request(
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        parallel_tool_calls=False,
    )
    decoded = codec.decode(body)
    assert decoded.tool_choice is not None and decoded.tool_choice.mode == "tool"
    out = codec.encode(replace(decoded, tools=()), body)
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(out)


def test_tool_call_arguments_keep_their_bytes_unless_edited() -> None:
    spaced = '{ "city" :  "Oslo" }'
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": spaced, "x_fn": 1},
    }
    body = request(messages=[{"role": "assistant", "content": None, "tool_calls": [call]}])
    decoded = codec.decode(body)
    tool_call = decoded.messages[0].tool_calls[0]
    assert tool_call.arguments == {"city": "Oslo"} and tool_call.arguments_raw == spaced
    renamed = replace(tool_call, name="forecast")
    message = replace(decoded.messages[0], tool_calls=(renamed,))
    out = codec.encode(replace(decoded, messages=(message,)), body)
    assert out["messages"][0]["tool_calls"][0]["function"] == {
        "name": "forecast",
        "arguments": spaced,
        "x_fn": 1,
    }
    new_args = replace(tool_call, arguments={"city": "Bergen"})
    message = replace(decoded.messages[0], tool_calls=(new_args,))
    out = codec.encode(replace(decoded, messages=(message,)), body)
    assert out["messages"][0]["tool_calls"][0]["function"]["arguments"] == '{"city":"Bergen"}'


def test_editing_a_part_keeps_unknown_keys_of_its_wrapper() -> None:
    image = {
        "type": "image_url",
        "image_url": {"url": "https://x/cat.png", "detail": "low", "x_img": 3},
        "x_part": 4,
    }
    body = request(messages=[{"role": "user", "content": [image, {"type": "text", "text": "what is it?"}]}])
    decoded = codec.decode(body)
    content = decoded.messages[0].content
    assert isinstance(content, tuple)
    assert isinstance(content[0], nemoflow.ImagePart)
    sharper = replace(content[0], detail="high")
    message = replace(decoded.messages[0], content=(sharper, content[1]))
    out = codec.encode(replace(decoded, messages=(message,)), body)
    parts = out["messages"][0]["content"]
    assert parts[0] == {
        "type": "image_url",
        "image_url": {"url": "https://x/cat.png", "detail": "high", "x_img": 3},
        "x_part": 4,
    }
    assert parts[1] is body["messages"][0]["content"][1]


def test_turning_streaming_off_drops_stream_options() -> None:
    body = request(stream=True, stream_options={"include_usage": True})
    out = codec.encode(replace(codec.decode(body), stream=False), body)
    assert out["stream"] is False and "stream_options" not in out


def test_new_messages_are_written_in_wire_form() -> None:
    body = request()
    decoded = codec.decode(body)
    turn = Message(
        role="assistant",
        content=None,
        tool_calls=(ToolCall(id="call_9", name="lookup", arguments={"q": "x"}),),
    )
    result = Message(role="tool", content=(TextPart("42"),), tool_call_id="call_9")
    out = codec.encode(replace(decoded, messages=(*decoded.messages, turn, result)), body)
    assert out["messages"][-2] == {
        "role": "assistant",
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"x"}'}}
        ],
    }
    assert out["messages"][-1] == {
        "role": "tool",
        "content": [{"type": "text", "text": "42"}],
        "tool_call_id": "call_9",
    }


def test_extra_edits_are_written_and_removed() -> None:
    body = request()
    decoded = codec.decode(body)
    out = codec.encode(replace(decoded, extra={"user": "u-1"}), body)
    assert out["user"] == "u-1" and "x_top" not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>plan it</think>\n\nAnswer.", ("Answer.", "plan it")),
        ("  <think>still thinking", (None, "still thinking")),
        ("hidden reasoning</think>Visible.", ("Visible.", "hidden reasoning")),
        ("No reasoning here.", ("No reasoning here.", None)),
        ("Talks about <think> tags in prose", ("Talks about <think> tags in prose", None)),
        (None, (None, None)),
    ],
)
def test_think_spans_are_split(text: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_think(text) == expected


def _sse(*payloads: str) -> list[bytes]:
    return [f"data: {p}\n\n".encode() for p in payloads]


def test_stream_tool_calls_without_index_and_null_usage() -> None:
    chunks = _sse(
        '{"id":"c1","choices":[{"delta":{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"a","arguments":"{\\"x\\":"}}]}}],"usage":null}',
        '{"id":"c1","choices":[{"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]}}],"usage":null}',
        '{"id":"c1","choices":[{"delta":{"tool_calls":[{"id":"t2","type":"function","function":{"name":"b","arguments":"{}"}}]}}]}',
        '{"id":"c1","choices":[{"delta":{},"finish_reason":"tool_calls"}],"usage":null}',
        '{"id":"c1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}',
        '{"id":"c1","choices":null,"usage":null}',
    )
    result = codec.decode_stream(chunks)
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("t1", "a", {"x": 1}),
        ("t2", "b", {}),
    ]
    assert result.finish_reason is FinishReason.TOOL_CALLS
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (9, 4)


def test_stream_error_event_finishes_as_error_with_partial_text() -> None:
    chunks = _sse(
        '{"id":"c2","choices":[{"index":0,"delta":{"content":"Hel"}}]}',
        '{"error":{"message":"upstream overloaded","type":"server_error","code":"overloaded"}}',
    )
    result = codec.decode_stream(chunks)
    assert result.finish_reason is FinishReason.ERROR
    assert result.text == "Hel"
    assert result.error is not None and result.error.message == "upstream overloaded"
    assert result.usage.prompt_tokens is None


def test_usage_is_never_invented() -> None:
    result = codec.decode_response(
        {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}
    )
    assert result.usage == nemoflow.Usage()
    assert not result.usage.reported


def test_json_types_are_told_apart_in_nested_edits() -> None:
    part = {"type": "text", "text": "hi", "x_flag": True}
    body = request(messages=[{"role": "assistant", "content": [part], "tool_calls": None}])
    decoded = codec.decode(body)
    content = decoded.messages[0].content
    assert isinstance(content, tuple)
    flagged = replace(content[0], extra={"x_flag": 1})  # 1 == True in Python, not in JSON
    message = replace(decoded.messages[0], content=(flagged,))
    out = codec.encode(replace(decoded, messages=(message,)), body)
    sent = out["messages"][0]
    assert sent["content"][0]["x_flag"] == 1 and sent["content"][0]["x_flag"] is not True
    assert "tool_calls" in sent and sent["tool_calls"] is None


def test_a_no_op_edit_returns_the_original() -> None:
    body = request()
    decoded = codec.decode(body)
    rebuilt = replace(decoded, messages=tuple(replace(m) for m in decoded.messages))
    assert codec.encode(rebuilt, body) is body


def test_parts_chat_cannot_carry_are_a_clear_encode_error() -> None:
    body = request()
    decoded = codec.decode(body)
    result = nemoflow.ToolResultPart(tool_call_id="call_1", content="42")
    message = Message(role="user", content=(result,))
    with pytest.raises(nemoflow.EncodeError, match="tool_result") as caught:
        codec.encode(replace(decoded, messages=(*decoded.messages, message)), body)
    assert caught.value.path == "$.messages[3].content[0]"
