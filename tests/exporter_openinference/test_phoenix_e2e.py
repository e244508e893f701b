"""End to end against a real Arize Phoenix server: spans sent with ``register`` and read back from Phoenix."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import orjson
import pytest

from nemoflow._flow import Flow
from nemoflow_exporter_openinference import register

pytestmark = pytest.mark.e2e

POLL_TIMEOUT_S = 60.0
JSON_HEADERS = {"content-type": "application/json"}
OPENAI_CHAT = "https://api.openai.com/v1/chat/completions"
OPENAI_EMBEDDINGS = "https://api.openai.com/v1/embeddings"
ANTHROPIC_MESSAGES = "https://api.anthropic.com/v1/messages"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

OPENAI_TOOL_REPLY = {
    "id": "chatcmpl-e2e",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_oslo",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 1500,
        "completion_tokens": 20,
        "total_tokens": 1520,
        "prompt_tokens_details": {"cached_tokens": 1024},
    },
}


def _chunk(content: str | None = None, finish: str | None = None, usage: Any = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    choices = [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    event = {"id": "c-e2e", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": choices}
    if usage is not None:
        event["usage"] = usage
    return b"data: " + orjson.dumps(event) + b"\n\n"


STREAM = [
    _chunk("It is "),
    _chunk("cold in Oslo."),
    _chunk(finish="stop"),
    _chunk(usage={"prompt_tokens": 60, "completion_tokens": 6, "total_tokens": 66}),
    b"data: [DONE]\n\n",
]

ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "system": [{"type": "text", "text": "You are a travel agent.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Pack for Oslo in one line."}],
}
ANTHROPIC_REPLY = {
    "id": "msg_e2e",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Warm coat, boots, gloves."}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 50,
        "output_tokens": 40,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 300,
    },
}

EMBEDDINGS_REQUEST = {"model": "text-embedding-3-small", "input": ["fjord", "glacier"]}
EMBEDDINGS_REPLY = {
    "object": "list",
    "data": [
        {"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3, 0.4]},
        {"object": "embedding", "index": 1, "embedding": [0.5, 0.6, 0.7, 0.8]},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 6, "total_tokens": 6},
}


def _json_call(flow: Flow, url: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
    handle = flow.start_call("POST", url, JSON_HEADERS, orjson.dumps(request))
    assert handle is not None, url
    handle.response_started(200, JSON_HEADERS)
    handle.response_body(orjson.dumps(reply))
    handle.finish()


def _stream_call(flow: Flow, request: dict[str, Any]) -> None:
    handle = flow.start_call("POST", OPENAI_CHAT, JSON_HEADERS, orjson.dumps(request))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    for piece in STREAM:
        handle.stream_chunk(piece)
    handle.finish()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _graphql(base_url: str, query: str, variables: dict[str, Any]) -> Any:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql", data=body, headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    assert not answer.get("errors"), answer
    return answer["data"]


def _wait_for_spans(base_url: str, project: str, count: int) -> list[dict[str, Any]]:
    url = f"{base_url}/v1/projects/{project}/spans?limit=100"
    deadline = time.monotonic() + POLL_TIMEOUT_S
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            spans = _get_json(url)["data"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: the project appears with its first span
                raise
        if len(spans) >= count:
            return spans
        time.sleep(0.25)
    names = [span["name"] for span in spans]
    pytest.fail(f"Phoenix has {len(spans)} of {count} spans after {POLL_TIMEOUT_S:.0f} s: {names}")


SPAN_QUERY = """
query ($spanId: String!) {
  getSpanByOtelId(spanId: $spanId) {
    spanKind
    parentId
    tokenCountPrompt
    tokenCountCompletion
    tokenCountTotal
    tokenPromptDetails { cacheRead cacheWrite }
    cumulativeTokenCountTotal
  }
}
"""


def test_phoenix_receives_and_understands_the_spans(phoenix_url: str) -> None:
    project = f"nemoflow-e2e-{uuid.uuid4().hex[:8]}"
    flow = Flow()
    provider = register(endpoint=f"{phoenix_url}/v1/traces", project_name=project, flow=flow)
    try:
        chat_request = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Weather in Oslo?"}],
            "tools": [WEATHER_TOOL],
        }
        with flow.scope("trip-agent", kind="AGENT", session_id="e2e-session"):
            _json_call(flow, OPENAI_CHAT, chat_request, OPENAI_TOOL_REPLY)
            with flow.tool("get_weather", arguments={"city": "Oslo"}, tool_call_id="call_oslo") as tool:
                tool.result = {"temp_c": -3, "sky": "snow"}
            _stream_call(flow, {**chat_request, "stream": True})
        _json_call(flow, ANTHROPIC_MESSAGES, ANTHROPIC_REQUEST, ANTHROPIC_REPLY)
        _json_call(flow, OPENAI_EMBEDDINGS, EMBEDDINGS_REQUEST, EMBEDDINGS_REPLY)
        assert flow.flush(10.0)
        assert provider.force_flush(10_000)
        spans = _wait_for_spans(phoenix_url, project, 6)
    finally:
        flow.shutdown()
        provider.shutdown()

    by_name = {span["name"]: span for span in spans}
    assert len(by_name) == 6, sorted(by_name)
    agent = by_name["trip-agent"]
    planning = by_name["chat gpt-4o-mini-2024-07-18"]
    streamed = by_name["chat gpt-4o-mini"]
    tool_span = by_name["get_weather"]
    claude = by_name["chat claude-sonnet-4-5-20250929"]
    embedding = by_name["embeddings text-embedding-3-small"]

    # Kinds and parentage, as Phoenix stored them.
    assert {name: span["span_kind"] for name, span in by_name.items()} == {
        "trip-agent": "AGENT",
        "chat gpt-4o-mini-2024-07-18": "LLM",
        "chat gpt-4o-mini": "LLM",
        "get_weather": "TOOL",
        "chat claude-sonnet-4-5-20250929": "LLM",
        "embeddings text-embedding-3-small": "EMBEDDING",
    }
    agent_id = agent["context"]["span_id"]
    assert agent["parent_id"] is None
    for child in (planning, streamed, tool_span):
        assert child["parent_id"] == agent_id, child["name"]
        assert child["context"]["trace_id"] == agent["context"]["trace_id"]
    assert claude["parent_id"] is None and embedding["parent_id"] is None
    assert (
        len({claude["context"]["trace_id"], embedding["context"]["trace_id"], agent["context"]["trace_id"]})
        == 3
    )
    assert all(span["status_code"] == "OK" for span in spans)

    # Tool calls: the model's request for a tool, and the tool run answering it.
    p = planning["attributes"]
    assert p["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "get_weather"
    assert p["llm.output_messages.0.message.tool_calls.0.tool_call.id"] == "call_oslo"
    assert json.loads(p["llm.tools.0.tool.json_schema"])["function"]["name"] == "get_weather"
    t = tool_span["attributes"]
    assert t["tool.name"] == "get_weather" and t["tool_call.id"] == "call_oslo"
    assert json.loads(t["output.value"]) == {"temp_c": -3, "sky": "snow"}
    assert streamed["attributes"]["llm.output_messages.0.message.content"] == "It is cold in Oslo."
    assert claude["attributes"]["llm.provider"] == "anthropic"
    assert claude["attributes"]["llm.input_messages.0.message.role"] == "system"

    # Token counts as Phoenix itself reads them (its GraphQL API, which the UI uses).
    def counts(span: dict[str, Any]) -> dict[str, Any]:
        data = _graphql(phoenix_url, SPAN_QUERY, {"spanId": span["context"]["span_id"]})
        found = data["getSpanByOtelId"]
        assert found is not None, span["name"]
        return dict(found)

    planning_counts = counts(planning)
    assert planning_counts["spanKind"] == "llm"
    assert planning_counts["parentId"] == agent_id
    assert (planning_counts["tokenCountPrompt"], planning_counts["tokenCountCompletion"]) == (1500, 20)
    assert planning_counts["tokenCountTotal"] == 1520
    assert planning_counts["tokenPromptDetails"]["cacheRead"] == 1024
    claude_counts = counts(claude)
    assert claude_counts["tokenCountPrompt"] == 50 + 2000 + 300  # every billed input token, cached included
    assert claude_counts["tokenCountCompletion"] == 40
    assert claude_counts["tokenPromptDetails"] == {"cacheRead": 2000, "cacheWrite": 300}
    assert counts(streamed)["tokenCountTotal"] == 66
    # Phoenix totals tokens on LLM spans only; the embedding span still carries its count and model.
    assert embedding["attributes"]["llm.token_count.prompt"] == 6
    assert embedding["attributes"]["embedding.model_name"] == "text-embedding-3-small"
    assert embedding["attributes"]["embedding.embeddings.1.embedding.text"] == "glacier"
    assert counts(agent)["cumulativeTokenCountTotal"] == 1520 + 66
