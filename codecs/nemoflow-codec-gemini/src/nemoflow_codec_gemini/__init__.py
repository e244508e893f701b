"""nemoflow codec for Gemini ``generateContent`` (Google AI Studio and Vertex AI).

Registered under the ``nemoflow.codecs`` entry-point group as ``gemini-generate-content``.
"""

from __future__ import annotations

from ._codec import GeminiGenerateContentCodec

__all__ = ["GeminiGenerateContentCodec"]
