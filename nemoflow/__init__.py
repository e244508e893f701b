"""nemoflow: codecs and middleware for LLM observability.

Decode provider JSON into annotated, provider-neutral requests and responses; rewrite requests with
policies written once for every provider; and trace every call with token counts.
"""

from __future__ import annotations

from nemoflow._codec import (
    CODEC_ENTRY_POINT_GROUP,
    LlmCodec,
    PayloadKind,
    StreamDecoder,
    codecs,
    get_codec,
    register_codec,
    resolve_codec,
    unregister_codec,
)
from nemoflow._cost import Cost, ModelPrice, PriceTable, compute_cost
from nemoflow._errors import (
    CodecError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    GuardrailBlocked,
    NemoflowError,
    PolicyError,
)
from nemoflow._exporters import EXPORTER_ENTRY_POINT_GROUP, exporters, get_exporter
from nemoflow._flow import Flow, LlmCallHandle, Scope, ToolRun, configure, default_flow
from nemoflow._hooks import (
    Block,
    CallContext,
    DropContent,
    Guardrail,
    MaskPatterns,
    Policy,
    Sanitizer,
    TruncateMedia,
    add_metadata,
    cap_max_tokens,
    drop_params,
    prepend_system,
    route_model,
    set_system,
)
from nemoflow._instrument import Instrumentation, instrument
from nemoflow._local import ConsoleExporter, JsonlExporter
from nemoflow._model import (
    AnnotatedLlmError,
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    AudioPart,
    Choice,
    ContentPart,
    ErrorKind,
    FilePart,
    FinishReason,
    GenerationParams,
    ImagePart,
    Message,
    OtherPart,
    ReasoningPart,
    RefusalPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResultPart,
    Usage,
    as_dict,
)
from nemoflow._records import CallStatus, FlowStats, LlmCall, ScopeKind, ScopeRecord, Subscriber, UsageSource
from nemoflow._sse import SSEDecoder, SSEEvent

__version__ = "0.1.0"

# Adapters for optional libraries load on first use, so ``import nemoflow`` never imports them.
_LAZY = {
    "NemoflowAdapter": "nemoflow._requests",
    "requests_adapter": "nemoflow._requests",
    "requests_session": "nemoflow._requests",
    "aiohttp_middleware": "nemoflow._aiohttp",
    "aiohttp_session": "nemoflow._aiohttp",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nemoflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CODEC_ENTRY_POINT_GROUP",
    "EXPORTER_ENTRY_POINT_GROUP",
    "AnnotatedLlmError",
    "AnnotatedLlmRequest",
    "AnnotatedLlmResponse",
    "AudioPart",
    "Block",
    "CallContext",
    "CallStatus",
    "Choice",
    "CodecError",
    "ConfigurationError",
    "ConsoleExporter",
    "ContentPart",
    "Cost",
    "DecodeError",
    "DropContent",
    "EncodeError",
    "ErrorKind",
    "FilePart",
    "FinishReason",
    "Flow",
    "FlowStats",
    "GenerationParams",
    "Guardrail",
    "GuardrailBlocked",
    "ImagePart",
    "Instrumentation",
    "JsonlExporter",
    "LlmCall",
    "LlmCallHandle",
    "LlmCodec",
    "MaskPatterns",
    "Message",
    "ModelPrice",
    "NemoflowAdapter",
    "NemoflowError",
    "OtherPart",
    "PayloadKind",
    "Policy",
    "PolicyError",
    "PriceTable",
    "ReasoningPart",
    "RefusalPart",
    "SSEDecoder",
    "SSEEvent",
    "Sanitizer",
    "Scope",
    "ScopeKind",
    "ScopeRecord",
    "StreamDecoder",
    "Subscriber",
    "TextPart",
    "ToolCall",
    "ToolChoice",
    "ToolDefinition",
    "ToolResultPart",
    "ToolRun",
    "TruncateMedia",
    "Usage",
    "UsageSource",
    "__version__",
    "add_metadata",
    "aiohttp_middleware",
    "aiohttp_session",
    "as_dict",
    "cap_max_tokens",
    "codecs",
    "compute_cost",
    "configure",
    "default_flow",
    "drop_params",
    "exporters",
    "get_codec",
    "get_exporter",
    "instrument",
    "prepend_system",
    "register_codec",
    "requests_adapter",
    "requests_session",
    "resolve_codec",
    "route_model",
    "set_system",
    "unregister_codec",
]
