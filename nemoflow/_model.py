"""The annotated model: provider-neutral views of LLM requests and responses.

Every class is a frozen, slotted dataclass. Edit with :func:`dataclasses.replace`; untouched parts keep
their identity, which is how a codec's ``encode`` knows what changed and writes only that.

Two fields appear on every object decoded from a provider payload:

``extra``
    The keys of the provider object that the model does not name, exactly as sent. Treat it as
    read-only; to change it, ``replace(obj, extra={**obj.extra, "key": value})``.
``raw``
    The provider dict the object was decoded from (``None`` for objects you build yourself). Encode
    merges edits over it, so keys the model does not know about survive at every depth. It is not
    compared, hashed or printed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Literal, TypeAlias, TypeVar

__all__ = [
    "AnnotatedLlmError",
    "AnnotatedLlmRequest",
    "AnnotatedLlmResponse",
    "AudioPart",
    "Choice",
    "ContentPart",
    "ErrorKind",
    "FilePart",
    "FinishReason",
    "GenerationParams",
    "ImagePart",
    "Message",
    "OtherPart",
    "ReasoningPart",
    "RefusalPart",
    "TextPart",
    "ToolCall",
    "ToolChoice",
    "ToolDefinition",
    "ToolResultPart",
    "Usage",
    "as_dict",
    "constructor",
    "is_pristine",
    "mark_pristine",
]

JsonObject: TypeAlias = Mapping[str, Any]
_T = TypeVar("_T")


class _EmptyExtra(Mapping[str, Any]):
    """The shared, immutable default of ``extra`` (hashable, so dataclasses accept it as a default)."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and not other

    def __repr__(self) -> str:
        return "{}"


_EMPTY: Mapping[str, Any] = _EmptyExtra()


def _extra() -> Any:
    return field(default=_EMPTY, compare=True)


def _raw() -> Any:
    return field(default=None, compare=False, repr=False)


def _pristine_flag() -> Any:
    # Set by codecs on objects they decode; ``replace`` builds a new object, which starts un-pristine.
    return field(default=False, init=False, compare=False, repr=False)


def mark_pristine(obj: _T) -> _T:
    """Flag ``obj`` as exactly what a codec decoded from ``obj.raw`` (codecs call this; returns ``obj``)."""
    object.__setattr__(obj, "_pristine", True)
    return obj


def is_pristine(obj: Any) -> bool:
    """Whether ``obj`` is an untouched object decoded by a codec, so encode may reuse ``obj.raw`` as is."""
    return getattr(obj, "_pristine", False) and getattr(obj, "raw", None) is not None


class FinishReason(enum.StrEnum):
    """Why the model stopped, normalized across providers (the provider's own value is kept beside it)."""

    STOP = "stop"
    """Natural end of the reply or a stop sequence."""
    LENGTH = "length"
    """The output-token limit (or the context window) was reached."""
    TOOL_CALLS = "tool_calls"
    """The reply asks the client to run one or more tools."""
    CONTENT_FILTER = "content_filter"
    """A safety system withheld or cut the reply."""
    ERROR = "error"
    """The call or the stream failed before a normal end."""
    UNKNOWN = "unknown"
    """The provider sent no reason, or one nemoflow does not know."""


class ErrorKind(enum.StrEnum):
    """Classification of a provider error response."""

    RATE_LIMIT = "rate_limit"
    QUOTA_EXCEEDED = "quota_exceeded"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    CONTENT_FILTER = "content_filter"
    INVALID_REQUEST = "invalid_request"
    TIMEOUT = "timeout"
    SERVER = "server"
    OVERLOADED = "overloaded"
    UNKNOWN = "unknown"


# ----------------------------------------------------------------------------------------- content parts


@dataclass(frozen=True, slots=True)
class TextPart:
    """A run of text inside a message."""

    text: str
    """The text."""
    kind: Literal["text"] = "text"
    """Discriminator."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this part was decoded from."""
    _pristine: bool = _pristine_flag()


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image, by URL or inline data."""

    url: str | None = None
    """``http(s)://`` or ``data:`` URL, when the provider sent one."""
    data: str | None = None
    """Base64 payload, when the provider sent the bytes inline without a URL."""
    media_type: str | None = None
    """MIME type such as ``image/png``, when known."""
    detail: str | None = None
    """Provider rendering hint (OpenAI ``detail``)."""
    file_id: str | None = None
    """Reference to an uploaded file."""
    kind: Literal["image"] = "image"
    """Discriminator."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this part was decoded from."""
    _pristine: bool = _pristine_flag()


