"""Gemini responses, streamed chunks and error bodies → annotated objects.

Wire references: Gemini API reference ``GenerateContentResponse`` (``Candidate``, ``FinishReason``,
``PromptFeedback``, ``UsageMetadata``), ``models.streamGenerateContent`` (server-sent events with
``?alt=sse``, else one JSON array streamed as a single body), and Google's API error model
(``google.rpc.Status`` with ``RetryInfo``, ``ErrorInfo``, ``QuotaFailure`` and ``BadRequest`` details).

Usage, as billed: ``promptTokenCount`` already includes the cached-content tokens; the tokens of
server-side tool results (``toolUsePromptTokenCount``) are input tokens billed on top, so
``prompt_tokens`` is their sum. Thinking tokens (``thoughtsTokenCount``) are billed as output but not
counted in ``candidatesTokenCount``, so ``completion_tokens`` is their sum. A count absent from
``usageMetadata`` is ``None`` (protobuf JSON leaves zero counts out, so an absent count may mean zero).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
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
    decode_sse_stream,
    error_body_text,
    optional_int,
    optional_str,
    retry_after_seconds,
)

from ._wire import (
    CODEC,
    EMPTY,
    SNAKE,
    expect_list,
    expect_mapping,
    lookup,
    model_of_url,
    unknown_keys,
    value_of,
)

_FINISH_REASONS = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER,
    "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "IMAGE_RECITATION": FinishReason.CONTENT_FILTER,
    "MODEL_ARMOR": FinishReason.CONTENT_FILTER,
    "MALFORMED_FUNCTION_CALL": FinishReason.ERROR,
    "UNEXPECTED_TOOL_CALL": FinishReason.ERROR,
    "TOO_MANY_TOOL_CALLS": FinishReason.ERROR,
    "MISSING_THOUGHT_SIGNATURE": FinishReason.ERROR,
    "MALFORMED_RESPONSE": FinishReason.ERROR,
}
"""Gemini finish reasons; the rest (``LANGUAGE``, ``OTHER``, ``FINISH_REASON_UNSPECIFIED``...) are unknown."""

_RESPONSE_KNOWN = frozenset({"candidates", "usageMetadata", "modelVersion", "responseId"})
_CANDIDATE_KNOWN = frozenset({"content", "finishReason", "index"})
_CONTENT_KNOWN = frozenset({"role", "parts"})
_USAGE_KNOWN = frozenset(
    {
        "promptTokenCount",
        "candidatesTokenCount",
        "cachedContentTokenCount",
        "thoughtsTokenCount",
        "toolUsePromptTokenCount",
        "totalTokenCount",
    }
)
_USAGE_NAMES = _USAGE_KNOWN | {SNAKE[name] for name in _USAGE_KNOWN}
"""The token counts of ``usageMetadata`` under both spellings."""
THOUGHT_SIGNATURES = "thoughtSignatures"
"""``Choice.extra`` key: the thought signatures of the reply's text and thought parts, in order."""
OTHER_PARTS = "otherParts"
"""``Choice.extra`` key: reply parts that are neither text, thought nor function call (code, images...)."""


def finish_reason(raw: str | None, has_tool_calls: bool) -> FinishReason:
    """Normalize a finish value; a reply that asks for tool calls is ``tool_calls`` even if it says STOP."""
    if not raw:
        return FinishReason.TOOL_CALLS if has_tool_calls else FinishReason.UNKNOWN
    reason = _FINISH_REASONS.get(raw, FinishReason.UNKNOWN)
    if has_tool_calls and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason


def _count(raw: Mapping[str, Any], name: str, path: str) -> int | None:
    key, value = lookup(raw, name)
    return None if value is None else optional_int(value, f"{path}.{key}", CODEC)


def _sum(*counts: int | None) -> int | None:
    known = [count for count in counts if count is not None]
    return sum(known) if known else None


