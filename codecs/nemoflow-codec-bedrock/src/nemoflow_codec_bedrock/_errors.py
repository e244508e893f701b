"""Bedrock error responses and in-stream exceptions → :class:`~nemoflow.AnnotatedLlmError`.

Wire references: Bedrock Runtime API reference, "Converse" / "ConverseStream" → Errors (the exception
names and their HTTP statuses), and the AWS REST-JSON protocol: the error type travels in the
``x-amzn-errortype`` header (``ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/``)
or a ``__type`` body key (``com.amazon.coral.service#ThrottlingException``); the body is
``{"message": "..."}`` (some services capitalize ``Message``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from nemoflow import AnnotatedLlmError, ErrorKind
from nemoflow.codec_support import classify_status, error_body_text, retry_after_seconds, split_known

_KINDS = {
    "throttlingexception": ErrorKind.RATE_LIMIT,
    "toomanyrequestsexception": ErrorKind.RATE_LIMIT,
    "validationexception": ErrorKind.INVALID_REQUEST,
    "accessdeniedexception": ErrorKind.PERMISSION,
    "unrecognizedclientexception": ErrorKind.AUTHENTICATION,
    "expiredtokenexception": ErrorKind.AUTHENTICATION,
    "invalidsignatureexception": ErrorKind.AUTHENTICATION,
    "incompletesignatureexception": ErrorKind.AUTHENTICATION,
    "missingauthenticationtokenexception": ErrorKind.AUTHENTICATION,
    "invalidclienttokenid": ErrorKind.AUTHENTICATION,
    "resourcenotfoundexception": ErrorKind.NOT_FOUND,
    "modeltimeoutexception": ErrorKind.TIMEOUT,
    "serviceunavailableexception": ErrorKind.OVERLOADED,
    "modelnotreadyexception": ErrorKind.OVERLOADED,
    "internalserverexception": ErrorKind.SERVER,
    "modelerrorexception": ErrorKind.SERVER,
    "modelstreamerrorexception": ErrorKind.SERVER,
    "servicequotaexceededexception": ErrorKind.QUOTA_EXCEEDED,
    "conflictexception": ErrorKind.INVALID_REQUEST,
}

# Bedrock words an oversized prompt several ways: "Input is too long for requested model.",
# "prompt is too long: 210312 tokens > 200000 maximum", "... exceeds the maximum context length ...".
_CONTEXT_LENGTH = re.compile(
    r"too long|context (?:window|length)|too many (?:input )?tokens in the (?:input|prompt)|"
    r"exceed\w*[^.]*?\b(?:context|input|prompt|token)|(?:input|prompt)\b[^.]*?\bexceed",
    re.IGNORECASE,
)
_MAX_PARSED_BODY = 1024 * 1024
_BODY_KEYS = frozenset({"message", "Message", "__type"})


def error_type_name(value: str | None) -> str | None:
    """The bare exception name of an ``x-amzn-errortype`` header or ``__type`` value."""
    if not value:
        return None
    name = value.split(":", 1)[0]
    name = name.rsplit("#", 1)[-1].strip()
    return name or None


def classify(error_type: str | None, message: str | None, status: int | None) -> ErrorKind:
    """The error kind for a Bedrock exception name (any casing), its message and HTTP status."""
    kind = _KINDS.get(error_type.lower()) if error_type else None
    if kind is ErrorKind.INVALID_REQUEST or (kind is None and status == 400):
        if message and _CONTEXT_LENGTH.search(message):
            return ErrorKind.CONTEXT_LENGTH_EXCEEDED
    if kind is not None:
        return kind
    if status is not None:
        return classify_status(status)
    return ErrorKind.UNKNOWN


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if isinstance(key, str) and key.lower() == name:
            return candidate
    return None


def _message_of(parsed: Mapping[str, Any]) -> str | None:
    for key in ("message", "Message"):
        value = parsed.get(key)
        if isinstance(value, str):
            return value
    return None


def decode_error(
    status: int, headers: Mapping[str, str], body: bytes | str | Mapping[str, Any] | None
) -> AnnotatedLlmError:
    """Classify an HTTP error response of the Bedrock Runtime; never raises."""
    text = error_body_text(body)
    parsed: Any = body if isinstance(body, Mapping) else None
    if parsed is None and body and len(body) <= _MAX_PARSED_BODY:
        try:
            parsed = orjson.loads(body)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            parsed = None
    try:
        header_type = _header(headers, "x-amzn-errortype")
    except (AttributeError, TypeError):
        header_type = None
    error_type = error_type_name(header_type if isinstance(header_type, str) else None)
    message: str | None = None
    extra: Mapping[str, Any] = {}
    if isinstance(parsed, Mapping):
        message = _message_of(parsed)
        if error_type is None:
            body_type = parsed.get("__type")
            error_type = error_type_name(body_type if isinstance(body_type, str) else None)
        extra = split_known(parsed, _BODY_KEYS)
    elif text:
        plain = text.strip()
        # A plain-text body is the message; an HTML error page is not (it stays in ``body``).
        message = plain if plain and not plain.startswith("<") and len(plain) <= 500 else None
    return AnnotatedLlmError(
        kind=classify(error_type, message, status),
        status=status,
        message=message,
        type=error_type,
        retry_after=retry_after_seconds(headers),
        body=text,
        extra=extra,
    )


def stream_exception(name: str, payload: Mapping[str, Any]) -> AnnotatedLlmError:
    """An exception event inside a ``converse-stream`` body (``throttlingException`` and the like)."""
    message = _message_of(payload)
    status: Any = payload.get("originalStatusCode")
    kind = classify(name, message, None)
    if (
        name.lower() == "modelstreamerrorexception"
        and isinstance(status, int)
        and not isinstance(status, bool)
    ):
        if 400 <= status < 600:
            kind = classify_status(status)
    return AnnotatedLlmError(
        kind=kind,
        message=message,
        type=name,
        extra=split_known(payload, frozenset({"message", "Message", "p"})),
    )
