"""The bedrock-converse corpus checked from outside: botocore's service model and event-stream parser.

* Request and response fixtures validate against the ``bedrock-runtime`` service model botocore ships
  (``ConverseRequest`` / ``ConverseStreamRequest`` / ``ConverseResponse``), so an unrealistic payload fails.
* Stream fixtures (``eventstream_base64``: the whole binary body) are generated from readable events in
  ``frames.py`` and must still match it; botocore's own ``EventStream`` parser must read every body, and
  every event must validate against its ``ConverseStreamOutput`` member shape.
* Stream fixtures decode to their ``expected`` facts, validate against the annotated response schema, and
  give the same result whole, in every chunk size from 1 byte to 64 bytes, in larger and in irregular
  chunks. (The generic runner in ``tests/test_fixtures.py`` feeds ``sse`` text; it covers
  the request, response and error fixtures.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import botocore.session
import pytest
from botocore.eventstream import EventStream
from botocore.exceptions import EventStreamError
from botocore.model import Shape
from botocore.parsers import EventStreamJSONParser
from botocore.validate import ParamValidator

import nemoflow
from nemoflow_codec_bedrock import BedrockConverseCodec
from tests.codec_bedrock.frames import STREAM_FIXTURES, render, stream_fixture
from tests.test_fixtures import assert_partial_match, assert_valid

CODEC = BedrockConverseCodec()
FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "fixtures" / "bedrock-converse"
SERVICE = botocore.session.get_session().get_service_model("bedrock-runtime")


def _load(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _paths(kind: str) -> list[Path]:
    return [path for path in sorted(FIXTURES.glob("*.json")) if _load(path)["kind"] == kind]


def _ids(paths: list[Path]) -> list[str]:
    return [path.stem for path in paths]


REQUESTS, RESPONSES, STREAMS, ERRORS = (_paths(kind) for kind in ("request", "response", "stream", "error"))


def test_the_corpus_is_large_enough() -> None:
    assert len(REQUESTS) + len(RESPONSES) + len(STREAMS) + len(ERRORS) >= 20
    assert min(len(REQUESTS), len(RESPONSES), len(STREAMS), len(ERRORS)) >= 5


def _problems(params: Mapping[str, Any], shape: Shape) -> str | None:
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else None


def _route(url: str) -> tuple[str, bool]:
    path = url.split("?", 1)[0]
    stream = path.endswith("/converse-stream")
    model_id = path.rsplit("/model/", 1)[1].rsplit("/", 1)[0]
    return unquote(model_id), stream


@pytest.mark.parametrize("path", REQUESTS, ids=_ids(REQUESTS))
def test_request_fixture_is_a_valid_converse_request(path: Path) -> None:
    fixture = _load(path)
    model_id, stream = _route(fixture["url"])
    operation = SERVICE.operation_model("ConverseStream" if stream else "Converse")
    problems = _problems({"modelId": model_id, **fixture["input"]}, operation.input_shape)
    assert problems is None, problems


@pytest.mark.parametrize("path", RESPONSES, ids=_ids(RESPONSES))
def test_response_fixture_is_a_valid_converse_response(path: Path) -> None:
    problems = _problems(_load(path)["input"], SERVICE.operation_model("Converse").output_shape)
    assert problems is None, problems


@pytest.mark.parametrize("path", ERRORS, ids=_ids(ERRORS))
def test_error_fixture_names_a_bedrock_exception(path: Path) -> None:
    fixture = _load(path)
    error_type = fixture["expected"]["type"]
    known = {shape.name for shape in SERVICE.error_shapes} | {"UnrecognizedClientException"}
    assert error_type in known, f"{error_type} is not an exception of the bedrock-runtime service"
    if error_type in SERVICE.shape_names:
        assert SERVICE.shape_for(error_type).metadata.get("error", {}).get("httpStatusCode") in (
            None,
            fixture["status"],
        )


# ----------------------------------------------------------------------------------------- streams


def _body(fixture: Mapping[str, Any]) -> bytes:
    return base64.b64decode(fixture["eventstream_base64"], validate=True)


class _RawStream:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self) -> Iterator[bytes]:
        yield self._body

    def close(self) -> None:
        pass


def botocore_events(body: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """The events botocore parses from a ``converse-stream`` body, and the exception code it raised."""
    shape = SERVICE.operation_model("ConverseStream").output_shape.members["stream"]
    stream = EventStream(_RawStream(body), shape, EventStreamJSONParser(), "ConverseStream")
    events: list[dict[str, Any]] = []
    try:
        events.extend(stream)
    except EventStreamError as exc:
        return events, str(exc.response["Error"]["Code"])
    return events, None


@pytest.mark.parametrize("name", sorted(STREAM_FIXTURES))
def test_stream_fixture_file_matches_its_readable_source(name: str) -> None:
    path = FIXTURES / f"{name}.json"
    assert path.read_text(encoding="utf-8") == render(stream_fixture(name)), (
        f"{path.name} is stale: run `uv run python -m tests.codec_bedrock.frames`"
    )


def test_every_stream_fixture_has_a_readable_source() -> None:
    assert {path.stem for path in STREAMS} == set(STREAM_FIXTURES)


@pytest.mark.parametrize("path", STREAMS, ids=_ids(STREAMS))
def test_botocore_reads_every_stream_fixture(path: Path) -> None:
    fixture = _load(path)
    events, exception = botocore_events(_body(fixture))
    source = STREAM_FIXTURES[path.stem]["events"]
    sent = [name for name, _ in source]
    assert [next(iter(event)) for event in events] == [
        name for name in sent if not name.endswith("Exception")
    ]
    if sent[-1].endswith("Exception"):
        assert exception is not None and exception.lower() == sent[-1].lower()
    else:
        assert exception is None
    output = SERVICE.operation_model("ConverseStream").output_shape.members["stream"]
    for name, payload in source:
        member = output.members[name]
        problems = _problems(payload, member)
        assert problems is None, f"{name}: {problems}"
    # The stream the SDK hands out (events wrapped in their type, padding dropped) decodes to the same reply.
    decoder = CODEC.stream_decoder(url=fixture["url"])
    for event in events:
        decoder.feed(json.dumps(event))
    via_sdk = nemoflow.as_dict(decoder.finish())
    direct = nemoflow.as_dict(CODEC.decode_stream([_body(fixture)], url=fixture["url"]))
    if exception is None:
        assert via_sdk == direct
    else:
        assert via_sdk["text"] == direct["text"]


def _chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _irregular(data: bytes) -> Iterator[bytes]:
    """Chunks of sizes cycling through 1, 2, 3, 5, 8, ... 89 bytes."""
    sizes = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
    start = turn = 0
    while start < len(data):
        size = sizes[turn % len(sizes)]
        yield data[start : start + size]
        start, turn = start + size, turn + 1


@pytest.mark.parametrize("path", STREAMS, ids=_ids(STREAMS))
def test_stream_fixture(path: Path) -> None:
    fixture = _load(path)
    url = fixture["url"]
    body = _body(fixture)
    whole = CODEC.decode_stream([body], url=url)
    reference = nemoflow.as_dict(whole)
    assert_valid("response", reference, path.name)
    assert_partial_match(reference, fixture["expected"])
    for size in [*range(1, 65), 100, 257, 1024, len(body) - 1]:
        assert CODEC.decode_stream(_chunked(body, size), url=url) == whole, f"{size}-byte chunks"
    assert CODEC.decode_stream(_irregular(body), url=url) == whole
    decoder = CODEC.byte_stream_decoder(url=url)
    for chunk in _chunked(body, 7):
        decoder.feed(chunk)
    assert nemoflow.as_dict(decoder.finish()) == reference
