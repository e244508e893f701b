"""One provider-neutral policy, six wire surfaces (issue 3).

The policy below is written once, against the annotated model only: it sets the system text, caps the
output-token limit at 256, appends a user message and drops the ``get_weather`` tool, each edit made with
:func:`dataclasses.replace`. It is applied to the *same* conversation written by hand in the native JSON
of six surfaces (OpenAI Chat, OpenAI Responses, Anthropic Messages, Gemini ``generateContent``, Bedrock
Converse, and an OpenAI-compatible vLLM server), every one carrying provider-specific keys the model does
not name at several depths.

For each surface the test checks, byte for byte (``orjson.dumps`` of the result against a hand-written
expected body, so key order and JSON types count), that

* the four edits land where that provider keeps them,
* everything else is left alone: unknown keys, untouched messages and the kept tool are not only equal
  but the very same objects as in the original body, and the original body is not mutated,
* each edit alone changes only its own place, also when the request had no system text or no limit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, ClassVar

import orjson
import pytest

import nemoflow
from nemoflow import AnnotatedLlmRequest, LlmCodec, Message

# ----------------------------------------------------------------------------------------- the policy

NEW_SYSTEM = "You are a careful assistant. Keep answers under five sentences."
MAX_TOKENS_CAP = 256
FRENCH = Message(role="user", content="Also: reply in French.")
DROPPED_TOOL = "get_weather"


def set_system(request: AnnotatedLlmRequest) -> AnnotatedLlmRequest:
    return replace(request, system=NEW_SYSTEM)


def cap_max_tokens(request: AnnotatedLlmRequest) -> AnnotatedLlmRequest:
    current = request.params.max_tokens
    capped = MAX_TOKENS_CAP if current is None else min(current, MAX_TOKENS_CAP)
    return replace(request, params=replace(request.params, max_tokens=capped))


def append_user_message(request: AnnotatedLlmRequest) -> AnnotatedLlmRequest:
    return replace(request, messages=(*request.messages, FRENCH))


def drop_tool(request: AnnotatedLlmRequest) -> AnnotatedLlmRequest:
    return replace(request, tools=tuple(tool for tool in request.tools if tool.name != DROPPED_TOOL))


def policy(request: AnnotatedLlmRequest) -> AnnotatedLlmRequest:
    """The provider-neutral policy: all four edits, knowing nothing about the wire format."""
    return drop_tool(append_user_message(cap_max_tokens(set_system(request))))


EDITS: dict[str, Callable[[AnnotatedLlmRequest], AnnotatedLlmRequest]] = {
    "system": set_system,
    "max_tokens": cap_max_tokens,
    "append": append_user_message,
    "drop_tool": drop_tool,
}

# ----------------------------------------------------------------------------------------- the conversation

SYSTEM = "You are a concise travel assistant."
USER_1 = "What's the weather like in Lyon today?"
ASSISTANT_1 = "It is sunny in Lyon, 24 degrees."
USER_2 = "And what time is it there right now?"
WEATHER_DESCRIPTION = "Current weather for a city."
TIME_DESCRIPTION = "Local time in an IANA time zone."


def weather_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def time_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}


Json = dict[str, Any]
Path = tuple[str | int, ...]


def at(document: Any, path: Path) -> Any:
    for step in path:
        document = document[step]
    return document


class Surface:
    """One wire surface: its codec, URL, native request, and where each edit must land (all by hand)."""

    id: ClassVar[str]
    codec: ClassVar[str]
    url: ClassVar[str]
    model: ClassVar[str]
    touched: ClassVar[frozenset[str]]
    """Top-level keys the full policy rewrites; every other top-level value must be the same object."""

    def build(self) -> Json:
        """The native request: system text, two turns, two tools, a 1000-token limit, unknown keys."""
        raise NotImplementedError

    def expected(self) -> Json:
        """The native request after the full policy, written out in full."""
        raise NotImplementedError

    def kept(self) -> list[tuple[Path, Path]]:
        """(path in the result, path in the original) of objects the policy must leave as they are."""
        raise NotImplementedError

    # Each edit alone: turn a fresh copy of the request into the expected result, in place.
    def after_system(self, body: Json) -> None:
        raise NotImplementedError

    def after_max_tokens(self, body: Json) -> None:
        raise NotImplementedError

    def after_append(self, body: Json) -> None:
        raise NotImplementedError

    def after_drop_tool(self, body: Json) -> None:
        raise NotImplementedError

    # The same request without system text and without a limit, and where the two edits must then go.
    def strip(self, body: Json) -> None:
        raise NotImplementedError

    def stripped_after_system(self, body: Json) -> None:
        raise NotImplementedError

    def stripped_after_max_tokens(self, body: Json) -> None:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------- OpenAI Chat


class OpenAIChat(Surface):
    id = "openai-chat"
    codec = "openai-chat"
    url = "https://api.openai.com/v1/chat/completions"
    model = "gpt-4.1-mini"
    touched = frozenset({"messages", "tools", "max_completion_tokens"})

    def build(self) -> Json:
        return {
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": USER_1, "cache_control": {"type": "ephemeral"}}],
                },
                {"role": "assistant", "content": ASSISTANT_1, "refusal": None},
                {"role": "user", "content": USER_2, "name": "alice"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": WEATHER_DESCRIPTION,
                        "parameters": weather_schema(),
                        "strict": False,
                    },
                },
                {
                    "type": "function",
                    "function": {
                        "name": "get_time",
                        "description": TIME_DESCRIPTION,
                        "parameters": time_schema(),
                        "x-owner": "platform-team",
                    },
                },
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "max_completion_tokens": 1000,
            "temperature": 0.2,
            "store": False,
            "metadata": {"tenant": "acme", "trace": {"id": "t-1", "sampled": True}},
            "user": "user-7",
        }

    def expected(self) -> Json:
        return {
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "system", "content": NEW_SYSTEM},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": USER_1, "cache_control": {"type": "ephemeral"}}],
                },
                {"role": "assistant", "content": ASSISTANT_1, "refusal": None},
                {"role": "user", "content": USER_2, "name": "alice"},
                {"role": "user", "content": "Also: reply in French."},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_time",
                        "description": TIME_DESCRIPTION,
                        "parameters": time_schema(),
                        "x-owner": "platform-team",
                    },
                },
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "max_completion_tokens": 256,
            "temperature": 0.2,
            "store": False,
            "metadata": {"tenant": "acme", "trace": {"id": "t-1", "sampled": True}},
            "user": "user-7",
        }

    def kept(self) -> list[tuple[Path, Path]]:
        return [
            (("messages", 1), ("messages", 1)),
            (("messages", 2), ("messages", 2)),
            (("messages", 3), ("messages", 3)),
            (("tools", 0), ("tools", 1)),
        ]

    def after_system(self, body: Json) -> None:
        body["messages"][0] = {"role": "system", "content": NEW_SYSTEM}

    def after_max_tokens(self, body: Json) -> None:
        body["max_completion_tokens"] = 256

    def after_append(self, body: Json) -> None:
        body["messages"].append({"role": "user", "content": "Also: reply in French."})

    def after_drop_tool(self, body: Json) -> None:
        del body["tools"][0]

    def strip(self, body: Json) -> None:
        del body["messages"][0]
        del body["max_completion_tokens"]

    def stripped_after_system(self, body: Json) -> None:
        body["messages"].insert(0, {"role": "system", "content": NEW_SYSTEM})

    def stripped_after_max_tokens(self, body: Json) -> None:
        # api.openai.com: the key newer models require.
        body["max_completion_tokens"] = 256


# ----------------------------------------------------------------------------------------- OpenAI-compatible


class OpenAICompatible(Surface):
    """A vLLM server's Chat Completions endpoint: ``max_tokens`` and vLLM's own sampling keys."""

    id = "vllm-chat"
    codec = "openai-chat"
    url = "http://localhost:8000/v1/chat/completions"
    model = "Qwen/Qwen3-8B"
    touched = frozenset({"messages", "tools", "max_tokens"})

    def build(self) -> Json:
        return {
            "model": "Qwen/Qwen3-8B",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": USER_1},
                {
                    "role": "assistant",
                    "content": ASSISTANT_1,
                    "reasoning_content": "The forecast tool said sunny.",
                },
                {"role": "user", "content": USER_2},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": WEATHER_DESCRIPTION,
                        "parameters": weather_schema(),
                    },
                },
                {
                    "type": "function",
                    "function": {
                        "name": "get_time",
                        "description": TIME_DESCRIPTION,
                        "parameters": time_schema(),
                    },
                },
            ],
            "tool_choice": "auto",
            "max_tokens": 1000,
            "temperature": 0.7,
            "top_k": 20,
            "repetition_penalty": 1.05,
            "min_p": 0.0,
            "chat_template_kwargs": {"enable_thinking": False},
            "guided_decoding_backend": "xgrammar",
        }

    def expected(self) -> Json:
        return {
            "model": "Qwen/Qwen3-8B",
            "messages": [
                {"role": "system", "content": NEW_SYSTEM},
                {"role": "user", "content": USER_1},
                {
                    "role": "assistant",
                    "content": ASSISTANT_1,
                    "reasoning_content": "The forecast tool said sunny.",
                },
                {"role": "user", "content": USER_2},
                {"role": "user", "content": "Also: reply in French."},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_time",
                        "description": TIME_DESCRIPTION,
                        "parameters": time_schema(),
                    },
                },
            ],
            "tool_choice": "auto",
            "max_tokens": 256,
            "temperature": 0.7,
            "top_k": 20,
            "repetition_penalty": 1.05,
            "min_p": 0.0,
            "chat_template_kwargs": {"enable_thinking": False},
            "guided_decoding_backend": "xgrammar",
        }

    def kept(self) -> list[tuple[Path, Path]]:
        return [
            (("messages", 1), ("messages", 1)),
            (("messages", 2), ("messages", 2)),
            (("messages", 3), ("messages", 3)),
            (("tools", 0), ("tools", 1)),
        ]

    def after_system(self, body: Json) -> None:
        body["messages"][0] = {"role": "system", "content": NEW_SYSTEM}

    def after_max_tokens(self, body: Json) -> None:
        body["max_tokens"] = 256

    def after_append(self, body: Json) -> None:
        body["messages"].append({"role": "user", "content": "Also: reply in French."})

    def after_drop_tool(self, body: Json) -> None:
        del body["tools"][0]

    def strip(self, body: Json) -> None:
        del body["messages"][0]
        del body["max_tokens"]

    def stripped_after_system(self, body: Json) -> None:
        body["messages"].insert(0, {"role": "system", "content": NEW_SYSTEM})

    def stripped_after_max_tokens(self, body: Json) -> None:
        # Not OpenAI's host: the key compatible servers understand.
        body["max_tokens"] = 256


# ----------------------------------------------------------------------------------------- OpenAI Responses


class OpenAIResponses(Surface):
    id = "openai-responses"
    codec = "openai-responses"
    url = "https://api.openai.com/v1/responses"
    model = "gpt-4.1-mini"
    touched = frozenset({"instructions", "input", "tools", "max_output_tokens"})

    def build(self) -> Json:
        return {
            "model": "gpt-4.1-mini",
            "instructions": SYSTEM,
            "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": USER_1}]},
                {
                    "type": "message",
                    "id": "msg_0a1b2c",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": ASSISTANT_1, "annotations": []}],
                },
                {"role": "user", "content": USER_2},
            ],
            "tools": [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": WEATHER_DESCRIPTION,
                    "parameters": weather_schema(),
                    "strict": False,
                },
                {
                    "type": "function",
                    "name": "get_time",
                    "description": TIME_DESCRIPTION,
                    "parameters": time_schema(),
                    "strict": False,
                },
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "max_output_tokens": 1000,
            "temperature": 0.2,
            "text": {"verbosity": "low"},
            "store": False,
            "truncation": "auto",
            "metadata": {"tenant": "acme"},
        }

    def expected(self) -> Json:
        return {
            "model": "gpt-4.1-mini",
            "instructions": NEW_SYSTEM,
            "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": USER_1}]},
                {
                    "type": "message",
                    "id": "msg_0a1b2c",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": ASSISTANT_1, "annotations": []}],
                },
                {"role": "user", "content": USER_2},
                {"role": "user", "content": "Also: reply in French."},
            ],
            "tools": [
                {
                    "type": "function",
                    "name": "get_time",
                    "description": TIME_DESCRIPTION,
                    "parameters": time_schema(),
                    "strict": False,
                },
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "max_output_tokens": 256,
            "temperature": 0.2,
            "text": {"verbosity": "low"},
            "store": False,
            "truncation": "auto",
            "metadata": {"tenant": "acme"},
        }

    def kept(self) -> list[tuple[Path, Path]]:
        return [
            (("input", 0), ("input", 0)),
            (("input", 1), ("input", 1)),
            (("input", 2), ("input", 2)),
            (("tools", 0), ("tools", 1)),
        ]

    def after_system(self, body: Json) -> None:
        body["instructions"] = NEW_SYSTEM

    def after_max_tokens(self, body: Json) -> None:
        body["max_output_tokens"] = 256

    def after_append(self, body: Json) -> None:
        body["input"].append({"role": "user", "content": "Also: reply in French."})

    def after_drop_tool(self, body: Json) -> None:
        del body["tools"][0]

    def strip(self, body: Json) -> None:
        del body["instructions"]
        del body["max_output_tokens"]

    def stripped_after_system(self, body: Json) -> None:
        body["instructions"] = NEW_SYSTEM

    def stripped_after_max_tokens(self, body: Json) -> None:
        body["max_output_tokens"] = 256


# ----------------------------------------------------------------------------------------- Anthropic


class AnthropicMessages(Surface):
    id = "anthropic-messages"
    codec = "anthropic-messages"
    url = "https://api.anthropic.com/v1/messages"
    model = "claude-sonnet-4-5"
    touched = frozenset({"system", "messages", "tools", "max_tokens"})

    def build(self) -> Json:
        return {
            "model": "claude-sonnet-4-5",
            "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": USER_1, "cache_control": {"type": "ephemeral", "ttl": "5m"}}
                    ],
                },
                {"role": "assistant", "content": [{"type": "text", "text": ASSISTANT_1}]},
                {"role": "user", "content": USER_2},
            ],
            "tools": [
                {"name": "get_weather", "description": WEATHER_DESCRIPTION, "input_schema": weather_schema()},
                {
                    "name": "get_time",
                    "description": TIME_DESCRIPTION,
                    "input_schema": time_schema(),
                    "cache_control": {"type": "ephemeral"},
                },
            ],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
            "max_tokens": 1000,
            "temperature": 0.2,
            "metadata": {"user_id": "user-7"},
            "service_tier": "auto",
        }

    def expected(self) -> Json:
        return {
            "model": "claude-sonnet-4-5",
            "system": [{"type": "text", "text": NEW_SYSTEM, "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": USER_1, "cache_control": {"type": "ephemeral", "ttl": "5m"}}
                    ],
                },
                {"role": "assistant", "content": [{"type": "text", "text": ASSISTANT_1}]},
                {"role": "user", "content": USER_2},
                {"role": "user", "content": "Also: reply in French."},
            ],
            "tools": [
                {
                    "name": "get_time",
                    "description": TIME_DESCRIPTION,
                    "input_schema": time_schema(),
                    "cache_control": {"type": "ephemeral"},
                },
            ],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
            "max_tokens": 256,
            "temperature": 0.2,
            "metadata": {"user_id": "user-7"},
            "service_tier": "auto",
        }

    def kept(self) -> list[tuple[Path, Path]]:
        return [
            (("messages", 0), ("messages", 0)),
            (("messages", 1), ("messages", 1)),
            (("messages", 2), ("messages", 2)),
            (("tools", 0), ("tools", 1)),
        ]

    def after_system(self, body: Json) -> None:
        # One text block, keeping the first block's cache breakpoint.
        body["system"] = [{"type": "text", "text": NEW_SYSTEM, "cache_control": {"type": "ephemeral"}}]

    def after_max_tokens(self, body: Json) -> None:
        body["max_tokens"] = 256

    def after_append(self, body: Json) -> None:
        body["messages"].append({"role": "user", "content": "Also: reply in French."})

    def after_drop_tool(self, body: Json) -> None:
        del body["tools"][0]

    def strip(self, body: Json) -> None:
        del body["system"]
        del body["max_tokens"]

    def stripped_after_system(self, body: Json) -> None:
        body["system"] = NEW_SYSTEM

    def stripped_after_max_tokens(self, body: Json) -> None:
        body["max_tokens"] = 256


# ----------------------------------------------------------------------------------------- Gemini


class GeminiGenerateContent(Surface):
    """The model is in the URL; the body has neither ``model`` nor ``stream``."""

    id = "gemini-generate-content"
    codec = "gemini-generate-content"
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    model = "gemini-2.5-flash"
    touched = frozenset({"systemInstruction", "contents", "tools", "generationConfig"})

    def build(self) -> Json:
        return {
            "systemInstruction": {"parts": [{"text": SYSTEM}]},
            "contents": [
                {"role": "user", "parts": [{"text": USER_1}]},
                {"role": "model", "parts": [{"text": ASSISTANT_1, "thoughtSignature": "c2lnLTE="}]},
                {"role": "user", "parts": [{"text": USER_2}]},
            ],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "get_weather",
                            "description": WEATHER_DESCRIPTION,
                            "parameters": weather_schema(),
                        },
                        {
                            "name": "get_time",
                            "description": TIME_DESCRIPTION,
                            "parametersJsonSchema": time_schema(),
                            "behavior": "BLOCKING",
                        },
                    ]
                }
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {
                "temperature": 0.2,
                "maxOutputTokens": 1000,
                "thinkingConfig": {"thinkingBudget": 0},
            },
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
        }

    def expected(self) -> Json:
        return {
            "systemInstruction": {"parts": [{"text": NEW_SYSTEM}]},
            "contents": [
                {"role": "user", "parts": [{"text": USER_1}]},
                {"role": "model", "parts": [{"text": ASSISTANT_1, "thoughtSignature": "c2lnLTE="}]},
                {"role": "user", "parts": [{"text": USER_2}]},
                {"role": "user", "parts": [{"text": "Also: reply in French."}]},
            ],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "get_time",
                            "description": TIME_DESCRIPTION,
                            "parametersJsonSchema": time_schema(),
                            "behavior": "BLOCKING",
                        },
                    ]
                }
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {
                "temperature": 0.2,
                "maxOutputTokens": 256,
                "thinkingConfig": {"thinkingBudget": 0},
            },
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
        }

    def kept(self) -> list[tuple[Path, Path]]:
        return [
            (("contents", 0), ("contents", 0)),
            (("contents", 1), ("contents", 1)),
            (("contents", 2), ("contents", 2)),
            (("tools", 0, "functionDeclarations", 0), ("tools", 0, "functionDeclarations", 1)),
            (("generationConfig", "thinkingConfig"), ("generationConfig", "thinkingConfig")),
        ]

    def after_system(self, body: Json) -> None:
        body["systemInstruction"] = {"parts": [{"text": NEW_SYSTEM}]}

    def after_max_tokens(self, body: Json) -> None:
        body["generationConfig"]["maxOutputTokens"] = 256

    def after_append(self, body: Json) -> None:
        body["contents"].append({"role": "user", "parts": [{"text": "Also: reply in French."}]})

    def after_drop_tool(self, body: Json) -> None:
        del body["tools"][0]["functionDeclarations"][0]

    def strip(self, body: Json) -> None:
        del body["systemInstruction"]
        del body["generationConfig"]["maxOutputTokens"]

    def stripped_after_system(self, body: Json) -> None:
        body["systemInstruction"] = {"parts": [{"text": NEW_SYSTEM}]}

    def stripped_after_max_tokens(self, body: Json) -> None:
        body["generationConfig"]["maxOutputTokens"] = 256


# ----------------------------------------------------------------------------------------- Bedrock


class BedrockConverse(Surface):
    """The model is the ``{modelId}`` of the URL, URL-encoded."""

    id = "bedrock-converse"
    codec = "bedrock-converse"
    url = (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
        "anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    )
    model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    touched = frozenset({"system", "messages", "toolConfig", "inferenceConfig"})

    def build(self) -> Json:
        return {
            "system": [{"text": SYSTEM}, {"cachePoint": {"type": "default"}}],
            "messages": [
                {"role": "user", "content": [{"text": USER_1}, {"cachePoint": {"type": "default"}}]},
                {"role": "assistant", "content": [{"text": ASSISTANT_1}]},
                {"role": "user", "content": [{"text": USER_2}]},
            ],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get_weather",
                            "description": WEATHER_DESCRIPTION,
                            "inputSchema": {"json": weather_schema()},
                        }
                    },
                    {
                        "toolSpec": {
                            "name": "get_time",
                            "description": TIME_DESCRIPTION,
                            "inputSchema": {"json": time_schema()},
                        }
                    },
                    {"cachePoint": {"type": "default"}},
                ],
                "toolChoice": {"auto": {}},
            },
            "inferenceConfig": {"maxTokens": 1000, "temperature": 0.2},
            "additionalModelRequestFields": {"anthropic_beta": ["token-efficient-tools-2025-02-19"]},
            "requestMetadata": {"tenant": "acme"},
            "performanceConfig": {"latency": "standard"},
        }

    def expected(self) -> Json:
        return {
            "system": [{"text": NEW_SYSTEM}, {"cachePoint": {"type": "default"}}],
            "messages": [
                {"role": "user", "content": [{"text": USER_1}, {"cachePoint": {"type": "default"}}]},
                {"role": "assistant", "content": [{"text": ASSISTANT_1}]},
                {"role": "user", "content": [{"text": USER_2}]},
                {"role": "user", "content": [{"text": "Also: reply in French."}]},
            ],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get_time",
                            "description": TIME_DESCRIPTION,
                            "inputSchema": {"json": time_schema()},
                        }
                    },
                    {"cachePoint": {"type": "default"}},
                ],
                "toolChoice": {"auto": {}},
            },
            "inferenceConfig": {"maxTokens": 256, "temperature": 0.2},
            "additionalModelRequestFields": {"anthropic_beta": ["token-efficient-tools-2025-02-19"]},
            "requestMetadata": {"tenant": "acme"},
            "performanceConfig": {"latency": "standard"},
        }

    def kept(self) -> list[tuple[Path, Path]]:
        return [
            (("system", 1), ("system", 1)),
            (("messages", 0), ("messages", 0)),
            (("messages", 1), ("messages", 1)),
            (("messages", 2), ("messages", 2)),
            (("toolConfig", "tools", 0), ("toolConfig", "tools", 1)),
            (("toolConfig", "tools", 1), ("toolConfig", "tools", 2)),
            (("toolConfig", "toolChoice"), ("toolConfig", "toolChoice")),
        ]

    def after_system(self, body: Json) -> None:
        body["system"][0] = {"text": NEW_SYSTEM}

    def after_max_tokens(self, body: Json) -> None:
        body["inferenceConfig"]["maxTokens"] = 256

    def after_append(self, body: Json) -> None:
        body["messages"].append({"role": "user", "content": [{"text": "Also: reply in French."}]})

    def after_drop_tool(self, body: Json) -> None:
        del body["toolConfig"]["tools"][0]

    def strip(self, body: Json) -> None:
        del body["system"]
        del body["inferenceConfig"]["maxTokens"]

    def stripped_after_system(self, body: Json) -> None:
        body["system"] = [{"text": NEW_SYSTEM}]

    def stripped_after_max_tokens(self, body: Json) -> None:
        body["inferenceConfig"]["maxTokens"] = 256


SURFACES: list[Surface] = [
    OpenAIChat(),
    OpenAIResponses(),
    AnthropicMessages(),
    GeminiGenerateContent(),
    BedrockConverse(),
    OpenAICompatible(),
]
by_surface = pytest.mark.parametrize("surface", SURFACES, ids=[surface.id for surface in SURFACES])

# ----------------------------------------------------------------------------------------- helpers


def codec_for(surface: Surface) -> LlmCodec:
    try:
        return nemoflow.get_codec(surface.codec)
    except nemoflow.ConfigurationError as exc:
        pytest.fail(f"{surface.id}: codec {surface.codec!r} is not registered ({exc})")


def run(surface: Surface, edit: Callable[[AnnotatedLlmRequest], AnnotatedLlmRequest], body: Json) -> Any:
    codec = codec_for(surface)
    return codec.encode(edit(codec.decode(body, url=surface.url)), body, url=surface.url)


def wire(document: Any) -> bytes:
    """The bytes the transport would send: key order and JSON types (``1`` vs ``1.0`` vs ``true``) count."""
    return orjson.dumps(document)


def assert_same_bytes(actual: Any, expected: Any) -> None:
    assert actual == expected  # the readable diff first
    assert wire(actual) == wire(expected)  # then key order and JSON types


def walk(document: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, document
    if isinstance(document, dict):
        for key, value in document.items():
            yield from walk(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from walk(value, (*path, index))


# ----------------------------------------------------------------------------------------- tests


@by_surface
def test_requests_are_equivalent(surface: Surface) -> None:
    """The six hand-written bodies say the same thing once decoded: the policy sees one conversation."""
    decoded = codec_for(surface).decode(surface.build(), url=surface.url)
    assert decoded.model == surface.model
    assert decoded.system == SYSTEM
    assert decoded.params.max_tokens == 1000
    conversation = [(m.role, m.text) for m in decoded.messages if m.role not in ("system", "developer")]
    assert conversation == [("user", USER_1), ("assistant", ASSISTANT_1), ("user", USER_2)]
    functions = [(tool.name, tool.description) for tool in decoded.tools if tool.type == "function"]
    assert functions == [("get_weather", WEATHER_DESCRIPTION), ("get_time", TIME_DESCRIPTION)]


@by_surface
def test_untouched_request_is_forwarded_as_is(surface: Surface) -> None:
    body = surface.build()
    codec = codec_for(surface)
    assert codec.encode(codec.decode(body, url=surface.url), body, url=surface.url) is body


@by_surface
def test_policy_output_is_exactly_the_native_request(surface: Surface) -> None:
    body = surface.build()
    before = copy.deepcopy(body)
    out = run(surface, policy, body)
    assert_same_bytes(out, surface.expected())
    assert_same_bytes(body, before)  # the original is never mutated


@by_surface
def test_policy_leaves_every_other_object_alone(surface: Surface) -> None:
    body = surface.build()
    out = run(surface, policy, body)
    # Top level: every key the policy has no business with is the original value itself.
    for key, value in body.items():
        if key not in surface.touched:
            assert out[key] is value, f"top-level {key!r} was rebuilt"
    # Deeper: untouched messages, the kept tool and nested settings are the original dicts.
    for out_path, in_path in surface.kept():
        assert at(out, out_path) is at(body, in_path), f"{out_path} is not the original {in_path}"


@by_surface
def test_policy_facts_read_back_the_same_everywhere(surface: Surface) -> None:
    """Decoding the edited body gives the policy's view back, whatever the provider."""
    codec = codec_for(surface)
    out = run(surface, policy, surface.build())
    again = codec.decode(out, url=surface.url)
    assert again.model == surface.model
    assert again.system == NEW_SYSTEM
    assert again.params.max_tokens == MAX_TOKENS_CAP
    assert (again.messages[-1].role, again.messages[-1].text) == ("user", "Also: reply in French.")
    assert [tool.name for tool in again.tools if tool.type == "function"] == ["get_time"]


