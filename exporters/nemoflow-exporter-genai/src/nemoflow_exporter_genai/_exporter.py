"""The subscriber that turns nemoflow records into GenAI-convention spans (and, optionally, metrics)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from importlib import metadata
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
)

from nemoflow._model import ErrorKind
from nemoflow._otel_ids import next_ids, use_record_ids
from nemoflow._records import CallStatus, LlmCall, ScopeRecord, Subscriber

from . import _attributes as keys
from ._metrics import GenAIMetrics

__all__ = ["CAPTURE_CONTENT_ENV", "SCHEMA_URL", "SEMCONV_VERSION", "GenAIExporter"]

_log = logging.getLogger("nemoflow")

SEMCONV_VERSION: Final = "1.44.0"
"""Version of the OpenTelemetry semantic conventions whose ``gen_ai.*`` definitions this exporter emits."""

SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
"""Schema URL set on the exporter's tracer and meter."""

CAPTURE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""Environment variable that turns content capture on (``true``) when the constructor leaves it unset."""

_CAPTURE_VALUES: Final = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})
# Values that mean "no content on spans": the boolean offs, and the OpenTelemetry enum values that
# keep content off spans (this exporter emits no events, so ``event_only`` records none either).
_NO_CAPTURE_VALUES: Final = frozenset({"", "false", "0", "no", "off", "no_content", "event_only"})
_INCOMPLETE: Final = "nemoflow.scope.incomplete"

try:
    _VERSION = metadata.version("nemoflow-exporter-genai")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    _VERSION = "0.0.0"


def capture_content_from_env() -> bool:
    """Whether :data:`CAPTURE_CONTENT_ENV` asks for content (``true``, ``1``, ``yes``, ``span_only``...).

    Any other value keeps content off; one that is neither on nor a known off value (``false``, ``0``,
    ``no``, ``off``, ``no_content``, ``event_only``) is also reported with a warning, since a typo must
    not pass for a choice.
    """
    raw = os.environ.get(CAPTURE_CONTENT_ENV, "")
    value = raw.strip().lower()
    if value in _CAPTURE_VALUES:
        return True
    if value not in _NO_CAPTURE_VALUES:
        _log.warning(
            "nemoflow: ignoring %s=%r (expected true or false, or span_only, span_and_event, event_only, "
            "no_content); message content is not captured",
            CAPTURE_CONTENT_ENV,
            raw,
        )
    return False


def _default_tracer_provider() -> tuple[TracerProvider, bool]:
    """The application's SDK provider when it set one globally, else a new one exporting OTLP over HTTP."""
    current = trace.get_tracer_provider()
    if isinstance(current, SdkTracerProvider):
        return current, False
    provider = SdkTracerProvider(resource=Resource.create())
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        _log.warning(
            "nemoflow: GenAIExporter has no tracer provider and opentelemetry-exporter-otlp-proto-http "
            "is not installed; spans go nowhere. Pass tracer_provider=... or install the OTLP exporter."
        )
        return provider, True
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider, True


def call_error_type(call: LlmCall) -> str | None:
    """``error.type`` of a call: error class, HTTP status or exception type; ``None`` when it did not fail.

    A call the application cancelled is not a failure. A guardrail block is (``GuardrailBlocked``, the
    exception the application sees).
    """
    if call.status is CallStatus.BLOCKED:
        return "GuardrailBlocked"
    if call.status is not CallStatus.ERROR:
        return None
    error = call.error
    if error is not None:
        if error.kind is not ErrorKind.UNKNOWN:
            return error.kind.value
        if error.status is not None:
            return str(error.status)
        return error.type or error.code or "_OTHER"
    if call.exception:
        return keys.error_type_of(call.exception)
    if call.http_status is not None and call.http_status >= 400:
        return str(call.http_status)
    return "_OTHER"


def _error_description(call: LlmCall) -> str | None:
    if call.status is CallStatus.BLOCKED:
        return (
            f"blocked by a guardrail: {call.block_reason}" if call.block_reason else "blocked by a guardrail"
        )
    if call.error is not None:
        return call.error.message or call.error.kind.value
    return call.exception


