"""The GenAI client metrics: operation duration, token usage and time to first chunk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry.metrics import MeterProvider
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gen_ai_metrics
from opentelemetry.util.types import AttributeValue

from nemoflow._records import CallStatus, LlmCall

from . import _attributes as keys

__all__ = ["GenAIMetrics"]

OPERATION_DURATION: Final = keys.semconv_key(
    _gen_ai_metrics, "GEN_AI_CLIENT_OPERATION_DURATION", "gen_ai.client.operation.duration"
)
TOKEN_USAGE: Final = keys.semconv_key(
    _gen_ai_metrics, "GEN_AI_CLIENT_TOKEN_USAGE", "gen_ai.client.token.usage"
)
TIME_TO_FIRST_CHUNK: Final = keys.semconv_key(
    _gen_ai_metrics,
    "GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK",
    "gen_ai.client.operation.time_to_first_chunk",
)

# Bucket boundaries the conventions advise for these histograms.
_SECONDS_BUCKETS: Final = [
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
]
_TOKEN_BUCKETS: Final = [
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
]

_SHARED_KEYS: Final = (
    keys.OPERATION_NAME,
    keys.PROVIDER_NAME,
    keys.REQUEST_MODEL,
    keys.RESPONSE_MODEL,
    keys.SERVER_ADDRESS,
    keys.SERVER_PORT,
)


class GenAIMetrics:
    """Records the GenAI client histograms for finished calls."""

    def __init__(self, meter_provider: MeterProvider, *, version: str, schema_url: str) -> None:
        """Create the instruments on a meter of ``meter_provider``."""
        meter = meter_provider.get_meter("nemoflow_exporter_genai", version, schema_url=schema_url)
        self._duration = meter.create_histogram(
            OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=[float(bound) for bound in _TOKEN_BUCKETS],
        )
        self._first_chunk = meter.create_histogram(
            TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from issuing the request to receiving the first chunk of a streamed reply.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )

    def record(self, call: LlmCall, span_attributes: Mapping[str, AttributeValue]) -> None:
        """Record one call with the span's low-cardinality attributes (guardrail blocks are skipped)."""
        if call.status is CallStatus.BLOCKED:
            return
        shared = {key: span_attributes[key] for key in _SHARED_KEYS if key in span_attributes}
        duration = dict(shared)
        if keys.ERROR_TYPE in span_attributes:
            duration[keys.ERROR_TYPE] = span_attributes[keys.ERROR_TYPE]
        self._duration.record((call.end_time_ns - call.start_time_ns) / 1e9, duration)
        if call.usage.prompt_tokens is not None:
            self._tokens.record(call.usage.prompt_tokens, {**shared, keys.TOKEN_TYPE: "input"})
        if call.usage.completion_tokens is not None:
            self._tokens.record(call.usage.completion_tokens, {**shared, keys.TOKEN_TYPE: "output"})
        if call.stream and call.first_token_time_ns is not None:
            self._first_chunk.record((call.first_token_time_ns - call.start_time_ns) / 1e9, shared)
