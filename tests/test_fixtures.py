"""The cross-codec conformance runner: every registered codec against its corpus in ``spec/fixtures``.

Each fixture is one JSON file in ``spec/fixtures/<codec name>/``: a real wire payload (a request, a response,
an SSE stream or an error response) and the normalized facts it must decode to (``expected``, matched
partially against :func:`nemoflow.as_dict`). On top of those facts the runner checks, for every fixture:

* the decoded object validates against its JSON Schema in ``spec/schemas``;
* requests round-trip losslessly through ``encode`` (same object back, or the stream-usage injection only);
* streams decode to the same result however the bytes are split (down to one byte per chunk).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

import nemoflow
from nemoflow import (
    AnnotatedLlmError,
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    AudioPart,
    Choice,
    FilePart,
    GenerationParams,
    ImagePart,
    LlmCodec,
    Message,
    OtherPart,
    ReasoningPart,
    RefusalPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResultPart,
    Usage,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "spec" / "fixtures"
SCHEMAS = ROOT / "spec" / "schemas"
SCHEMA_BASE = "https://nemoflow.dev/spec/schemas/"

MIN_FIXTURES = {"openai-chat": 25}
"""Codecs whose corpus must be at least this large (every registered codec needs at least one)."""

STREAM_CHUNK_SIZES = (1, 2, 3, 5, 13, 64, 1024)
"""Byte chunk sizes every SSE fixture is re-split into; each must decode to the same result."""

KINDS = frozenset({"request", "response", "stream", "error"})
COMMON_KEYS = frozenset({"description", "source", "kind", "url", "expected"})
KIND_KEYS = {
    "request": frozenset({"input"}),
    "response": frozenset({"input"}),
    "stream": frozenset({"sse", "eventstream_base64"}),
    "error": frozenset({"status", "headers", "body"}),
}
REQUIRED_KIND_KEYS = {
    "request": frozenset({"input"}),
    "response": frozenset({"input"}),
    "stream": frozenset(),
    "error": frozenset({"status", "body"}),
}
BODY_LENGTH_KEY = "body_length"
"""Special ``expected`` key of error fixtures: the UTF-8 byte length of the kept ``body``."""


# ----------------------------------------------------------------------------------------- discovery


def _registered_codecs() -> dict[str, LlmCodec]:
    return nemoflow.codecs()


def _fixture_paths() -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for name in sorted(_registered_codecs()):
        directory = FIXTURES / name
        if directory.is_dir():
            found.extend((name, path) for path in sorted(directory.glob("*.json")))
    return found


FIXTURE_PATHS = _fixture_paths()


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    assert isinstance(data, dict), f"{path.name}: a fixture must be one JSON object"
    return data


def _schema_documents() -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for name in ("request", "response", "error"):
        with (SCHEMAS / f"annotated-{name}.schema.json").open(encoding="utf-8") as handle:
            documents[name] = json.load(handle)
    return documents


SCHEMA_DOCUMENTS = _schema_documents()
_REGISTRY: Registry[Any] = Registry().with_resources(
    (document["$id"], Resource.from_contents(document)) for document in SCHEMA_DOCUMENTS.values()
)


def _validator(name: str) -> Any:
    return jsonschema.Draft202012Validator(SCHEMA_DOCUMENTS[name], registry=_REGISTRY)


VALIDATORS = {name: _validator(name) for name in SCHEMA_DOCUMENTS}


# ----------------------------------------------------------------------------------------- matching


def _same_scalar(actual: Any, expected: Any) -> bool:
    # JSON keeps true/1 and false/0 apart, so the comparison must too.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if expected is None or actual is None:
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return actual == expected
    return type(actual) is type(expected) and bool(actual == expected)


def partial_mismatches(actual: Any, expected: Any, path: str = "$") -> list[str]:
    """Where ``actual`` differs from ``expected``: objects partially, lists whole and element-wise."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        found: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}: missing key {key!r}; present: {sorted(actual)}")
            else:
                found.extend(partial_mismatches(actual[key], value, f"{path}.{key}"))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        if len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r}"]
        return [
            problem
            for i, (item, wanted) in enumerate(zip(actual, expected, strict=True))
            for problem in partial_mismatches(item, wanted, f"{path}[{i}]")
        ]
    if _same_scalar(actual, expected):
        return []
    return [f"{path}: expected {expected!r}, got {actual!r}"]


def assert_partial_match(actual: Any, expected: Any) -> None:
    """Fail with every place where ``actual`` does not match ``expected``."""
    problems = partial_mismatches(actual, expected)
    assert not problems, "decoded output does not match 'expected':\n  " + "\n  ".join(problems)


