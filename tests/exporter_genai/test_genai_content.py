"""GenAIExporter content capture: off by default, on by option or environment, in the message-part format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nemoflow._model import (
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    AudioPart,
    Choice,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    OtherPart,
    ReasoningPart,
    RefusalPart,
    TextPart,
    ToolCall,
    ToolDefinition,
    ToolResultPart,
    Usage,
)
from nemoflow._records import CallStatus, LlmCall, ScopeRecord
from nemoflow_exporter_genai import CAPTURE_CONTENT_ENV, GenAIExporter

T0 = 1_700_000_000_000_000_000
CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)

WEATHER_TOOL = ToolDefinition(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)

OPENAI_REQUEST = AnnotatedLlmRequest(
    model="gpt-4o",
    system="Be brief.",
    messages=(
        Message(role="system", content="Be brief."),
        Message(
            role="user",
            content=(
                TextPart(text="What is in this picture, and the weather there?"),
                ImagePart(url="https://example.com/lisbon.png", detail="low"),
                ImagePart(url="data:image/png;base64,iVBORw0KGgo="),
            ),
        ),
        Message(
            role="assistant",
            tool_calls=(ToolCall(id="call_1", name="get_weather", arguments={"city": "Lisbon"}),),
        ),
        Message(role="tool", tool_call_id="call_1", content="sunny, 24°C"),
    ),
    tools=(WEATHER_TOOL,),
)

OPENAI_RESPONSE = AnnotatedLlmResponse(
    id="chatcmpl-1",
    model="gpt-4o-2024-08-06",
    text="Lisbon; it is sunny.",
    finish_reason=FinishReason.STOP,
    choices=(
        Choice(index=0, text="Lisbon; it is sunny.", finish_reason=FinishReason.STOP, role="assistant"),
    ),
)


class Captured:
    def __init__(self, **options: Any) -> None:
        self.memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.exporter = GenAIExporter(provider, **options)

    def only(self) -> ReadableSpan:
        (span,) = self.memory.get_finished_spans()
        return span

    def json(self, key: str) -> Any:
        value = (self.only().attributes or {})[key]
        assert isinstance(value, str)
        return orjson.loads(value)


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    yield


def make_call(request: AnnotatedLlmRequest, response: AnnotatedLlmResponse | None) -> LlmCall:
    return LlmCall(
        call_id="c",
        span_id=1,
        parent_id=None,
        trace_id=1,
        codec="openai-chat",
        provider="openai",
        operation=request.operation,
        method="POST",
        url="https://api.openai.com/v1/chat/completions",
        start_time_ns=T0,
        end_time_ns=T0 + 1000,
        status=CallStatus.OK,
        request=request,
        response=response,
        usage=Usage(prompt_tokens=10, completion_tokens=5),
        usage_source="reported",
        model="gpt-4o",
    )


def tool_scope(end: bool) -> ScopeRecord:
    return ScopeRecord(
        span_id=5,
        parent_id=None,
        trace_id=1,
        kind="TOOL",
        name="get_weather",
        start_time_ns=T0,
        end_time_ns=T0 + 10 if end else None,
        tool_arguments={"city": "Lisbon"},
        tool_result={"sky": "sunny"} if end else None,
        tool_call_id="call_1",
    )


def test_content_is_off_by_default() -> None:
    captured = Captured()
    captured.exporter.on_call(make_call(OPENAI_REQUEST, OPENAI_RESPONSE))
    attributes = captured.only().attributes or {}
    assert not [key for key in CONTENT_KEYS if key in attributes]
    assert attributes["gen_ai.usage.input_tokens"] == 10  # counts are not content


def test_tool_arguments_and_results_are_off_by_default() -> None:
    captured = Captured()
    captured.exporter.on_scope_start(tool_scope(end=False))
    captured.exporter.on_scope_end(tool_scope(end=True))
    attributes = captured.only().attributes or {}
    assert not [key for key in CONTENT_KEYS if key in attributes]


def test_input_messages_follow_the_message_part_format() -> None:
    captured = Captured(capture_content=True)
    captured.exporter.on_call(make_call(OPENAI_REQUEST, OPENAI_RESPONSE))
    assert captured.json("gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is in this picture, and the weather there?"},
                {"type": "uri", "modality": "image", "uri": "https://example.com/lisbon.png"},
                {"type": "blob", "modality": "image", "content": "iVBORw0KGgo=", "mime_type": "image/png"},
            ],
        },
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Lisbon"}}
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny, 24°C"}],
        },
    ]
    # The system text travels inside the conversation here, so it is not repeated as instructions.
    assert "gen_ai.system_instructions" not in (captured.only().attributes or {})
    assert captured.json("gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Lisbon; it is sunny."}],
            "finish_reason": "stop",
        }
    ]
    assert captured.json("gen_ai.tool.definitions") == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]


def test_separate_system_text_becomes_system_instructions() -> None:
    request = AnnotatedLlmRequest(
        model="claude-sonnet-4-5",
        system="You are a travel agent.",
        messages=(
            Message(role="user", content="Weather in Lisbon?"),
            Message(
                role="assistant",
                content=(
                    ReasoningPart(text="Need the tool.", signature="sig"),
                    ReasoningPart(text=None, redacted=True),
                ),
                tool_calls=(ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Lisbon"}),),
            ),
            Message(
                role="user",
                content=(
                    ToolResultPart(tool_call_id="toolu_1", content=(TextPart(text="sunny"),)),
                    ToolResultPart(
                        tool_call_id="toolu_2", content={"temp": 24}, name="get_temp", is_error=False
                    ),
                ),
            ),
        ),
    )
    captured = Captured(capture_content=True)
    captured.exporter.on_call(make_call(request, None))
    assert captured.json("gen_ai.system_instructions") == [
        {"type": "text", "content": "You are a travel agent."}
    ]
    messages = captured.json("gen_ai.input.messages")
    assert messages[1]["parts"] == [
        {"type": "reasoning", "content": "Need the tool."},
        {"type": "reasoning", "content": ""},
        {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"city": "Lisbon"}},
    ]
    assert messages[2]["parts"] == [
        {"type": "tool_call_response", "id": "toolu_1", "response": "sunny"},
        {"type": "tool_call_response", "id": "toolu_2", "response": {"temp": 24}, "name": "get_temp"},
    ]
    assert "gen_ai.output.messages" not in (captured.only().attributes or {})


def test_other_parts_keep_their_type_and_media_details() -> None:
    request = AnnotatedLlmRequest(
        model="gemini-2.5-flash",
        messages=(
            Message(
                role="user",
                content=(
                    AudioPart(data="UklGRg==", format="wav"),
                    FilePart(file_id="file-1", media_type="application/pdf", filename="a.pdf"),
                    FilePart(url="gs://bucket/v.mp4", media_type="video/mp4"),
                    ImagePart(file_id="file-2"),
                    OtherPart(type="executable_code", extra={"code": "print(1)"}),
                ),
            ),
            Message(role="model", content=(RefusalPart(refusal="No."),)),
        ),
    )
    captured = Captured(capture_content=True)
    captured.exporter.on_call(make_call(request, None))
    user, model = captured.json("gen_ai.input.messages")
    assert user["parts"] == [
        {"type": "blob", "modality": "audio", "content": "UklGRg==", "mime_type": "audio/wav"},
        {
            "type": "file",
            "modality": "document",
            "file_id": "file-1",
            "mime_type": "application/pdf",
            "filename": "a.pdf",
        },
        {"type": "uri", "modality": "video", "uri": "gs://bucket/v.mp4", "mime_type": "video/mp4"},
        {"type": "file", "modality": "image", "file_id": "file-2"},
        {"code": "print(1)", "type": "executable_code"},
    ]
    assert model == {"role": "assistant", "parts": [{"type": "refusal", "content": "No."}]}


def test_output_messages_one_per_choice_with_tool_calls_and_reasoning() -> None:
    response = AnnotatedLlmResponse(
        model="o3",
        choices=(
            Choice(
                index=0,
                reasoning_text="Think.",
                tool_calls=(
                    ToolCall(id="c1", name="get_weather", arguments=None, arguments_raw='{"city": "Lis'),
                ),
                finish_reason=FinishReason.TOOL_CALLS,
            ),
            Choice(index=1, text="Hi", finish_reason=FinishReason.UNKNOWN, finish_reason_raw="end_turn"),
        ),
    )
    captured = Captured(capture_content=True)
    captured.exporter.on_call(make_call(AnnotatedLlmRequest(model="o3"), response))
    assert captured.json("gen_ai.output.messages") == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "Think."},
                {"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": '{"city": "Lis'},
            ],
            "finish_reason": "tool_call",
        },
        {"role": "assistant", "parts": [{"type": "text", "content": "Hi"}], "finish_reason": "end_turn"},
    ]


def test_embeddings_record_no_messages() -> None:
    request = AnnotatedLlmRequest(model="text-embedding-3-small", operation="embeddings", inputs=("secret",))
    response = AnnotatedLlmResponse(model="text-embedding-3-small", operation="embeddings")
    captured = Captured(capture_content=True)
    captured.exporter.on_call(make_call(request, response))
    attributes = captured.only().attributes or {}
    assert not [key for key in CONTENT_KEYS if key in attributes]


def test_content_capture_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    captured = Captured()
    captured.exporter.on_call(make_call(OPENAI_REQUEST, OPENAI_RESPONSE))
    assert captured.json("gen_ai.input.messages")[0]["role"] == "system"


def test_the_option_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    captured = Captured(capture_content=False)
    captured.exporter.on_call(make_call(OPENAI_REQUEST, OPENAI_RESPONSE))
    assert "gen_ai.input.messages" not in (captured.only().attributes or {})


def test_tool_arguments_and_results_with_capture_on() -> None:
    captured = Captured(capture_content=True)
    captured.exporter.on_scope_start(tool_scope(end=False))
    captured.exporter.on_scope_end(tool_scope(end=True))
    assert captured.json("gen_ai.tool.call.arguments") == {"city": "Lisbon"}
    assert captured.json("gen_ai.tool.call.result") == {"sky": "sunny"}


def test_values_json_cannot_hold_are_written_as_text() -> None:
    request = AnnotatedLlmRequest(
        model="m",
        messages=(
            Message(
                role="assistant", tool_calls=(ToolCall(id="1", name="f", arguments={"big": 2**70, "s": {1}}),)
            ),
        ),
    )
    captured = Captured(capture_content=True)
    captured.exporter.on_call(make_call(request, None))
    (message,) = captured.json("gen_ai.input.messages")
    assert message["parts"][0]["arguments"] == {"big": 2**70, "s": "{1}"}
