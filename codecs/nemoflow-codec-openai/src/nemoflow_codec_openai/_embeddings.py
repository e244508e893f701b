"""The ``openai-embeddings`` codec: ``POST …/embeddings`` (OpenAI, Azure and compatible servers).

Wire reference: OpenAI API reference, "Create embeddings" and "The embedding object". Response vectors are
never copied into the annotated response: only their count and dimension are.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from nemoflow import (
    AnnotatedLlmError,
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    DecodeError,
    EncodeError,
    FinishReason,
    GenerationParams,
    PayloadKind,
    Usage,
)
from nemoflow.codec_support import (
    apply_extra,
    decode_sse_stream,
    encode_boundary,
    is_pristine,
    json_equal,
    mark_pristine,
    optional_int,
    optional_str,
    split_known,
)

from ._chat_request import azure_deployment
from ._chat_response import decode_error

__all__ = ["OpenAIEmbeddingsCodec"]

CODEC = "openai-embeddings"
_REQUEST_KEYS = frozenset({"model", "input", "dimensions", "encoding_format"})
_RESPONSE_KEYS = frozenset({"data", "model", "usage", "id"})
_REQUEST_SHAPE = frozenset({"model", "input", "dimensions", "encoding_format", "user"})

EmbeddingInput = str | tuple[int, ...]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_inputs(raw: Any) -> tuple[EmbeddingInput, ...]:
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list):
        raise DecodeError("input must be a string or an array", path="$.input", codec=CODEC)
    if raw and all(_is_int(item) for item in raw):
        return (tuple(raw),)  # one token array
    items: list[EmbeddingInput] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            items.append(item)
        elif isinstance(item, list) and all(_is_int(token) for token in item):
            items.append(tuple(item))
        else:
            raise DecodeError(
                "each input must be a string or an array of token ids", path=f"$.input[{i}]", codec=CODEC
            )
    return tuple(items)


def _encode_inputs(inputs: tuple[EmbeddingInput, ...], original: Any) -> Any:
    if len(inputs) == 1 and isinstance(inputs[0], str) and isinstance(original, str):
        return inputs[0]
    if len(inputs) == 1 and isinstance(inputs[0], tuple) and original and all(_is_int(t) for t in original):
        return list(inputs[0])
    return [item if isinstance(item, str) else list(item) for item in inputs]


class _NoStreamDecoder:
    """Embeddings are never streamed; any event fed is an error."""

    __slots__ = ()

    def feed(self, data: str | bytes, event: str | None = None) -> None:
        raise DecodeError("embeddings responses are not streamed", path="$", codec=CODEC)

    def finish(self) -> AnnotatedLlmResponse:
        return AnnotatedLlmResponse(operation="embeddings", finish_reason=FinishReason.ERROR)


def _vector_dimension(vector: Any, path: str) -> int:
    if isinstance(vector, list):
        return len(vector)
    if isinstance(vector, str):  # encoding_format=base64: little-endian float32
        try:
            return len(binascii.a2b_base64(vector)) // 4
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise DecodeError("embedding is not valid base64", path=path, codec=CODEC) from exc
    raise DecodeError("embedding must be an array or a base64 string", path=path, codec=CODEC)


@encode_boundary(CODEC)
def _merge(
    annotated: AnnotatedLlmRequest, path: str, original: Mapping[str, Any], old: AnnotatedLlmRequest
) -> Mapping[str, Any]:
    if annotated.messages or annotated.tools or annotated.stream:
        raise EncodeError("embeddings requests have no messages, tools or streaming", path="$", codec=CODEC)
    out = dict(original)
    if annotated.model != old.model:
        if annotated.model is None:
            out.pop("model", None)
        else:
            out["model"] = annotated.model
    if annotated.inputs != old.inputs:
        if annotated.inputs is None:
            raise EncodeError("an embeddings request needs inputs", path="$.input", codec=CODEC)
        out["input"] = _encode_inputs(annotated.inputs, original.get("input"))
    for key in ("dimensions", "encoding_format"):
        value = getattr(annotated.params, key)
        if value != getattr(old.params, key):
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
    apply_extra(out, annotated.extra, old.extra)
    return original if json_equal(out, original) else out


class OpenAIEmbeddingsCodec:
    """Codec for ``POST …/embeddings`` (api.openai.com, Azure deployments, compatible servers)."""

    name = "openai-embeddings"
    provider = "openai"

    __slots__ = ()

    def __repr__(self) -> str:
        return "OpenAIEmbeddingsCodec()"

    def match_route(self, method: str, path: str) -> bool:
        """``POST`` to any path ending in ``/embeddings``."""
        return method == "POST" and path.endswith("/embeddings")

    def sniff(self, payload: Mapping[str, Any]) -> PayloadKind | None:
        """Recognize embeddings requests and responses."""
        if payload.get("object") == "list" and isinstance(payload.get("data"), list):
            data = payload["data"]
            if not data or (isinstance(data[0], Mapping) and data[0].get("object") == "embedding"):
                return "response"
        if "input" in payload and set(payload) <= _REQUEST_SHAPE:
            return "request"
        return None

    def decode(self, request: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmRequest:
        """Decode an embeddings request body."""
        if not isinstance(request, Mapping):
            raise DecodeError("the request body must be a JSON object", path="$", codec=CODEC)
        if "input" not in request:
            raise DecodeError("an embeddings request needs 'input'", path="$.input", codec=CODEC)
        model = optional_str(request.get("model"), "$.model", CODEC) or azure_deployment(url)
        params = GenerationParams(
            dimensions=optional_int(request.get("dimensions"), "$.dimensions", CODEC),
            encoding_format=optional_str(request.get("encoding_format"), "$.encoding_format", CODEC),
        )
        return mark_pristine(
            AnnotatedLlmRequest(
                model=model,
                inputs=_decode_inputs(request["input"]),
                params=params,
                operation="embeddings",
                extra=split_known(request, _REQUEST_KEYS),
                raw=request,
            )
        )

    def encode(
        self, annotated: AnnotatedLlmRequest, original: Mapping[str, Any], *, url: str | None = None
    ) -> Mapping[str, Any]:
        """Merge ``annotated`` over ``original`` (``original`` itself when nothing changed)."""
        if not isinstance(original, Mapping):
            raise EncodeError("the original request must be a JSON object", path="$", codec=CODEC)
        if is_pristine(annotated) and annotated.raw is original:
            return original
        try:
            old = self.decode(original, url=url)
        except DecodeError as exc:
            raise EncodeError(
                f"the original request does not decode: {exc.message}", path=exc.path, codec=CODEC
            ) from exc
        return _merge(annotated, "$", original, old)

    def decode_response(self, response: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode an embeddings ``list`` response: usage, vector count and dimension."""
        if not isinstance(response, Mapping):
            raise DecodeError("the response body must be a JSON object", path="$", codec=CODEC)
        data = response.get("data")
        if data is None:
            data = []
        if not isinstance(data, list):
            raise DecodeError("data must be a JSON array", path="$.data", codec=CODEC)
        dimension: int | None = None
        for i, item in enumerate(data):
            if not isinstance(item, Mapping):
                raise DecodeError(
                    "an embedding entry must be a JSON object", path=f"$.data[{i}]", codec=CODEC
                )
            if dimension is None and "embedding" in item:
                dimension = _vector_dimension(item["embedding"], f"$.data[{i}].embedding")
        usage = Usage()
        raw_usage = response.get("usage")
        if raw_usage is not None:
            if not isinstance(raw_usage, Mapping):
                raise DecodeError("usage must be a JSON object", path="$.usage", codec=CODEC)
            prompt = optional_int(raw_usage.get("prompt_tokens"), "$.usage.prompt_tokens", CODEC)
            total = optional_int(raw_usage.get("total_tokens"), "$.usage.total_tokens", CODEC)
            usage = Usage(
                prompt_tokens=prompt,
                total_tokens=total if total is not None else prompt,
                extra=split_known(raw_usage, frozenset({"prompt_tokens", "total_tokens"})),
            )
        return AnnotatedLlmResponse(
            id=optional_str(response.get("id"), "$.id", CODEC),
            model=optional_str(response.get("model"), "$.model", CODEC),
            finish_reason=FinishReason.STOP,
            usage=usage,
            operation="embeddings",
            embedding_count=len(data),
            embedding_dimension=dimension,
            extra=split_known(response, _RESPONSE_KEYS),
        )

    def stream_decoder(self, *, url: str | None = None) -> _NoStreamDecoder:
        """Embeddings are not streamed: the decoder rejects every event."""
        return _NoStreamDecoder()

    def decode_stream(self, byte_chunks: Iterable[bytes], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Embeddings are not streamed: any event is a :class:`~nemoflow.DecodeError`."""
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
        return decode_error(status, headers, body)
