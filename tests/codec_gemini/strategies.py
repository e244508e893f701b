"""Hypothesis strategies for the gemini-generate-content codec's property tests.

The request strategies draw ``GenerateContentRequest`` bodies the Gemini API accepts (shapes from the API
reference and from what the google-genai SDK sends), then:

* spell every multi-word field at random in camelCase or snake_case, object by object, as real clients
  do (the SDK mixes them: ``fileData`` holding ``file_uri``);
* add *unknown* keys (``x_...``) at every depth the codec must carry them through: the body, contents,
  parts, ``inlineData`` / ``fileData`` / ``functionCall`` / ``functionResponse`` objects,
  ``systemInstruction``, ``generationConfig`` and ``thinkingConfig``, tools, function declarations,
  ``toolConfig`` and ``functionCallingConfig``.

The response and chunk strategies feed the error tests.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from tests.strategies import (
    base64_payloads,
    json_objects,
    json_values,
    names,
    texts,
    unknown_key,
    unknown_keys,
)

__all__ = [
    "GEMINI_SAMPLES",
    "gemini_chunks",
    "gemini_requests",
    "gemini_responses",
    "snake",
]

JsonDict = dict[str, Any]
Strategy = st.SearchStrategy


def snake(name: str) -> str:
    """The snake_case spelling of a camelCase field name."""
    return re.sub(r"([A-Z])", r"_\1", name).lower()


@st.composite
def spelled(
    draw: st.DrawFn,
    required: Mapping[str, Strategy[Any]],
    optional: Mapping[str, Strategy[Any]] | None = None,
    unknown: bool = True,
) -> JsonDict:
    """An object with the ``required`` fields and some ``optional`` ones, each spelled camel or snake."""
    base = draw(st.fixed_dictionaries(dict(required), optional=dict(optional or {})))
    snake_style = draw(st.booleans())
    out: JsonDict = {}
    for key, value in base.items():
        if snake_style or draw(st.integers(0, 4)) == 0:
            key = snake(key)
        out[key] = value
    if unknown:
        out.update(draw(unknown_keys()))
    return out


signatures = st.binary(min_size=1, max_size=9).map(lambda data: base64.b64encode(data).decode("ascii"))
image_types = st.sampled_from(["image/png", "image/jpeg", "image/webp"])
other_types = st.sampled_from(["application/pdf", "video/mp4", "text/plain", "audio/wav", "audio/mp3"])
mime_types = image_types | other_types
file_uris = st.builds(
    lambda name: f"https://generativelanguage.googleapis.com/v1beta/files/{name}", names
) | st.builds(lambda name: f"gs://bucket/{name}.bin", names)

text_parts = spelled({"text": texts}, {"thoughtSignature": signatures})
thought_parts = spelled({"text": texts, "thought": st.just(True)}, {"thoughtSignature": signatures})
inline_parts = spelled(
    {"inlineData": spelled({"mimeType": mime_types, "data": base64_payloads}, {"displayName": names})},
    {"mediaResolution": st.builds(lambda: {"level": "MEDIA_RESOLUTION_LOW"})},
)
file_parts = spelled(
    {"fileData": spelled({"mimeType": mime_types, "fileUri": file_uris})},
    {"videoMetadata": spelled({}, {"startOffset": st.just("1s"), "endOffset": st.just("5s")}, unknown=False)},
)
call_parts = spelled(
    {"functionCall": spelled({"name": names}, {"id": names, "args": json_objects})},
    {"thoughtSignature": signatures},
)
response_parts = spelled(
    {"functionResponse": spelled({"name": names}, {"id": names, "response": json_objects})}
)
code_parts = spelled({"executableCode": spelled({"language": st.just("PYTHON"), "code": texts})}) | spelled(
    {"codeExecutionResult": spelled({"outcome": st.just("OUTCOME_OK")}, {"output": texts})}
)
parts = st.one_of(text_parts, thought_parts, inline_parts, file_parts, call_parts, response_parts, code_parts)

contents = spelled(
    {"parts": st.lists(parts, min_size=1, max_size=3)},
    {"role": st.sampled_from(["user", "model", "function"])},
)
system_instructions = spelled(
    {"parts": st.lists(text_parts, min_size=1, max_size=3)}, {"role": st.just("user")}
)

schemas = st.sampled_from(
    [
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}},
        {"type": "string", "enum": ["a", "b"]},
    ]
)
thinking_configs = spelled(
    {},
    {
        "thinkingLevel": st.sampled_from(["LOW", "HIGH", "low", "MINIMAL"]),
        "thinkingBudget": st.integers(-1, 32768),
        "includeThoughts": st.booleans(),
    },
)
top_ks = (
    st.integers(1, 100)
    | st.integers(1, 100).map(float)
    | st.floats(1, 100).filter(lambda v: not v.is_integer())
)
generation_configs = spelled(
    {},
    {
        "temperature": st.floats(0, 2),
        "topP": st.floats(0, 1),
        "topK": top_ks,
        "maxOutputTokens": st.integers(1, 65536),
        "stopSequences": st.lists(texts, min_size=1, max_size=3),
        "seed": st.integers(-(2**31), 2**31 - 1),
        "candidateCount": st.integers(1, 4),
        "presencePenalty": st.floats(-2, 2),
        "frequencyPenalty": st.floats(-2, 2),
        "responseMimeType": st.sampled_from(["application/json", "text/x.enum", "text/plain"]),
        "responseSchema": schemas,
        "responseJsonSchema": schemas,
        "thinkingConfig": thinking_configs,
        "responseModalities": st.builds(lambda: ["TEXT"]),
    },
)
declarations = spelled(
    {"name": names},
    {
        "description": texts,
        "parameters": schemas,
        "behavior": st.sampled_from(["BLOCKING", "NON_BLOCKING"]),
        "response": schemas,
    },
) | spelled({"name": names}, {"parametersJsonSchema": schemas})
builtin_tools = st.one_of(
    st.builds(lambda: {"googleSearch": {}}),  # built fresh: a JSON body never shares objects
    st.builds(lambda: {"codeExecution": {}}),
    st.builds(lambda: {"url_context": {}}),
    st.builds(lambda x: {"googleSearch": {"timeRangeFilter": x}}, json_objects),
    st.builds(lambda: {"google_search_retrieval": {"dynamicRetrievalConfig": {"mode": "MODE_DYNAMIC"}}}),
)
function_tools = spelled(
    {"functionDeclarations": st.lists(declarations, min_size=1, max_size=3)}, unknown=False
)
future_tools = st.dictionaries(unknown_key, json_values, min_size=1, max_size=2)
"""Tool objects holding only keys unknown to the codec (tool types newer than it)."""
tools = st.one_of(function_tools, builtin_tools, future_tools)
calling_configs = spelled(
    {},
    {
        "mode": st.sampled_from(["AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"]),
        "allowedFunctionNames": st.lists(names, min_size=1, max_size=3),
    },
)
forced_calling_configs = st.builds(
    lambda name, extra: {"mode": "ANY", "allowedFunctionNames": [name], **extra}, names, unknown_keys()
)
tool_configs = spelled(
    {},
    {"functionCallingConfig": calling_configs, "retrievalConfig": st.builds(lambda: {"languageCode": "en"})},
)
safety_settings = st.lists(
    st.fixed_dictionaries(
        {
            "category": st.sampled_from(["HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH"]),
            "threshold": st.sampled_from(["BLOCK_NONE", "BLOCK_ONLY_HIGH"]),
        }
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def gemini_requests(
    draw: st.DrawFn,
    *,
    with_tools: bool = False,
    with_function: bool = False,
    forced_tool_choice: bool = False,
) -> JsonDict:
    """A ``GenerateContentRequest`` body with mixed spellings and unknown keys at every depth.

    Args:
        draw: Supplied by Hypothesis.
        with_tools: Always offer at least one tool.
        with_function: Always offer at least one function declaration.
        forced_tool_choice: Offer functions and force one with ``ANY`` + a single allowed name.
    """
    body: JsonDict = {"contents": draw(st.lists(contents, min_size=1, max_size=3))}
    snake_top = draw(st.booleans())

    def key(name: str) -> str:
        return snake(name) if snake_top else name

    if draw(st.booleans()):
        body[key("systemInstruction")] = draw(system_instructions)
    if draw(st.booleans()):
        body[key("generationConfig")] = draw(generation_configs)
    want_function = with_function or forced_tool_choice
    if with_tools or want_function or draw(st.booleans()):
        offered = draw(st.lists(tools, min_size=1, max_size=2))
        if want_function:
            offered.append(draw(function_tools))
        body["tools"] = offered
        if forced_tool_choice:
            body[key("toolConfig")] = {
                "functionCallingConfig": draw(forced_calling_configs),
                **draw(unknown_keys()),
            }
        elif draw(st.booleans()):
            body[key("toolConfig")] = draw(tool_configs)
    if draw(st.booleans()):
        body[key("safetySettings")] = draw(safety_settings)
    if draw(st.booleans()):
        body[key("cachedContent")] = "cachedContents/" + draw(names)
    body.update(draw(unknown_keys(3)))
    return body


# ----------------------------------------------------------------------------------------- rich samples

GEMINI_SAMPLES: list[JsonDict] = [
    {
        "contents": [
            {
                "role": "user",
                "x_turn": True,
                "parts": [
                    {"text": "Compare these \N{SNOWMAN}", "x_meta": {"nested": [1, 2.5, None]}},
                    {
                        "inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo=", "x_blob": 1},
                        "x_part": 0,
                    },
                    {"inline_data": {"mime_type": "audio/wav", "data": "UklGRg=="}},
                    {"fileData": {"file_uri": "gs://b/a.pdf", "mime_type": "application/pdf"}},
                    {
                        "fileData": {"mimeType": "video/mp4", "fileUri": "gs://b/v.mp4"},
                        "videoMetadata": {"fps": 2},
                    },
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Plan: call weather.", "thought": True, "thoughtSignature": "c2lnMQ=="},
                    {"text": "Checking."},
                    {
                        "functionCall": {"id": "c1", "name": "weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "c2ln",
                    },
                    {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                    {"function_call": {"name": "weather", "args": {"city": "Oslo"}, "x_call": [True, 1]}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "c1", "name": "weather", "response": {"output": "18C"}}},
                    {"function_response": {"name": "weather", "response": {"error": "down"}, "x_resp": 0}},
                ],
            },
            {"role": "function", "parts": [{"functionResponse": {"name": "weather", "response": {}}}]},
            {"parts": [{"text": "Thanks", "thought": False}], "x_flag": 1},
        ],
        "systemInstruction": {
            "parts": [{"text": "Be brief."}, {"text": "Use metric units.", "x_sys_part": 1}],
            "role": "user",
        },
        "generationConfig": {
            "temperature": 0.7,
            "topP": 1,
            "topK": 40.0,
            "maxOutputTokens": 512,
            "stopSequences": ["END"],
            "seed": -5,
            "candidateCount": 1,
            "presencePenalty": 0.0,
            "frequencyPenalty": -0.5,
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinking_level": "LOW", "includeThoughts": True},
            "x_gen": {"deep": [{"deeper": [True, 1, 1.0, "1"]}]},
        },
        "tools": [
            {"codeExecution": {}},
            {
                "functionDeclarations": [
                    {
                        "name": "weather",
                        "description": "Current weather",
                        "parameters": {"type": "OBJECT"},
                        "x_decl": True,
                    },
                    {"name": "grep", "parameters_json_schema": {"type": "object"}},
                ],
                "googleSearch": {"x_setting": 1},
            },
            {"x_future_tool": 7},
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"], "x_fcc": 0},
            "retrievalConfig": {"languageCode": "en"},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "x_top": 2**70,
    },
    {
        "contents": [
            {"parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "hello", "thoughtSignature": "AAAA"}]},
            {"role": "user", "parts": []},
        ],
        "system_instruction": {"parts": [{"text": "You are terse."}]},
        "generation_config": {
            "max_output_tokens": 64,
            "top_k": 2.5,
            "stop_sequences": "STOP",
            "thinking_config": {"thinking_budget": 0},
        },
        "tools": [{"function_declarations": []}, {}],
        "tool_config": {"function_calling_config": {"mode": "VALIDATED", "x_fcc": True}},
        "x_priority": 0,
    },
]
"""Two hand-written requests holding every feature and spelling at once."""

# ----------------------------------------------------------------------------------------- responses

usage_metadata = spelled(
    {},
    {
        "promptTokenCount": st.integers(0, 10**6),
        "candidatesTokenCount": st.integers(0, 10**6),
        "cachedContentTokenCount": st.integers(0, 10**6),
        "thoughtsTokenCount": st.integers(0, 10**6),
        "toolUsePromptTokenCount": st.integers(0, 10**6),
        "totalTokenCount": st.integers(0, 3 * 10**6),
    },
)
finish_reasons = st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "MALFORMED_FUNCTION_CALL", "OTHER"]) | texts
response_contents = spelled(
    {"parts": st.lists(st.one_of(text_parts, thought_parts, call_parts, code_parts), max_size=3)},
    {"role": st.just("model")},
)
candidates = spelled(
    {},
    {
        "content": response_contents,
        "finishReason": finish_reasons,
        "index": st.integers(0, 3),
        "safetyRatings": st.builds(
            lambda: [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
        ),
    },
)
gemini_responses: Strategy[JsonDict] = spelled(
    {},
    {
        "candidates": st.lists(candidates, max_size=3),
        "usageMetadata": usage_metadata,
        "modelVersion": names,
        "responseId": names,
        "promptFeedback": spelled({}, {"blockReason": st.sampled_from(["SAFETY", "OTHER"])}),
        "createTime": st.sampled_from(["2025-01-02T03:04:05.123456789Z", "2025-01-02T03:04:05Z", "nonsense"]),
    },
)
"""A ``GenerateContentResponse`` body."""
gemini_chunks = gemini_responses
"""A streamed chunk: a (partial) ``GenerateContentResponse``."""

error_bodies_google = st.fixed_dictionaries(
    {
        "error": spelled(
            {"code": st.sampled_from([400, 403, 429, 500, 503]), "message": texts},
            {
                "status": st.sampled_from(["INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "UNAVAILABLE"]) | texts,
                "details": st.lists(
                    st.one_of(
                        st.builds(
                            lambda delay: {
                                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                                "retryDelay": delay,
                            },
                            st.sampled_from(["20s", "1.5s", "", "abc", "-1s"]) | json_values,
                        ),
                        st.builds(
                            lambda quota: {
                                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                "violations": [{"quotaId": quota, "quotaValue": "0"}],
                            },
                            json_values,
                        ),
                        json_values,
                    ),
                    max_size=3,
                ),
            },
        )
    }
)
"""Google ``google.rpc.Status`` error bodies, details included (some of them malformed)."""