@dataclass(frozen=True, slots=True)
class AudioPart:
    """Audio input or output."""

    data: str | None = None
    """Base64 payload."""
    format: str | None = None
    """Encoding such as ``wav`` or ``mp3``."""
    kind: Literal["audio"] = "audio"
    """Discriminator."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this part was decoded from."""
    _pristine: bool = _pristine_flag()


@dataclass(frozen=True, slots=True)
class FilePart:
    """A document or other file, inline or by reference."""

    file_id: str | None = None
    """Reference to an uploaded file."""
    data: str | None = None
    """Inline payload (base64 or a ``data:`` URL, as the provider sent it)."""
    filename: str | None = None
    """Original file name."""
    media_type: str | None = None
    """MIME type, when known."""
    url: str | None = None
    """Location of the file, when sent by URL."""
    kind: Literal["file"] = "file"
    """Discriminator."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this part was decoded from."""
    _pristine: bool = _pristine_flag()


@dataclass(frozen=True, slots=True)
class RefusalPart:
    """An assistant refusal carried as a content part (OpenAI ``{"type": "refusal"}``)."""

    refusal: str
    """The refusal text."""
    kind: Literal["refusal"] = "refusal"
    """Discriminator."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this part was decoded from."""
    _pristine: bool = _pristine_flag()


@dataclass(frozen=True, slots=True)
class OtherPart:
    """A content part of a type the model does not name; kept whole in ``extra``."""

    type: str
    """The provider's part type."""
    kind: Literal["other"] = "other"
    """Discriminator."""
    extra: JsonObject = _extra()
    """Every provider key except ``type``."""
    raw: JsonObject | None = _raw()
    """The provider dict this part was decoded from."""
    _pristine: bool = _pristine_flag()


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """Model reasoning carried in the conversation (Anthropic ``thinking``, Gemini thought parts, ...)."""

    text: str | None = None
    """The reasoning text; ``None`` when the provider sent it encrypted or redacted."""
    signature: str | None = None
    """Provider signature or encrypted payload that must be sent back unchanged."""
    redacted: bool = False
    """Whether the provider redacted the reasoning (Anthropic ``redacted_thinking``)."""
    kind: Literal["reasoning"] = "reasoning"
    """Discriminator."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this part was decoded from."""
    _pristine: bool = _pristine_flag()


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """The result of a tool call sent back to the model as a content block.

    Anthropic ``tool_result`` and Gemini ``functionResponse`` use it; OpenAI Chat sends a ``tool`` message
    with ``tool_call_id`` instead.
    """

    tool_call_id: str | None = None
    """The call this result answers."""
    content: Any = None
    """Result as text, a tuple of content parts, or a JSON object (Gemini ``response``)."""
    is_error: bool | None = None
    """Whether the tool failed, when the provider says."""
    name: str | None = None
    """Tool name, where the provider matches results by name (Gemini)."""
    kind: Literal["tool_result"] = "tool_result"
    """Discriminator."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this part was decoded from."""
    _pristine: bool = _pristine_flag()


ContentPart: TypeAlias = (
    TextPart | ImagePart | AudioPart | FilePart | RefusalPart | ReasoningPart | ToolResultPart | OtherPart
)
"""Any content part; switch on ``part.kind``."""

