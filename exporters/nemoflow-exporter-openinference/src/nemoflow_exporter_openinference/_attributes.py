"""Turning nemoflow records into OpenInference span attributes (pure functions, no OpenTelemetry state).

Every builder returns an insertion-ordered ``dict``. The OpenTelemetry SDK, once a span holds as many
attributes as its limit allows, drops the *oldest* attribute to make room for a new one. So the builders
put the bulky, expendable attributes (payloads, messages, tool schemas) first and the facts a backend
must not lose (span kind, model, token counts, cost, provider) last: under a tight limit, messages are
dropped before token counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
from openinference.semconv.trace import (
    EmbeddingAttributes,
    ImageAttributes,
    MessageAttributes,
    MessageContentAttributes,
    OpenInferenceLLMProviderValues,
    OpenInferenceLLMSystemValues,
    OpenInferenceMimeTypeValues,
    OpenInferenceSpanKindValues,
    SpanAttributes,
    ToolAttributes,
    ToolCallAttributes,
)
from opentelemetry.util.types import AttributeValue

from nemoflow._model import (
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    AudioPart,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    ReasoningPart,
    RefusalPart,
    TextPart,
    ToolCall,
    ToolResultPart,
    as_dict,
    is_pristine,
)
from nemoflow._records import LlmCall, ScopeRecord
from nemoflow_exporter_openinference._config import (
    _IMAGE_MARK,
    REDACTED_VALUE,
    HideConfig,
    is_base64_image_url,
)

__all__ = [
    "STATUS_ATTRIBUTE",
    "call_attributes",
    "call_span_name",
    "llm_provider",
    "llm_system",
    "scope_end_attributes",
    "scope_start_attributes",
    "split_exception",
    "to_json",
]

STATUS_ATTRIBUTE = "nemoflow.call.status"
"""How the LLM call ended (``ok``, ``error``, ``cancelled``, ``blocked``), on every LLM/EMBEDDING span."""

_JSON = OpenInferenceMimeTypeValues.JSON.value
_TEXT = OpenInferenceMimeTypeValues.TEXT.value
_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND

_ROLE = MessageAttributes.MESSAGE_ROLE
_CONTENT = MessageAttributes.MESSAGE_CONTENT
_CONTENTS = MessageAttributes.MESSAGE_CONTENTS
_NAME = MessageAttributes.MESSAGE_NAME
_TOOL_CALLS = MessageAttributes.MESSAGE_TOOL_CALLS
_TOOL_CALL_ID = MessageAttributes.MESSAGE_TOOL_CALL_ID
_PART_TYPE = MessageContentAttributes.MESSAGE_CONTENT_TYPE
_PART_TEXT = MessageContentAttributes.MESSAGE_CONTENT_TEXT
_PART_IMAGE_URL = f"{MessageContentAttributes.MESSAGE_CONTENT_IMAGE}.{ImageAttributes.IMAGE_URL}"

_BASE64_BODY = re.compile(r"[A-Za-z0-9+/=_-]+")

# ------------------------------------------------------------------------------------------- JSON


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    converted = as_dict(value)
    if converted is not value:
        return converted
    return repr(value)


def to_json(value: Any) -> str:
    """``value`` as compact JSON text (objects it cannot encode become their ``repr``)."""
    # Dataclasses go through ``as_dict`` (via the default), which leaves out ``raw`` and private fields.
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATACLASS
    return orjson.dumps(value, default=_json_default, option=option).decode()


def _shrink_media(value: Any, limit: int) -> Any:
    """``value`` with long inline media (base64 data or ``data:`` URLs over ``limit``) redacted."""
    if isinstance(value, str):
        if len(value) > limit and (
            is_base64_image_url(value)
            or value.startswith("data:")
            or _BASE64_BODY.fullmatch(value) is not None
        ):
            return REDACTED_VALUE
        return value
    if isinstance(value, Mapping):
        return {key: _shrink_media(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_shrink_media(item, limit) for item in value]
    return value


def _attribute_value(value: Any) -> AttributeValue:
    """A user value as an attribute: primitives (and lists of one primitive type) as is, else JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        kinds = {type(item) for item in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            return list(value)
    return to_json(value)


def split_exception(text: str) -> tuple[str, str]:
    """``"TypeName: message"`` as ``(type, message)``; text without a type name is all message."""
    head, sep, tail = text.partition(": ")
    if sep and head and " " not in head:
        return head, tail
    return "Error", text


# ------------------------------------------------------------------------------------------- vendors

# Hosts that tell who serves the model, whatever wire format the call used.
_HOST_PROVIDERS: tuple[tuple[str, OpenInferenceLLMProviderValues], ...] = (
    ("openai.azure.com", OpenInferenceLLMProviderValues.AZURE),
    ("services.ai.azure.com", OpenInferenceLLMProviderValues.AZURE),
    ("api.openai.com", OpenInferenceLLMProviderValues.OPENAI),
    ("api.anthropic.com", OpenInferenceLLMProviderValues.ANTHROPIC),
    ("amazonaws.com", OpenInferenceLLMProviderValues.AWS),
    ("googleapis.com", OpenInferenceLLMProviderValues.GOOGLE),
    ("api.x.ai", OpenInferenceLLMProviderValues.XAI),
    ("api.deepseek.com", OpenInferenceLLMProviderValues.DEEPSEEK),
    ("api.groq.com", OpenInferenceLLMProviderValues.GROQ),
    ("fireworks.ai", OpenInferenceLLMProviderValues.FIREWORKS),
    ("api.mistral.ai", OpenInferenceLLMProviderValues.MISTRALAI),
    ("cohere.com", OpenInferenceLLMProviderValues.COHERE),
    ("cohere.ai", OpenInferenceLLMProviderValues.COHERE),
    ("api.together.xyz", OpenInferenceLLMProviderValues.TOGETHER),
    ("api.together.ai", OpenInferenceLLMProviderValues.TOGETHER),
    ("api.perplexity.ai", OpenInferenceLLMProviderValues.PERPLEXITY),
    ("api.cerebras.ai", OpenInferenceLLMProviderValues.CEREBRAS),
    ("api.moonshot.ai", OpenInferenceLLMProviderValues.MOONSHOT),
    ("api.moonshot.cn", OpenInferenceLLMProviderValues.MOONSHOT),
)

# nemoflow provider families (the codec's ``provider``) as OpenInference providers.
_FAMILY_PROVIDERS: Mapping[str, OpenInferenceLLMProviderValues] = {
    "openai": OpenInferenceLLMProviderValues.OPENAI,
    "azure": OpenInferenceLLMProviderValues.AZURE,
    "anthropic": OpenInferenceLLMProviderValues.ANTHROPIC,
    "gemini": OpenInferenceLLMProviderValues.GOOGLE,
    "google": OpenInferenceLLMProviderValues.GOOGLE,
    "vertexai": OpenInferenceLLMProviderValues.GOOGLE,
    "bedrock": OpenInferenceLLMProviderValues.AWS,
    "aws": OpenInferenceLLMProviderValues.AWS,
    "aws.bedrock": OpenInferenceLLMProviderValues.AWS,
    "mistral": OpenInferenceLLMProviderValues.MISTRALAI,
    "mistralai": OpenInferenceLLMProviderValues.MISTRALAI,
    "cohere": OpenInferenceLLMProviderValues.COHERE,
}

# The wire format a codec family speaks, as an OpenInference "system" (the API shape).
_FAMILY_SYSTEMS: Mapping[str, OpenInferenceLLMSystemValues] = {
    "openai": OpenInferenceLLMSystemValues.OPENAI,
    "azure": OpenInferenceLLMSystemValues.OPENAI,
    "anthropic": OpenInferenceLLMSystemValues.ANTHROPIC,
    "gemini": OpenInferenceLLMSystemValues.VERTEXAI,
    "google": OpenInferenceLLMSystemValues.VERTEXAI,
    "vertexai": OpenInferenceLLMSystemValues.VERTEXAI,
    "mistral": OpenInferenceLLMSystemValues.MISTRALAI,
    "mistralai": OpenInferenceLLMSystemValues.MISTRALAI,
    "cohere": OpenInferenceLLMSystemValues.COHERE,
}

# Bedrock's own API (Converse) serves many vendors: the model id's vendor prefix names the system.
_BEDROCK_VENDOR_SYSTEMS: Mapping[str, OpenInferenceLLMSystemValues] = {
    "anthropic": OpenInferenceLLMSystemValues.ANTHROPIC,
    "cohere": OpenInferenceLLMSystemValues.COHERE,
    "mistral": OpenInferenceLLMSystemValues.MISTRALAI,
}


def _family(call: LlmCall) -> str:
    provider = call.provider.lower()
    if provider in _FAMILY_PROVIDERS or provider in _FAMILY_SYSTEMS:
        return provider
    # Fall back on the codec name's first word (``anthropic-messages`` -> ``anthropic``).
    return call.codec.lower().split("-", 1)[0]


def llm_provider(call: LlmCall) -> str:
    """Who served the call (``llm.provider``): from the URL's host, else the codec's provider family."""
    try:
        host = (urlsplit(call.url).hostname or "").lower()
    except ValueError:
        host = ""
    for suffix, value in _HOST_PROVIDERS:
        if host == suffix or host.endswith("." + suffix):
            return value.value
    known = _FAMILY_PROVIDERS.get(_family(call))
    return known.value if known is not None else call.provider


def llm_system(call: LlmCall) -> str | None:
    """The API the call spoke (``llm.system``), or ``None`` when no OpenInference value fits."""
    family = _family(call)
    system = _FAMILY_SYSTEMS.get(family)
    if system is not None:
        return system.value
    if family in ("bedrock", "aws", "aws.bedrock"):
        model = (call.model or (call.request.model if call.request is not None else None) or "").lower()
        for part in model.split(".")[:2]:  # ``anthropic.claude...`` or ``us.anthropic.claude...``
            vendor = _BEDROCK_VENDOR_SYSTEMS.get(part)
            if vendor is not None:
                return vendor.value
    return None


# ------------------------------------------------------------------------------------------- messages


def _arguments_json(call: ToolCall) -> str:
    if call.arguments_raw is not None:
        return call.arguments_raw
    return to_json(call.arguments if call.arguments is not None else {})


def _tool_call_attributes(prefix: str, calls: Sequence[ToolCall], out: dict[str, AttributeValue]) -> None:
    for index, tool_call in enumerate(calls):
        base = f"{prefix}.{_TOOL_CALLS}.{index}."
        if tool_call.id is not None:
            out[base + ToolCallAttributes.TOOL_CALL_ID] = tool_call.id
        out[base + ToolCallAttributes.TOOL_CALL_FUNCTION_NAME] = tool_call.name
        out[base + ToolCallAttributes.TOOL_CALL_FUNCTION_ARGUMENTS_JSON] = _arguments_json(tool_call)


def _image_url(part: ImagePart) -> str | None:
    if part.url:
        return part.url
    if part.data:
        return f"data:{part.media_type or 'image/png'};base64,{part.data}"
    return None


def _part_attributes(prefix: str, index: int, part: ContentPart, out: dict[str, AttributeValue]) -> bool:
    """Flatten one content part under ``{prefix}.message.contents.{index}``; ``False`` if nothing fits."""
    base = f"{prefix}.{_CONTENTS}.{index}."
    if isinstance(part, TextPart):
        out[base + _PART_TYPE] = "text"
        out[base + _PART_TEXT] = part.text
    elif isinstance(part, ImagePart):
        out[base + _PART_TYPE] = "image"
        url = _image_url(part)
        if url is not None:
            out[base + _PART_IMAGE_URL] = url
    elif isinstance(part, RefusalPart):
        out[base + _PART_TYPE] = "text"
        out[base + _PART_TEXT] = part.refusal
    elif isinstance(part, ReasoningPart):
        if part.text is None:
            return False
        out[base + _PART_TYPE] = "reasoning"
        out[base + _PART_TEXT] = part.text
    elif isinstance(part, AudioPart):
        out[base + _PART_TYPE] = "audio"
    elif isinstance(part, FilePart):
        out[base + _PART_TYPE] = "document"
    else:
        return False
    return True


def _tool_result_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, tuple | list) and all(isinstance(item, TextPart) for item in content):
        return "".join(item.text for item in content)
    return to_json(as_dict(content))  # parts as plain data, never their ``raw`` provider dicts


