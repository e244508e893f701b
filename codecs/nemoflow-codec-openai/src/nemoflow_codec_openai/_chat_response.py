"""Chat Completions responses, streamed chunks and error bodies → annotated objects.

Wire references: OpenAI API reference "The chat completion object", "The chat completion chunk object"
and "Error codes"; the reasoning fields of OpenAI-compatible servers (``reasoning_content`` from vLLM,
DeepSeek and llama.cpp; ``reasoning`` from OpenRouter, Groq and Ollama) and their ``<think>`` markup.
"""

from __future__ import annotations

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
    dump_json,
    error_body_text,
    optional_int,
    optional_number,
    optional_str,
    retry_after_seconds,
    split_known,
)

from ._chat_request import parse_arguments

CODEC = "openai-chat"

_FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "eos": FinishReason.STOP,
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "max_tokens": FinishReason.LENGTH,
    "model_length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "tool_use": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
    "error": FinishReason.ERROR,
}
_RESPONSE_KEYS = frozenset(
    {"id", "model", "choices", "usage", "created", "system_fingerprint", "service_tier"}
)
_CHOICE_KEYS = frozenset({"index", "message", "delta", "finish_reason"})
_MESSAGE_KEYS = frozenset(
    {"role", "content", "tool_calls", "function_call", "refusal", "reasoning_content", "reasoning"}
)
_USAGE_COUNT_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})
# Keys of a stream chunk that are not kept in the reply's ``extra``.
_CHUNK_KEYS = _RESPONSE_KEYS | {"object", "error"}


def finish_reason(raw: str | None, has_tool_calls: bool) -> FinishReason:
    """Normalize a finish value; a reply that asks for tool calls is ``tool_calls`` even if it says stop."""
    if raw is None or raw == "":
        return FinishReason.TOOL_CALLS if has_tool_calls else FinishReason.UNKNOWN
    reason = _FINISH_REASONS.get(raw, FinishReason.UNKNOWN)
    if has_tool_calls and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason


_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def split_think(text: str | None) -> tuple[str | None, str | None]:
    """Split ``<think>…</think>`` reasoning out of reply text, as ``(text, reasoning)``.

    Handles a leading think block, an unterminated one (the model was cut off while thinking), and a
    reply that starts inside the block because the chat template already opened it (only ``</think>``).
    """
    if not text or "think>" not in text:
        return text, None
    stripped = text.lstrip()
    if stripped.startswith(_THINK_OPEN):
        body = stripped[len(_THINK_OPEN) :]
        close = body.find(_THINK_CLOSE)
        if close == -1:
            return None, body.strip() or None
        reasoning, rest = body[:close], body[close + len(_THINK_CLOSE) :]
        return rest.lstrip() or None, reasoning.strip() or None
    close = text.find(_THINK_CLOSE)
    if close != -1 and _THINK_OPEN not in text[:close]:
        reasoning, rest = text[:close], text[close + len(_THINK_CLOSE) :]
        return rest.lstrip() or None, reasoning.strip() or None
    return text, None


def decode_usage(raw: Any, path: str) -> tuple[Usage, float | None]:
    """``usage`` → :class:`Usage` and the provider-reported cost (OpenRouter), if any."""
    if not isinstance(raw, Mapping):
        raise DecodeError("usage must be a JSON object", path=path, codec=CODEC)
    prompt = optional_int(raw.get("prompt_tokens"), f"{path}.prompt_tokens", CODEC)
    completion = optional_int(raw.get("completion_tokens"), f"{path}.completion_tokens", CODEC)
    total = optional_int(raw.get("total_tokens"), f"{path}.total_tokens", CODEC)
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    cache_read: int | None = None
    cache_write: int | None = None
    prompt_details = raw.get("prompt_tokens_details")
    if isinstance(prompt_details, Mapping):
        details_path = f"{path}.prompt_tokens_details"
        cache_read = optional_int(prompt_details.get("cached_tokens"), f"{details_path}.cached_tokens", CODEC)
        cache_write = optional_int(
            prompt_details.get("cache_write_tokens"), f"{details_path}.cache_write_tokens", CODEC
        )
    if cache_read is None and "prompt_cache_hit_tokens" in raw:  # DeepSeek
        cache_read = optional_int(
            raw.get("prompt_cache_hit_tokens"), f"{path}.prompt_cache_hit_tokens", CODEC
        )
    reasoning: int | None = None
    completion_details = raw.get("completion_tokens_details")
    if isinstance(completion_details, Mapping):
        reasoning = optional_int(
            completion_details.get("reasoning_tokens"),
            f"{path}.completion_tokens_details.reasoning_tokens",
            CODEC,
        )
    cost_raw = raw.get("cost")
    cost = optional_number(cost_raw, f"{path}.cost", CODEC) if not isinstance(cost_raw, str) else None
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        extra=split_known(raw, _USAGE_COUNT_KEYS),
    )
    return usage, float(cost) if cost is not None else None


