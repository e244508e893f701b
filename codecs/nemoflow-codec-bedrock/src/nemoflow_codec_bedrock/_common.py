"""Pieces shared by the request, response and stream modules of the ``bedrock-converse`` codec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from nemoflow import DecodeError
from nemoflow.codec_support import expect_array, expect_object, request_path

CODEC = "bedrock-converse"

CONVERSE_SUFFIX = "/converse"
CONVERSE_STREAM_SUFFIX = "/converse-stream"
_MODEL_MARKER = "/model/"

# Members of the Converse ``ContentBlock`` union that the annotated model names (Bedrock API reference,
# "ContentBlock"); a block is a JSON object with exactly one of these keys.
BLOCK_TYPES = frozenset(
    {
        "text", "image", "document", "video", "audio", "toolUse", "toolResult", "reasoningContent",
        "cachePoint", "guardContent", "citationsContent", "searchResult", "json",
    }
)  # fmt: skip

DOCUMENT_MEDIA_TYPES = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "txt": "text/plain",
    "md": "text/markdown",
}
VIDEO_MEDIA_TYPES = {
    "mkv": "video/x-matroska",
    "mov": "video/quicktime",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "flv": "video/x-flv",
    "mpeg": "video/mpeg",
    "mpg": "video/mpeg",
    "wmv": "video/x-ms-wmv",
    "three_gp": "video/3gpp",
}


def _reverse(table: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for fmt, media in table.items():
        out.setdefault(media, fmt)  # mpeg wins over mpg: the first listed format is the canonical one
    return out


DOCUMENT_FORMATS = _reverse(DOCUMENT_MEDIA_TYPES)
VIDEO_FORMATS = _reverse(VIDEO_MEDIA_TYPES)


def expect_mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    return expect_object(value, path, what, CODEC)


def expect_list(value: Any, path: str, what: str) -> Sequence[Any]:
    return expect_array(value, path, what, CODEC)


def expect_str(value: Any, path: str, what: str) -> str:
    """``value`` if it is a string, else a :class:`DecodeError` at ``path``."""
    if isinstance(value, str):
        return value
    raise DecodeError(f"{what} must be a string, got {type(value).__name__}", path=path, codec=CODEC)


def block_type(block: Mapping[str, Any], known: frozenset[str], path: str) -> str:
    """The union member a content block (or tool entry) carries: its first known key, else its first key."""
    first: str | None = None
    for key in block:
        if key in known:
            return str(key)
        if first is None and isinstance(key, str):
            first = key
    if first is None:
        raise DecodeError(
            "a content block must name its type (one key such as 'text')", path=path, codec=CODEC
        )
    return first


def split_route(path: str) -> tuple[str, bool] | None:
    """``(modelId as sent, streamed)`` for a Converse path ``…/model/{modelId}/converse[-stream]``."""
    if path.endswith(CONVERSE_STREAM_SUFFIX):
        streamed, head = True, path[: -len(CONVERSE_STREAM_SUFFIX)]
    elif path.endswith(CONVERSE_SUFFIX):
        streamed, head = False, path[: -len(CONVERSE_SUFFIX)]
    else:
        return None
    start = head.find(_MODEL_MARKER)
    if start == -1:
        return None
    model_id = head[start + len(_MODEL_MARKER) :]
    if not model_id:
        return None
    return model_id, streamed


def route_facts(url: str | None) -> tuple[str | None, bool]:
    """The model (URL-decoded ``{modelId}``) and the streaming flag a request URL implies."""
    if not url:
        return None, False
    route = split_route(request_path(url))
    if route is None:
        return None, False
    model_id, streamed = route
    return unquote(model_id), streamed


def converse_url_for(url: str, *, model: str | None = None, stream: bool | None = None) -> str:
    """``url`` with its ``{modelId}`` and/or Converse operation replaced (host and query kept).

    The model id is percent-encoded as the AWS SDKs send it (an ARN's ``:`` and ``/`` included). A URL
    that is not a Converse route comes back unchanged.
    """
    path = request_path(url)
    route = split_route(path)
    start = url.find(path) if path != "/" else -1
    if route is None or start == -1:
        return url
    model_id, streamed = route
    if model is not None:
        model_id = quote(model, safe="")
    if stream is not None:
        streamed = stream
    head = path[: path.find(_MODEL_MARKER)]
    suffix = CONVERSE_STREAM_SUFFIX if streamed else CONVERSE_SUFFIX
    return url[:start] + f"{head}{_MODEL_MARKER}{model_id}{suffix}" + url[start + len(path) :]
