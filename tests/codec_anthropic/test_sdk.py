"""The anthropic-messages codec checked against the official ``anthropic`` SDK, which nemoflow did not write.

The SDK (2.x, on ``httpx2``) talks to a fake server: an ``httpx2.MockTransport`` given as ``http_client``,
so no socket is opened. Checked in four directions:

* every response fixture is a valid ``anthropic.types.Message`` and decodes to what the SDK parsed;
* every stream fixture, served as ``text/event-stream``, is accepted by the SDK's stream accumulator, and
  ``decode_stream`` agrees with its final message (error events: the SDK raises, we report ``error``);
* every error fixture makes the SDK raise the exception class matching our error kind;
* requests the SDK really builds (``messages.create`` with system blocks, tools, thinking, images,
  ``stream=True``; the Bedrock and Vertex AI clients) route to this codec, decode to the facts passed,
  and encode back to the very same body.
"""

from __future__ import annotations

import inspect
import json
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.resources.messages.messages import Messages
from anthropic.types import Message as SdkMessage

import nemoflow
from nemoflow import AnnotatedLlmResponse, ErrorKind, FinishReason, ImagePart, ReasoningPart, ToolResultPart

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "spec" / "fixtures" / "anthropic-messages"
CODEC = nemoflow.get_codec("anthropic-messages")
API_KEY = "sk-ant-dummy-key-for-tests"
SSE_PIECE = 7

SDK_ERRORS: dict[type[anthropic.APIStatusError], frozenset[ErrorKind]] = {
    anthropic.BadRequestError: frozenset(
        {
            ErrorKind.INVALID_REQUEST,
            ErrorKind.CONTEXT_LENGTH_EXCEEDED,
            ErrorKind.QUOTA_EXCEEDED,
            ErrorKind.CONTENT_FILTER,
        }
    ),
    anthropic.ContentTooLargeError: frozenset({ErrorKind.INVALID_REQUEST}),
    anthropic.PaymentRequiredError: frozenset({ErrorKind.QUOTA_EXCEEDED}),
    anthropic.AuthenticationError: frozenset({ErrorKind.AUTHENTICATION}),
    anthropic.PermissionDeniedError: frozenset({ErrorKind.PERMISSION}),
    anthropic.NotFoundError: frozenset({ErrorKind.NOT_FOUND}),
    anthropic.RateLimitError: frozenset({ErrorKind.RATE_LIMIT, ErrorKind.QUOTA_EXCEEDED}),
    anthropic.InternalServerError: frozenset({ErrorKind.SERVER, ErrorKind.OVERLOADED, ErrorKind.TIMEOUT}),
}
"""Which of our error kinds each SDK exception class stands for (subclasses match their parents)."""


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _fixtures(kind: str) -> list[Any]:
    return [
        pytest.param(_load(p), id=p.name) for p in sorted(FIXTURES.glob("*.json")) if _load(p)["kind"] == kind
    ]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test opened a real socket connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


# ----------------------------------------------------------------------------------------- fake server

Reply = Callable[[httpx2.Request], httpx2.Response]

MINI_MESSAGE = {
    "id": "msg_wire",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
MINI_SSE = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_wire","type":"message",'
    b'"role":"assistant","content":[],"model":"claude-haiku-4-5","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta",'
    b'"delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":1}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def _pieces(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), SSE_PIECE):
        yield data[start : start + SSE_PIECE]


def _echo(request: httpx2.Request) -> httpx2.Response:
    body = orjson.loads(request.content)
    if body.get("stream") is True:
        return httpx2.Response(200, content=MINI_SSE, headers={"content-type": "text/event-stream"})
    return httpx2.Response(
        200, content=orjson.dumps(MINI_MESSAGE), headers={"content-type": "application/json"}
    )


class FakeServer:
    """The far end of an ``httpx2.MockTransport``: records requests and answers with ``reply``."""

    def __init__(self, reply: Reply = _echo) -> None:
        self.reply = reply
        self.requests: list[httpx2.Request] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.requests.append(request)
        return self.reply(request)

    def http(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handle))

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=API_KEY, http_client=self.http(), max_retries=0)

    @property
    def last(self) -> tuple[str, dict[str, Any]]:
        request = self.requests[-1]
        body: dict[str, Any] = orjson.loads(request.content)
        return str(request.url), body


CREATE_PARAMETERS = frozenset(inspect.signature(Messages.create).parameters) - {"self"}


def _create(client: Any, kwargs: Mapping[str, Any]) -> None:
    """``messages.create`` with ``kwargs``; body keys this SDK has no parameter for go in ``extra_body``.

    (SDK 2.x dropped ``temperature``, ``top_p`` and ``top_k`` from the signature; the API still takes them.)
    """
    named = {key: value for key, value in kwargs.items() if key in CREATE_PARAMETERS}
    extra = {key: value for key, value in kwargs.items() if key not in CREATE_PARAMETERS}
    result = client.messages.create(**named, extra_body=extra or None)
    if isinstance(result, anthropic.Stream):
        with result:
            for _ in result:
                pass


# ----------------------------------------------------------------------------------------- responses


