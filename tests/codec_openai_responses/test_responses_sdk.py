"""Outside checks against the official ``openai`` SDK (no network: an ``httpx2.MockTransport``).

* Every response fixture is a valid ``openai.types.responses.Response``, and what the SDK reads from it
  (``output_text``, function calls, usage, status) is what the codec decodes.
* Every stream fixture, served to ``client.responses.create(..., stream=True)``, gives SDK events that agree
  with the codec's decode of the same bytes.
* Requests the SDK really builds (sync and Azure clients) decode to the expected facts and round-trip
  losslessly, and the transport's route resolution picks this codec for their URLs.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types.responses import Response

import nemoflow
from nemoflow import AnnotatedLlmResponse, FinishReason, Message
from nemoflow_codec_openai import OpenAIResponsesCodec
from tests.test_roundtrip import assert_json_equal, rebuilt

CODEC = OpenAIResponsesCodec()
FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "fixtures" / "openai-responses"


def request_path(url: str) -> str:
    """The path of a URL, as the transport hands it to ``match_route``."""
    return urllib.parse.urlsplit(url).path


def _fixtures(kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(FIXTURES.glob("*.json")):
        fixture = json.loads(path.read_text(encoding="utf-8"))
        if fixture["kind"] == kind:
            found.append((path.name, fixture))
    return found


RESPONSE_FIXTURES = _fixtures("response")
STREAM_FIXTURES = _fixtures("stream")
STATUS_REASONS = {
    "completed": {FinishReason.STOP, FinishReason.TOOL_CALLS},
    "failed": {FinishReason.ERROR},
    "queued": {FinishReason.UNKNOWN},
    "in_progress": {FinishReason.UNKNOWN},
}


def test_the_corpus_has_every_kind() -> None:
    assert len(RESPONSE_FIXTURES) >= 10
    assert len(STREAM_FIXTURES) >= 6
    assert len(list(FIXTURES.glob("*.json"))) >= 20


def _assert_agrees_with_sdk(ours: AnnotatedLlmResponse, sdk: Response) -> None:
    assert ours.id == sdk.id
    assert ours.model == sdk.model
    if sdk.created_at is not None:
        assert ours.created == int(sdk.created_at)
    assert (ours.text or "") == sdk.output_text
    sdk_calls = [
        (item.call_id, item.name, item.arguments) for item in sdk.output if item.type == "function_call"
    ]
    our_calls = [
        (call.id, call.name, call.arguments_raw) for call in ours.tool_calls if call.type == "function"
    ]
    assert our_calls == sdk_calls
    sdk_custom = [
        (item.call_id, item.name, item.input) for item in sdk.output if item.type == "custom_tool_call"
    ]
    assert [(c.id, c.name, c.arguments_raw) for c in ours.tool_calls if c.type == "custom"] == sdk_custom
    summaries: list[str] = []
    for item in sdk.output:
        if item.type == "reasoning":
            summaries += [part.text for part in item.summary]
            summaries += [part.text for part in item.content or []]
    assert (ours.reasoning_text or "") == "\n\n".join(text for text in summaries if text)
    refusals = [
        part.refusal
        for item in sdk.output
        if item.type == "message"
        for part in item.content
        if part.type == "refusal"
    ]
    assert ours.refusal == ("".join(refusals) if refusals else None)
    if sdk.usage is None:
        assert not ours.usage.reported
    else:
        assert ours.usage.prompt_tokens == sdk.usage.input_tokens
        assert ours.usage.completion_tokens == sdk.usage.output_tokens
        assert ours.usage.total_tokens == sdk.usage.total_tokens
        details = sdk.usage.input_tokens_details
        assert ours.usage.cache_read_tokens == (details.cached_tokens if details else None)
        output_details = sdk.usage.output_tokens_details
        assert ours.usage.reasoning_tokens == (output_details.reasoning_tokens if output_details else None)
    if sdk.status == "incomplete":
        assert sdk.incomplete_details is not None
        assert ours.finish_reason_raw == sdk.incomplete_details.reason
    elif sdk.status is not None:
        assert ours.finish_reason in STATUS_REASONS[sdk.status]
        assert ours.finish_reason_raw == sdk.status
    if sdk.error is not None:
        assert ours.error is not None
        assert (ours.error.code, ours.error.message) == (sdk.error.code, sdk.error.message)


@pytest.mark.parametrize(("name", "fixture"), RESPONSE_FIXTURES, ids=[name for name, _ in RESPONSE_FIXTURES])
def test_response_fixture_is_a_valid_sdk_response(name: str, fixture: dict[str, Any]) -> None:
    sdk = Response.model_validate(fixture["input"])
    _assert_agrees_with_sdk(CODEC.decode_response(fixture["input"]), sdk)


# ----------------------------------------------------------------------------------------- streams


def _client(handler: Callable[[httpx2.Request], httpx2.Response], **options: Any) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test",
        base_url=options.pop("base_url", "https://api.openai.com/v1"),
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
        **options,
    )


def _sdk_events(sse: str) -> list[Any]:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse.encode("utf-8")
        )

    with _client(handler).responses.create(model="gpt-4.1", input="hi", stream=True) as stream:
        return list(stream)


@pytest.mark.parametrize(("name", "fixture"), STREAM_FIXTURES, ids=[name for name, _ in STREAM_FIXTURES])
def test_stream_fixture_agrees_with_the_sdk_events(name: str, fixture: dict[str, Any]) -> None:
    events = _sdk_events(fixture["sse"])
    ours = CODEC.decode_stream([fixture["sse"].encode("utf-8")])
    assert events, "the SDK saw no event"
    terminal = [
        e for e in events if e.type in ("response.completed", "response.incomplete", "response.failed")
    ]
    errors = [e for e in events if e.type == "error"]
    if terminal:
        snapshot = terminal[-1].response
        if snapshot.output:
            _assert_agrees_with_sdk(ours, snapshot)
        else:
            assert ours.finish_reason in STATUS_REASONS.get(snapshot.status or "", {ours.finish_reason})
    else:
        assert ours.finish_reason is FinishReason.ERROR
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert (ours.text or "") == text
        started = [
            e.item
            for e in events
            if e.type == "response.output_item.added" and e.item.type == "function_call"
        ]
        arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
        assert [(c.id, c.name) for c in ours.tool_calls] == [(item.call_id, item.name) for item in started]
        if started:
            assert ours.tool_calls[-1].arguments_raw == arguments
    if errors:
        assert ours.error is not None
        assert (ours.error.message, ours.error.code) == (errors[-1].message, errors[-1].code)
        assert ours.finish_reason is FinishReason.ERROR
    created = [e for e in events if e.type == "response.created"]
    if created:
        assert ours.id == created[0].response.id


# ----------------------------------------------------------------------------------------- requests


def _capture(call: Callable[[openai.OpenAI], Any], **options: Any) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body of the request the SDK sends for ``call``."""
    captured: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        captured.append((str(request.url), body))
        if body.get("stream"):
            sse = STREAM_FIXTURES[0][1]["sse"]
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse.encode())
        return httpx2.Response(200, json=RESPONSE_FIXTURES[0][1]["input"])

    client_factory = options.pop("client", None)
    client = client_factory(handler) if client_factory else _client(handler, **options)
    result = call(client)
    if isinstance(result, openai.Stream):
        list(result)
    assert len(captured) == 1
    return captured[0]


