"""nemoflow exporter: spans (and optional metrics) in the OpenTelemetry GenAI semantic conventions.

Registered under the ``nemoflow.exporters`` entry-point group as ``genai``::

    from nemoflow_exporter_genai import GenAIExporter

    flow = Flow(subscribers=[GenAIExporter(tracer_provider, capture_content=True)])

Conventions version
    The ``gen_ai.*`` definitions of OpenTelemetry semantic conventions **1.44.0** (:data:`SEMCONV_VERSION`),
    as generated into ``opentelemetry-semantic-conventions`` 0.66b2; its tracer and meter carry the schema URL
    :data:`SCHEMA_URL`. These are the "latest experimental" GenAI conventions (``gen_ai.provider.name``,
    ``gen_ai.input.messages`` ...), not the pre-1.37 ones (``gen_ai.system``, per-message events). In 1.44.0
    the GenAI definitions are marked as moved to the ``semantic-conventions-genai`` repository, which has
    not released a version yet; the keys and values are unchanged. Keys are read from the installed package;
    ``nemoflow_exporter_genai._attributes.fallback_keys()`` names any it lacked (none, with 0.66b2).

Spans
    * LLM calls: kind ``CLIENT``, name ``{gen_ai.operation.name} {gen_ai.request.model}`` (``chat gpt-4o``,
      ``embeddings text-embedding-3-small``), the record's own start and end times.
    * Scopes: kind ``INTERNAL``. ``AGENT`` -> ``invoke_agent {name}`` with ``gen_ai.agent.name``;
      ``CHAIN`` -> ``invoke_workflow {name}`` with ``gen_ai.workflow.name`` (a chain is a named, multi-step
      flow the application declares, which is what ``invoke_workflow`` describes); ``TOOL`` ->
      ``execute_tool {name}`` with ``gen_ai.tool.name``, ``gen_ai.tool.type`` (``function``) and
      ``gen_ai.tool.call.id``. A scope's own attributes are copied onto its span.
    * Parent: the span of the enclosing scope; else the application's span current when the record
      started; else a new trace.

Call attributes
    ``gen_ai.operation.name``, ``gen_ai.provider.name`` (``openai``, ``anthropic``, ``gcp.gemini``,
    ``gcp.vertex_ai``, ``aws.bedrock``, ``azure.ai.openai`` ..., from the codec's provider family and the
    server host), ``server.address``, ``server.port``; request: ``gen_ai.request.model``, ``.max_tokens``,
    ``.temperature``, ``.top_p``, ``.top_k``, ``.stop_sequences``, ``.seed``, ``.frequency_penalty``,
    ``.presence_penalty``, ``.choice.count`` (when not 1), ``.stream`` (when streamed),
    ``.encoding_formats``, ``gen_ai.output.type`` (from the response format),
    ``gen_ai.embeddings.dimension.count``; response: ``gen_ai.response.id``, ``.model``,
    ``.finish_reasons`` (``stop``, ``length``, ``tool_call``, ``content_filter``, ``error``, else the
    provider's own value), ``.time_to_first_chunk`` (streams, seconds); usage: ``gen_ai.usage.input_tokens``
    (cached tokens included), ``.output_tokens`` (reasoning included), ``.cache_read.input_tokens``,
    ``.cache_creation.input_tokens``, ``.reasoning.output_tokens``, each only when reported;
    ``gen_ai.conversation.id`` (session id), ``user.id``; ``openai.response.service_tier`` and
    ``.system_fingerprint`` for OpenAI; ``http.response.status_code``.

Errors
    A failed call or scope gets span status ERROR and ``error.type``: the error class nemoflow assigned
    (``rate_limit``, ``context_length_exceeded`` ...), else the HTTP status, else the exception type
    (``ReadTimeout``), else ``_OTHER``. A guardrail block is ``GuardrailBlocked``. A call the application
    cancelled is not an error (``nemoflow.call.status`` says ``cancelled``).

Content (opt-in)
    Off by default. With ``capture_content=True``, or the environment variable
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` set to ``true``: ``gen_ai.input.messages``,
    ``gen_ai.output.messages``, ``gen_ai.system_instructions`` (system text sent apart from the
    conversation) and ``gen_ai.tool.definitions`` as JSON text in the conventions' message-part format,
    and ``gen_ai.tool.call.arguments`` / ``.result`` on tool spans.

nemoflow's own attributes
    ``nemoflow.codec``, ``nemoflow.call.status``, ``nemoflow.call.attempt`` (retries),
    ``nemoflow.guardrail.block_reason``, ``nemoflow.policies_applied``, ``nemoflow.cost.total``,
    ``nemoflow.cost.currency``, ``nemoflow.cost.source``; ``nemoflow.scope.incomplete`` on scope spans
    ended by the exporter (at shutdown, or when more than ``max_open_spans`` were open).
"""

from __future__ import annotations

from ._exporter import CAPTURE_CONTENT_ENV, SCHEMA_URL, SEMCONV_VERSION, GenAIExporter

__all__ = ["CAPTURE_CONTENT_ENV", "SCHEMA_URL", "SEMCONV_VERSION", "GenAIExporter"]