@pytest.mark.parametrize("fixture", _fixtures("response"))
def test_response_fixture_is_a_valid_sdk_message(fixture: dict[str, Any]) -> None:
    sdk = SdkMessage.model_validate(fixture["input"])
    ours = CODEC.decode_response(fixture["input"])
    _agree(ours, sdk)


def _agree(ours: AnnotatedLlmResponse, sdk: SdkMessage) -> None:
    """Our decode says what the SDK's parsed message says."""
    texts = [block.text for block in sdk.content if block.type == "text"]
    assert ours.text == ("".join(texts) or None)
    calls = [(b.id, b.name, b.input) for b in sdk.content if b.type == "tool_use"]
    assert [(c.id, c.name, c.arguments) for c in ours.tool_calls] == calls
    thinking = [b.thinking for b in sdk.content if b.type == "thinking" and b.thinking]
    assert ours.reasoning_text == ("\n\n".join(thinking) or None)
    assert (ours.id, ours.model, ours.finish_reason_raw) == (sdk.id, sdk.model, sdk.stop_reason)
    usage = sdk.usage
    prompt = (
        usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    )
    assert (ours.usage.prompt_tokens, ours.usage.completion_tokens) == (prompt, usage.output_tokens)
    assert ours.usage.cache_read_tokens == usage.cache_read_input_tokens
    assert ours.usage.cache_write_tokens == usage.cache_creation_input_tokens


# ----------------------------------------------------------------------------------------- streams


@pytest.mark.parametrize("fixture", _fixtures("stream"))
def test_stream_fixture_is_accepted_by_the_sdk(fixture: dict[str, Any]) -> None:
    sse = fixture["sse"].encode()

    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=_pieces(sse), headers={"content-type": "text/event-stream"})

    client = FakeServer(reply).anthropic()
    ours = CODEC.decode_stream(_pieces(sse))
    kwargs: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if ours.error is not None:
        with pytest.raises(anthropic.APIStatusError) as caught:
            with client.messages.stream(**kwargs) as stream:
                stream.until_done()
        body = caught.value.body
        assert isinstance(body, Mapping)
        assert ours.finish_reason is FinishReason.ERROR and ours.error.type == body["error"]["type"]
        return
    with client.messages.stream(**kwargs) as stream:
        stream.until_done()
        sdk = stream.current_message_snapshot
    if ours.usage.completion_tokens is None:  # a cut-off stream: the SDK keeps message_start's placeholder
        sdk = sdk.model_copy(update={"usage": sdk.usage.model_copy(update={"output_tokens": None})})
    _agree(ours, sdk)


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fixture", _fixtures("error"))
def test_error_fixture_raises_the_matching_sdk_exception(fixture: dict[str, Any]) -> None:
    body = fixture["body"]
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    headers = {"content-type": "application/json", **(fixture.get("headers") or {})}

    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(fixture["status"], content=raw, headers=headers)

    ours = CODEC.decode_error(fixture["status"], fixture.get("headers") or {}, raw)
    with pytest.raises(anthropic.APIStatusError) as caught:
        FakeServer(reply).anthropic().messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    classes = [cls for cls in SDK_ERRORS if isinstance(caught.value, cls)]
    assert classes, f"no mapping for {type(caught.value).__name__}"
    assert ours.kind in SDK_ERRORS[classes[0]], (type(caught.value).__name__, ours.kind)


# ----------------------------------------------------------------------------------------- requests

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "cache_control": {"type": "ephemeral"},
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
SDK_CASES: dict[str, dict[str, Any]] = {
    "system-blocks-tools-thinking-stream": {
        "model": "claude-haiku-4-5",
        "max_tokens": 16000,
        "system": [
            {"type": "text", "text": "You are a weather bot."},
            {"type": "text", "text": "Use metric units.", "cache_control": {"type": "ephemeral"}},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "tools": [WEATHER_TOOL, {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Call the tool.", "signature": "c2ln"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4 °C", "is_error": False}
                ],
            },
        ],
        "metadata": {"user_id": "u-42"},
        "stream": True,
    },
    "image-document-sampling": {
        "model": "claude-opus-4-1",
        "max_tokens": 1024,
        "system": "Describe precisely.",
        "temperature": 0.3,
        "top_k": 20,
        "stop_sequences": ["###"],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {
                        "type": "document",
                        "source": {"type": "url", "url": "https://example.com/a.pdf"},
                        "title": "A",
                    },
                    {"type": "text", "text": "What do these show?"},
                ],
            }
        ],
    },
    "forced-tool": {
        "model": "claude-haiku-4-5",
        "max_tokens": 256,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "messages": [{"role": "user", "content": "Oslo"}],
    },
}


def _check_decoded_case(decoded: Any, kwargs: Mapping[str, Any]) -> None:
    assert decoded.params.max_tokens == kwargs["max_tokens"]
    assert decoded.stream is bool(kwargs.get("stream"))
    system = kwargs.get("system")
    if isinstance(system, list):
        assert decoded.system == "\n\n".join(block["text"] for block in system)
    else:
        assert decoded.system == system
    assert [t.name for t in decoded.tools] == [t["name"] for t in kwargs.get("tools", [])]
    assert len(decoded.messages) == len(kwargs["messages"])
    for message, sent in zip(decoded.messages, kwargs["messages"], strict=True):
        blocks = sent["content"] if isinstance(sent["content"], list) else []
        assert [c.id for c in message.tool_calls] == [b["id"] for b in blocks if b["type"] == "tool_use"]


