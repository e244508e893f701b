"""What nemoflow recorded during an end-to-end test, and the checks made on it.

An :class:`Observed` flow delivers records to a collecting subscriber and, when the OpenInference exporter
is installed, to that exporter writing into an ``InMemorySpanExporter``; checks are then made on both the
records and the spans (without the exporter, on the records only).

What a call should look like (:class:`Expect`) comes from the replayed fixture's own ``expected`` section,
so the same facts the codec conformance tests check are checked here end to end, through the real SDK.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from nemoflow import CallStatus, Flow, LlmCall, Subscriber, codecs
from tests.e2e_sdk.replay import load_fixture

try:
    from nemoflow_exporter_openinference import OpenInferenceExporter
except ImportError:  # pragma: no cover - the exporter is a workspace member; checks fall back to records
    OpenInferenceExporter = None  # type: ignore[assignment,misc]

FLUSH_TIMEOUT_S = 10.0

_TOKEN_ATTRIBUTES = {
    "prompt_tokens": "llm.token_count.prompt",
    "completion_tokens": "llm.token_count.completion",
    "total_tokens": "llm.token_count.total",
    "cache_read_tokens": "llm.token_count.prompt_details.cache_read",
    "cache_write_tokens": "llm.token_count.prompt_details.cache_write",
    "reasoning_tokens": "llm.token_count.completion_details.reasoning",
}


def requires_codec(*names: str) -> pytest.MarkDecorator:
    """Skip (saying which) when a codec the test replays is not registered (``nemoflow.codecs()``)."""
    missing = sorted(set(names) - set(codecs()))
    return pytest.mark.skipif(
        bool(missing), reason=f"codec not registered in nemoflow.codecs(): {', '.join(missing)}"
    )


class Collector(Subscriber):
    """Keeps every finished LLM call record."""

    def __init__(self) -> None:
        self.calls: list[LlmCall] = []

    def on_call(self, call: LlmCall) -> None:
        self.calls.append(call)


class Observed:
    """A flow whose records (and OpenInference spans, when the exporter is installed) a test can read."""

    def __init__(self) -> None:
        self.collector = Collector()
        self.span_exporter: InMemorySpanExporter | None = None
        self.provider: TracerProvider | None = None
        subscribers: list[Subscriber] = [self.collector]
        if OpenInferenceExporter is not None:
            self.span_exporter = InMemorySpanExporter()
            self.provider = TracerProvider()
            self.provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
            subscribers.append(OpenInferenceExporter(self.provider))
        self.flow = Flow(subscribers=subscribers)

    def calls(self, count: int) -> list[LlmCall]:
        """The records delivered so far (exactly ``count`` of them, in the order the calls ended)."""
        assert self.flow.flush(FLUSH_TIMEOUT_S), "records were not delivered in time"
        calls = list(self.collector.calls)
        assert len(calls) == count, f"expected {count} records, got {len(calls)}: {calls}"
        self.collector.calls.clear()
        return calls

    def spans(self) -> list[ReadableSpan] | None:
        """The LLM/EMBEDDING spans exported so far (``None`` without the OpenInference exporter)."""
        if self.span_exporter is None:
            return None
        assert self.flow.flush(FLUSH_TIMEOUT_S), "records were not delivered in time"
        spans = list(self.span_exporter.get_finished_spans())
        self.span_exporter.clear()
        return spans

    def close(self) -> None:
        """Shut the flow (and its exporter) down."""
        self.flow.shutdown()
        if self.provider is not None:
            self.provider.shutdown()


@dataclass(frozen=True)
class Expect:
    """The facts one recorded call must carry."""

    codec: str
    model: str | None
    usage: Mapping[str, int | None]
    """Only the counts named here are checked; ``None`` means "not reported"."""
    finish_reason: str | None
    tool_calls: tuple[tuple[str, Any], ...] = ()
    """``(name, parsed arguments)`` of each tool call, in order."""
    text: str | None = None
    reasoning_text: str | None = None
    status: CallStatus = CallStatus.OK
    stream: bool = False
    attempt: int = 1
    http_status: int | None = 200
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_fixture(cls, codec: str, name: str, **overrides: Any) -> Expect:
        """What the fixture's ``expected`` section says the codec makes of the replayed reply."""
        fixture = load_fixture(codec, name)
        expected: dict[str, Any] = fixture["expected"]
        replayed = fixture.get("input")
        model = expected.get("model")
        if model is None and isinstance(replayed, dict):
            model = replayed.get("model") or replayed.get("modelVersion")
        usage = {
            key: value for key, value in (expected.get("usage") or {}).items() if key in _TOKEN_ATTRIBUTES
        }
        tool_calls = tuple((call["name"], call["arguments"]) for call in expected.get("tool_calls") or ())
        values: dict[str, Any] = {
            "codec": codec,
            "model": model,
            "usage": usage,
            "finish_reason": expected.get("finish_reason"),
            "tool_calls": tool_calls,
            "text": expected.get("text"),
            "reasoning_text": expected.get("reasoning_text"),
            "stream": fixture["kind"] == "stream",
        }
        values.update(overrides)
        return cls(**values)


