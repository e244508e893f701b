"""nemoflow codec for the Anthropic Messages API.

Registered under the ``nemoflow.codecs`` entry-point group as ``anthropic-messages``. It serves
``POST …/v1/messages`` (api.anthropic.com and Anthropic-compatible proxies), Anthropic models on Amazon
Bedrock (``/model/{modelId}/invoke`` and ``/invoke-with-response-stream``) and on Google Vertex AI
(``…/publishers/anthropic/models/{model}:rawPredict`` and ``:streamRawPredict``).
"""

from __future__ import annotations

from ._codec import AnthropicMessagesCodec

__all__ = ["AnthropicMessagesCodec"]
