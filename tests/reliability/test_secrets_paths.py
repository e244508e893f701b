"""Credentials never reach a record or an exported byte, on the paths ``test_secrets.py`` does not walk.

``test_secrets.py`` sends every request fixture through an httpx2 ``MockTransport`` with credential
headers. Here the same promise is checked where real applications meet it:

- the official SDKs (openai sync and async, Azure OpenAI, anthropic with an API key and with a bearer
  token, google-genai sync and async) through nemoflow against a loopback upstream, each with a fake key
  of its own: JSON calls, streams, embeddings, and 401/429/5xx replies, including OpenAI's 401 that echoes
  the key masked down to its last four characters;
- the four adapters with gzip-compressed request bodies and every credential header, and ``key=`` in
  Gemini URLs in every position;
- what actually leaves the process: the OTLP/HTTP protobuf bodies that the OpenInference and GenAI
  exporters post to a loopback collector (gzip undone), the GenAI metrics, the JSONL file, the console
  text, and the ``LlmCall`` objects themselves (``repr`` and ``as_dict``).

Every fake credential carries the marker ``nfLeak``, which nothing else in a test contains, so looking for
the marker finds the whole key and any fragment of it longer than the last few characters. Each test also
checks that its own prompt text *does* reach every sink, so a sink that exported nothing cannot pass.

Two paths recorded a credential before they were fixed, and their tests pin the fix: a provider error
(body or stream error event) that echoes the full key, and a ``requests`` connection error whose message
quotes the URL with its ``key=`` parameter. Recorded error text has the request's credential values replaced.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
import pytest
import requests
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from nemoflow import CallStatus, ConsoleExporter, ErrorKind, Flow, JsonlExporter, LlmCall, as_dict
from nemoflow_exporter_genai import GenAIExporter
from nemoflow_exporter_openinference import OpenInferenceExporter
from tests.e2e_sdk.replay import load_fixture, sse_events
from tests.support import Collector
from tests.upstream import Canned, CannedApp, Receive, Scope, Send, UpstreamServer, refused_port

MARKER = b"nfLeak"
OPENAI_KEY = "sk-proj-nfLeak7Q2wM9xT4kLpZ8rV3bN6cY1dF5hJ0abcd"
AZURE_KEY = "nfLeakAzure5f1e9b7c3d2a4e6f80912b3c"
ANTHROPIC_KEY = "sk-ant-api03-nfLeak3R8vN1qZ6yH0wXe4Tu9Kp2Lm7Q-AA"
ANTHROPIC_TOKEN = "nfLeakBearer0aZ9yX8wV7uT6sR5qP4o"
GEMINI_KEY = "AIzaSy-nfLeak4Gm7Q2wM9xT4kLpZ8rV3bN6"
COOKIE = "sid=nfLeakCookie9f8e7d6c5b4a; theme=dark"
QUERY_KEY = "nfLeakQuery1a2b3c4d5e6f"
SECRET_HEADERS = {
    "authorization": f"Bearer {OPENAI_KEY}",
    "x-api-key": ANTHROPIC_KEY,
    "api-key": AZURE_KEY,
    "x-goog-api-key": GEMINI_KEY,
    "cookie": COOKIE,
}
FLUSH_S = 10.0


# ----------------------------------------------------------------------------------------- servers


class OtlpCollector(CannedApp):
    """A loopback OTLP/HTTP collector: answers every POST with an empty 200 and keeps what it received."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.enqueue(Canned(200, [("content-type", "application/x-protobuf")], [b""]))
        await super().__call__(scope, receive, send)

    def bodies(self, prefix: str) -> list[bytes]:
        """The bodies posted under ``prefix``, gzip undone."""
        found = []
        for request in list(self.received):
            if request.path.startswith(prefix):
                body = request.body
                if (request.header("content-encoding") or "").lower() == "gzip":
                    body = gzip.decompress(body)
                found.append(body)
        return found


@pytest.fixture(scope="module")
def collector_server() -> Iterator[UpstreamServer]:
    with UpstreamServer(OtlpCollector()) as running:
        yield running


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as running:
        yield running