def assert_valid(schema: str, document: Any, where: str) -> None:
    """Validate ``document`` against one of the annotated-object schemas, listing every violation."""
    errors = sorted(VALIDATORS[schema].iter_errors(document), key=lambda error: list(error.absolute_path))
    messages = [
        f"  at $.{'.'.join(str(step) for step in error.absolute_path)}: {error.message}" for error in errors
    ]
    assert not messages, f"{where}: as_dict output violates annotated-{schema}.schema.json:\n" + "\n".join(
        messages
    )


# ----------------------------------------------------------------------------------------- decoding


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stream_bytes(fixture: Mapping[str, Any]) -> bytes:
    """The raw body of a stream fixture: SSE text, or a base64 AWS event-stream body."""
    if "sse" in fixture:
        assert isinstance(fixture["sse"], str), "a stream fixture's sse must be a string"
        return fixture["sse"].encode("utf-8")
    encoded = fixture["eventstream_base64"]
    assert isinstance(encoded, str), "eventstream_base64 must be a string"
    return base64.b64decode(encoded, validate=True)


def decode_stream_every_way(codec: LlmCodec, data: bytes, url: str | None) -> AnnotatedLlmResponse:
    """Decode ``data`` whole and in every chunking of :data:`STREAM_CHUNK_SIZES`; all must agree."""
    whole = codec.decode_stream([data], url=url)
    reference = nemoflow.as_dict(whole)
    for size in STREAM_CHUNK_SIZES:
        split = codec.decode_stream(_chunks(data, size), url=url)
        assert nemoflow.as_dict(split) == reference, (
            f"decoding the stream in {size}-byte chunks differs from decoding it whole:\n"
            f"  whole: {reference!r}\n  split: {nemoflow.as_dict(split)!r}"
        )
    return whole


def _check_fixture_shape(name: str, fixture: Mapping[str, Any]) -> str:
    kind = fixture.get("kind")
    assert kind in KINDS, f"{name}: 'kind' must be one of {sorted(KINDS)}, got {kind!r}"
    for key in ("description", "source"):
        assert isinstance(fixture.get(key), str) and fixture[key].strip(), (
            f"{name}: needs a non-empty {key!r}"
        )
    assert isinstance(fixture.get("expected"), dict) and fixture["expected"], (
        f"{name}: needs a non-empty 'expected' object"
    )
    allowed = COMMON_KEYS | KIND_KEYS[kind]
    unknown = set(fixture) - allowed
    assert not unknown, f"{name}: keys {sorted(unknown)} do not belong in a {kind!r} fixture"
    missing = REQUIRED_KIND_KEYS[kind] - set(fixture)
    assert not missing, f"{name}: a {kind!r} fixture needs {sorted(missing)}"
    if kind == "stream":
        # Text streams (SSE) are stored as text; binary ones (AWS event stream) as base64.
        assert ("sse" in fixture) != ("eventstream_base64" in fixture), (
            f"{name}: a stream fixture needs exactly one of 'sse' and 'eventstream_base64'"
        )
    url = fixture.get("url")
    assert url is None or isinstance(url, str), f"{name}: 'url' must be a string"
    if BODY_LENGTH_KEY in fixture["expected"]:
        assert kind == "error", f"{name}: {BODY_LENGTH_KEY!r} only applies to error fixtures"
    return str(kind)


def _check_request_round_trip(
    codec: LlmCodec, fixture: Mapping[str, Any], decoded: AnnotatedLlmRequest
) -> None:
    """``encode(decode(x), x)``: ``x`` itself, or ``x`` plus the stream-usage injection only."""
    original = fixture["input"]
    url = fixture.get("url")
    pristine = copy.deepcopy(original)
    encoded = codec.encode(decoded, original, url=url)
    assert original == pristine, "encode mutated the original request"
    injects = bool(getattr(codec, "inject_stream_usage", False))
    if decoded.stream and "stream_options" not in original and injects:
        wanted = {**original, "stream_options": {"include_usage": True}}
        assert encoded == wanted, (
            "a streamed request without stream_options must gain exactly "
            f"{{'include_usage': true}}:\n  got: {encoded!r}"
        )
    else:
        differs = "" if encoded == original else f"; it even differs:\n  got: {encoded!r}"
        assert encoded is original, f"encode of an untouched decode must return the original itself{differs}"