def responses(client: openai.OpenAI) -> Any:
    """``client.responses``, untyped: the tests pass plain dicts where the SDK declares TypedDicts."""
    return client.responses


def _assert_round_trips(body: dict[str, Any], url: str) -> None:
    decoded = CODEC.decode(body, url=url)
    assert CODEC.encode(decoded, body, url=url) is body
    assert_json_equal(CODEC.encode(rebuilt(decoded), body, url=url), body)


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current temperature for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def test_sdk_streamed_request_with_instructions_tools_reasoning_and_text() -> None:
    url, body = _capture(
        lambda client: responses(client).create(
            model="gpt-5",
            input="Is it warm in Paris?",
            instructions="Answer in one word.",
            tools=[WEATHER_TOOL, {"type": "web_search"}],
            reasoning={"effort": "low", "summary": "auto"},
            text={
                "format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}},
                "verbosity": "low",
            },
            stream=True,
        )
    )
    assert request_path(url) == "/v1/responses"
    assert CODEC.match_route("POST", request_path(url))
    decoded = CODEC.decode(body, url=url)
    assert decoded.stream is True
    assert decoded.system == "Answer in one word."
    assert [(m.role, m.content) for m in decoded.messages] == [("user", "Is it warm in Paris?")]
    assert [(t.name, t.type, t.strict) for t in decoded.tools] == [
        ("get_weather", "function", True),
        ("web_search", "web_search", None),
    ]
    assert decoded.params.reasoning_effort == "low"
    assert decoded.params.response_format == {
        "type": "json_schema",
        "name": "answer",
        "schema": {"type": "object"},
    }
    assert "stream_options" not in CODEC.encode(decoded, body, url=url)  # nothing injected
    _assert_round_trips(body, url)
    # A policy's system edit lands in instructions; the rest of the SDK's body is untouched.
    edited = CODEC.encode(replace(decoded, system="Answer in French."), body, url=url)
    assert edited == {**body, "instructions": "Answer in French."}