@pytest.fixture
def upstream(upstream_server: UpstreamServer) -> Iterator[UpstreamServer]:
    upstream_server.app.reset()
    yield upstream_server
    upstream_server.app.reset()


@pytest.fixture(autouse=True)
def _no_sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real keys and endpoints must neither be used nor mask a missing fake one.
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "OPENAI_API_VERSION",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_HTTP_CLIENT",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OPENINFERENCE_HIDE_INPUTS",
        "OPENINFERENCE_HIDE_OUTPUTS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")


# ----------------------------------------------------------------------------------------- sinks


@dataclass
class Capture:
    """A flow with every exporter writing where the test can read the bytes."""

    flow: Flow
    collector: Collector
    otlp: OtlpCollector
    prefix: str
    jsonl: Path
    console: io.StringIO

    def records(self, count: int) -> list[LlmCall]:
        assert self.flow.flush(FLUSH_S), "records were not delivered in time"
        assert len(self.collector.calls) == count, [call.url for call in self.collector.calls]
        assert self.flow.stats().calls_recorded == count
        return list(self.collector.calls)

    def exported(self) -> dict[str, bytes]:
        """Every byte that left (or would leave) the process, by where it went."""
        assert self.flow.flush(FLUSH_S)
        return {
            "otlp openinference spans": b"".join(self.otlp.bodies(f"{self.prefix}/oi/")),
            "otlp genai spans": b"".join(self.otlp.bodies(f"{self.prefix}/genai/")),
            "otlp genai metrics": b"".join(self.otlp.bodies(f"{self.prefix}/metrics/")),
            "jsonl file": self.jsonl.read_bytes() if self.jsonl.exists() else b"",
            "console": self.console.getvalue().encode(),
        }


@pytest.fixture
def capture(collector_server: UpstreamServer, tmp_path: Path) -> Iterator[Capture]:
    otlp = collector_server.app
    assert isinstance(otlp, OtlpCollector)
    prefix = f"/{uuid.uuid4().hex}"
    base = collector_server.url(prefix)
    # OpenInference: the exporter builds its own OTLP provider (plain protobuf, batched).
    openinference = OpenInferenceExporter(endpoint=f"{base}/oi/v1/traces", project_name="secrets")
    # GenAI: content capture on, spans and metrics both gzip-compressed.
    genai_provider = TracerProvider()
    genai_provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"{base}/genai/v1/traces", compression=Compression.Gzip)
        )
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/metrics/v1/metrics", compression=Compression.Gzip),
        export_interval_millis=3_600_000,
    )
    meters = MeterProvider(metric_readers=[reader])
    collector = Collector()
    jsonl = tmp_path / "calls.jsonl"
    console = io.StringIO()
    flow = Flow(
        subscribers=[
            collector,
            openinference,
            GenAIExporter(genai_provider, capture_content=True, meter_provider=meters),
            JsonlExporter(jsonl),
            ConsoleExporter(console, color=False, show_content=True),
        ]
    )
    try:
        yield Capture(flow, collector, otlp, prefix, jsonl, console)
    finally:
        flow.shutdown()
        genai_provider.shutdown()
        meters.shutdown()


def dump(value: Any) -> bytes:
    # The standard library's encoder: trace ids are 128-bit integers.
    return json.dumps(value, default=repr, ensure_ascii=False).encode()


def record_bytes(call: LlmCall) -> dict[str, bytes]:
    """The record itself, as an application or a custom subscriber could print or serialize it."""
    return {
        "repr": repr(call).encode(),
        "as_dict": dump(as_dict(call)),
        "request": dump(as_dict(call.request)),
        "response": dump(as_dict(call.response)),
        "error": dump(as_dict(call.error)),
        "url": call.url.encode(),
        "exception": (call.exception or "").encode(),
    }


def leaked_places(capture: Capture, calls: list[LlmCall]) -> list[str]:
    places = dict(capture.exported())
    for index, call in enumerate(calls):
        for name, blob in record_bytes(call).items():
            places[f"record {index} {name}"] = blob
    return [place for place, blob in places.items() if MARKER in blob]


