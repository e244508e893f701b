"""OpenInferenceExporter driven by a real Flow (records made by the runtime and codecs), and ``register``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from openinference.semconv.resource import ResourceAttributes
from openinference.semconv.trace import MessageAttributes, SpanAttributes, ToolCallAttributes
from opentelemetry import trace as trace_api
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nemoflow._exporters import get_exporter
from nemoflow._flow import Flow, LlmCallHandle
from nemoflow_exporter_openinference import MAX_SPAN_ATTRIBUTES, OpenInferenceExporter, register

CHAT_URL = "https://api.openai.com/v1/chat/completions"
EMBEDDINGS_URL = "https://api.openai.com/v1/embeddings"
JSON_HEADERS = {"content-type": "application/json"}
OUT = SpanAttributes.LLM_OUTPUT_MESSAGES
IN = SpanAttributes.LLM_INPUT_MESSAGES

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def chat_body(**overrides: Any) -> bytes:
    request: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
        ],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
    }
    request.update(overrides)
    return orjson.dumps(request)


TOOL_REPLY = orjson.dumps(
    {
        "id": "chatcmpl-1",
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
                            "id": "call_1",
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
)


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(event) + b"\n\n" for event in events) + b"data: [DONE]\n\n"


def stream_chunk(content: str | None = None, finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    choices = [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "c2",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": choices,
        "usage": usage,
    }


STREAM = sse(
    stream_chunk("It is "),
    stream_chunk("cold."),
    stream_chunk(finish="stop"),
    stream_chunk(usage={"prompt_tokens": 40, "completion_tokens": 4, "total_tokens": 44}),
)


def run_json(flow: Flow, url: str, body: bytes, reply: bytes, status: int = 200) -> None:
    handle = flow.start_call("POST", url, JSON_HEADERS, body)
    assert handle is not None
    handle.response_started(status, JSON_HEADERS)
    handle.response_body(reply)
    handle.finish()


def run_stream(flow: Flow, body: bytes, data: bytes, pieces: int = 5) -> LlmCallHandle:
    handle = flow.start_call("POST", CHAT_URL, JSON_HEADERS, body)
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        handle.stream_chunk(data[start : start + step])
    handle.finish()
    return handle


class Sink:
    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))

    def spans(self) -> dict[str, ReadableSpan]:
        found = {span.name: span for span in self.memory.get_finished_spans()}
        assert len(found) == len(self.memory.get_finished_spans()), "span names are not unique"
        return found


@pytest.fixture
def sink() -> Iterator[Sink]:
    made = Sink()
    yield made
    made.provider.shutdown()


@pytest.fixture
def flow(sink: Sink) -> Iterator[Flow]:
    made = Flow(subscribers=[OpenInferenceExporter(sink.provider)])
    yield made
    made.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    assert span.attributes is not None
    return dict(span.attributes)


def test_agent_chain_tool_and_calls_share_one_trace(flow: Flow, sink: Sink) -> None:
    with flow.scope("trip-agent", kind="AGENT", session_id="sess-7"):
        run_json(flow, CHAT_URL, chat_body(), TOOL_REPLY)
        with flow.scope("answer", kind="CHAIN"):
            with flow.tool("get_weather", arguments={"city": "Oslo"}, tool_call_id="call_1") as tool:
                tool.result = {"temp_c": -3}
            run_stream(flow, chat_body(stream=True), STREAM)
    assert flow.flush(5.0)
    spans = sink.spans()
    assert set(spans) == {
        "trip-agent",
        "answer",
        "get_weather",
        "chat gpt-4o-mini-2024-07-18",
        "chat gpt-4o-mini",
    }
    agent, chain, tool_span = spans["trip-agent"], spans["answer"], spans["get_weather"]
    planning, streamed = spans["chat gpt-4o-mini-2024-07-18"], spans["chat gpt-4o-mini"]
    assert {span.context.trace_id for span in spans.values()} == {agent.context.trace_id}
    assert agent.parent is None

    def parent_of(span: ReadableSpan) -> int | None:
        return span.parent.span_id if span.parent is not None else None

    assert parent_of(planning) == agent.context.span_id
    assert parent_of(chain) == agent.context.span_id
    assert parent_of(tool_span) == chain.context.span_id
    assert parent_of(streamed) == chain.context.span_id
    assert [
        attrs(s)[SpanAttributes.OPENINFERENCE_SPAN_KIND] for s in (agent, chain, tool_span, planning)
    ] == [
        "AGENT",
        "CHAIN",
        "TOOL",
        "LLM",
    ]
    # The planning call: tools offered, a tool call back, cached prompt tokens, a cost from the table.
    p = attrs(planning)
    assert (
        p[f"{OUT}.0.{MessageAttributes.MESSAGE_TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_ID}"] == "call_1"
    )
    assert p[
        f"{OUT}.0.{MessageAttributes.MESSAGE_TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_FUNCTION_NAME}"
    ] == ("get_weather")
    assert p[SpanAttributes.LLM_TOKEN_COUNT_PROMPT] == 1500
    assert p[SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ] == 1024
    assert p[SpanAttributes.LLM_COST_TOTAL] > 0
    assert p[SpanAttributes.SESSION_ID] == "sess-7"
    assert json.loads(p[SpanAttributes.INPUT_VALUE]) == orjson.loads(chat_body())  # the wire request
    assert p[f"{IN}.0.{MessageAttributes.MESSAGE_ROLE}"] == "system"
    assert f"{IN}.2.{MessageAttributes.MESSAGE_ROLE}" not in p  # system text not repeated
    assert json.loads(p[SpanAttributes.METADATA])["scope_path"] == ["trip-agent"]
    # The tool run.
    t = attrs(tool_span)
    assert t[SpanAttributes.TOOL_NAME] == "get_weather" and t[ToolCallAttributes.TOOL_CALL_ID] == "call_1"
    assert json.loads(t[SpanAttributes.OUTPUT_VALUE]) == {"temp_c": -3}
    # The streamed call: text assembled from the chunks, usage from the injected usage chunk.
    s = attrs(streamed)
    assert s[f"{OUT}.0.{MessageAttributes.MESSAGE_CONTENT}"] == "It is cold."
    assert s[SpanAttributes.OUTPUT_VALUE] == "It is cold."
    assert s[SpanAttributes.LLM_TOKEN_COUNT_TOTAL] == 44
    metadata = json.loads(s[SpanAttributes.METADATA])
    assert metadata["stream"] is True and metadata["time_to_first_token_ms"] >= 0
    assert metadata["scope_path"] == ["trip-agent", "answer"]
    assert [event.name for event in streamed.events] == ["first_token"]


def test_spans_are_made_on_the_delivery_thread(sink: Sink) -> None:
    seen: list[str] = []

    class Recording(OpenInferenceExporter):
        def on_call(self, call: Any) -> None:
            seen.append(threading.current_thread().name)
            super().on_call(call)

    flow = Flow(subscribers=[Recording(sink.provider)])
    try:
        run_json(flow, CHAT_URL, chat_body(), TOOL_REPLY)
        assert flow.flush(5.0)
    finally:
        flow.shutdown()
    assert seen == ["nemoflow-delivery"]
    assert len(sink.memory.get_finished_spans()) == 1


def test_calls_and_scopes_nest_under_the_applications_span(flow: Flow, sink: Sink) -> None:
    tracer = sink.provider.get_tracer("app")
    with tracer.start_as_current_span("http-request") as app_span:
        run_json(flow, CHAT_URL, chat_body(), TOOL_REPLY)
        with flow.scope("agent"):
            pass
    assert flow.flush(5.0)
    spans = sink.spans()
    app = app_span.get_span_context()
    for name in ("chat gpt-4o-mini-2024-07-18", "agent"):
        span = spans[name]
        assert span.parent is not None and span.parent.span_id == app.span_id, name
        assert span.context.trace_id == app.trace_id


def test_error_response_and_embeddings_through_the_flow(flow: Flow, sink: Sink) -> None:
    error = orjson.dumps(
        {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    )
    run_json(flow, CHAT_URL, chat_body(), error, status=429)
    embed_body = orjson.dumps({"model": "text-embedding-3-small", "input": ["alpha", "beta"]})
    embed_reply = orjson.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]},
                {"object": "embedding", "index": 1, "embedding": [0.4, 0.5, 0.6]},
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        }
    )
    run_json(flow, EMBEDDINGS_URL, embed_body, embed_reply)
    assert flow.flush(5.0)
    spans = sink.spans()
    failed = spans["chat gpt-4o-mini"]
    assert failed.status.status_code is trace_api.StatusCode.ERROR
    (event,) = failed.events
    assert event.name == "exception" and event.attributes is not None
    assert "Rate limit reached" in str(event.attributes["exception.message"])
    embedding = attrs(spans["embeddings text-embedding-3-small"])
    assert embedding[SpanAttributes.OPENINFERENCE_SPAN_KIND] == "EMBEDDING"
    assert embedding[SpanAttributes.LLM_TOKEN_COUNT_PROMPT] == 4
    assert embedding["embedding.embeddings.1.embedding.text"] == "beta"
    assert json.loads(embedding[SpanAttributes.OUTPUT_VALUE]) == {
        "embedding_count": 2,
        "embedding_dimension": 3,
    }


def test_registered_as_the_openinference_exporter() -> None:
    assert get_exporter("openinference") is OpenInferenceExporter


# ------------------------------------------------------------------------------------------- OTLP


class Collector:
    """A loopback OTLP/HTTP receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.requests.append(request)
                collector.headers.append({key.lower(): value for key, value in self.headers.items()})
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def spans(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """``(resource attributes, span attributes)`` of every span received."""
        out = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        out.append((resource, {kv.key: _value(kv.value) for kv in span.attributes}))
        return out


def _value(value: AnyValue) -> Any:
    return getattr(value, str(value.WhichOneof("value")))


@pytest.fixture
def collector() -> Iterator[Collector]:
    made = Collector()
    yield made
    made.close()


def test_register_sends_spans_over_otlp_with_the_project(collector: Collector) -> None:
    flow = Flow()
    try:
        provider = register(
            endpoint=collector.endpoint,
            project_name="trips",
            batch=False,
            headers={"x-team": "blue"},
            flow=flow,
        )
        assert isinstance(provider, TracerProvider)
        (exporter,) = flow.subscribers
        assert isinstance(exporter, OpenInferenceExporter) and exporter.tracer_provider is provider
        many = [{"role": "user", "content": f"line {i}"} for i in range(150)]  # ~300 message attributes
        run_json(flow, CHAT_URL, chat_body(messages=many), TOOL_REPLY)
        assert flow.flush(10.0)
    finally:
        flow.shutdown()
    ((resource, span),) = collector.spans()
    assert resource[ResourceAttributes.PROJECT_NAME] == "trips"
    assert collector.headers[0]["x-team"] == "blue"
    assert collector.headers[0]["content-type"] == "application/x-protobuf"
    assert span[SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ] == 1024
    assert (
        span[f"{IN}.149.{MessageAttributes.MESSAGE_CONTENT}"] == "line 149"
    )  # the raised limit kept them all
    assert len(span) > 300 and MAX_SPAN_ATTRIBUTES >= 10_000
    # The flow's shutdown leaves the caller's provider alone.
    with provider.get_tracer("app").start_as_current_span("after"):
        pass
    provider.force_flush()
    assert len(collector.spans()) == 2
    provider.shutdown()


def test_exporter_builds_its_own_provider_from_the_environment(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", collector.endpoint.removesuffix("/v1/traces"))
    monkeypatch.setenv("PHOENIX_PROJECT_NAME", "from-env")
    exporter = OpenInferenceExporter()
    flow = Flow(subscribers=[exporter])
    run_json(flow, CHAT_URL, chat_body(), TOOL_REPLY)
    flow.shutdown()  # shuts the exporter's own provider down, which exports the batch
    ((resource, span),) = collector.spans()
    assert resource[ResourceAttributes.PROJECT_NAME] == "from-env"
    assert span[SpanAttributes.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert exporter.closed
