"""Credentials never reach a record: every request fixture sent with secrets in headers and the URL.

Each request in ``spec/fixtures`` goes through its codec (Flow + httpx2 ``MockTransport``) with the usual
credential headers and a ``key=`` query parameter. The OpenInference spans (in memory), the JSONL lines and
the console tree must hold none of them. Inline media is cut or redacted, and hiding options really hide.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nemoflow import ConsoleExporter, Flow, JsonlExporter, Sanitizer, TruncateMedia
from nemoflow_exporter_openinference import REDACTED_VALUE, OpenInferenceExporter

FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "fixtures"
SECRETS = [f"SECRET{n}" for n in range(1, 7)]
HEADERS = {
    "authorization": "Bearer sk-test-SECRET1",
    "x-api-key": "SECRET2",
    "api-key": "SECRET3",
    "x-goog-api-key": "SECRET4",
    "cookie": "session=SECRET5",
    "content-type": "application/json",
}


def request_fixtures() -> list[Any]:
    found = []
    for path in sorted(FIXTURES.glob("*/request-*.json")):
        fixture = json.loads(path.read_text())
        if fixture.get("kind") == "request" and fixture.get("url"):
            found.append(pytest.param(fixture, id=f"{path.parent.name}/{path.stem}"))
    return found


def with_key(url: str) -> str:
    return url + ("&" if "?" in url else "?") + "key=SECRET6"


@dataclass
class Sinks:
    flow: Flow
    spans: InMemorySpanExporter
    jsonl: io.BytesIO
    console: io.StringIO

    def span_text(self) -> str:
        values = [
            str(value)
            for span in self.spans.get_finished_spans()
            for value in (span.attributes or {}).values()
        ]
        values += [span.name for span in self.spans.get_finished_spans()]
        return "\n".join(values)

    def everything(self) -> str:
        return "\n".join([self.span_text(), self.jsonl.getvalue().decode(), self.console.getvalue()])


def make_sinks(sanitizers: tuple[Sanitizer, ...] = (), **oi_options: Any) -> Sinks:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    jsonl, console = io.BytesIO(), io.StringIO()
    flow = Flow(
        sanitizers=sanitizers,
        subscribers=[
            OpenInferenceExporter(provider, **oi_options),
            JsonlExporter(jsonl),
            ConsoleExporter(console, color=False, show_content=True),
        ],
    )
    return Sinks(flow, spans, jsonl, console)


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    made = make_sinks()
    yield made
    made.flow.shutdown()


def send(sinks: Sinks, url: str, body: Any, answer: bytes = b"{}") -> list[httpx2.Request]:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        request.read()
        seen.append(request)
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=answer)

    with httpx2.Client(transport=sinks.flow.transport(httpx2.MockTransport(handler))) as client:
        response = client.post(url, content=json.dumps(body).encode(), headers=HEADERS)
    assert response.status_code == 200
    assert sinks.flow.flush(5)
    return seen


@pytest.mark.parametrize("fixture", request_fixtures())
def test_no_secret_reaches_any_exporter(fixture: dict[str, Any], sinks: Sinks) -> None:
    (sent,) = send(sinks, with_key(fixture["url"]), fixture["input"])
    # The credentials did go upstream (nemoflow must not strip them from the real request)...
    assert sent.headers["x-api-key"] == "SECRET2" and "SECRET6" in str(sent.url)
    assert sinks.flow.stats().calls_recorded == 1
    assert sinks.spans.get_finished_spans() and sinks.jsonl.getvalue()
    # ...and none of them reached a span, a JSONL line or the console.
    text = sinks.everything()
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == []


USER_TEXT = "my private question 4d1f"
REPLY_TEXT = "my private answer 9c2e"
CHAT_URL = "https://api.openai.com/v1/chat/completions"
REPLY = orjson.dumps(
    {
        "id": "r1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": REPLY_TEXT}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)
IMAGE_B64 = base64.b64encode(bytes(range(256)) * 400).decode()  # 136,536 characters
IMAGE_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": USER_TEXT},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE_B64}"}},
            ],
        }
    ],
}


def test_truncate_media_cuts_inline_images_in_every_exporter() -> None:
    made = make_sinks(sanitizers=(TruncateMedia(64),))
    try:
        (sent,) = send(made, CHAT_URL, IMAGE_REQUEST, REPLY)
    finally:
        made.flow.shutdown()
    assert IMAGE_B64 in sent.content.decode()  # the upstream still gets the whole image
    text = made.everything()
    assert IMAGE_B64[:64] in made.jsonl.getvalue().decode()
    assert IMAGE_B64[:65] not in text
    assert "truncated 136536 chars" in made.jsonl.getvalue().decode()


def test_the_openinference_exporter_redacts_long_base64_images() -> None:
    made = make_sinks(base64_image_max_length=1000)
    try:
        send(made, CHAT_URL, IMAGE_REQUEST, REPLY)
    finally:
        made.flow.shutdown()
    span_text = made.span_text()
    assert IMAGE_B64[:1000] not in span_text
    assert REDACTED_VALUE in span_text


def test_hide_inputs_and_outputs_remove_the_content_from_spans() -> None:
    made = make_sinks(hide_inputs=True, hide_outputs=True)
    try:
        send(made, CHAT_URL, IMAGE_REQUEST, REPLY)
    finally:
        made.flow.shutdown()
    span_text = made.span_text()
    assert USER_TEXT not in span_text and REPLY_TEXT not in span_text and IMAGE_B64[:100] not in span_text
    assert REDACTED_VALUE in span_text
    # The JSONL exporter was not asked to hide anything: the content is there, so the request was decoded.
    assert USER_TEXT in made.jsonl.getvalue().decode() and REPLY_TEXT in made.jsonl.getvalue().decode()


@pytest.mark.parametrize("hidden", ["inputs", "outputs"])
def test_each_hide_option_hides_only_its_side(hidden: str) -> None:
    options: dict[str, Any] = {f"hide_{hidden}": True}
    made = make_sinks(**options)
    try:
        send(made, CHAT_URL, IMAGE_REQUEST, REPLY)
    finally:
        made.flow.shutdown()
    span_text = made.span_text()
    if hidden == "inputs":
        assert USER_TEXT not in span_text and REPLY_TEXT in span_text
    else:
        assert REPLY_TEXT not in span_text and USER_TEXT in span_text


def test_jsonl_without_content_drops_messages_and_replies() -> None:
    jsonl = io.BytesIO()
    flow = Flow(subscribers=[JsonlExporter(jsonl, include_content=False)])
    made = Sinks(flow, InMemorySpanExporter(), jsonl, io.StringIO())
    try:
        send(made, with_key(CHAT_URL), IMAGE_REQUEST, REPLY)
    finally:
        flow.shutdown()
    text = jsonl.getvalue().decode()
    assert text and USER_TEXT not in text and REPLY_TEXT not in text and IMAGE_B64[:100] not in text
    assert not [secret for secret in SECRETS if secret in text]
