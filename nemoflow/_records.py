"""What the runtime hands to subscribers: finished LLM calls, scopes and tool runs.

Records are immutable snapshots built when something ends (scopes also announce their start, so exporters
can open a parent span before its children finish). Ids are our own; exporters map them onto their
backend's ids. ``otel_context`` carries the OpenTelemetry context that was current when a root record
started, so nemoflow spans nest under an application's own spans.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from nemoflow._model import AnnotatedLlmError, AnnotatedLlmRequest, AnnotatedLlmResponse, Usage

if TYPE_CHECKING:
    from nemoflow._cost import Cost

__all__ = [
    "CallStatus",
    "FlowStats",
    "LlmCall",
    "ScopeKind",
    "ScopeRecord",
    "Subscriber",
    "UsageSource",
]

UsageSource: TypeAlias = Literal["reported", "missing"]
"""Where token counts come from: the provider reported them, or they are missing (never invented)."""

ScopeKind: TypeAlias = Literal["AGENT", "CHAIN", "TOOL"]
"""Kinds of parent spans: an agent run, a chain of steps, or one tool execution."""


class CallStatus(enum.StrEnum):
    """How an LLM call ended."""

    OK = "ok"
    """The provider answered and the reply was read to its end."""
    ERROR = "error"
    """The provider answered with an error, the connection failed, or the stream broke."""
    CANCELLED = "cancelled"
    """The application stopped reading (closed the stream, was cancelled) before the end."""
    BLOCKED = "blocked"
    """A guardrail refused the request; nothing was sent."""


@dataclass(frozen=True, slots=True)
class ScopeRecord:
    """A scope (``flow.scope``) or a tool run (``flow.tool``): a parent span for what happens inside."""

    span_id: int
    """Our id of this scope."""
    parent_id: int | None
    """Id of the enclosing scope, if any."""
    trace_id: int
    """Id shared by everything under the same root scope."""
    kind: ScopeKind
    """``AGENT``, ``CHAIN`` or ``TOOL``."""
    name: str
    """Scope or tool name."""
    start_time_ns: int
    """Wall-clock start (``time.time_ns``)."""
    end_time_ns: int | None = None
    """Wall-clock end; ``None`` in the start announcement."""
    status: Literal["ok", "error"] = "ok"
    """``error`` when the block raised."""
    error: str | None = None
    """``TypeName: message`` of the exception that ended the scope."""
    session_id: str | None = None
    """Session id set on this scope or inherited."""
    user_id: str | None = None
    """User id set on this scope or inherited."""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Extra attributes given to the scope."""
    tool_arguments: Any = None
    """Tool runs: the arguments."""
    tool_result: Any = None
    """Tool runs: what ``t.result`` was set to."""
    tool_call_id: str | None = None
    """Tool runs: the model's call id this run answers."""
    otel_context: Any = field(default=None, compare=False, repr=False)
    """OpenTelemetry context current when a root scope started (``None`` for nested scopes)."""


@dataclass(frozen=True, slots=True)
class LlmCall:
    """One finished LLM call (one HTTP attempt), as recorded: sanitized, with usage and cost."""

    call_id: str
    """Unique id of this record."""
    span_id: int
    """Our id of this call."""
    parent_id: int | None
    """Id of the enclosing scope, if any."""
    trace_id: int
    """Trace id shared with the enclosing scopes."""
    codec: str
    """Codec that decoded the call (``openai-chat`` ...)."""
    provider: str
    """Provider family (``openai`` ...)."""
    operation: str
    """``chat`` or ``embeddings``."""
    method: str
    """HTTP method."""
    url: str
    """Request URL with credentials in the query (``key=``) removed."""
    start_time_ns: int
    """Wall-clock start of the request."""
    end_time_ns: int
    """Wall-clock end: last byte read, error, or cancellation."""
    status: CallStatus
    """How the call ended."""
    request: AnnotatedLlmRequest | None = None
    """The request as sent (after policies), sanitized; ``None`` when content capture is off."""
    response: AnnotatedLlmResponse | None = None
    """The reply (possibly partial), sanitized; ``None`` when there was none."""
    error: AnnotatedLlmError | None = None
    """Provider error (HTTP error body or stream error event), classified."""
    exception: str | None = None
    """``TypeName: message`` of a transport exception (connection reset, timeout, ...)."""
    http_status: int | None = None
    """HTTP status of the response."""
    first_byte_time_ns: int | None = None
    """When the response headers arrived."""
    first_token_time_ns: int | None = None
    """Streams: when the first content arrived."""
    attempt: int = 1
    """1 for the first try; SDK retries count up (from ``x-stainless-retry-count``)."""
    stream: bool = False
    """Whether the reply was streamed."""
    usage: Usage = field(default_factory=Usage)
    """Token counts as reported (fields ``None`` when not reported)."""
    usage_source: UsageSource = "missing"
    """``reported`` when the provider reported any count, else ``missing``."""
    cost: Cost | None = None
    """Cost of the call; ``None`` when unknown (never zero by guess)."""
    model: str | None = None
    """Model the provider says answered, else the requested one."""
    scope_path: tuple[str, ...] = ()
    """Names of the enclosing scopes, outermost first."""
    session_id: str | None = None
    """Session id from the enclosing scopes."""
    user_id: str | None = None
    """User id from the enclosing scopes."""
    block_reason: str | None = None
    """For ``blocked`` calls: the guardrail's reason."""
    policies_applied: tuple[str, ...] = ()
    """Names of the policies that changed the request."""
    content_truncated: bool = False
    """Streams: recorded text was cut at the flow's ``max_recorded_text`` (the application got it all)."""
    otel_context: Any = field(default=None, compare=False, repr=False)
    """OpenTelemetry context current when a call without a nemoflow parent started."""

    @property
    def duration_ms(self) -> float:
        """Wall-clock duration in milliseconds."""
        return (self.end_time_ns - self.start_time_ns) / 1e6

    @property
    def time_to_first_token_ms(self) -> float | None:
        """Milliseconds from request start to first content (streams), when known."""
        if self.first_token_time_ns is None:
            return None
        return (self.first_token_time_ns - self.start_time_ns) / 1e6


@dataclass(frozen=True, slots=True)
class FlowStats:
    """Counters of one flow, for health checks (``flow.stats()``)."""

    calls_recorded: int
    """LLM call records handed to subscribers."""
    passed_through: int
    """Requests no codec claimed (forwarded untouched)."""
    events_dropped: int
    """Records dropped because the subscriber queue was full."""
    errors: Mapping[str, int]
    """Contained internal errors by kind (``codec``, ``policy``, ``sanitizer``, ``subscriber``, ...)."""


class Subscriber:
    """Receives records off the caller's hot path, in order, on the flow's delivery thread.

    Override what you need; every method is a no-op here. Exceptions are contained and counted
    (``flow.stats().errors["subscriber"]``): a subscriber can never break an application's call.
    """

    def on_scope_start(self, scope: ScopeRecord) -> None:
        """A scope or tool run began (``end_time_ns`` is ``None``)."""

    def on_scope_end(self, scope: ScopeRecord) -> None:
        """A scope or tool run ended."""

    def on_call(self, call: LlmCall) -> None:
        """An LLM call ended (one record per HTTP attempt)."""

    def flush(self, timeout: float) -> bool:
        """Push out anything buffered; return whether it finished within ``timeout`` seconds."""
        return True

    def shutdown(self) -> None:
        """Release resources; called once when the flow shuts down."""