class GenAIExporter(Subscriber):
    """Exports nemoflow records as spans following the OpenTelemetry GenAI semantic conventions.

    LLM calls become ``CLIENT`` spans named ``{gen_ai.operation.name} {gen_ai.request.model}``; scopes become
    ``INTERNAL`` spans: ``invoke_agent {name}`` (AGENT), ``invoke_workflow {name}`` (CHAIN) and
    ``execute_tool {name}`` (TOOL). A scope's span opens when the scope starts, so everything inside nests
    under it; a record without a nemoflow parent nests under the application span that was current when
    it started, if any.

    Args:
        tracer_provider: Where spans go. By default the application's global SDK provider when one is set;
            otherwise the exporter makes its own, exporting OTLP over HTTP (configured by the usual
            ``OTEL_EXPORTER_OTLP_*`` variables), and shuts it down in :meth:`shutdown`.
        capture_content: Record messages, system instructions, tool definitions and tool arguments and
            results (opt-in attributes that may hold personal data). ``None`` (default) reads
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``; unset or unrecognized means off
            (an unrecognized value is reported with a warning).
        meter_provider: When given, also record the ``gen_ai.client.operation.duration``,
            ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.time_to_first_chunk`` histograms.
        max_open_spans: Bound on scope spans kept open, and on ended scopes remembered so that late
            records still find their parent; the oldest are let go first.

    Raises:
        TypeError: ``capture_content`` is not ``True``, ``False`` or ``None``.
        ValueError: ``max_open_spans`` is not an integer of at least 1.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        capture_content: bool | None = None,
        meter_provider: MeterProvider | None = None,
        max_open_spans: int = 10_000,
    ) -> None:
        if capture_content is not None and not isinstance(capture_content, bool):
            # a string such as "false" would count as true and record personal data
            raise TypeError(f"capture_content must be True, False or None, not {capture_content!r}")
        if tracer_provider is None:
            tracer_provider, self._owns_provider = _default_tracer_provider()
        else:
            self._owns_provider = False
        self._provider = tracer_provider
        self._tracer = tracer_provider.get_tracer("nemoflow_exporter_genai", _VERSION, schema_url=SCHEMA_URL)
        use_record_ids(self._tracer)  # spans get the ids nemoflow gave the records (and sent upstream)
        self._meter_provider = meter_provider
        self._metrics = (
            GenAIMetrics(meter_provider, version=_VERSION, schema_url=SCHEMA_URL)
            if meter_provider is not None
            else None
        )
        self.capture_content: bool = (
            capture_content_from_env() if capture_content is None else capture_content
        )
        """Whether opt-in content attributes are recorded."""
        if isinstance(max_open_spans, bool) or not isinstance(max_open_spans, int) or max_open_spans < 1:
            raise ValueError(f"max_open_spans must be an integer of at least 1, got {max_open_spans!r}")
        self._max = max_open_spans
        self._lock = threading.Lock()
        self._open: OrderedDict[int, Span] = OrderedDict()
        self._ended: OrderedDict[int, SpanContext] = OrderedDict()

    @property
    def tracer_provider(self) -> TracerProvider:
        """The provider spans are created on."""
        return self._provider

    # ----------------------------------------------------------------------------------------- parents

    def _parent_context(self, parent_id: int | None, outer: Any) -> Context:
        if parent_id is not None:
            with self._lock:
                span = self._open.get(parent_id)
                ended = self._ended.get(parent_id) if span is None else None
            if span is not None:
                return trace.set_span_in_context(span, Context())
            if ended is not None:
                return trace.set_span_in_context(NonRecordingSpan(ended), Context())
        if isinstance(outer, Context):
            return outer
        return Context()  # a new trace, whatever the delivery thread's own context holds

    def _remember_ended(self, span_id: int, context: SpanContext) -> None:
        with self._lock:
            self._ended[span_id] = context
            self._ended.move_to_end(span_id)
            while len(self._ended) > self._max:
                self._ended.popitem(last=False)

    # ----------------------------------------------------------------------------------------- records

    def _start_scope_span(self, scope: ScopeRecord) -> Span:
        with next_ids(scope.span_id, scope.trace_id):
            return self._tracer.start_span(
                keys.scope_span_name(scope),
                context=self._parent_context(scope.parent_id, scope.otel_context),
                kind=SpanKind.INTERNAL,
                attributes=keys.scope_attributes(scope, capture_content=self.capture_content),
                start_time=scope.start_time_ns,
            )

    def on_scope_start(self, scope: ScopeRecord) -> None:
        """Open the scope's span, so children recorded before it ends nest under it."""
        span = self._start_scope_span(scope)
        evicted: list[tuple[int, Span]] = []
        with self._lock:
            self._open[scope.span_id] = span
            while len(self._open) > self._max:
                evicted.append(self._open.popitem(last=False))
        for span_id, old in evicted:
            self._end_incomplete(span_id, old)

    def _end_incomplete(self, span_id: int, span: Span) -> None:
        span.set_attribute(_INCOMPLETE, True)
        span.end()
        self._remember_ended(span_id, span.get_span_context())

    def on_scope_end(self, scope: ScopeRecord) -> None:
        """Close the scope's span with its end time, status and (for tools, with capture on) result."""
        with self._lock:
            span = self._open.pop(scope.span_id, None)
        if span is None:  # its start was never seen (exporter added late) or was let go
            span = self._start_scope_span(scope)
        span.set_attributes(keys.scope_end_attributes(scope, capture_content=self.capture_content))
        if scope.status == "error":
            span.set_status(Status(StatusCode.ERROR, scope.error))
        span.end(end_time=scope.end_time_ns if scope.end_time_ns is not None else time.time_ns())
        self._remember_ended(scope.span_id, span.get_span_context())

    def on_call(self, call: LlmCall) -> None:
        """Emit one ``CLIENT`` span for the call, with its own start and end times."""
        error_type = call_error_type(call)
        attributes = keys.call_attributes(call, error_type=error_type)
        if self.capture_content:
            attributes.update(keys.content_attributes(call))
        with next_ids(call.span_id, call.trace_id):
            span = self._tracer.start_span(
                keys.call_span_name(call),
                context=self._parent_context(call.parent_id, call.otel_context),
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=call.start_time_ns,
            )
        if error_type is not None:
            span.set_status(Status(StatusCode.ERROR, _error_description(call)))
        span.end(end_time=call.end_time_ns)
        if self._metrics is not None:
            self._metrics.record(call, attributes)

    # ----------------------------------------------------------------------------------------- lifecycle

    def flush(self, timeout: float) -> bool:
        """Force-flush the tracer provider (and the meter provider, when given) within ``timeout`` seconds."""
        millis = max(0, int(timeout * 1000))
        done = True
        for provider in (self._provider, self._meter_provider):
            force_flush = getattr(provider, "force_flush", None)
            if callable(force_flush):
                done = bool(force_flush(millis)) and done
        return done

    def shutdown(self) -> None:
        """End the spans of scopes still open (marked incomplete); shut down a provider this exporter made.

        A provider passed in (or the application's global one) is left running: its owner shuts it down.
        """
        with self._lock:
            leftover = list(self._open.items())
            self._open.clear()
        for span_id, span in leftover:
            self._end_incomplete(span_id, span)
        if self._owns_provider:
            shutdown = getattr(self._provider, "shutdown", None)
            if callable(shutdown):
                shutdown()
