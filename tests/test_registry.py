"""Codec discovery through entry points, explicit registration, and routing by method + URL (+ body)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import nemoflow
from nemoflow._codec import _reset_registry, request_path
from nemoflow_codec_openai import OpenAIChatCodec, OpenAIEmbeddingsCodec


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    _reset_registry()
    yield
    _reset_registry()


def test_entry_points_register_the_openai_codecs() -> None:
    found = nemoflow.codecs()
    assert isinstance(found["openai-chat"], OpenAIChatCodec)
    assert isinstance(found["openai-embeddings"], OpenAIEmbeddingsCodec)
    for name, codec in found.items():
        assert isinstance(codec, nemoflow.LlmCodec)
        assert codec.name == name


def test_discovery_is_cached() -> None:
    assert nemoflow.get_codec("openai-chat") is nemoflow.get_codec("openai-chat")


def test_unknown_codec_names_the_known_ones() -> None:
    with pytest.raises(nemoflow.ConfigurationError, match="openai-chat"):
        nemoflow.get_codec("nope")


def test_explicit_registration_wins_and_can_be_undone() -> None:
    custom = OpenAIChatCodec(inject_stream_usage=False)
    nemoflow.register_codec("openai-chat", custom)
    assert nemoflow.get_codec("openai-chat") is custom
    nemoflow.unregister_codec("openai-chat")
    assert "openai-chat" not in nemoflow.codecs()
    assert nemoflow.resolve_codec("POST", "https://api.openai.com/v1/chat/completions") is None


def test_registering_a_non_codec_is_a_configuration_error() -> None:
    with pytest.raises(nemoflow.ConfigurationError):
        nemoflow.register_codec("bad", object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1/chat/completions",
        "https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        "https://myres.openai.azure.com/openai/v1/chat/completions",
        "http://127.0.0.1:8000/v1/chat/completions",  # vLLM, LM Studio
        "http://localhost:11434/v1/chat/completions",  # Ollama
        "http://127.0.0.1:8080/chat/completions",  # llama.cpp without /v1
        "https://openrouter.ai/api/v1/chat/completions",
        "https://api.groq.com/openai/v1/chat/completions/",
        "/v1/chat/completions",
    ],
)
def test_chat_routes(url: str) -> None:
    codec = nemoflow.resolve_codec("POST", url)
    assert codec is not None and codec.name == "openai-chat"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1/embeddings",
        "https://myres.openai.azure.com/openai/deployments/te3/embeddings?api-version=2024-10-21",
        "http://localhost:11434/v1/embeddings",
    ],
)
def test_embedding_routes(url: str) -> None:
    codec = nemoflow.resolve_codec("post", url)
    assert codec is not None and codec.name == "openai-embeddings"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "https://api.openai.com/v1/chat/completions"),
        ("POST", "https://api.openai.com/v1/files"),
        ("GET", "https://api.openai.com/v1/models"),
        ("POST", "https://example.com/chat/completions-archive"),
        ("POST", "https://example.com/"),
    ],
)
def test_non_llm_traffic_resolves_to_none(method: str, url: str) -> None:
    assert nemoflow.resolve_codec(method, url) is None


def test_request_path() -> None:
    assert request_path("https://h:1/a/b/?x=1#f") == "/a/b"
    assert request_path("https://h") == "/"
    assert request_path("/v1/chat/completions?api-version=1") == "/v1/chat/completions"


class _ShapeCodec(OpenAIChatCodec):
    """A codec claiming the same route but only bodies carrying ``contents``."""

    name = "shape-test"

    def sniff(self, payload: Any) -> Any:
        return "request" if "contents" in payload else None


def test_ambiguous_routes_are_settled_by_body_shape() -> None:
    nemoflow.register_codec("shape-test", _ShapeCodec())
    url = "https://gateway.example/v1/chat/completions"
    chat = nemoflow.resolve_codec("POST", url, {"model": "m", "messages": []})
    other = nemoflow.resolve_codec("POST", url, {"contents": []})
    assert chat is not None and chat.name == "openai-chat"
    assert other is not None and other.name == "shape-test"
    # Without a body the first claimant in registry order wins: deterministic, never None.
    first = nemoflow.resolve_codec("POST", url)
    assert first is not None and first.name == "openai-chat"