def decode_usage(raw: Any, path: str) -> Usage:
    """``usageMetadata`` → :class:`Usage` (see the module docstring for what counts where)."""
    usage = expect_mapping(raw, path, "usageMetadata")
    prompt = _count(usage, "promptTokenCount", path)
    candidates = _count(usage, "candidatesTokenCount", path)
    cached = _count(usage, "cachedContentTokenCount", path)
    thoughts = _count(usage, "thoughtsTokenCount", path)
    tool_prompt = _count(usage, "toolUsePromptTokenCount", path)
    total = _count(usage, "totalTokenCount", path)
    prompt_tokens = _sum(prompt, tool_prompt)
    completion_tokens = _sum(candidates, thoughts)
    if total is None and prompt_tokens is not None and completion_tokens is not None:
        total = prompt_tokens + completion_tokens
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=total,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
        extra=unknown_keys(usage, _USAGE_KNOWN),
    )


def _created(value: Any) -> int | None:
    """Unix seconds of an RFC 3339 ``createTime`` (Vertex AI), or ``None`` when it does not parse."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # nanoseconds → microseconds
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        seconds = int(moment.timestamp())
    except (OverflowError, OSError, ValueError):
        return None
    return seconds if seconds >= 0 else None


@dataclass(slots=True)
class _CandidateBuilder:
    """One candidate's reply, assembled from a whole response or from streamed chunks."""

    index: int
    role: str | None = None
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    other_parts: list[Any] = field(default_factory=list)
    finish_raw: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def feed(self, candidate: Mapping[str, Any], candidates_path: str, position: int) -> None:
        """Take the candidate at ``candidates_path[position]``.

        Runs once per streamed chunk: JSON paths are built only to raise, plain parts take a short path.
        """
        content = candidate.get("content")  # one word: no snake_case twin
        if content is not None:
            if type(content) is not dict:
                content = expect_mapping(content, f"{candidates_path}[{position}].content", "content")
            role = content.get("role")
            if role is not None and type(role) is not str:
                role = optional_str(role, f"{candidates_path}[{position}].content.role", CODEC)
            if role:
                self.role = "assistant" if role == "model" else role
            parts = content.get("parts")
            if parts is not None:
                if type(parts) is not list:
                    parts = expect_list(parts, f"{candidates_path}[{position}].content.parts", "parts")
                for part_position, part in enumerate(parts):
                    if type(part) is dict:
                        text = part.get("text")
                        if type(text) is str:
                            size = len(part)
                            if size == 1:  # {"text": ...}
                                self.text.append(text)
                                continue
                            if size == 2 and part.get("thought") is True:  # {"text": ..., "thought": true}
                                self.reasoning.append(text)
                                continue
                    self._feed_part(part, f"{candidates_path}[{position}].content.parts[{part_position}]")
            if not content.keys() <= _CONTENT_KNOWN:
                content_extra = unknown_keys(content, _CONTENT_KNOWN)
                if content_extra:
                    self.extra["content"] = {**self.extra.get("content", {}), **content_extra}
        known = candidate.keys() <= _CANDIDATE_KNOWN  # no snake_case keys, nothing unknown
        reason_key, reason = (
            ("finishReason", candidate.get("finishReason")) if known else lookup(candidate, "finishReason")
        )
        if reason is not None:
            if type(reason) is not str:
                reason = optional_str(reason, f"{candidates_path}[{position}].{reason_key}", CODEC)
            if reason:
                self.finish_raw = reason
        if not known:
            self.extra.update(unknown_keys(candidate, _CANDIDATE_KNOWN))

    def _feed_part(self, raw: Any, path: str) -> None:  # a part other than plain text or thought
        part = expect_mapping(raw, path, "a part")
        signature_key, signature = lookup(part, "thoughtSignature")
        signature = optional_str(signature, f"{path}.{signature_key}", CODEC)
        call_key, call = lookup(part, "functionCall")
        if call is not None:
            call_path = f"{path}.{call_key}"
            call = expect_mapping(call, call_path, "functionCall")
            name = optional_str(call.get("name"), f"{call_path}.name", CODEC)
            args = call.get("args")
            if args is not None and not isinstance(args, Mapping):
                expect_mapping(args, f"{call_path}.args", "args")  # raises with the path
            if name:  # a call without a name cannot be acted on
                self.calls.append(
                    ToolCall(
                        id=optional_str(call.get("id"), f"{call_path}.id", CODEC),
                        name=name,
                        arguments=args,
                        extra=unknown_keys(part, frozenset({"functionCall"})),
                    )
                )
            return
        text = part.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise DecodeError("text must be a string", path=f"{path}.text", codec=CODEC)
            (self.reasoning if part.get("thought") is True else self.text).append(text)
            if signature is not None:
                self.signatures.append(signature)
            return
        if part.get("thought") is True and signature is not None:
            self.signatures.append(signature)
            return
        if part:
            self.other_parts.append(part)

    def build(self) -> Choice:
        extra = self.extra
        if self.signatures or self.other_parts:
            extra = dict(extra)
            if self.signatures:
                extra[THOUGHT_SIGNATURES] = list(self.signatures)
            if self.other_parts:
                extra[OTHER_PARTS] = list(self.other_parts)
        calls = tuple(self.calls)
        return Choice(
            index=self.index,
            text="".join(self.text) or None,
            tool_calls=calls,
            finish_reason=finish_reason(self.finish_raw, bool(calls)),
            finish_reason_raw=self.finish_raw,
            reasoning_text="".join(self.reasoning) or None,
            role=self.role,
            extra=extra or EMPTY,
        )


