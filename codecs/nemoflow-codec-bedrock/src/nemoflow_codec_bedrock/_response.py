"""Converse responses and ConverseStream events → :class:`~nemoflow.AnnotatedLlmResponse`.

Wire references: Bedrock Runtime API reference "Converse" (response: ``output.message``, ``stopReason``,
``usage``, ``metrics``, ``trace``, ``additionalModelResponseFields``, ``performanceConfig``,
``serviceTier``), "ConverseStream" and "ConverseStreamOutput" (the events ``messageStart``,
``contentBlockStart``, ``contentBlockDelta``, ``contentBlockStop``, ``messageStop``, ``metadata`` and
the exceptions), "TokenUsage" and "StopReason"; the service model shipped with botocore
(``bedrock-runtime/2023-09-30``) for the exact member names.

Usage: with prompt caching, Bedrock's ``inputTokens`` counts only the input tokens that were neither read
from nor written to the cache; ``cacheReadInputTokens`` and ``cacheWriteInputTokens`` come on top
(Bedrock user guide, "Prompt caching for faster model inference": total input tokens = inputTokens +
cacheReadInputTokens + cacheWriteInputTokens), and ``totalTokens`` includes all of them. So
``prompt_tokens`` here is the sum of the three.
"""

from __future__ import annotations

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
    FramedStreamDecoder,
    compact_text,
    optional_int,
    optional_str,
    split_known,
)

from ._common import CODEC, expect_list, expect_mapping
from ._errors import classify, stream_exception
from ._eventstream import DEFAULT_MAX_FRAME_BYTES, EventStreamMessage

_FINISH_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "guardrail_intervened": FinishReason.CONTENT_FILTER,
    "content_filtered": FinishReason.CONTENT_FILTER,
    # The model's output (or its tool use) could not be parsed: the reply did not end normally.
    "malformed_model_output": FinishReason.ERROR,
    "malformed_tool_use": FinishReason.ERROR,
}
_RESPONSE_KEYS = frozenset({"output", "stopReason", "usage"})
_OUTPUT_KEYS = frozenset({"message"})
_MESSAGE_KEYS = frozenset({"role", "content"})
_USAGE_KEYS = frozenset(
    {"inputTokens", "outputTokens", "totalTokens", "cacheReadInputTokens", "cacheWriteInputTokens"}
)
SERVER_TOOL_USE = "server_tool_use"
"""``toolUse.type`` of tools Bedrock runs itself: not client tool calls."""
_PADDING = "p"
"""Bedrock pads every stream event with a ``p`` key of random length (it hides token sizes)."""

EVENT_NAMES = frozenset(
    {"messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"}
)
EXCEPTION_NAMES = frozenset(
    {
        "internalServerException",
        "modelStreamErrorException",
        "validationException",
        "throttlingException",
        "serviceUnavailableException",
    }
)


def finish_reason(raw: str | None, has_tool_calls: bool) -> FinishReason:
    """Normalize a ``stopReason`` (a reply asking for client tool calls is ``tool_calls`` even on stop)."""
    if not raw:
        return FinishReason.TOOL_CALLS if has_tool_calls else FinishReason.UNKNOWN
    reason = _FINISH_REASONS.get(raw, FinishReason.UNKNOWN)
    if has_tool_calls and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason


def decode_usage(raw: Any, path: str) -> Usage:
    """``TokenUsage`` → :class:`Usage` (``prompt_tokens`` includes the cached input tokens)."""
    usage = expect_mapping(raw, path, "usage")
    get = usage.get
    uncached = optional_int(get("inputTokens"), f"{path}.inputTokens", CODEC)
    completion = optional_int(get("outputTokens"), f"{path}.outputTokens", CODEC)
    total = optional_int(get("totalTokens"), f"{path}.totalTokens", CODEC)
    cache_read = optional_int(get("cacheReadInputTokens"), f"{path}.cacheReadInputTokens", CODEC)
    cache_write = optional_int(get("cacheWriteInputTokens"), f"{path}.cacheWriteInputTokens", CODEC)
    prompt = None if uncached is None else uncached + (cache_read or 0) + (cache_write or 0)
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        extra=split_known(usage, _USAGE_KEYS),
    )


def _block_member(block: Mapping[str, Any]) -> tuple[str, Any] | None:
    for key in ("text", "toolUse", "reasoningContent", "citationsContent"):
        if key in block:
            return key, block[key]
    return None


