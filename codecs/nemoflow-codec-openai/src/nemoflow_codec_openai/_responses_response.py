"""Responses API replies, streamed events and errors → annotated objects.

Wire references: OpenAI API reference "The response object" and "Streaming events" (``response.created``
… ``response.completed``), the ``openai`` SDK's ``Response`` and ``ResponseStreamEvent`` types, and the
shapes llama.cpp's server emits for ``/v1/responses`` (no ``sequence_number``, ``output_index`` or item id
on function calls; reasoning as ``reasoning_text`` content).

A reply is one choice: the text of every ``output_text`` part of the message items, the
``function_call`` / ``custom_tool_call`` items as client tool calls, the reasoning items' summaries (and
reasoning text) as ``reasoning_text``. Built-in tool items (web search, file search, code interpreter, MCP…)
ran on the server: they are listed in the choice's ``extra["server_tool_calls"]``, never as tool calls.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
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
    compact_text,
    optional_int,
    optional_str,
    split_known,
)

from ._chat_request import parse_arguments
from ._chat_response import decode_error as chat_decode_error
from ._chat_response import error_from_object, split_think
from ._responses_request import CALL_ITEM_TYPES

CODEC = "openai-responses"

_RESPONSE_KEYS = frozenset(
    {"id", "model", "output", "usage", "status", "incomplete_details", "error", "created_at", "service_tier"}
)
_FUNCTION_CALL_KEYS = frozenset({"type", "call_id", "name", "arguments"})
_CUSTOM_CALL_KEYS = frozenset({"type", "call_id", "name", "input"})
_SNAPSHOT_EVENTS = frozenset({"response.created", "response.in_progress", "response.queued"})
_TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})

# Codes of the Responses ``error`` object (SDK ``ResponseError.code``) that the shared OpenAI
# classification leaves unknown because they come without an HTTP status.
_ERROR_CODE_KINDS = {
    "server_error": ErrorKind.SERVER,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "vector_store_timeout": ErrorKind.TIMEOUT,
    "invalid_prompt": ErrorKind.INVALID_REQUEST,
    "data_residency_mismatch": ErrorKind.INVALID_REQUEST,
    "bio_policy": ErrorKind.CONTENT_FILTER,
    "misalignment_policy_violation": ErrorKind.CONTENT_FILTER,
    "image_content_policy_violation": ErrorKind.CONTENT_FILTER,
    "insufficient_quota": ErrorKind.QUOTA_EXCEEDED,
}
_INCOMPLETE_REASONS = {
    "max_output_tokens": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
}


def classify_error(raw: Any, status: int | None = None) -> AnnotatedLlmError:
    """An OpenAI-style error object, classified (Responses ``error`` codes included)."""
    error = error_from_object(raw, status=status)
    if error.kind is ErrorKind.UNKNOWN and error.code is not None:
        kind = _ERROR_CODE_KINDS.get(error.code)
        if kind is None and error.code.startswith(("invalid_image", "image_", "unsupported_image")):
            kind = ErrorKind.INVALID_REQUEST
        if kind is None and error.code in ("empty_image_file", "failed_to_download_image"):
            kind = ErrorKind.INVALID_REQUEST
        if kind is not None:
            error = dataclasses.replace(error, kind=kind)
    return error


def decode_error(
    status: int, headers: Mapping[str, str], body: bytes | str | Mapping[str, Any] | None
) -> AnnotatedLlmError:
    """Classify an HTTP error response (the OpenAI error format); never raises."""
    error = chat_decode_error(status, headers, body)
    if error.kind is ErrorKind.UNKNOWN and error.code in _ERROR_CODE_KINDS:
        error = dataclasses.replace(error, kind=_ERROR_CODE_KINDS[error.code])
    return error


def _int_or_none(value: Any, path: str) -> int | None:
    if value is None or (type(value) is int):
        return value
    return optional_int(value, path, CODEC)


def decode_usage(raw: Any, path: str) -> Usage:
    """``usage`` → :class:`Usage` (``input_tokens`` includes cached, ``output_tokens`` reasoning)."""
    if not isinstance(raw, Mapping):
        raise DecodeError("usage must be a JSON object", path=path, codec=CODEC)
    chat_style = "input_tokens" not in raw and "output_tokens" not in raw
    chat_style = chat_style and ("prompt_tokens" in raw or "completion_tokens" in raw)
    in_key, out_key = (
        ("prompt_tokens", "completion_tokens") if chat_style else ("input_tokens", "output_tokens")
    )
    prompt = _int_or_none(raw.get(in_key), f"{path}.{in_key}")
    completion = _int_or_none(raw.get(out_key), f"{path}.{out_key}")
    total = _int_or_none(raw.get("total_tokens"), f"{path}.total_tokens")
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    cache_read = cache_write = reasoning = None
    in_details_key = "prompt_tokens_details" if chat_style else "input_tokens_details"
    in_details = raw.get(in_details_key)
    if isinstance(in_details, Mapping):
        where = f"{path}.{in_details_key}"
        cache_read = _int_or_none(in_details.get("cached_tokens"), f"{where}.cached_tokens")
        cache_write = _int_or_none(in_details.get("cache_write_tokens"), f"{where}.cache_write_tokens")
    out_details_key = "completion_tokens_details" if chat_style else "output_tokens_details"
    out_details = raw.get(out_details_key)
    if isinstance(out_details, Mapping):
        where = f"{path}.{out_details_key}.reasoning_tokens"
        reasoning = _int_or_none(out_details.get("reasoning_tokens"), where)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        extra=split_known(raw, frozenset({in_key, out_key, "total_tokens"})),
    )


class _Output:
    """What the ``output`` items of one reply say, gathered in order."""

    __slots__ = ("calls", "reasoning", "refusals", "role", "server_calls", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.refusals: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[ToolCall] = []
        self.server_calls: list[dict[str, Any]] = []
        self.role: str | None = None


def _text_field(part: Mapping[str, Any], key: str, path: str) -> str | None:
    value = part.get(key)
    if value is None or isinstance(value, str):
        return value
    return optional_str(value, f"{path}.{key}", CODEC)  # raises with the path


def _message_item(item: Mapping[str, Any], path: str, into: _Output) -> None:
    role = item.get("role")
    if isinstance(role, str):
        into.role = role
    content = item.get("content")
    if content is None:
        return
    if isinstance(content, str):  # a few compatible servers send the text bare
        into.texts.append(content)
        return
    if not isinstance(content, list):
        raise DecodeError("message content must be an array", path=f"{path}.content", codec=CODEC)
    for j, part in enumerate(content):
        if not isinstance(part, Mapping):
            raise DecodeError(
                "a content part must be a JSON object", path=f"{path}.content[{j}]", codec=CODEC
            )
        part_type = part.get("type")
        if part_type in ("output_text", "text"):
            text = _text_field(part, "text", f"{path}.content[{j}]")
            if text is not None:
                into.texts.append(text)
        elif part_type == "refusal":
            refusal = _text_field(part, "refusal", f"{path}.content[{j}]")
            if refusal is not None:
                into.refusals.append(refusal)
        elif part_type == "reasoning_text":
            text = _text_field(part, "text", f"{path}.content[{j}]")
            if text:
                into.reasoning.append(text)


def _reasoning_item(item: Mapping[str, Any], path: str, into: _Output) -> None:
    for key in ("summary", "content"):
        entries = item.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise DecodeError(f"reasoning {key} must be an array", path=f"{path}.{key}", codec=CODEC)
        for j, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise DecodeError(
                    "a reasoning part must be a JSON object", path=f"{path}.{key}[{j}]", codec=CODEC
                )
            text = _text_field(entry, "text", f"{path}.{key}[{j}]")
            if text:
                into.reasoning.append(text)


def _call_item(item: Mapping[str, Any], kind: str, path: str, into: _Output) -> None:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        _text_field(item, "name", path)
        return  # a call without a name cannot be acted on
    call_id = _text_field(item, "call_id", path)
    if kind == "function_call":
        arguments, arguments_raw = parse_arguments(item.get("arguments"), f"{path}.arguments", CODEC)
        extra = split_known(item, _FUNCTION_CALL_KEYS)
    else:
        arguments, arguments_raw = None, _text_field(item, "input", path)
        extra = split_known(item, _CUSTOM_CALL_KEYS)
    into.calls.append(
        ToolCall(
            id=call_id,
            name=name,
            arguments=arguments,
            arguments_raw=arguments_raw,
            type=CALL_ITEM_TYPES[kind],
            extra=extra,
        )
    )


def decode_output(output: Any, path: str) -> _Output:
    """Gather the facts of a reply's ``output`` items."""
    into = _Output()
    if output is None:
        return into
    if not isinstance(output, list):
        raise DecodeError("output must be a JSON array", path=path, codec=CODEC)
    for i, item in enumerate(output):
        decode_output_item(item, f"{path}[{i}]", into)
    return into