def _candidate_index(candidate: Mapping[str, Any], position: int, path: str) -> int:
    index = optional_int(candidate.get("index"), f"{path}.index", CODEC)
    if index is None:
        return position  # protobuf JSON leaves index 0 out
    if index < 0:
        raise DecodeError("a candidate index cannot be negative", path=f"{path}.index", codec=CODEC)
    return index


def _block_reason(response: Mapping[str, Any], path: str) -> str | None:
    key, feedback = lookup(response, "promptFeedback")
    if not isinstance(feedback, Mapping):
        return None
    block_key, reason = lookup(feedback, "blockReason")
    return optional_str(reason, f"{path}.{key}.{block_key}", CODEC)


def _response(
    choices: tuple[Choice, ...],
    common: dict[str, Any],
    block_reason: str | None,
    error: AnnotatedLlmError | None,
) -> AnnotatedLlmResponse:
    first = choices[0] if choices else None
    if first is not None:
        reason, reason_raw = first.finish_reason, first.finish_reason_raw
    elif block_reason:  # the prompt was blocked: no candidate at all
        reason, reason_raw = FinishReason.CONTENT_FILTER, block_reason
    else:
        reason, reason_raw = FinishReason.UNKNOWN, None
    if error is not None:
        reason = FinishReason.ERROR
    return AnnotatedLlmResponse(
        text=first.text if first else None,
        tool_calls=first.tool_calls if first else (),
        finish_reason=reason,
        finish_reason_raw=reason_raw,
        reasoning_text=first.reasoning_text if first else None,
        choices=choices,
        error=error,
        operation="chat",
        **common,
    )


def _common(response: Mapping[str, Any], url: str | None, path: str) -> dict[str, Any]:
    model_key, model = lookup(response, "modelVersion")
    id_key, response_id = lookup(response, "responseId")
    extra = unknown_keys(response, _RESPONSE_KNOWN)
    created = _created(value_of(response, "createTime"))
    if created is not None and extra:
        extra = {key: value for key, value in extra.items() if key not in ("createTime", "create_time")}
    return {
        "id": optional_str(response_id, f"{path}.{id_key}", CODEC),
        "model": optional_str(model, f"{path}.{model_key}", CODEC) or model_of_url(url),
        "created": created,
        "extra": extra or EMPTY,
    }


