"""OpenInferenceExporter on records built by hand: attributes, status, parentage, limits, hiding."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest
from openinference.semconv.trace import (
    EmbeddingAttributes,
    MessageAttributes,
    MessageContentAttributes,
    SpanAttributes,
    ToolAttributes,
    ToolCallAttributes,
)
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

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
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResultPart,
    Usage,
)
from nemoflow._records import CallStatus, LlmCall, ScopeRecord
from nemoflow_codec_openai import OpenAIChatCodec
from nemoflow_exporter_openinference import (
    EVICTED_ATTRIBUTE,
    REDACTED_VALUE,
    STATUS_ATTRIBUTE,
    OpenInferenceExporter,
)

IN = SpanAttributes.LLM_INPUT_MESSAGES
OUT = SpanAttributes.LLM_OUTPUT_MESSAGES
ROLE = MessageAttributes.MESSAGE_ROLE
CONTENT = MessageAttributes.MESSAGE_CONTENT
CONTENTS = MessageAttributes.MESSAGE_CONTENTS
TOOL_CALLS = MessageAttributes.MESSAGE_TOOL_CALLS
PART_TYPE = MessageContentAttributes.MESSAGE_CONTENT_TYPE
PART_TEXT = MessageContentAttributes.MESSAGE_CONTENT_TEXT
IMAGE_URL = f"{MessageContentAttributes.MESSAGE_CONTENT_IMAGE}.image.url"
T0 = 1_700_000_000_000_000_000
CHAT_URL = "https://api.openai.com/v1/chat/completions"

SMALL_PNG = "data:image/png;base64," + "iVBORw0KGgo" * 10
BIG_PNG = "data:image/png;base64," + "A" * 40_000


class SpanSink:
    """A TracerProvider whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))


@pytest.fixture
def sink() -> Iterator[SpanSink]:
    made = SpanSink()
    yield made
    made.provider.shutdown()


def call_record(**overrides: Any) -> LlmCall:
    fields: dict[str, Any] = {
        "call_id": "c-1",
        "span_id": 101,
        "parent_id": None,
        "trace_id": 7,
        "codec": "openai-chat",
        "provider": "openai",
        "operation": "chat",
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "start_time_ns": T0,
        "end_time_ns": T0 + 250_000_000,
        "status": CallStatus.OK,
        "http_status": 200,
        "model": "gpt-4o-mini",
    }
    fields.update(overrides)
    return LlmCall(**fields)