# ----------------------------------------------------------------------------------------- tools


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool invocation the model asked for (in a response, or echoed in a later request)."""

    id: str | None
    """Provider call id, used to match the tool result; ``None`` when the provider sent none."""
    name: str
    """Tool (function) name."""
    arguments: Any = None
    """Arguments parsed from JSON; ``None`` when they were malformed (see ``arguments_raw``)."""
    arguments_raw: str | None = None
    """The arguments exactly as the model emitted them, when they came as a string."""
    type: str = "function"
    """Provider tool type (``function`` for plain function calls)."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this call was decoded from."""
    _pristine: bool = _pristine_flag()

    @property
    def arguments_valid(self) -> bool:
        """Whether the arguments parsed as JSON (or were given as an object)."""
        return self.arguments is not None or self.arguments_raw is None


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool the model may call."""

    name: str
    """Tool name."""
    description: str | None = None
    """What the tool does, for the model."""
    parameters: Any = None
    """JSON Schema of the arguments."""
    strict: bool | None = None
    """Provider strict-schema flag, when sent."""
    type: str = "function"
    """Provider tool type; built-in tools (web search, code interpreter, ...) keep their own type."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this tool was decoded from."""
    _pristine: bool = _pristine_flag()


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """How the model may use tools."""

    mode: Literal["auto", "none", "required", "tool"]
    """``auto`` (model decides), ``none``, ``required`` (some tool), or ``tool`` (the one named)."""
    name: str | None = None
    """The forced tool's name when ``mode == "tool"``."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: Any = _raw()
    """The provider value this choice was decoded from (a string or a dict)."""
    _pristine: bool = _pristine_flag()


# ----------------------------------------------------------------------------------------- request


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the conversation, in the order sent."""

    role: str
    """``system``, ``developer``, ``user``, ``assistant``, ``tool`` or ``function`` (provider roles kept)."""
    content: str | tuple[ContentPart, ...] | None = None
    """Plain text, a sequence of parts, or ``None`` (e.g. an assistant turn with only tool calls)."""
    name: str | None = None
    """Participant or function name."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Tool calls made in an assistant turn."""
    tool_call_id: str | None = None
    """For tool results: the call this message answers."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider dict this message was decoded from."""
    _pristine: bool = _pristine_flag()

    @property
    def text(self) -> str:
        """The message's text: the string content, or its text parts joined (empty when none)."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "".join(part.text for part in self.content if isinstance(part, TextPart))


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Sampling and output parameters; a field is ``None`` when the request did not set it."""

    temperature: float | None = None
    """Sampling temperature."""
    top_p: float | None = None
    """Nucleus sampling mass."""
    top_k: int | None = None
    """Top-k sampling (providers that support it)."""
    max_tokens: int | None = None
    """Output token cap (OpenAI ``max_completion_tokens`` or ``max_tokens``, Anthropic ``max_tokens``...)."""
    stop: tuple[str, ...] | None = None
    """Stop sequences (a single string on the wire becomes a one-item tuple)."""
    seed: int | None = None
    """Sampling seed."""
    n: int | None = None
    """Number of choices requested."""
    presence_penalty: float | None = None
    """Presence penalty."""
    frequency_penalty: float | None = None
    """Frequency penalty."""
    response_format: Any = None
    """Structured-output request as sent (e.g. ``{"type": "json_schema", ...}``)."""
    reasoning_effort: str | None = None
    """Reasoning effort hint (``low``/``medium``/``high``...)."""
    dimensions: int | None = None
    """Embeddings: requested vector size."""
    encoding_format: str | None = None
    """Embeddings: ``float`` or ``base64``."""


@dataclass(frozen=True, slots=True)
class AnnotatedLlmRequest:
    """A provider-neutral view of one LLM request."""

    model: str | None = None
    """Model (or deployment) name, from the body or, when absent there, the URL."""
    stream: bool = False
    """Whether the caller asked for a streamed reply."""
    system: str | None = None
    """Normalized system instructions; edit this to change them on any provider."""
    messages: tuple[Message, ...] = ()
    """The conversation, as sent (OpenAI system/developer messages included)."""
    params: GenerationParams = field(default_factory=GenerationParams)
    """Sampling and output parameters."""
    tools: tuple[ToolDefinition, ...] = ()
    """Tools offered to the model."""
    tool_choice: ToolChoice | None = None
    """Tool-use constraint, when sent."""
    inputs: tuple[str | tuple[int, ...], ...] | None = None
    """Embeddings: the texts (or token arrays) to embed; ``None`` for other operations."""
    operation: str = "chat"
    """What is asked: ``chat`` or ``embeddings`` (more as codecs add them)."""
    extra: JsonObject = _extra()
    """Top-level provider keys the model does not name."""
    raw: JsonObject | None = _raw()
    """The provider request this object was decoded from."""
    _pristine: bool = _pristine_flag()