def _citation_texts(value: Any, path: str) -> list[str]:
    citations = expect_mapping(value, path, "citationsContent")
    content = citations.get("content")
    if content is None:
        return []
    texts: list[str] = []
    for i, item in enumerate(expect_list(content, f"{path}.content", "citationsContent.content")):
        generated = expect_mapping(item, f"{path}.content[{i}]", "generated content")
        text = optional_str(generated.get("text"), f"{path}.content[{i}].text", CODEC)
        if text:
            texts.append(text)
    return texts


def _tool_call(value: Any, block: Mapping[str, Any], path: str) -> ToolCall | None:
    tool_use = expect_mapping(value, path, "toolUse")
    call_type = optional_str(tool_use.get("type"), f"{path}.type", CODEC) or "function"
    name = optional_str(tool_use.get("name"), f"{path}.name", CODEC)
    call_id = optional_str(tool_use.get("toolUseId"), f"{path}.toolUseId", CODEC)
    if call_type == SERVER_TOOL_USE or not name:
        return None  # run by Bedrock itself, or nothing a client could act on
    return ToolCall(
        id=call_id,
        name=name,
        arguments=tool_use.get("input"),
        type=call_type,
        extra=split_known(block, frozenset({"toolUse"})),
    )


def _reasoning_text(value: Any, path: str) -> str | None:
    reasoning = expect_mapping(value, path, "reasoningContent")
    text_block = reasoning.get("reasoningText")
    if text_block is None:
        return None  # redacted reasoning carries no readable text
    text_block = expect_mapping(text_block, f"{path}.reasoningText", "reasoningText")
    return optional_str(text_block.get("text"), f"{path}.reasoningText.text", CODEC)


def decode_response(response: Any, model: str | None) -> AnnotatedLlmResponse:
    """A complete Converse response body (``model`` comes from the request URL: the body names none)."""
    body = expect_mapping(response, "$", "the response body")
    output_raw = body.get("output")
    stop_raw = optional_str(body.get("stopReason"), "$.stopReason", CODEC)
    choices: tuple[Choice, ...] = ()
    if output_raw is not None or stop_raw is not None:
        output = expect_mapping(output_raw if output_raw is not None else {}, "$.output", "output")
        message_raw = output.get("message")
        message = expect_mapping(
            message_raw if message_raw is not None else {}, "$.output.message", "message"
        )
        texts: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        content = message.get("content")
        if content is not None:
            blocks = expect_list(content, "$.output.message.content", "content")
            for i, item in enumerate(blocks):
                path = f"$.output.message.content[{i}]"
                block = expect_mapping(item, path, "a content block")
                member = _block_member(block)
                if member is None:
                    continue  # images, server tool results, ...: not reply text
                key, value = member
                if key == "text":
                    texts.append(optional_str(value, f"{path}.text", CODEC) or "")
                elif key == "toolUse":
                    call = _tool_call(value, block, f"{path}.toolUse")
                    if call is not None:
                        calls.append(call)
                elif key == "reasoningContent":
                    thought = _reasoning_text(value, f"{path}.reasoningContent")
                    if thought:
                        reasoning.append(thought)
                else:
                    texts.extend(_citation_texts(value, f"{path}.citationsContent"))
        extra: dict[str, Any] = dict(split_known(output, _OUTPUT_KEYS))
        message_extra = split_known(message, _MESSAGE_KEYS)
        if message_extra:
            extra["message"] = message_extra
        choices = (
            Choice(
                index=0,
                text="".join(texts) or None,
                tool_calls=tuple(calls),
                finish_reason=finish_reason(stop_raw, bool(calls)),
                finish_reason_raw=stop_raw,
                reasoning_text="".join(reasoning) or None,
                role=optional_str(message.get("role"), "$.output.message.role", CODEC),
                extra=extra,
            ),
        )
    usage = decode_usage(body["usage"], "$.usage") if body.get("usage") is not None else Usage()
    return _response(choices, usage, model, split_known(body, _RESPONSE_KEYS), None)


def _response(
    choices: tuple[Choice, ...],
    usage: Usage,
    model: str | None,
    extra: Mapping[str, Any],
    error: AnnotatedLlmError | None,
) -> AnnotatedLlmResponse:
    first = choices[0] if choices else None
    reason = first.finish_reason if first else FinishReason.UNKNOWN
    if error is not None:
        reason = FinishReason.ERROR
    return AnnotatedLlmResponse(
        id=None,
        model=model,
        text=first.text if first else None,
        tool_calls=first.tool_calls if first else (),
        finish_reason=reason,
        finish_reason_raw=first.finish_reason_raw if first else None,
        usage=usage,
        reasoning_text=first.reasoning_text if first else None,
        choices=choices,
        error=error,
        operation="chat",
        extra=extra,
    )