def decode_response(response: Any, url: str | None) -> AnnotatedLlmResponse:
    """A complete ``GenerateContentResponse``."""
    body = expect_mapping(response, "$", "the response body")
    key, candidates_raw = lookup(body, "candidates")
    builders: dict[int, _CandidateBuilder] = {}
    if candidates_raw is not None:
        for position, raw in enumerate(expect_list(candidates_raw, f"$.{key}", "candidates")):
            path = f"$.{key}[{position}]"
            candidate = expect_mapping(raw, path, "a candidate")
            index = _candidate_index(candidate, position, path)
            builder = builders.get(index)
            if builder is None:
                builder = builders[index] = _CandidateBuilder(index)
            builder.feed(candidate, f"$.{key}", position)
    choices = tuple(builders[index].build() for index in sorted(builders))
    common = _common(body, url, "$")
    usage_key, usage = lookup(body, "usageMetadata")
    common["usage"] = decode_usage(usage, f"$.{usage_key}") if usage is not None else Usage()
    error = None
    if isinstance(body.get("error"), Mapping):
        error = error_from_status(body["error"], None)
    return _response(choices, common, _block_reason(body, "$"), error)


# ----------------------------------------------------------------------------------------- streaming


def _plain_usage(usage: Any) -> bool:
    """Whether ``usageMetadata`` is a plain object whose token counts are all integers (it decodes)."""
    if type(usage) is not dict:
        return False
    for key, value in usage.items():
        if type(value) is not int and key in _USAGE_NAMES:
            return False
    return True


