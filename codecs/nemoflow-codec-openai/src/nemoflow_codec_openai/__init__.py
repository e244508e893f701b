"""nemoflow codecs for OpenAI's APIs and OpenAI-compatible servers.

Registered under the ``nemoflow.codecs`` entry-point group as ``openai-chat`` and ``openai-embeddings``.
"""

from __future__ import annotations

from ._chat import OpenAIChatCodec
from ._embeddings import OpenAIEmbeddingsCodec
from ._responses import OpenAIResponsesCodec

__all__ = ["OpenAIChatCodec", "OpenAIEmbeddingsCodec", "OpenAIResponsesCodec"]