# ----------------------------------------------------------------------------------------- response


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the provider reported them; ``None`` means not reported, never zero by guess.

    ``prompt_tokens`` counts every input token billed, cached ones included, for every provider.
    """

    prompt_tokens: int | None = None
    """All input tokens billed, cached ones included."""
    completion_tokens: int | None = None
    """All output tokens billed, reasoning included."""
    total_tokens: int | None = None
    """The provider's stated total, else prompt + completion when both are known."""
    cache_read_tokens: int | None = None
    """Input tokens served from the prompt cache (part of ``prompt_tokens``)."""
    cache_write_tokens: int | None = None
    """Input tokens written to the prompt cache (part of ``prompt_tokens``)."""
    reasoning_tokens: int | None = None
    """Output tokens spent on reasoning (part of ``completion_tokens``)."""
    extra: JsonObject = _extra()
    """Provider usage keys the model does not name."""

    @property
    def reported(self) -> bool:
        """Whether the provider reported any token count at all."""
        return (
            self.prompt_tokens is not None
            or self.completion_tokens is not None
            or (self.total_tokens is not None)
        )


@dataclass(frozen=True, slots=True)
class Choice:
    """One alternative reply (``n > 1`` gives several)."""

    index: int
    """Position the provider gave this choice."""
    text: str | None = None
    """Reply text (reasoning removed), ``None`` when the reply had none."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Client tool calls requested."""
    finish_reason: FinishReason = FinishReason.UNKNOWN
    """Normalized finish reason."""
    finish_reason_raw: str | None = None
    """The provider's own finish value."""
    reasoning_text: str | None = None
    """Reasoning / thinking text, when the provider or model exposed it."""
    refusal: str | None = None
    """Refusal text, when the model refused."""
    role: str | None = None
    """Author role (``assistant``)."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name (from the choice and its message)."""


@dataclass(frozen=True, slots=True)
class AnnotatedLlmResponse:
    """A provider-neutral view of one LLM reply (the first choice's facts at top level)."""

    id: str | None = None
    """Provider response id."""
    model: str | None = None
    """Model that answered, as the provider reported it."""
    text: str | None = None
    """Reply text of the first choice, reasoning removed."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Client tool calls of the first choice."""
    finish_reason: FinishReason = FinishReason.UNKNOWN
    """Normalized finish reason of the first choice."""
    finish_reason_raw: str | None = None
    """The provider's own finish value."""
    usage: Usage = field(default_factory=Usage)
    """Token counts (fields ``None`` when not reported)."""
    reasoning_text: str | None = None
    """Reasoning / thinking text of the first choice."""
    refusal: str | None = None
    """Refusal text of the first choice."""
    choices: tuple[Choice, ...] = ()
    """Every choice, in index order."""
    created: int | None = None
    """Provider creation timestamp (Unix seconds)."""
    system_fingerprint: str | None = None
    """Backend configuration fingerprint (OpenAI)."""
    service_tier: str | None = None
    """Service tier that served the request."""
    cost: float | None = None
    """Cost the provider itself reported (e.g. OpenRouter ``usage.cost``), in USD."""
    error: AnnotatedLlmError | None = None
    """For a stream that ended in an error event: what the provider said."""
    operation: str = "chat"
    """What was answered: ``chat`` or ``embeddings``."""
    embedding_count: int | None = None
    """Embeddings: number of vectors returned."""
    embedding_dimension: int | None = None
    """Embeddings: length of each vector."""
    extra: JsonObject = _extra()
    """Top-level provider keys the model does not name."""


@dataclass(frozen=True, slots=True)
class AnnotatedLlmError:
    """A provider error response (HTTP 4xx/5xx body, or an error event inside a stream), classified."""

    kind: ErrorKind
    """Normalized class of the error."""
    status: int | None = None
    """HTTP status, when the error came as a response."""
    message: str | None = None
    """The provider's message."""
    type: str | None = None
    """The provider's error type."""
    code: str | None = None
    """The provider's error code."""
    param: str | None = None
    """The offending request parameter, when named."""
    retry_after: float | None = None
    """Seconds to wait before retrying, from ``retry-after-ms`` / ``retry-after`` headers."""
    body: str | None = None
    """The error body as text, cut to 4 KiB."""
    extra: JsonObject = _extra()
    """Provider keys the model does not name."""

    @property
    def retryable(self) -> bool:
        """Whether retrying the same request later can succeed."""
        return self.kind in _RETRYABLE