def anthropic_chat() -> LlmCall:
    """A chat with system text apart, tools, an image, a tool round trip and a tool call in the reply."""
    weather = ToolDefinition(
        name="get_weather",
        description="Current weather for a city.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    request = AnnotatedLlmRequest(
        model="claude-sonnet-4-5",
        system="You are a travel agent.",
        messages=(
            Message(role="user", content=(TextPart("What is this place?"), ImagePart(url=SMALL_PNG))),
            Message(
                role="assistant",
                content=(TextPart("Let me check."),),
                tool_calls=(ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"}),),
            ),
            Message(
                role="user",
                content=(
                    ToolResultPart(tool_call_id="toolu_1", content="18C, sunny"),
                    TextPart("And tomorrow?"),
                ),
            ),
        ),
        params=GenerationParams(temperature=0.2, max_tokens=512),
        tools=(weather,),
        tool_choice=ToolChoice(mode="auto"),
    )
    reply_call = ToolCall(
        id="toolu_2", name="get_weather", arguments=None, arguments_raw='{"city": "Paris", "day"'
    )
    response = AnnotatedLlmResponse(
        id="msg_1",
        model="claude-sonnet-4-5-20250929",
        text="Checking tomorrow.",
        tool_calls=(reply_call,),
        finish_reason=FinishReason.TOOL_CALLS,
        finish_reason_raw="tool_use",
    )
    usage = Usage(
        prompt_tokens=1200,
        completion_tokens=80,
        total_tokens=1280,
        cache_read_tokens=1000,
        cache_write_tokens=150,
        reasoning_tokens=20,
    )
    cost = Cost(
        total=0.0072,
        input=0.00015,
        output=0.0012,
        cache_read=0.0003,
        cache_write=0.0005625,
        source="price_table",
        table_version="2026-11-01",
        model_key="claude-sonnet-4-5",
    )
    return call_record(
        codec="anthropic-messages",
        provider="anthropic",
        url="https://api.anthropic.com/v1/messages",
        model="claude-sonnet-4-5-20250929",
        request=request,
        response=response,
        usage=usage,
        usage_source="reported",
        cost=cost,
        session_id="sess-1",
        user_id="user-1",
        scope_path=("planner",),
        stream=True,
        first_token_time_ns=T0 + 90_000_000,
    )


def export(sink: SpanSink, *records: LlmCall | tuple[str, ScopeRecord], **options: Any) -> list[ReadableSpan]:
    exporter = OpenInferenceExporter(sink.provider, **options)
    for record in records:
        if isinstance(record, LlmCall):
            exporter.on_call(record)
        elif record[0] == "start":
            exporter.on_scope_start(record[1])
        else:
            exporter.on_scope_end(record[1])
    return list(sink.exporter.get_finished_spans())


def attrs(span: ReadableSpan) -> Mapping[str, Any]:
    assert span.attributes is not None
    return span.attributes


def only(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


# ------------------------------------------------------------------------------------------- LLM spans


def test_chat_span_carries_every_attribute_group(sink: SpanSink) -> None:
    span = only(export(sink, anthropic_chat()))
    a = attrs(span)
    assert span.name == "chat claude-sonnet-4-5-20250929"
    assert span.kind is trace_api.SpanKind.CLIENT
    assert span.start_time == T0 and span.end_time == T0 + 250_000_000
    assert span.status.status_code is StatusCode.OK
    assert a[SpanAttributes.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert a[SpanAttributes.LLM_MODEL_NAME] == "claude-sonnet-4-5-20250929"
    assert a[SpanAttributes.LLM_PROVIDER] == "anthropic"
    assert a[SpanAttributes.LLM_SYSTEM] == "anthropic"
    # Token counts, cache details and reasoning.
    assert a[SpanAttributes.LLM_TOKEN_COUNT_PROMPT] == 1200
    assert a[SpanAttributes.LLM_TOKEN_COUNT_COMPLETION] == 80
    assert a[SpanAttributes.LLM_TOKEN_COUNT_TOTAL] == 1280
    assert a[SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ] == 1000
    assert a[SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE] == 150
    assert a[SpanAttributes.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING] == 20
    # Cost: the parts of the prompt add up to the prompt cost.
    assert a[SpanAttributes.LLM_COST_TOTAL] == pytest.approx(0.0072)
    assert a[SpanAttributes.LLM_COST_COMPLETION] == pytest.approx(0.0012)
    assert a[SpanAttributes.LLM_COST_PROMPT_DETAILS_INPUT] == pytest.approx(0.00015)
    assert a[SpanAttributes.LLM_COST_PROMPT_DETAILS_CACHE_READ] == pytest.approx(0.0003)
    assert a[SpanAttributes.LLM_COST_PROMPT_DETAILS_CACHE_WRITE] == pytest.approx(0.0005625)
    assert a[SpanAttributes.LLM_COST_PROMPT] == pytest.approx(0.00015 + 0.0003 + 0.0005625)
    # System text first, then the conversation, with the tool round trip.
    assert a[f"{IN}.0.{ROLE}"] == "system"
    assert a[f"{IN}.0.{CONTENT}"] == "You are a travel agent."
    assert a[f"{IN}.1.{ROLE}"] == "user"
    assert a[f"{IN}.1.{CONTENTS}.0.{PART_TYPE}"] == "text"
    assert a[f"{IN}.1.{CONTENTS}.0.{PART_TEXT}"] == "What is this place?"
    assert a[f"{IN}.1.{CONTENTS}.1.{PART_TYPE}"] == "image"
    assert a[f"{IN}.1.{CONTENTS}.1.{IMAGE_URL}"] == SMALL_PNG
    assert a[f"{IN}.2.{ROLE}"] == "assistant"
    assert a[f"{IN}.2.{TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_ID}"] == "toolu_1"
    assert a[f"{IN}.2.{TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_FUNCTION_NAME}"] == "get_weather"
    assert json.loads(
        str(a[f"{IN}.2.{TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_FUNCTION_ARGUMENTS_JSON}"])
    ) == {"city": "Paris"}
    assert a[f"{IN}.3.{ROLE}"] == "tool"
    assert a[f"{IN}.3.{MessageAttributes.MESSAGE_TOOL_CALL_ID}"] == "toolu_1"
    assert a[f"{IN}.3.{CONTENT}"] == "18C, sunny"
    assert a[f"{IN}.4.{ROLE}"] == "user"
    assert a[f"{IN}.4.{CONTENTS}.0.{PART_TEXT}"] == "And tomorrow?"
    assert f"{IN}.5.{ROLE}" not in a
    # The reply, with its tool call; malformed arguments are kept exactly as the model wrote them.
    assert a[f"{OUT}.0.{ROLE}"] == "assistant"
    assert a[f"{OUT}.0.{CONTENT}"] == "Checking tomorrow."
    assert a[f"{OUT}.0.{TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_ID}"] == "toolu_2"
    assert a[f"{OUT}.0.{TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_FUNCTION_NAME}"] == "get_weather"
    assert (
        a[f"{OUT}.0.{TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_FUNCTION_ARGUMENTS_JSON}"]
        == '{"city": "Paris", "day"'
    )
    # Tools offered, in OpenAI's function format.
    assert json.loads(str(a[f"{SpanAttributes.LLM_TOOLS}.0.{ToolAttributes.TOOL_JSON_SCHEMA}"])) == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    assert json.loads(str(a[SpanAttributes.LLM_INVOCATION_PARAMETERS])) == {
        "model": "claude-sonnet-4-5",
        "temperature": 0.2,
        "max_tokens": 512,
        "tool_choice": "auto",
    }
    # Payloads: a request built by hand has no wire form, so its annotated view is recorded.
    payload = json.loads(str(a[SpanAttributes.INPUT_VALUE]))
    assert payload["system"] == "You are a travel agent." and payload["model"] == "claude-sonnet-4-5"
    assert a[SpanAttributes.INPUT_MIME_TYPE] == "application/json"
    output = json.loads(str(a[SpanAttributes.OUTPUT_VALUE]))  # a tool call in the reply: JSON, not text
    assert output["text"] == "Checking tomorrow." and output["tool_calls"][0]["name"] == "get_weather"
    assert a[SpanAttributes.OUTPUT_MIME_TYPE] == "application/json"
    assert a[SpanAttributes.SESSION_ID] == "sess-1"
    assert a[SpanAttributes.USER_ID] == "user-1"
    assert a[STATUS_ATTRIBUTE] == "ok"
    metadata = json.loads(str(a[SpanAttributes.METADATA]))
    assert metadata["codec"] == "anthropic-messages"
    assert metadata["attempt"] == 1 and metadata["http_status"] == 200
    assert metadata["time_to_first_token_ms"] == pytest.approx(90.0)
    assert metadata["scope_path"] == ["planner"]
    assert metadata["cost_source"] == "price_table" and metadata["price_table_version"] == "2026-11-01"
    assert metadata["usage_source"] == "reported"
    assert metadata["finish_reason"] == "tool_calls" and metadata["finish_reason_raw"] == "tool_use"
    assert [event.name for event in span.events] == ["first_token"]
    assert span.events[0].timestamp == T0 + 90_000_000


def test_system_message_already_in_the_messages_is_not_repeated(sink: SpanSink) -> None:
    request = AnnotatedLlmRequest(
        model="gpt-4o-mini",
        system="Be brief.",
        messages=(Message(role="system", content="Be brief."), Message(role="user", content="Hi")),
    )
    response = AnnotatedLlmResponse(text="Hello!", finish_reason=FinishReason.STOP)
    a = attrs(only(export(sink, call_record(request=request, response=response))))
    assert [a[f"{IN}.{i}.{ROLE}"] for i in range(2)] == ["system", "user"]
    assert f"{IN}.2.{ROLE}" not in a
    assert a[SpanAttributes.OUTPUT_VALUE] == "Hello!"
    assert a[SpanAttributes.OUTPUT_MIME_TYPE] == "text/plain"
    assert a[SpanAttributes.LLM_SYSTEM] == "openai" and a[SpanAttributes.LLM_PROVIDER] == "openai"


def test_openai_tool_messages_and_several_choices(sink: SpanSink) -> None:
    request = AnnotatedLlmRequest(
        model="gpt-4o",
        messages=(
            Message(role="user", content="Weather?"),
            Message(role="assistant", tool_calls=(ToolCall(id="call_9", name="weather", arguments={}),)),
            Message(role="tool", content="rainy", tool_call_id="call_9"),
        ),
    )
    response = AnnotatedLlmResponse(
        text="Rainy.",
        choices=(
            Choice(index=0, text="Rainy.", role="assistant"),
            Choice(index=1, text="Wet.", role="assistant"),
        ),
    )
    a = attrs(only(export(sink, call_record(request=request, response=response))))
    assert a[f"{IN}.1.{TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_FUNCTION_ARGUMENTS_JSON}"] == "{}"
    assert f"{IN}.1.{CONTENT}" not in a
    assert a[f"{IN}.2.{ROLE}"] == "tool" and a[f"{IN}.2.{MessageAttributes.MESSAGE_TOOL_CALL_ID}"] == "call_9"
    assert a[f"{OUT}.0.{CONTENT}"] == "Rainy." and a[f"{OUT}.1.{CONTENT}"] == "Wet."


def test_wire_request_is_recorded_only_while_untouched(sink: SpanSink) -> None:
    import nemoflow

    codec = nemoflow.get_codec("openai-chat")
    wire = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "secret 1234"}],
        "custom_flag": True,
    }
    decoded = codec.decode(wire, url="https://api.openai.com/v1/chat/completions")
    from dataclasses import replace

    sanitized = replace(decoded, messages=(Message(role="user", content="secret ****"),))
    spans = export(sink, call_record(request=decoded), call_record(request=sanitized, span_id=102))
    first, second = (json.loads(str(attrs(span)[SpanAttributes.INPUT_VALUE])) for span in spans)
    assert first == wire  # the exact wire form, unknown keys included
    assert "1234" not in json.dumps(second) and second["messages"][0]["content"] == "secret ****"