def decode_output_item(item: Any, path: str, into: _Output) -> None:
    """Add what one output item says to ``into``."""
    if not isinstance(item, Mapping):
        raise DecodeError("an output item must be a JSON object", path=path, codec=CODEC)
    kind = item.get("type")
    if kind is not None and not isinstance(kind, str):
        raise DecodeError("an output item's type must be a string", path=f"{path}.type", codec=CODEC)
    if kind == "message" or (kind is None and "content" in item):
        _message_item(item, path, into)
    elif kind in CALL_ITEM_TYPES:
        _call_item(item, kind, path, into)
    elif kind == "reasoning":
        _reasoning_item(item, path, into)
    elif kind is not None:
        summary = {key: item[key] for key in ("type", "id", "status", "name", "server_label") if key in item}
        into.server_calls.append(summary)


def _created(value: Any, path: str) -> int | None:
    if value is None or type(value) is int:
        return value
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 2**63:
        return int(value)  # the SDK types created_at as a float; Unix seconds either way
    return optional_int(value, path, CODEC)


def _finish(
    status: str | None, incomplete: Any, has_calls: bool, error: AnnotatedLlmError | None
) -> tuple[FinishReason, str | None]:
    raw: str | None = status
    if status == "completed":
        reason = FinishReason.TOOL_CALLS if has_calls else FinishReason.STOP
    elif status == "incomplete":
        detail = incomplete.get("reason") if isinstance(incomplete, Mapping) else None
        if isinstance(detail, str):
            raw = detail
        reason = _INCOMPLETE_REASONS.get(raw or "", FinishReason.UNKNOWN)
    elif status == "failed":
        reason = FinishReason.ERROR
    elif status is None and has_calls:
        reason = FinishReason.TOOL_CALLS
    else:  # in_progress, queued, cancelled, or something new
        reason = FinishReason.UNKNOWN
    if error is not None:
        reason = FinishReason.ERROR
    return reason, raw


