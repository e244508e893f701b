"""GenAI-convention span attributes built from nemoflow records (pure functions, no OpenTelemetry state).

Attribute keys come from the installed ``opentelemetry-semantic-conventions`` package. Older releases of
that package lack a few of the keys used here; for those the key documented by the conventions is used
instead, and :func:`fallback_keys` lists which ones that happened to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.attributes import openai_attributes as _openai
from opentelemetry.semconv._incubating.attributes import user_attributes as _user
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import http_attributes as _http
from opentelemetry.semconv.attributes import server_attributes as _server
from opentelemetry.util.types import AttributeValue

from nemoflow._model import AnnotatedLlmRequest, AnnotatedLlmResponse
from nemoflow._records import LlmCall, ScopeRecord

from . import _messages

__all__ = [
    "attribute_value",
    "call_attributes",
    "call_span_name",
    "content_attributes",
    "error_type_of",
    "fallback_keys",
    "provider_name",
    "scope_attributes",
    "scope_end_attributes",
    "scope_span_name",
    "semconv_key",
    "server_address",
]

_fallbacks: list[str] = []


def semconv_key(module: Any, constant: str, documented: str) -> str:
    """The package's constant when it has one, else the key the conventions document."""
    value = getattr(module, constant, None)
    if isinstance(value, str):
        return value
    _fallbacks.append(documented)
    return documented


OPERATION_NAME: Final = semconv_key(_gen_ai, "GEN_AI_OPERATION_NAME", "gen_ai.operation.name")
PROVIDER_NAME: Final = semconv_key(_gen_ai, "GEN_AI_PROVIDER_NAME", "gen_ai.provider.name")
CONVERSATION_ID: Final = semconv_key(_gen_ai, "GEN_AI_CONVERSATION_ID", "gen_ai.conversation.id")
REQUEST_MODEL: Final = semconv_key(_gen_ai, "GEN_AI_REQUEST_MODEL", "gen_ai.request.model")
REQUEST_MAX_TOKENS: Final = semconv_key(_gen_ai, "GEN_AI_REQUEST_MAX_TOKENS", "gen_ai.request.max_tokens")
REQUEST_TEMPERATURE: Final = semconv_key(_gen_ai, "GEN_AI_REQUEST_TEMPERATURE", "gen_ai.request.temperature")
REQUEST_TOP_P: Final = semconv_key(_gen_ai, "GEN_AI_REQUEST_TOP_P", "gen_ai.request.top_p")
REQUEST_TOP_K: Final = semconv_key(_gen_ai, "GEN_AI_REQUEST_TOP_K", "gen_ai.request.top_k")
REQUEST_STOP_SEQUENCES: Final = semconv_key(
    _gen_ai, "GEN_AI_REQUEST_STOP_SEQUENCES", "gen_ai.request.stop_sequences"
)
REQUEST_SEED: Final = semconv_key(_gen_ai, "GEN_AI_REQUEST_SEED", "gen_ai.request.seed")
REQUEST_FREQUENCY_PENALTY: Final = semconv_key(
    _gen_ai, "GEN_AI_REQUEST_FREQUENCY_PENALTY", "gen_ai.request.frequency_penalty"
)
REQUEST_PRESENCE_PENALTY: Final = semconv_key(
    _gen_ai, "GEN_AI_REQUEST_PRESENCE_PENALTY", "gen_ai.request.presence_penalty"
)
REQUEST_CHOICE_COUNT: Final = semconv_key(
    _gen_ai, "GEN_AI_REQUEST_CHOICE_COUNT", "gen_ai.request.choice.count"
)
REQUEST_STREAM: Final = semconv_key(_gen_ai, "GEN_AI_REQUEST_STREAM", "gen_ai.request.stream")
REQUEST_ENCODING_FORMATS: Final = semconv_key(
    _gen_ai, "GEN_AI_REQUEST_ENCODING_FORMATS", "gen_ai.request.encoding_formats"
)
EMBEDDINGS_DIMENSION_COUNT: Final = semconv_key(
    _gen_ai, "GEN_AI_EMBEDDINGS_DIMENSION_COUNT", "gen_ai.embeddings.dimension.count"
)
OUTPUT_TYPE: Final = semconv_key(_gen_ai, "GEN_AI_OUTPUT_TYPE", "gen_ai.output.type")
RESPONSE_ID: Final = semconv_key(_gen_ai, "GEN_AI_RESPONSE_ID", "gen_ai.response.id")
RESPONSE_MODEL: Final = semconv_key(_gen_ai, "GEN_AI_RESPONSE_MODEL", "gen_ai.response.model")
RESPONSE_FINISH_REASONS: Final = semconv_key(
    _gen_ai, "GEN_AI_RESPONSE_FINISH_REASONS", "gen_ai.response.finish_reasons"
)
RESPONSE_TIME_TO_FIRST_CHUNK: Final = semconv_key(
    _gen_ai, "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK", "gen_ai.response.time_to_first_chunk"
)
USAGE_INPUT_TOKENS: Final = semconv_key(_gen_ai, "GEN_AI_USAGE_INPUT_TOKENS", "gen_ai.usage.input_tokens")
USAGE_OUTPUT_TOKENS: Final = semconv_key(_gen_ai, "GEN_AI_USAGE_OUTPUT_TOKENS", "gen_ai.usage.output_tokens")
USAGE_CACHE_READ_INPUT_TOKENS: Final = semconv_key(
    _gen_ai, "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS", "gen_ai.usage.cache_read.input_tokens"
)
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = semconv_key(
    _gen_ai, "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS", "gen_ai.usage.cache_creation.input_tokens"
)
USAGE_REASONING_OUTPUT_TOKENS: Final = semconv_key(
    _gen_ai, "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS", "gen_ai.usage.reasoning.output_tokens"
)
INPUT_MESSAGES: Final = semconv_key(_gen_ai, "GEN_AI_INPUT_MESSAGES", "gen_ai.input.messages")
OUTPUT_MESSAGES: Final = semconv_key(_gen_ai, "GEN_AI_OUTPUT_MESSAGES", "gen_ai.output.messages")
SYSTEM_INSTRUCTIONS: Final = semconv_key(_gen_ai, "GEN_AI_SYSTEM_INSTRUCTIONS", "gen_ai.system_instructions")
TOOL_DEFINITIONS: Final = semconv_key(_gen_ai, "GEN_AI_TOOL_DEFINITIONS", "gen_ai.tool.definitions")
AGENT_NAME: Final = semconv_key(_gen_ai, "GEN_AI_AGENT_NAME", "gen_ai.agent.name")
WORKFLOW_NAME: Final = semconv_key(_gen_ai, "GEN_AI_WORKFLOW_NAME", "gen_ai.workflow.name")
TOOL_NAME: Final = semconv_key(_gen_ai, "GEN_AI_TOOL_NAME", "gen_ai.tool.name")
TOOL_TYPE: Final = semconv_key(_gen_ai, "GEN_AI_TOOL_TYPE", "gen_ai.tool.type")
TOOL_CALL_ID: Final = semconv_key(_gen_ai, "GEN_AI_TOOL_CALL_ID", "gen_ai.tool.call.id")
TOOL_CALL_ARGUMENTS: Final = semconv_key(_gen_ai, "GEN_AI_TOOL_CALL_ARGUMENTS", "gen_ai.tool.call.arguments")
TOOL_CALL_RESULT: Final = semconv_key(_gen_ai, "GEN_AI_TOOL_CALL_RESULT", "gen_ai.tool.call.result")
TOKEN_TYPE: Final = semconv_key(_gen_ai, "GEN_AI_TOKEN_TYPE", "gen_ai.token.type")
OPENAI_RESPONSE_SERVICE_TIER: Final = semconv_key(
    _openai, "OPENAI_RESPONSE_SERVICE_TIER", "openai.response.service_tier"
)
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = semconv_key(
    _openai, "OPENAI_RESPONSE_SYSTEM_FINGERPRINT", "openai.response.system_fingerprint"
)
USER_ID: Final = semconv_key(_user, "USER_ID", "user.id")
ERROR_TYPE: Final = semconv_key(_error, "ERROR_TYPE", "error.type")
SERVER_ADDRESS: Final = semconv_key(_server, "SERVER_ADDRESS", "server.address")
SERVER_PORT: Final = semconv_key(_server, "SERVER_PORT", "server.port")
HTTP_RESPONSE_STATUS_CODE: Final = semconv_key(
    _http, "HTTP_RESPONSE_STATUS_CODE", "http.response.status_code"
)


def fallback_keys() -> tuple[str, ...]:
    """Keys the installed semantic-conventions package lacks, taken from the conventions' documentation."""
    return tuple(_fallbacks)


# nemoflow's own facts, which the conventions have no key for.
NEMOFLOW_CODEC: Final = "nemoflow.codec"
NEMOFLOW_CALL_STATUS: Final = "nemoflow.call.status"
NEMOFLOW_ATTEMPT: Final = "nemoflow.call.attempt"
NEMOFLOW_BLOCK_REASON: Final = "nemoflow.guardrail.block_reason"
NEMOFLOW_POLICIES: Final = "nemoflow.policies_applied"
NEMOFLOW_COST_TOTAL: Final = "nemoflow.cost.total"
NEMOFLOW_COST_CURRENCY: Final = "nemoflow.cost.currency"
NEMOFLOW_COST_SOURCE: Final = "nemoflow.cost.source"

# nemoflow provider families (and a few aliases) -> gen_ai.provider.name well-known values.
_PROVIDERS: Final[Mapping[str, str]] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure-openai": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure-ai-inference": "azure.ai.inference",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "google": "gcp.gen_ai",
    "google-genai": "gcp.gen_ai",
    "vertex": "gcp.vertex_ai",
    "vertex-ai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "aws-bedrock": "aws.bedrock",
    "aws": "aws.bedrock",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "mistral-ai": "mistral_ai",
    "mistral_ai": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "xai": "x_ai",
    "x-ai": "x_ai",
    "x_ai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
    "ibm": "ibm.watsonx.ai",
}

_DEFAULT_PORTS: Final[Mapping[str, int]] = {"https": 443, "http": 80, "wss": 443, "ws": 80}


def server_address(url: str) -> tuple[str | None, int | None]:
    """Host and port of ``url`` (the scheme's default port when none is written)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None, None
    if host is None:
        return None, None
    return host, port if port is not None else _DEFAULT_PORTS.get(parts.scheme.lower())


def provider_name(provider: str, host: str | None) -> str:
    """``gen_ai.provider.name`` for a nemoflow provider family, refined by the server host.

    The host tells Vertex AI from the Gemini API, and spots Bedrock and Azure OpenAI whatever codec
    decoded the call; otherwise the family maps onto the conventions' well-known value (or is kept
    as is when there is none).
    """
    host = (host or "").lower()
    if host.endswith("aiplatform.googleapis.com"):
        return "gcp.vertex_ai"
    if host.endswith("generativelanguage.googleapis.com"):
        return "gcp.gemini"
    if host.startswith("bedrock-runtime") or ".bedrock-runtime." in host:
        return "aws.bedrock"
    if host.endswith(".openai.azure.com"):
        return "azure.ai.openai"
    key = provider.lower()
    return _PROVIDERS.get(key, key)


def attribute_value(value: Any) -> AttributeValue | None:
    """``value`` as an OpenTelemetry attribute value; anything else becomes JSON text (``None`` stays out)."""
    if value is None:
        return None
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = list(value)
        for kind in (str, bool, int, float):
            if items and all(type(item) is kind for item in items):
                return items
    return _messages.to_json(value)


def _put(attributes: dict[str, AttributeValue], key: str, value: Any) -> None:
    converted = attribute_value(value)
    if converted is not None:
        attributes[key] = converted


def _output_type(response_format: Any) -> str | None:
    kind = response_format.get("type") if isinstance(response_format, Mapping) else response_format
    if not isinstance(kind, str):
        return None
    if kind in ("json_object", "json_schema", "json"):
        return "json"
    if kind == "text":
        return "text"
    return None


def call_span_name(call: LlmCall) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, or the record's model when no request is kept."""
    model = (call.request.model if call.request is not None else None) or call.model
    return f"{call.operation} {model}" if model else call.operation


def _request_attributes(attributes: dict[str, AttributeValue], request: AnnotatedLlmRequest) -> None:
    params = request.params
    _put(attributes, REQUEST_MODEL, request.model)
    _put(attributes, REQUEST_MAX_TOKENS, params.max_tokens)
    _put(attributes, REQUEST_TEMPERATURE, _float(params.temperature))
    _put(attributes, REQUEST_TOP_P, _float(params.top_p))
    _put(attributes, REQUEST_TOP_K, _float(params.top_k))
    if params.stop:
        attributes[REQUEST_STOP_SEQUENCES] = list(params.stop)
    _put(attributes, REQUEST_SEED, params.seed)
    _put(attributes, REQUEST_FREQUENCY_PENALTY, _float(params.frequency_penalty))
    _put(attributes, REQUEST_PRESENCE_PENALTY, _float(params.presence_penalty))
    if params.n is not None and params.n != 1:
        attributes[REQUEST_CHOICE_COUNT] = params.n
    _put(attributes, OUTPUT_TYPE, _output_type(params.response_format))
    if params.encoding_format:
        attributes[REQUEST_ENCODING_FORMATS] = [params.encoding_format]
    _put(attributes, EMBEDDINGS_DIMENSION_COUNT, params.dimensions)


def _float(value: float | None) -> float | None:
    return float(value) if value is not None else None


def _response_attributes(
    attributes: dict[str, AttributeValue], response: AnnotatedLlmResponse, provider: str
) -> None:
    _put(attributes, RESPONSE_ID, response.id)
    _put(attributes, RESPONSE_MODEL, response.model)
    if response.operation != "embeddings":
        reasons = _messages.finish_reasons(response)
        if reasons:
            attributes[RESPONSE_FINISH_REASONS] = reasons
    if EMBEDDINGS_DIMENSION_COUNT not in attributes:
        _put(attributes, EMBEDDINGS_DIMENSION_COUNT, response.embedding_dimension)
    if provider == "openai":
        _put(attributes, OPENAI_RESPONSE_SERVICE_TIER, response.service_tier)
        _put(attributes, OPENAI_RESPONSE_SYSTEM_FINGERPRINT, response.system_fingerprint)


def call_attributes(call: LlmCall, *, error_type: str | None) -> dict[str, AttributeValue]:
    """Every attribute of an LLM call span except captured content."""
    host, port = server_address(call.url)
    provider = provider_name(call.provider, host)
    attributes: dict[str, AttributeValue] = {OPERATION_NAME: call.operation, PROVIDER_NAME: provider}
    if host is not None:
        attributes[SERVER_ADDRESS] = host
        if port is not None:
            attributes[SERVER_PORT] = port
    if call.request is not None:
        _request_attributes(attributes, call.request)
    if call.stream:
        attributes[REQUEST_STREAM] = True
        if call.first_token_time_ns is not None:
            attributes[RESPONSE_TIME_TO_FIRST_CHUNK] = (call.first_token_time_ns - call.start_time_ns) / 1e9
    if call.response is not None:
        _response_attributes(attributes, call.response, provider)
    elif call.request is None and call.model:
        attributes[REQUEST_MODEL] = call.model  # no reply: the record's model is the requested one
    usage = call.usage
    _put(attributes, USAGE_INPUT_TOKENS, usage.prompt_tokens)
    _put(attributes, USAGE_OUTPUT_TOKENS, usage.completion_tokens)
    _put(attributes, USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens)
    _put(attributes, USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_write_tokens)
    _put(attributes, USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_tokens)
    _put(attributes, CONVERSATION_ID, call.session_id)
    _put(attributes, USER_ID, call.user_id)
    _put(attributes, ERROR_TYPE, error_type)
    _put(attributes, HTTP_RESPONSE_STATUS_CODE, call.http_status)
    attributes[NEMOFLOW_CODEC] = call.codec
    attributes[NEMOFLOW_CALL_STATUS] = call.status.value
    if call.attempt > 1:
        attributes[NEMOFLOW_ATTEMPT] = call.attempt
    _put(attributes, NEMOFLOW_BLOCK_REASON, call.block_reason)
    if call.policies_applied:
        attributes[NEMOFLOW_POLICIES] = list(call.policies_applied)
    if call.cost is not None:
        attributes[NEMOFLOW_COST_TOTAL] = call.cost.total
        attributes[NEMOFLOW_COST_CURRENCY] = call.cost.currency
        attributes[NEMOFLOW_COST_SOURCE] = call.cost.source
    return attributes