def test_token_counts_not_reported_are_left_out(sink: SpanSink) -> None:
    a = attrs(only(export(sink, call_record(usage=Usage(prompt_tokens=12)))))
    assert a[SpanAttributes.LLM_TOKEN_COUNT_PROMPT] == 12
    for key in (
        SpanAttributes.LLM_TOKEN_COUNT_COMPLETION,
        SpanAttributes.LLM_TOKEN_COUNT_TOTAL,
        SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ,
        SpanAttributes.LLM_COST_TOTAL,
    ):
        assert key not in a


def test_embeddings_call_is_an_embedding_span(sink: SpanSink) -> None:
    request = AnnotatedLlmRequest(
        model="text-embedding-3-small",
        operation="embeddings",
        inputs=("first text", (1, 2, 3), "third text"),
        params=GenerationParams(dimensions=256, encoding_format="float"),
    )
    response = AnnotatedLlmResponse(operation="embeddings", embedding_count=3, embedding_dimension=256)
    record = call_record(
        codec="openai-embeddings",
        operation="embeddings",
        url="https://api.openai.com/v1/embeddings",
        model="text-embedding-3-small",
        request=request,
        response=response,
        usage=Usage(prompt_tokens=9, total_tokens=9),
    )
    span = only(export(sink, record))
    a = attrs(span)
    assert span.name == "embeddings text-embedding-3-small"
    assert a[SpanAttributes.OPENINFERENCE_SPAN_KIND] == "EMBEDDING"
    assert a[SpanAttributes.EMBEDDING_MODEL_NAME] == "text-embedding-3-small"
    text_key = f"{SpanAttributes.EMBEDDING_EMBEDDINGS}.{{}}.{EmbeddingAttributes.EMBEDDING_TEXT}"
    assert a[text_key.format(0)] == "first text"
    assert text_key.format(1) not in a  # token arrays are not text
    assert a[text_key.format(2)] == "third text"
    assert a[SpanAttributes.LLM_TOKEN_COUNT_PROMPT] == 9 and a[SpanAttributes.LLM_TOKEN_COUNT_TOTAL] == 9
    params = json.loads(str(a[SpanAttributes.EMBEDDING_INVOCATION_PARAMETERS]))
    assert params == {"model": "text-embedding-3-small", "dimensions": 256, "encoding_format": "float"}
    assert SpanAttributes.LLM_INVOCATION_PARAMETERS not in a
    assert json.loads(str(a[SpanAttributes.OUTPUT_VALUE])) == {
        "embedding_count": 3,
        "embedding_dimension": 256,
    }
    assert not any(key.startswith(IN) for key in a)