def assert_nothing_leaked(capture: Capture, calls: list[LlmCall], probe: str) -> None:
    """No credential anywhere, while the prompt did reach every sink (so every sink was really read)."""
    assert leaked_places(capture, calls) == []
    exported = capture.exported()
    for place in ("otlp openinference spans", "otlp genai spans", "jsonl file", "console"):
        assert probe.encode() in exported[place], f"the prompt never reached {place}"
    assert b"gen_ai.client.operation.duration" in exported["otlp genai metrics"]


# ----------------------------------------------------------------------------------------- upstream replies


def fixture_json(codec: str, name: str) -> Canned:
    fixture = load_fixture(codec, name)
    assert fixture["kind"] == "response"
    return Canned.json(fixture["input"])


def fixture_stream(codec: str, name: str) -> Canned:
    fixture = load_fixture(codec, name)
    assert fixture["kind"] == "stream"
    return Canned.sse(sse_events(fixture["sse"].encode()))


def fixture_error(codec: str, name: str) -> Canned:
    fixture = load_fixture(codec, name)
    assert fixture["kind"] == "error"
    headers = [
        (key.lower(), value)
        for key, value in (fixture.get("headers") or {}).items()
        if key.lower() not in ("content-type", "content-length")
    ]
    return Canned.json(fixture["body"], status=int(fixture["status"]), headers=headers)


def openai_masked_401(key: str) -> Canned:
    """OpenAI's real 401: the key echoed with all but its last four characters starred out."""
    masked = key[:8] + "*" * (len(key) - 12) + key[-4:]
    message = (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    return Canned.json(body, status=401, headers=[("www-authenticate", 'Bearer realm="OpenAI API"')])


def headers_sent(upstream: UpstreamServer, name: str) -> list[str | None]:
    return [request.header(name) for request in upstream.app.received]


# ----------------------------------------------------------------------------------------- SDK scenarios

Scenario = Callable[[UpstreamServer, Flow, str], int]


def openai_sync(upstream: UpstreamServer, flow: Flow, probe: str) -> int:
    enqueue_openai(upstream)
    messages: Any = [{"role": "user", "content": probe}]
    with openai.OpenAI(
        api_key=OPENAI_KEY,
        base_url=upstream.url("/v1"),
        max_retries=0,
        default_headers={"cookie": COOKIE},
        http_client=flow.httpx2_client(),
    ) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert [
            c for c in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        ]
        assert [event for event in client.responses.create(model="gpt-4.1", input=probe, stream=True)]
        client.embeddings.create(model="text-embedding-3-small", input=probe)
        for error in (openai.AuthenticationError, openai.RateLimitError, openai.InternalServerError):
            with pytest.raises(error):
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    return check_openai_upstream(upstream)


def openai_async(upstream: UpstreamServer, flow: Flow, probe: str) -> int:
    enqueue_openai(upstream)
    messages: Any = [{"role": "user", "content": probe}]

    async def main() -> None:
        async with openai.AsyncOpenAI(
            api_key=OPENAI_KEY,
            base_url=upstream.url("/v1"),
            max_retries=0,
            default_headers={"cookie": COOKIE},
            http_client=flow.async_httpx2_client(),
        ) as client:
            await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
            assert [chunk async for chunk in stream]
            events = await client.responses.create(model="gpt-4.1", input=probe, stream=True)
            assert [event async for event in events]
            await client.embeddings.create(model="text-embedding-3-small", input=probe)
            for error in (openai.AuthenticationError, openai.RateLimitError, openai.InternalServerError):
                with pytest.raises(error):
                    await client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    asyncio.run(main())
    return check_openai_upstream(upstream)


def enqueue_openai(upstream: UpstreamServer) -> None:
    upstream.app.enqueue(
        fixture_json("openai-chat", "response-plain-text"),
        fixture_stream("openai-chat", "stream-text-with-final-usage-chunk"),
        fixture_stream("openai-responses", "stream-text-completed"),
        fixture_json("openai-embeddings", "response-float-vectors"),
        openai_masked_401(OPENAI_KEY),
        fixture_error("openai-chat", "error-429-rate-limit-retry-after"),
        fixture_error("openai-chat", "error-500-server-error"),
    )


def check_openai_upstream(upstream: UpstreamServer) -> int:
    # The credentials did go upstream on every call: nemoflow records none of them but sends them all.
    assert headers_sent(upstream, "authorization") == [f"Bearer {OPENAI_KEY}"] * 7
    assert headers_sent(upstream, "cookie") == [COOKIE] * 7
    return 7


def azure_openai(upstream: UpstreamServer, flow: Flow, probe: str) -> int:
    denied = {
        "error": {
            "code": "401",
            "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription.",
        }
    }
    upstream.app.enqueue(
        fixture_json("openai-chat", "response-plain-text"),
        fixture_stream("openai-chat", "stream-text-with-final-usage-chunk"),
        Canned.json(denied, status=401),
    )
    messages: Any = [{"role": "user", "content": probe}]
    with openai.AzureOpenAI(
        api_key=AZURE_KEY,
        azure_endpoint=upstream.base_url,
        api_version="2024-10-21",
        max_retries=0,
        http_client=flow.httpx2_client(),
    ) as client:
        client.chat.completions.create(model="my-deployment", messages=messages)
        assert [
            c for c in client.chat.completions.create(model="my-deployment", messages=messages, stream=True)
        ]
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="my-deployment", messages=messages)
    assert headers_sent(upstream, "api-key") == [AZURE_KEY] * 3
    assert all(request.path.startswith("/openai/deployments/") for request in upstream.app.received)
    return 3


