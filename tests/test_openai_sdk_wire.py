"""The openai-chat and openai-embeddings codecs checked against a client nemoflow did not write.

The official ``openai`` SDK talks to a fake server: an ``httpx2.MockTransport`` handed to the SDK through
``http_client=``, so no socket is ever opened. Four directions are covered:

* **requests the SDK sends**: realistic ``chat.completions.create`` / ``embeddings.create`` calls (and
  every request fixture replayed through the SDK) are captured on the wire; the codec must route them,
  decode the facts that were passed and give the very same body back from ``encode``;
* **responses the SDK accepts**: every ``response`` fixture is served to the SDK and our
  ``decode_response`` must agree with the SDK's parsed object;
* **streams the SDK accepts**: every ``stream`` fixture is served as ``text/event-stream`` and our
  ``decode_stream`` must agree with what the SDK yields (and raises, for error events);
* **errors**: every ``error`` fixture is served with its status and headers; the exception class the SDK
  raises must match the kind ``decode_error`` gives.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import inspect
import json
import socket
import struct
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pydantic
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.completion_usage import CompletionUsage

import nemoflow
from nemoflow import (
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    Choice,
    ErrorKind,
    FinishReason,
    ImagePart,
    LlmCodec,
    Message,
    TextPart,
    ToolCall,
    ToolChoice,
    Usage,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "spec" / "fixtures"

API_KEY = "sk-dummy-key-for-tests"
OPENAI_BASE_URL = "https://api.openai.com/v1"
AZURE_ENDPOINT = "https://contoso-eastus2.openai.azure.com"
AZURE_API_VERSION = "2024-10-21"

CHAT = nemoflow.get_codec("openai-chat")
EMBEDDINGS = nemoflow.get_codec("openai-embeddings")

SSE_PIECE = 7
"""Streams are served to the SDK (and fed to our decoder) in pieces this many bytes long."""

CHAT_NAMED_KEYS = frozenset(
    {
        "model", "messages", "stream", "temperature", "top_p", "top_k", "max_tokens",
        "max_completion_tokens", "stop", "seed", "n", "presence_penalty", "frequency_penalty",
        "response_format", "reasoning_effort", "tools", "tool_choice",
    }
)  # fmt: skip
"""Top-level Chat Completions keys the annotated model names; every other key belongs in ``extra``."""

EMBEDDINGS_NAMED_KEYS = frozenset({"model", "input", "dimensions", "encoding_format"})

SDK_ERROR_KINDS: dict[type[openai.APIStatusError], frozenset[ErrorKind]] = {
    openai.BadRequestError: frozenset(
        {ErrorKind.INVALID_REQUEST, ErrorKind.CONTEXT_LENGTH_EXCEEDED, ErrorKind.CONTENT_FILTER}
    ),
    openai.AuthenticationError: frozenset({ErrorKind.AUTHENTICATION}),
    openai.PermissionDeniedError: frozenset({ErrorKind.PERMISSION}),
    openai.NotFoundError: frozenset({ErrorKind.NOT_FOUND}),
    openai.RateLimitError: frozenset({ErrorKind.RATE_LIMIT, ErrorKind.QUOTA_EXCEEDED}),
    openai.InternalServerError: frozenset({ErrorKind.SERVER, ErrorKind.OVERLOADED}),
}
"""Which of our error kinds each SDK exception class stands for."""

GATEWAY_TIMEOUT_STATUSES = frozenset({408, 504})
"""Statuses our codec may call ``timeout``: the SDK has no class for them beyond the status family."""


# --------------------------------------------------------------------------------------------------- fixtures


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _fixture_params(codec: str, kind: str) -> list[Any]:
    paths = sorted((FIXTURES / codec).glob("*.json"))
    return [pytest.param(path, id=path.name) for path in paths if _load(path).get("kind") == kind]


def _error_body_bytes(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    return orjson.dumps(body)


def _pieces(data: bytes, size: int = SSE_PIECE) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything tries a real connection: every exchange must go through MockTransport."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test opened a real socket connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


# ------------------------------------------------------------------------------------------------ fake server


Reply = Callable[[httpx2.Request], httpx2.Response]


class FakeServer:
    """The far end of an ``httpx2.MockTransport``: records every request and answers with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[httpx2.Request] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.requests.append(request)
        return self.reply(request)

    @property
    def last(self) -> httpx2.Request:
        assert self.requests, "the SDK sent nothing"
        return self.requests[-1]

    def last_body(self) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(self.last.content)
        return body

    def _http(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handle))

    def openai_client(self, base_url: str = OPENAI_BASE_URL) -> openai.OpenAI:
        return openai.OpenAI(api_key=API_KEY, base_url=base_url, http_client=self._http(), max_retries=0)

    def async_openai_client(self) -> openai.AsyncOpenAI:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))
        return openai.AsyncOpenAI(api_key=API_KEY, base_url=OPENAI_BASE_URL, http_client=http, max_retries=0)

    def azure_client(self, deployment: str | None) -> openai.AzureOpenAI:
        return openai.AzureOpenAI(
            api_key=API_KEY,
            azure_endpoint=AZURE_ENDPOINT,
            api_version=AZURE_API_VERSION,
            azure_deployment=deployment,
            http_client=self._http(),
            max_retries=0,
        )


def _json_reply(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers=headers or {"content-type": "application/json"})

    return reply


def _async_sse_reply(sse: bytes) -> Reply:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in _pieces(sse):
            yield piece

    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=pieces(), headers={"content-type": "text/event-stream"})

    return reply


def _sse_reply(sse: bytes) -> Reply:
    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=iter(_pieces(sse)), headers={"content-type": "text/event-stream"})

    return reply


_MINI_COMPLETION = {
    "id": "chatcmpl-wire-test",
    "object": "chat.completion",
    "created": 1750000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"},
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}

