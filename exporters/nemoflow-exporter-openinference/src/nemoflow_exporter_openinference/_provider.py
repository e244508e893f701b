"""Building a TracerProvider that sends OpenInference spans to Phoenix (or any OTLP/HTTP collector)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from openinference.semconv.resource import ResourceAttributes
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_PROJECT",
    "MAX_SPAN_ATTRIBUTES",
    "build_tracer_provider",
    "default_endpoint",
    "default_project",
]

DEFAULT_ENDPOINT = "http://127.0.0.1:6006/v1/traces"
"""Where a local Phoenix (``phoenix serve``) receives OTLP/HTTP traces."""

DEFAULT_PROJECT = "default"
"""Phoenix's default project."""

MAX_SPAN_ATTRIBUTES = 10_000
"""Attribute limit of the providers built here (the SDK's default of 128 drops content of long chats)."""

_TRACES_PATH = "/v1/traces"
_ENDPOINT_ENV = "PHOENIX_COLLECTOR_ENDPOINT"
_log = logging.getLogger("nemoflow")


def endpoint_problem(endpoint: object) -> str | None:
    """Why ``endpoint`` is not an absolute ``http://``/``https://`` URL with a host, or ``None`` if it is."""
    expected = f"expected an http:// or https:// URL such as {DEFAULT_ENDPOINT}"
    if not isinstance(endpoint, str):
        return f"{expected}, not {type(endpoint).__name__}"
    try:
        parts = urlsplit(endpoint.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        return f"{expected}, got {endpoint!r} ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"{expected}, got {endpoint!r}"
    return None


def default_endpoint() -> str:
    """``PHOENIX_COLLECTOR_ENDPOINT`` (``/v1/traces`` added when it names no path), else the local default.

    A value that is not an http(s) URL is ignored with a warning (as the OpenTelemetry specification
    asks of unparsable environment variables), and the local default is used.
    """
    configured = os.environ.get(_ENDPOINT_ENV, "").strip()
    if not configured:
        return DEFAULT_ENDPOINT
    problem = endpoint_problem(configured)
    if problem is not None:
        _log.warning("nemoflow: ignoring %s: %s; using %s", _ENDPOINT_ENV, problem, DEFAULT_ENDPOINT)
        return DEFAULT_ENDPOINT
    configured = configured.rstrip("/")
    scheme_end = configured.find("://")
    path_start = configured.find("/", scheme_end + 3 if scheme_end != -1 else 0)
    return configured if path_start != -1 else configured + _TRACES_PATH


def default_project() -> str:
    """``PHOENIX_PROJECT_NAME``, else ``default``."""
    return os.environ.get("PHOENIX_PROJECT_NAME", "").strip() or DEFAULT_PROJECT


def build_tracer_provider(
    endpoint: str,
    project_name: str,
    *,
    batch: bool = True,
    headers: Mapping[str, str] | None = None,
    shutdown_on_exit: bool = True,
) -> TracerProvider:
    """A TracerProvider exporting OTLP/HTTP (protobuf) to ``endpoint`` for Phoenix project ``project_name``.

    Args:
        endpoint: Full traces URL (``http://host:6006/v1/traces``).
        project_name: Phoenix project, sent as the ``openinference.project.name`` resource attribute.
        batch: Export in the background in batches (``True``) or synchronously span by span.
        headers: Extra HTTP headers for the collector (an API key, for instance).
        shutdown_on_exit: Let the provider flush and shut down at interpreter exit.

    Returns:
        The provider, with raised attribute limits and one span processor.

    Raises:
        ValueError: ``endpoint`` is not an http:// or https:// URL with a host.
    """
    problem = endpoint_problem(endpoint)
    if problem is not None:
        raise ValueError(f"endpoint: {problem}")
    resource = Resource.create({ResourceAttributes.PROJECT_NAME: project_name})
    limits = SpanLimits(max_attributes=MAX_SPAN_ATTRIBUTES, max_span_attributes=MAX_SPAN_ATTRIBUTES)
    provider = TracerProvider(resource=resource, span_limits=limits, shutdown_on_exit=shutdown_on_exit)
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers) if headers else None)
    processor: SpanProcessor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider
