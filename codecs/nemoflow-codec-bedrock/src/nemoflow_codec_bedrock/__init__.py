"""nemoflow codec for Amazon Bedrock's Converse API.

Registered under the ``nemoflow.codecs`` entry-point group as ``bedrock-converse``. Besides the codec,
the package exports the incremental decoders of ``converse-stream`` bodies: the AWS event-stream frame
decoder (:class:`EventStreamDecoder`), the per-event reply assembler (:class:`ConverseStreamDecoder`) and
the raw-body decoder combining both (:class:`ConverseByteStreamDecoder`).
"""

from __future__ import annotations

from ._codec import BedrockConverseCodec
from ._eventstream import EventStreamDecoder, EventStreamMessage
from ._response import ConverseByteStreamDecoder, ConverseStreamDecoder

__all__ = [
    "BedrockConverseCodec",
    "ConverseByteStreamDecoder",
    "ConverseStreamDecoder",
    "EventStreamDecoder",
    "EventStreamMessage",
]