@pytest.mark.parametrize(
    ("codec", "provider", "url", "model", "expected_provider", "expected_system"),
    [
        (
            "openai-chat",
            "openai",
            "https://x.openai.azure.com/openai/deployments/d/chat",
            "gpt-4o",
            "azure",
            "openai",
        ),
        (
            "openai-chat",
            "openai",
            "https://api.groq.com/openai/v1/chat/completions",
            "llama",
            "groq",
            "openai",
        ),
        ("openai-chat", "openai", "http://localhost:8000/v1/chat/completions", "local", "openai", "openai"),
        (
            "gemini-generate-content",
            "google",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
            "gemini-2.5-flash",
            "google",
            "vertexai",
        ),
        (
            "bedrock-converse",
            "aws.bedrock",
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse",
            "us.anthropic.claude-sonnet-4-5-v1:0",
            "aws",
            "anthropic",
        ),
        (
            "anthropic-messages",
            "anthropic",
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude/invoke",
            "anthropic.claude",
            "aws",
            "anthropic",
        ),
        (
            "bedrock-converse",
            "aws.bedrock",
            "https://bedrock-runtime.eu-west-1.amazonaws.com",
            "amazon.nova",
            "aws",
            None,
        ),
    ],
)
def test_provider_and_system_values(
    sink: SpanSink,
    codec: str,
    provider: str,
    url: str,
    model: str,
    expected_provider: str,
    expected_system: str | None,
) -> None:
    a = attrs(only(export(sink, call_record(codec=codec, provider=provider, url=url, model=model))))
    assert a[SpanAttributes.LLM_PROVIDER] == expected_provider
    assert a.get(SpanAttributes.LLM_SYSTEM) == expected_system


# ------------------------------------------------------------------------------------------- status


def test_provider_error_sets_error_status_and_exception_event(sink: SpanSink) -> None:
    error = AnnotatedLlmError(
        kind=ErrorKind.RATE_LIMIT,
        status=429,
        message="slow down",
        type="requests",
        code="rate_limit_exceeded",
    )
    span = only(export(sink, call_record(status=CallStatus.ERROR, error=error, http_status=429)))
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None and "slow down" in span.status.description
    (event,) = span.events
    assert event.name == "exception" and event.timestamp == T0 + 250_000_000
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "requests"
    assert event.attributes["exception.message"] == "HTTP 429: slow down"
    a = attrs(span)
    assert a[STATUS_ATTRIBUTE] == "error"
    metadata = json.loads(str(a[SpanAttributes.METADATA]))
    assert metadata["error_kind"] == "rate_limit" and metadata["error_code"] == "rate_limit_exceeded"


def test_transport_exception_and_guardrail_block_are_errors(sink: SpanSink) -> None:
    broken = call_record(status=CallStatus.ERROR, exception="ReadTimeout: timed out", http_status=None)
    blocked = call_record(
        span_id=102, status=CallStatus.BLOCKED, block_reason="budget exceeded", http_status=None
    )
    first, second = export(sink, broken, blocked)
    assert first.status.status_code is StatusCode.ERROR
    assert first.events[0].attributes == {"exception.type": "ReadTimeout", "exception.message": "timed out"}
    assert second.status.status_code is StatusCode.ERROR
    assert second.events[0].attributes == {
        "exception.type": "GuardrailBlocked",
        "exception.message": "budget exceeded",
    }
    assert attrs(second)[STATUS_ATTRIBUTE] == "blocked"