def decode_response_at(response: Any, path: str = "$") -> AnnotatedLlmResponse:
    """A response object (a complete body, or the ``response`` of a stream event at ``path``)."""
    if not isinstance(response, Mapping):
        raise DecodeError("a response must be a JSON object", path=path, codec=CODEC)
    get = response.get
    facts = decode_output(get("output"), f"{path}.output")
    usage = Usage()
    if get("usage") is not None:
        usage = decode_usage(response["usage"], f"{path}.usage")
    error = classify_error(response["error"]) if get("error") is not None else None
    status = _text_field(response, "status", path)
    reason, reason_raw = _finish(status, get("incomplete_details"), bool(facts.calls), error)
    text, think = split_think("".join(facts.texts) or None)
    reasoning = "\n\n".join(facts.reasoning) or think
    refusal = "".join(facts.refusals) if facts.refusals else None
    calls = tuple(facts.calls)
    choice = Choice(
        index=0,
        text=text,
        tool_calls=calls,
        finish_reason=reason,
        finish_reason_raw=reason_raw,
        reasoning_text=reasoning,
        refusal=refusal,
        role=facts.role or "assistant",
        extra={"server_tool_calls": facts.server_calls} if facts.server_calls else {},
    )
    return AnnotatedLlmResponse(
        id=_text_field(response, "id", path),
        model=_text_field(response, "model", path),
        text=text,
        tool_calls=calls,
        finish_reason=reason,
        finish_reason_raw=reason_raw,
        usage=usage,
        reasoning_text=reasoning,
        refusal=refusal,
        choices=(choice,),
        created=_created(get("created_at"), f"{path}.created_at"),
        service_tier=_text_field(response, "service_tier", path),
        error=error,
        operation="chat",
        extra=split_known(response, _RESPONSE_KEYS),
    )


