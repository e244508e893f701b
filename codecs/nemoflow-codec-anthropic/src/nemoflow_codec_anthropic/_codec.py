"""The ``anthropic-messages`` codec: the Anthropic Messages API, directly or through Bedrock / Vertex AI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nemoflow import AnnotatedLlmError, AnnotatedLlmRequest, AnnotatedLlmResponse, PayloadKind
from nemoflow.codec_support import decode_sse_stream

from . import _request, _response
from ._bedrock_stream import BedrockInvokeStreamDecoder
from ._routes import parse_route, route_of_url, url_for

__all__ = ["AnthropicMessagesCodec"]

_STREAM_EVENTS = frozenset(
    {
        "message_start", "message_delta", "message_stop", "content_block_start", "content_block_delta",
        "content_block_stop", "ping",
    }
)  # fmt: skip
_ANTHROPIC_MARKERS = frozenset({"anthropic_version", "system", "stop_sequences", "thinking"})
_FOREIGN_MARKERS = frozenset(
    {
        # OpenAI Chat Completions
        "max_completion_tokens", "n", "stream_options", "response_format", "frequency_penalty",
        "presence_penalty", "seed", "logprobs", "parallel_tool_calls",
        # Bedrock Converse
        "inferenceConfig", "toolConfig", "additionalModelRequestFields", "guardrailConfig",
        # Gemini
        "contents", "generationConfig",
    }
)  # fmt: skip
_FOREIGN_ROLES = frozenset({"system", "developer", "tool", "function"})
_ANTHROPIC_BLOCKS = frozenset(
    {"image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use"}
)
_CHOICE_TYPES = frozenset({"auto", "any", "tool", "none"})


def _looks_like_messages_request(payload: Mapping[str, Any], messages: list[Any]) -> bool:
    """Whether a body with a ``messages`` array is an Anthropic one (and not OpenAI, Converse, ...)."""
    if not _FOREIGN_MARKERS.isdisjoint(payload):
        return False
    anthropic = not _ANTHROPIC_MARKERS.isdisjoint(payload)
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") in _FOREIGN_ROLES:
            return False
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if not isinstance(block, Mapping) or "type" not in block:
                    return False  # Bedrock Converse blocks have no "type"
                anthropic = anthropic or block.get("type") in _ANTHROPIC_BLOCKS
    choice = payload.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") in _CHOICE_TYPES:
        anthropic = True
    tools = payload.get("tools")
    if isinstance(tools, list) and any(
        isinstance(tool, Mapping) and "input_schema" in tool for tool in tools
    ):
        anthropic = True
    model = payload.get("model")
    if "max_tokens" in payload and isinstance(model, str) and "claude" in model.lower():
        anthropic = True
    return anthropic


class AnthropicMessagesCodec:
    """Codec for the Anthropic Messages API.

    Routes: ``POST`` to any path ending in ``/v1/messages`` (api.anthropic.com and proxies under any
    base path; ``/v1/messages/count_tokens`` and ``/v1/messages/batches`` are not messages calls),
    Bedrock's ``/model/{modelId}/invoke`` and ``/model/{modelId}/invoke-with-response-stream`` (the same
    paths serve other model families, so :meth:`sniff` tells an Anthropic body by its
    ``anthropic_version``), and Vertex AI's ``…/publishers/anthropic/models/{model}:rawPredict`` and
    ``:streamRawPredict``. On Bedrock and Vertex AI the model comes from the URL and, on Bedrock, the
    streaming mode too.

    Anthropic reports token usage in every stream, so unlike OpenAI nothing is injected into requests.
    Bedrock's ``invoke-with-response-stream`` answers in AWS event-stream framing, which
    :meth:`decode_stream` does not unpack; its stream decoder does take the unpacked payload chunks
    (``{"bytes": "<base64 event>"}``).
    """

    name = "anthropic-messages"
    provider = "anthropic"

    __slots__ = ()

    def __repr__(self) -> str:
        return "AnthropicMessagesCodec()"

    def match_route(self, method: str, path: str) -> bool:
        """``POST`` to a Messages path (Anthropic, Bedrock invoke, Vertex AI raw predict)."""
        return method == "POST" and parse_route(path) is not None

    def sniff(self, payload: Mapping[str, Any]) -> PayloadKind | None:
        """Recognize Messages requests, responses, stream events and error bodies."""
        kind = payload.get("type")
        if kind == "message" and isinstance(payload.get("content"), list):
            return "response"
        if kind in _STREAM_EVENTS:
            return "stream_chunk"
        if kind == "error" and isinstance(payload.get("error"), Mapping):
            return "error"
        messages = payload.get("messages")
        if isinstance(messages, list) and _looks_like_messages_request(payload, messages):
            return "request"
        return None

    def decode(self, request: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmRequest:
        """Decode a Messages request body (model and streaming mode from ``url`` when the body lacks them)."""
        return _request.decode_request(request, url)

    def url_for(self, url: str, *, model: str | None = None, stream: bool | None = None) -> str:
        """``url`` moved to another model and/or streaming mode (Bedrock ``invoke`` routes, Vertex).

        There the model and the streaming mode live in the URL: the runtime calls this when a policy edits
        either, and sends the request there. api.anthropic.com URLs come back unchanged.
        """
        return url_for(url, model=model, stream=stream)

    def encode(
        self, annotated: AnnotatedLlmRequest, original: Mapping[str, Any], *, url: str | None = None
    ) -> Mapping[str, Any]:
        """Merge ``annotated`` over ``original`` (``original`` itself when nothing changed)."""
        return _request.encode_request(annotated, original, url)

    def decode_response(self, response: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a ``message`` object."""
        return _response.decode_response(response)

    def stream_decoder(self, *, url: str | None = None) -> _response.MessagesStreamDecoder:
        """A fresh decoder for one Messages event stream."""
        return _response.MessagesStreamDecoder()

    def byte_stream_decoder(self, *, url: str | None = None) -> BedrockInvokeStreamDecoder:
        """A decoder of Bedrock's ``invoke-with-response-stream`` body (AWS event-stream frames).

        The runtime uses it when a response is ``application/vnd.amazon.eventstream``; the first-party API
        and Vertex stream server-sent events (:meth:`stream_decoder`).
        """
        return BedrockInvokeStreamDecoder()

    def decode_stream(self, byte_chunks: Iterable[bytes], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a whole streamed body, in any chunking: SSE, or event-stream frames on Bedrock's route."""
        route = route_of_url(url)
        if route is not None and route.platform == "bedrock":
            decoder = self.byte_stream_decoder(url=url)
            for chunk in byte_chunks:
                decoder.feed(chunk)
            return decoder.finish()
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
        return _response.decode_error(status, headers, body)