def anthropic_sync(upstream: UpstreamServer, flow: Flow, probe: str) -> int:
    upstream.app.enqueue(
        fixture_json("anthropic-messages", "response-text-end-turn-cached"),
        fixture_stream("anthropic-messages", "stream-text"),
        fixture_stream("anthropic-messages", "stream-error-overloaded"),
        fixture_error("anthropic-messages", "error-401-authentication"),
        fixture_error("anthropic-messages", "error-429-rate-limit-retry-after"),
        fixture_error("anthropic-messages", "error-529-overloaded"),
        fixture_json("anthropic-messages", "response-text-end-turn-cached"),
    )
    messages: Any = [{"role": "user", "content": probe}]
    common: Any = {"base_url": upstream.base_url, "max_retries": 0}
    with anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=flow.httpx2_client(), **common) as client:
        client.messages.create(model="claude-opus-4-5", max_tokens=64, messages=messages)
        assert [
            e
            for e in client.messages.create(
                model="claude-opus-4-5", max_tokens=64, messages=messages, stream=True
            )
        ]
        with pytest.raises(anthropic.APIError):
            for _ in client.messages.create(
                model="claude-opus-4-5", max_tokens=64, messages=messages, stream=True
            ):
                pass
        for _ in range(3):
            with pytest.raises(anthropic.APIStatusError):
                client.messages.create(model="claude-opus-4-5", max_tokens=64, messages=messages)
    with anthropic.Anthropic(
        auth_token=ANTHROPIC_TOKEN, http_client=flow.httpx2_client(), **common
    ) as client:
        client.messages.create(model="claude-opus-4-5", max_tokens=64, messages=messages)
    # anthropic 2.x sends an API key as a bearer token too (x-api-key is covered by the adapter test).
    sent = [
        request.header("authorization") or request.header("x-api-key") for request in upstream.app.received
    ]
    assert [value.removeprefix("Bearer ") if value else None for value in sent] == [ANTHROPIC_KEY] * 6 + [
        ANTHROPIC_TOKEN
    ]
    return 7


def genai_sync(upstream: UpstreamServer, flow: Flow, probe: str) -> int:
    enqueue_genai(upstream)
    with flow.httpx2_client() as http:
        options = genai_types.HttpOptions(base_url=upstream.base_url, httpx_client=http)
        with genai.Client(api_key=GEMINI_KEY, http_options=options) as client:
            client.models.generate_content(model="gemini-2.5-flash", contents=probe)
            assert [
                c for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents=probe)
            ]
            for error in (genai_errors.ClientError, genai_errors.ClientError, genai_errors.ServerError):
                with pytest.raises(error):
                    client.models.generate_content(model="gemini-2.5-flash", contents=probe)
    return check_genai_upstream(upstream)