def test_cancelled_call_is_not_an_error(sink: SpanSink) -> None:
    partial = AnnotatedLlmResponse(text="Partial", finish_reason=FinishReason.UNKNOWN)
    span = only(export(sink, call_record(status=CallStatus.CANCELLED, response=partial)))
    assert span.status.status_code is StatusCode.UNSET
    assert not span.events
    assert attrs(span)[STATUS_ATTRIBUTE] == "cancelled"
    assert attrs(span)[f"{OUT}.0.{CONTENT}"] == "Partial"


# ------------------------------------------------------------------------------------------- scopes


def scope(span_id: int, kind: Any, name: str, parent_id: int | None = None, **more: Any) -> ScopeRecord:
    return ScopeRecord(
        span_id=span_id, parent_id=parent_id, trace_id=7, kind=kind, name=name, start_time_ns=T0, **more
    )


def ended(record: ScopeRecord, **more: Any) -> ScopeRecord:
    from dataclasses import replace

    return replace(record, end_time_ns=T0 + 1_000_000_000, **more)


def test_scopes_tools_and_calls_nest_in_one_trace(sink: SpanSink) -> None:
    agent = scope(
        1, "AGENT", "planner", session_id="s-9", user_id="u-9", attributes={"team": "blue", "tries": 2}
    )
    chain = scope(2, "CHAIN", "draft", parent_id=1)
    tool = scope(
        3, "TOOL", "get_weather", parent_id=2, tool_arguments={"city": "Oslo"}, tool_call_id="call_5"
    )
    call = call_record(span_id=4, parent_id=2)
    spans = export(
        sink,
        ("start", agent),
        ("start", chain),
        ("start", tool),
        ("end", ended(tool, tool_result={"temp": 3})),
        call,
        ("end", ended(chain)),
        ("end", ended(agent)),
    )
    by_name = {span.name: span for span in spans}
    assert set(by_name) == {"planner", "draft", "get_weather", "chat gpt-4o-mini"}
    root = by_name["planner"]
    assert root.parent is None
    assert {span.context.trace_id for span in spans} == {root.context.trace_id}
    assert by_name["draft"].parent is not None and by_name["draft"].parent.span_id == root.context.span_id
    chain_id = by_name["draft"].context.span_id
    assert by_name["get_weather"].parent is not None and by_name["get_weather"].parent.span_id == chain_id
    assert (
        by_name["chat gpt-4o-mini"].parent is not None
        and by_name["chat gpt-4o-mini"].parent.span_id == chain_id
    )
    a = attrs(root)
    assert a[SpanAttributes.OPENINFERENCE_SPAN_KIND] == "AGENT"
    assert a[SpanAttributes.AGENT_NAME] == "planner"
    assert a[SpanAttributes.SESSION_ID] == "s-9" and a[SpanAttributes.USER_ID] == "u-9"
    assert a["team"] == "blue" and a["tries"] == 2
    assert json.loads(str(a[SpanAttributes.METADATA])) == {"team": "blue", "tries": 2}
    assert root.start_time == T0 and root.end_time == T0 + 1_000_000_000
    assert root.status.status_code is StatusCode.OK
    assert attrs(by_name["draft"])[SpanAttributes.OPENINFERENCE_SPAN_KIND] == "CHAIN"
    t = attrs(by_name["get_weather"])
    assert t[SpanAttributes.OPENINFERENCE_SPAN_KIND] == "TOOL"
    assert t[SpanAttributes.TOOL_NAME] == "get_weather"
    assert json.loads(str(t[SpanAttributes.TOOL_PARAMETERS])) == {"city": "Oslo"}
    assert t[ToolCallAttributes.TOOL_CALL_ID] == "call_5"
    assert t[ToolCallAttributes.TOOL_CALL_FUNCTION_NAME] == "get_weather"
    assert json.loads(str(t[ToolCallAttributes.TOOL_CALL_FUNCTION_ARGUMENTS_JSON])) == {"city": "Oslo"}
    assert json.loads(str(t[SpanAttributes.INPUT_VALUE])) == {"city": "Oslo"}
    assert json.loads(str(t[SpanAttributes.OUTPUT_VALUE])) == {"temp": 3}
    assert t[SpanAttributes.OUTPUT_MIME_TYPE] == "application/json"


def test_text_tool_result_and_failed_scope(sink: SpanSink) -> None:
    tool = scope(3, "TOOL", "lookup", tool_arguments=None)
    spans = export(
        sink,
        ("start", tool),
        ("end", ended(tool, tool_result="plain answer", status="error", error="KeyError: 'city'")),
    )
    span = only(spans)
    a = attrs(span)
    assert (
        a[SpanAttributes.OUTPUT_VALUE] == "plain answer"
        and a[SpanAttributes.OUTPUT_MIME_TYPE] == "text/plain"
    )
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "exception"
    assert span.events[0].attributes == {"exception.type": "KeyError", "exception.message": "'city'"}