_MINI_SSE = (
    b'data: {"id":"chatcmpl-wire-test","object":"chat.completion.chunk","created":1750000000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"ok"},'
    b'"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def _chat_echo(request: httpx2.Request) -> httpx2.Response:
    """A minimal, valid reply to any chat request: an SSE stream when one was asked for."""
    body = orjson.loads(request.content)
    if body.get("stream") is True:
        return httpx2.Response(200, content=_MINI_SSE, headers={"content-type": "text/event-stream"})
    return httpx2.Response(
        200, content=orjson.dumps(_MINI_COMPLETION), headers={"content-type": "application/json"}
    )


def _embeddings_echo(request: httpx2.Request) -> httpx2.Response:
    """One small vector per input, in the encoding the request asked for."""
    body = orjson.loads(request.content)
    raw_input = body.get("input")
    count = (
        len(raw_input)
        if isinstance(raw_input, list) and raw_input and isinstance(raw_input[0], str | list)
        else 1
    )
    vector = [0.25, -0.5, 0.75, 1.0]
    embedding: Any = vector
    if body.get("encoding_format") == "base64":
        embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    reply = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": embedding} for i in range(count)],
        "model": body.get("model") or "deployment-model",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    return httpx2.Response(200, content=orjson.dumps(reply), headers={"content-type": "application/json"})


def _send_chat(client: openai.OpenAI, kwargs: Mapping[str, Any]) -> None:
    """Call ``chat.completions.create`` and, for a stream, read it to the end."""
    result: object = client.chat.completions.create(**kwargs)
    if isinstance(result, openai.Stream):
        with result:
            for _ in result:
                pass


# ---------------------------------------------------------------------------------------------- chat requests

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_local_time",
        "description": "Local time in a timezone.",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}
PIXEL_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
CHAT_CASES: dict[str, dict[str, Any]] = {
    "system-user-sampling": {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Name three rivers in Europe."},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 256,
        "stop": ["\n\n", "END"],
        "seed": 42,
        "n": 2,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "user": "user-7781",
        "metadata": {"feature": "rivers"},
        "store": True,
    },
    "developer-then-system-run": {
        "model": "o4-mini",
        "messages": [
            {"role": "developer", "content": "Answer in French."},
            {
                "role": "system",
                "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": " Very."}],
            },
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Bonjour !"},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
        ],
        "max_tokens": 64,
        "reasoning_effort": "low",
    },
    "both-max-token-keys": {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Count to five."}],
        "max_tokens": 50,
        "max_completion_tokens": 80,
        "stop": "###",
    },
    "tool-round-trip": {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Use the tools when helpful."},
            {"role": "user", "content": "Weather and time in Paris?", "name": "alice"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_w1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"c"}'},
                    },
                    {
                        "id": "call_t1",
                        "type": "function",
                        "function": {"name": "get_local_time", "arguments": '{"tz":"Europe/Paris"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_w1", "content": '{"temp":18,"sky":"clear"}'},
            {"role": "tool", "tool_call_id": "call_t1", "content": [{"type": "text", "text": "14:05"}]},
            {"role": "assistant", "content": "18 °C and clear; it is 14:05."},
            {"role": "user", "content": "Thanks, and in Oslo?"},
        ],
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    },
    "image-audio-file-parts": {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these pictures."},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": PIXEL_PNG, "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}},
                    {"type": "file", "file": {"file_id": "file-abc123"}},
                ],
            }
        ],
        "max_completion_tokens": 300,
    },
    "named-tool-json-schema": {
        "model": "gpt-4o-2024-08-06",
        "messages": [{"role": "user", "content": "Weather in Lyon, in celsius."}],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "weather_answer",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"summary": {"type": "string"}},
                    "required": ["summary"],
                    "additionalProperties": False,
                },
            },
        },
        "max_completion_tokens": 2000,
    },
    "tool-choice-none": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Just chat, no tools."}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "none",
    },
    "tool-choice-auto": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Weather in Rome?"}],
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "top_logprobs": 2,
    },
    "explicit-stream-false": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "No streaming, please."}],
        "stream": False,
        "service_tier": "flex",
    },
    "stream-without-stream-options": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me a joke."}],
        "stream": True,
    },
    "stream-with-usage-off": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me a joke."}],
        "stream": True,
        "stream_options": {"include_usage": False},
    },
    "stream-with-usage-on": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me a joke."}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 100,
    },
    "extra-body-vllm-keys": {
        "model": "Qwen/Qwen3-8B",
        "messages": [{"role": "user", "content": "Reply with JSON."}],
        "temperature": 0.7,
        "extra_body": {
            "top_k": 20,
            "min_p": 0.05,
            "repetition_penalty": 1.05,
            "chat_template_kwargs": {"enable_thinking": False},
            "guided_json": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        },
    },
    "extra-headers": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "ping"}],
        "extra_headers": {"X-Trace-Id": "trace-42", "OpenAI-Project": "proj_demo"},
        "extra_body": {"prompt_cache_key": "pk-1", "safety_identifier": "sid-9"},
    },
}


def _expected_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not content:
        return ""
    return "".join(part["text"] for part in content if part.get("type") == "text")


def _expected_system(messages: Sequence[Mapping[str, Any]]) -> str | None:
    texts: list[str] = []
    for message in messages:
        if message.get("role") not in ("system", "developer"):
            break
        texts.append(_expected_text(message.get("content")))
    return "\n\n".join(texts) if texts else None


def _check_part(decoded: Any, sent: Mapping[str, Any]) -> None:
    kind = sent["type"]
    if kind == "text":
        assert isinstance(decoded, TextPart)
        assert decoded.text == sent["text"]
    elif kind == "image_url":
        assert isinstance(decoded, ImagePart)
        assert decoded.url == sent["image_url"]["url"]
        assert decoded.detail == sent["image_url"].get("detail")
        if sent["image_url"]["url"].startswith("data:image/png"):
            assert decoded.media_type == "image/png"
    elif kind == "input_audio":
        assert decoded.kind == "audio"
        assert decoded.data == sent["input_audio"]["data"]
        assert decoded.format == sent["input_audio"]["format"]
    elif kind == "file":
        assert decoded.kind == "file"
        assert decoded.file_id == sent["file"].get("file_id")
    else:  # pragma: no cover - the cases above use only these part types
        raise AssertionError(f"no check for part type {kind!r}")