def genai_async(upstream: UpstreamServer, flow: Flow, probe: str) -> int:
    enqueue_genai(upstream)

    async def main() -> None:
        async with flow.async_httpx2_client() as http:
            options = genai_types.HttpOptions(base_url=upstream.base_url, httpx_async_client=http)
            async with genai.Client(api_key=GEMINI_KEY, http_options=options).aio as client:
                await client.models.generate_content(model="gemini-2.5-flash", contents=probe)
                stream = await client.models.generate_content_stream(model="gemini-2.5-flash", contents=probe)
                assert [chunk async for chunk in stream]
                for error in (genai_errors.ClientError, genai_errors.ClientError, genai_errors.ServerError):
                    with pytest.raises(error):
                        await client.models.generate_content(model="gemini-2.5-flash", contents=probe)

    asyncio.run(main())
    return check_genai_upstream(upstream)


def enqueue_genai(upstream: UpstreamServer) -> None:
    upstream.app.enqueue(
        fixture_json("gemini-generate-content", "response-text-stop"),
        fixture_stream("gemini-generate-content", "stream-sse-text"),
        fixture_error("gemini-generate-content", "error-400-api-key-invalid"),
        fixture_error("gemini-generate-content", "error-429-rate-limit-retry-info"),
        fixture_error("gemini-generate-content", "error-500-internal"),
    )


def check_genai_upstream(upstream: UpstreamServer) -> int:
    assert headers_sent(upstream, "x-goog-api-key") == [GEMINI_KEY] * 5
    assert "alt=sse" in upstream.app.received[1].query
    return 5


SCENARIOS = [
    pytest.param(openai_sync, id="openai-sync"),
    pytest.param(openai_async, id="openai-async"),
    pytest.param(azure_openai, id="azure-openai"),
    pytest.param(anthropic_sync, id="anthropic"),
    pytest.param(genai_sync, id="genai-sync"),
    pytest.param(genai_async, id="genai-async"),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_official_sdks_leave_no_credential_in_any_record_or_exported_byte(
    scenario: Scenario, upstream: UpstreamServer, capture: Capture
) -> None:
    probe = f"probe-{uuid.uuid4().hex[:12]} what is 17 times 23?"
    count = scenario(upstream, capture.flow, probe)
    calls = capture.records(count)
    assert capture.flow.stats().errors == {}
    statuses = {call.status for call in calls}
    assert CallStatus.OK in statuses and CallStatus.ERROR in statuses
    assert_nothing_leaked(capture, calls, probe)


def test_a_masked_key_in_an_error_body_is_recorded_as_the_provider_masked_it(
    upstream: UpstreamServer, capture: Capture
) -> None:
    # The provider's own message stays useful ("which key?"): only the last four characters, as sent.
    upstream.app.enqueue(openai_masked_401(OPENAI_KEY))
    with openai.OpenAI(
        api_key=OPENAI_KEY,
        base_url=upstream.url("/v1"),
        max_retries=0,
        http_client=capture.flow.httpx2_client(),
    ) as client:
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    (call,) = capture.records(1)
    assert call.error is not None and call.error.kind is ErrorKind.AUTHENTICATION
    assert call.error.message is not None and call.error.message.startswith(
        "Incorrect API key provided: sk-proj-*"
    )
    exported = capture.exported()
    for place in ("otlp openinference spans", "otlp genai spans", "jsonl file"):
        assert b"Incorrect API key provided" in exported[place], place
    assert leaked_places(capture, [call]) == []


# ----------------------------------------------------------------------------------------- echoed keys (bug)


def echo_openai_401(upstream: UpstreamServer, flow: Flow) -> None:
    body = {
        "error": {
            "message": f"Incorrect API key provided: {OPENAI_KEY}.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    upstream.app.enqueue(Canned.json(body, status=401))
    with openai.OpenAI(
        api_key=OPENAI_KEY, base_url=upstream.url("/v1"), max_retries=0, http_client=flow.httpx2_client()
    ) as client:
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def echo_anthropic_stream_error(upstream: UpstreamServer, flow: Flow) -> None:
    error = {
        "type": "error",
        "error": {"type": "authentication_error", "message": f"revoked key {ANTHROPIC_KEY}"},
    }
    events = [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
        b'"role":"assistant","content":[],"model":"claude-opus-4-5","usage":{"input_tokens":3,"output_tokens":1}}}\n\n',
        b"event: error\ndata: " + orjson.dumps(error) + b"\n\n",
    ]
    upstream.app.enqueue(Canned.sse(events))
    with anthropic.Anthropic(
        api_key=ANTHROPIC_KEY, base_url=upstream.base_url, max_retries=0, http_client=flow.httpx2_client()
    ) as client:
        with pytest.raises(anthropic.APIError):
            for _ in client.messages.create(
                model="claude-opus-4-5",
                max_tokens=8,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            ):
                pass


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(echo_openai_401, id="openai-401-body"),
        pytest.param(echo_anthropic_stream_error, id="anthropic-stream-error"),
    ],
)
def test_a_full_key_echoed_by_the_provider_is_never_recorded(
    echo: Callable[[UpstreamServer, Flow], None], upstream: UpstreamServer, capture: Capture
) -> None:
    echo(upstream, capture.flow)
    (call,) = capture.records(1)
    assert call.status is CallStatus.ERROR and call.error is not None
    # What nemoflow should do: keep the error (kind, status, the rest of the message) but replace the
    # values of the request's own credential headers and key= parameters wherever recorded text holds them.
    assert leaked_places(capture, [call]) == []


# ----------------------------------------------------------------------------------------- adapters, gzip


PROBE_STREAM = [
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{"content":"391"},"finish_reason":null}]}\n\n',
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],'
    b'"usage":{"prompt_tokens":7,"completion_tokens":1,"total_tokens":8}}\n\n',
    b"data: [DONE]\n\n",
]


