"""The ``openai-chat`` codec: OpenAI Chat Completions and every OpenAI-compatible server."""

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

from . import _chat_request, _chat_response

__all__ = ["OpenAIChatCodec"]


class OpenAIChatCodec:
    """Codec for ``POST …/chat/completions``.

    Serves api.openai.com, Azure OpenAI (``/openai/deployments/{name}/chat/completions``, the model taken
    from the deployment when the body names none) and OpenAI-compatible servers under any base path:
    vLLM and LM Studio (``/v1``), Ollama (``/v1``), llama.cpp (``/v1`` or none), OpenRouter (``/api/v1``).

    Args:
        inject_stream_usage: When a streamed request has no ``stream_options``, add
            ``{"include_usage": true}`` so the server reports token counts. Turn it off for servers that
            reject ``stream_options``.
    """

    name = "openai-chat"
    provider = "openai"

    __slots__ = ("inject_stream_usage",)

    def __init__(self, *, inject_stream_usage: bool = True) -> None:
        self.inject_stream_usage = inject_stream_usage

    def __repr__(self) -> str:
        return f"OpenAIChatCodec(inject_stream_usage={self.inject_stream_usage})"

    def match_route(self, method: str, path: str) -> bool:
        """``POST`` to any path ending in ``/chat/completions``."""
        return method == "POST" and path.endswith("/chat/completions")

    def sniff(self, payload: Mapping[str, Any]) -> PayloadKind | None:
        """Recognize Chat Completions requests, responses, chunks and error bodies."""
        obj = payload.get("object")
        if obj == "chat.completion.chunk":
            return "stream_chunk"
        if obj == "chat.completion":
            return "response"
        choices = payload.get("choices")
        if isinstance(choices, list):
            first = choices[0] if choices else None
            if isinstance(first, Mapping) and "delta" in first:
                return "stream_chunk"
            if isinstance(first, Mapping) and "message" in first:
                return "response"
            return "stream_chunk" if "usage" in payload and not choices else None
        messages = payload.get("messages")
        if isinstance(messages, list) and "system" not in payload and "anthropic_version" not in payload:
            return "request"
        if isinstance(payload.get("error"), Mapping) and len(payload) == 1:
            return "error"
        return None

    def decode(self, request: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmRequest:
        """Decode a Chat Completions request body."""
        return _chat_request.decode_request(request, url)

    def encode(
        self, annotated: AnnotatedLlmRequest, original: Mapping[str, Any], *, url: str | None = None
    ) -> Mapping[str, Any]:
        """Merge ``annotated`` over ``original`` (``original`` itself when nothing changed)."""
        return _chat_request.encode_request(annotated, original, url, self.inject_stream_usage)

    def decode_response(self, response: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a ``chat.completion`` object."""
        return _chat_response.decode_response(response)

    def stream_decoder(self, *, url: str | None = None) -> _chat_response.ChatStreamDecoder:
        """A fresh decoder for one ``chat.completion.chunk`` stream."""
        return _chat_response.ChatStreamDecoder()

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
        return _chat_response.decode_error(status, headers, body)