def _message_attributes(
    prefix: str, start: int, message: Message, out: dict[str, AttributeValue], *, images: bool
) -> int:
    """Flatten ``message`` as message ``start`` (and more for tool results); return the next index."""
    index = start
    content = message.content
    parts: tuple[ContentPart, ...] = content if isinstance(content, tuple) else ()
    results = [part for part in parts if isinstance(part, ToolResultPart)]
    # Tool results carried as content blocks (Anthropic, Gemini) become tool-role messages, as in OpenAI.
    for result in results:
        base = f"{prefix}.{index}"
        out[f"{base}.{_ROLE}"] = "tool"
        if result.tool_call_id is not None:
            out[f"{base}.{_TOOL_CALL_ID}"] = result.tool_call_id
        if result.name is not None:
            out[f"{base}.{_NAME}"] = result.name
        out[f"{base}.{_CONTENT}"] = _tool_result_text(result.content)
        index += 1
    others = [
        part
        for part in parts
        if not isinstance(part, ToolResultPart) and (images or not isinstance(part, ImagePart))
    ]
    if results and not others and not message.tool_calls and not isinstance(content, str):
        return index
    base = f"{prefix}.{index}"
    out[f"{base}.{_ROLE}"] = message.role
    if isinstance(content, str):
        out[f"{base}.{_CONTENT}"] = content
    else:
        position = 0
        for part in others:
            if _part_attributes(base, position, part, out):
                position += 1
    if message.name is not None:
        out[f"{base}.{_NAME}"] = message.name
    if message.tool_call_id is not None:
        out[f"{base}.{_TOOL_CALL_ID}"] = message.tool_call_id
    _tool_call_attributes(base, message.tool_calls, out)
    return index + 1


