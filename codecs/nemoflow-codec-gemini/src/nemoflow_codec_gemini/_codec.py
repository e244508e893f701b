"""The ``gemini-generate-content`` codec: Gemini ``generateContent`` on Google AI Studio and Vertex AI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nemoflow import AnnotatedLlmError, AnnotatedLlmRequest, AnnotatedLlmResponse, PayloadKind
from nemoflow.codec_support import request_path

from . import _request, _response
from ._wire import match_path

__all__ = ["GeminiGenerateContentCodec"]


class GeminiGenerateContentCodec:
    """Codec for ``POST …/{model}:generateContent`` and ``…:streamGenerateContent``.

    Serves the Gemini API (``/v1beta/models/{m}``, ``/v1/models/{m}``, ``/v1beta/tunedModels/{m}``) and
    Vertex AI (``/v1/projects/{p}/locations/{l}/publishers/google/models/{m}``, ``v1beta1`` too, the
    express-mode ``/v1/publishers/google/models/{m}`` and tuned-model ``…/endpoints/{id}``), under any base
    path (gateways and proxies). The model and the streaming mode are named by the URL, not the body:
    :meth:`decode` reads them from ``url``, :meth:`encode` never writes them, and :meth:`url_for` gives
    the URL for an edited model or streaming mode.

    Gemini always reports usage in streams, so there is no stream-usage injection to switch off.
    """

    name = "gemini-generate-content"
    provider = "google"

    __slots__ = ()

    def __repr__(self) -> str:
        return "GeminiGenerateContentCodec()"

    def match_route(self, method: str, path: str) -> bool:
        """``POST`` to a ``…/models/{m}:generateContent`` or ``:streamGenerateContent`` path."""
        return method == "POST" and (path.endswith("enerateContent")) and match_path(path) is not None

    def sniff(self, payload: Mapping[str, Any]) -> PayloadKind | None:
        """Recognize generateContent requests, responses (and stream chunks, which look alike) and errors."""
        if isinstance(payload.get("contents"), list):
            return "request"
        if "candidates" in payload or "usageMetadata" in payload or "promptFeedback" in payload:
            return "response"
        error = payload.get("error")
        if isinstance(error, Mapping) and ("status" in error or "code" in error):
            return "error"
        return None

    def decode(self, request: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmRequest:
        """Decode a ``GenerateContentRequest`` body (the model and ``stream`` come from ``url``)."""
        return _request.decode_request(request, url)

    def encode(
        self, annotated: AnnotatedLlmRequest, original: Mapping[str, Any], *, url: str | None = None
    ) -> Mapping[str, Any]:
        """Merge ``annotated`` over ``original`` (``original`` itself when nothing changed).

        ``model`` and ``stream`` are not body fields on this API: with ``url`` given, an edit of either
        raises :class:`~nemoflow.EncodeError` (route it with :meth:`url_for`) instead of being lost.
        """
        return _request.encode_request(annotated, original, url)

    def url_for(self, url: str, *, model: str | None = None, stream: bool | None = None) -> str:
        """``url`` with its model and/or streaming method replaced (the rest, query included, kept).

        Switching to streaming adds ``alt=sse`` (so the reply comes as server-sent events); switching
        back removes it. A URL this codec does not route comes back unchanged.

        Args:
            url: The request URL (or path) of a generateContent call.
            model: The model to call instead, e.g. ``gemini-2.5-pro`` (a ``tunedModels/...`` or
                ``endpoints/...`` name replaces the collection too).
            stream: ``True`` for ``:streamGenerateContent``, ``False`` for ``:generateContent``.
        """
        path = request_path(url)
        match = match_path(path)
        if match is None:
            return url
        start = url.find(path) if path != "/" else -1
        if start == -1:
            return url
        collection, name, method = match["collection"], match["model"], match["method"]
        if model is not None:
            collection, _, name = model.rpartition("/")
            collection = collection or "models"
        if stream is not None:
            method = "streamGenerateContent" if stream else "generateContent"
        new_path = path[: match.start()] + f"/{collection}/{name}:{method}"
        rest = url[start + len(path) :]
        if stream is not None:
            rest = _with_alt_sse(rest, stream)
        return url[:start] + new_path + rest

    def decode_response(self, response: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a ``GenerateContentResponse`` (the model falls back to the one in ``url``)."""
        return _response.decode_response(response, url)

    def stream_decoder(self, *, url: str | None = None) -> _response.GeminiStreamDecoder:
        """A fresh decoder for one stream of ``GenerateContentResponse`` chunks."""
        return _response.GeminiStreamDecoder(url)

    def decode_stream(self, byte_chunks: Iterable[bytes], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a whole streamed body, SSE or the bare JSON array, in any chunking."""
        return _response.decode_stream(byte_chunks, url)

    def decode_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes | str | Mapping[str, Any] | None,
        *,
        url: str | None = None,
    ) -> AnnotatedLlmError:
        """Classify an error response; never raises."""
        return _response.decode_error(status, headers, body)


def _with_alt_sse(rest: str, stream: bool) -> str:
    """The query (and fragment) ``rest`` with ``alt=sse`` added for streaming or removed."""
    fragment = ""
    hash_at = rest.find("#")
    if hash_at != -1:
        rest, fragment = rest[:hash_at], rest[hash_at:]
    query = rest[1:] if rest.startswith("?") else rest
    params = [param for param in query.split("&") if param and param != "alt=sse"]
    if stream:
        params.append("alt=sse")
    return ("?" + "&".join(params) if params else "") + fragment