def test_record_under_the_applications_own_span(sink: SpanSink) -> None:
    tracer = sink.provider.get_tracer("app")
    with tracer.start_as_current_span("handle-request") as app_span:
        from opentelemetry import context as otel_context

        captured = otel_context.get_current()
    agent = scope(1, "AGENT", "planner", otel_context=captured)
    orphan_call = call_record(span_id=9, otel_context=captured)
    spans = export(sink, ("start", agent), ("end", ended(agent)), orphan_call)
    app_context = app_span.get_span_context()
    mine = [span for span in spans if span.name != "handle-request"]
    assert len(mine) == 2
    for span in mine:
        assert span.parent is not None and span.parent.span_id == app_context.span_id
        assert span.context.trace_id == app_context.trace_id


def test_late_call_still_finds_its_ended_scope(sink: SpanSink) -> None:
    agent = scope(1, "AGENT", "planner")
    spans = export(sink, ("start", agent), ("end", ended(agent)), call_record(span_id=5, parent_id=1))
    root, late = spans
    assert late.parent is not None and late.parent.span_id == root.context.span_id
    assert late.context.trace_id == root.context.trace_id


def test_scope_whose_start_was_dropped_is_still_exported(sink: SpanSink) -> None:
    agent = scope(1, "AGENT", "planner")
    span = only(export(sink, ("end", ended(agent))))
    assert span.start_time == T0 and span.end_time == T0 + 1_000_000_000
    assert span.parent is None


def test_open_scopes_are_bounded(sink: SpanSink, caplog: pytest.LogCaptureFixture) -> None:
    exporter = OpenInferenceExporter(sink.provider, max_open_spans=2)
    records = [scope(i, "CHAIN", f"s{i}") for i in (1, 2, 3, 4)]
    with caplog.at_level(logging.WARNING, logger="nemoflow"):
        for record in records:
            exporter.on_scope_start(record)
    assert exporter.open_spans == 2
    assert exporter.evicted_spans == 2
    assert sum("scopes open at once" in message for message in caplog.messages) == 1
    evicted = {span.name: span for span in sink.exporter.get_finished_spans()}
    assert set(evicted) == {"s1", "s2"}
    assert attrs(evicted["s1"])[EVICTED_ATTRIBUTE] is True
    # A child of an evicted scope still nests under it; the scope's late end is not exported twice.
    exporter.on_call(call_record(span_id=50, parent_id=1))
    exporter.on_scope_end(ended(records[0]))
    for record in records[2:]:
        exporter.on_scope_end(ended(record))
    names = [span.name for span in sink.exporter.get_finished_spans()]
    assert sorted(names) == ["chat gpt-4o-mini", "s1", "s2", "s3", "s4"]
    late = next(span for span in sink.exporter.get_finished_spans() if span.name == "chat gpt-4o-mini")
    assert late.parent is not None and late.parent.span_id == evicted["s1"].context.span_id
    assert exporter.open_spans == 0


def test_shutdown_ends_open_scopes_and_keeps_a_given_provider(sink: SpanSink) -> None:
    exporter = OpenInferenceExporter(sink.provider)
    exporter.on_scope_start(scope(1, "AGENT", "never-ends"))
    assert exporter.flush(1.0)
    exporter.shutdown()
    assert [span.name for span in sink.exporter.get_finished_spans()] == ["never-ends"]
    assert exporter.closed
    exporter.on_call(call_record())  # ignored after shutdown
    assert len(sink.exporter.get_finished_spans()) == 1
    # The provider was given, so it is still usable.
    with sink.provider.get_tracer("t").start_as_current_span("after"):
        pass
    assert len(sink.exporter.get_finished_spans()) == 2


# ------------------------------------------------------------------------------------------- limits