class GeminiStreamDecoder:
    """Assembles streamed ``GenerateContentResponse`` chunks into one :class:`AnnotatedLlmResponse`.

    Text and thought parts are appended, function calls collected, and the last finish reason, usage,
    model version and response id win (usage is never summed).

    Every chunk carries text deltas (never the text so far) and the running ``usageMetadata``: a chunk's
    usage is checked when it arrives but only the last one is decoded, by :meth:`finish`. Each candidate's
    text pieces are joined every :data:`COMPACT_EVERY` chunks and cut at :attr:`text_limit` characters,
    so a very long stream costs memory in proportion to its text, never per chunk.
    """

    __slots__ = (
        "_block",
        "_candidates",
        "_common",
        "_error",
        "_events",
        "_extra",
        "_truncated",
        "_url",
        "_usage",
        "text_limit",
    )

    def __init__(self, url: str | None = None) -> None:
        """Start an empty stream; ``url`` names the model when the chunks do not."""
        self._url = url
        self._candidates: dict[int, _CandidateBuilder] = {}
        self._common: dict[str, Any] = {}
        self._usage: Mapping[str, Any] | None = None  # the last usageMetadata, checked, decoded at finish
        self._block: str | None = None
        self._error: AnnotatedLlmError | None = None
        self._extra: dict[str, Any] = {}
        self._events = 0
        self._truncated = False
        self.text_limit: int = STREAM_TEXT_LIMIT
        """Most characters kept per text (each candidate's text and thoughts); the rest is cut."""

    @property
    def has_content(self) -> bool:
        """Whether generated output (text, thoughts, a function call) has arrived: time to first token."""
        return any(
            any(candidate.text) or any(candidate.reasoning) or bool(candidate.calls)
            for candidate in self._candidates.values()
        )

    @property
    def truncated(self) -> bool:
        """Whether some text passed :attr:`text_limit` and was cut."""
        return self._truncated

    def feed(self, data: str | bytes, event: str | None = None) -> None:
        """Take one SSE event's data: a ``GenerateContentResponse`` object (or an array of them)."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if isinstance(data, str | bytes) and data.strip() in ("[DONE]", b"[DONE]", "", b""):
                return
            raise DecodeError(f"stream event is not JSON: {exc}", path="$", codec=CODEC) from exc
        if chunk is None:
            return
        if isinstance(chunk, list):
            for position, item in enumerate(chunk):
                self.feed_object(item, f"$[{position}]")
            return
        self.feed_object(chunk, "$", event)

    def feed_object(self, chunk: Any, path: str = "$", event: str | None = None) -> None:
        """Take one parsed chunk object."""
        if chunk is None:
            return
        self._events += 1
        if self._events % COMPACT_EVERY == 0:
            self._compact()
        body = chunk if type(chunk) is dict else expect_mapping(chunk, path, "a stream chunk")
        get = body.get
        error = get("error")
        if event == "error" or error is not None:
            self._error = error_from_status(error if error is not None else body, None)
            return
        known = body.keys() <= _RESPONSE_KNOWN  # the common chunk: no snake_case keys, nothing unknown
        candidates = get("candidates")  # one word: no snake_case twin
        if candidates is not None:
            candidates_path = "$.candidates" if path == "$" else f"{path}.candidates"
            if type(candidates) is not list:
                candidates = expect_list(candidates, candidates_path, "candidates")
            builders = self._candidates
            for position, raw in enumerate(candidates):
                if type(raw) is dict:
                    candidate: Mapping[str, Any] = raw
                else:
                    candidate = expect_mapping(raw, f"{candidates_path}[{position}]", "a candidate")
                index = candidate.get("index")
                if index is None:
                    index = position  # protobuf JSON leaves index 0 out
                elif type(index) is not int or index < 0:
                    index = _candidate_index(candidate, position, f"{candidates_path}[{position}]")
                builder = builders.get(index)
                if builder is None:
                    builder = builders[index] = _CandidateBuilder(index)
                builder.feed(candidate, candidates_path, position)
        usage_key, usage = ("usageMetadata", get("usageMetadata")) if known else lookup(body, "usageMetadata")
        if usage is not None:
            if not _plain_usage(usage):
                decode_usage(usage, f"{path}.{usage_key}")  # raises now, with the path, if it does not decode
            self._usage = usage
        if known:
            response_id = get("responseId")
            model = get("modelVersion")
            if response_id is not None and type(response_id) is not str:
                response_id = optional_str(response_id, f"{path}.responseId", CODEC)
            if model is not None and type(model) is not str:
                model = optional_str(model, f"{path}.modelVersion", CODEC)
            if response_id is not None:
                self._common["id"] = response_id
            if model:
                self._common["model"] = model
            return
        common = _common(body, None, path)
        for name in ("id", "model", "created"):
            if common[name] is not None:
                self._common[name] = common[name]
        self._extra.update(common["extra"])
        block = _block_reason(body, path)
        if block:
            self._block = block

    def _compact(self) -> None:
        limit = self.text_limit
        for builder in self._candidates.values():
            for pieces in (builder.text, builder.reasoning):
                if len(pieces) > 1 or (pieces and len(pieces[0]) > limit):
                    if compact_text(pieces, limit):
                        self._truncated = True

    def finish(self) -> AnnotatedLlmResponse:
        """The reply assembled from every chunk fed so far (each text cut at :attr:`text_limit`)."""
        self._compact()  # applies text_limit to what arrived since the last compaction
        choices = tuple(self._candidates[index].build() for index in sorted(self._candidates))
        usage = Usage()
        if self._usage is not None:
            usage = decode_usage(self._usage, "$.usageMetadata")  # checked when it arrived: cannot raise
        common: dict[str, Any] = {
            "id": self._common.get("id"),
            "model": self._common.get("model") or model_of_url(self._url),
            "created": self._common.get("created"),
            "usage": usage,
            "extra": dict(self._extra) if self._extra else EMPTY,
        }
        return _response(choices, common, self._block, self._error)


_WHITESPACE = b" \t\r\n\xef\xbb\xbf"  # and a UTF-8 byte-order mark


def _json_elements(body: bytes) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array body, as many as are complete (the stream may have been cut)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    else:
        if isinstance(parsed, list):
            yield from enumerate(parsed)
        else:
            yield 0, parsed
        return
    text = body.decode("utf-8", "replace").lstrip(" \t\r\n\ufeff")
    decoder = json.JSONDecoder()
    position = 1 if text.startswith("[") else 0
    index = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return
        try:
            element, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return  # a cut-off element: keep what came before it
        yield index, element
        index += 1


def decode_stream(byte_chunks: Iterable[bytes], url: str | None) -> AnnotatedLlmResponse:
    """A whole streamed body: SSE (``alt=sse``) or the JSON array sent without it, in any chunking."""
    decoder = GeminiStreamDecoder(url)
    chunks = iter(byte_chunks)
    head = b""
    for chunk in chunks:
        head += bytes(chunk)
        if head.lstrip(_WHITESPACE):
            break
    start = head.lstrip(_WHITESPACE)[:1]
    if start not in (b"[", b"{"):
        return decode_sse_stream(decoder, chain([head], chunks))
    body = head + b"".join(bytes(chunk) for chunk in chunks)
    for index, element in _json_elements(body):
        decoder.feed_object(element, f"$[{index}]" if start == b"[" else "$")
    return decoder.finish()


# ----------------------------------------------------------------------------------------- errors

_STATUS_KINDS = {
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.INVALID_REQUEST,
    "OUT_OF_RANGE": ErrorKind.INVALID_REQUEST,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "INTERNAL": ErrorKind.SERVER,
    "UNKNOWN": ErrorKind.SERVER,
    "DATA_LOSS": ErrorKind.SERVER,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
}
_CONTEXT_LENGTH = re.compile(
    r"exceeds the maximum number of tokens|input token count|maximum context length|context window|"
    r"too many tokens|only supports up to \d+ tokens",
    re.IGNORECASE,
)
_AUTH_REASONS = frozenset(
    {"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED", "CREDENTIALS_MISSING"}
)
_API_KEY_MESSAGE = re.compile(r"API key (not valid|expired)", re.IGNORECASE)
_LOCATION_MESSAGE = re.compile(r"location is not supported", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")


def _details(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [detail for detail in details if isinstance(detail, Mapping)]


def _detail_type(detail: Mapping[str, Any]) -> str:
    kind = detail.get("@type")
    return kind.rsplit(".", 1)[-1] if isinstance(kind, str) else ""


def _retry_delay(details: list[Mapping[str, Any]]) -> float | None:
    """Seconds from a ``RetryInfo`` detail's ``retryDelay`` (a protobuf Duration such as ``"20s"``)."""
    for detail in details:
        if _detail_type(detail) != "RetryInfo":
            continue
        delay = value_of(detail, "retryDelay")
        if isinstance(delay, str):
            match = _DURATION.match(delay)
            if match:
                return float(match[1])
        elif isinstance(delay, Mapping):  # the expanded form {"seconds": 20, "nanos": 0}
            seconds, nanos = delay.get("seconds", 0), delay.get("nanos", 0)
            try:
                return float(seconds) + float(nanos) / 1e9
            except (TypeError, ValueError, OverflowError):
                return None
    return None