def _input_messages(request: AnnotatedLlmRequest, out: dict[str, AttributeValue], *, images: bool) -> None:
    prefix = SpanAttributes.LLM_INPUT_MESSAGES
    index = 0
    messages = request.messages
    # OpenAI Chat keeps system/developer text inside the messages; other providers carry it apart.
    if request.system and not (messages and messages[0].role in ("system", "developer")):
        out[f"{prefix}.0.{_ROLE}"] = "system"
        out[f"{prefix}.0.{_CONTENT}"] = request.system
        index = 1
    for message in messages:
        index = _message_attributes(prefix, index, message, out, images=images)


def _output_messages(response: AnnotatedLlmResponse, out: dict[str, AttributeValue]) -> None:
    prefix = SpanAttributes.LLM_OUTPUT_MESSAGES
    choices: Iterable[tuple[str | None, str | None, str | None, tuple[ToolCall, ...]]]
    if response.choices:
        choices = ((c.role, c.text, c.refusal, c.tool_calls) for c in response.choices)
    else:
        choices = ((None, response.text, response.refusal, response.tool_calls),)
    for index, (role, text, refusal, tool_calls) in enumerate(choices):
        base = f"{prefix}.{index}"
        out[f"{base}.{_ROLE}"] = role or "assistant"
        body = text if text is not None else refusal
        if body is not None:
            out[f"{base}.{_CONTENT}"] = body
        _tool_call_attributes(base, tool_calls, out)


def _tools(request: AnnotatedLlmRequest, out: dict[str, AttributeValue]) -> None:
    for index, tool in enumerate(request.tools):
        if tool.type == "function":
            function: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                function["description"] = tool.description
            if tool.parameters is not None:
                function["parameters"] = tool.parameters
            if tool.strict is not None:
                function["strict"] = tool.strict
            schema: dict[str, Any] = {"type": "function", "function": function}
        else:  # a provider built-in tool (web search, code execution, ...): its own shape
            schema = {"type": tool.type, "name": tool.name, **dict(tool.extra)}
        out[f"{SpanAttributes.LLM_TOOLS}.{index}.{ToolAttributes.TOOL_JSON_SCHEMA}"] = to_json(schema)


def _request_payload(request: AnnotatedLlmRequest) -> Any:
    """The request as it went on the wire when untouched, else the annotated view (sanitized)."""
    # ``raw`` survives ``dataclasses.replace``: only a pristine request may show it, or a sanitizer's or a
    # policy's edit would be undone in the trace.
    if is_pristine(request) and request.raw is not None:
        return request.raw
    data = as_dict(request)
    return {key: value for key, value in data.items() if value not in (None, (), [], {})}


def _invocation_parameters(request: AnnotatedLlmRequest) -> dict[str, Any]:
    params = {key: value for key, value in as_dict(request.params).items() if value is not None}
    if request.model is not None:
        params = {"model": request.model, **params}
    if request.stream:
        params["stream"] = True
    if request.tool_choice is not None:
        choice = request.tool_choice
        params["tool_choice"] = choice.name if choice.mode == "tool" and choice.name else choice.mode
    return params


# ------------------------------------------------------------------------------------------- spans


def call_span_name(call: LlmCall) -> str:
    """A readable span name: ``{operation} {model}`` (``chat gpt-4o``), the codec when no model is known."""
    model = call.model or (call.request.model if call.request is not None else None)
    return f"{call.operation} {model or call.codec}"


def _metadata(call: LlmCall) -> dict[str, Any]:
    data: dict[str, Any] = {
        "codec": call.codec,
        "call_id": call.call_id,
        "status": call.status.value,
        "method": call.method,
        "url": call.url,
        "attempt": call.attempt,
        "http_status": call.http_status,
        "stream": call.stream,
        "duration_ms": round(call.duration_ms, 3),
        "time_to_first_token_ms": (
            round(call.time_to_first_token_ms, 3) if call.time_to_first_token_ms is not None else None
        ),
        "scope_path": list(call.scope_path) or None,
        "usage_source": call.usage_source,
        "policies_applied": list(call.policies_applied) or None,
        "block_reason": call.block_reason,
    }
    if call.response is not None:
        data["finish_reason"] = call.response.finish_reason.value
        data["finish_reason_raw"] = call.response.finish_reason_raw
        data["response_id"] = call.response.id
    cost = call.cost
    if cost is not None:
        data["cost_source"] = cost.source
        data["cost_currency"] = cost.currency
        data["price_table_version"] = cost.table_version
        data["price_model_key"] = cost.model_key
        if cost.currency != "USD":  # llm.cost.* are USD by definition: keep other currencies here
            data["cost_total"] = cost.total
    if call.error is not None:
        data["error_kind"] = call.error.kind.value
        data["error_code"] = call.error.code
        data["error_type"] = call.error.type
    return {key: value for key, value in data.items() if value is not None}


def _cost_attributes(call: LlmCall, out: dict[str, AttributeValue]) -> None:
    cost = call.cost
    if cost is None or cost.currency != "USD":
        return
    prompt_parts = [part for part in (cost.input, cost.cache_read, cost.cache_write) if part is not None]
    if cost.input is not None:
        out[SpanAttributes.LLM_COST_PROMPT_DETAILS_INPUT] = cost.input
    if cost.cache_read is not None:
        out[SpanAttributes.LLM_COST_PROMPT_DETAILS_CACHE_READ] = cost.cache_read
    if cost.cache_write is not None:
        out[SpanAttributes.LLM_COST_PROMPT_DETAILS_CACHE_WRITE] = cost.cache_write
    if prompt_parts:
        out[SpanAttributes.LLM_COST_PROMPT] = sum(prompt_parts)
    if cost.output is not None:
        out[SpanAttributes.LLM_COST_COMPLETION] = cost.output
    out[SpanAttributes.LLM_COST_TOTAL] = cost.total


