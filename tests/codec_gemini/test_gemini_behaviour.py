"""What users of the gemini-generate-content codec rely on: routes, edits in Gemini's native form, replies."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

import nemoflow
from nemoflow import (
    AudioPart,
    ErrorKind,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResultPart,
)
from nemoflow_codec_gemini import GeminiGenerateContentCodec

codec = GeminiGenerateContentCodec()
AIS = "https://generativelanguage.googleapis.com"
URL = f"{AIS}/v1beta/models/gemini-2.5-flash:generateContent"
STREAM_URL = f"{AIS}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


def request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Oslo?"}], "x_user": {"deep": [1, 2]}},
        ],
        "x_top": True,
    }
    body.update(overrides)
    return body


def edited(body: dict[str, Any], **changes: Any) -> Any:
    decoded = codec.decode(body, url=URL)
    params = changes.pop("params", None)
    if params is not None:
        changes["params"] = replace(decoded.params, **params)
    return codec.encode(replace(decoded, **changes), body, url=URL)


# ----------------------------------------------------------------------------------------- routes


@pytest.mark.parametrize(
    ("path", "model", "stream"),
    [
        ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash", False),
        ("/v1/models/gemini-2.0-flash:streamGenerateContent", "gemini-2.0-flash", True),
        ("/v1alpha/models/gemini-2.5-pro:generateContent", "gemini-2.5-pro", False),
        ("/v1beta/tunedModels/my-tuned-7x:generateContent", "tunedModels/my-tuned-7x", False),
        (
            "/v1/projects/p-1/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent",
            "gemini-2.5-pro",
            True,
        ),
        (
            "/v1beta1/projects/p/locations/global/publishers/google/models/gemini-3-pro-preview:generateContent",
            "gemini-3-pro-preview",
            False,
        ),
        (
            "/v1/publishers/google/models/gemini-2.5-flash-lite:generateContent",
            "gemini-2.5-flash-lite",
            False,
        ),
        (
            "/v1/projects/p/locations/europe-west4/endpoints/1234567890:generateContent",
            "endpoints/1234567890",
            False,
        ),
        (
            "/v1/acct/gw/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent",
            "gemini-2.5-flash",
            False,
        ),
    ],
)
def test_routes_and_the_facts_they_carry(path: str, model: str, stream: bool) -> None:
    assert codec.match_route("POST", path)
    decoded = codec.decode({"contents": []}, url=f"https://host.example{path}?alt=sse&key=secret")
    assert (decoded.model, decoded.stream) == (model, stream)
    resolved = nemoflow.resolve_codec("POST", f"https://host.example{path}?alt=sse")
    assert resolved is not None and resolved.name == codec.name


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("POST", "/v1beta/models/gemini-2.5-flash:countTokens"),
        ("POST", "/v1beta/models/text-embedding-004:embedContent"),
        ("POST", "/v1beta/models/gemini-2.5-flash"),
        ("POST", "/v1beta/openai/chat/completions"),
        ("POST", "/v1/projects/p/locations/l/publishers/anthropic/models/claude:rawPredict"),
        ("POST", "/v1beta/models:generateContent"),
    ],
)
def test_other_routes_are_not_claimed(method: str, path: str) -> None:
    assert not codec.match_route(method, path)


def test_without_a_url_there_is_no_model_and_no_stream() -> None:
    decoded = codec.decode(request())
    assert (decoded.model, decoded.stream) == (None, False)


def test_model_and_stream_edits_are_refused_and_url_for_routes_them() -> None:
    body = request()
    decoded = codec.decode(body, url=URL)
    with pytest.raises(nemoflow.EncodeError):
        codec.encode(replace(decoded, model="gemini-2.5-pro", stream=True), body, url=URL)
    # Without a URL to compare with, the codec cannot tell an edit; the body never carries either field.
    assert codec.encode(replace(decoded, model="gemini-2.5-pro", stream=True), body) is body
    assert codec.url_for(URL + "?key=k", model="gemini-2.5-pro", stream=True) == (
        f"{AIS}/v1beta/models/gemini-2.5-pro:streamGenerateContent?key=k&alt=sse"
    )
    assert codec.url_for(STREAM_URL, stream=False) == URL
    assert codec.url_for(URL, model="tunedModels/t-1") == f"{AIS}/v1beta/tunedModels/t-1:generateContent"
    assert codec.url_for(f"{AIS}/v1beta/models", model="x") == f"{AIS}/v1beta/models"


def test_sniff() -> None:
    assert codec.sniff(request()) == "request"
    assert codec.sniff({"candidates": [], "usageMetadata": {}}) == "response"
    assert codec.sniff({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}) == "error"
    assert codec.sniff({"messages": []}) is None


# ----------------------------------------------------------------------------------------- system


def test_system_edit_rewrites_the_text_and_keeps_the_rest_of_system_instruction() -> None:
    instruction: dict[str, Any] = {
        "role": "user",
        "parts": [
            {"text": "Be brief.", "x_p": 1},
            {"inlineData": {"mimeType": "image/png", "data": "AA=="}},
            {"text": "Metric."},
        ],
        "x_si": 2,
    }
    body = request(systemInstruction=instruction)
    assert codec.decode(body).system == "Be brief.\n\nMetric."
    out = edited(body, system="Answer in French.")
    assert out["systemInstruction"] == {
        "role": "user",
        "parts": [{"text": "Answer in French.", "x_p": 1}, instruction["parts"][1]],
        "x_si": 2,
    }
    assert out["contents"] is body["contents"]
    assert {k: v for k, v in out.items() if k != "systemInstruction"} == {
        k: v for k, v in body.items() if k != "systemInstruction"
    }


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (request(), "systemInstruction"),
        (request(generation_config={"temperature": 1}), "system_instruction"),
    ],
)
def test_system_is_created_without_a_role_in_the_body_spelling(body: dict[str, Any], key: str) -> None:
    out = edited(body, system="Be kind.")
    assert out[key] == {"parts": [{"text": "Be kind."}]}
    assert codec.decode(out).system == "Be kind."


def test_system_removed() -> None:
    body = request(system_instruction={"parts": [{"text": "x"}]})
    out = edited(body, system=None)
    assert "system_instruction" not in out and codec.decode(out).system is None


# ----------------------------------------------------------------------------------------- params


def test_max_tokens_lands_inside_generation_config_and_creates_it() -> None:
    out = edited(request(), params={"max_tokens": 64})
    assert out["generationConfig"] == {"maxOutputTokens": 64}
    body = request(generation_config={"max_output_tokens": 10, "temperature": 0.1, "x_g": 1})
    out = edited(body, params={"max_tokens": 64, "top_p": 0.5})
    assert out["generation_config"] == {"max_output_tokens": 64, "temperature": 0.1, "x_g": 1, "top_p": 0.5}
    assert "maxOutputTokens" not in out and "generationConfig" not in out and "max_tokens" not in out


def test_params_decode_from_either_spelling_and_unknown_config_keys_go_to_nested_extra() -> None:
    body = request(
        generationConfig={
            "candidateCount": 2,
            "stop_sequences": ["a"],
            "topK": 40.0,
            "responseModalities": ["TEXT"],
        }
    )
    decoded = codec.decode(body)
    assert (decoded.params.n, decoded.params.stop, decoded.params.top_k) == (2, ("a",), 40)
    assert decoded.extra["generationConfig"] == {"responseModalities": ["TEXT"]}
    assert codec.decode(request(generationConfig={"topK": 2.5})).params.top_k is None  # Vertex float top-k


def test_nested_config_extra_edit_writes_into_the_config() -> None:
    body = request(generationConfig={"temperature": 0.3, "responseModalities": ["TEXT"]})
    decoded = codec.decode(body)
    extra = {**decoded.extra, "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "seed2": 1}}
    out = codec.encode(replace(decoded, extra=extra), body)
    assert out["generationConfig"] == {
        "temperature": 0.3,
        "responseModalities": ["TEXT", "IMAGE"],
        "seed2": 1,
    }


def test_reasoning_effort_writes_thinking_level_in_the_form_used_and_drops_the_budget() -> None:
    body = request(
        generationConfig={
            "thinkingConfig": {"thinking_level": "LOW", "thinking_budget": 512, "includeThoughts": True}
        }
    )
    assert codec.decode(body).params.reasoning_effort == "low"
    out = edited(body, params={"reasoning_effort": "high"})
    assert out["generationConfig"]["thinkingConfig"] == {"thinking_level": "HIGH", "includeThoughts": True}
    lower = request(generationConfig={"thinkingConfig": {"thinkingLevel": "low"}})
    assert edited(lower, params={"reasoning_effort": "high"})["generationConfig"] == {
        "thinkingConfig": {"thinkingLevel": "high"}
    }
    assert edited(lower, params={"reasoning_effort": None})["generationConfig"] == {}
    assert edited(request(), params={"reasoning_effort": "minimal"})["generationConfig"] == {
        "thinkingConfig": {"thinkingLevel": "MINIMAL"}
    }
    budget_only = request(generationConfig={"thinkingConfig": {"thinkingBudget": 0}})
    assert codec.decode(budget_only).params.reasoning_effort is None


def test_response_format_is_gemini_keys_as_sent_and_openai_shapes_are_translated() -> None:
    body = request(
        generationConfig={
            "responseMimeType": "application/json",
            "response_schema": {"type": "OBJECT"},
            "temperature": 0,
        }
    )
    assert codec.decode(body).params.response_format == {
        "responseMimeType": "application/json",
        "response_schema": {"type": "OBJECT"},
    }
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out = edited(
        body,
        params={"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}},
    )
    assert out["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
        "temperature": 0,
    }
    out = edited(body, params={"response_format": None})
    assert out["generationConfig"] == {"temperature": 0}
    out = edited(request(), params={"response_format": {"type": "json_object"}})
    assert out["generationConfig"] == {"responseMimeType": "application/json"}


def test_unchanged_edits_return_the_original() -> None:
    body = request(generationConfig={"temperature": 1, "maxOutputTokens": 5}, tools=[{"googleSearch": {}}])
    decoded = codec.decode(body)
    same = replace(decoded, params=replace(decoded.params), tools=tuple(replace(t) for t in decoded.tools))
    assert codec.encode(same, body) is body


# ----------------------------------------------------------------------------------------- contents


def test_new_turns_are_written_in_gemini_form() -> None:
    body = request()
    decoded = codec.decode(body)
    turn = Message(
        role="assistant",
        content=(ReasoningPart(text="think", signature="c2ln"), TextPart("Calling.")),
        tool_calls=(
            ToolCall(id="c9", name="lookup", arguments={"q": "x"}, extra={"thoughtSignature": "AAAA"}),
        ),
    )
    result = Message(
        role="user",
        content=(
            ToolResultPart(tool_call_id="c9", name="lookup", content={"hits": 3}),
            ToolResultPart(name="lookup", content="plain text", is_error=True),
        ),
    )
    media = Message(
        role="user",
        content=(
            ImagePart(url="data:image/png;base64,iVBO"),
            ImagePart(url="https://img.example/cat.jpg", media_type="image/jpeg"),
            AudioPart(data="UklG", format="wav"),
            FilePart(url="gs://b/doc.pdf", media_type="application/pdf"),
            FilePart(data="JVBE", media_type="application/pdf"),
        ),
    )
    out = codec.encode(replace(decoded, messages=(*decoded.messages, turn, result, media)), body)
    assert out["contents"][0] is body["contents"][0]
    assert out["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"text": "think", "thought": True, "thoughtSignature": "c2ln"},
                {"text": "Calling."},
                {
                    "functionCall": {"id": "c9", "name": "lookup", "args": {"q": "x"}},
                    "thoughtSignature": "AAAA",
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "c9", "name": "lookup", "response": {"hits": 3}}},
                {"functionResponse": {"name": "lookup", "response": {"error": "plain text"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://img.example/cat.jpg"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}},
                {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/doc.pdf"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
            ],
        },
    ]
    again = codec.decode(out)
    assert again.messages[1].tool_calls[0].extra == {"thoughtSignature": "AAAA"}
    assert again.messages[1].content == turn.content


def test_editing_a_call_keeps_its_signature_position_and_nested_keys() -> None:
    model_turn = {
        "role": "model",
        "parts": [
            {"text": "A", "thoughtSignature": "c2lnQQ=="},
            {
                "functionCall": {"name": "f", "args": {"x": 1}, "willContinue": False},
                "thoughtSignature": "c2lnRg==",
            },
            {"text": "B"},
        ],
    }
    body = request(contents=[model_turn])
    decoded = codec.decode(body)
    message = decoded.messages[0]
    assert [type(p).__name__ for p in message.content or ()] == ["TextPart", "TextPart"]
    call = replace(message.tool_calls[0], arguments={"x": 2})
    out = codec.encode(replace(decoded, messages=(replace(message, tool_calls=(call,)),)), body)
    parts = out["contents"][0]["parts"]
    assert parts[0] is model_turn["parts"][0] and parts[2] is model_turn["parts"][2]
    assert parts[1] == {
        "functionCall": {"name": "f", "args": {"x": 2}, "willContinue": False},
        "thoughtSignature": "c2lnRg==",
    }


def test_a_content_string_replaces_the_text_parts_and_keeps_calls_in_place() -> None:
    body = request(
        contents=[{"role": "model", "parts": [{"text": "a"}, {"functionCall": {"name": "f"}}, {"text": "b"}]}]
    )
    decoded = codec.decode(body)
    out = codec.encode(replace(decoded, messages=(replace(decoded.messages[0], content="new"),)), body)
    assert out["contents"][0] == {
        "role": "model",
        "parts": [{"text": "new"}, {"functionCall": {"name": "f"}}],
    }


def test_role_model_reads_as_assistant_and_a_missing_role_as_user() -> None:
    body = request(contents=[{"parts": [{"text": "q"}]}, {"role": "model", "parts": [{"text": "a"}]}])
    decoded = codec.decode(body)
    assert [m.role for m in decoded.messages] == ["user", "assistant"]
    out = codec.encode(
        replace(decoded, messages=(*decoded.messages, Message(role="assistant", content="more"))), body
    )
    assert out["contents"][2] == {"role": "model", "parts": [{"text": "more"}]}
    assert "role" not in out["contents"][0]


# ----------------------------------------------------------------------------------------- tools


WEATHER = {"name": "weather", "parameters": {"type": "OBJECT"}}


def test_new_function_joins_the_existing_declarations_and_new_builtins_get_their_own_tool() -> None:
    body = request(tools=[{"functionDeclarations": [WEATHER]}, {"googleSearch": {}}])
    decoded = codec.decode(body)
    new = (
        ToolDefinition(name="time", description="Local time", parameters={"type": "object"}),
        ToolDefinition(name="codeExecution", type="codeExecution"),
    )
    out = codec.encode(replace(decoded, tools=(*decoded.tools, *new)), body)
    assert out["tools"] == [
        {
            "functionDeclarations": [
                WEATHER,
                {"name": "time", "description": "Local time", "parametersJsonSchema": {"type": "object"}},
            ]
        },
        {"googleSearch": {}},
        {"codeExecution": {}},
    ]
    assert out["tools"][1] is body["tools"][1]


def test_dropping_every_tool_drops_function_calling_config_but_keeps_other_tool_config() -> None:
    body = request(
        tools=[{"functionDeclarations": [WEATHER]}],
        toolConfig={"functionCallingConfig": {"mode": "ANY"}, "retrievalConfig": {"languageCode": "en"}},
    )
    out = edited(body, tools=())
    assert "tools" not in out
    assert out["toolConfig"] == {"retrievalConfig": {"languageCode": "en"}}
    only_calling = request(
        tools=[{"functionDeclarations": [WEATHER]}], tool_config={"function_calling_config": {"mode": "AUTO"}}
    )
    assert "tool_config" not in edited(only_calling, tools=())


@pytest.mark.parametrize(
    ("config", "mode", "name"),
    [
        ({"mode": "AUTO"}, "auto", None),
        ({"mode": "VALIDATED"}, "auto", None),
        ({"mode": "MODE_UNSPECIFIED"}, "auto", None),
        ({}, "auto", None),
        ({"mode": "NONE"}, "none", None),
        ({"mode": "ANY"}, "required", None),
        ({"mode": "ANY", "allowedFunctionNames": ["a", "b"]}, "required", None),
        ({"mode": "ANY", "allowed_function_names": ["a"]}, "tool", "a"),
        ({"mode": "AUTO", "allowedFunctionNames": ["a"]}, "auto", None),
    ],
)
def test_tool_choice_modes(config: dict[str, Any], mode: str, name: str | None) -> None:
    choice = codec.decode(request(toolConfig={"functionCallingConfig": config})).tool_choice
    assert choice is not None and (choice.mode, choice.name) == (mode, name)


def test_tool_choice_edits() -> None:
    body = request(
        tools=[{"functionDeclarations": [WEATHER]}],
        toolConfig={
            "functionCallingConfig": {"mode": "ANY", "allowed_function_names": ["weather"], "x_f": 1}
        },
    )
    decoded = codec.decode(body)
    assert decoded.tool_choice == ToolChoice(mode="tool", name="weather", extra={"x_f": 1})
    assert edited(body, tool_choice=replace(decoded.tool_choice, mode="required", name=None))[
        "toolConfig"
    ] == {"functionCallingConfig": {"mode": "ANY", "x_f": 1}}
    assert edited(body, tool_choice=replace(decoded.tool_choice, name="other"))["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowed_function_names": ["other"], "x_f": 1}
    }
    assert "toolConfig" not in edited(body, tool_choice=None)
    assert edited(request(), tool_choice=ToolChoice(mode="none"))["toolConfig"] == {
        "functionCallingConfig": {"mode": "NONE"}
    }


# ----------------------------------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        *[
            (raw, "content_filter")
            for raw in ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
        ],
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("UNEXPECTED_TOOL_CALL", "error"),
        *[(raw, "unknown") for raw in ("LANGUAGE", "OTHER", "FINISH_REASON_UNSPECIFIED", "SOMETHING_NEW")],
    ],
)
def test_finish_reasons(raw: str, reason: str) -> None:
    reply = codec.decode_response(
        {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": raw}]}
    )
    assert (reply.finish_reason, reply.finish_reason_raw) == (reason, raw)


def test_usage_counts_are_none_when_not_reported_never_zero() -> None:
    reply = codec.decode_response({"candidates": []})
    assert reply.usage == nemoflow.Usage() and not reply.usage.reported
    usage = codec.decode_response({"usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 3}}).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.reasoning_tokens) == (
        0,
        3,
        3,
        None,
    )


def test_stream_usage_last_wins_and_candidates_stay_apart() -> None:
    def event(index: int, text: str, usage: int | None = None, reason: str | None = None) -> str:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": index}
        if reason:
            candidate["finishReason"] = reason
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if usage is not None:
            chunk["usageMetadata"] = {
                "promptTokenCount": 4,
                "candidatesTokenCount": usage,
                "totalTokenCount": 4 + usage,
            }
        return "data: " + json.dumps(chunk) + "\r\n\r\n"

    body = (
        ": keep-alive\n\n"
        + event(0, "a", 1)
        + event(1, "x", 2)
        + event(0, "b", 3, "STOP")
        + event(1, "y", 5, "MAX_TOKENS")
    )
    reply = codec.decode_stream([body.encode()], url=STREAM_URL)
    assert [(c.index, c.text, c.finish_reason) for c in reply.choices] == [
        (0, "ab", FinishReason.STOP),
        (1, "xy", FinishReason.LENGTH),
    ]
    assert (reply.usage.completion_tokens, reply.usage.total_tokens) == (5, 9)  # the last one, not a sum
    assert reply.model == "gemini-2.5-flash"  # from the URL: the chunks named none


def test_a_cut_json_array_stream_keeps_the_complete_chunks() -> None:
    first = {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}
    second = {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}]}
    whole = ("[" + json.dumps(first) + ",\r\n" + json.dumps(second)).encode()
    cut = whole[: len(whole) - 5]
    assert codec.decode_stream([whole]).text == "Hello"
    assert codec.decode_stream([cut[:3], cut[3:]]).text == "Hel"


def test_prompt_block_reason_without_candidates() -> None:
    reply = codec.decode_response({"promptFeedback": {"blockReason": "BLOCKLIST"}})
    assert (reply.finish_reason, reply.finish_reason_raw, reply.choices) == (
        FinishReason.CONTENT_FILTER,
        "BLOCKLIST",
        (),
    )


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "state", "message", "kind"),
    [
        (400, "INVALID_ARGUMENT", "Request contains an invalid argument.", ErrorKind.INVALID_REQUEST),
        (400, "FAILED_PRECONDITION", "Precondition check failed.", ErrorKind.INVALID_REQUEST),
        (403, "PERMISSION_DENIED", "denied", ErrorKind.PERMISSION),
        (401, "UNAUTHENTICATED", "bad token", ErrorKind.AUTHENTICATION),
        (404, "NOT_FOUND", "no model", ErrorKind.NOT_FOUND),
        (429, "RESOURCE_EXHAUSTED", "slow down", ErrorKind.RATE_LIMIT),
        (500, "INTERNAL", "oops", ErrorKind.SERVER),
        (503, "UNAVAILABLE", "The model is overloaded.", ErrorKind.OVERLOADED),
        (504, "DEADLINE_EXCEEDED", "deadline", ErrorKind.TIMEOUT),
        (
            400,
            "INVALID_ARGUMENT",
            "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).",
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
        ),
        (
            400,
            "INVALID_ARGUMENT",
            "Unable to submit request because the input token count is 1200000 but model only supports"
            " up to 1048576 tokens.",
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
        ),
    ],
)
def test_error_status_strings(status: int, state: str, message: str, kind: ErrorKind) -> None:
    error = codec.decode_error(status, {}, {"error": {"code": status, "message": message, "status": state}})
    assert (error.kind, error.type, error.code, error.message) == (kind, state, str(status), message)


@pytest.mark.parametrize(
    ("headers", "delay", "expected"),
    [
        ({}, "20s", 20.0),
        ({}, "1.500s", 1.5),
        ({}, {"seconds": 3, "nanos": 500000000}, 3.5),
        ({"retry-after": "7"}, "20s", 7.0),
        ({}, "soon", None),
    ],
)
def test_retry_after_from_retry_info(headers: dict[str, str], delay: Any, expected: float | None) -> None:
    body = {
        "error": {
            "code": 429,
            "message": "quota",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}],
        }
    }
    assert codec.decode_error(429, headers, json.dumps(body).encode()).retry_after == expected


def test_zero_quota_is_quota_exceeded() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Quota exceeded for metric ..., limit: 0",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "X-FreeTier", "quotaValue": "0"}],
                }
            ],
        }
    }
    assert codec.decode_error(429, {}, body).kind == ErrorKind.QUOTA_EXCEEDED


def test_null_chunks_and_null_usage_do_not_clobber_what_was_seen() -> None:
    body = (
        b": ping\n\n"
        b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}],'
        b'"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1,"totalTokenCount":4}}\n\n'
        b'data: {"candidates":null,"usageMetadata":null}\n\n'
        b'data: {"candidates":[],"modelVersion":"m"}\n\n'
        b"data: null\n\n"
    )
    reply = codec.decode_stream([body])
    assert (reply.text, reply.usage.prompt_tokens, reply.usage.total_tokens, reply.model) == ("a", 3, 4, "m")
    assert reply.finish_reason == FinishReason.UNKNOWN  # the stream never said why it ended


def test_model_and_stream_edits_are_refused_not_lost() -> None:
    import dataclasses

    import nemoflow

    codec = nemoflow.get_codec("gemini-generate-content")
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    decoded = codec.decode(body, url=url)
    with pytest.raises(nemoflow.EncodeError, match="URL"):
        codec.encode(dataclasses.replace(decoded, model="gemini-2.5-pro"), body, url=url)
    with pytest.raises(nemoflow.EncodeError, match="streamGenerateContent"):
        codec.encode(dataclasses.replace(decoded, stream=True), body, url=url)
    same = dataclasses.replace(decoded, model="gemini-2.5-flash")
    assert codec.encode(same, body, url=url) is body
