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
from nemoflow._errors import (
    CodecError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    GuardrailBlocked,
    NemoflowError,
    PolicyError,
)
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
from nemoflow._sse import SSEDecoder, SSEEvent

__version__ = "0.1.0"

__all__ = [
    "CODEC_ENTRY_POINT_GROUP",
    "AnnotatedLlmError",
    "AnnotatedLlmRequest",
    "AnnotatedLlmResponse",
    "AudioPart",
    "Choice",
    "CodecError",
    "ConfigurationError",
    "ContentPart",
    "DecodeError",
    "EncodeError",
    "ErrorKind",
    "FilePart",
    "FinishReason",
    "GenerationParams",
    "GuardrailBlocked",
    "ImagePart",
    "LlmCodec",
    "Message",
    "NemoflowError",
    "OtherPart",
    "PayloadKind",
    "PolicyError",
    "ReasoningPart",
    "RefusalPart",
    "SSEDecoder",
    "SSEEvent",
    "StreamDecoder",
    "TextPart",
    "ToolCall",
    "ToolChoice",
    "ToolDefinition",
    "ToolResultPart",
    "Usage",
    "__version__",
    "as_dict",
    "codecs",
    "get_codec",
    "register_codec",
    "resolve_codec",
    "unregister_codec",
]
