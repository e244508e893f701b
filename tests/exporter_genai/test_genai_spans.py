"""GenAIExporter: span names, kinds, attributes, parentage, errors, lifecycle and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import ProxyTracerProvider, SpanKind, StatusCode

from nemoflow._cost import Cost
from nemoflow._flow import Flow
from nemoflow._model import (
    AnnotatedLlmError,
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    Choice,
    ErrorKind,
    FinishReason,
    GenerationParams,
    Message,
    Usage,
)
from nemoflow._records import CallStatus, LlmCall, ScopeKind, ScopeRecord
from nemoflow_codec_openai import OpenAIChatCodec
from nemoflow_exporter_genai import CAPTURE_CONTENT_ENV, SCHEMA_URL, SEMCONV_VERSION, GenAIExporter
from nemoflow_exporter_genai._attributes import fallback_keys

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
CHAT_URL = "https://api.openai.com/v1/chat/completions"


class Spans:
    """An exporter wired to an in-memory span exporter."""

    def __init__(self, **options: Any) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.exporter = GenAIExporter(self.provider, **options)

    def all(self) -> list[ReadableSpan]:
        return list(self.memory.get_finished_spans())

    def one(self, name: str) -> ReadableSpan:
        found = [span for span in self.all() if span.name == name]
        assert len(found) == 1, [span.name for span in self.all()]
        return found[0]


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Spans]:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    made = Spans()
    yield made
    made.provider.shutdown()


def make_call(**overrides: Any) -> LlmCall:
    fields: dict[str, Any] = {
        "call_id": "c1",
        "span_id": 0xC1,
        "parent_id": None,
        "trace_id": 0x7,
        "codec": "openai-chat",
        "provider": "openai",
        "operation": "chat",
        "method": "POST",
        "url": CHAT_URL,
        "start_time_ns": T0,
        "end_time_ns": T0 + 812 * MS,
        "status": CallStatus.OK,
        "request": AnnotatedLlmRequest(
            model="gpt-4o", messages=(Message(role="user", content="Hi"),), params=GenerationParams()
        ),
        "response": AnnotatedLlmResponse(
            id="chatcmpl-1", model="gpt-4o-2024-08-06", text="Hello", finish_reason=FinishReason.STOP
        ),
        "usage": Usage(prompt_tokens=12, completion_tokens=3, total_tokens=15),
        "usage_source": "reported",
        "model": "gpt-4o-2024-08-06",
    }
    fields.update(overrides)
    return LlmCall(**fields)


def make_scope(
    kind: ScopeKind,
    name: str,
    span_id: int,
    parent_id: int | None = None,
    *,
    end: int | None = None,
    **extra: Any,
) -> ScopeRecord:
    return ScopeRecord(
        span_id=span_id,
        parent_id=parent_id,
        trace_id=0x7,
        kind=kind,
        name=name,
        start_time_ns=T0 + span_id * MS,
        end_time_ns=end,
        **extra,
    )


def ended(scope: ScopeRecord, end: int, **changes: Any) -> ScopeRecord:
    return replace(scope, end_time_ns=end, **changes)


def parent_span_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


# ----------------------------------------------------------------------------------------- version


def test_version_is_pinned_and_every_key_comes_from_the_package() -> None:
    assert SEMCONV_VERSION == "1.44.0"
    assert SCHEMA_URL == "https://opentelemetry.io/schemas/1.44.0"
    assert fallback_keys() == ()


def test_tracer_carries_the_schema_url(spans: Spans) -> None:
    spans.exporter.on_call(make_call())
    scope = spans.all()[0].instrumentation_scope
    assert scope is not None
    assert scope.name == "nemoflow_exporter_genai"
    assert scope.schema_url == SCHEMA_URL


# ----------------------------------------------------------------------------------------- calls


def test_chat_call_carries_every_attribute_group(spans: Spans) -> None:
    request = AnnotatedLlmRequest(
        model="gpt-4o",
        messages=(Message(role="user", content="Plan a trip"),),
        params=GenerationParams(
            max_tokens=500,
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            stop=("END", "STOP"),
            seed=7,
            frequency_penalty=0.5,
            presence_penalty=-0.5,
            n=2,
            response_format={"type": "json_schema", "json_schema": {"name": "trip"}},
        ),
    )
    response = AnnotatedLlmResponse(
        id="chatcmpl-9",
        model="gpt-4o-2024-08-06",
        text="{}",
        finish_reason=FinishReason.STOP,
        finish_reason_raw="stop",
        choices=(
            Choice(index=0, text="{}", finish_reason=FinishReason.STOP, finish_reason_raw="stop"),
            Choice(index=1, text="{", finish_reason=FinishReason.LENGTH, finish_reason_raw="length"),
        ),
        service_tier="default",
        system_fingerprint="fp_1",
    )
    cost = Cost(
        0.0012, 0.0008, 0.0003, 0.0001, None, source="price_table", table_version="t", model_key="gpt-4o"
    )
    call = make_call(
        request=request,
        response=response,
        usage=Usage(
            prompt_tokens=1187,
            completion_tokens=24,
            total_tokens=1211,
            cache_read_tokens=1024,
            cache_write_tokens=50,
            reasoning_tokens=10,
        ),
        cost=cost,
        session_id="sess-1",
        user_id="ana",
        http_status=200,
        attempt=2,
        policies_applied=("cap_max_tokens",),
    )
    spans.exporter.on_call(call)

    span = spans.one("chat gpt-4o")
    assert span.kind is SpanKind.CLIENT
    assert (span.start_time, span.end_time) == (T0, T0 + 812 * MS)
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.max_tokens": 500,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.top_k": 40.0,
        "gen_ai.request.stop_sequences": ("END", "STOP"),
        "gen_ai.request.seed": 7,
        "gen_ai.request.frequency_penalty": 0.5,
        "gen_ai.request.presence_penalty": -0.5,
        "gen_ai.request.choice.count": 2,
        "gen_ai.output.type": "json",
        "gen_ai.response.id": "chatcmpl-9",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.finish_reasons": ("stop", "length"),
        "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": "fp_1",
        "gen_ai.usage.input_tokens": 1187,
        "gen_ai.usage.output_tokens": 24,
        "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.cache_creation.input_tokens": 50,
        "gen_ai.usage.reasoning.output_tokens": 10,
        "gen_ai.conversation.id": "sess-1",
        "user.id": "ana",
        "http.response.status_code": 200,
        "nemoflow.codec": "openai-chat",
        "nemoflow.call.status": "ok",
        "nemoflow.call.attempt": 2,
        "nemoflow.policies_applied": ("cap_max_tokens",),
        "nemoflow.cost.total": 0.0012,
        "nemoflow.cost.currency": "USD",
        "nemoflow.cost.source": "price_table",
    }


def test_unreported_counts_and_unset_params_stay_out(spans: Spans) -> None:
    spans.exporter.on_call(
        make_call(usage=Usage(), usage_source="missing", request=AnnotatedLlmRequest(model="m"))
    )
    attributes = dict(spans.one("chat m").attributes or {})
    assert not [
        key
        for key in attributes
        if key.startswith(("gen_ai.usage.", "gen_ai.request.")) and key != "gen_ai.request.model"
    ]
    assert "nemoflow.cost.total" not in attributes


def test_tool_call_finish_reason_uses_the_convention_value(spans: Spans) -> None:
    response = AnnotatedLlmResponse(
        model="m", finish_reason=FinishReason.TOOL_CALLS, finish_reason_raw="tool_calls"
    )
    spans.exporter.on_call(make_call(response=response))
    assert spans.one("chat gpt-4o").attributes["gen_ai.response.finish_reasons"] == ("tool_call",)  # type: ignore[index]


def test_unknown_finish_reason_keeps_the_provider_value(spans: Spans) -> None:
    response = AnnotatedLlmResponse(
        model="m", finish_reason=FinishReason.UNKNOWN, finish_reason_raw="pause_turn"
    )
    spans.exporter.on_call(make_call(response=response))
    assert spans.one("chat gpt-4o").attributes["gen_ai.response.finish_reasons"] == ("pause_turn",)  # type: ignore[index]


@pytest.mark.parametrize(
    ("provider", "url", "expected", "address", "port"),
    [
        ("openai", "https://api.openai.com/v1/chat/completions", "openai", "api.openai.com", 443),
        ("anthropic", "https://api.anthropic.com/v1/messages", "anthropic", "api.anthropic.com", 443),
        (
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
            "gcp.gemini",
            "generativelanguage.googleapis.com",
            443,
        ),
        (
            "gemini",
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/l/publishers/google/models/g:x",
            "gcp.vertex_ai",
            "us-central1-aiplatform.googleapis.com",
            443,
        ),
        (
            "anthropic",
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude/invoke",
            "aws.bedrock",
            "bedrock-runtime.us-east-1.amazonaws.com",
            443,
        ),
        ("bedrock", "https://example.internal/model/x/converse", "aws.bedrock", "example.internal", 443),
        (
            "openai",
            "https://acme.openai.azure.com/openai/deployments/d/chat/completions",
            "azure.ai.openai",
            None,
            443,
        ),
        ("mistral", "https://api.mistral.ai/v1/chat/completions", "mistral_ai", "api.mistral.ai", 443),
        ("vllm", "http://localhost:8000/v1/chat/completions", "vllm", "localhost", 8000),
        ("openai", "http://ollama/v1/chat/completions", "openai", "ollama", 80),
    ],
)
def test_provider_name_and_server(
    spans: Spans, provider: str, url: str, expected: str, address: str | None, port: int
) -> None:
    spans.exporter.on_call(make_call(provider=provider, url=url))
    attributes = spans.all()[0].attributes or {}
    assert attributes["gen_ai.provider.name"] == expected
    assert attributes["server.address"] == (address or url.split("/")[2])
    assert attributes["server.port"] == port


def test_embeddings_call(spans: Spans) -> None:
    request = AnnotatedLlmRequest(
        model="text-embedding-3-small",
        operation="embeddings",
        inputs=("a", "b"),
        params=GenerationParams(dimensions=256, encoding_format="float"),
    )
    response = AnnotatedLlmResponse(
        model="text-embedding-3-small", operation="embeddings", embedding_count=2, embedding_dimension=256
    )
    call = make_call(
        codec="openai-embeddings",
        operation="embeddings",
        url="https://api.openai.com/v1/embeddings",
        request=request,
        response=response,
        usage=Usage(prompt_tokens=8, total_tokens=8),
    )
    spans.exporter.on_call(call)
    span = spans.one("embeddings text-embedding-3-small")
    attributes = span.attributes or {}
    assert span.kind is SpanKind.CLIENT
    assert attributes["gen_ai.operation.name"] == "embeddings"
    assert attributes["gen_ai.request.encoding_formats"] == ("float",)
    assert attributes["gen_ai.embeddings.dimension.count"] == 256
    assert attributes["gen_ai.usage.input_tokens"] == 8
    assert "gen_ai.usage.output_tokens" not in attributes
    assert "gen_ai.response.finish_reasons" not in attributes


def test_streamed_call_has_stream_flag_and_time_to_first_chunk(spans: Spans) -> None:
    spans.exporter.on_call(make_call(stream=True, first_token_time_ns=T0 + 250 * MS))
    attributes = spans.one("chat gpt-4o").attributes or {}
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.25)


def test_non_streamed_call_has_no_stream_attributes(spans: Spans) -> None:
    spans.exporter.on_call(make_call())
    attributes = spans.one("chat gpt-4o").attributes or {}
    assert "gen_ai.request.stream" not in attributes
    assert "gen_ai.response.time_to_first_chunk" not in attributes


def test_call_without_recorded_request_is_named_by_its_model(spans: Spans) -> None:
    spans.exporter.on_call(make_call(request=None, response=None, model="gpt-4o-mini"))
    span = spans.one("chat gpt-4o-mini")
    assert (span.attributes or {})["gen_ai.request.model"] == "gpt-4o-mini"


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("changes", "error_type", "description"),
    [
        (
            {
                "status": CallStatus.ERROR,
                "http_status": 429,
                "response": None,
                "error": AnnotatedLlmError(kind=ErrorKind.RATE_LIMIT, status=429, message="Slow down"),
            },
            "rate_limit",
            "Slow down",
        ),
        (
            {
                "status": CallStatus.ERROR,
                "http_status": 500,
                "response": None,
                "error": AnnotatedLlmError(kind=ErrorKind.UNKNOWN, status=500, message=None),
            },
            "500",
            "unknown",
        ),
        (
            {"status": CallStatus.ERROR, "response": None, "exception": "ReadTimeout: timed out"},
            "ReadTimeout",
            "ReadTimeout: timed out",
        ),
        ({"status": CallStatus.ERROR, "http_status": 502, "response": None}, "502", None),
        (
            {"status": CallStatus.BLOCKED, "response": None, "block_reason": "PII in prompt"},
            "GuardrailBlocked",
            "blocked by a guardrail: PII in prompt",
        ),
    ],
)
def test_failed_calls_have_error_status_and_type(
    spans: Spans, changes: dict[str, Any], error_type: str, description: str | None
) -> None:
    spans.exporter.on_call(make_call(**changes))
    span = spans.one("chat gpt-4o")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == description
    assert (span.attributes or {})["error.type"] == error_type


@pytest.mark.parametrize("status", [CallStatus.OK, CallStatus.CANCELLED])
def test_ok_and_cancelled_calls_are_not_errors(spans: Spans, status: CallStatus) -> None:
    spans.exporter.on_call(make_call(status=status))
    span = spans.one("chat gpt-4o")
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})
    assert (span.attributes or {})["nemoflow.call.status"] == status.value


def test_failed_scope_has_error_status_and_exception_type(spans: Spans) -> None:
    scope = make_scope("AGENT", "plan-trip", 1)
    spans.exporter.on_scope_start(scope)
    spans.exporter.on_scope_end(ended(scope, T0 + 50 * MS, status="error", error="ValueError: no city"))
    span = spans.one("invoke_agent plan-trip")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError: no city"
    assert (span.attributes or {})["error.type"] == "ValueError"


# ----------------------------------------------------------------------------------------- scopes


def test_scope_kinds_names_and_attributes(spans: Spans) -> None:
    agent = make_scope(
        "AGENT", "plan-trip", 1, session_id="s-9", user_id="ana", attributes={"team": "travel"}
    )
    chain = make_scope("CHAIN", "research", 2, 1, session_id="s-9")
    tool = make_scope("TOOL", "search", 3, 2, tool_call_id="call_1", tool_arguments={"q": "Lisbon"})
    for record in (agent, chain, tool):
        spans.exporter.on_scope_start(record)
    for record in (tool, chain, agent):
        spans.exporter.on_scope_end(
            ended(record, T0 + 100 * MS, tool_result="sunny" if record is tool else None)
        )

    agent_span = spans.one("invoke_agent plan-trip")
    assert agent_span.kind is SpanKind.INTERNAL
    assert dict(agent_span.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "plan-trip",
        "gen_ai.conversation.id": "s-9",
        "user.id": "ana",
        "team": "travel",
    }
    assert (agent_span.start_time, agent_span.end_time) == (T0 + 1 * MS, T0 + 100 * MS)
    chain_attributes = dict(spans.one("invoke_workflow research").attributes or {})
    assert chain_attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert chain_attributes["gen_ai.workflow.name"] == "research"
    tool_span = spans.one("execute_tool search")
    assert tool_span.kind is SpanKind.INTERNAL
    assert dict(tool_span.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": "call_1",
    }


def test_scope_attributes_of_any_type_are_kept(spans: Spans) -> None:
    scope = make_scope(
        "CHAIN", "c", 1, attributes={"n": 3, "tags": ["a", "b"], "cfg": {"k": 1}, "skip": None}
    )
    spans.exporter.on_scope_start(scope)
    spans.exporter.on_scope_end(ended(scope, T0 + 5 * MS))
    attributes = spans.one("invoke_workflow c").attributes or {}
    assert attributes["n"] == 3
    assert attributes["tags"] == ("a", "b")
    assert orjson.loads(str(attributes["cfg"])) == {"k": 1}
    assert "skip" not in attributes


# ----------------------------------------------------------------------------------------- parentage


def test_spans_nest_like_the_scopes(spans: Spans) -> None:
    agent = make_scope("AGENT", "plan-trip", 1)
    chain = make_scope("CHAIN", "research", 2, 1)
    tool = make_scope("TOOL", "search", 3, 2)
    exporter = spans.exporter
    exporter.on_scope_start(agent)
    exporter.on_scope_start(chain)
    exporter.on_scope_start(tool)
    exporter.on_scope_end(ended(tool, T0 + 20 * MS))
    exporter.on_call(make_call(span_id=0xA, parent_id=2, request=AnnotatedLlmRequest(model="inner")))
    exporter.on_scope_end(ended(chain, T0 + 900 * MS))
    exporter.on_call(make_call(span_id=0xB, parent_id=1, request=AnnotatedLlmRequest(model="outer")))
    exporter.on_scope_end(ended(agent, T0 + 1500 * MS))

    by_name = {span.name: span for span in spans.all()}
    ids = {name: span.context.span_id for name, span in by_name.items()}
    assert parent_span_id(by_name["invoke_agent plan-trip"]) is None
    assert parent_span_id(by_name["invoke_workflow research"]) == ids["invoke_agent plan-trip"]
    assert parent_span_id(by_name["execute_tool search"]) == ids["invoke_workflow research"]
    assert parent_span_id(by_name["chat inner"]) == ids["invoke_workflow research"]
    assert parent_span_id(by_name["chat outer"]) == ids["invoke_agent plan-trip"]
    assert len({span.context.trace_id for span in by_name.values()}) == 1


def test_a_call_ending_after_its_scope_still_nests_under_it(spans: Spans) -> None:
    agent = make_scope("AGENT", "a", 1)
    spans.exporter.on_scope_start(agent)
    spans.exporter.on_scope_end(ended(agent, T0 + 10 * MS))
    spans.exporter.on_call(make_call(parent_id=1, start_time_ns=T0 + 5 * MS, end_time_ns=T0 + 40 * MS))
    agent_span = spans.one("invoke_agent a")
    call_span = spans.one("chat gpt-4o")
    assert parent_span_id(call_span) == agent_span.context.span_id
    assert call_span.context.trace_id == agent_span.context.trace_id


def test_records_without_parent_nest_under_the_application_span(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("request handler") as app_span:
        outer = otel_context.get_current()
    scope = make_scope("AGENT", "a", 1, otel_context=outer)
    spans.exporter.on_scope_start(scope)
    spans.exporter.on_scope_end(ended(scope, T0 + 10 * MS))
    spans.exporter.on_call(make_call(otel_context=outer))
    app_id = app_span.get_span_context().span_id
    assert parent_span_id(spans.one("invoke_agent a")) == app_id
    assert parent_span_id(spans.one("chat gpt-4o")) == app_id


def test_records_without_any_parent_start_a_new_trace(spans: Spans) -> None:
    # The delivery thread's own current context must never leak in as a parent.
    with spans.provider.get_tracer("ambient").start_as_current_span("ambient") as ambient:
        spans.exporter.on_call(make_call())
    call_span = spans.one("chat gpt-4o")
    assert call_span.parent is None
    assert call_span.context.trace_id != ambient.get_span_context().trace_id


def test_a_scope_end_without_its_start_still_makes_a_span(spans: Spans) -> None:
    scope = make_scope("TOOL", "lookup", 4, end=T0 + 30 * MS)
    spans.exporter.on_scope_end(scope)
    span = spans.one("execute_tool lookup")
    assert (span.start_time, span.end_time) == (T0 + 4 * MS, T0 + 30 * MS)


def test_open_spans_are_bounded_and_evicted_parents_still_adopt_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    bounded = Spans(max_open_spans=2)
    for span_id in (1, 2, 3):
        bounded.exporter.on_scope_start(make_scope("AGENT", f"a{span_id}", span_id))
    evicted = bounded.one("invoke_agent a1")
    assert (evicted.attributes or {})["nemoflow.scope.incomplete"] is True
    assert len(bounded.all()) == 1
    bounded.exporter.on_call(make_call(parent_id=1))
    assert parent_span_id(bounded.one("chat gpt-4o")) == evicted.context.span_id


# ----------------------------------------------------------------------------------------- lifecycle


class RecordingProcessor(SpanProcessor):
    def __init__(self) -> None:
        self.shut_down = False
        self.flushed = 0

    def shutdown(self) -> None:
        self.shut_down = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flushed += 1
        return True


def test_flush_force_flushes_the_provider(spans: Spans) -> None:
    processor = RecordingProcessor()
    spans.provider.add_span_processor(processor)
    assert spans.exporter.flush(2.0) is True
    assert processor.flushed == 1


def test_shutdown_ends_open_scopes_and_leaves_a_given_provider_running(spans: Spans) -> None:
    processor = RecordingProcessor()
    spans.provider.add_span_processor(processor)
    spans.exporter.on_scope_start(make_scope("AGENT", "never-ends", 1))
    spans.exporter.shutdown()
    assert (spans.one("invoke_agent never-ends").attributes or {})["nemoflow.scope.incomplete"] is True
    assert processor.shut_down is False


def test_without_a_provider_the_exporter_owns_one_and_shuts_it_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", ProxyTracerProvider)
    exporter = GenAIExporter()
    provider = exporter.tracer_provider
    assert isinstance(provider, TracerProvider)
    processor = RecordingProcessor()
    provider.add_span_processor(processor)
    exporter.shutdown()
    assert processor.shut_down is True


def test_without_a_provider_the_global_sdk_provider_is_used_and_left_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    global_provider = TracerProvider()
    processor = RecordingProcessor()
    global_provider.add_span_processor(processor)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: global_provider)
    exporter = GenAIExporter()
    assert exporter.tracer_provider is global_provider
    exporter.shutdown()
    assert processor.shut_down is False


def test_content_capture_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = TracerProvider()
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    assert GenAIExporter(provider).capture_content is False
    assert GenAIExporter(provider, capture_content=True).capture_content is True
    for value in ("true", "TRUE", "1", "span_only"):
        monkeypatch.setenv(CAPTURE_CONTENT_ENV, value)
        assert GenAIExporter(provider).capture_content is True
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    assert GenAIExporter(provider, capture_content=False).capture_content is False
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "false")
    assert GenAIExporter(provider).capture_content is False


# ----------------------------------------------------------------------------------------- metrics


def histogram_points(reader: InMemoryMetricReader) -> dict[str, list[HistogramDataPoint]]:
    data = reader.get_metrics_data()
    points: dict[str, list[HistogramDataPoint]] = {}
    if data is None:
        return points
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points[metric.name] = [
                    p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)
                ]
    return points


def test_metrics_record_duration_tokens_and_first_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    recorded = Spans(meter_provider=meters)
    recorded.exporter.on_call(make_call(stream=True, first_token_time_ns=T0 + 100 * MS))
    recorded.exporter.on_call(make_call(status=CallStatus.BLOCKED, block_reason="no"))
    points = histogram_points(reader)

    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert duration.sum == pytest.approx(0.812)
    assert dict(duration.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    tokens = {
        str((p.attributes or {})["gen_ai.token.type"]): p.sum for p in points["gen_ai.client.token.usage"]
    }
    assert tokens == {"input": 12, "output": 3}
    (first_chunk,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert first_chunk.sum == pytest.approx(0.1)
    meters.shutdown()


def test_metrics_of_failed_calls_carry_error_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    recorded = Spans(meter_provider=meters)
    recorded.exporter.on_call(
        make_call(status=CallStatus.ERROR, response=None, exception="ConnectError: refused")
    )
    (duration,) = histogram_points(reader)["gen_ai.client.operation.duration"]
    assert (duration.attributes or {})["error.type"] == "ConnectError"
    meters.shutdown()


# ----------------------------------------------------------------------------------------- through a Flow


def test_records_from_a_flow_become_nested_spans(spans: Spans) -> None:
    flow = Flow(subscribers=[spans.exporter])
    reply = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Lisbon."}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    }
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Where?"}], "max_tokens": 50}
    try:
        with flow.scope("plan-trip", kind="AGENT", session_id="s-1"):
            with flow.tool("search", arguments={"q": "city"}, tool_call_id="call_9") as run:
                run.result = "Lisbon"
            handle = flow.start_call(
                "POST",
                CHAT_URL,
                {"content-type": "application/json"},
                orjson.dumps(request),
                codec=OpenAIChatCodec(),
            )
            assert handle is not None
            handle.response_started(200, {"content-type": "application/json"})
            handle.response_body(orjson.dumps(reply))
            handle.finish()
        assert flow.flush(5.0)
    finally:
        flow.shutdown()

    agent = spans.one("invoke_agent plan-trip")
    tool = spans.one("execute_tool search")
    call = spans.one("chat gpt-4o-mini")
    assert parent_span_id(tool) == agent.context.span_id
    assert parent_span_id(call) == agent.context.span_id
    attributes = call.attributes or {}
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["gen_ai.usage.input_tokens"] == 20
    assert attributes["gen_ai.conversation.id"] == "s-1"
    assert (tool.attributes or {})["gen_ai.tool.call.id"] == "call_9"
    assert "gen_ai.input.messages" not in attributes


def test_a_scope_opened_before_the_exporter_sees_it_is_not_required(spans: Spans) -> None:
    # A record whose parent the exporter never saw still exports, as a root.
    spans.exporter.on_call(make_call(parent_id=0xDEAD, otel_context=Context()))
    assert spans.one("chat gpt-4o").parent is None


# ----------------------------------------------------------------------------------------- propagated ids


def _propagating_call(flow: Flow) -> str:
    """One OpenAI chat call through ``flow``; returns the ``traceparent`` it would send upstream."""
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Where?"}]}
    handle = flow.start_call("POST", CHAT_URL, {}, orjson.dumps(request), codec=OpenAIChatCodec())
    assert handle is not None
    handle.response_started(200, {"content-type": "application/json"})
    handle.response_body(orjson.dumps({"id": "c", "model": "gpt-4o-mini", "choices": []}))
    handle.finish()
    return handle.headers_update["traceparent"]


def test_the_propagated_traceparent_names_the_exported_spans(spans: Spans) -> None:
    flow = Flow(subscribers=[spans.exporter], propagate_trace_context=True)
    try:
        with flow.scope("plan-trip", kind="AGENT") as scope:
            header = _propagating_call(flow)
        assert flow.flush(5.0)
    finally:
        flow.shutdown()
    finished = spans.all()
    [agent] = [span for span in finished if span.name == "invoke_agent plan-trip"]
    [call] = [span for span in finished if span is not agent]
    assert agent.context is not None and call.context is not None and call.parent is not None
    assert agent.context.span_id == scope.span_id
    assert header == f"00-{call.context.trace_id:032x}-{call.context.span_id:016x}-01"
    assert call.parent.span_id == agent.context.span_id and call.context.trace_id == agent.context.trace_id


def test_a_call_under_an_application_span_propagates_the_application_trace(spans: Spans) -> None:
    flow = Flow(subscribers=[spans.exporter], propagate_trace_context=True)
    app_tracer = TracerProvider().get_tracer("app")
    try:
        with app_tracer.start_as_current_span("request-handler") as app_span:
            header = _propagating_call(flow)
        assert flow.flush(5.0)
    finally:
        flow.shutdown()
    app = app_span.get_span_context()
    [call] = spans.all()
    assert call.context is not None and call.parent is not None
    assert call.context.trace_id == app.trace_id and call.parent.span_id == app.span_id
    assert (
        header == f"00-{app.trace_id:032x}-{call.context.span_id:016x}-{int(app.trace_flags):02x}"
    )  # the application span's flags carry over