def _decode_legacy_function_call(raw: Any, path: str) -> tuple[ToolCall, ...]:
    """The deprecated ``function_call`` reply field: one call, without an id."""
    if not isinstance(raw, Mapping):
        raise DecodeError("function_call must be a JSON object", path=path, codec=CODEC)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return ()
    arguments, arguments_raw = parse_arguments(raw.get("arguments"), f"{path}.arguments")
    return (ToolCall(id=None, name=name, arguments=arguments, arguments_raw=arguments_raw),)


def _decode_tool_calls(raw: Any, path: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DecodeError("tool_calls must be a JSON array", path=path, codec=CODEC)
    calls: list[ToolCall] = []
    for i, item in enumerate(raw):
        item_path = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            raise DecodeError("a tool call must be a JSON object", path=item_path, codec=CODEC)
        declared = item.get("type")
        call_type = declared if isinstance(declared, str) and declared else "function"
        body = item.get(call_type)
        if not isinstance(body, Mapping):
            continue
        name = body.get("name")
        if not isinstance(name, str) or not name:
            continue  # partial entries without a name cannot be acted on
        if call_type == "function":
            arguments, arguments_raw = parse_arguments(
                body.get("arguments"), f"{item_path}.function.arguments"
            )
        else:
            arguments, arguments_raw = None, optional_str(body.get("input"), f"{item_path}.{call_type}.input")
        calls.append(
            ToolCall(
                id=optional_str(item.get("id"), f"{item_path}.id", CODEC),
                name=name,
                arguments=arguments,
                arguments_raw=arguments_raw,
                type=call_type,
                extra=split_known(item, frozenset({"id", "type", call_type})),
            )
        )
    return tuple(calls)


def _part_texts(parts: Any) -> list[str]:
    if isinstance(parts, str):
        return [parts]
    if not isinstance(parts, list):
        return []
    return [
        part["text"]
        for part in parts
        if isinstance(part, Mapping)
        and part.get("type") in ("text", "output_text")
        and isinstance(part.get("text"), str)
    ]


def _content_text(raw: Any, path: str) -> tuple[str | None, str | None]:
    """Reply text and reasoning from string or array content (Mistral sends ``thinking`` parts)."""
    if raw is None or isinstance(raw, str):
        return raw or None, None
    if isinstance(raw, list):
        texts = _part_texts(raw)
        thinking = [
            text
            for part in raw
            if isinstance(part, Mapping) and part.get("type") == "thinking"
            for text in _part_texts(part.get("thinking"))
        ]
        return "".join(texts) or None, "".join(thinking) or None
    raise DecodeError("content must be a string, an array or null", path=path, codec=CODEC)


def _reasoning_field(message: Mapping[str, Any], path: str) -> str | None:
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
        if value is not None and not isinstance(value, str | Mapping | list):
            raise DecodeError(f"{key} must be a string", path=f"{path}.{key}", codec=CODEC)
    return None


def _decode_choice(raw: Any, position: int, path: str) -> Choice:
    if not isinstance(raw, Mapping):
        raise DecodeError("a choice must be a JSON object", path=path, codec=CODEC)
    index = optional_int(raw.get("index"), f"{path}.index", CODEC)
    message = raw.get("message")
    if message is None:
        message = {}
    if not isinstance(message, Mapping):
        raise DecodeError("message must be a JSON object", path=f"{path}.message", codec=CODEC)
    message_path = f"{path}.message"
    content, thinking_parts = _content_text(message.get("content"), f"{message_path}.content")
    text, think = split_think(content)
    reasoning = _reasoning_field(message, message_path) or thinking_parts or think
    tool_calls = _decode_tool_calls(message.get("tool_calls"), f"{message_path}.tool_calls")
    legacy_call = message.get("function_call")
    if not tool_calls and legacy_call is not None:
        tool_calls = _decode_legacy_function_call(legacy_call, f"{message_path}.function_call")
    raw_reason = optional_str(raw.get("finish_reason"), f"{path}.finish_reason", CODEC)
    extra = split_known(raw, _CHOICE_KEYS)
    message_extra = split_known(message, _MESSAGE_KEYS)
    if message_extra:
        extra = {**extra, "message": message_extra}
    return Choice(
        index=index if index is not None else position,
        text=text,
        tool_calls=tool_calls,
        finish_reason=finish_reason(raw_reason, bool(tool_calls)),
        finish_reason_raw=raw_reason,
        reasoning_text=reasoning,
        refusal=optional_str(message.get("refusal"), f"{message_path}.refusal", CODEC),
        role=optional_str(message.get("role"), f"{message_path}.role", CODEC),
        extra=extra,
    )


def _response_from_choices(
    choices: tuple[Choice, ...], common: dict[str, Any], error: AnnotatedLlmError | None
) -> AnnotatedLlmResponse:
    first = choices[0] if choices else None
    reason = first.finish_reason if first else FinishReason.UNKNOWN
    if error is not None:
        reason = FinishReason.ERROR
    return AnnotatedLlmResponse(
        text=first.text if first else None,
        tool_calls=first.tool_calls if first else (),
        finish_reason=reason,
        finish_reason_raw=first.finish_reason_raw if first else None,
        reasoning_text=first.reasoning_text if first else None,
        refusal=first.refusal if first else None,
        choices=choices,
        error=error,
        operation="chat",
        **common,
    )


def decode_response(response: Any) -> AnnotatedLlmResponse:
    """A complete (non-streamed) Chat Completions response body."""
    if not isinstance(response, Mapping):
        raise DecodeError("the response body must be a JSON object", path="$", codec=CODEC)
    choices_raw = response.get("choices")
    if choices_raw is None:
        choices_raw = []
    if not isinstance(choices_raw, list):
        raise DecodeError("choices must be a JSON array", path="$.choices", codec=CODEC)
    choices = tuple(
        sorted(
            (_decode_choice(choice, i, f"$.choices[{i}]") for i, choice in enumerate(choices_raw)),
            key=lambda choice: choice.index,
        )
    )
    usage = Usage()
    cost = None
    if response.get("usage") is not None:
        usage, cost = decode_usage(response["usage"], "$.usage")
    error = None
    if response.get("error") is not None:  # some servers answer 200 with an error object
        error = error_from_object(response["error"], status=None)
    common = {
        "id": optional_str(response.get("id"), "$.id", CODEC),
        "model": optional_str(response.get("model"), "$.model", CODEC),
        "created": optional_int(response.get("created"), "$.created", CODEC),
        "system_fingerprint": optional_str(response.get("system_fingerprint"), "$.system_fingerprint", CODEC),
        "service_tier": optional_str(response.get("service_tier"), "$.service_tier", CODEC),
        "usage": usage,
        "cost": cost,
        "extra": split_known(response, _RESPONSE_KEYS),
    }
    return _response_from_choices(choices, common, error)


# ----------------------------------------------------------------------------------------- streaming


@dataclass(slots=True)
class _ToolCallBuilder:
    id: str | None = None
    name: str = ""
    type: str = "function"
    fragments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ChoiceBuilder:
    index: int
    role: str | None = None
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tools: dict[int, _ToolCallBuilder] = field(default_factory=dict)
    finish_raw: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False

    def build(self) -> Choice:
        text, think = split_think("".join(self.text) or None)
        reasoning = "".join(self.reasoning) or think
        calls: list[ToolCall] = []
        for position in sorted(self.tools):
            builder = self.tools[position]
            if not builder.name:
                continue
            joined = "".join(builder.fragments)
            if builder.type == "function":
                arguments, arguments_raw = parse_arguments(joined, "$")
            else:
                arguments, arguments_raw = None, joined
            calls.append(
                ToolCall(
                    id=builder.id,
                    name=builder.name,
                    arguments=arguments,
                    arguments_raw=arguments_raw,
                    type=builder.type,
                )
            )
        return Choice(
            index=self.index,
            text=text,
            tool_calls=tuple(calls),
            finish_reason=finish_reason(self.finish_raw, bool(calls)),
            finish_reason_raw=self.finish_raw,
            reasoning_text=reasoning,
            refusal="".join(self.refusal) if self.refusal else None,
            role=self.role,
            extra=self.extra,
        )


class ChatStreamDecoder:
    """Assembles ``chat.completion.chunk`` events into one :class:`AnnotatedLlmResponse`.

    ``feed`` runs once per streamed event, so it is written for the common chunk (one choice whose delta
    holds only ``content``): plain ``dict`` checks, no per-key loops unless the chunk has keys we do not
    name. Text pieces are joined every :data:`COMPACT_EVERY` events and cut at :attr:`text_limit`
    characters, so a very long stream costs memory in proportion to its text, never per event.
    """

    __slots__ = (
        "_choices",
        "_common",
        "_cost",
        "_done",
        "_error",
        "_events",
        "_extra",
        "_usage",
        "text_limit",
    )

    def __init__(self) -> None:
        """Start an empty stream."""
        self._choices: dict[int, _ChoiceBuilder] = {}
        self._common: dict[str, Any] = {}
        self._usage: Usage | None = None
        self._cost: float | None = None
        self._error: AnnotatedLlmError | None = None
        self._extra: dict[str, Any] = {}
        self._done = False
        self._events = 0
        self.text_limit: int = STREAM_TEXT_LIMIT
        """Most characters kept per text (content, reasoning, refusal, tool arguments); the rest is cut."""

    @property
    def has_content(self) -> bool:
        """Whether generated output (text, reasoning, refusal, tool call) has arrived (first token)."""
        return any(
            any(builder.text)
            or any(builder.reasoning)
            or any(builder.refusal)
            or any(tool.name or any(tool.fragments) for tool in builder.tools.values())
            for builder in self._choices.values()
        )

    @property
    def truncated(self) -> bool:
        """Whether some text passed :attr:`text_limit` and was cut."""
        return any(builder.truncated for builder in self._choices.values())

    def feed(self, data: str | bytes, event: str | None = None) -> None:
        """Take one SSE event's data (a chunk object, or ``[DONE]``)."""
        if data == "[DONE]" or data == b"[DONE]":
            self._done = True
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if isinstance(data, str | bytes) and data.strip() in ("[DONE]", b"[DONE]"):
                self._done = True
                return
            raise DecodeError(f"stream event is not JSON: {exc}", path="$", codec=CODEC) from exc
        if chunk is None:
            return
        if type(chunk) is not dict:
            raise DecodeError("a stream event must be a JSON object", path="$", codec=CODEC)
        get = chunk.get
        if event == "error" or get("error") is not None:
            self._error = error_from_object(get("error", chunk), status=None)
        common = self._common
        value = get("id")
        if type(value) is str and value:
            common["id"] = value
        value = get("model")
        if type(value) is str and value:
            common["model"] = value
        value = get("system_fingerprint")
        if type(value) is str and value:
            common["system_fingerprint"] = value
        value = get("service_tier")
        if type(value) is str and value:
            common["service_tier"] = value
        value = get("created")
        if type(value) is int:
            common["created"] = value
        unnamed = chunk.keys() - _CHUNK_KEYS
        if unnamed:  # keys we do not name (OpenAI's "obfuscation" on every chunk): kept, in chunk order
            extra = self._extra
            if len(unnamed) == 1:
                key = unnamed.pop()
                extra[key] = chunk[key]
            else:
                for key, value in chunk.items():
                    if key in unnamed:
                        extra[key] = value
        usage = get("usage")
        if usage is not None:
            self._usage, cost = decode_usage(usage, "$.usage")
            if cost is not None:
                self._cost = cost
        choices = get("choices")
        if type(choices) is list:
            for position, choice in enumerate(choices):
                if type(choice) is dict:
                    self._feed_choice(choice, position)
        self._events += 1
        if self._events % COMPACT_EVERY == 0:
            self._compact()

    def _compact(self) -> None:
        limit = self.text_limit
        for builder in self._choices.values():
            for parts in (builder.text, builder.reasoning, builder.refusal):
                if parts and compact_text(parts, limit):
                    builder.truncated = True
            for tool in builder.tools.values():
                if tool.fragments and compact_text(tool.fragments, limit):
                    builder.truncated = True

    def _feed_choice(self, choice: dict[str, Any], position: int) -> None:
        index = choice.get("index")
        if type(index) is not int:
            index = position
        builder = self._choices.get(index)
        if builder is None:
            builder = self._choices[index] = _ChoiceBuilder(index=index)
        delta = choice.get("delta")
        if type(delta) is not dict:
            delta = choice.get("message")  # a few servers put a whole message in the last chunk
        if type(delta) is dict:
            content = delta.get("content")
            if type(content) is str:
                builder.text.append(content)
                if len(delta) == 1:
                    delta = None  # the common chunk: nothing else to look at
            if delta is not None:
                self._feed_delta(builder, delta)
        reason = choice.get("finish_reason")
        if type(reason) is str and reason:
            builder.finish_raw = reason
        logprobs = choice.get("logprobs")
        if logprobs is not None:
            builder.extra["logprobs"] = logprobs

    def _feed_delta(self, builder: _ChoiceBuilder, delta: dict[str, Any]) -> None:
        role = delta.get("role")
        if isinstance(role, str):
            builder.role = role
        for key in ("reasoning_content", "reasoning"):
            reasoning = delta.get(key)
            if isinstance(reasoning, str):
                builder.reasoning.append(reasoning)
                break
        refusal = delta.get("refusal")
        if isinstance(refusal, str):
            builder.refusal.append(refusal)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for fallback, call in enumerate(calls):
                if isinstance(call, Mapping):
                    self._feed_tool_call(builder, call, fallback)
        legacy = delta.get("function_call")
        if isinstance(legacy, Mapping):  # deprecated functions API: one call, no id, no index
            self._feed_tool_call(builder, {"index": 0, "function": legacy}, 0)

    @staticmethod
    def _feed_tool_call(builder: _ChoiceBuilder, call: Mapping[str, Any], fallback: int) -> None:
        index = call.get("index")
        call_id = call.get("id")
        if not isinstance(index, int) or isinstance(index, bool):
            # No index: a new id starts a new call, otherwise the fragment continues the last one.
            if isinstance(call_id, str) and call_id and all(t.id != call_id for t in builder.tools.values()):
                index = max(builder.tools, default=-1) + 1
            else:
                index = max(builder.tools, default=fallback)
        tool = builder.tools.get(index)
        if tool is None:
            tool = builder.tools[index] = _ToolCallBuilder()
        if isinstance(call_id, str) and call_id:
            tool.id = call_id
        call_type = call.get("type")
        if isinstance(call_type, str) and call_type:
            tool.type = call_type
        body = call.get(tool.type) if tool.type != "function" else call.get("function")
        if isinstance(body, Mapping):
            name = body.get("name")
            if isinstance(name, str) and name:
                tool.name = name
            fragment = body.get("arguments") if tool.type == "function" else body.get("input")
            if isinstance(fragment, str):
                tool.fragments.append(fragment)
            elif isinstance(fragment, Mapping):
                tool.fragments.append(dump_json(fragment, "$", CODEC))

    def finish(self) -> AnnotatedLlmResponse:
        """The reply assembled from every event fed so far."""
        self._compact()  # applies text_limit to what arrived since the last compaction
        choices = tuple(self._choices[index].build() for index in sorted(self._choices))
        common: dict[str, Any] = dict(self._common)
        common["usage"] = self._usage or Usage()
        common["cost"] = self._cost
        common["extra"] = dict(self._extra)
        return _response_from_choices(choices, common, self._error)


# ----------------------------------------------------------------------------------------- errors

_CONTEXT_LENGTH = re.compile(
    r"context[ _]length|maximum context|context window|too many tokens|prompt is too long|"
    r"reduce the length|exceed_context_size|input is too long",
    re.IGNORECASE,
)
_CONTENT_FILTER = re.compile(r"content[ _](filter|management|policy)|safety system|flagged", re.IGNORECASE)


def error_from_object(
    raw: Any, status: int | None, headers: Mapping[str, str] | None = None
) -> AnnotatedLlmError:
    """Classify an OpenAI-style error object (``{"message", "type", "code", "param"}``) or a bare message."""
    if isinstance(raw, Mapping):
        message = raw.get("message")
        error_type = raw.get("type")
        code = raw.get("code")
        param = raw.get("param")
        extra = split_known(raw, frozenset({"message", "type", "code", "param"}))
    else:
        message, error_type, code, param, extra = raw, None, None, None, {}
    message_text = message if isinstance(message, str) else (None if message is None else str(message))
    type_text = error_type if isinstance(error_type, str) else None
    code_text = None if code is None or isinstance(code, bool) else str(code)
    if status is None and isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        status = code  # vLLM and llama.cpp put the HTTP status in "code"
    hints = " ".join(text for text in (code_text, type_text, message_text) if text)
    kind = _classify(status, code_text, type_text, hints)
    return AnnotatedLlmError(
        kind=kind,
        status=status,
        message=message_text,
        type=type_text,
        code=code_text,
        param=param if isinstance(param, str) else None,
        retry_after=retry_after_seconds(headers) if headers else None,
        extra=extra,
    )


def _classify(status: int | None, code: str | None, error_type: str | None, hints: str) -> ErrorKind:
    if code == "insufficient_quota" or error_type == "insufficient_quota":
        return ErrorKind.QUOTA_EXCEEDED
    if code in ("context_length_exceeded", "string_above_max_length") or _CONTEXT_LENGTH.search(hints):
        return ErrorKind.CONTEXT_LENGTH_EXCEEDED
    if code in ("content_filter", "content_policy_violation") or _CONTENT_FILTER.search(hints):
        return ErrorKind.CONTENT_FILTER
    if code == "rate_limit_exceeded" or error_type in ("rate_limit_error", "tokens", "requests"):
        return ErrorKind.RATE_LIMIT
    if status is not None:
        # OpenAI types its 503 "overloaded" replies as server_error: the status says more.
        return classify_status(status)
    if error_type == "overloaded_error" or code == "overloaded":
        return ErrorKind.OVERLOADED
    if error_type in ("server_error", "internal_error", "api_error"):
        return ErrorKind.SERVER
    if code in ("invalid_api_key", "invalid_authentication") or error_type == "authentication_error":
        return ErrorKind.AUTHENTICATION
    if error_type in ("invalid_request_error", "BadRequestError"):
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.UNKNOWN


_MAX_PARSED_ERROR_BODY = 1024 * 1024


def decode_error(
    status: int, headers: Mapping[str, str], body: bytes | str | Mapping[str, Any] | None
) -> AnnotatedLlmError:
    """Classify an HTTP error response of an OpenAI-style API; never raises."""
    text = error_body_text(body)
    parsed: Any = body if isinstance(body, Mapping) else None
    if parsed is None and body and len(body) <= _MAX_PARSED_ERROR_BODY:
        try:
            parsed = orjson.loads(body)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            parsed = None
    if isinstance(parsed, Mapping):
        inner = parsed.get("error")
        if isinstance(inner, Mapping | str):
            source: Any = inner
        elif "message" in parsed or "detail" in parsed:
            source = dict(parsed)  # vLLM: {"object": "error", "message": ..., "type": ..., "code": ...}
            if "message" not in source:
                source["message"] = source.pop("detail")
        else:
            source = None
    else:
        source = None
    if source is None:
        # A plain-text body is the message; an HTML error page is not (it stays in ``body``).
        plain = text.strip() if text else ""
        message = plain if plain and not plain.startswith("<") and len(plain) <= 500 else None
        error = AnnotatedLlmError(kind=classify_status(status), status=status, message=message)
    else:
        error = error_from_object(source, status=status)
    retry_after = retry_after_seconds(headers)
    return AnnotatedLlmError(
        kind=error.kind,
        status=status,
        message=error.message,
        type=error.type,
        code=error.code,
        param=error.param,
        retry_after=retry_after,
        body=text,
        extra=error.extra,
    )