def _assert_vectors_not_copied(fixture: Mapping[str, Any], result: Any) -> None:
    data = fixture["input"].get("data") if isinstance(fixture["input"], Mapping) else None
    if not isinstance(data, list):
        return
    serialized = json.dumps(result)
    for item in data:
        vector = item.get("embedding") if isinstance(item, Mapping) else None
        if vector:
            assert json.dumps(vector) not in serialized, (
                "embedding vectors must not be copied into the result"
            )


# ----------------------------------------------------------------------------------------- tests


def test_every_registered_codec_has_a_corpus() -> None:
    registered = _registered_codecs()
    assert registered, "no codec is registered: is nemoflow-codec-openai installed?"
    for name in sorted(registered):
        directory = FIXTURES / name
        assert directory.is_dir(), f"codec {name!r} has no fixture directory {directory.relative_to(ROOT)}"
        count = len(list(directory.glob("*.json")))
        assert count > 0, f"codec {name!r} has no fixtures in {directory.relative_to(ROOT)}"
        minimum = MIN_FIXTURES.get(name, 1)
        assert count >= minimum, f"codec {name!r} has {count} fixtures; at least {minimum} are required"


def test_openai_chat_is_registered_with_a_full_corpus() -> None:
    assert "openai-chat" in _registered_codecs(), "the openai-chat codec must be registered"
    count = sum(1 for codec, _ in FIXTURE_PATHS if codec == "openai-chat")
    assert count >= MIN_FIXTURES["openai-chat"], f"openai-chat has only {count} fixtures"


def test_every_fixture_directory_belongs_to_a_codec() -> None:
    registered = set(_registered_codecs())
    stray = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name not in registered)
    assert not stray, f"fixture directories without a registered codec: {stray}"


@pytest.mark.parametrize("name", sorted(SCHEMA_DOCUMENTS))
def test_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    document = SCHEMA_DOCUMENTS[name]
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"{SCHEMA_BASE}annotated-{name}.schema.json"
    assert document.get("title") and document.get("description"), f"{name}: needs a title and a description"


def _public_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.name != "raw" and not f.name.startswith("_")}


_SCHEMA_CLASSES: list[tuple[str, str | None, type]] = [
    ("request", None, AnnotatedLlmRequest),
    ("request", "Message", Message),
    ("request", "TextPart", TextPart),
    ("request", "ImagePart", ImagePart),
    ("request", "AudioPart", AudioPart),
    ("request", "FilePart", FilePart),
    ("request", "RefusalPart", RefusalPart),
    ("request", "ReasoningPart", ReasoningPart),
    ("request", "ToolResultPart", ToolResultPart),
    ("request", "OtherPart", OtherPart),
    ("request", "ToolCall", ToolCall),
    ("request", "ToolDefinition", ToolDefinition),
    ("request", "ToolChoice", ToolChoice),
    ("request", "GenerationParams", GenerationParams),
    ("response", None, AnnotatedLlmResponse),
    ("response", "Choice", Choice),
    ("response", "Usage", Usage),
    ("response", "ToolCall", ToolCall),
    ("error", None, AnnotatedLlmError),
]


@pytest.mark.parametrize(
    ("schema", "definition", "cls"),
    _SCHEMA_CLASSES,
    ids=[f"{schema}:{definition or cls.__name__}" for schema, definition, cls in _SCHEMA_CLASSES],
)
def test_schema_names_exactly_the_model_fields(schema: str, definition: str | None, cls: type) -> None:
    document = SCHEMA_DOCUMENTS[schema]
    node = document if definition is None else document["$defs"][definition]
    assert node.get("additionalProperties") is False, f"{cls.__name__}: the schema must be closed"
    properties = set(node["properties"])
    fields = _public_fields(cls)
    assert properties == fields, (
        f"{cls.__name__}: schema and model disagree; only in schema: {sorted(properties - fields)}, "
        f"only in model: {sorted(fields - properties)}"
    )
    assert set(node["required"]) == fields, f"{cls.__name__}: as_dict always emits every field"


