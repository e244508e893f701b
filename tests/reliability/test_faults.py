"""Faults around a call: a dead exporter, raising hooks, upstream errors, across the four adapters."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import orjson
import pytest
import requests

from nemoflow import CallStatus, Flow, LlmCall, PolicyError, ScopeRecord, Subscriber
from nemoflow_exporter_openinference import OpenInferenceExporter
from tests.support import Collector
from tests.upstream import Canned, UpstreamServer, refused_port

CHAT = "/v1/chat/completions"
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
REPLY = {
    "id": "r1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
ADAPTERS = ("httpx2", "httpx", "requests", "aiohttp")


class Held(Subscriber):
    """Forwards calls to ``inner`` only once released, so delivery is provably still in progress."""

    def __init__(self, inner: Subscriber) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()
        self.timed_out = False

    def on_scope_start(self, scope: ScopeRecord) -> None:
        self.inner.on_scope_start(scope)

    def on_scope_end(self, scope: ScopeRecord) -> None:
        self.inner.on_scope_end(scope)

    def on_call(self, call: LlmCall) -> None:
        self.entered.set()
        if not self.release.wait(10):
            self.timed_out = True
        self.inner.on_call(call)

    def flush(self, timeout: float) -> bool:
        return self.inner.flush(timeout)

    def shutdown(self) -> None:
        self.inner.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as running:
        yield running


@pytest.fixture
def upstream(server: UpstreamServer) -> Iterator[UpstreamServer]:
    server.app.reset()
    yield server
    server.app.reset()


@pytest.fixture
def port() -> Iterator[int]:
    yield from refused_port()


def post(adapter: str, flow: Flow, url: str, body: Any) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` as JSON through ``flow`` with one of the four adapters: status, headers, body bytes."""
    data = orjson.dumps(body)
    headers = {"content-type": "application/json"}
    if adapter in ("httpx2", "httpx"):
        mod: Any = httpx2 if adapter == "httpx2" else httpx
        with mod.Client(transport=flow.transport(mod.HTTPTransport())) as client:
            response = client.post(url, content=data, headers=headers)
            return response.status_code, dict(response.headers), response.content
    if adapter == "requests":
        with flow.requests_session() as session:
            reply = session.post(url, data=data, headers=headers, timeout=10)
            return reply.status_code, dict(reply.headers), reply.content

    async def main() -> tuple[int, dict[str, str], bytes]:
        async with flow.aiohttp_session() as session:
            async with session.post(url, data=data, headers=headers) as reply:
                return reply.status, dict(reply.headers), await reply.read()

    return asyncio.run(main())


# ----------------------------------------------------------------------------------------- exporters