def check_call(call: LlmCall, expect: Expect) -> None:
    """The record carries what ``expect`` says."""
    assert call.codec == expect.codec
    assert call.status is expect.status, (call.status, call.exception, call.error)
    assert call.attempt == expect.attempt
    assert call.http_status == expect.http_status
    assert call.stream is expect.stream
    if expect.model is not None:
        assert call.model == expect.model
    for key, value in expect.usage.items():
        assert getattr(call.usage, key) == value, f"usage.{key}: {getattr(call.usage, key)} != {value}"
    if expect.status is CallStatus.OK:
        response = call.response
        assert response is not None
        if expect.finish_reason is not None:
            assert response.finish_reason.value == expect.finish_reason
        assert [(tc.name, tc.arguments) for tc in response.tool_calls] == list(expect.tool_calls)
        if expect.text is not None:
            assert response.text == expect.text
        if expect.reasoning_text is not None:
            assert response.reasoning_text == expect.reasoning_text


def check_span(span: ReadableSpan, expect: Expect) -> None:
    """The OpenInference span carries what ``expect`` says."""
    attributes = dict(span.attributes or {})
    embeddings = attributes.get("openinference.span.kind") == "EMBEDDING"
    assert attributes.get("openinference.span.kind") in ("LLM", "EMBEDDING")
    if expect.model is not None:
        assert attributes["llm.model_name"] == expect.model
    for key, value in expect.usage.items():
        name = _TOKEN_ATTRIBUTES[key]
        assert attributes.get(name) == value, f"{name}: {attributes.get(name)} != {value}"
    metadata = json.loads(str(attributes["metadata"]))
    assert metadata["attempt"] == expect.attempt
    assert attributes["nemoflow.call.status"] == expect.status.value
    if expect.status is CallStatus.OK:
        assert span.status.status_code is StatusCode.OK
        if expect.finish_reason is not None:
            assert metadata["finish_reason"] == expect.finish_reason
    elif expect.status is CallStatus.ERROR:
        assert span.status.status_code is StatusCode.ERROR
    if not embeddings:
        prefix = "llm.output_messages.0.message.tool_calls"
        for index, (name, arguments) in enumerate(expect.tool_calls):
            assert attributes[f"{prefix}.{index}.tool_call.function.name"] == name
            assert json.loads(str(attributes[f"{prefix}.{index}.tool_call.function.arguments"])) == arguments
        assert f"{prefix}.{len(expect.tool_calls)}.tool_call.function.name" not in attributes


def check_recorded(observed: Observed, *expects: Expect) -> list[LlmCall]:
    """One record (and one span) per expected call, in order, each carrying its facts."""
    calls = observed.calls(len(expects))
    for call, expect in zip(calls, expects, strict=True):
        check_call(call, expect)
    spans = observed.spans()
    if spans is not None:
        assert len(spans) == len(expects), [span.name for span in spans]
        ordered = sorted(spans, key=lambda span: span.start_time or 0)
        by_start = sorted(zip(calls, expects, strict=True), key=lambda pair: pair[0].start_time_ns)
        for span, (_, expect) in zip(ordered, by_start, strict=True):
            check_span(span, expect)
    return calls
