"""Anthropic Messages responses, streamed events and error bodies → annotated objects.

Wire references: Anthropic API reference "Messages" (the ``message`` object), "Streaming Messages"
(``message_start``, ``content_block_start/delta/stop``, ``message_delta``, ``message_stop``, ``ping``,
``error``) and "Errors" (``{"type": "error", "error": {"type", "message"}, "request_id"}``, HTTP 529
``overloaded_error``); the ``anthropic`` SDK's ``Message``, ``Usage``, ``MessageDeltaUsage`` and
``RawMessageStreamEvent`` types; Amazon Bedrock's ``InvokeModelWithResponseStream`` payload chunks
(``{"bytes": base64}``) and error headers (``x-amzn-ErrorType``).

Facts beyond the model's fields are kept in ``extra`` (the response's and its single choice's):
``thinking_signatures`` (the signature of each thinking block, in order), ``redacted_thinking`` (the
``data`` of each redacted block), ``server_tool_blocks`` (server-tool blocks such as ``server_tool_use``
and ``web_search_tool_result``, which are not client tool calls) and ``citations`` (every citation of the
text blocks), each only when there is one; plus unknown top-level keys (``stop_sequence``,
``stop_details``, ``container``, …).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from nemoflow import (
    AnnotatedLlmError,
    AnnotatedLlmResponse,
    Choice,
    DecodeError,
    ErrorKind,
    FinishReason,
    ToolCall,
    Usage,
)
from nemoflow.codec_support import (
    COMPACT_EVERY,
    STREAM_TEXT_LIMIT,
    classify_status,
    compact_text,
    error_body_text,
    optional_int,
    optional_str,
    retry_after_seconds,
    split_known,
)

from ._request import CODEC, FUNCTION, expect_list, expect_mapping

_STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
    "pause_turn": FinishReason.UNKNOWN,
}
_RESPONSE_KEYS = frozenset({"id", "type", "role", "model", "content", "stop_reason", "usage"})
_TOOL_USE_KEYS = frozenset({"type", "id", "name", "input"})
_USAGE_COUNT_KEYS = frozenset(
    {"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}
)
THINKING_SEPARATOR = "\n\n"
"""Joins the texts of several thinking blocks (interleaved thinking) into ``reasoning_text``."""


def finish_reason(raw: str | None, has_tool_calls: bool) -> FinishReason:
    """Normalize a ``stop_reason``; a reply with client tool calls is ``tool_calls`` even if it says stop."""
    if not raw:
        return FinishReason.TOOL_CALLS if has_tool_calls else FinishReason.UNKNOWN
    reason = _STOP_REASONS.get(raw, FinishReason.UNKNOWN)
    if has_tool_calls and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason


def decode_usage(raw: Any, path: str) -> Usage:
    """``usage`` → :class:`Usage`; prompt tokens are input + cache reads + cache writes."""
    usage = expect_mapping(raw, path, "usage")
    input_tokens = optional_int(usage.get("input_tokens"), f"{path}.input_tokens", CODEC)
    output_tokens = optional_int(usage.get("output_tokens"), f"{path}.output_tokens", CODEC)
    cache_read = optional_int(usage.get("cache_read_input_tokens"), f"{path}.cache_read_input_tokens", CODEC)
    cache_write = optional_int(
        usage.get("cache_creation_input_tokens"), f"{path}.cache_creation_input_tokens", CODEC
    )
    reasoning = None
    details = usage.get("output_tokens_details")
    if isinstance(details, Mapping):
        reasoning = optional_int(
            details.get("thinking_tokens"), f"{path}.output_tokens_details.thinking_tokens", CODEC
        )
    prompt = None
    if input_tokens is not None:
        prompt = input_tokens + (cache_read or 0) + (cache_write or 0)
    total = prompt + output_tokens if prompt is not None and output_tokens is not None else None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output_tokens,
        total_tokens=total,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        extra=split_known(usage, _USAGE_COUNT_KEYS),
    )


def _parse_input(joined: str) -> tuple[Any, str | None]:
    """Tool input streamed as JSON fragments: ``(parsed, None)``, or ``(None, text)`` when malformed."""
    try:
        return orjson.loads(joined), None
    except orjson.JSONDecodeError:
        return None, joined


@dataclass(slots=True)
class _Reply:
    """What the content blocks of one reply amount to (filled from a message or from stream events)."""

    texts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)
    server_blocks: list[Any] = field(default_factory=list)
    citations: list[Any] = field(default_factory=list)

    def add_text(self, text: str, citations: Any) -> None:
        self.texts.append(text)
        if isinstance(citations, list):
            self.citations.extend(citations)

    def add_thinking(self, text: str | None, signature: str | None) -> None:
        if text:
            self.thinking.append(text)
        if signature:  # a streamed block starts with an empty signature until signature_delta comes
            self.signatures.append(signature)

    def block_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.signatures:
            extra["thinking_signatures"] = self.signatures
        if self.redacted:
            extra["redacted_thinking"] = self.redacted
        if self.server_blocks:
            extra["server_tool_blocks"] = self.server_blocks
        if self.citations:
            extra["citations"] = self.citations
        return extra


def _build(
    reply: _Reply,
    *,
    response_id: str | None,
    model: str | None,
    role: str | None,
    stop_reason: str | None,
    usage: Usage,
    top_extra: Mapping[str, Any],
    error: AnnotatedLlmError | None,
) -> AnnotatedLlmResponse:
    calls = tuple(reply.calls)
    reason = finish_reason(stop_reason, bool(calls))
    text = "".join(reply.texts) or None
    reasoning = THINKING_SEPARATOR.join(reply.thinking) or None
    stop_details = top_extra.get("stop_details")
    refusal = None
    if isinstance(stop_details, Mapping) and isinstance(stop_details.get("explanation"), str):
        refusal = stop_details["explanation"]
    extra = {**top_extra, **reply.block_extra()}
    choice = Choice(
        index=0,
        text=text,
        tool_calls=calls,
        finish_reason=reason,
        finish_reason_raw=stop_reason,
        reasoning_text=reasoning,
        refusal=refusal,
        role=role,
        extra=extra,
    )
    tier = usage.extra.get("service_tier")
    return AnnotatedLlmResponse(
        id=response_id,
        model=model,
        text=text,
        tool_calls=calls,
        finish_reason=FinishReason.ERROR if error is not None else reason,
        finish_reason_raw=stop_reason,
        usage=usage,
        reasoning_text=reasoning,
        refusal=refusal,
        choices=(choice,),
        service_tier=tier if isinstance(tier, str) else None,
        error=error,
        operation="chat",
        extra=extra,
    )


def _block_type(block: Mapping[str, Any], path: str) -> str:
    block_type = block.get("type")
    if not isinstance(block_type, str):
        raise DecodeError("content block has no string 'type'", path=f"{path}.type", codec=CODEC)
    return block_type


def _tool_call(
    block: Mapping[str, Any], path: str, arguments: Any, arguments_raw: str | None
) -> ToolCall | None:
    name = block.get("name")
    if not isinstance(name, str) or not name:
        return None  # a call without a name cannot be acted on
    return ToolCall(
        id=optional_str(block.get("id"), f"{path}.id", CODEC),
        name=name,
        arguments=arguments,
        arguments_raw=arguments_raw,
        type=FUNCTION,
        extra=split_known(block, _TOOL_USE_KEYS),
    )


def _add_block(reply: _Reply, block: Mapping[str, Any], path: str) -> None:
    """One complete content block of a reply."""
    block_type = _block_type(block, path)
    if block_type == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise DecodeError("text block needs a string 'text'", path=f"{path}.text", codec=CODEC)
        reply.add_text(text, block.get("citations"))
    elif block_type == "tool_use":
        call = _tool_call(block, path, block.get("input"), None)
        if call is not None:
            reply.calls.append(call)
    elif block_type == "thinking":
        reply.add_thinking(
            optional_str(block.get("thinking"), f"{path}.thinking", CODEC),
            optional_str(block.get("signature"), f"{path}.signature", CODEC),
        )
    elif block_type == "redacted_thinking":
        data = optional_str(block.get("data"), f"{path}.data", CODEC)
        if data is not None:
            reply.redacted.append(data)
    else:
        reply.server_blocks.append(block)


def decode_response(response: Any) -> AnnotatedLlmResponse:
    """A complete (non-streamed) ``message`` object."""
    body = expect_mapping(response, "$", "the response body")
    content = body.get("content")
    reply = _Reply()
    if content is not None:
        for i, block in enumerate(expect_list(content, "$.content", "content")):
            path = f"$.content[{i}]"
            _add_block(reply, expect_mapping(block, path, "a content block"), path)
    usage_raw = body.get("usage")
    return _build(
        reply,
        response_id=optional_str(body.get("id"), "$.id", CODEC),
        model=optional_str(body.get("model"), "$.model", CODEC),
        role=optional_str(body.get("role"), "$.role", CODEC),
        stop_reason=optional_str(body.get("stop_reason"), "$.stop_reason", CODEC),
        usage=decode_usage(usage_raw, "$.usage") if usage_raw is not None else Usage(),
        top_extra=split_known(body, _RESPONSE_KEYS),
        error=None,
    )


# ----------------------------------------------------------------------------------------- streaming


@dataclass(slots=True)
class _Block:
    """One content block being streamed."""

    start: Mapping[str, Any]
    type: str
    text: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    signature: str | None = None
    citations: list[Any] = field(default_factory=list)


_DELTA_FIELDS = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
    "signature_delta": "signature",
}
_MESSAGE_START_KEYS = frozenset({"id", "type", "role", "model", "content", "stop_reason", "usage"})
_PLACEHOLDER_USAGE_KEYS = frozenset({"output_tokens", "output_tokens_details"})


class MessagesStreamDecoder:
    """Assembles a Messages SSE stream into one :class:`AnnotatedLlmResponse`.

    Usage is cumulative on this wire: ``message_start`` carries the real input and cache counts (its
    ``output_tokens`` is a placeholder and is not taken), each ``message_delta`` the counts so far; per
    key the latest value wins and nothing is added up. A stream cut off before any ``message_delta``
    therefore reports no completion tokens (``None``) rather than the placeholder. Bedrock payload
    chunks (``{"bytes": "<base64 event>"}``) are unwrapped.

    ``feed`` runs once per streamed event, so the common event (a text, thinking or tool-input delta of a
    block already started) takes a short path of plain ``dict`` checks. Each block's pieces are joined
    every :data:`COMPACT_EVERY` events and cut at :attr:`text_limit` characters, so a very long stream
    costs memory in proportion to its text, never per event.
    """

    __slots__ = (
        "_blocks",
        "_error",
        "_events",
        "_extra",
        "_id",
        "_model",
        "_role",
        "_stop_reason",
        "_truncated",
        "_usage",
        "text_limit",
    )

    def __init__(self) -> None:
        """Start an empty stream."""
        self._blocks: dict[int, _Block] = {}
        self._id: str | None = None
        self._model: str | None = None
        self._role: str | None = None
        self._stop_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._extra: dict[str, Any] = {}
        self._error: AnnotatedLlmError | None = None
        self._events = 0
        self._truncated = False
        self.text_limit: int = STREAM_TEXT_LIMIT
        """Most characters kept per text (reply text, thinking, each tool call's input); the rest is cut."""

    @property
    def has_content(self) -> bool:
        """Whether generated output (text, thinking, a tool call) has arrived: time to first token."""
        return any(
            any(block.text) or any(block.fragments) or block.type in ("tool_use", "server_tool_use")
            for block in self._blocks.values()
        )

    @property
    def truncated(self) -> bool:
        """Whether some text passed :attr:`text_limit` and was cut."""
        return self._truncated

    def feed(self, data: str | bytes, event: str | None = None) -> None:
        """Take one SSE event's data (and its ``event:`` name)."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"stream event is not JSON: {exc}", path="$", codec=CODEC) from exc
        if type(chunk) is not dict:  # orjson makes plain dicts: the ABC check only for the error
            if not isinstance(chunk, Mapping):
                raise DecodeError("a stream event must be a JSON object", path="$", codec=CODEC)
        if chunk.get("type") == "content_block_delta" and self._feed_fast_delta(chunk):
            pass
        elif "type" not in chunk and "bytes" in chunk:
            self._feed_bedrock_chunk(chunk["bytes"], event)
        else:
            self._feed_event(chunk, event)
        self._events += 1
        if self._events % COMPACT_EVERY == 0:
            self._compact()

    def _feed_fast_delta(self, chunk: dict[str, Any]) -> bool:
        """The common delta (text, thinking, tool input) of a started block; ``False`` for anything else."""
        index = chunk.get("index")
        delta = chunk.get("delta")
        if type(index) is not int or type(delta) is not dict:
            return False
        block = self._blocks.get(index)
        if block is None:
            return False
        delta_type = delta.get("type")
        if delta_type == "text_delta":
            value = delta.get("text")
            pieces = block.text
        elif delta_type == "thinking_delta":
            value = delta.get("thinking")
            pieces = block.text
        elif delta_type == "input_json_delta":
            value = delta.get("partial_json")
            pieces = block.fragments
        else:
            return False
        if type(value) is not str:
            return False  # the general path raises with the path
        pieces.append(value)
        return True

    def _compact(self) -> None:
        limit = self.text_limit
        for block in self._blocks.values():
            for pieces in (block.text, block.fragments):
                if len(pieces) > 1 or (pieces and len(pieces[0]) > limit):
                    if compact_text(pieces, limit):
                        self._truncated = True

    def _feed_bedrock_chunk(self, payload: Any, event: str | None) -> None:
        try:
            inner = orjson.loads(base64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError, TypeError) as exc:
            raise DecodeError(
                f"Bedrock chunk bytes are not a base64 JSON event: {exc}", path="$.bytes", codec=CODEC
            ) from exc
        if not isinstance(inner, Mapping):
            raise DecodeError("a Bedrock chunk must hold a JSON object", path="$.bytes", codec=CODEC)
        try:
            self._feed_event(inner, event)
        except DecodeError as exc:
            raise DecodeError(
                f"{exc.message} (at {exc.path} inside the chunk)", path="$.bytes", codec=CODEC
            ) from exc

    def _feed_event(self, chunk: Mapping[str, Any], event: str | None) -> None:
        kind = chunk.get("type")
        if not isinstance(kind, str):
            kind = event
        if kind == "content_block_delta":
            self._on_delta(chunk)
        elif kind == "content_block_start":
            self._on_block_start(chunk)
        elif kind == "message_delta":
            self._on_message_delta(chunk)
        elif kind == "message_start":
            self._on_message_start(chunk)
        elif kind == "message_stop":
            extra = split_known(chunk, frozenset({"type"}))  # Bedrock adds invocation metrics here
            self._extra.update(extra)
        elif kind == "error":
            self._error = error_from_object(chunk.get("error", chunk), status=None)
        # ping, content_block_stop and event types added later carry nothing to keep

    @staticmethod
    def _index(chunk: Mapping[str, Any]) -> int:
        index = optional_int(chunk.get("index"), "$.index", CODEC)
        if index is None:
            raise DecodeError("content block event needs an integer 'index'", path="$.index", codec=CODEC)
        return index

    def _on_message_start(self, chunk: Mapping[str, Any]) -> None:
        message = expect_mapping(chunk.get("message"), "$.message", "message")
        response_id = optional_str(message.get("id"), "$.message.id", CODEC)
        model = optional_str(message.get("model"), "$.message.model", CODEC)
        role = optional_str(message.get("role"), "$.message.role", CODEC)
        stop_reason = optional_str(message.get("stop_reason"), "$.message.stop_reason", CODEC)
        usage = message.get("usage")
        if usage is not None:
            decode_usage(usage, "$.message.usage")  # check before anything is kept
        self._id = response_id or self._id
        self._model = model or self._model
        self._role = role or self._role
        self._stop_reason = stop_reason or self._stop_reason
        if isinstance(usage, Mapping):
            # Its output count is a placeholder (the real one comes with message_delta): not a report.
            self._merge_usage({k: v for k, v in usage.items() if k not in _PLACEHOLDER_USAGE_KEYS})
        self._extra.update(split_known(message, _MESSAGE_START_KEYS))

    def _on_block_start(self, chunk: Mapping[str, Any]) -> None:
        index = self._index(chunk)
        block = expect_mapping(chunk.get("content_block"), "$.content_block", "content_block")
        block_type = _block_type(block, "$.content_block")
        builder = _Block(start=block, type=block_type)
        if block_type == "text":
            text = optional_str(block.get("text"), "$.content_block.text", CODEC)
            if text:
                builder.text.append(text)
        elif block_type == "thinking":
            text = optional_str(block.get("thinking"), "$.content_block.thinking", CODEC)
            builder.signature = optional_str(block.get("signature"), "$.content_block.signature", CODEC)
            if text:
                builder.text.append(text)
        elif block_type == "tool_use":
            optional_str(block.get("id"), "$.content_block.id", CODEC)  # checked now: finish never raises
        self._blocks[index] = builder

    def _on_delta(self, chunk: Mapping[str, Any]) -> None:
        index = self._index(chunk)
        delta = expect_mapping(chunk.get("delta"), "$.delta", "delta")
        delta_type = delta.get("type")
        if delta_type == "citations_delta":
            self._block(index, "text").citations.append(delta.get("citation"))
            return
        key = _DELTA_FIELDS.get(delta_type) if isinstance(delta_type, str) else None
        if key is None:
            return  # a delta type added later
        value = delta.get(key)
        if not isinstance(value, str):
            raise DecodeError(f"{delta_type} needs a string '{key}'", path=f"$.delta.{key}", codec=CODEC)
        if delta_type == "text_delta":
            self._block(index, "text").text.append(value)
        elif delta_type == "input_json_delta":
            self._block(index, "tool_use").fragments.append(value)
        elif delta_type == "thinking_delta":
            self._block(index, "thinking").text.append(value)
        else:
            self._block(index, "thinking").signature = value

    def _block(self, index: int, implied_type: str) -> _Block:
        block = self._blocks.get(index)
        if block is None:  # a delta without its start: assume the type the delta implies
            block = self._blocks[index] = _Block(start={"type": implied_type}, type=implied_type)
        return block

    def _on_message_delta(self, chunk: Mapping[str, Any]) -> None:
        delta = chunk.get("delta")
        stop_reason = None
        if delta is not None:
            delta = expect_mapping(delta, "$.delta", "delta")
            stop_reason = optional_str(delta.get("stop_reason"), "$.delta.stop_reason", CODEC)
        usage = chunk.get("usage")
        if usage is not None:
            decode_usage(usage, "$.usage")  # check before anything is kept
            self._merge_usage(usage)
        if delta is not None:
            if stop_reason:
                self._stop_reason = stop_reason
            self._extra.update(split_known(delta, frozenset({"stop_reason"})))

    def _cut(self, reply: _Reply) -> None:
        """Cut the reply text and the thinking, joined over their blocks, at :attr:`text_limit`."""
        limit = self.text_limit
        for pieces, separator in ((reply.texts, ""), (reply.thinking, THINKING_SEPARATOR)):
            if len(pieces) > 1:
                joined = separator.join(pieces)
                if len(joined) > limit:
                    pieces[:] = [joined[:limit]]
                    self._truncated = True

    def _merge_usage(self, usage: Mapping[str, Any]) -> None:
        merged = self._usage if self._usage is not None else {}
        for key, value in usage.items():
            if value is not None:  # a null never clobbers a count already seen
                merged[key] = value
        self._usage = merged

    def finish(self) -> AnnotatedLlmResponse:
        """The reply assembled from every event fed so far (each text cut at :attr:`text_limit`)."""
        self._compact()  # applies text_limit to what arrived since the last compaction
        reply = _Reply()
        for index in sorted(self._blocks):
            block = self._blocks[index]
            joined = "".join(block.text)
            if block.type == "text":
                start_citations = block.start.get("citations")
                citations = [*start_citations] if isinstance(start_citations, list) else []
                reply.add_text(joined, [*citations, *block.citations])
            elif block.type == "thinking":
                reply.add_thinking(joined, block.signature)
            elif block.type == "tool_use":
                arguments, arguments_raw = block.start.get("input"), None
                if block.fragments:
                    arguments, arguments_raw = _parse_input("".join(block.fragments))
                call = _tool_call(block.start, "$.content_block", arguments, arguments_raw)
                if call is not None:
                    reply.calls.append(call)
            elif block.type == "redacted_thinking":
                data = block.start.get("data")
                if isinstance(data, str):
                    reply.redacted.append(data)
            else:
                server_block = dict(block.start)
                if block.fragments:
                    parsed, malformed = _parse_input("".join(block.fragments))
                    if malformed is None:
                        server_block["input"] = parsed
                reply.server_blocks.append(server_block)
        self._cut(reply)
        usage = Usage()
        if self._usage is not None:
            try:
                usage = decode_usage(self._usage, "$.usage")
            except DecodeError:  # every piece was checked when fed; keep finish total
                usage = Usage()
        return _build(
            reply,
            response_id=self._id,
            model=self._model,
            role=self._role,
            stop_reason=self._stop_reason,
            usage=usage,
            top_extra=dict(self._extra),
            error=self._error,
        )


# ----------------------------------------------------------------------------------------- errors

_TYPE_KINDS = {
    # Anthropic error types
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "billing_error": ErrorKind.QUOTA_EXCEEDED,
    "permission_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "request_too_large": ErrorKind.INVALID_REQUEST,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "timeout_error": ErrorKind.TIMEOUT,
    "api_error": ErrorKind.SERVER,
    "overloaded_error": ErrorKind.OVERLOADED,
    # Amazon Bedrock (x-amzn-ErrorType)
    "ValidationException": ErrorKind.INVALID_REQUEST,
    "AccessDeniedException": ErrorKind.PERMISSION,
    "UnrecognizedClientException": ErrorKind.AUTHENTICATION,
    "ResourceNotFoundException": ErrorKind.NOT_FOUND,
    "ThrottlingException": ErrorKind.RATE_LIMIT,
    "ServiceQuotaExceededException": ErrorKind.QUOTA_EXCEEDED,
    "ModelTimeoutException": ErrorKind.TIMEOUT,
    "ModelErrorException": ErrorKind.SERVER,
    "ModelStreamErrorException": ErrorKind.SERVER,
    "InternalServerException": ErrorKind.SERVER,
    "ServiceUnavailableException": ErrorKind.OVERLOADED,
    "ModelNotReadyException": ErrorKind.OVERLOADED,
    # Google Cloud (Vertex AI) status names
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "INTERNAL": ErrorKind.SERVER,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
}
_CONTEXT_LENGTH = re.compile(
    r"prompt is too long|input is too long|context (?:limit|window|length)|too many (?:input )?tokens",
    re.IGNORECASE,
)
_OUT_OF_CREDIT = re.compile(r"credit balance|billing", re.IGNORECASE)
_CONTENT_FILTER = re.compile(r"content filtering|content policy", re.IGNORECASE)
_ERROR_KEYS = frozenset({"type", "message", "code"})
_GOOGLE_ERROR_KEYS = frozenset({"status", "message", "code"})
_MAX_PARSED_ERROR_BODY = 1024 * 1024


def _code_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return str(value)
    return None


def classify(status: int | None, error_type: str | None, message: str | None) -> ErrorKind:
    """The :class:`ErrorKind` of an Anthropic (or Bedrock / Vertex AI) error."""
    kind = _TYPE_KINDS.get(error_type) if error_type else None
    if kind is None and status is not None:
        kind = classify_status(status)
    if kind in (None, ErrorKind.INVALID_REQUEST, ErrorKind.UNKNOWN) and message:
        if _CONTEXT_LENGTH.search(message):
            return ErrorKind.CONTEXT_LENGTH_EXCEEDED
        if _OUT_OF_CREDIT.search(message):
            return ErrorKind.QUOTA_EXCEEDED
        if _CONTENT_FILTER.search(message):
            return ErrorKind.CONTENT_FILTER
    return kind if kind is not None else ErrorKind.UNKNOWN


def error_from_object(
    raw: Any,
    status: int | None,
    fallback_type: str | None = None,
    outer_extra: Mapping[str, Any] | None = None,
) -> AnnotatedLlmError:
    """Classify an error object (``{"type", "message"}``, Google's ``{"status", "message", "code"}``)."""
    message = error_type = code = None
    extra: Mapping[str, Any] = {}
    if isinstance(raw, Mapping):
        message = raw.get("message", raw.get("Message"))
        error_type = raw.get("type")
        code = _code_text(raw.get("code"))
        details = raw.get("details")
        if code is None and isinstance(details, Mapping):
            code = _code_text(details.get("error_code"))  # {"details": {"error_code": "..."}}
        if not isinstance(error_type, str) and isinstance(raw.get("status"), str):
            error_type = raw["status"]  # Google Cloud error objects
            extra = split_known(raw, _GOOGLE_ERROR_KEYS)
        else:
            extra = split_known(raw, _ERROR_KEYS)
    elif isinstance(raw, str):
        message = raw
    message = message if isinstance(message, str) else None
    error_type = error_type if isinstance(error_type, str) else fallback_type
    if outer_extra:
        extra = {**extra, **outer_extra}
    return AnnotatedLlmError(
        kind=classify(status, error_type, message),
        status=status,
        message=message,
        type=error_type,
        code=code,
        extra=extra,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def _parsed_body(body: bytes | str | Mapping[str, Any] | None) -> Any:
    if isinstance(body, Mapping):
        return body
    if not body or len(body) > _MAX_PARSED_ERROR_BODY:
        return None
    try:
        return orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        return None


def decode_error(
    status: int, headers: Mapping[str, str], body: bytes | str | Mapping[str, Any] | None
) -> AnnotatedLlmError:
    """Classify an HTTP error response; never raises."""
    try:
        return _decode_error(status, headers, body)
    except Exception:  # a last line of defence: decode_error must not raise, whatever it is given
        try:
            text = error_body_text(body)
        except Exception:
            text = None
        kind = classify_status(status) if isinstance(status, int) else ErrorKind.UNKNOWN
        return AnnotatedLlmError(kind=kind, status=status, body=text)


def _decode_error(
    status: int, headers: Mapping[str, str], body: bytes | str | Mapping[str, Any] | None
) -> AnnotatedLlmError:
    text = error_body_text(body)
    parsed = _parsed_body(body)
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], Mapping):
        parsed = parsed[0]  # Vertex AI sometimes wraps the error object in an array
    amazon_type = _header(headers, "x-amzn-errortype") if isinstance(headers, Mapping) else None
    fallback_type = amazon_type.split(":", 1)[0] or None if amazon_type else None
    source: Any = None
    outer: Mapping[str, Any] = {}
    if isinstance(parsed, Mapping):
        inner = parsed.get("error")
        if isinstance(inner, Mapping | str):
            source = inner
            outer = split_known(parsed, frozenset({"type", "error"}))  # request_id
        elif "message" in parsed or "Message" in parsed:
            source = parsed  # Bedrock: {"message": "..."} with the type in a header
    if source is None:
        plain = text.strip() if text else ""
        message = plain if plain and not plain.startswith(("<", "{", "[")) and len(plain) <= 500 else None
        error = AnnotatedLlmError(
            kind=classify(status, fallback_type, message), status=status, message=message, type=fallback_type
        )
    else:
        error = error_from_object(source, status, fallback_type, outer)
    return AnnotatedLlmError(
        kind=error.kind,
        status=status,
        message=error.message,
        type=error.type,
        code=error.code,
        retry_after=retry_after_seconds(headers) if isinstance(headers, Mapping) else None,
        body=text,
        extra=error.extra,
    )