def post_stream(
    adapter: str, flow: Flow, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """POST through ``flow`` with one of the four adapters; status and every body byte the app read."""
    if adapter in ("httpx2", "httpx"):
        mod: Any = httpx2 if adapter == "httpx2" else httpx
        with mod.Client(transport=flow.transport(mod.HTTPTransport())) as client:
            with client.stream("POST", url, content=body, headers=headers) as response:
                return response.status_code, b"".join(response.iter_raw())
    if adapter == "requests":
        with flow.requests_session() as session:
            reply = session.post(url, data=body, headers=headers, timeout=10, stream=True)
            return reply.status_code, b"".join(reply.raw.stream(decode_content=False))

    async def main() -> tuple[int, bytes]:
        async with flow.aiohttp_session() as session:
            async with session.post(url, data=body, headers=headers) as reply:
                return reply.status, await reply.read()

    return asyncio.run(main())


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
@pytest.mark.parametrize("adapter", ["httpx2", "httpx", "requests", "aiohttp"])
def test_credential_headers_and_gzip_bodies_through_every_adapter(
    adapter: str, encoding: str, upstream: UpstreamServer, capture: Capture
) -> None:
    probe = f"probe-{uuid.uuid4().hex[:12]} gzip"
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": probe}], "stream": True}
    raw = orjson.dumps(request)
    headers = {**SECRET_HEADERS, "content-type": "application/json"}
    if encoding == "gzip":
        headers["content-encoding"] = "gzip"
    body = gzip.compress(raw) if encoding == "gzip" else raw
    upstream.app.enqueue(Canned.sse(PROBE_STREAM))
    status, got = post_stream(
        adapter, capture.flow, upstream.url(f"/v1/chat/completions?key={QUERY_KEY}"), body, headers
    )
    assert status == 200
    # nemoflow asked for usage itself, so the app reads the stream without the usage-only chunk.
    assert got == b"".join(PROBE_STREAM[:2] + PROBE_STREAM[3:])
    (sent,) = upstream.app.received
    assert {name: sent.header(name) for name in SECRET_HEADERS} == SECRET_HEADERS
    assert sent.query == f"key={QUERY_KEY}"
    assert sent.header("content-encoding") == (None if encoding == "identity" else "gzip")
    forwarded = orjson.loads(gzip.decompress(sent.body) if encoding == "gzip" else sent.body)
    assert forwarded == {**request, "stream_options": {"include_usage": True}}
    (call,) = capture.records(1)
    # The compressed body was read: the record has the prompt and the usage nemoflow asked for.
    assert call.request is not None and call.request.messages[0].text == probe
    assert call.usage.prompt_tokens == 7 and call.status is CallStatus.OK
    assert_nothing_leaked(capture, [call], probe)


# ----------------------------------------------------------------------------------------- key= in URLs

GEMINI_PATH = "/v1beta/models/gemini-2.5-flash"


@pytest.mark.parametrize(
    ("suffix", "recorded_suffix"),
    [
        (f":generateContent?key={QUERY_KEY}", ":generateContent"),
        (f":streamGenerateContent?alt=sse&key={QUERY_KEY}", ":streamGenerateContent?alt=sse"),
        (f":streamGenerateContent?key={QUERY_KEY}&alt=sse", ":streamGenerateContent?alt=sse"),
        (f":generateContent?KEY={QUERY_KEY}", ":generateContent"),
        (f":generateContent?key={QUERY_KEY}&key={QUERY_KEY}x&trace=1", ":generateContent?trace=1"),
        (f":generateContent?api_key={QUERY_KEY}", ":generateContent"),
    ],
)
def test_key_query_parameters_never_reach_a_record(
    suffix: str, recorded_suffix: str, upstream: UpstreamServer, capture: Capture
) -> None:
    probe = f"probe-{uuid.uuid4().hex[:12]} key="
    streamed = "stream" in suffix
    upstream.app.enqueue(
        fixture_stream("gemini-generate-content", "stream-sse-text")
        if streamed
        else fixture_json("gemini-generate-content", "response-text-stop")
    )
    body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": probe}]}]})
    status, _ = post_stream("httpx2", capture.flow, upstream.url(GEMINI_PATH + suffix), body, {})
    assert status == 200
    assert QUERY_KEY in upstream.app.received[0].query  # sent upstream as the application wrote it
    (call,) = capture.records(1)
    assert call.url == upstream.url(GEMINI_PATH + recorded_suffix)
    assert call.status is CallStatus.OK and call.stream is streamed
    assert_nothing_leaked(capture, [call], probe)


def test_credentials_in_the_url_user_info_never_reach_a_record(
    upstream: UpstreamServer, capture: Capture
) -> None:
    probe = f"probe-{uuid.uuid4().hex[:12]} userinfo"
    upstream.app.enqueue(fixture_json("gemini-generate-content", "response-text-stop"))
    url = upstream.url(GEMINI_PATH + ":generateContent").replace("://", f"://user:{QUERY_KEY}@")
    body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": probe}]}]})
    status, _ = post_stream("httpx2", capture.flow, url, body, {})
    assert status == 200
    (call,) = capture.records(1)
    assert call.url == upstream.url(GEMINI_PATH + ":generateContent")
    assert_nothing_leaked(capture, [call], probe)


# ----------------------------------------------------------------------------------------- transport errors


@pytest.fixture
def dead_port() -> Iterator[int]:
    yield from refused_port()


@pytest.mark.parametrize(
    "adapter",
    [
        "httpx2",
        "httpx",
        "requests",
        "aiohttp",
    ],
)
def test_a_failed_connection_records_no_key(adapter: str, dead_port: int, capture: Capture) -> None:
    url = f"http://127.0.0.1:{dead_port}{GEMINI_PATH}:generateContent?key={QUERY_KEY}"
    body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    errors: tuple[type[BaseException], ...] = (
        httpx2.ConnectError,
        httpx.ConnectError,
        requests.ConnectionError,
        OSError,
    )
    with pytest.raises(errors):
        post_stream(adapter, capture.flow, url, body, {**SECRET_HEADERS, "content-type": "application/json"})
    (call,) = capture.records(1)
    assert call.status is CallStatus.ERROR and call.exception is not None
    assert leaked_places(capture, [call]) == []