def test_capped_provider_keeps_model_and_token_counts() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=12))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    long_chat = AnnotatedLlmRequest(
        model="gpt-4o-mini", messages=tuple(Message(role="user", content=f"message {i}") for i in range(50))
    )
    record = call_record(
        request=long_chat,
        response=AnnotatedLlmResponse(text="ok"),
        usage=Usage(prompt_tokens=500, completion_tokens=5, total_tokens=505, cache_read_tokens=100),
    )
    OpenInferenceExporter(provider).on_call(record)
    a = attrs(only(list(memory.get_finished_spans())))
    assert len(a) == 12
    assert a[SpanAttributes.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert a[SpanAttributes.LLM_MODEL_NAME] == "gpt-4o-mini"
    assert a[SpanAttributes.LLM_TOKEN_COUNT_PROMPT] == 500
    assert a[SpanAttributes.LLM_TOKEN_COUNT_COMPLETION] == 5
    assert a[SpanAttributes.LLM_TOKEN_COUNT_TOTAL] == 505
    assert a[SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ] == 100
    assert a[SpanAttributes.LLM_PROVIDER] == "openai"
    provider.shutdown()


# ------------------------------------------------------------------------------------------- hiding


def content_values(a: Mapping[str, Any]) -> str:
    return json.dumps({key: value for key, value in a.items()})


def test_hide_inputs_and_outputs(sink: SpanSink) -> None:
    a = attrs(only(export(sink, anthropic_chat(), hide_inputs=True, hide_outputs=True)))
    assert a[SpanAttributes.INPUT_VALUE] == REDACTED_VALUE
    assert a[SpanAttributes.OUTPUT_VALUE] == REDACTED_VALUE
    assert SpanAttributes.INPUT_MIME_TYPE not in a and SpanAttributes.OUTPUT_MIME_TYPE not in a
    assert not any(key.startswith((IN, OUT)) for key in a)
    text = content_values(a)
    for secret in ("travel agent", "What is this place", "18C", "Checking tomorrow"):
        assert secret not in text
    # What is not content stays.
    assert a[SpanAttributes.LLM_TOKEN_COUNT_PROMPT] == 1200
    assert SpanAttributes.LLM_INVOCATION_PARAMETERS in a
    assert f"{SpanAttributes.LLM_TOOLS}.0.{ToolAttributes.TOOL_JSON_SCHEMA}" in a


def test_hide_input_text_redacts_text_but_keeps_structure(sink: SpanSink) -> None:
    a = attrs(only(export(sink, anthropic_chat(), hide_input_text=True, hide_output_text=True)))
    assert a[f"{IN}.0.{CONTENT}"] == REDACTED_VALUE
    assert a[f"{IN}.1.{CONTENTS}.0.{PART_TEXT}"] == REDACTED_VALUE
    assert a[f"{IN}.1.{CONTENTS}.1.{IMAGE_URL}"] == SMALL_PNG
    assert a[f"{IN}.0.{ROLE}"] == "system"
    assert a[f"{OUT}.0.{CONTENT}"] == REDACTED_VALUE
    assert a[f"{OUT}.0.{TOOL_CALLS}.0.{ToolCallAttributes.TOOL_CALL_FUNCTION_NAME}"] == "get_weather"
    # The raw payloads would repeat the text: redacted too.
    assert (
        a[SpanAttributes.INPUT_VALUE] == REDACTED_VALUE and a[SpanAttributes.OUTPUT_VALUE] == REDACTED_VALUE
    )
    assert "travel agent" not in content_values(a) and "Checking tomorrow" not in content_values(a)


def test_hide_messages_and_images(sink: SpanSink) -> None:
    a = attrs(only(export(sink, anthropic_chat(), hide_input_messages=True, hide_output_messages=True)))
    assert not any(key.startswith((IN, OUT)) for key in a)
    sink.exporter.clear()
    b = attrs(only(export(sink, anthropic_chat(), hide_input_images=True)))
    assert f"{IN}.1.{CONTENTS}.1.{IMAGE_URL}" not in b
    assert f"{IN}.1.{CONTENTS}.1.{PART_TYPE}" not in b
    assert b[f"{IN}.1.{CONTENTS}.0.{PART_TEXT}"] == "What is this place?"
    assert "iVBORw0KGgo" not in content_values(b)


def test_hide_inputs_covers_tool_arguments_and_embedding_texts(sink: SpanSink) -> None:
    tool = scope(3, "TOOL", "lookup", tool_arguments={"ssn": "123-45-6789"}, tool_call_id="c1")
    embed = call_record(
        span_id=9,
        operation="embeddings",
        request=AnnotatedLlmRequest(model="e", operation="embeddings", inputs=("private words",)),
    )
    spans = export(
        sink,
        ("start", tool),
        ("end", ended(tool, tool_result="found")),
        embed,
        hide_inputs=True,
        hide_outputs=True,
    )
    for span in spans:
        text = content_values(attrs(span))
        assert "123-45-6789" not in text and "private words" not in text and "found" not in text
    assert attrs(spans[0])[SpanAttributes.TOOL_NAME] == "lookup"


def test_hide_llm_invocation_parameters(sink: SpanSink) -> None:
    a = attrs(only(export(sink, anthropic_chat(), hide_llm_invocation_parameters=True)))
    assert SpanAttributes.LLM_INVOCATION_PARAMETERS not in a


def test_environment_variables_hide_content_and_arguments_win(
    sink: SpanSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "true")
    monkeypatch.setenv("OPENINFERENCE_HIDE_OUTPUT_TEXT", "TRUE")
    a = attrs(only(export(sink, anthropic_chat())))
    assert a[SpanAttributes.INPUT_VALUE] == REDACTED_VALUE
    assert not any(key.startswith(IN) for key in a)
    assert a[f"{OUT}.0.{CONTENT}"] == REDACTED_VALUE
    sink.exporter.clear()
    b = attrs(only(export(sink, anthropic_chat(), hide_inputs=False, hide_output_text=False)))
    assert b[f"{IN}.0.{CONTENT}"] == "You are a travel agent."
    assert b[f"{OUT}.0.{CONTENT}"] == "Checking tomorrow."


def test_unparsable_environment_value_is_ignored(
    sink: SpanSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "perhaps")
    with caplog.at_level(logging.WARNING, logger="nemoflow"):
        exporter = OpenInferenceExporter(sink.provider)
    assert not exporter.config.hide_inputs
    assert any("OPENINFERENCE_HIDE_INPUTS" in message for message in caplog.messages)


# ------------------------------------------------------------------------------------------- images


def image_call(url: str | None = None, data: str | None = None) -> LlmCall:
    request = AnnotatedLlmRequest(
        model="gpt-4o",
        messages=(Message(role="user", content=(ImagePart(url=url, data=data, media_type="image/jpeg"),)),),
    )
    return call_record(request=request)


def test_long_base64_images_are_redacted(sink: SpanSink) -> None:
    spans = export(
        sink,
        image_call(url=BIG_PNG),
        image_call(url="https://example.com/cat.png"),
        image_call(data="B" * 40_000),
    )
    key = f"{IN}.0.{CONTENTS}.0.{IMAGE_URL}"
    big, remote, inline = (attrs(span) for span in spans)
    assert big[key] == REDACTED_VALUE
    assert remote[key] == "https://example.com/cat.png"
    assert inline[key] == REDACTED_VALUE  # inline bytes become a data URL, then the same rule applies
    # The raw payload does not smuggle the bytes in either.
    for a in (big, inline):
        assert len(str(a[SpanAttributes.INPUT_VALUE])) < 5_000
        assert REDACTED_VALUE in str(a[SpanAttributes.INPUT_VALUE])


def test_image_length_limit_from_argument_and_environment(
    sink: SpanSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"{IN}.0.{CONTENTS}.0.{IMAGE_URL}"
    assert (
        attrs(only(export(sink, image_call(url=SMALL_PNG), base64_image_max_length=50)))[key]
        == REDACTED_VALUE
    )
    sink.exporter.clear()
    monkeypatch.setenv("OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH", "100000")
    assert attrs(only(export(sink, image_call(url=BIG_PNG))))[key] == BIG_PNG
    with pytest.raises(ValueError, match="base64_image_max_length"):
        OpenInferenceExporter(sink.provider, base64_image_max_length=-1)


def test_tool_results_of_other_shapes_become_tool_messages(sink: SpanSink) -> None:
    image = ImagePart(url="https://example.com/chart.png", raw={"provider_secret": "do-not-copy"})
    request = AnnotatedLlmRequest(
        model="gemini-2.5-flash",
        messages=(
            Message(
                role="user",
                content=(
                    ToolResultPart(tool_call_id=None, name="lookup", content={"rows": [1, 2]}),
                    ToolResultPart(tool_call_id="t2", content=(TextPart("chart:"), image), is_error=True),
                ),
            ),
        ),
    )
    a = attrs(only(export(sink, call_record(request=request))))
    assert a[f"{IN}.0.{ROLE}"] == "tool" and a[f"{IN}.0.{MessageAttributes.MESSAGE_NAME}"] == "lookup"
    assert json.loads(str(a[f"{IN}.0.{CONTENT}"])) == {"rows": [1, 2]}
    assert a[f"{IN}.1.{MessageAttributes.MESSAGE_TOOL_CALL_ID}"] == "t2"
    second = json.loads(str(a[f"{IN}.1.{CONTENT}"]))
    assert second[0]["text"] == "chart:" and second[1]["url"] == "https://example.com/chart.png"
    assert "do-not-copy" not in content_values(a)
    assert f"{IN}.2.{ROLE}" not in a  # nothing but tool results: no empty user message


def test_user_values_that_are_not_json_are_recorded_by_repr(sink: SpanSink) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    tool = scope(
        3, "TOOL", "odd", tool_arguments={"when": Opaque()}, attributes={"obj": Opaque(), "tags": ["a", "b"]}
    )
    span = only(export(sink, ("start", tool), ("end", ended(tool, tool_result=Opaque()))))
    a = attrs(span)
    assert json.loads(str(a[SpanAttributes.TOOL_PARAMETERS])) == {"when": "<opaque>"}
    assert json.loads(str(a[SpanAttributes.OUTPUT_VALUE])) == "<opaque>"
    assert a["obj"] == '"<opaque>"' and list(a["tags"]) == ["a", "b"]


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


def test_the_propagated_traceparent_names_the_exported_spans(sink: SpanSink) -> None:
    flow = Flow(subscribers=[OpenInferenceExporter(sink.provider)], propagate_trace_context=True)
    try:
        with flow.scope("plan-trip", kind="AGENT") as scope:
            header = _propagating_call(flow)
        assert flow.flush(5.0)
    finally:
        flow.shutdown()
    finished = list(sink.exporter.get_finished_spans())
    [agent] = [span for span in finished if span.name == "plan-trip"]
    [call] = [span for span in finished if span is not agent]
    assert agent.context is not None and call.context is not None and call.parent is not None
    assert agent.context.span_id == scope.span_id
    assert header == f"00-{call.context.trace_id:032x}-{call.context.span_id:016x}-01"
    assert call.parent.span_id == agent.context.span_id and call.context.trace_id == agent.context.trace_id


def test_a_call_under_an_application_span_propagates_the_application_trace(sink: SpanSink) -> None:
    flow = Flow(subscribers=[OpenInferenceExporter(sink.provider)], propagate_trace_context=True)
    app_tracer = TracerProvider().get_tracer("app")
    try:
        with app_tracer.start_as_current_span("request-handler") as app_span:
            header = _propagating_call(flow)
        assert flow.flush(5.0)
    finally:
        flow.shutdown()
    app = app_span.get_span_context()
    [call] = list(sink.exporter.get_finished_spans())
    assert call.context is not None and call.parent is not None
    assert call.context.trace_id == app.trace_id and call.parent.span_id == app.span_id
    assert (
        header == f"00-{app.trace_id:032x}-{call.context.span_id:016x}-{int(app.trace_flags):02x}"
    )  # the application span's flags carry over
