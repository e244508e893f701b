"""Building blocks for codec authors (built-in and third-party codecs use the same ones).

Nothing here does I/O. Everything that can fail raises :class:`~nemoflow.DecodeError` with a JSON path.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import orjson

from nemoflow._codec import StreamDecoder, request_path
from nemoflow._errors import CodecError, DecodeError, EncodeError, json_path
from nemoflow._eventstream import (
    DEFAULT_MAX_FRAME_BYTES,
    EventStreamDecoder,
    EventStreamMessage,
    FramedStreamDecoder,
)
from nemoflow._model import _EMPTY, AnnotatedLlmResponse, ErrorKind, constructor, is_pristine, mark_pristine
from nemoflow._sse import SSEDecoder

__all__ = [
    "COMPACT_EVERY",
    "DEFAULT_MAX_FRAME_BYTES",
    "ERROR_BODY_LIMIT",
    "STREAM_TEXT_LIMIT",
    "TEXT_BLOCK",
    "EventStreamDecoder",
    "EventStreamMessage",
    "FramedStreamDecoder",
    "apply_extra",
    "classify_status",
    "compact_text",
    "constructor",
    "decode_sse_stream",
    "dump_json",
    "encode_boundary",
    "error_body_text",
    "expect_array",
    "expect_object",
    "is_pristine",
    "json_equal",
    "json_path",
    "mark_pristine",
    "optional_bool",
    "optional_int",
    "optional_number",
    "optional_str",
    "parse_json_object",
    "request_path",
    "retry_after_seconds",
    "set_or_pop",
    "split_known",
    "write_if_changed",
]

ERROR_BODY_LIMIT = 4096
"""Error bodies are kept up to this many bytes (UTF-8), so a huge HTML error page never bloats a span."""

STREAM_TEXT_LIMIT = 4 * 1024 * 1024
"""Default for a stream decoder's ``text_limit``: characters kept per text of a streamed reply."""

COMPACT_EVERY = 256
"""Stream decoders join their text pieces every this many events (see :func:`compact_text`)."""

TEXT_BLOCK = 64 * 1024
"""Characters per block of gathered stream text that :func:`compact_text` no longer rejoins."""

_FLOAT_MAX = sys.float_info.max
_P = ParamSpec("_P")
_R = TypeVar("_R")


def compact_text(parts: list[str], limit: int) -> bool:
    """Join a stream decoder's text pieces in place, keeping at most ``limit`` characters in all.

    A streamed reply arrives as thousands of small pieces; kept as they are, each costs an object header
    (around 50 bytes) on top of its characters. Decoders call this every :data:`COMPACT_EVERY` events so
    a long stream costs memory in proportion to its text, bounded by ``limit``. Text already gathered in
    blocks of :data:`TEXT_BLOCK` characters is left where it is, so long text is not copied again at
    every compaction (which would briefly hold it twice); ``"".join(parts)`` is the text.

    Returns:
        Whether characters beyond ``limit`` were cut.
    """
    merged: list[str] = []
    run: list[str] = []  # consecutive pieces shorter than a block: joined into one string
    for part in parts:
        if len(part) < TEXT_BLOCK:
            run.append(part)
            continue
        if run:
            merged.append("".join(run))
            run = []
        merged.append(part)
    if run:
        merged.append("".join(run))
    parts[:] = merged
    excess = sum(map(len, parts)) - limit
    if excess <= 0:
        return False
    while excess > 0:
        last = parts[-1]
        if len(last) <= excess:
            parts.pop()
            excess -= len(last)
        else:
            parts[-1] = last[: len(last) - excess]
            excess = 0
    return True


def dump_json(value: Any, path: str = "$", codec: str | None = None) -> str:
    """Serialize ``value`` compactly; integers beyond 64 bits fall back to the standard library.

    Raises:
        EncodeError: ``value`` is not JSON data (or nests too deeply).
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        pass
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"not JSON data: {exc}", path=path, codec=codec) from exc


def encode_boundary(codec: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate an ``encode_*(obj, path, ...)`` helper so a foreign error becomes an :class:`EncodeError`.

    An annotated object edited with ``dataclasses.replace`` can hold a value of the wrong type (a number
    where text belongs); the error then names the object's JSON path instead of escaping as a TypeError.
    """

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return function(*args, **kwargs)
            except CodecError:
                raise
            except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
                path = args[1] if len(args) > 1 and isinstance(args[1], str) else "$"
                raise EncodeError(f"cannot encode this value: {exc}", path=path, codec=codec) from exc

        return guarded

    return decorate


def split_known(raw: Mapping[str, Any], known: frozenset[str]) -> Mapping[str, Any]:
    """The keys of ``raw`` not in ``known``: what goes to ``extra`` (a shared empty mapping when none)."""
    if raw.keys() <= known:
        return _EMPTY
    return {key: value for key, value in raw.items() if key not in known}


def json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values, telling apart what Python's ``==`` merges (``true``/``1``, ``1``/``1.0``)."""
    if left is right:
        return True
    if type(left) is not type(right):
        both_mappings = isinstance(left, Mapping) and isinstance(right, Mapping)
        both_arrays = isinstance(left, list | tuple) and isinstance(right, list | tuple)
        if not (both_mappings or both_arrays):
            return False
    if isinstance(left, Mapping):
        return left.keys() == right.keys() and all(
            json_equal(value, right[key]) for key, value in left.items()
        )
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def set_or_pop(out: dict[str, Any], key: str, value: Any) -> None:
    """Set ``out[key] = value``, or remove ``key`` when ``value`` is ``None``."""
    if value is None:
        out.pop(key, None)
    else:
        out[key] = value


