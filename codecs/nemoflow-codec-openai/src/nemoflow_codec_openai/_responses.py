"""The ``openai-responses`` codec: the OpenAI Responses API and servers that speak it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nemoflow import (
    AnnotatedLlmError,
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    PayloadKind,
)
from nemoflow.codec_support import decode_sse_stream

from . import _responses_request, _responses_response

__all__ = ["OpenAIResponsesCodec"]

_REQUEST_ONLY_KEYS = frozenset(
    {"instructions", "previous_response_id", "max_output_tokens", "conversation", "truncation", "include"}
)


class OpenAIResponsesCodec:
    """Codec for ``POST …/responses``.

    Serves api.openai.com (``/v1/responses``), Azure OpenAI (``/openai/v1/responses`` and
    ``/openai/responses?api-version=…``) and compatible servers such as llama.cpp (``/v1/responses``).
    Retrieving, cancelling or listing stored responses (``/responses/{id}``…) is not a model call and is not
    claimed.

    The Responses API always reports usage in its final stream event, so, unlike Chat Completions, nothing
    is ever added to a streamed request (its ``stream_options`` only knows ``include_obfuscation``).
    """

    name = "openai-responses"
    provider = "openai"

    __slots__ = ()

    def __repr__(self) -> str:
        return "OpenAIResponsesCodec()"

    def match_route(self, method: str, path: str) -> bool:
        """``POST`` to any path ending in ``/responses``."""
        return method == "POST" and path.endswith("/responses")

    def sniff(self, payload: Mapping[str, Any]) -> PayloadKind | None:
        """Recognize Responses requests, response objects, stream events and error bodies."""
        if payload.get("object") == "response":
            return "response"
        kind = payload.get("type")
        if isinstance(kind, str) and (
            kind.startswith("response.") or (kind == "error" and "sequence_number" in payload)
        ):
            return "stream_chunk"
        if "messages" in payload or "contents" in payload:
            return None
        items = payload.get("input")
        if isinstance(items, list) and items and all(isinstance(item, Mapping) for item in items):
            return "request"
        if "input" in payload or "previous_response_id" in payload or "prompt" in payload:
            if not payload.keys() <= {"model", "input", "dimensions", "encoding_format", "user"}:
                return "request"
        if payload.keys() & _REQUEST_ONLY_KEYS:
            return "request"
        if isinstance(payload.get("error"), Mapping) and len(payload) == 1:
            return "error"
        return None

    def decode(self, request: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmRequest:
        """Decode a Responses request body."""
        return _responses_request.decode_request(request, url)

    def encode(
        self, annotated: AnnotatedLlmRequest, original: Mapping[str, Any], *, url: str | None = None
    ) -> Mapping[str, Any]:
        """Merge ``annotated`` over ``original`` (``original`` itself when nothing changed)."""
        return _responses_request.encode_request(annotated, original, url)

    def decode_response(self, response: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a ``response`` object."""
        return _responses_response.decode_response(response)

    def stream_decoder(self, *, url: str | None = None) -> _responses_response.ResponsesStreamDecoder:
        """A fresh decoder for one Responses event stream."""
        return _responses_response.ResponsesStreamDecoder()

    def decode_stream(self, byte_chunks: Iterable[bytes], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a whole SSE response body, in any chunking."""
        return decode_sse_stream(self.stream_decoder(url=url), byte_chunks)

    def decode_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes | str | Mapping[str, Any] | None,
        *,
        url: str | None = None,
    ) -> AnnotatedLlmError:
        """Classify an error response; never raises."""
        return _responses_response.decode_error(status, headers, body)