def _token_attributes(call: LlmCall, out: dict[str, AttributeValue]) -> None:
    usage = call.usage
    counts = (
        (SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE, usage.cache_write_tokens),
        (SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ, usage.cache_read_tokens),
        (SpanAttributes.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING, usage.reasoning_tokens),
        (SpanAttributes.LLM_TOKEN_COUNT_TOTAL, usage.total_tokens),
        (SpanAttributes.LLM_TOKEN_COUNT_COMPLETION, usage.completion_tokens),
        (SpanAttributes.LLM_TOKEN_COUNT_PROMPT, usage.prompt_tokens),
    )
    for key, value in counts:
        if value is not None:
            out[key] = value


def _output_value(response: AnnotatedLlmResponse, embeddings: bool) -> tuple[str, str]:
    if embeddings:
        summary = {
            "embedding_count": response.embedding_count,
            "embedding_dimension": response.embedding_dimension,
        }
        return to_json({key: value for key, value in summary.items() if value is not None}), _JSON
    if response.text is not None and not response.tool_calls and len(response.choices) <= 1:
        return response.text, _TEXT
    data = as_dict(response)
    return to_json({key: value for key, value in data.items() if value not in (None, (), [], {})}), _JSON


def call_attributes(call: LlmCall, config: HideConfig) -> dict[str, AttributeValue]:
    """Every attribute of the LLM (or EMBEDDING) span of ``call``, masked, least important first."""
    embeddings = call.operation == "embeddings"
    out: dict[str, AttributeValue] = {}
    request, response = call.request, call.response
    if request is not None:
        payload = _shrink_media(_request_payload(request), config.base64_image_max_length)
        out[SpanAttributes.INPUT_VALUE] = to_json(payload)
        out[SpanAttributes.INPUT_MIME_TYPE] = _JSON
        if embeddings:
            for index, text in enumerate(request.inputs or ()):
                if isinstance(text, str):
                    key = (
                        f"{SpanAttributes.EMBEDDING_EMBEDDINGS}.{index}.{EmbeddingAttributes.EMBEDDING_TEXT}"
                    )
                    out[key] = text
        else:
            # Hidden images are left out whole (not just their URL), so no empty image part remains.
            _input_messages(request, out, images=not config.hide_input_images)
            _tools(request, out)
    if response is not None:
        if not embeddings:
            _output_messages(response, out)
        value, mime = _output_value(response, embeddings)
        out[SpanAttributes.OUTPUT_VALUE] = value
        out[SpanAttributes.OUTPUT_MIME_TYPE] = mime
    if request is not None:
        params = to_json(_invocation_parameters(request))
        key = (
            SpanAttributes.EMBEDDING_INVOCATION_PARAMETERS
            if embeddings
            else SpanAttributes.LLM_INVOCATION_PARAMETERS
        )
        out[key] = params
    out[SpanAttributes.METADATA] = to_json(_metadata(call))
    if call.session_id is not None:
        out[SpanAttributes.SESSION_ID] = call.session_id
    if call.user_id is not None:
        out[SpanAttributes.USER_ID] = call.user_id
    out[STATUS_ATTRIBUTE] = call.status.value
    # The facts that must survive any attribute limit come last (see the module docstring).
    _cost_attributes(call, out)
    system = llm_system(call)
    if system is not None:
        out[SpanAttributes.LLM_SYSTEM] = system
    out[SpanAttributes.LLM_PROVIDER] = llm_provider(call)
    _token_attributes(call, out)
    model = call.model or (request.model if request is not None else None)
    if model is not None:
        if embeddings:
            out[SpanAttributes.EMBEDDING_MODEL_NAME] = model
        out[SpanAttributes.LLM_MODEL_NAME] = model
    kind = OpenInferenceSpanKindValues.EMBEDDING if embeddings else OpenInferenceSpanKindValues.LLM
    out[_KIND] = kind.value
    return _masked(out, config)