# ----------------------------------------------------------------------------------------- streaming


def _arguments(fragments: list[str]) -> tuple[Any, str | None]:
    joined = "".join(fragments)
    if not joined.strip():
        return {}, None  # a tool called without input
    try:
        return orjson.loads(joined), joined
    except orjson.JSONDecodeError:
        return None, joined


@dataclass(slots=True)
class _Block:
    """What the stream said about one content block (kept apart by ``contentBlockIndex``)."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_id: str | None = None
    tool_name: str | None = None
    tool_type: str | None = None
    fragments: list[str] = field(default_factory=list)


def _index(event: Mapping[str, Any], path: str) -> int:
    index = optional_int(event.get("contentBlockIndex"), f"{path}.contentBlockIndex", CODEC)
    if index is None:
        raise DecodeError("the event has no contentBlockIndex", path=f"{path}.contentBlockIndex", codec=CODEC)
    return index


def _infer_event(event: Mapping[str, Any]) -> str | None:
    if "contentBlockIndex" in event:
        if "delta" in event:
            return "contentBlockDelta"
        return "contentBlockStart" if "start" in event else "contentBlockStop"
    if "stopReason" in event:
        return "messageStop"
    if "usage" in event or "metrics" in event:
        return "metadata"
    if "role" in event:
        return "messageStart"
    return None


class ConverseStreamDecoder:
    """Assembles ConverseStream events into one :class:`AnnotatedLlmResponse`.

    ``feed(data, event)`` takes one event's JSON payload and its name (the ``:event-type`` header, or the
    ``:exception-type`` of an exception). Without a name, the event is recognized by its shape, and a
    payload wrapped the way the AWS SDKs hand events out (``{"contentBlockDelta": {...}}``) is unwrapped.

    ``feed_event`` runs once per streamed event, so the common event (a text delta) takes a short path
    of plain ``dict`` checks. Each block's pieces are joined every :data:`COMPACT_EVERY` events and cut
    at :attr:`text_limit` characters, so a very long stream costs memory in proportion to its text.

    Args:
        model: The model named in the request URL (Converse events carry none).
    """

    __slots__ = (
        "_blocks",
        "_error",
        "_events",
        "_extra",
        "_model",
        "_role",
        "_seen",
        "_stop",
        "_truncated",
        "_usage",
        "text_limit",
    )

    def __init__(self, model: str | None = None) -> None:
        self._model = model
        self._blocks: dict[int, _Block] = {}
        self._role: str | None = None
        self._stop: str | None = None
        self._usage: Usage | None = None
        self._extra: dict[str, Any] = {}
        self._error: AnnotatedLlmError | None = None
        self._seen = False
        self._events = 0
        self._truncated = False
        self.text_limit: int = STREAM_TEXT_LIMIT
        """Most characters kept per text (reply text, reasoning, each tool call's input); the rest is cut."""

    @property
    def has_content(self) -> bool:
        """Whether generated output (text, reasoning, a tool call) has arrived: time to first token."""
        return any(
            any(block.text) or any(block.reasoning) or bool(block.tool_name) or any(block.fragments)
            for block in self._blocks.values()
        )

    @property
    def truncated(self) -> bool:
        """Whether some text passed :attr:`text_limit` and was cut."""
        return self._truncated

    def feed(self, data: str | bytes, event: str | None = None) -> None:
        """Take one event's payload (JSON) and name."""
        try:
            payload = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise DecodeError(f"stream event is not JSON: {exc}", path="$", codec=CODEC) from exc
        if payload is None:
            return
        if type(payload) is not dict and not isinstance(payload, Mapping):
            raise DecodeError("a stream event must be a JSON object", path="$", codec=CODEC)
        path = "$"
        if event is None:
            keys = [key for key in payload if key != _PADDING]
            if len(keys) == 1 and (keys[0] in EVENT_NAMES or keys[0] in EXCEPTION_NAMES):
                event, path = keys[0], f"$.{keys[0]}"
                payload = expect_mapping(payload[event], path, event)
            else:
                event = _infer_event(payload)
        self.feed_event(event, payload, path)

    def feed_event(self, event: str | None, payload: Mapping[str, Any], path: str = "$") -> None:
        """Take one event already parsed (``path`` is where ``payload`` sits, for error paths)."""
        if event is None:
            return
        self._events += 1
        if self._events % COMPACT_EVERY == 0:
            self._compact()
        if event == "contentBlockDelta" and type(payload) is dict and self._fast_delta(payload):
            return
        if event in EXCEPTION_NAMES or event.endswith("Exception"):
            self.fail(event, payload)
        elif event == "contentBlockDelta":
            self._delta(payload, path)
        elif event == "contentBlockStart":
            self._start(payload, path)
        elif event == "contentBlockStop":
            _index(payload, path)
            self._seen = True
        elif event == "messageStart":
            role = optional_str(payload.get("role"), f"{path}.role", CODEC)
            self._seen = True
            if role:
                self._role = role
        elif event == "messageStop":
            stop = optional_str(payload.get("stopReason"), f"{path}.stopReason", CODEC)
            self._seen = True
            if stop:
                self._stop = stop
            self._keep_extra(payload, frozenset({"stopReason"}))
        elif event == "metadata":
            usage = payload.get("usage")
            if usage is not None:
                self._usage = decode_usage(usage, f"{path}.usage")
            self._keep_extra(payload, frozenset({"usage"}))
        # Other events (a future addition, ``initial-response``) carry nothing the reply needs.

    def fail(self, name: str, payload: Mapping[str, Any]) -> None:
        """Record an exception the stream delivered (``throttlingException`` and the like)."""
        self._error = stream_exception(name, payload)

    def fail_with(self, code: str | None, message: str | None) -> None:
        """Record a generic event-stream error frame (``:message-type: error``)."""
        self._error = AnnotatedLlmError(
            kind=classify(code, message, None), message=message, type=code, code=code
        )

    def _keep_extra(self, payload: Mapping[str, Any], known: frozenset[str]) -> None:
        for key, value in payload.items():
            if key not in known and key != _PADDING:
                self._extra[key] = value

    def _block(self, index: int) -> _Block:
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block()
        return block

    def _start(self, payload: Mapping[str, Any], path: str) -> None:
        index = _index(payload, path)
        start = expect_mapping(payload.get("start") or {}, f"{path}.start", "start")
        tool_use = start.get("toolUse")
        tool: tuple[str | None, str | None, str | None] | None = None
        if tool_use is not None:
            tool_path = f"{path}.start.toolUse"
            tool_use = expect_mapping(tool_use, tool_path, "toolUse")
            tool = (
                optional_str(tool_use.get("toolUseId"), f"{tool_path}.toolUseId", CODEC),
                optional_str(tool_use.get("name"), f"{tool_path}.name", CODEC),
                optional_str(tool_use.get("type"), f"{tool_path}.type", CODEC),
            )
        self._seen = True
        block = self._block(index)
        if tool is not None:
            block.tool_id, block.tool_name, block.tool_type = tool

    def _fast_delta(self, payload: dict[str, Any]) -> bool:
        """A text delta (``{"contentBlockIndex": n, "delta": {"text": ...}}``); ``False`` for the rest."""
        index = payload.get("contentBlockIndex")
        delta = payload.get("delta")
        if type(index) is not int or type(delta) is not dict or len(delta) != 1:
            return False
        text = delta.get("text")
        if type(text) is not str:
            return False
        self._seen = True
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block()
        if text:
            block.text.append(text)
        return True

    def _compact(self) -> None:
        limit = self.text_limit
        for block in self._blocks.values():
            for pieces in (block.text, block.reasoning, block.fragments):
                if len(pieces) > 1 or (pieces and len(pieces[0]) > limit):
                    if compact_text(pieces, limit):
                        self._truncated = True

    def _delta(self, payload: Mapping[str, Any], path: str) -> None:
        index = _index(payload, path)
        delta = expect_mapping(payload.get("delta") or {}, f"{path}.delta", "delta")
        text = optional_str(delta.get("text"), f"{path}.delta.text", CODEC)
        fragment: str | None = None
        tool_use = delta.get("toolUse")
        if tool_use is not None:
            tool_use = expect_mapping(tool_use, f"{path}.delta.toolUse", "toolUse")
            fragment = optional_str(tool_use.get("input"), f"{path}.delta.toolUse.input", CODEC)
        thought: str | None = None
        reasoning = delta.get("reasoningContent")
        if reasoning is not None:
            reasoning = expect_mapping(reasoning, f"{path}.delta.reasoningContent", "reasoningContent")
            thought = optional_str(reasoning.get("text"), f"{path}.delta.reasoningContent.text", CODEC)
        self._seen = True
        block = self._block(index)
        if text:
            block.text.append(text)
        if fragment:
            block.fragments.append(fragment)
        if thought:
            block.reasoning.append(thought)

    def finish(self) -> AnnotatedLlmResponse:
        """The reply assembled from every event fed so far (each text cut at :attr:`text_limit`)."""
        self._compact()  # applies text_limit to what arrived since the last compaction
        texts: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        for index in sorted(self._blocks):
            block = self._blocks[index]
            texts.extend(block.text)
            reasoning.extend(block.reasoning)
            if block.tool_name and block.tool_type != SERVER_TOOL_USE:
                arguments, arguments_raw = _arguments(block.fragments)
                calls.append(
                    ToolCall(
                        id=block.tool_id,
                        name=block.tool_name,
                        arguments=arguments,
                        arguments_raw=arguments_raw,
                        type=block.tool_type or "function",
                    )
                )
        for pieces in (texts, reasoning):
            if len(pieces) > 1 and compact_text(pieces, self.text_limit):
                self._truncated = True  # within the limit block by block, not joined over the blocks
        choices: tuple[Choice, ...] = ()
        if self._seen:
            choices = (
                Choice(
                    index=0,
                    text="".join(texts) or None,
                    tool_calls=tuple(calls),
                    finish_reason=finish_reason(self._stop, bool(calls)),
                    finish_reason_raw=self._stop,
                    reasoning_text="".join(reasoning) or None,
                    role=self._role,
                ),
            )
        return _response(choices, self._usage or Usage(), self._model, dict(self._extra), self._error)


class ConverseByteStreamDecoder(FramedStreamDecoder):
    """Decodes a raw ``converse-stream`` body (AWS event-stream frames) into one reply, in any chunking.

    ``feed(chunk)`` takes the next bytes as they pass to the application; ``finish()`` returns what was
    assembled (also after an early close). A corrupt frame or a malformed event raises
    :class:`~nemoflow.DecodeError` from the ``feed`` that completes it; every other frame is still used.
    When the frame boundaries are lost (a bad prelude), the rest of the body is ignored and the reply
    finishes with ``finish_reason = error``.

    Args:
        model: The model named in the request URL.
        max_frame_bytes: Largest event-stream frame accepted.
    """

    __slots__ = ()

    def __init__(self, model: str | None = None, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        super().__init__(max_frame_bytes=max_frame_bytes, codec=CODEC)
        self._events: ConverseStreamDecoder = ConverseStreamDecoder(model)

    def _dispatch(self, message: EventStreamMessage) -> None:
        headers = message.headers
        message_type = headers.get(":message-type")
        event = headers.get(":event-type")
        if message_type == "event" and type(event) is str and event in EVENT_NAMES:
            self._events.feed_event(event, self._payload(message))  # the common frame
            return
        message_type = message.header_str(":message-type") or "event"
        if message_type == "error":
            self._events.fail_with(message.header_str(":error-code"), message.header_str(":error-message"))
            return
        if message_type == "exception":
            exception = message.header_str(":exception-type") or "exception"
            self._events.fail(exception, self._payload(message))
            return
        if message_type == "event":
            event = message.header_str(":event-type")
            if event is not None and event in EVENT_NAMES:
                self._events.feed_event(event, self._payload(message))
            elif event is not None and event.endswith("Exception"):
                self._events.fail(event, self._payload(message))

    @staticmethod
    def _payload(message: EventStreamMessage) -> Mapping[str, Any]:
        try:
            payload = orjson.loads(message.payload)
        except orjson.JSONDecodeError as exc:
            if not message.payload.strip():
                return {}
            raise DecodeError(f"stream event is not JSON: {exc}", path="$", codec=CODEC) from exc
        if type(payload) is dict:
            return payload
        return expect_mapping(payload, "$", "a stream event")

    def finish(self) -> AnnotatedLlmResponse:
        """The reply assembled so far."""
        result = self._events.finish()
        framing_error = self._frames.error
        if framing_error is None or result.error is not None:
            return result
        error = AnnotatedLlmError(kind=ErrorKind.UNKNOWN, message=framing_error, type="EventStreamError")
        return _response(result.choices, result.usage, result.model, result.extra, error)
