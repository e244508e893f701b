"""OpenInference spans for nemoflow: send LLM calls, scopes and tool runs to Arize Phoenix.

One line sends a flow's records to a Phoenix server::

    from nemoflow_exporter_openinference import register

    register(endpoint="http://127.0.0.1:6006/v1/traces", project_name="my-app")

For an OpenTelemetry set-up of your own, attach the exporter to a flow with your provider::

    flow.add_subscriber(OpenInferenceExporter(tracer_provider))
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import TracerProvider

from nemoflow_exporter_openinference._attributes import STATUS_ATTRIBUTE
from nemoflow_exporter_openinference._config import (
    DEFAULT_BASE64_IMAGE_MAX_LENGTH,
    REDACTED_VALUE,
    HideConfig,
)
from nemoflow_exporter_openinference._exporter import EVICTED_ATTRIBUTE, OpenInferenceExporter
from nemoflow_exporter_openinference._provider import (
    DEFAULT_ENDPOINT,
    DEFAULT_PROJECT,
    MAX_SPAN_ATTRIBUTES,
    build_tracer_provider,
)

if TYPE_CHECKING:
    from nemoflow._flow import Flow

__all__ = [
    "DEFAULT_BASE64_IMAGE_MAX_LENGTH",
    "DEFAULT_ENDPOINT",
    "DEFAULT_PROJECT",
    "EVICTED_ATTRIBUTE",
    "MAX_SPAN_ATTRIBUTES",
    "REDACTED_VALUE",
    "STATUS_ATTRIBUTE",
    "HideConfig",
    "OpenInferenceExporter",
    "build_tracer_provider",
    "register",
]

__version__ = "0.1.0"

_EXIT_FLUSH_TIMEOUT = 5.0


def register(
    endpoint: str = DEFAULT_ENDPOINT,
    project_name: str = DEFAULT_PROJECT,
    *,
    batch: bool = True,
    headers: Mapping[str, str] | None = None,
    flow: Flow | None = None,
) -> TracerProvider:
    """Send a flow's records to Phoenix as OpenInference spans, in one call.

    Builds a TracerProvider (resource ``openinference.project.name = project_name``, raised attribute
    limits, an OTLP/HTTP protobuf exporter to ``endpoint``), attaches an :class:`OpenInferenceExporter`
    using it to ``flow``, and returns the provider. The provider is yours: use it for your own spans too,
    and shut it down when you are done (it also flushes and shuts down by itself at interpreter exit,
    after the flow has delivered its last records). Each call attaches one more exporter.

    Args:
        endpoint: The collector's OTLP/HTTP traces URL (Phoenix: ``http://host:6006/v1/traces``).
        project_name: Phoenix project the spans belong to.
        batch: Export in the background in batches (default) or synchronously, span by span.
        headers: Extra HTTP headers for the collector (an API key, for instance).
        flow: The flow to observe (default: the process-wide flow used by ``instrument()``).

    Returns:
        The TracerProvider the spans go through.
    """
    if flow is None:
        from nemoflow._flow import default_flow  # the runtime is only needed here

        flow = default_flow()
    provider = build_tracer_provider(endpoint, project_name, batch=batch, headers=headers)
    exporter = OpenInferenceExporter(provider)
    flow.add_subscriber(exporter)
    # Exit hooks run last-registered first: this one, registered after the provider's own, delivers the
    # flow's queued records while the provider can still export them.
    flow_ref = weakref.ref(flow)

    def _deliver_before_exit() -> None:
        alive = flow_ref()
        if alive is not None and not exporter.closed:  # a flow shut down earlier has nothing left
            alive.flush(_EXIT_FLUSH_TIMEOUT)

    atexit.register(_deliver_before_exit)
    return provider