def _masked(attributes: dict[str, AttributeValue], config: HideConfig) -> dict[str, AttributeValue]:
    if not config.hides_anything:
        # The default: the mask only guards inline image sizes, so only image keys need asking.
        for key in [key for key in attributes if _IMAGE_MARK in key]:
            masked_image = config.mask(key, attributes[key])
            if masked_image is None:
                del attributes[key]
            else:
                attributes[key] = masked_image  # type: ignore[assignment]  # the value itself, or a str
        return attributes
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        masked = config.mask(key, value)
        if masked is not None:
            out[key] = masked  # type: ignore[assignment]  # mask returns the value it was given, or a str
    return out


_SCOPE_KINDS: Mapping[str, OpenInferenceSpanKindValues] = {
    "AGENT": OpenInferenceSpanKindValues.AGENT,
    "CHAIN": OpenInferenceSpanKindValues.CHAIN,
    "TOOL": OpenInferenceSpanKindValues.TOOL,
}


def scope_kind(scope: ScopeRecord) -> str:
    """The OpenInference span kind of a scope record."""
    return _SCOPE_KINDS.get(scope.kind, OpenInferenceSpanKindValues.CHAIN).value


def scope_start_attributes(scope: ScopeRecord, config: HideConfig) -> dict[str, AttributeValue]:
    """Attributes known when a scope or tool run opens, masked, least important first."""
    out: dict[str, AttributeValue] = {}
    for key, value in scope.attributes.items():  # the user's own, under their own names
        out[str(key)] = _attribute_value(value)
    if scope.attributes:
        out[SpanAttributes.METADATA] = to_json(dict(scope.attributes))
    if scope.kind == "TOOL":
        arguments = to_json(scope.tool_arguments if scope.tool_arguments is not None else {})
        out[SpanAttributes.INPUT_VALUE] = arguments
        out[SpanAttributes.INPUT_MIME_TYPE] = _JSON
        out[SpanAttributes.TOOL_PARAMETERS] = arguments
        if scope.tool_call_id is not None:
            out[SpanAttributes.TOOL_ID] = scope.tool_call_id
            out[ToolCallAttributes.TOOL_CALL_ID] = scope.tool_call_id
        out[ToolCallAttributes.TOOL_CALL_FUNCTION_NAME] = scope.name
        out[ToolCallAttributes.TOOL_CALL_FUNCTION_ARGUMENTS_JSON] = arguments
        out[SpanAttributes.TOOL_NAME] = scope.name
    elif scope.kind == "AGENT":
        out[SpanAttributes.AGENT_NAME] = scope.name
    if scope.session_id is not None:
        out[SpanAttributes.SESSION_ID] = scope.session_id
    if scope.user_id is not None:
        out[SpanAttributes.USER_ID] = scope.user_id
    out[_KIND] = scope_kind(scope)
    return _masked(out, config)


def scope_end_attributes(scope: ScopeRecord, config: HideConfig) -> dict[str, AttributeValue]:
    """Attributes known only when a scope or tool run ends (its result), masked."""
    out: dict[str, AttributeValue] = {}
    if scope.kind == "TOOL" and scope.tool_result is not None:
        result = scope.tool_result
        if isinstance(result, str):
            out[SpanAttributes.OUTPUT_VALUE] = result
            out[SpanAttributes.OUTPUT_MIME_TYPE] = _TEXT
        else:
            out[SpanAttributes.OUTPUT_VALUE] = to_json(result)
            out[SpanAttributes.OUTPUT_MIME_TYPE] = _JSON
    out[_KIND] = scope_kind(scope)  # set again so it is the newest attribute
    return _masked(out, config)
