"""The ``bedrock-converse`` codec: Amazon Bedrock Runtime ``Converse`` and ``ConverseStream``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nemoflow import AnnotatedLlmError, AnnotatedLlmRequest, AnnotatedLlmResponse, PayloadKind

from . import _errors, _request, _response
from ._common import converse_url_for, route_facts, split_route
from ._eventstream import DEFAULT_MAX_FRAME_BYTES

__all__ = ["BedrockConverseCodec"]

_ERROR_KEYS = frozenset({"message", "Message", "__type"})


class BedrockConverseCodec:
    """Codec for ``POST /model/{modelId}/converse`` and ``POST /model/{modelId}/converse-stream``.

    The request body names neither the model nor the streaming mode: the model is the URL-decoded
    ``{modelId}`` (a model id such as ``anthropic.claude-3-5-sonnet-20240620-v1:0``, or an inference-profile
    or provisioned-model ARN), and ``/converse-stream`` means streamed. Pass the request URL as ``url=``
    to every method to get them; ``encode`` never writes them into the body (and refuses an edit of
    either, which only a different URL could express). Bedrock reports usage on every stream, so there is
    no stream-usage injection.

    ``converse-stream`` replies are AWS event-stream frames (``application/vnd.amazon.eventstream``),
    not server-sent events: :meth:`decode_stream` takes the raw body, and :meth:`byte_stream_decoder`
    gives an incremental decoder of it (``feed(bytes)``, ``finish()``) for a transport that tees the
    stream. :meth:`stream_decoder` gives the per-event decoder (``feed(payload, event_type)``).

    Args:
        max_frame_bytes: Largest event-stream frame accepted before the stream is declared corrupt.
    """

    name = "bedrock-converse"
    provider = "aws.bedrock"

    __slots__ = ("max_frame_bytes",)

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes

    def __repr__(self) -> str:
        return f"BedrockConverseCodec(max_frame_bytes={self.max_frame_bytes})"

    def match_route(self, method: str, path: str) -> bool:
        """``POST`` to ``…/model/{modelId}/converse`` or ``…/model/{modelId}/converse-stream``."""
        return method == "POST" and split_route(path) is not None

    def sniff(self, payload: Mapping[str, Any]) -> PayloadKind | None:
        """Recognize Converse requests, responses, stream events and error bodies."""
        if isinstance(payload.get("output"), Mapping) or (
            "stopReason" in payload and "usage" in payload and "metrics" in payload
        ):
            return "response"
        keys = [key for key in payload if key != "p"]
        if len(keys) == 1 and (keys[0] in _response.EVENT_NAMES or keys[0] in _response.EXCEPTION_NAMES):
            return "stream_chunk"
        if "contentBlockIndex" in payload or "stopReason" in payload:
            return "stream_chunk"
        if ("usage" in payload and "metrics" in payload) or (keys == ["role"]):
            return "stream_chunk"
        if _request.looks_like_request(payload):
            return "request"
        if payload and set(payload) <= _ERROR_KEYS and ("message" in payload or "Message" in payload):
            return "error"
        return None

    def decode(self, request: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmRequest:
        """Decode a Converse request body (model and ``stream`` from ``url``)."""
        return _request.decode_request(request, url)

    def url_for(self, url: str, *, model: str | None = None, stream: bool | None = None) -> str:
        """``url`` moved to another model and/or to ``converse`` / ``converse-stream``.

        The model and the streaming mode live in the URL: the runtime calls this when a policy edits
        either, and sends the request there (same host, query kept).
        """
        return converse_url_for(url, model=model, stream=stream)

    def encode(
        self, annotated: AnnotatedLlmRequest, original: Mapping[str, Any], *, url: str | None = None
    ) -> Mapping[str, Any]:
        """Merge ``annotated`` over ``original`` (``original`` itself when nothing changed)."""
        return _request.encode_request(annotated, original, url)

    def decode_response(self, response: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a Converse response body (``model`` from ``url``; Converse responses carry no id)."""
        return _response.decode_response(response, route_facts(url)[0])

    def stream_decoder(self, *, url: str | None = None) -> _response.ConverseStreamDecoder:
        """A fresh per-event decoder: ``feed(payload_json, event_type)``, then ``finish()``."""
        return _response.ConverseStreamDecoder(route_facts(url)[0])

    def byte_stream_decoder(self, *, url: str | None = None) -> _response.ConverseByteStreamDecoder:
        """A fresh decoder of the raw event-stream body: ``feed(bytes)`` as chunks pass, then ``finish()``."""
        return _response.ConverseByteStreamDecoder(route_facts(url)[0], max_frame_bytes=self.max_frame_bytes)

    def decode_stream(self, byte_chunks: Iterable[bytes], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a whole ``converse-stream`` body (event-stream frames), in any chunking."""
        decoder = self.byte_stream_decoder(url=url)
        for chunk in byte_chunks:
            decoder.feed(chunk)
        return decoder.finish()

    def decode_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes | str | Mapping[str, Any] | None,
        *,
        url: str | None = None,
    ) -> AnnotatedLlmError:
        """Classify a Bedrock error response; never raises."""
        return _errors.decode_error(status, headers, body)