def content_attributes(call: LlmCall) -> dict[str, AttributeValue]:
    """The opt-in content attributes of a call: messages, system instructions, tool definitions (JSON)."""
    attributes: dict[str, AttributeValue] = {}
    request = call.request
    if request is not None and request.operation != "embeddings":
        attributes[INPUT_MESSAGES] = _messages.to_json(_messages.input_messages(request))
        system = _messages.system_instructions(request)
        if system is not None:
            attributes[SYSTEM_INSTRUCTIONS] = _messages.to_json(system)
        tools = _messages.tool_definitions(request)
        if tools is not None:
            attributes[TOOL_DEFINITIONS] = _messages.to_json(tools)
    response = call.response
    if response is not None and response.operation != "embeddings":
        attributes[OUTPUT_MESSAGES] = _messages.to_json(_messages.output_messages(response))
    return attributes


_SCOPE_OPERATIONS: Final[Mapping[str, tuple[str, str]]] = {
    "AGENT": ("invoke_agent", AGENT_NAME),
    "CHAIN": ("invoke_workflow", WORKFLOW_NAME),
    "TOOL": ("execute_tool", TOOL_NAME),
}


def scope_span_name(scope: ScopeRecord) -> str:
    """``invoke_agent {name}``, ``invoke_workflow {name}`` or ``execute_tool {name}``."""
    operation, _ = _SCOPE_OPERATIONS[scope.kind]
    return f"{operation} {scope.name}"


def scope_attributes(scope: ScopeRecord, *, capture_content: bool) -> dict[str, AttributeValue]:
    """Attributes of a scope span known when it starts; the scope's own attributes win on a clash."""
    operation, name_key = _SCOPE_OPERATIONS[scope.kind]
    attributes: dict[str, AttributeValue] = {OPERATION_NAME: operation, name_key: scope.name}
    if scope.kind == "TOOL":
        attributes[TOOL_TYPE] = "function"
        _put(attributes, TOOL_CALL_ID, scope.tool_call_id)
        if capture_content and scope.tool_arguments is not None:
            attributes[TOOL_CALL_ARGUMENTS] = _json_text(scope.tool_arguments)
    _put(attributes, CONVERSATION_ID, scope.session_id)
    _put(attributes, USER_ID, scope.user_id)
    for key, value in scope.attributes.items():
        _put(attributes, str(key), value)
    return attributes


def scope_end_attributes(scope: ScopeRecord, *, capture_content: bool) -> dict[str, AttributeValue]:
    """Attributes only known when a scope ends: ``error.type`` and a tool's result."""
    attributes: dict[str, AttributeValue] = {}
    if scope.status == "error":
        attributes[ERROR_TYPE] = error_type_of(scope.error)
    if capture_content and scope.kind == "TOOL" and scope.tool_result is not None:
        attributes[TOOL_CALL_RESULT] = _json_text(scope.tool_result)
    return attributes


def error_type_of(error: str | None) -> str:
    """The exception type name from nemoflow's ``TypeName: message`` text (``_OTHER`` when unknown)."""
    if not error:
        return "_OTHER"
    name = error.split(":", 1)[0].strip()
    return name or "_OTHER"


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else _messages.to_json(value)
