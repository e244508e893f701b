"""AWS event-stream framing for Bedrock: the shared decoder (``nemoflow.codec_support``), naming this codec.

The frame decoder itself lives in nemoflow's core, since Anthropic's Bedrock route
(``invoke-with-response-stream``) sends the same framing.
"""

from __future__ import annotations

from nemoflow.codec_support import DEFAULT_MAX_FRAME_BYTES, EventStreamMessage
from nemoflow.codec_support import EventStreamDecoder as _SharedDecoder

from ._common import CODEC

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "EventStreamDecoder", "EventStreamMessage"]


class EventStreamDecoder(_SharedDecoder):
    """The shared AWS event-stream frame decoder; its errors name the ``bedrock-converse`` codec."""

    __slots__ = ()

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        super().__init__(max_frame_bytes=max_frame_bytes, codec=CODEC)