def test_schemas_reject_what_as_dict_never_emits() -> None:
    response = nemoflow.as_dict(
        AnnotatedLlmResponse(
            usage=Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
            error=AnnotatedLlmError(kind=nemoflow.ErrorKind.SERVER, status=500, body="x"),
        )
    )
    assert_valid("response", response, "baseline response")
    broken: list[tuple[str, Any]] = [
        ("an unknown top-level key", {**response, "surprise": 1}),
        ("a negative token count", {**response, "usage": {**response["usage"], "prompt_tokens": -1}}),
        ("a float token count", {**response, "usage": {**response["usage"], "completion_tokens": 2.5}}),
        ("an unknown finish reason", {**response, "finish_reason": "done"}),
        ("an unknown error kind", {**response, "error": {**response["error"], "kind": "teapot"}}),
        ("a missing field", {k: v for k, v in response.items() if k != "choices"}),
    ]
    for what, document in broken:
        assert not VALIDATORS["response"].is_valid(document), f"the response schema accepts {what}"
    request = nemoflow.as_dict(
        AnnotatedLlmRequest(messages=(Message(role="user", content=(TextPart(text="hi"),)),))
    )
    assert_valid("request", request, "baseline request")
    part = request["messages"][0]["content"][0]
    for what, bad_part in [
        ("a part whose kind does not fit its fields", {**part, "kind": "image"}),
        ("a part with an unknown key", {**part, "url": "https://example.com/cat.png"}),
    ]:
        document = {**request, "messages": [{**request["messages"][0], "content": [bad_part]}]}
        assert not VALIDATORS["request"].is_valid(document), f"the request schema accepts {what}"
    error = nemoflow.as_dict(AnnotatedLlmError(kind=nemoflow.ErrorKind.UNKNOWN, body="é" * 4097))
    assert not VALIDATORS["error"].is_valid(error), "the error schema accepts a body over 4096 characters"


def test_partial_matching_is_strict_where_it_must_be() -> None:
    assert_partial_match({"a": 1, "b": [1, {"c": 2, "d": 3}]}, {"b": [1, {"c": 2}]})
    mismatches: list[tuple[Any, Any]] = [
        ({"a": 1}, {"a": 2}),
        ({"a": [1, 2]}, {"a": [1]}),
        ({"a": 0}, {"a": None}),
        ({"a": None}, {"a": 0}),
        ({"a": 1}, {"a": True}),
        ({"a": "1"}, {"a": 1}),
        ({}, {"a": None}),
    ]
    for actual, expected in mismatches:
        with pytest.raises(AssertionError):
            assert_partial_match(actual, expected)


@pytest.mark.parametrize(
    ("codec_name", "path"),
    FIXTURE_PATHS,
    ids=[f"{codec_name}/{path.name}" for codec_name, path in FIXTURE_PATHS],
)
def test_fixture(codec_name: str, path: Path) -> None:
    fixture = _load(path)
    kind = _check_fixture_shape(path.name, fixture)
    codec = nemoflow.get_codec(codec_name)
    url = fixture.get("url")
    expected = dict(fixture["expected"])
    schema: str
    if kind == "request":
        assert isinstance(fixture["input"], dict), "a request fixture's input must be a JSON object"
        result = nemoflow.as_dict(codec.decode(fixture["input"], url=url))
        schema = "request"
    elif kind == "response":
        assert isinstance(fixture["input"], dict), "a response fixture's input must be a JSON object"
        result = nemoflow.as_dict(codec.decode_response(fixture["input"], url=url))
        _assert_vectors_not_copied(fixture, result)
        schema = "response"
    elif kind == "stream":
        result = nemoflow.as_dict(decode_stream_every_way(codec, stream_bytes(fixture), url))
        schema = "response"
    else:
        headers = fixture.get("headers") or {}
        status = fixture["status"]
        assert isinstance(status, int), "an error fixture's status must be an integer"
        result = nemoflow.as_dict(codec.decode_error(status, headers, _error_body(fixture["body"]), url=url))
        if BODY_LENGTH_KEY in expected:
            wanted = expected.pop(BODY_LENGTH_KEY)
            body = result["body"]
            assert isinstance(body, str), f"expected a body of {wanted} bytes, got {body!r}"
            assert len(body.encode("utf-8")) == wanted, (
                f"body kept {len(body.encode('utf-8'))} bytes, expected {wanted}"
            )
        schema = "error"
    assert_valid(schema, result, path.name)
    assert_partial_match(result, expected)


REQUEST_FIXTURE_PATHS = [
    (codec_name, path) for codec_name, path in FIXTURE_PATHS if _load(path).get("kind") == "request"
]


@pytest.mark.parametrize(
    ("codec_name", "path"),
    REQUEST_FIXTURE_PATHS,
    ids=[f"{codec_name}/{path.name}" for codec_name, path in REQUEST_FIXTURE_PATHS],
)
def test_request_fixture_round_trips(codec_name: str, path: Path) -> None:
    fixture = _load(path)
    codec = nemoflow.get_codec(codec_name)
    url = fixture.get("url")
    _check_request_round_trip(codec, fixture, codec.decode(fixture["input"], url=url))


def _error_body(body: Any) -> bytes | None:
    """The error body as the transport hands it over: the raw bytes of the response."""
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")
