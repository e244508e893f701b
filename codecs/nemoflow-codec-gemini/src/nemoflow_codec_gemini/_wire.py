"""Shared pieces of the Gemini wire format: field spellings, routes and type checks.

The Gemini REST API parses requests as protobuf JSON, which accepts every field under its lowerCamelCase
JSON name (``maxOutputTokens``) and under its proto name (``max_output_tokens``). Real clients mix them:
the google-genai SDK sends ``fileData`` holding ``file_uri`` and ``thinkingConfig`` holding
``thinking_level``. The codec therefore reads each field under either spelling (camelCase first), and
writes an edited field back under the spelling the object already used. When an object holds a field
under both spellings, the camelCase one is the field and the other is kept as an unknown key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from nemoflow.codec_support import expect_array, expect_object, request_path, split_known

CODEC: Final = "gemini-generate-content"
EMPTY: Final[Mapping[str, Any]] = split_known({}, frozenset())
"""The shared empty ``extra`` mapping."""

_CAMEL_NAMES = (
    # request
    "systemInstruction generationConfig toolConfig safetySettings cachedContent "
    # content parts
    "thoughtSignature inlineData fileData functionCall functionResponse executableCode "
    "codeExecutionResult videoMetadata partMetadata mediaResolution toolCall toolResponse "
    "mimeType fileUri displayName willContinue "
    # generation config
    "topP topK maxOutputTokens stopSequences candidateCount presencePenalty frequencyPenalty "
    "responseMimeType responseSchema responseJsonSchema responseModalities thinkingConfig "
    "thinkingLevel thinkingBudget includeThoughts "
    # tools
    "functionDeclarations parametersJsonSchema googleSearch googleSearchRetrieval codeExecution "
    "urlContext fileSearch googleMaps computerUse enterpriseWebSearch mcpServers parallelAiSearch "
    "exaAiSearch functionCallingConfig allowedFunctionNames retrievalConfig "
    # responses
    "usageMetadata modelVersion responseId createTime promptFeedback blockReason finishReason "
    "promptTokenCount candidatesTokenCount cachedContentTokenCount thoughtsTokenCount "
    "toolUsePromptTokenCount totalTokenCount"
).split()


def snake_case(name: str) -> str:
    """The proto field name of a lowerCamelCase JSON name (``maxOutputTokens`` → ``max_output_tokens``)."""
    return re.sub(r"([A-Z])", r"_\1", name).lower()


SNAKE: Final[Mapping[str, str]] = {name: snake_case(name) for name in _CAMEL_NAMES}
"""camelCase name → its snake_case spelling, for every multi-word field the codec reads."""
CAMEL: Final[Mapping[str, str]] = {snake: camel for camel, snake in SNAKE.items()}
"""snake_case spelling → camelCase name."""


def lookup(raw: Mapping[str, Any], name: str) -> tuple[str | None, Any]:
    """The key ``raw`` holds the field ``name`` under (camelCase first) and its value; ``(None, None)``."""
    if name in raw:
        return name, raw[name]
    snake = SNAKE.get(name)
    if snake is not None and snake in raw:
        return snake, raw[snake]
    return None, None


def value_of(raw: Mapping[str, Any], name: str) -> Any:
    """The value of the field ``name`` under either spelling (``None`` when absent)."""
    if name in raw:
        return raw[name]
    snake = SNAKE.get(name)
    return raw.get(snake) if snake is not None else None


def unknown_keys(raw: Mapping[str, Any], known: frozenset[str]) -> Mapping[str, Any]:
    """The keys of ``raw`` that are not one of the ``known`` fields (camelCase names) under either spelling.

    A snake_case key counts as known only when its camelCase twin is absent (the twin wins).
    """
    extra = split_known(raw, known)
    if not extra:
        return extra
    kept: dict[str, Any] | None = None
    for key in extra:
        camel = CAMEL.get(key)
        if camel is not None and camel in known and camel not in raw:
            if kept is None:
                kept = dict(extra)
            del kept[key]
    if kept is None:
        return extra
    return kept if kept else EMPTY


_ALL_SNAKE = frozenset(CAMEL)


def uses_snake_case(raw: Mapping[str, Any]) -> bool:
    """Whether ``raw`` spells its multi-word fields in snake_case (so new fields should be, too)."""
    return any(key in _ALL_SNAKE for key in raw)


def key_for(raw: Mapping[str, Any] | None, name: str) -> str:
    """The key to write the field ``name`` under in ``raw``: its existing spelling, else ``raw``'s style."""
    if raw is None:
        return name
    if name in raw:
        return name
    snake = SNAKE.get(name)
    if snake is None:
        return name
    if snake in raw or uses_snake_case(raw):
        return snake
    return name


def keys_of(raw: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """Every spelling of ``name`` present in ``raw`` (to remove a field completely)."""
    snake = SNAKE.get(name)
    return tuple(key for key in (name, snake) if key is not None and key in raw)


# ----------------------------------------------------------------------------------------- type checks


def expect_mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    return expect_object(value, path, what, CODEC)


def expect_list(value: Any, path: str, what: str) -> Sequence[Any]:
    return expect_array(value, path, what, CODEC)


def child_path(path: str, key: str) -> str:
    """``path`` extended by the object key ``key``."""
    return f"{path}.{key}"


# ----------------------------------------------------------------------------------------- routes

_ROUTE = re.compile(
    r"/(?P<collection>models|tunedModels|endpoints)/(?P<model>[^/:]+)"
    r":(?P<method>generateContent|streamGenerateContent)$"
)


def match_path(path: str) -> re.Match[str] | None:
    """The route match of a generateContent path (any API version, base path or Vertex AI form)."""
    return _ROUTE.search(path)


def model_of_url(url: str | None) -> str | None:
    """The model the URL names: ``gemini-2.5-flash``, ``tunedModels/{m}`` or ``endpoints/{id}``."""
    if not url:
        return None
    match = _ROUTE.search(request_path(url))
    if match is None:
        return None
    collection, model = match["collection"], match["model"]
    return model if collection == "models" else f"{collection}/{model}"


def streams(url: str | None) -> bool:
    """Whether the URL is the streaming route (``:streamGenerateContent``)."""
    if not url:
        return False
    match = _ROUTE.search(request_path(url))
    return match is not None and match["method"] == "streamGenerateContent"