@pytest.mark.parametrize("name", list(SDK_CASES))
def test_requests_the_sdk_builds_round_trip(name: str) -> None:
    kwargs = SDK_CASES[name]
    server = FakeServer()
    _create(server.anthropic(), kwargs)
    url, body = server.last
    assert body == kwargs  # the SDK sends the parameters as they were given
    assert nemoflow.resolve_codec("POST", url, body) is CODEC
    decoded = CODEC.decode(body, url=url)
    _check_decoded_case(decoded, kwargs)
    assert CODEC.encode(decoded, body, url=url) is body


def test_sdk_built_parts_decode_to_their_facts() -> None:
    server = FakeServer()
    _create(server.anthropic(), SDK_CASES["system-blocks-tools-thinking-stream"])
    decoded = CODEC.decode(server.last[1])
    thinking = decoded.messages[1].content[0]  # type: ignore[index]
    assert isinstance(thinking, ReasoningPart) and (thinking.text, thinking.signature) == (
        "Call the tool.",
        "c2ln",
    )
    result = decoded.messages[2].content[0]  # type: ignore[index]
    assert isinstance(result, ToolResultPart) and (result.tool_call_id, result.content) == ("toolu_1", "4 °C")
    assert decoded.tool_choice is not None and decoded.tool_choice.extra == {
        "disable_parallel_tool_use": True
    }
    _create(server.anthropic(), SDK_CASES["image-document-sampling"])
    image = CODEC.decode(server.last[1]).messages[0].content[0]  # type: ignore[index]
    assert isinstance(image, ImagePart) and (image.media_type, image.data) == ("image/png", PNG)


DIRECT_REQUEST_FIXTURES = [p for p in _fixtures("request") if "api.anthropic.com" in p.values[0]["url"]]
"""Request fixtures sent to api.anthropic.com (Bedrock and Vertex AI bodies have their own clients)."""


@pytest.mark.parametrize("fixture", DIRECT_REQUEST_FIXTURES)
def test_request_fixtures_pass_through_the_sdk_unchanged(fixture: dict[str, Any]) -> None:
    server = FakeServer()
    _create(server.anthropic(), fixture["input"])
    url, body = server.last
    assert body == fixture["input"]
    assert CODEC.encode(CODEC.decode(body, url=url), body, url=url) is body


def _bedrock_reply(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/invoke-with-response-stream"):
        # AWS event-stream framing is out of this codec's scope; a refusal ends the call after capture.
        return httpx2.Response(400, json={"message": "captured"})
    return httpx2.Response(
        200, content=orjson.dumps(MINI_MESSAGE), headers={"content-type": "application/json"}
    )


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "model",
    [
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/ab12",
    ],
)
def test_bedrock_client_requests_route_and_round_trip(stream: bool, model: str) -> None:
    server = FakeServer(_bedrock_reply)
    client = anthropic.AnthropicBedrock(  # a Bedrock API key (bearer token): no SigV4 signing, no boto3
        api_key="bedrock-api-key-dummy",
        aws_region="us-west-2",
        http_client=server.http(),
        max_retries=0,
    )
    kwargs = {**SDK_CASES["forced-tool"], "model": model, "stream": stream}
    try:
        _create(client, kwargs)
    except anthropic.BadRequestError:
        assert stream
    url, body = server.last
    assert "model" not in body and "stream" not in body and isinstance(body["anthropic_version"], str)
    assert CODEC.sniff(body) == "request"
    assert nemoflow.resolve_codec("POST", url, body) is CODEC
    decoded = CODEC.decode(body, url=url)
    assert (decoded.model, decoded.stream) == (model, stream)
    assert decoded.tool_choice is not None and decoded.tool_choice.name == "get_weather"
    assert CODEC.encode(decoded, body, url=url) is body


@pytest.mark.parametrize("stream", [False, True])
def test_vertex_client_requests_route_and_round_trip(stream: bool) -> None:
    server = FakeServer()
    client = anthropic.AnthropicVertex(
        region="us-east5",
        project_id="my-project-123",
        access_token="ya29.dummy",
        http_client=server.http(),
        max_retries=0,
    )
    kwargs = {**SDK_CASES["image-document-sampling"], "model": "claude-sonnet-4@20250514", "stream": stream}
    _create(client, kwargs)
    url, body = server.last
    assert url.endswith(":streamRawPredict" if stream else ":rawPredict")
    assert "model" not in body and isinstance(body["anthropic_version"], str)
    assert nemoflow.resolve_codec("POST", url, body) is CODEC
    decoded = CODEC.decode(body, url=url)
    assert (decoded.model, decoded.stream) == ("claude-sonnet-4@20250514", stream)
    _check_decoded_case(decoded, kwargs)
    assert CODEC.encode(decoded, body, url=url) is body
