"""The OpenInference exporter: a nemoflow subscriber that turns records into OpenTelemetry spans."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_MESSAGE, EXCEPTION_TYPE
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from nemoflow._otel_ids import next_ids, use_record_ids
from nemoflow._records import CallStatus, LlmCall, ScopeRecord, Subscriber
from nemoflow_exporter_openinference._attributes import (
    call_attributes,
    call_span_name,
    scope_end_attributes,
    scope_start_attributes,
    split_exception,
)
from nemoflow_exporter_openinference._config import HideConfig
from nemoflow_exporter_openinference._provider import build_tracer_provider, default_endpoint, default_project

__all__ = ["EVICTED_ATTRIBUTE", "OpenInferenceExporter"]

_log = logging.getLogger("nemoflow")

_TRACER_NAME = "nemoflow_exporter_openinference"
_TRACER_VERSION = "0.1.0"

EVICTED_ATTRIBUTE = "nemoflow.span.evicted"
"""Set (``True``) on a scope span ended early because too many scopes were open at once."""

_FIRST_TOKEN_EVENT = "first_token"


class OpenInferenceExporter(Subscriber):
    """Exports nemoflow records as OpenInference spans, for Arize Phoenix and other OpenInference backends.

    Every LLM call becomes one span of kind ``LLM`` (``EMBEDDING`` for embeddings) with token counts,
    cost, flattened messages, tool calls and tools; scopes become ``AGENT``/``CHAIN`` spans and tool runs
    ``TOOL`` spans, parented as they were nested. A record with no nemoflow parent nests under the
    application's own OpenTelemetry span, when one was current where the record began.

    Status: ``ok`` calls and scopes get status OK; ``error`` and ``blocked`` calls and failed scopes get
    ERROR and an ``exception`` event (type and message). A ``cancelled`` call (the application stopped
    reading) is not a failure: its status stays UNSET, and ``nemoflow.call.status`` says ``cancelled``.

    Content hiding follows the OpenInference conventions (see :class:`HideConfig`): each ``hide_*`` argument
    left ``None`` is read from its ``OPENINFERENCE_HIDE_*`` environment variable.

    Args:
        tracer_provider: Where spans go. When ``None``, the exporter builds its own provider that sends
            OTLP/HTTP to ``endpoint`` (default: ``PHOENIX_COLLECTOR_ENDPOINT``, else a local Phoenix at
            ``http://127.0.0.1:6006/v1/traces``) for ``project_name`` (default: ``PHOENIX_PROJECT_NAME``,
            else ``default``), and shuts it down with the flow. To use the global provider, pass
            ``opentelemetry.trace.get_tracer_provider()``.
        hide_inputs: Redact ``input.value``; leave out input messages and embedding texts.
        hide_outputs: Redact ``output.value``; leave out output messages.
        hide_input_messages: Leave out input messages (``input.value`` is redacted too).
        hide_output_messages: Leave out output messages (``output.value`` is redacted too).
        hide_input_images: Leave out input images (``input.value`` is redacted too).
        hide_input_text: Redact input message text (``input.value`` is redacted too).
        hide_output_text: Redact output message text (``output.value`` is redacted too).
        hide_embedding_vectors: Leave out embedding vectors.
        hide_llm_invocation_parameters: Leave out ``llm.invocation_parameters``.
        base64_image_max_length: Redact base64 images longer than this (default 32,000 characters).
        endpoint: OTLP/HTTP traces URL of the provider built when ``tracer_provider`` is ``None``.
        project_name: Phoenix project of that provider.
        headers: HTTP headers of that provider's exporter.
        batch: Whether that provider exports in batches (default) or span by span.
        max_open_spans: Most scope spans kept open at once; past it the oldest is ended (and marked
            ``nemoflow.span.evicted``) so a scope that never ends cannot grow memory without bound.

    Raises:
        ValueError: ``max_open_spans`` is below 1, or ``base64_image_max_length`` is negative.
    """

    def __init__(
        self,
        tracer_provider: trace_api.TracerProvider | None = None,
        *,
        hide_inputs: bool | None = None,
        hide_outputs: bool | None = None,
        hide_input_messages: bool | None = None,
        hide_output_messages: bool | None = None,
        hide_input_images: bool | None = None,
        hide_input_text: bool | None = None,
        hide_output_text: bool | None = None,
        hide_embedding_vectors: bool | None = None,
        hide_llm_invocation_parameters: bool | None = None,
        base64_image_max_length: int | None = None,
        endpoint: str | None = None,
        project_name: str | None = None,
        headers: Mapping[str, str] | None = None,
        batch: bool = True,
        max_open_spans: int = 10_000,
    ) -> None:
        if isinstance(max_open_spans, bool) or not isinstance(max_open_spans, int) or max_open_spans < 1:
            raise ValueError(f"max_open_spans must be an integer of at least 1, got {max_open_spans!r}")
        self.config = HideConfig.resolve(
            hide_inputs=hide_inputs,
            hide_outputs=hide_outputs,
            hide_input_messages=hide_input_messages,
            hide_output_messages=hide_output_messages,
            hide_input_images=hide_input_images,
            hide_input_text=hide_input_text,
            hide_output_text=hide_output_text,
            hide_embedding_vectors=hide_embedding_vectors,
            hide_llm_invocation_parameters=hide_llm_invocation_parameters,
            base64_image_max_length=base64_image_max_length,
        )
        """The resolved content-hiding options."""
        self._owns_provider = tracer_provider is None
        if tracer_provider is None:
            # Shut down with the flow, not by the SDK's own exit hook: nemoflow delivers its last records
            # at exit, and a provider already shut down would drop them.
            tracer_provider = build_tracer_provider(
                endpoint or default_endpoint(),
                project_name or default_project(),
                batch=batch,
                headers=headers,
                shutdown_on_exit=False,
            )
        self._provider = tracer_provider
        self._tracer = tracer_provider.get_tracer(_TRACER_NAME, _TRACER_VERSION)
        use_record_ids(self._tracer)  # spans get the ids nemoflow gave the records (and sent upstream)
        self._max_open = max_open_spans
        self._lock = threading.Lock()
        self._open: OrderedDict[int, Span] = OrderedDict()
        # Contexts of scopes already ended, so records that arrive late (a stream read after its scope
        # closed) still find their parent; ``True`` marks those ended by eviction.
        self._ended: OrderedDict[int, tuple[SpanContext, bool]] = OrderedDict()
        self.evicted_spans = 0
        """Scope spans ended early because ``max_open_spans`` were open."""
        self._shut_down = False

    # ------------------------------------------------------------------------------------------- set-up

    @property
    def tracer_provider(self) -> trace_api.TracerProvider:
        """The provider spans are created with."""
        return self._provider

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called (later records are ignored)."""
        return self._shut_down

    @property
    def open_spans(self) -> int:
        """Scope spans currently open (started, not yet ended)."""
        return len(self._open)

    # ------------------------------------------------------------------------------------------- parents

    def _parent_context(self, parent_id: int | None, otel_context: Any) -> Context:
        if parent_id is not None:
            span = self._open.get(parent_id)
            if span is not None:
                return trace_api.set_span_in_context(span, Context())
            ended = self._ended.get(parent_id)
            if ended is not None:
                return trace_api.set_span_in_context(NonRecordingSpan(ended[0]), Context())
        if isinstance(otel_context, Context):
            return otel_context
        return Context()  # a new root: never the delivery thread's own context

    def _remember_ended(self, span_id: int, context: SpanContext, evicted: bool) -> None:
        self._ended[span_id] = (context, evicted)
        self._ended.move_to_end(span_id)
        while len(self._ended) > self._max_open:
            self._ended.popitem(last=False)

    def _evict_oldest(self) -> None:
        span_id, span = self._open.popitem(last=False)
        span.set_attribute(EVICTED_ATTRIBUTE, True)
        span.end()
        self._remember_ended(span_id, span.get_span_context(), True)
        self.evicted_spans += 1
        if self.evicted_spans == 1:
            _log.warning(
                "nemoflow: more than %d scopes open at once; ending the oldest early (logged once)",
                self._max_open,
            )

    def _start_scope_span(self, scope: ScopeRecord) -> Span:
        with next_ids(scope.span_id, scope.trace_id):
            return self._tracer.start_span(
                scope.name,
                context=self._parent_context(scope.parent_id, scope.otel_context),
                kind=SpanKind.INTERNAL,
                attributes=scope_start_attributes(scope, self.config),
                start_time=scope.start_time_ns,
            )

    # ------------------------------------------------------------------------------------------- records

    def on_scope_start(self, scope: ScopeRecord) -> None:
        """Open the span of a scope or tool run and keep it until the scope ends."""
        with self._lock:
            if self._shut_down or scope.span_id in self._open:
                return
            span = self._start_scope_span(scope)
            while len(self._open) >= self._max_open:
                self._evict_oldest()
            self._open[scope.span_id] = span

    def on_scope_end(self, scope: ScopeRecord) -> None:
        """Finish the span of a scope or tool run: result, status, end time."""
        with self._lock:
            if self._shut_down:
                return
            span = self._open.pop(scope.span_id, None)
            if span is None:
                if scope.span_id in self._ended:
                    return  # ended by eviction (or announced twice): never export it a second time
                span = self._start_scope_span(scope)  # its start announcement was dropped
            span.set_attributes(scope_end_attributes(scope, self.config))
            if scope.status == "error":
                kind, message = split_exception(scope.error or "Error")
                _record_failure(span, kind, message, scope.end_time_ns)
            else:
                span.set_status(Status(StatusCode.OK))
            span.end(end_time=scope.end_time_ns)
            self._remember_ended(scope.span_id, span.get_span_context(), False)

    def on_call(self, call: LlmCall) -> None:
        """Emit the span of one finished LLM call."""
        with self._lock:
            if self._shut_down:
                return
            context = self._parent_context(call.parent_id, call.otel_context)
        with next_ids(call.span_id, call.trace_id):
            span = self._tracer.start_span(
                call_span_name(call),
                context=context,
                kind=SpanKind.CLIENT,
                attributes=call_attributes(call, self.config),
                start_time=call.start_time_ns,
            )
        if call.first_token_time_ns is not None:
            span.add_event(_FIRST_TOKEN_EVENT, timestamp=call.first_token_time_ns)
        failure = _call_failure(call)
        if failure is not None:
            _record_failure(span, failure[0], failure[1], call.end_time_ns)
        elif call.status is CallStatus.OK:
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=call.end_time_ns)

    # ------------------------------------------------------------------------------------------- lifecycle

    def flush(self, timeout: float) -> bool:
        """Export the spans the provider buffers; ``False`` when ``timeout`` seconds were not enough."""
        force_flush = getattr(self._provider, "force_flush", None)
        if force_flush is None:
            return True
        return bool(force_flush(timeout_millis=max(0, int(timeout * 1000))))

    def shutdown(self) -> None:
        """End the spans of scopes still open and, when the exporter built its provider, shut it down."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            open_spans = list(self._open.values())
            self._open.clear()
        for span in open_spans:
            span.end()
        if self._owns_provider:
            shutdown = getattr(self._provider, "shutdown", None)
            if shutdown is not None:
                shutdown()


def _call_failure(call: LlmCall) -> tuple[str, str] | None:
    """``(type, message)`` of what made the call fail, or ``None`` when it did not fail."""
    if call.status is CallStatus.BLOCKED:
        return "GuardrailBlocked", call.block_reason or "blocked by a guardrail"
    if call.status is not CallStatus.ERROR:  # ok, or cancelled by the application: not a failure
        return None
    if call.error is not None:
        error = call.error
        kind = error.type or error.code or error.kind.value
        message = error.message or error.body or error.kind.value
        if error.status is not None:
            message = f"HTTP {error.status}: {message}"
        return kind, message
    if call.exception is not None:
        return split_exception(call.exception)
    if call.http_status is not None:
        return "HTTPError", f"HTTP {call.http_status}"
    return "Error", "the call failed"


def _record_failure(span: Span, kind: str, message: str, when: int | None) -> None:
    attributes: dict[str, AttributeValue] = {EXCEPTION_TYPE: kind, EXCEPTION_MESSAGE: message}
    span.add_event("exception", attributes=attributes, timestamp=when)
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}"))