def _check_message(decoded: Message, sent: Mapping[str, Any]) -> None:
    assert decoded.role == sent["role"]
    assert decoded.name == sent.get("name")
    assert decoded.tool_call_id == sent.get("tool_call_id")
    content = sent.get("content")
    if content is None or isinstance(content, str):
        assert decoded.content == content
    else:
        assert isinstance(decoded.content, tuple)
        assert len(decoded.content) == len(content)
        for part, sent_part in zip(decoded.content, content, strict=True):
            _check_part(part, sent_part)
    sent_calls = sent.get("tool_calls") or []
    assert [(c.id, c.name, c.arguments_raw) for c in decoded.tool_calls] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in sent_calls
    ]
    assert [c.arguments for c in decoded.tool_calls] == [
        json.loads(c["function"]["arguments"]) for c in sent_calls
    ]


def _check_chat_request(
    request: httpx2.Request, body: dict[str, Any], kwargs: Mapping[str, Any], model: str | None
) -> AnnotatedLlmRequest:
    """Everything a decoded Chat Completions request must say about what the SDK was asked to send."""
    url = str(request.url)
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    routed = nemoflow.resolve_codec(request.method, url)
    assert routed is not None and routed.name == "openai-chat"
    assert nemoflow.resolve_codec(request.method, url, body) is routed

    decoded = CHAT.decode(body, url=url)
    assert decoded.operation == "chat"
    assert decoded.model == model
    assert decoded.stream is bool(kwargs.get("stream"))
    messages: list[dict[str, Any]] = kwargs["messages"]
    assert decoded.system == _expected_system(messages)
    assert [m.role for m in decoded.messages] == [m["role"] for m in messages]
    for message, sent in zip(decoded.messages, messages, strict=True):
        _check_message(message, sent)

    extra_body: Mapping[str, Any] = kwargs.get("extra_body") or {}
    sent_args = {**kwargs, **extra_body}
    params = decoded.params
    assert params.max_tokens == sent_args.get("max_completion_tokens", sent_args.get("max_tokens"))
    stop = sent_args.get("stop")
    assert params.stop == (None if stop is None else (stop,) if isinstance(stop, str) else tuple(stop))
    for name in ("temperature", "top_p", "top_k", "seed", "n", "presence_penalty", "frequency_penalty"):
        assert getattr(params, name) == sent_args.get(name), name
    assert params.response_format == sent_args.get("response_format")
    assert params.reasoning_effort == sent_args.get("reasoning_effort")

    tools = sent_args.get("tools") or []
    assert [t.name for t in decoded.tools] == [t["function"]["name"] for t in tools]
    assert [t.parameters for t in decoded.tools] == [t["function"].get("parameters") for t in tools]
    assert [t.strict for t in decoded.tools] == [t["function"].get("strict") for t in tools]
    choice = sent_args.get("tool_choice")
    if choice is None:
        assert decoded.tool_choice is None
    elif isinstance(choice, str):
        assert decoded.tool_choice is not None
        assert (decoded.tool_choice.mode, decoded.tool_choice.name) == (choice, None)
    else:
        assert decoded.tool_choice is not None
        assert (decoded.tool_choice.mode, decoded.tool_choice.name) == ("tool", choice["function"]["name"])

    # Keys the model does not name travel in ``extra``, unchanged; named keys never do.
    assert dict(decoded.extra) == {key: value for key, value in body.items() if key not in CHAT_NAMED_KEYS}
    for key, value in extra_body.items():
        if key not in CHAT_NAMED_KEYS:
            assert decoded.extra[key] == value

    encoded = CHAT.encode(decoded, body, url=url)
    if decoded.stream and "stream_options" not in body:
        assert encoded == {**body, "stream_options": {"include_usage": True}}
        assert "stream_options" not in body  # encode did not mutate the original
    else:
        assert encoded is body
    return decoded


@pytest.mark.parametrize("case", list(CHAT_CASES), ids=list(CHAT_CASES))
def test_chat_request_sent_by_sdk(case: str) -> None:
    kwargs = CHAT_CASES[case]
    server = FakeServer(_chat_echo)
    with server.openai_client() as client:
        _send_chat(client, kwargs)
    assert len(server.requests) == 1
    request = server.last
    body = server.last_body()
    assert str(request.url) == f"{OPENAI_BASE_URL}/chat/completions"
    # The SDK forwards what it was given: extra_body keys at top level, extra_headers as headers.
    for key, value in (kwargs.get("extra_body") or {}).items():
        assert body[key] == value
    for header, value in (kwargs.get("extra_headers") or {}).items():
        assert request.headers[header] == value
        assert header not in body
    _check_chat_request(request, body, kwargs, kwargs["model"])


AZURE_CHAT_KWARGS: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You answer HR questions."},
        {"role": "user", "content": "How many vacation days do I have?"},
    ],
    "max_completion_tokens": 200,
    "tools": [TIME_TOOL],
    "tool_choice": "auto",
}


