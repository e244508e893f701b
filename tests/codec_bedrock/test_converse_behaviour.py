"""What users of the bedrock-converse codec rely on, case by case: routes, edits landing in their native
place, the usage and finish-reason laws, stream assembly and error classification."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

import nemoflow
from nemoflow import (
    DecodeError,
    EncodeError,
    ErrorKind,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    OtherPart,
    ReasoningPart,
    RefusalPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResultPart,
)
from nemoflow_codec_bedrock import BedrockConverseCodec, ConverseStreamDecoder
from tests.codec_bedrock.frames import STRING, encode_events, encode_frame, event_frame, exception_frame

codec = BedrockConverseCodec()
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
URL = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
STREAM_URL = URL + "-stream"


def request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"text": "Weather in Oslo?"}], "x_user": {"deep": [1]}}],
        "system": [
            {"text": "Be brief.", "x_sys": 1},
            {"cachePoint": {"type": "default"}},
            {"text": "Use metric."},
        ],
        "x_top": True,
    }
    body.update(overrides)
    return body


WEATHER = {"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}

# ----------------------------------------------------------------------------------------- routes


@pytest.mark.parametrize(
    ("method", "path", "claimed"),
    [
        ("POST", "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse", True),
        ("POST", "/model/amazon.nova-pro-v1:0/converse-stream", True),
        ("POST", "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse", True),
        ("POST", "/proxy/bedrock/model/m/converse", True),
        ("GET", "/model/m/converse", False),
        ("POST", "/model//converse", False),
        ("POST", "/model/m/invoke", False),
        ("POST", "/model/m/invoke-with-response-stream", False),
        ("POST", "/v1/chat/completions", False),
        ("POST", "/converse", False),
    ],
)
def test_match_route(method: str, path: str, claimed: bool) -> None:
    assert codec.match_route(method, path) is claimed


def test_resolve_codec_finds_the_registered_codec() -> None:
    found = nemoflow.resolve_codec("POST", STREAM_URL + "?x=1")
    assert found is not None and found.name == "bedrock-converse" and found.provider == "aws.bedrock"


@pytest.mark.parametrize(
    ("url", "model", "stream"),
    [
        (URL, MODEL, False),
        (STREAM_URL + "?trace=1#frag", MODEL, True),
        ("/model/amazon.nova-lite-v1%3A0/converse-stream/", "amazon.nova-lite-v1:0", True),
        (
            "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0/converse",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
            False,
        ),
        ("https://example.com/v1/chat/completions", None, False),
        (None, None, False),
    ],
)
def test_model_and_stream_come_from_the_url(url: str | None, model: str | None, stream: bool) -> None:
    decoded = codec.decode(request(), url=url)
    assert (decoded.model, decoded.stream) == (model, stream)


def test_encode_never_writes_model_or_stream_into_the_body() -> None:
    body = request()
    decoded = codec.decode(body, url=STREAM_URL)
    out = codec.encode(replace(decoded, params=replace(decoded.params, max_tokens=10)), body, url=STREAM_URL)
    assert set(out) == {*body, "inferenceConfig"}
    assert codec.encode(decoded, body, url=STREAM_URL) is body  # no stream-usage injection on Bedrock


# ----------------------------------------------------------------------------------------- system


def test_system_is_the_text_blocks_joined() -> None:
    assert codec.decode(request(), url=URL).system == "Be brief.\n\nUse metric."
    assert codec.decode(request(system=[{"cachePoint": {"type": "default"}}]), url=URL).system is None


def test_system_edit_replaces_the_text_blocks_and_keeps_cache_points() -> None:
    body = request()
    out = codec.encode(replace(codec.decode(body, url=URL), system="Answer in French."), body, url=URL)
    assert out["system"] == [{"text": "Answer in French.", "x_sys": 1}, {"cachePoint": {"type": "default"}}]
    assert out["system"][1] is body["system"][1]
    assert out["messages"] is body["messages"]


def test_system_edit_inserts_and_removes() -> None:
    body = request(system=None)
    del body["system"]
    out = codec.encode(replace(codec.decode(body, url=URL), system="Be kind."), body, url=URL)
    assert out["system"] == [{"text": "Be kind."}]
    cached = request(system=[{"cachePoint": {"type": "default"}}])
    out = codec.encode(replace(codec.decode(cached, url=URL), system="Cached rules."), cached, url=URL)
    assert out["system"] == [{"text": "Cached rules."}, {"cachePoint": {"type": "default"}}]
    removed = codec.encode(replace(codec.decode(request(), url=URL), system=None), request(), url=URL)
    assert "system" not in removed  # only a cache point would be left
    guarded = request(system=[{"text": "a"}, {"guardContent": {"text": {"text": "g"}}}])
    kept = codec.encode(replace(codec.decode(guarded, url=URL), system=None), guarded, url=URL)
    assert kept["system"] == [{"guardContent": {"text": {"text": "g"}}}]


# ----------------------------------------------------------------------------------------- params


def test_max_tokens_goes_into_inference_config_creating_it() -> None:
    body = request()
    decoded = codec.decode(body, url=URL)
    assert decoded.params.max_tokens is None
    out = codec.encode(replace(decoded, params=replace(decoded.params, max_tokens=256)), body, url=URL)
    assert out["inferenceConfig"] == {"maxTokens": 256}
    existing = request(inferenceConfig={"maxTokens": 4096, "temperature": 0.2, "x_ic": [1]})
    decoded = codec.decode(existing, url=URL)
    out = codec.encode(replace(decoded, params=replace(decoded.params, max_tokens=100)), existing, url=URL)
    assert out["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.2, "x_ic": [1]}
    out = codec.encode(replace(decoded, params=replace(decoded.params, max_tokens=None)), existing, url=URL)
    assert out["inferenceConfig"] == {"temperature": 0.2, "x_ic": [1]}


def test_params_that_live_outside_inference_config() -> None:
    anthropic = request(additionalModelRequestFields={"top_k": 50, "anthropic_beta": ["x"]})
    decoded = codec.decode(anthropic, url=URL)
    assert decoded.params.top_k == 50
    out = codec.encode(replace(decoded, params=replace(decoded.params, top_k=5)), anthropic, url=URL)
    assert out["additionalModelRequestFields"] == {"top_k": 5, "anthropic_beta": ["x"]}
    nova = request(additionalModelRequestFields={"inferenceConfig": {"topK": 20}})
    decoded = codec.decode(nova, url=URL)
    out = codec.encode(replace(decoded, params=replace(decoded.params, top_k=3)), nova, url=URL)
    assert out["additionalModelRequestFields"] == {"inferenceConfig": {"topK": 3}}
    fresh = codec.decode(request(), url=URL)
    out = codec.encode(replace(fresh, params=replace(fresh.params, top_k=7)), request(), url=URL)
    assert out["additionalModelRequestFields"] == {"top_k": 7}
    fmt = {"type": "json_schema", "structure": {"jsonSchema": {"schema": "{}"}}}
    params = replace(fresh.params, reasoning_effort="high", response_format=fmt)
    out = codec.encode(replace(fresh, params=params), request(), url=URL)
    assert out["outputConfig"] == {"effort": "high", "textFormat": fmt}


# ----------------------------------------------------------------------------------------- tools


def test_removing_every_tool_removes_the_tool_config() -> None:
    body = request(toolConfig={"tools": [WEATHER], "toolChoice": {"any": {}}})
    decoded = codec.decode(body, url=URL)
    assert decoded.tool_choice == ToolChoice(mode="required")
    out = codec.encode(replace(decoded, tools=()), body, url=URL)
    assert "toolConfig" not in out
    with pytest.raises(EncodeError, match="needs at least one tool"):
        codec.encode(replace(decoded, tools=(), tool_choice=ToolChoice(mode="auto")), body, url=URL)


def test_new_tools_and_choices_are_written_in_converse_form() -> None:
    body = request()
    decoded = codec.decode(body, url=URL)
    tool = ToolDefinition(name="lookup", description="Find it", parameters={"type": "object"}, strict=True)
    edited = replace(
        decoded, tools=(tool, ToolDefinition(name="ping")), tool_choice=ToolChoice(mode="required")
    )
    out = codec.encode(edited, body, url=URL)
    assert out["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "lookup",
                    "description": "Find it",
                    "inputSchema": {"json": {"type": "object"}},
                    "strict": True,
                }
            },
            {"toolSpec": {"name": "ping", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        ],
        "toolChoice": {"any": {}},
    }
    named = codec.encode(replace(edited, tool_choice=ToolChoice(mode="tool", name="ping")), body, url=URL)
    assert named["toolConfig"]["toolChoice"] == {"tool": {"name": "ping"}}
    with pytest.raises(EncodeError, match="no tool choice 'none'"):
        codec.encode(replace(edited, tool_choice=ToolChoice(mode="none")), body, url=URL)
    cache_tool = ToolDefinition(name="", type="cachePoint")
    out = codec.encode(replace(decoded, tools=(tool, cache_tool)), body, url=URL)
    assert out["toolConfig"]["tools"][1] == {"cachePoint": {"type": "default"}}


def test_tool_list_cache_points_stay_in_place_when_a_tool_changes() -> None:
    body = request(toolConfig={"tools": [WEATHER, {"cachePoint": {"type": "default"}}]})
    decoded = codec.decode(body, url=URL)
    assert [tool.type for tool in decoded.tools] == ["function", "cachePoint"]
    renamed = replace(decoded.tools[0], description="Weather now")
    out = codec.encode(replace(decoded, tools=(renamed, decoded.tools[1])), body, url=URL)
    assert out["toolConfig"]["tools"][1] is body["toolConfig"]["tools"][1]
    assert out["toolConfig"]["tools"][0]["toolSpec"]["description"] == "Weather now"


# ----------------------------------------------------------------------------------------- messages


def test_tool_calls_and_parts_go_back_to_their_slots() -> None:
    assistant = {
        "role": "assistant",
        "content": [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Oslo"}}},
        ],
    }
    body = request(messages=[request()["messages"][0], assistant], toolConfig={"tools": [WEATHER]})
    decoded = codec.decode(body, url=URL)
    message = decoded.messages[1]
    assert isinstance(message.content, tuple)
    assert message.tool_calls == (ToolCall(id="tooluse_1", name="weather", arguments={"city": "Oslo"}),)
    call = ToolCall(id="tooluse_2", name="weather", arguments={"city": "Bergen"})
    edited = replace(
        message,
        content=(*message.content, TextPart(text="And Bergen.")),
        tool_calls=(*message.tool_calls, call),
    )
    out = codec.encode(replace(decoded, messages=(decoded.messages[0], edited)), body, url=URL)
    blocks = out["messages"][1]["content"]
    assert blocks == [
        {"text": "Checking."},
        {"text": "And Bergen."},
        assistant["content"][1],
        {"toolUse": {"toolUseId": "tooluse_2", "name": "weather", "input": {"city": "Bergen"}}},
    ]
    assert blocks[0] is assistant["content"][0] and blocks[2] is assistant["content"][1]


def test_new_parts_are_written_in_converse_form() -> None:
    body = request()
    decoded = codec.decode(body, url=URL)
    parts = (
        TextPart(text="Look:"),
        ImagePart(url="data:image/webp;base64,UklGRg=="),
        ImagePart(url="s3://bucket/cat.png", media_type="image/png"),
        FilePart(data="JVBERi0=", media_type="application/pdf", filename="report"),
        FilePart(url="s3://bucket/clip.mov", media_type="video/quicktime"),
        ToolResultPart(tool_call_id="tooluse_1", content="done", is_error=False),
        ToolResultPart(tool_call_id="tooluse_2", content={"rows": 3}, is_error=True),
        ReasoningPart(text="hmm", signature="sig"),
        ReasoningPart(signature="cmVk", redacted=True),
        OtherPart(type="cachePoint"),
    )
    out = codec.encode(replace(decoded, messages=(Message(role="user", content=parts),)), body, url=URL)
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "Look:"},
                {"image": {"format": "webp", "source": {"bytes": "UklGRg=="}}},
                {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://bucket/cat.png"}}}},
                {"document": {"format": "pdf", "name": "report", "source": {"bytes": "JVBERi0="}}},
                {"video": {"format": "mov", "source": {"s3Location": {"uri": "s3://bucket/clip.mov"}}}},
                {
                    "toolResult": {
                        "toolUseId": "tooluse_1",
                        "content": [{"text": "done"}],
                        "status": "success",
                    }
                },
                {
                    "toolResult": {
                        "toolUseId": "tooluse_2",
                        "content": [{"json": {"rows": 3}}],
                        "status": "error",
                    }
                },
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
                {"reasoningContent": {"redactedContent": "cmVk"}},
                {"cachePoint": {"type": "default"}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (Message(role="user", content=(RefusalPart(refusal="no"),)), "no refusal"),
        (Message(role="user", content="hi", name="ada"), "no name"),
        (Message(role="assistant", tool_calls=(ToolCall(id=None, name="f"),)), "needs a toolUseId"),
        (
            Message(role="assistant", tool_calls=(ToolCall(id="t", name="f", arguments_raw="{bad"),)),
            "as JSON",
        ),
        (Message(role="user", content=(ImagePart(url="https://example.com/a.png"),)), "image format"),
        (
            Message(
                role="user", content=(ImagePart(url="https://example.com/a.png", media_type="image/png"),)
            ),
            "S3",
        ),
        (Message(role="user", content=(ToolResultPart(content="x"),)), "toolUseId"),
    ],
)
def test_what_converse_cannot_express_is_refused_with_a_path(message: Message, match: str) -> None:
    body = request()
    decoded = codec.decode(body, url=URL)
    with pytest.raises(EncodeError, match=match) as info:
        codec.encode(replace(decoded, messages=(message,)), body, url=URL)
    assert info.value.path.startswith("$.messages[0]")


# ----------------------------------------------------------------------------------------- responses


def response(
    content: list[Any], stop: str, usage: dict[str, Any] | None = None, **more: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": usage or {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
        "metrics": {"latencyMs": 9},
    }
    body.update(more)
    return body


def test_usage_counts_cached_input_and_never_invents() -> None:
    cached = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 1515, "cacheReadInputTokens": 1000}
    usage = codec.decode_response(
        response([{"text": "x"}], "end_turn", {**cached, "cacheWriteInputTokens": 500})
    ).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1510, 5, 1515)
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (1000, 500, None)
    partial = codec.decode_response(response([], "end_turn", {"inputTokens": 5})).usage
    assert (partial.prompt_tokens, partial.completion_tokens, partial.total_tokens) == (5, None, None)
    derived = codec.decode_response(response([], "end_turn", {"inputTokens": 5, "outputTokens": 2})).usage
    assert derived.total_tokens == 7
    zero = codec.decode_response(
        response([], "end_turn", {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0})
    )
    assert zero.usage.prompt_tokens == 0 and zero.usage.cache_read_tokens is None
    assert not codec.decode_response({"output": {"message": {"content": []}}}).usage.reported


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("model_context_window_exceeded", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("guardrail_intervened", FinishReason.CONTENT_FILTER),
        ("content_filtered", FinishReason.CONTENT_FILTER),
        ("malformed_model_output", FinishReason.ERROR),
        ("malformed_tool_use", FinishReason.ERROR),
        ("something_new", FinishReason.UNKNOWN),
    ],
)
def test_finish_reasons(stop: str, reason: FinishReason) -> None:
    decoded = codec.decode_response(response([{"text": "x"}], stop))
    assert (decoded.finish_reason, decoded.finish_reason_raw) == (reason, stop)


def test_client_tool_calls_make_tool_calls_and_server_tools_do_not() -> None:
    call = {"toolUse": {"toolUseId": "tooluse_9", "name": "weather", "input": {}}}
    assert codec.decode_response(response([call], "end_turn")).finish_reason is FinishReason.TOOL_CALLS
    server = {
        "toolUse": {
            "toolUseId": "tooluse_s",
            "name": "nova_grounding",
            "input": {},
            "type": "server_tool_use",
        }
    }
    result = {"toolResult": {"toolUseId": "tooluse_s", "content": [{"text": "web results"}]}}
    decoded = codec.decode_response(response([server, result, {"text": "Grounded answer."}], "end_turn"))
    assert decoded.tool_calls == () and decoded.finish_reason is FinishReason.STOP
    assert decoded.text == "Grounded answer."


def test_response_facts_from_the_url_and_unknown_keys() -> None:
    body = response([{"text": "hi"}], "end_turn", x_top=1)
    body["output"]["x_out"] = 2
    body["output"]["message"]["x_msg"] = 3
    decoded = codec.decode_response(body, url=URL)
    assert (decoded.id, decoded.model) == (None, MODEL)
    assert decoded.extra == {"metrics": {"latencyMs": 9}, "x_top": 1}
    assert decoded.choices[0].extra == {"x_out": 2, "message": {"x_msg": 3}}
    assert codec.decode_response(body).model is None


# ----------------------------------------------------------------------------------------- streams


EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
    ("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a": '}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("messageStop", {"stopReason": "tool_use"}),
    (
        "metadata",
        {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}, "metrics": {"latencyMs": 4}},
    ),
]


def test_per_event_decoder_takes_named_wrapped_or_bare_events() -> None:
    named, wrapped, bare = (codec.stream_decoder(url=STREAM_URL) for _ in range(3))
    for name, payload in EVENTS:
        named.feed(json.dumps({**payload, "p": "abc"}), name)
        wrapped.feed(json.dumps({name: payload}).encode())
        bare.feed(json.dumps(payload))
    result = named.finish()
    assert result == wrapped.finish() == bare.finish()
    assert result.model == MODEL and result.tool_calls[0].arguments == {"a": 1}
    assert "p" not in result.extra and result.extra == {"metrics": {"latencyMs": 4}}
    assert result == codec.decode_stream([encode_events(EVENTS)], url=STREAM_URL)


def test_last_usage_wins_and_is_never_summed() -> None:
    decoder = ConverseStreamDecoder()
    decoder.feed(json.dumps({"usage": {"inputTokens": 5, "outputTokens": 1}}), "metadata")
    decoder.feed(json.dumps({"usage": {"inputTokens": 5, "outputTokens": 9, "totalTokens": 14}}), "metadata")
    usage = decoder.finish().usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 9, 14)


def test_stream_edge_cases() -> None:
    decoder = ConverseStreamDecoder()
    decoder.feed(
        json.dumps({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}}), "contentBlockDelta"
    )
    decoder.feed(
        json.dumps({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": "g"}}}),
        "contentBlockStart",
    )
    decoder.feed(
        json.dumps({"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"x": tru'}}}),
        "contentBlockDelta",
    )
    decoder.feed(b"null", "metadata")
    decoder.feed(b"{}", "initial-response")
    result = decoder.finish()
    assert [call.name for call in result.tool_calls] == ["g"]  # a fragment without a started tool is skipped
    assert result.tool_calls[0].arguments is None and result.tool_calls[0].arguments_raw == '{"x": tru'
    assert result.finish_reason is FinishReason.TOOL_CALLS and result.finish_reason_raw is None
    assert ConverseStreamDecoder().finish().choices == ()


def test_exceptions_and_error_frames_end_the_reply_with_an_error() -> None:
    body = encode_events(EVENTS[:2]) + exception_frame(
        "validationException", {"message": "Input is too long"}
    )
    result = codec.decode_stream([body], url=STREAM_URL)
    assert result.finish_reason is FinishReason.ERROR and result.text == "Hi"
    assert result.error is not None and result.error.kind is ErrorKind.CONTEXT_LENGTH_EXCEEDED
    error_frame = encode_frame(
        [
            (":message-type", STRING, "error"),
            (":error-code", STRING, "InternalFailure"),
            (":error-message", STRING, "boom"),
        ],
        b"",
    )
    result = codec.decode_stream([encode_events(EVENTS[:2]), error_frame], url=STREAM_URL)
    assert result.error is not None and (result.error.code, result.error.message) == (
        "InternalFailure",
        "boom",
    )
    assert result.finish_reason is FinishReason.ERROR


def test_a_corrupt_frame_raises_but_the_rest_of_the_stream_still_counts() -> None:
    good = encode_events(EVENTS)
    frames = [event_frame(name, payload, i) for i, (name, payload) in enumerate(EVENTS)]
    corrupt = bytearray(frames[1])
    corrupt[-5] ^= 0xFF  # the message CRC no longer matches: this frame alone is lost
    decoder = codec.byte_stream_decoder(url=STREAM_URL)
    with pytest.raises(DecodeError, match="message CRC"):
        decoder.feed(frames[0] + bytes(corrupt) + b"".join(frames[2:]))
    result = decoder.finish()
    assert result.text is None and result.tool_calls[0].arguments == {"a": 1} and result.error is None
    with pytest.raises(DecodeError):
        codec.decode_stream([frames[0], bytes(corrupt), b"".join(frames[2:])], url=STREAM_URL)
    # A broken prelude loses the frame boundaries: the reply ends with an error, and what came before stays.
    broken = codec.byte_stream_decoder(url=STREAM_URL)
    broken.feed(b"".join(frames[:2]))
    with pytest.raises(DecodeError, match="prelude"):
        broken.feed(b"\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00" + good)
    broken.feed(good)  # ignored from now on, without raising again
    ended = broken.finish()
    assert ended.text == "Hi" and ended.finish_reason is FinishReason.ERROR
    assert ended.error is not None and ended.error.type == "EventStreamError"


def test_a_truncated_body_keeps_what_arrived() -> None:
    body = encode_events(EVENTS)
    result = codec.decode_stream([body[:-10]], url=STREAM_URL)
    assert result.error is None and result.usage.prompt_tokens is None  # the metadata frame never completed
    assert result.finish_reason is FinishReason.TOOL_CALLS


# ----------------------------------------------------------------------------------------- sniff


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (request(), "request"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "request"),
        ({"inferenceConfig": {"maxTokens": 5}}, "request"),
        (response([{"text": "x"}], "end_turn"), "response"),
        ({"contentBlockIndex": 0, "delta": {"text": "x"}, "p": "ab"}, "stream_chunk"),
        ({"role": "assistant", "p": "abc"}, "stream_chunk"),
        ({"metadata": {"usage": {}, "metrics": {}}}, "stream_chunk"),
        ({"message": "Too many requests"}, "error"),
        ({"__type": "ValidationException", "message": "bad"}, "error"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, None),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, None),
        ({}, None),
    ],
)
def test_sniff(payload: dict[str, Any], kind: str | None) -> None:
    assert codec.sniff(payload) == kind


# ----------------------------------------------------------------------------------------- errors


def _error(status: int, error_type: str | None, message: str, **headers: str) -> nemoflow.AnnotatedLlmError:
    all_headers = dict(headers)
    if error_type:
        all_headers["X-Amzn-ErrorType"] = f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    return codec.decode_error(status, all_headers, json.dumps({"message": message}).encode())


@pytest.mark.parametrize(
    ("status", "error_type", "message", "kind"),
    [
        (
            429,
            "ThrottlingException",
            "Too many tokens, please wait before trying again.",
            ErrorKind.RATE_LIMIT,
        ),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
        ),
        (
            400,
            "ValidationException",
            "Input exceeds the model's maximum context length",
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
        ),
        (
            400,
            "ValidationException",
            "The maximum tokens you requested exceeds the model limit of 4096.",
            ErrorKind.INVALID_REQUEST,
        ),
        (400, "ValidationException", "Malformed input request, please reformat.", ErrorKind.INVALID_REQUEST),
        (403, "AccessDeniedException", "You don't have access to the model.", ErrorKind.PERMISSION),
        (
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            ErrorKind.AUTHENTICATION,
        ),
        (404, "ResourceNotFoundException", "Model not found.", ErrorKind.NOT_FOUND),
        (408, "ModelTimeoutException", "Model has timed out.", ErrorKind.TIMEOUT),
        (503, "ServiceUnavailableException", "Unavailable.", ErrorKind.OVERLOADED),
        (429, "ModelNotReadyException", "Not ready.", ErrorKind.OVERLOADED),
        (500, "InternalServerException", "Oops.", ErrorKind.SERVER),
        (424, "ModelErrorException", "The model failed.", ErrorKind.SERVER),
        (
            400,
            "ServiceQuotaExceededException",
            "Your request exceeds the service quota.",
            ErrorKind.QUOTA_EXCEEDED,
        ),
        (502, None, "Bad gateway", ErrorKind.SERVER),
        (400, None, "prompt is too long", ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    ],
)
def test_error_classification(status: int, error_type: str | None, message: str, kind: ErrorKind) -> None:
    error = _error(status, error_type, message)
    assert (error.kind, error.status, error.message, error.type) == (kind, status, message, error_type)


def test_error_details() -> None:
    typed = codec.decode_error(
        400, {}, {"__type": "com.amazon.coral.validate#ValidationException", "message": "m"}
    )
    assert (typed.type, typed.kind) == ("ValidationException", ErrorKind.INVALID_REQUEST)
    assert _error(429, "ThrottlingException", "slow down", **{"Retry-After": "3"}).retry_after == 3.0
    html = codec.decode_error(502, {}, b"<html><body>Bad Gateway</body></html>")
    assert html.message is None and html.body == "<html><body>Bad Gateway</body></html>"
    plain = codec.decode_error(503, {}, "Service Unavailable")
    assert (plain.message, plain.kind) == ("Service Unavailable", ErrorKind.OVERLOADED)
    huge = codec.decode_error(400, {}, json.dumps({"message": "é" * 5000}).encode())
    assert huge.body is not None and len(huge.body.encode()) <= 4096
    extra = codec.decode_error(400, {}, {"message": "m", "reason": "x"})
    assert extra.extra == {"reason": "x"}