_RETRYABLE = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.SERVER, ErrorKind.OVERLOADED, ErrorKind.TIMEOUT})


# ----------------------------------------------------------------------------------------- serialization


def as_dict(obj: Any) -> Any:
    """Turn an annotated object into plain JSON-ready data (``raw`` and private fields left out).

    Tuples become lists and enums their string values; ``None`` fields are kept so the shape is stable.
    """
    kind = type(obj)
    if kind is str or kind is int or kind is float or kind is bool or obj is None:
        return obj  # most leaves: decided before any generic check (exporters call this per record)
    names = _DATACLASS_FIELDS.get(kind)
    if names is None and is_dataclass(obj) and not isinstance(obj, type):
        names = _DATACLASS_FIELDS[kind] = tuple(
            f.name for f in fields(obj) if f.name != "raw" and not f.name.startswith("_")
        )
    if names is not None:
        return {name: as_dict(getattr(obj, name)) for name in names}
    if isinstance(obj, enum.Enum):
        return obj.value
    if kind is tuple or kind is list or kind is dict or isinstance(obj, tuple | list | Mapping):
        return _plain_tree(obj)
    return obj


def _plain_tree(root: Any) -> Any:
    """A JSON container (any depth: raw JSON nests as deep as the parser allows) as plain dicts and lists.

    Iterative, so nesting deeper than Python's recursion limit converts like any other value.
    """
    top: Any = {} if isinstance(root, Mapping) else []
    pending: list[tuple[Any, Any]] = [(root, top)]
    while pending:
        source, target = pending.pop()
        items = source.items() if isinstance(source, Mapping) else enumerate(source)
        for key, value in items:
            kind = type(value)
            if kind is str or kind is int or kind is float or kind is bool or value is None:
                converted = value
            elif (
                kind is dict
                or kind is list
                or kind is tuple
                or (isinstance(value, tuple | list | Mapping) and not is_dataclass(value))
            ):
                converted = {} if isinstance(value, Mapping) else []
                pending.append((value, converted))
            else:
                converted = as_dict(value)  # dataclasses and enums: shallow
            if isinstance(target, dict):
                target[str(key)] = converted
            else:
                target.append(converted)
    return top


_DATACLASS_FIELDS: dict[type, tuple[str, ...]] = {}
"""The fields :func:`as_dict` writes, per dataclass type (classes do not change their fields)."""


# ----------------------------------------------------------------------------------------- fast construction

_FACTORY = object()


def constructor(cls: type[_T], *, pristine: bool) -> Callable[..., _T]:
    """A fast constructor for a model class, taking the init fields in declaration order.

    Frozen dataclasses set every field through ``object.__setattr__``; decoding builds many objects,
    so codecs use this instead: it writes the slots through their descriptors (about twice as fast) and,
    with ``pristine=True``, flags the object as untouched since decode in the same step. Defaults apply
    to trailing fields left out. The result is indistinguishable from ``cls(...)``.
    """
    init_fields = [f for f in fields(cls) if f.init]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_FACTORY": _FACTORY}
    params: list[str] = []
    body = ["    obj = _new(_cls)"]
    for index, spec in enumerate(init_fields):
        setter = f"_set_{index}"
        namespace[setter] = cls.__dict__[spec.name].__set__
        if spec.default is not MISSING:
            namespace[f"_default_{index}"] = spec.default
            params.append(f"{spec.name}=_default_{index}")
        elif spec.default_factory is not MISSING:
            namespace[f"_factory_{index}"] = spec.default_factory
            params.append(f"{spec.name}=_FACTORY")
            body.append(f"    if {spec.name} is _FACTORY: {spec.name} = _factory_{index}()")
        else:
            params.append(spec.name)
        body.append(f"    {setter}(obj, {spec.name})")
    if "_pristine" in cls.__dict__:
        namespace["_set_pristine"] = cls.__dict__["_pristine"].__set__
        body.append(f"    _set_pristine(obj, {pristine})")
    body.append("    return obj")
    source = f"def build({', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(compile(source, f"<nemoflow constructor for {cls.__name__}>", "exec"), namespace)
    build: Callable[..., _T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    return build