def _reason(details: list[Mapping[str, Any]]) -> str | None:
    for detail in details:
        if _detail_type(detail) == "ErrorInfo" and isinstance(detail.get("reason"), str):
            return str(detail["reason"])
    return None


def _quota_spent(details: list[Mapping[str, Any]]) -> bool:
    """Whether a ``QuotaFailure`` names a daily quota or one of zero (waiting a minute will not help)."""
    for detail in details:
        if _detail_type(detail) != "QuotaFailure":
            continue
        violations = detail.get("violations")
        for violation in violations if isinstance(violations, list) else ():
            if not isinstance(violation, Mapping):
                continue
            quota_id = value_of(violation, "quotaId")
            if isinstance(quota_id, str) and "PerDay" in quota_id:
                return True
            if value_of(violation, "quotaValue") in ("0", 0):
                return True
    return False


def _param(details: list[Mapping[str, Any]]) -> str | None:
    for detail in details:
        if _detail_type(detail) != "BadRequest":
            continue
        violations = value_of(detail, "fieldViolations")
        for violation in violations if isinstance(violations, list) else ():
            if isinstance(violation, Mapping) and isinstance(violation.get("field"), str):
                return str(violation["field"])
    return None


def _classify(
    status: int | None, status_text: str | None, message: str, reason: str | None, details: Any
) -> ErrorKind:
    if reason in _AUTH_REASONS or _API_KEY_MESSAGE.search(message):
        return ErrorKind.AUTHENTICATION
    if _CONTEXT_LENGTH.search(message):
        return ErrorKind.CONTEXT_LENGTH_EXCEEDED
    if _LOCATION_MESSAGE.search(message):
        return ErrorKind.PERMISSION
    if status_text == "RESOURCE_EXHAUSTED" or (status_text is None and status == 429):
        return ErrorKind.QUOTA_EXCEEDED if _quota_spent(details) else ErrorKind.RATE_LIMIT
    if status_text in _STATUS_KINDS:
        return _STATUS_KINDS[status_text]
    if status is not None:
        return classify_status(status)
    return ErrorKind.UNKNOWN