@pytest.mark.parametrize(
    ("deployment", "omit_model", "expected_model", "expected_path"),
    [
        pytest.param(
            "gpt-4o-prod", False, "gpt-4o", "/openai/deployments/gpt-4o-prod/", id="deployment-model-in-body"
        ),
        pytest.param(
            "gpt-4o-prod", True, "gpt-4o-prod", "/openai/deployments/gpt-4o-prod/", id="deployment-no-model"
        ),
        pytest.param(None, False, "gpt-4o", "/openai/deployments/gpt-4o/", id="model-routed-deployment"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_chat_request_sent_by_azure_sdk(
    deployment: str | None, omit_model: bool, expected_model: str, expected_path: str, stream: bool
) -> None:
    kwargs: dict[str, Any] = dict(AZURE_CHAT_KWARGS)
    if stream:
        kwargs["stream"] = True
    if omit_model:
        kwargs["extra_body"] = {"model": openai.omit}
    server = FakeServer(_chat_echo)
    with server.azure_client(deployment) as client:
        _send_chat(client, kwargs)
    request = server.last
    body = server.last_body()
    assert request.url.path == f"{expected_path}chat/completions"
    assert request.url.params["api-version"] == AZURE_API_VERSION
    assert ("model" in body) is not omit_model
    checked = {key: value for key, value in kwargs.items() if key != "extra_body"}
    _check_chat_request(request, body, checked, expected_model)


def _client_for_fixture_url(server: FakeServer, url: str | None) -> openai.OpenAI:
    marker = "/openai/deployments/"
    if url and marker in url:
        deployment = url.split(marker, 1)[1].split("/", 1)[0]
        return server.azure_client(deployment)
    return server.openai_client()


def _split_sdk_kwargs(create: Callable[..., Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a wire body into SDK keyword arguments: unknown keys go through ``extra_body``."""
    accepted = set(inspect.signature(create).parameters) - {
        "extra_body",
        "extra_headers",
        "extra_query",
        "timeout",
    }
    kwargs = {key: value for key, value in body.items() if key in accepted}
    extra: dict[str, Any] = {key: value for key, value in body.items() if key not in accepted}
    if "model" not in body:
        kwargs["model"] = "placeholder"
        extra["model"] = openai.omit
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


@pytest.mark.parametrize("path", _fixture_params("openai-chat", "request"))
def test_chat_request_fixture_replayed_through_sdk(path: Path) -> None:
    """Every request fixture is a body the SDK really sends (same JSON), and decodes the same from it."""
    fixture = _load(path)
    wire: dict[str, Any] = fixture["input"]
    server = FakeServer(_chat_echo)
    with _client_for_fixture_url(server, fixture.get("url")) as client:
        _send_chat(client, _split_sdk_kwargs(client.chat.completions.create, wire))
    body = server.last_body()
    assert body == wire
    url = str(server.last.url)
    routed = nemoflow.resolve_codec("POST", url)
    assert routed is not None and routed.name == "openai-chat"
    from_sdk = CHAT.decode(body, url=url)
    from_fixture = CHAT.decode(wire, url=fixture.get("url"))
    assert nemoflow.as_dict(from_sdk) == nemoflow.as_dict(from_fixture)
    encoded = CHAT.encode(from_sdk, body, url=url)
    if from_sdk.stream and "stream_options" not in body:
        assert encoded == {**body, "stream_options": {"include_usage": True}}
    else:
        assert encoded is body


# ---------------------------------------------------------------------------------------- embeddings requests

EMBEDDING_CASES: dict[str, dict[str, Any]] = {
    "single-string-default-format": {"model": "text-embedding-3-small", "input": "The food was delicious."},
    "strings-dimensions-float": {
        "model": "text-embedding-3-large",
        "input": ["red running shoes", "blue hiking boots"],
        "dimensions": 256,
        "encoding_format": "float",
        "user": "user-2f9c1a",
    },
    "token-array-base64": {
        "model": "text-embedding-ada-002",
        "input": [791, 3691, 574, 18406, 323],
        "encoding_format": "base64",
    },
    "token-arrays": {"model": "text-embedding-3-small", "input": [[9906, 1917], [15339, 1070, 0], [13347]]},
    "extra-body-compatible-server": {
        "model": "nvidia/nv-embedqa-e5-v5",
        "input": ["what is a codec?"],
        "encoding_format": "float",
        "extra_body": {"input_type": "query", "truncate": "END"},
    },
}


def _expected_inputs(raw: Any) -> tuple[str | tuple[int, ...], ...]:
    if isinstance(raw, str):
        return (raw,)
    if raw and all(isinstance(item, int) for item in raw):
        return (tuple(raw),)
    return tuple(item if isinstance(item, str) else tuple(item) for item in raw)


def _check_embeddings_request(
    request: httpx2.Request, body: dict[str, Any], model: str | None, sent_input: Any
) -> AnnotatedLlmRequest:
    url = str(request.url)
    routed = nemoflow.resolve_codec(request.method, url)
    assert routed is not None and routed.name == "openai-embeddings"
    assert nemoflow.resolve_codec(request.method, url, body) is routed
    decoded = EMBEDDINGS.decode(body, url=url)
    assert decoded.operation == "embeddings"
    assert decoded.model == model
    assert decoded.inputs == _expected_inputs(sent_input)
    assert decoded.params.dimensions == body.get("dimensions")
    assert decoded.params.encoding_format == body.get("encoding_format")
    assert decoded.messages == () and decoded.tools == () and decoded.stream is False
    assert dict(decoded.extra) == {
        key: value for key, value in body.items() if key not in EMBEDDINGS_NAMED_KEYS
    }
    assert EMBEDDINGS.encode(decoded, body, url=url) is body
    return decoded


@pytest.mark.parametrize("case", list(EMBEDDING_CASES), ids=list(EMBEDDING_CASES))
def test_embeddings_request_sent_by_sdk(case: str) -> None:
    kwargs = EMBEDDING_CASES[case]
    server = FakeServer(_embeddings_echo)
    with server.openai_client() as client:
        result = client.embeddings.create(**kwargs)
    body = server.last_body()
    assert str(server.last.url) == f"{OPENAI_BASE_URL}/embeddings"
    # The SDK asks for base64 vectors unless told otherwise (and decodes them back to floats itself).
    assert body["encoding_format"] == kwargs.get("encoding_format", "base64")
    for key, value in (kwargs.get("extra_body") or {}).items():
        assert body[key] == value
    decoded = _check_embeddings_request(server.last, body, kwargs["model"], kwargs["input"])
    assert decoded.params.encoding_format == body["encoding_format"]
    assert decoded.extra.get("user") == kwargs.get("user")
    assert len(result.data) == len(decoded.inputs or ())


@pytest.mark.parametrize("omit_model", [False, True], ids=["model-in-body", "no-model"])
def test_embeddings_request_sent_by_azure_sdk(omit_model: bool) -> None:
    server = FakeServer(_embeddings_echo)
    extra_body: dict[str, Any] = {"model": openai.omit} if omit_model else {}
    with server.azure_client("text-embedding-3-large-prod") as client:
        client.embeddings.create(
            model="text-embedding-3-large",
            input=["Quarterly revenue grew 12%."],
            dimensions=1024,
            extra_body=extra_body,
        )
    body = server.last_body()
    assert server.last.url.path == "/openai/deployments/text-embedding-3-large-prod/embeddings"
    expected_model = "text-embedding-3-large-prod" if omit_model else "text-embedding-3-large"
    _check_embeddings_request(server.last, body, expected_model, ["Quarterly revenue grew 12%."])


def _model_named_by(body: Mapping[str, Any], url: str) -> str | None:
    """The model a request names: its body's, else the Azure deployment in its URL."""
    model = body.get("model")
    if isinstance(model, str):
        return model
    marker = "/openai/deployments/"
    return url.split(marker, 1)[1].split("/", 1)[0] if marker in url else None


@pytest.mark.parametrize("path", _fixture_params("openai-embeddings", "request"))
def test_embeddings_request_fixture_replayed_through_sdk(path: Path) -> None:
    fixture = _load(path)
    wire: dict[str, Any] = fixture["input"]
    server = FakeServer(_embeddings_echo)
    with _client_for_fixture_url(server, fixture.get("url")) as client:
        client.embeddings.create(**_split_sdk_kwargs(client.embeddings.create, wire))
    body = server.last_body()
    # The only change the SDK makes: it asks for base64 when the caller named no encoding.
    assert body == {**wire, "encoding_format": wire.get("encoding_format", "base64")}
    url = str(server.last.url)
    from_sdk = _check_embeddings_request(server.last, body, _model_named_by(wire, url), wire["input"])
    from_fixture = EMBEDDINGS.decode(wire, url=fixture.get("url"))
    assert from_sdk.inputs == from_fixture.inputs
    assert from_sdk.model == from_fixture.model


# --------------------------------------------------------------------------------------------- chat responses


def _sdk_extra(model: Any) -> dict[str, Any]:
    extra = getattr(model, "model_extra", None)
    return dict(extra) if isinstance(extra, dict) else {}


def _sdk_reasoning(fields: Mapping[str, Any]) -> str | None:
    for key in ("reasoning_content", "reasoning"):
        value = fields.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _check_text(ours: str | None, reasoning: str | None, sdk_content: object) -> None:
    """Our text against the SDK's content: equal unless ``<think>`` markup had to be split out."""
    if sdk_content is None:
        assert ours is None
    elif isinstance(sdk_content, str):
        if "think>" in sdk_content:
            assert ours is None or (ours in sdk_content and "think>" not in ours)
            assert reasoning is not None and reasoning in sdk_content
        else:
            assert ours == (sdk_content or None)
    else:
        # Array content (Mistral): the SDK keeps the parts as sent; text parts make the reply.
        assert isinstance(sdk_content, list)
        texts = [p["text"] for p in sdk_content if isinstance(p, dict) and p.get("type") == "text"]
        assert ours == ("".join(texts) or None)


def _check_usage(ours: Usage, sdk: CompletionUsage | None) -> None:
    if sdk is None:
        assert (ours.prompt_tokens, ours.completion_tokens, ours.total_tokens) == (None, None, None)
        return
    assert ours.prompt_tokens == sdk.prompt_tokens
    assert ours.completion_tokens == sdk.completion_tokens
    assert ours.total_tokens == sdk.total_tokens
    prompt_details = sdk.prompt_tokens_details
    if prompt_details is not None and prompt_details.cached_tokens is not None:
        assert ours.cache_read_tokens == prompt_details.cached_tokens
    if prompt_details is not None and prompt_details.cache_write_tokens is not None:
        assert ours.cache_write_tokens == prompt_details.cache_write_tokens
    completion_details = sdk.completion_tokens_details
    if completion_details is not None and completion_details.reasoning_tokens is not None:
        assert ours.reasoning_tokens == completion_details.reasoning_tokens


def _sdk_tool_calls(message: ChatCompletionMessage) -> list[tuple[str | None, str, object]]:
    """(id, name, arguments) of the SDK's client tool calls, nameless ones left out as the contract says."""
    calls: list[tuple[str | None, str, object]] = []
    for call in message.tool_calls or []:
        if call.type == "custom":  # free-form tools: the input text stands for the arguments
            if call.custom.name:
                calls.append((call.id, call.custom.name, call.custom.input))
        elif call.function.name:
            calls.append((call.id, call.function.name, call.function.arguments))
    if not calls and message.function_call is not None and message.function_call.name:
        calls.append((None, message.function_call.name, message.function_call.arguments))
    return calls


def _ours_tool_calls(calls: Sequence[ToolCall]) -> list[tuple[str | None, str, object]]:
    """(id, name, arguments as the wire carried them): the string, or the object some servers send."""
    return [
        (call.id, call.name, call.arguments_raw if call.arguments_raw is not None else call.arguments)
        for call in calls
    ]


def _check_choice(ours: Choice, sdk: Any) -> None:
    message: ChatCompletionMessage = sdk.message
    assert ours.index == sdk.index
    assert ours.finish_reason_raw == sdk.finish_reason
    assert ours.role == message.role
    assert ours.refusal == message.refusal
    reasoning = _sdk_reasoning(_sdk_extra(message))
    if reasoning is not None:
        assert ours.reasoning_text == reasoning
    _check_text(ours.text, ours.reasoning_text, message.content)
    assert _ours_tool_calls(ours.tool_calls) == _sdk_tool_calls(message)
    if ours.tool_calls and sdk.finish_reason in ("stop", "tool_calls", "function_call"):
        # A reply asking for tools is ``tool_calls`` even where a compatible server says "stop".
        assert ours.finish_reason is FinishReason.TOOL_CALLS


@pytest.mark.parametrize("path", _fixture_params("openai-chat", "response"))
def test_chat_response_agrees_with_sdk(path: Path) -> None:
    wire = _load(path)["input"]
    server = FakeServer(_json_reply(200, orjson.dumps(wire)))
    with server.openai_client() as client:
        completion = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert isinstance(completion, ChatCompletion)
    ours = CHAT.decode_response(wire, url=str(server.last.url))
    assert ours.id == completion.id
    assert ours.model == completion.model
    assert ours.created == completion.created
    assert ours.system_fingerprint == completion.system_fingerprint
    assert ours.service_tier == completion.service_tier
    assert len(ours.choices) == len(completion.choices)
    sdk_choices = sorted(completion.choices, key=lambda choice: choice.index)
    for mine, theirs in zip(ours.choices, sdk_choices, strict=True):
        _check_choice(mine, theirs)
    first = sdk_choices[0]
    assert ours.finish_reason_raw == first.finish_reason
    assert ours.text == ours.choices[0].text
    assert _ours_tool_calls(ours.tool_calls) == _sdk_tool_calls(first.message)
    _check_usage(ours.usage, completion.usage)
    cost = _sdk_extra(completion.usage).get("cost") if completion.usage is not None else None
    assert ours.cost == cost


# ----------------------------------------------------------------------------------------------- chat streams


@dataclass
class _SdkCall:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def feed(self, name: str | None, arguments: str | None) -> None:
        if name:
            self.name = name
        if arguments:
            self.arguments.append(arguments)


@dataclass
class _SdkChoice:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _SdkCall] = field(default_factory=dict)
    finish_reason: str | None = None


@dataclass
class _SdkStream:
    """What an application reading the SDK's stream saw."""

    chunks: list[ChatCompletionChunk] = field(default_factory=list)
    choices: dict[int, _SdkChoice] = field(default_factory=dict)
    usage: CompletionUsage | None = None
    error: openai.APIError | None = None

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.chunks.append(chunk)
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices or []:
            state = self.choices.setdefault(choice.index, _SdkChoice())
            delta = choice.delta
            if delta.content:
                state.text.append(delta.content)
            reasoning = _sdk_reasoning(_sdk_extra(delta))
            if reasoning:
                state.reasoning.append(reasoning)
            for call in delta.tool_calls or []:
                slot = state.calls.setdefault(call.index, _SdkCall())
                if call.id:
                    slot.id = call.id
                if call.function is not None:
                    slot.feed(call.function.name, call.function.arguments)
            if delta.function_call is not None:  # deprecated functions API: one call, no id
                state.calls.setdefault(0, _SdkCall()).feed(
                    delta.function_call.name, delta.function_call.arguments
                )
            if choice.finish_reason:
                state.finish_reason = choice.finish_reason

    def last(self, attribute: str) -> str | None:
        values = [getattr(chunk, attribute, None) for chunk in self.chunks]
        strings = [value for value in values if isinstance(value, str) and value]
        return strings[-1] if strings else None


def _read_sdk_stream(sse: bytes) -> tuple[_SdkStream, httpx2.Request]:
    seen = _SdkStream()
    server = FakeServer(_sse_reply(sse))
    with server.openai_client() as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        try:
            with stream:
                for chunk in stream:
                    seen.add(chunk)
        except openai.APIError as exc:
            seen.error = exc
    return seen, server.last


def _our_events(sse: bytes) -> list[Any]:
    decoder = nemoflow.SSEDecoder()
    events = [event for piece in _pieces(sse) for event in decoder.feed(piece)]
    events.extend(decoder.finish())
    return [orjson.loads(event.data) for event in events if event.data != "[DONE]"]


@pytest.mark.parametrize("path", _fixture_params("openai-chat", "stream"))
def test_chat_stream_agrees_with_sdk(path: Path) -> None:
    sse = _load(path)["sse"].encode("utf-8")
    seen, request = _read_sdk_stream(sse)
    ours = CHAT.decode_stream(_pieces(sse), url=str(request.url))

    # Framing: our SSE decoder finds exactly the events the SDK parsed, in order.
    events = _our_events(sse)
    assert [chunk.to_dict() for chunk in seen.chunks] == events[: len(seen.chunks)]

    if seen.error is not None:
        # The SDK stops at an error event: our decode must end the reply in error, with its text kept.
        assert not isinstance(seen.error, openai.APIStatusError)
        assert len(events) > len(seen.chunks)
        assert events[len(seen.chunks)]["error"] == seen.error.body
        assert ours.finish_reason is FinishReason.ERROR
        assert ours.error is not None
        assert ours.error.message == seen.error.message
        assert ours.error.code == seen.error.code
        assert ours.error.type == seen.error.type
    else:
        assert len(seen.chunks) == len(events)
        assert ours.error is None
        assert ours.finish_reason is not FinishReason.ERROR

    assert ours.id == seen.last("id")
    assert ours.model == seen.last("model")
    assert [choice.index for choice in ours.choices] == sorted(seen.choices)
    for mine in ours.choices:
        theirs = seen.choices[mine.index]
        joined = "".join(theirs.text)
        if "think>" not in joined:
            assert mine.text == (joined or None)
        if theirs.reasoning:
            assert mine.reasoning_text == "".join(theirs.reasoning)
        sdk_calls = [
            (call.id, call.name, "".join(call.arguments))
            for _, call in sorted(theirs.calls.items())
            if call.name
        ]
        assert _ours_tool_calls(mine.tool_calls) == sdk_calls
        if seen.error is None:
            assert mine.finish_reason_raw == theirs.finish_reason
    if ours.choices:
        first = seen.choices[ours.choices[0].index]
        assert ours.text == ours.choices[0].text
        if seen.error is None:
            assert ours.finish_reason_raw == first.finish_reason
    _check_usage(ours.usage, seen.usage)
    cost = _sdk_extra(seen.usage).get("cost") if seen.usage is not None else None
    assert ours.cost == cost


# ----------------------------------------------------------------------------------------------------- errors


def _error_cases() -> list[Any]:
    return _fixture_params("openai-chat", "error") + _fixture_params("openai-embeddings", "error")


@pytest.mark.parametrize("path", _error_cases())
def test_error_class_matches_kind(path: Path) -> None:
    fixture = _load(path)
    status: int = fixture["status"]
    headers: dict[str, str] = fixture.get("headers") or {}
    raw = _error_body_bytes(fixture["body"])
    server = FakeServer(_json_reply(status, raw, headers))
    embeddings = path.parent.name == "openai-embeddings"
    with server.openai_client() as client, pytest.raises(openai.APIStatusError) as caught:
        if embeddings:
            client.embeddings.create(model="text-embedding-3-small", input="hi")
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert len(server.requests) == 1, "max_retries=0: the SDK must not retry"
    codec: LlmCodec = EMBEDDINGS if embeddings else CHAT
    ours = codec.decode_error(status, headers, raw, url=str(server.last.url))
    exc = caught.value
    assert exc.status_code == status == ours.status

    sdk_class = type(exc)
    assert sdk_class in SDK_ERROR_KINDS, f"the SDK raised {sdk_class.__name__}, which has no kind mapping"
    allowed = SDK_ERROR_KINDS[sdk_class]
    if status in GATEWAY_TIMEOUT_STATUSES:
        allowed = allowed | {ErrorKind.TIMEOUT}
    assert ours.kind in allowed, f"SDK raised {sdk_class.__name__} but our kind is {ours.kind}"

    # The wait the server asked for, as the SDK's retry logic reads the same headers.
    sdk_wait = client._parse_retry_after_header(exc.response.headers)
    if sdk_wait is None or sdk_wait <= 0:
        assert ours.retry_after is None
    else:
        assert ours.retry_after == pytest.approx(sdk_wait, abs=1.0)

    # The provider's own words, as both sides read them.
    if isinstance(exc.body, dict):
        assert ours.code == exc.code
        assert ours.type == exc.type
        assert ours.param == exc.param
        assert ours.message is not None
        assert exc.message == f"Error code: {status} - {ours.message}"
    else:
        assert isinstance(exc.body, str)
        assert ours.body is not None and exc.body.startswith(ours.body.strip())


# --------------------------------------------------------------------------------------- embeddings responses


@pytest.mark.parametrize("path", _fixture_params("openai-embeddings", "response"))
def test_embeddings_response_agrees_with_sdk(path: Path) -> None:
    wire = _load(path)["input"]
    server = FakeServer(_json_reply(200, orjson.dumps(wire)))
    with server.openai_client() as client:
        result = client.embeddings.create(model="text-embedding-3-small", input="hi")
    ours: AnnotatedLlmResponse = EMBEDDINGS.decode_response(wire, url=str(server.last.url))
    assert ours.operation == "embeddings"
    assert ours.model == result.model
    assert ours.embedding_count == len(result.data)
    assert ours.embedding_dimension == len(result.data[0].embedding)  # the SDK decoded base64 itself
    assert all(len(item.embedding) == ours.embedding_dimension for item in result.data)
    assert ours.usage.prompt_tokens == result.usage.prompt_tokens
    assert ours.usage.total_tokens == result.usage.total_tokens


def test_uncategorized_client_error() -> None:
    """A 4xx the SDK has no class for is a plain APIStatusError; ours still calls it a bad request."""
    server = FakeServer(_json_reply(418, b'{"error": {"message": "teapot", "type": "x", "code": "y"}}'))
    with server.openai_client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert type(caught.value) is openai.APIStatusError
    assert caught.value.status_code == 418
    ours = CHAT.decode_error(418, {}, b'{"error": {"message": "teapot", "type": "x", "code": "y"}}')
    assert ours.kind is ErrorKind.INVALID_REQUEST


# ------------------------------------------------------------------------------------------- edits vs the SDK

EDIT_BASE: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
    ],
    "tools": [WEATHER_TOOL],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "temperature": 0.5,
    "max_completion_tokens": 100,
    "stop": ["END"],
    "metadata": {"team": "search"},
}

Edit = Callable[[AnnotatedLlmRequest], AnnotatedLlmRequest]


def _without(kwargs: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in kwargs.items() if key not in keys}


EDITS: dict[str, tuple[Edit, dict[str, Any]]] = {
    "system-text": (
        lambda r: replace(r, system="You are verbose."),
        {
            **EDIT_BASE,
            "messages": [{"role": "system", "content": "You are verbose."}, EDIT_BASE["messages"][1]],
        },
    ),
    "model": (lambda r: replace(r, model="gpt-4o-mini"), {**EDIT_BASE, "model": "gpt-4o-mini"}),
    "sampling-params": (
        lambda r: replace(
            r, params=replace(r.params, temperature=0.1, max_tokens=64, stop=("STOP", "END"), seed=7)
        ),
        {**EDIT_BASE, "temperature": 0.1, "max_completion_tokens": 64, "stop": ["STOP", "END"], "seed": 7},
    ),
    "drop-tools": (
        lambda r: replace(r, tools=()),
        _without(EDIT_BASE, "tools", "tool_choice", "parallel_tool_calls"),
    ),
    "tool-choice-required": (
        lambda r: replace(r, tool_choice=ToolChoice(mode="required")),
        {**EDIT_BASE, "tool_choice": "required"},
    ),
    "tool-choice-named": (
        lambda r: replace(r, tool_choice=ToolChoice(mode="tool", name="get_weather")),
        {**EDIT_BASE, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    ),
    "append-user-message": (
        lambda r: replace(r, messages=(*r.messages, Message(role="user", content="And in Rome?"))),
        {**EDIT_BASE, "messages": [*EDIT_BASE["messages"], {"role": "user", "content": "And in Rome?"}]},
    ),
    "stream-on": (
        lambda r: replace(r, stream=True),
        {**EDIT_BASE, "stream": True, "stream_options": {"include_usage": True}},
    ),
    "extra-key": (lambda r: replace(r, extra={**r.extra, "user": "u-9"}), {**EDIT_BASE, "user": "u-9"}),
}


def _sdk_body(kwargs: Mapping[str, Any], base_url: str = OPENAI_BASE_URL) -> tuple[dict[str, Any], str]:
    server = FakeServer(_chat_echo)
    with server.openai_client(base_url) as client:
        _send_chat(client, kwargs)
    return server.last_body(), str(server.last.url)


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_edited_request_is_what_the_sdk_sends_for_the_edit(edit: str) -> None:
    """An edit encoded over the SDK's body equals the body the SDK sends when asked for the edited call."""
    change, edited_kwargs = EDITS[edit]
    body, url = _sdk_body(EDIT_BASE)
    snapshot = copy.deepcopy(body)
    encoded = CHAT.encode(change(CHAT.decode(body, url=url)), body, url=url)
    expected, _ = _sdk_body(edited_kwargs)
    assert encoded == expected
    assert body == snapshot  # the original was not touched


@pytest.mark.parametrize(
    ("base_url", "key"),
    [
        pytest.param(OPENAI_BASE_URL, "max_completion_tokens", id="openai"),
        pytest.param("http://localhost:8000/v1", "max_tokens", id="vllm"),
    ],
)
def test_new_max_tokens_goes_where_the_server_expects(base_url: str, key: str) -> None:
    kwargs = _without(EDIT_BASE, "max_completion_tokens")
    body, url = _sdk_body(kwargs, base_url)
    decoded = CHAT.decode(body, url=url)
    assert decoded.params.max_tokens is None
    encoded = CHAT.encode(replace(decoded, params=replace(decoded.params, max_tokens=64)), body, url=url)
    expected, _ = _sdk_body({**kwargs, key: 64}, base_url)
    assert encoded == expected


# ---------------------------------------------------------------------------------------- routing by base URL

COMPATIBLE_BASE_URLS = {
    "openai": OPENAI_BASE_URL,
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "vllm": "http://localhost:8000/v1",
    "ollama": "http://localhost:11434/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
    "llamacpp-root": "http://127.0.0.1:8080",
    "deepseek": "https://api.deepseek.com",
}


@pytest.mark.parametrize("base_url", list(COMPATIBLE_BASE_URLS.values()), ids=list(COMPATIBLE_BASE_URLS))
def test_sdk_urls_route_to_openai_codecs(base_url: str) -> None:
    server = FakeServer(
        lambda request: (_embeddings_echo if request.url.path.endswith("/embeddings") else _chat_echo)(
            request
        )
    )
    with server.openai_client(base_url) as client:
        client.chat.completions.create(
            model="some-model",
            messages=[{"role": "user", "content": "hi"}],
            extra_query={"trace": "on"},
        )
        chat_request = server.last
        client.embeddings.create(model="some-embedder", input="hi", encoding_format="float")
        embeddings_request = server.last
    assert chat_request.url.params["trace"] == "on"
    for request, name, model in (
        (chat_request, "openai-chat", "some-model"),
        (embeddings_request, "openai-embeddings", "some-embedder"),
    ):
        url = str(request.url)
        assert url.startswith(base_url)
        codec = nemoflow.resolve_codec(request.method, url)
        assert codec is not None and codec.name == name
        assert codec.decode(orjson.loads(request.content), url=url).model == model


# ----------------------------------------------------------------------------------------- structured outputs


class CityAnswer(pydantic.BaseModel):
    city: str
    population: int


def test_parse_helper_request_and_reply() -> None:
    """``parse()`` writes the json_schema itself: the codec keeps it whole and reads the typed reply."""
    reply = {**_MINI_COMPLETION}
    reply["choices"] = [
        {
            "index": 0,
            "message": {"role": "assistant", "content": '{"city":"Paris","population":2102650}'},
            "finish_reason": "stop",
        }
    ]
    server = FakeServer(_json_reply(200, orjson.dumps(reply)))
    with server.openai_client() as client:
        parsed = client.chat.completions.parse(
            model="gpt-4o-2024-08-06",
            messages=[{"role": "user", "content": "Largest city in France?"}],
            response_format=CityAnswer,
        )
    body = server.last_body()
    url = str(server.last.url)
    decoded = CHAT.decode(body, url=url)
    assert body["response_format"]["type"] == "json_schema"
    assert decoded.params.response_format == body["response_format"]
    assert CHAT.encode(decoded, body, url=url) is body
    answer = parsed.choices[0].message.parsed
    assert answer == CityAnswer(city="Paris", population=2102650)
    ours = CHAT.decode_response(reply, url=url)
    assert ours.text is not None and CityAnswer.model_validate_json(ours.text) == answer


# ---------------------------------------------------------------------------------------------- async streams


@pytest.mark.parametrize("path", _fixture_params("openai-chat", "stream"))
def test_chat_stream_through_async_sdk(path: Path) -> None:
    """The async client reads the same events as our decoder (and fails where our decode says error)."""
    sse = _load(path)["sse"].encode("utf-8")
    server = FakeServer(_async_sse_reply(sse))

    async def read() -> tuple[list[dict[str, object]], openai.APIError | None]:
        chunks: list[dict[str, object]] = []
        async with server.async_openai_client() as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            try:
                async with stream:
                    async for chunk in stream:
                        chunks.append(chunk.to_dict())
            except openai.APIError as exc:
                return chunks, exc
        return chunks, None

    chunks, error = asyncio.run(read())
    events = _our_events(sse)
    assert chunks == events[: len(chunks)]
    ours = CHAT.decode_stream(_pieces(sse), url=str(server.last.url))
    assert (error is not None) == (ours.finish_reason is FinishReason.ERROR)
    if error is None:
        assert len(chunks) == len(events)
