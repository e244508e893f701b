"""The anthropic SDK's own OpenTelemetry spans next to nemoflow's: what an application gets, and the switches.

anthropic 2.x traces every API call itself: one ``CLIENT`` span named ``anthropic.messages.create`` per
SDK call (retries included, ``http.request.resend_count``), with ``gen_ai.usage.*`` token counts. It is on
by default whenever a tracer provider is available (the global one, or ``open_telemetry={"tracer_provider":
...}``), and the span is current while the SDK sends, so nemoflow's per-attempt spans nest under it.
``open_telemetry=False`` or ``ANTHROPIC_OPEN_TELEMETRY=false`` turn the SDK's spans off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import opentelemetry.trace
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from nemoflow import Flow
from tests.e2e_sdk.observe import requires_codec
from tests.e2e_sdk.replay import Replay, error_reply, fixture_reply, load_fixture, stream_reply

pytestmark = requires_codec("anthropic-messages")

openinference = pytest.importorskip(
    "nemoflow_exporter_openinference", reason="needs the OpenInference exporter"
)
genai_exporter = pytest.importorskip("nemoflow_exporter_genai", reason="needs the GenAI exporter")

MODEL = "claude-sonnet-4-6"
MESSAGES: list[Any] = [{"role": "user", "content": "Hello"}]
SDK_SCOPE = "com.anthropic.sdk.python"
SDK_SPAN = "anthropic.messages.create"


class Tracing:
    """One tracer provider, shared by the SDK and by nemoflow's two exporters, writing to memory."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.flow = Flow(
            subscribers=[
                openinference.OpenInferenceExporter(self.provider),
                genai_exporter.GenAIExporter(self.provider),
            ]
        )

    def spans(self) -> tuple[list[ReadableSpan], list[ReadableSpan], list[ReadableSpan]]:
        """``(sdk, openinference, genai)`` spans, each in start order."""
        assert self.flow.flush(10)
        spans = sorted(self.memory.get_finished_spans(), key=lambda span: span.start_time or 0)
        by_scope: dict[str, list[ReadableSpan]] = {}
        for span in spans:
            scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
            by_scope.setdefault(scope, []).append(span)
        assert set(by_scope) <= {SDK_SCOPE, "nemoflow_exporter_openinference", "nemoflow_exporter_genai"}
        return (
            by_scope.get(SDK_SCOPE, []),
            by_scope.get("nemoflow_exporter_openinference", []),
            by_scope.get("nemoflow_exporter_genai", []),
        )

    def client(self, base_url: str, **options: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key="sk-ant-e2e", base_url=base_url, http_client=self.flow.httpx2_client(), **options
        )


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    made = Tracing()
    try:
        yield made
    finally:
        made.flow.shutdown()
        made.provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_sdk_span_is_the_parent_of_nemoflow_attempt_spans(
    base_url: str, replay: Replay, tracing: Tracing
) -> None:
    name = "response-text-end-turn-cached"
    rate_limited = error_reply(
        "anthropic-messages", "error-429-rate-limit-retry-after", headers={"retry-after-ms": "1"}
    )
    replay.expect(rate_limited, fixture_reply("anthropic-messages", name))
    with tracing.client(
        base_url, max_retries=1, open_telemetry={"tracer_provider": tracing.provider}
    ) as client:
        client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)

    [sdk], openinference_spans, genai_spans = tracing.spans()
    assert (sdk.name, sdk.kind) == (SDK_SPAN, SpanKind.CLIENT)
    assert attrs(sdk)["http.request.resend_count"] == 1  # one SDK span for both attempts
    assert len(openinference_spans) == len(genai_spans) == 2  # nemoflow: one span per attempt
    for span in (*openinference_spans, *genai_spans):
        assert span.context is not None and sdk.context is not None
        assert span.context.trace_id == sdk.context.trace_id and parent_id(span) == sdk.context.span_id
    # The SDK sends its span's trace context upstream; nemoflow forwards the header untouched.
    [first, retry] = replay.take(2)
    assert first.headers["traceparent"] == retry.headers["traceparent"]
    assert f"{sdk.context.trace_id:032x}" in first.headers["traceparent"]

    # Token counts appear on the SDK span *and* on nemoflow's: in gen_ai.* terms, twice.
    usage = load_fixture("anthropic-messages", name)["expected"]["usage"]
    answered = genai_spans[1]
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        assert attrs(sdk)[key] == attrs(answered)[key]
    assert attrs(sdk)["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attrs(openinference_spans[1])["llm.token_count.prompt"] == usage["prompt_tokens"]
    assert not any(key.startswith("llm.") for key in attrs(sdk))  # no OpenInference kind or token keys


@pytest.mark.parametrize("how", ["option", "environment"])
def test_sdk_spans_switched_off_leave_nemoflow_alone(
    how: str, base_url: str, replay: Replay, tracing: Tracing, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the application had registered a global tracer provider (Phoenix's register() does).
    monkeypatch.setattr(opentelemetry.trace, "_TRACER_PROVIDER", tracing.provider)
    options: dict[str, Any] = {}
    if how == "option":
        options["open_telemetry"] = False
    else:
        monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")  # read when the client is constructed
    replay.expect(stream_reply("anthropic-messages", "stream-text"))
    with tracing.client(base_url, max_retries=0, **options) as client:
        for _ in client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True):
            pass

    sdk, openinference_spans, genai_spans = tracing.spans()
    assert sdk == []
    assert len(openinference_spans) == len(genai_spans) == 1
    assert parent_id(openinference_spans[0]) is None and parent_id(genai_spans[0]) is None
    assert "traceparent" not in replay.take(1)[0].headers


def test_sdk_spans_are_on_by_default_with_a_global_provider(
    base_url: str, replay: Replay, tracing: Tracing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opentelemetry.trace, "_TRACER_PROVIDER", tracing.provider)
    replay.expect(fixture_reply("anthropic-messages", "response-tool-use"))
    with tracing.client(base_url, max_retries=0) as client:
        client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)

    [sdk], [openinference_span], [genai_span] = tracing.spans()
    assert sdk.name == SDK_SPAN and sdk.context is not None
    assert parent_id(openinference_span) == parent_id(genai_span) == sdk.context.span_id
    replay.take(1)