@by_surface
@pytest.mark.parametrize("edit", list(EDITS))
def test_each_edit_alone_lands_in_its_native_place(surface: Surface, edit: str) -> None:
    body = surface.build()
    expected = surface.build()
    getattr(surface, f"after_{edit}")(expected)
    out = run(surface, EDITS[edit], body)
    assert_same_bytes(out, expected)
    # Whatever differs from the original is only what the edit wrote.
    changed = {key for key in body.keys() | out.keys() if wire(body.get(key)) != wire(out.get(key))}
    assert changed == {key for key in body.keys() | expected.keys() if body.get(key) != expected.get(key)}
    for key in body.keys() - changed:
        assert out[key] is body[key]


@by_surface
@pytest.mark.parametrize("edit", ["system", "max_tokens"])
def test_edit_of_an_absent_field_goes_where_the_provider_expects_it(surface: Surface, edit: str) -> None:
    body = surface.build()
    surface.strip(body)
    codec = codec_for(surface)
    decoded = codec.decode(body, url=surface.url)
    assert decoded.system is None
    assert decoded.params.max_tokens is None
    expected = copy.deepcopy(body)
    getattr(surface, f"stripped_after_{edit}")(expected)
    out = run(surface, EDITS[edit], body)
    assert_same_bytes(out, expected)


def test_the_added_message_is_written_once_on_every_surface() -> None:
    """The same policy object over all six bodies; the new text appears exactly once in each result."""
    for surface in SURFACES:
        out = run(surface, policy, surface.build())
        found = [path for path, value in walk(out) if value == FRENCH.content]
        assert len(found) == 1, (surface.id, found)
