"""Anthropic Messages streamed through Bedrock's ``invoke-with-response-stream``.

Bedrock does not send server-sent events here: the body is AWS event-stream framing
(``application/vnd.amazon.eventstream``). Each ``:event-type: chunk`` frame carries a JSON payload
``{"bytes": "<base64>"}`` whose decoded bytes are one Anthropic Messages stream event (``message_start``,
``content_block_delta``, ..., ``message_stop``, the last one with Bedrock's
``amazon-bedrock-invocationMetrics``). Failures arrive as ``:message-type: exception`` frames
(``:exception-type`` such as ``throttlingException``, payload ``{"message": ...}``) or ``error`` frames
(``:error-code`` / ``:error-message``). Wire references: Amazon Bedrock "InvokeModelWithResponseStream"
(``ResponseStream``: ``chunk.bytes``, the exception members) and the anthropic SDK's Bedrock client, which
unwraps exactly this.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import Any

import orjson

from nemoflow import AnnotatedLlmError, AnnotatedLlmResponse, DecodeError, ErrorKind
from nemoflow.codec_support import DEFAULT_MAX_FRAME_BYTES, EventStreamMessage, FramedStreamDecoder

from ._request import CODEC
from ._response import MessagesStreamDecoder

__all__ = ["BedrockInvokeStreamDecoder"]


class BedrockInvokeStreamDecoder(FramedStreamDecoder):
    """Decodes an ``invoke-with-response-stream`` body (event-stream frames of base64 Messages events).

    ``feed(chunk)`` takes the body's bytes in any chunking; ``finish()`` returns the reply assembled so
    far. A corrupt frame or event raises :class:`~nemoflow.DecodeError` from the ``feed`` that completes
    it and every other frame is still used; when the frame boundaries are lost, the rest is ignored and
    the reply carries the framing error.
    """

    __slots__ = ()

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        """Start an empty stream."""
        super().__init__(max_frame_bytes=max_frame_bytes, codec=CODEC)
        self._events: MessagesStreamDecoder = MessagesStreamDecoder()

    def _dispatch(self, message: EventStreamMessage) -> None:
        message_type = message.header_str(":message-type") or "event"
        if message_type == "event":
            if message.header_str(":event-type") == "chunk":
                event = self._chunk_event(message.payload)
                if event is not None:
                    self._events.feed(*event)
            return
        if message_type == "exception":
            name = message.header_str(":exception-type") or "exception"
            payload = _json_object(message.payload)
            text = payload.get("message") or payload.get("Message")
            self._fail(name, text if isinstance(text, str) else None)
        elif message_type == "error":
            self._fail(message.header_str(":error-code") or "error", message.header_str(":error-message"))

    @staticmethod
    def _chunk_event(payload: bytes) -> tuple[bytes, str | None] | None:
        """The Messages event a ``chunk`` frame carries: its JSON bytes and its ``type``."""
        wrapper = _json_object(payload)
        encoded = wrapper.get("bytes")
        if encoded is None:
            return None
        if not isinstance(encoded, str):
            raise DecodeError("chunk.bytes must be a base64 string", path="$.bytes", codec=CODEC)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"chunk.bytes is not base64: {exc}", path="$.bytes", codec=CODEC) from exc
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"chunk.bytes is not a JSON event: {exc}", path="$.bytes", codec=CODEC) from exc
        event_type = event.get("type") if isinstance(event, dict) else None
        return raw, event_type if isinstance(event_type, str) else None

    def _fail(self, name: str, message: str | None) -> None:
        """Feed the failure as the first-party API reports one mid-stream (an ``error`` event).

        Frames name exceptions as ``ResponseStream`` members (``throttlingException``); the error type
        is the exception's own name (``ThrottlingException``), as Bedrock's HTTP errors spell it.
        """
        error_type = name[:1].upper() + name[1:]
        error = {"type": "error", "error": {"type": error_type, "message": message or name}}
        self._events.feed(orjson.dumps(error), "error")

    def finish(self) -> AnnotatedLlmResponse:
        """The reply assembled so far."""
        result = self._events.finish()
        framing_error = self._frames.error
        if framing_error is None or result.error is not None:
            return result
        error = AnnotatedLlmError(kind=ErrorKind.UNKNOWN, message=framing_error, type="EventStreamError")
        return replace(result, error=error)


def _json_object(payload: bytes) -> dict[str, Any]:
    if not payload.strip():
        return {}
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"event-stream payload is not JSON: {exc}", path="$", codec=CODEC) from exc
    if not isinstance(value, dict):
        raise DecodeError("an event-stream payload must be a JSON object", path="$", codec=CODEC)
    return value