def error_from_status(raw: Any, status: int | None) -> AnnotatedLlmError:
    """Classify a ``google.rpc.Status`` error object (``{"code", "message", "status", "details"}``)."""
    if not isinstance(raw, Mapping):
        message = raw if isinstance(raw, str) else None
        return AnnotatedLlmError(
            kind=classify_status(status) if status is not None else ErrorKind.UNKNOWN,
            status=status,
            message=message,
        )
    message = raw.get("message")
    message_text = message if isinstance(message, str) else None
    status_value = raw.get("status")
    status_text = status_value if isinstance(status_value, str) else None
    code = raw.get("code")
    code_text = None if code is None or isinstance(code, bool) else str(code)
    if status is None and isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        status = code
    details = _details(raw)
    kind = _classify(status, status_text, message_text or "", _reason(details), details)
    return AnnotatedLlmError(
        kind=kind,
        status=status,
        message=message_text,
        type=status_text,
        code=code_text,
        param=_param(details),
        retry_after=_retry_delay(details),
        extra=unknown_keys(raw, frozenset({"message", "status", "code"})),
    )


_MAX_PARSED_ERROR_BODY = 1024 * 1024


def decode_error(
    status: int, headers: Mapping[str, str], body: bytes | str | Mapping[str, Any] | None
) -> AnnotatedLlmError:
    """Classify an HTTP error response of the Gemini API; never raises."""
    text = error_body_text(body)
    parsed: Any = body if isinstance(body, Mapping) else None
    if parsed is None and body and len(body) <= _MAX_PARSED_ERROR_BODY:
        try:
            parsed = orjson.loads(body)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            parsed = None
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], Mapping):
        parsed = parsed[0]  # the streaming route without alt=sse wraps the error in an array
    inner = parsed.get("error") if isinstance(parsed, Mapping) else None
    try:
        if isinstance(inner, Mapping | str):
            error = error_from_status(inner, status)
        else:
            plain = text.strip() if text else ""
            message = plain if plain and not plain.startswith("<") and len(plain) <= 500 else None
            error = AnnotatedLlmError(kind=classify_status(status), status=status, message=message)
    except (TypeError, ValueError, RecursionError, OverflowError):
        error = AnnotatedLlmError(kind=classify_status(status), status=status)
    retry_after = retry_after_seconds(headers)
    return AnnotatedLlmError(
        kind=error.kind,
        status=status,
        message=error.message,
        type=error.type,
        code=error.code,
        param=error.param,
        retry_after=retry_after if retry_after is not None else error.retry_after,
        body=text,
        extra=error.extra,
    )