def decode_response(response: Any) -> AnnotatedLlmResponse:
    """A complete (non-streamed) Responses body."""
    return decode_response_at(response, "$")


# ----------------------------------------------------------------------------------------- streaming


class _ItemBuilder:
    """One output item as its stream events describe it."""

    __slots__ = (
        "arguments",
        "call_id",
        "final",
        "item_id",
        "kind",
        "name",
        "reasoning",
        "refusals",
        "summary",
        "texts",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.item_id: str | None = None
        self.call_id: str | None = None
        self.name: str | None = None
        self.final: Mapping[str, Any] | None = None
        self.arguments: list[str] = []
        self.texts: dict[int, list[str]] = {}
        self.refusals: dict[int, list[str]] = {}
        self.summary: dict[int, list[str]] = {}
        self.reasoning: dict[int, list[str]] = {}

    def learn(self, item: Mapping[str, Any]) -> None:
        """Take the ids and name an item object states."""
        for attribute, key in (("item_id", "id"), ("call_id", "call_id"), ("name", "name")):
            value = item.get(key)
            if isinstance(value, str) and value:
                setattr(self, attribute, value)

    def item(self) -> Mapping[str, Any]:
        """The item as the events built it (the final ``output_item.done`` item wins)."""
        if self.final is not None:
            return self.final
        if self.kind == "message":
            content: list[dict[str, Any]] = [
                {"type": "output_text", "text": "".join(self.texts[index])} for index in sorted(self.texts)
            ]
            content += [
                {"type": "refusal", "refusal": "".join(self.refusals[i])} for i in sorted(self.refusals)
            ]
            return {"type": "message", "role": "assistant", "content": content}
        if self.kind in CALL_ITEM_TYPES:
            key = "arguments" if self.kind == "function_call" else "input"
            return {
                "type": self.kind,
                "call_id": self.call_id,
                "name": self.name,
                key: "".join(self.arguments),
            }
        if self.kind == "reasoning":
            return {
                "type": "reasoning",
                "summary": [
                    {"type": "summary_text", "text": "".join(self.summary[i])} for i in sorted(self.summary)
                ],
                "content": [
                    {"type": "reasoning_text", "text": "".join(self.reasoning[i])}
                    for i in sorted(self.reasoning)
                ],
            }
        return {"type": self.kind, **({"id": self.item_id} if self.item_id else {})}


def _index(value: Any) -> int | None:
    return value if type(value) is int else None


# Event type → (kind of item it belongs to, the builder field it feeds, the key of its text).
_DELTAS: dict[str, tuple[str, str, str]] = {
    "response.output_text.delta": ("message", "texts", "delta"),
    "response.refusal.delta": ("message", "refusals", "delta"),
    "response.reasoning_summary_text.delta": ("reasoning", "summary", "delta"),
    "response.reasoning_text.delta": ("reasoning", "reasoning", "delta"),
    "response.function_call_arguments.delta": ("function_call", "arguments", "delta"),
    "response.custom_tool_call_input.delta": ("custom_tool_call", "arguments", "delta"),
}
_DONES: dict[str, tuple[str, str, str]] = {
    "response.output_text.done": ("message", "texts", "text"),
    "response.refusal.done": ("message", "refusals", "refusal"),
    "response.reasoning_summary_text.done": ("reasoning", "summary", "text"),
    "response.reasoning_text.done": ("reasoning", "reasoning", "text"),
    "response.function_call_arguments.done": ("function_call", "arguments", "arguments"),
    "response.custom_tool_call_input.done": ("custom_tool_call", "arguments", "input"),
}
_PART_FIELDS = {"output_text": ("texts", "text"), "refusal": ("refusals", "refusal")}


def _cut_parts(parts: Any, keys: tuple[str, ...], limit: int) -> list[Any] | None:
    """``parts`` copied with their ``keys`` texts cut at ``limit``; ``None`` when none is longer."""
    if type(parts) is not list:
        return None
    cut: list[Any] | None = None
    for i, part in enumerate(parts):
        if not isinstance(part, Mapping):
            continue  # left for decoding to reject
        for key in keys:
            value = part.get(key)
            if isinstance(value, str) and len(value) > limit:
                if cut is None:
                    cut = list(parts)
                part = cut[i] = {**part, key: value[:limit]}
    return cut


def _cut_item(item: Any, limit: int) -> Any:
    """An output item with its texts (message text and refusals, reasoning, call arguments) cut at ``limit``.

    ``item`` itself when no text is longer; a malformed item is returned as it is, for decoding to reject.
    """
    if not isinstance(item, Mapping):
        return item
    kind = item.get("type")
    changes: dict[str, Any] = {}
    if kind == "message" or (kind is None and "content" in item):
        content = item.get("content")
        if isinstance(content, str):
            if len(content) > limit:
                changes["content"] = content[:limit]
        else:
            parts = _cut_parts(content, ("text", "refusal"), limit)
            if parts is not None:
                changes["content"] = parts
    elif isinstance(kind, str) and kind in CALL_ITEM_TYPES:
        key = "arguments" if kind == "function_call" else "input"  # as _call_item reads them
        value = item.get(key)
        if isinstance(value, str) and len(value) > limit:
            changes[key] = value[:limit]
    elif kind == "reasoning":
        for key in ("summary", "content"):
            parts = _cut_parts(item.get(key), ("text",), limit)
            if parts is not None:
                changes[key] = parts
    return {**item, **changes} if changes else item


class ResponsesStreamDecoder:
    """Assembles Responses stream events into one :class:`AnnotatedLlmResponse`.

    The terminal event's ``response`` (``response.completed`` / ``incomplete`` / ``failed``) is decoded like a
    complete body and wins; without one, the reply is what the deltas built, finished as ``error``.

    ``feed`` runs once per streamed event, so a delta of an item already announced takes a short path of
    plain ``dict`` checks. Delta pieces are joined every :data:`COMPACT_EVERY` events and cut at
    :attr:`text_limit` characters; the whole texts that ``*.done`` events, ``output_item.done`` items and
    the terminal ``response`` repeat are cut as they arrive. So a very long stream costs memory in
    proportion to its text (up to the limit), never per event.
    """

    __slots__ = (
        "_by_call_id",
        "_by_id",
        "_by_index",
        "_error",
        "_events",
        "_items",
        "_snapshot",
        "_terminal",
        "_truncated",
        "_usage",
        "text_limit",
    )

    def __init__(self) -> None:
        """Start an empty stream."""
        self._items: list[_ItemBuilder] = []
        self._by_index: dict[int, _ItemBuilder] = {}
        self._by_id: dict[str, _ItemBuilder] = {}
        self._by_call_id: dict[str, _ItemBuilder] = {}
        self._snapshot: dict[str, Any] = {}
        self._terminal: AnnotatedLlmResponse | None = None
        self._usage: Usage | None = None
        self._error: AnnotatedLlmError | None = None
        self._events = 0
        self._truncated = False
        self.text_limit: int = STREAM_TEXT_LIMIT
        """Most characters kept per text (reply text, reasoning, refusal, each call's arguments)."""

    @property
    def has_content(self) -> bool:
        """Whether generated output (text, reasoning, a refusal, a call) has arrived: time to first token."""
        if self._terminal is not None:
            return True
        return any(
            any(item.arguments)
            or any(any(parts) for parts in item.texts.values())
            or any(any(parts) for parts in item.reasoning.values())
            or any(any(parts) for parts in item.summary.values())
            or any(any(parts) for parts in item.refusals.values())
            for item in self._items
        )

    @property
    def truncated(self) -> bool:
        """Whether some text passed :attr:`text_limit` and was cut."""
        return self._truncated

    def feed(self, data: str | bytes, event: str | None = None) -> None:
        """Take one SSE event's data (its JSON carries the event ``type``; ``event`` is the fallback)."""
        if data in ("[DONE]", b"[DONE]"):
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"stream event is not JSON: {exc}", path="$", codec=CODEC) from exc
        if payload is None:
            return
        if type(payload) is not dict and not isinstance(payload, Mapping):
            raise DecodeError("a stream event must be a JSON object", path="$", codec=CODEC)
        kind = payload.get("type")
        if not isinstance(kind, str):
            kind = event
        self._events += 1
        if self._events % COMPACT_EVERY == 0:
            self._compact()
        delta = _DELTAS.get(kind) if kind is not None else None
        if delta is not None and self._feed_fast_delta(payload, delta[1], delta[2]):
            return
        if kind in _SNAPSHOT_EVENTS or kind in _TERMINAL_EVENTS:
            self._feed_snapshot(payload, kind in _TERMINAL_EVENTS)
        elif kind == "error" or (kind is None and isinstance(payload.get("error"), Mapping)):
            inner = payload.get("error")
            source = (
                inner
                if isinstance(inner, Mapping)
                else {key: value for key, value in payload.items() if key not in ("type", "sequence_number")}
            )
            self._error = classify_error(source)
        elif kind == "response.output_item.added" or kind == "response.output_item.done":
            self._feed_item(payload, done=kind == "response.output_item.done")
        elif kind in _DELTAS:
            item_kind, field, key = _DELTAS[kind]
            self._feed_text(payload, item_kind, field, key, replace=False)
        elif kind in _DONES:
            item_kind, field, key = _DONES[kind]
            self._feed_text(payload, item_kind, field, key, replace=True)
        elif kind in ("response.content_part.added", "response.content_part.done"):
            self._feed_part(payload, "texts", done=kind.endswith(".done"))
        elif kind in ("response.reasoning_summary_part.added", "response.reasoning_summary_part.done"):
            self._feed_part(payload, "summary", done=kind.endswith(".done"))

    def _feed_fast_delta(self, payload: Mapping[str, Any], field: str, key: str) -> bool:
        """A delta of an item known by its ``item_id``; ``False`` for anything the general path must see."""
        text = payload.get(key)
        item_id = payload.get("item_id")
        if type(text) is not str or type(item_id) is not str or "name" in payload:
            return False
        builder = self._by_id.get(item_id)
        if builder is None:
            return False
        if field == "arguments":
            builder.arguments.append(text)
            return True
        position = payload.get("summary_index" if field == "summary" else "content_index")
        if type(position) is not int:
            position = 0
        table: dict[int, list[str]] = builder.texts if field == "texts" else getattr(builder, field)
        pieces = table.get(position)
        if pieces is None:
            table[position] = [text]
        else:
            pieces.append(text)
        return True

    def _compact(self) -> None:
        limit = self.text_limit
        for builder in self._items:
            pieces = builder.arguments
            if (len(pieces) > 1 or (pieces and len(pieces[0]) > limit)) and compact_text(pieces, limit):
                self._truncated = True
            for table in (builder.texts, builder.refusals, builder.summary, builder.reasoning):
                for pieces in table.values():
                    if len(pieces) > 1 or (pieces and len(pieces[0]) > limit):
                        if compact_text(pieces, limit):
                            self._truncated = True

    def _limited(self, text: str) -> str:
        """``text`` cut at :attr:`text_limit` (a whole text that a ``done`` event repeats)."""
        if len(text) > self.text_limit:
            self._truncated = True
            return text[: self.text_limit]
        return text

    def _limited_item(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        cut: Mapping[str, Any] = _cut_item(item, self.text_limit)
        if cut is not item:
            self._truncated = True
        return cut

    def _feed_snapshot(self, payload: Mapping[str, Any], terminal: bool) -> None:
        response = payload.get("response")
        if response is None:
            return
        if not isinstance(response, Mapping):
            raise DecodeError("response must be a JSON object", path="$.response", codec=CODEC)
        output = response.get("output")
        if type(output) is list and output:  # kept (and decoded) with its texts cut at the limit
            limited = [self._limited_item(item) for item in output]
            if any(new is not old for new, old in zip(limited, output, strict=True)):
                response = {**response, "output": limited}
        decoded = decode_response_at({**self._snapshot, **response}, "$.response")
        self._snapshot.update(response)
        if decoded.usage.reported:
            self._usage = decoded.usage
        if terminal:
            self._terminal = decoded

    def _find(self, payload: Mapping[str, Any], kind: str) -> _ItemBuilder:
        """The item an event is about: by item id (or call id), output index, else the latest of its kind."""
        item_id = payload.get("item_id")
        index = _index(payload.get("output_index"))
        if isinstance(item_id, str):
            found = self._by_id.get(item_id) or self._by_call_id.get(item_id)
            if found is not None:
                return found
        if index is not None:
            found = self._by_index.get(index)
            if found is not None:
                return found
        else:  # no index (llama.cpp): the latest open item of the event's kind
            for builder in reversed(self._items):
                if builder.kind == kind and builder.final is None:
                    if isinstance(item_id, str):
                        self._by_id[item_id] = builder
                    return builder
        builder = _ItemBuilder(kind)
        if isinstance(item_id, str):
            builder.item_id = item_id
        self._register(builder, index)
        return builder

    def _register(self, builder: _ItemBuilder, index: int | None) -> None:
        if builder not in self._items:
            self._items.append(builder)
        if index is not None:
            self._by_index[index] = builder
        if builder.item_id:
            self._by_id[builder.item_id] = builder
        if builder.call_id:
            self._by_call_id[builder.call_id] = builder

    def _feed_item(self, payload: Mapping[str, Any], done: bool) -> None:
        item = payload.get("item")
        if item is None:
            return
        if not isinstance(item, Mapping):
            raise DecodeError("item must be a JSON object", path="$.item", codec=CODEC)
        kind = item.get("type")
        if not isinstance(kind, str):
            kind = "message"
        if done:
            decode_output_item(item, "$.item", _Output())  # a malformed item is rejected now, not at finish
        index = _index(payload.get("output_index"))
        builder: _ItemBuilder | None = None
        for key, table in (("id", self._by_id), ("call_id", self._by_call_id)):
            value = item.get(key)
            if isinstance(value, str) and value in table:
                builder = table[value]
                break
        if builder is None and index is not None:
            builder = self._by_index.get(index)
        if builder is None and done and index is None:
            for candidate in reversed(self._items):  # servers that name no item: the latest of its kind
                if candidate.kind == kind and candidate.final is None and not candidate.item_id:
                    builder = candidate
                    break
        if builder is None or builder.kind != kind:
            builder = _ItemBuilder(kind)
        builder.learn(item)
        if done:
            builder.final = self._limited_item(item)
        self._register(builder, index)

    def _feed_text(self, payload: Mapping[str, Any], kind: str, field: str, key: str, replace: bool) -> None:
        text = payload.get(key)
        if not isinstance(text, str):
            return
        builder = self._find(payload, kind)
        name = payload.get("name")
        if isinstance(name, str) and name:
            builder.name = name
        if field == "arguments":
            if replace:
                builder.arguments[:] = [self._limited(text)]
            else:
                builder.arguments.append(text)
            return
        position = _index(payload.get("summary_index" if field == "summary" else "content_index")) or 0
        table: dict[int, list[str]] = getattr(builder, field)
        if replace:
            table[position] = [self._limited(text)]
        else:
            table.setdefault(position, []).append(text)

    def _feed_part(self, payload: Mapping[str, Any], field: str, done: bool) -> None:
        part = payload.get("part")
        if not isinstance(part, Mapping):
            return
        kind = "reasoning" if field == "summary" else "message"
        target = field
        key = "text"
        if field == "texts":
            found = _PART_FIELDS.get(str(part.get("type")))
            if found is None:
                return
            target, key = found
        builder = self._find(payload, kind)
        position = _index(payload.get("summary_index" if field == "summary" else "content_index")) or 0
        table: dict[int, list[str]] = getattr(builder, target)
        text = part.get(key)
        if done and isinstance(text, str):
            table[position] = [self._limited(text)]
        else:
            table.setdefault(position, [])

    def _assembled(self) -> AnnotatedLlmResponse:
        body = {**self._snapshot, "output": [builder.item() for builder in self._items]}
        return decode_response_at(body, "$.response")

    def finish(self) -> AnnotatedLlmResponse:
        """The reply: the terminal snapshot when the stream had one, else what the deltas built.

        Each text is cut at :attr:`text_limit` characters.
        """
        self._compact()  # applies text_limit to what arrived since the last compaction
        result = self._terminal
        if result is None:
            result = _with_reason(self._assembled(), FinishReason.ERROR)
        elif self._items and not self._snapshot.get("output"):
            result = self._assembled()  # a terminal snapshot without its items: its status, the deltas' items
        if not result.usage.reported and self._usage is not None:
            result = dataclasses.replace(result, usage=self._usage)
        if self._error is not None and result.error is None:
            result = _with_reason(dataclasses.replace(result, error=self._error), FinishReason.ERROR)
        return self._cut_result(result)

    def _cut_result(self, result: AnnotatedLlmResponse) -> AnnotatedLlmResponse:
        """Cut the texts joined over several parts or items (each one is within the limit already)."""
        limit = self.text_limit

        def cut(value: str | None) -> str | None:
            return value[:limit] if value is not None else None

        texts = (result.text, result.reasoning_text, result.refusal)
        if not any(value is not None and len(value) > limit for value in texts):
            return result
        self._truncated = True
        choices = tuple(
            dataclasses.replace(
                choice,
                text=cut(choice.text),
                reasoning_text=cut(choice.reasoning_text),
                refusal=cut(choice.refusal),
            )
            if i == 0
            else choice
            for i, choice in enumerate(result.choices)
        )
        return dataclasses.replace(
            result,
            text=cut(result.text),
            reasoning_text=cut(result.reasoning_text),
            refusal=cut(result.refusal),
            choices=choices,
        )


def _with_reason(result: AnnotatedLlmResponse, reason: FinishReason) -> AnnotatedLlmResponse:
    choices = tuple(
        dataclasses.replace(choice, finish_reason=reason) if i == 0 else choice
        for i, choice in enumerate(result.choices)
    )
    return dataclasses.replace(result, finish_reason=reason, choices=choices)