def test_a_dead_otlp_endpoint_never_holds_up_the_app(
    upstream: UpstreamServer, port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    exporter = OpenInferenceExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", batch=False)
    held = Held(exporter)
    collector = Collector()
    flow = Flow(subscribers=[held, collector])
    calls = 5
    upstream.app.enqueue(*[Canned.json(REPLY) for _ in range(calls)])
    try:
        with caplog.at_level(logging.WARNING):
            results = [post("httpx2", flow, upstream.url(CHAT), REQUEST) for _ in range(calls)]
            # Every call returned while delivery to the exporter was still held at the gate.
            assert held.entered.wait(5) and not held.release.is_set()
            assert [status for status, _, _ in results] == [200] * calls
            assert all(orjson.loads(body) == REPLY for _, _, body in results)
            held.release.set()
            assert flow.flush(15)
    finally:
        held.release.set()
        flow.shutdown(15)
    assert not held.timed_out
    # The exporter did try and fail; nemoflow saw nothing it had to contain, and recorded every call.
    assert any(record.name.startswith("opentelemetry") for record in caplog.records)
    assert len(collector.calls) == calls and flow.stats().calls_recorded == calls
    assert "subscriber" not in flow.stats().errors


class Raising(Subscriber):
    def on_call(self, call: LlmCall) -> None:
        raise RuntimeError("subscriber broke")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_raising_subscriber_leaves_the_call_and_other_subscribers_alone(
    adapter: str, upstream: UpstreamServer
) -> None:
    collector = Collector()
    flow = Flow(subscribers=[Raising(), collector])
    upstream.app.enqueue(Canned.json(REPLY))
    try:
        status, _, body = post(adapter, flow, upstream.url(CHAT), REQUEST)
        assert flow.flush(5)
    finally:
        flow.shutdown()
    assert status == 200 and orjson.loads(body) == REPLY
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.usage.total_tokens == 4
    assert flow.stats().errors == {"subscriber": 1}


# ----------------------------------------------------------------------------------------- policies


def broken_policy(request: Any, ctx: Any) -> Any:
    raise ValueError("policy broke")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_raising_policy_fails_open_and_sends_the_request_unchanged(
    adapter: str, upstream: UpstreamServer
) -> None:
    collector = Collector()
    flow = Flow(policies=[broken_policy], subscribers=[collector])
    upstream.app.enqueue(Canned.json(REPLY))
    try:
        status, _, _ = post(adapter, flow, upstream.url(CHAT), REQUEST)
        assert flow.flush(5)
    finally:
        flow.shutdown()
    assert status == 200
    assert upstream.app.received[0].body == orjson.dumps(REQUEST)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.policies_applied == ()
    assert flow.stats().errors == {"policy": 1}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_raising_policy_fails_closed_when_asked(adapter: str, upstream: UpstreamServer) -> None:
    collector = Collector()
    flow = Flow(policies=[broken_policy], subscribers=[collector], fail_open=False)
    try:
        with pytest.raises(PolicyError, match="policy broke"):
            post(adapter, flow, upstream.url(CHAT), REQUEST)
        assert flow.flush(5)
    finally:
        flow.shutdown()
    assert upstream.app.received == [] and collector.calls == []


# ----------------------------------------------------------------------------------------- upstream


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_429_with_retry_after_reaches_the_app_and_the_record(adapter: str, upstream: UpstreamServer) -> None:
    error = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    upstream.app.enqueue(Canned.json(error, status=429, headers=[("retry-after", "7")]))
    collector = Collector()
    flow = Flow(subscribers=[collector])
    try:
        status, headers, body = post(adapter, flow, upstream.url(CHAT), REQUEST)
        assert flow.flush(5)
    finally:
        flow.shutdown()
    assert status == 429 and headers.get("retry-after", headers.get("Retry-After")) == "7"
    assert orjson.loads(body) == error
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.http_status == 429
    assert call.error is not None and call.error.retry_after == 7.0
    assert call.error.message is not None and "slow down" in call.error.message


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_500_reaches_the_app_unchanged_and_is_an_error_record(adapter: str, upstream: UpstreamServer) -> None:
    upstream.app.enqueue(Canned(500, [("content-type", "text/plain")], [b"upstream exploded"]))
    collector = Collector()
    flow = Flow(subscribers=[collector])
    try:
        status, _, body = post(adapter, flow, upstream.url(CHAT), REQUEST)
        assert flow.flush(5)
    finally:
        flow.shutdown()
    assert status == 500 and body == b"upstream exploded"
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.http_status == 500 and call.error is not None


@pytest.mark.parametrize("adapter", ["httpx2", "httpx"])
def test_connection_refused_before_headers_raises_the_libraries_own_error(adapter: str, port: int) -> None:
    mod: Any = httpx2 if adapter == "httpx2" else httpx
    collector = Collector()
    flow = Flow(subscribers=[collector])
    try:
        with pytest.raises(mod.ConnectError):
            post(adapter, flow, f"http://127.0.0.1:{port}{CHAT}", REQUEST)
        assert flow.flush(5)
    finally:
        flow.shutdown()
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.http_status is None and call.exception is not None


def test_requests_connection_refused_is_still_a_requests_error(port: int) -> None:
    flow = Flow()
    try:
        with pytest.raises(requests.ConnectionError):
            post("requests", flow, f"http://127.0.0.1:{port}{CHAT}", REQUEST)
    finally:
        flow.shutdown()