def write_if_changed(out: dict[str, Any], key: str, new: Any, old: Any, merging: bool) -> None:
    """Merge one field: when ``merging`` and ``new`` equals ``old`` (JSON-strict), leave ``out`` alone.

    That keeps what the caller sent byte for byte, an explicit ``null`` included; otherwise
    :func:`set_or_pop` writes the new value.
    """
    if merging and json_equal(new, old):
        return
    set_or_pop(out, key, new)


def apply_extra(out: dict[str, Any], new_extra: Mapping[str, Any], old_extra: Mapping[str, Any]) -> None:
    """Write an edited ``extra`` into ``out``: removed keys are dropped, added or changed keys set."""
    if new_extra is old_extra:
        return
    for key in old_extra:
        if key not in new_extra:
            out.pop(key, None)
    for key, value in new_extra.items():
        if key not in old_extra or not json_equal(old_extra[key], value):
            out[key] = value


def _type_error(what: str, value: Any, path: str, codec: str | None) -> DecodeError:
    return DecodeError(f"expected {what}, got {type(value).__name__}", path=path, codec=codec)


def expect_object(value: Any, path: str, what: str, codec: str | None = None) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else a :class:`DecodeError` naming ``what`` at ``path``."""
    if type(value) is dict or isinstance(value, Mapping):
        return value
    raise DecodeError(f"{what} must be a JSON object, got {type(value).__name__}", path=path, codec=codec)


def expect_array(value: Any, path: str, what: str, codec: str | None = None) -> Sequence[Any]:
    """``value`` if it is a JSON array, else a :class:`DecodeError` naming ``what`` at ``path``."""
    if type(value) is list or isinstance(value, list | tuple):
        return value
    raise DecodeError(f"{what} must be a JSON array, got {type(value).__name__}", path=path, codec=codec)


def optional_str(value: Any, path: str, codec: str | None = None) -> str | None:
    """``value`` if it is a string or ``None``; else a :class:`DecodeError` at ``path``."""
    if value is None or isinstance(value, str):
        return value
    raise _type_error("a string", value, path, codec)


def optional_int(value: Any, path: str, codec: str | None = None) -> int | None:
    """``value`` if it is an integer (not a bool) or ``None``; integral floats (``5.0``) count as integers."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _type_error("an integer", value, path, codec)


def optional_number(value: Any, path: str, codec: str | None = None) -> float | None:
    """``value`` if it is a finite number (not a bool) or ``None``."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if -_FLOAT_MAX <= value <= _FLOAT_MAX:  # exact comparison: no overflow for huge integers
            return value
        raise DecodeError("number out of range", path=path, codec=codec)
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise _type_error("a number", value, path, codec)


def optional_bool(value: Any, path: str, codec: str | None = None) -> bool | None:
    """``value`` if it is a bool or ``None``."""
    if value is None or isinstance(value, bool):
        return value
    raise _type_error("a boolean", value, path, codec)


def parse_json_object(data: str | bytes, path: str = "$", codec: str | None = None) -> Any:
    """Parse JSON text; malformed input becomes a :class:`DecodeError` at ``path``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}", path=path, codec=codec) from exc


def decode_sse_stream(
    decoder: StreamDecoder,
    byte_chunks: Iterable[bytes],
    *,
    max_line_bytes: int = 1024 * 1024,
) -> AnnotatedLlmResponse:
    """Drive ``decoder`` with the server-sent events found in ``byte_chunks`` and return its result."""
    sse = SSEDecoder(max_line_bytes=max_line_bytes)
    for chunk in byte_chunks:
        for event in sse.feed(chunk):
            decoder.feed(event.data, event.event)
    for event in sse.finish():
        decoder.feed(event.data, event.event)
    return decoder.finish()


def error_body_text(body: bytes | str | Mapping[str, Any] | None) -> str | None:
    """The error body as text, cut to :data:`ERROR_BODY_LIMIT` bytes on a character boundary."""
    if body is None:
        return None
    if isinstance(body, Mapping):
        try:
            raw = orjson.dumps(body, default=str)
        except TypeError:  # beyond orjson (integers over 64 bits, deep nesting)
            try:
                raw = json.dumps(body, default=str, ensure_ascii=False).encode("utf-8", "replace")
            except (TypeError, ValueError, RecursionError):
                raw = f"<error body of type {type(body).__name__} that cannot be shown as JSON>".encode()
    elif isinstance(body, str):
        raw = body.encode("utf-8", "replace")
    else:
        raw = bytes(body)
    if len(raw) <= ERROR_BODY_LIMIT:
        return raw.decode("utf-8", "replace")
    return raw[:ERROR_BODY_LIMIT].decode("utf-8", "ignore")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def retry_after_seconds(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (delta seconds or an HTTP date)."""
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            value = float(millis)
        except ValueError:
            pass
        else:
            if math.isfinite(value) and value >= 0:
                return value / 1000.0
    seconds = _header(headers, "retry-after")
    if seconds is None:
        return None
    seconds = seconds.strip()
    try:
        value = float(seconds)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(seconds)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - now())
    return value if math.isfinite(value) and value >= 0 else None


def classify_status(status: int) -> ErrorKind:
    """The error kind an HTTP status implies when the body says nothing more specific."""
    if status == 401:
        return ErrorKind.AUTHENTICATION
    if status == 403:
        return ErrorKind.PERMISSION
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status in (408, 504):
        return ErrorKind.TIMEOUT
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if 500 <= status < 600:
        return ErrorKind.SERVER
    if 400 <= status < 500:
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.UNKNOWN