def test_sdk_request_with_conversation_items() -> None:
    items: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Need the tool."}],
            "encrypted_content": "gAAA",
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 14}'},
    ]
    url, body = _capture(
        lambda client: responses(client).create(
            model="gpt-5",
            input=items,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "name": "get_weather"},
            parallel_tool_calls=False,
            previous_response_id="resp_prev",
            store=False,
            include=["reasoning.encrypted_content"],
            max_output_tokens=256,
            temperature=0.2,
        )
    )
    decoded = CODEC.decode(body, url=url)
    assert [m.role for m in decoded.messages] == ["user", "assistant", "assistant", "tool"]
    assert decoded.messages[2].tool_calls[0].id == "call_1"
    assert decoded.messages[2].tool_calls[0].arguments == {"city": "Paris"}
    assert decoded.messages[3].tool_call_id == "call_1"
    assert decoded.tool_choice is not None and (decoded.tool_choice.mode, decoded.tool_choice.name) == (
        "tool",
        "get_weather",
    )
    assert decoded.params.max_tokens == 256 and decoded.params.temperature == 0.2
    assert {"parallel_tool_calls", "previous_response_id", "store", "include"} <= set(decoded.extra)
    _assert_round_trips(body, url)
    # Appending a turn adds one item and reuses every item the SDK sent.
    out = CODEC.encode(
        replace(decoded, messages=(*decoded.messages, Message(role="user", content="More?"))), body
    )
    assert all(a is b for a, b in zip(out["input"], body["input"], strict=False))
    assert out["input"][-1] == {"role": "user", "content": "More?"}


@pytest.mark.parametrize(
    "client",
    [
        lambda handler: openai.AzureOpenAI(
            api_key="k",
            azure_endpoint="https://my-resource.openai.azure.com",
            api_version="2025-04-01-preview",
            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
            max_retries=0,
        ),
        lambda handler: _client(handler, base_url="https://my-resource.openai.azure.com/openai/v1/"),
    ],
    ids=["azure-api-version", "azure-v1"],
)
def test_azure_routes_resolve_to_this_codec(client: Any) -> None:
    url, body = _capture(lambda sdk: sdk.responses.create(model="my-deployment", input="hi"), client=client)
    assert request_path(url) in ("/openai/responses", "/openai/v1/responses")
    assert nemoflow.resolve_codec("POST", url, body) is not None
    assert nemoflow.resolve_codec("POST", url, body).name == "openai-responses"  # type: ignore[union-attr]
    assert CODEC.decode(body, url=url).model == "my-deployment"
    _assert_round_trips(body, url)


def test_non_model_response_routes_are_not_claimed() -> None:
    for path in (
        "/v1/responses/resp_123",
        "/v1/responses/resp_123/cancel",
        "/v1/responses/resp_123/input_items",
    ):
        assert not CODEC.match_route("POST", path)
        assert not CODEC.match_route("GET", path)
    assert not CODEC.match_route("GET", "/v1/responses")
    assert CODEC.match_route("POST", "/responses")
