"""Make an exporter's OpenTelemetry spans carry the ids nemoflow gave its records.

nemoflow draws a call's span and trace ids before the request is sent (so they can travel upstream in a
``traceparent`` header); an exporter that creates the call's span later must give the span those same
ids. :func:`use_record_ids` swaps the id generator of one SDK tracer (never its provider's) for one that
hands out the ids queued with :func:`next_ids` on the current thread, and otherwise asks the original.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import IdGenerator

__all__ = ["RecordIdGenerator", "next_ids", "use_record_ids"]


class _Queued(threading.local):
    span_id: int | None = None
    trace_id: int | None = None


_queued = _Queued()


class RecordIdGenerator(IdGenerator):
    """Returns the ids queued for this thread (each once), else those of the generator it replaced."""

    def __init__(self, fallback: IdGenerator) -> None:
        self.fallback = fallback
        """The tracer's original generator."""

    def generate_span_id(self) -> int:
        """The queued span id, or a new one from the fallback."""
        span_id, _queued.span_id = _queued.span_id, None
        return span_id if span_id is not None else self.fallback.generate_span_id()

    def generate_trace_id(self) -> int:
        """The queued trace id, or a new one from the fallback."""
        trace_id, _queued.trace_id = _queued.trace_id, None
        return trace_id if trace_id is not None else self.fallback.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        """Whether trace ids are random: ours are (and the fallback says for its own)."""
        check = getattr(self.fallback, "is_trace_id_random", None)
        return bool(check()) if check is not None else False


def use_record_ids(tracer: Any) -> None:
    """Let ``tracer`` take its ids from :func:`next_ids`; nothing happens unless it is an SDK tracer."""
    if not isinstance(tracer, SdkTracer):  # a no-op or proxy tracer has no ids to set
        return
    current = tracer.id_generator
    if not isinstance(current, RecordIdGenerator):
        tracer.id_generator = RecordIdGenerator(current)


@contextmanager
def next_ids(span_id: int, trace_id: int) -> Iterator[None]:
    """Queue the ids of the next span this thread starts (the trace id is used only for a root span)."""
    _queued.span_id, _queued.trace_id = span_id, trace_id
    try:
        yield
    finally:
        _queued.span_id = _queued.trace_id = None
