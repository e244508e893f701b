"""The requests adapter against a real loopback upstream: pass-through, rewriting, the tee, every exit."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator

import orjson
import pytest
import requests

import nemoflow
from nemoflow import CallStatus, Flow
from nemoflow._requests import NemoflowAdapter, requests_adapter, requests_session
from tests.support import Collector, chunk
from tests.upstream import Canned, Gate, UpstreamServer, refused_port

CHAT_PATH = "/v1/chat/completions"


USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
STREAM = [
    chunk("Hel"),
    chunk("lo"),
    chunk(finish="stop"),
    chunk(choices=False, usage=USAGE),
    b"data: [DONE]\n\n",
]
STRIPPED = b"".join(STREAM[:3]) + STREAM[4]  # what the app reads when nemoflow injected include_usage
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}
COMPLETION = {
    "id": "x",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": USAGE,
}


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
def collector() -> Collector:
    return Collector()


@pytest.fixture
def flow(collector: Collector) -> Iterator[Flow]:
    made = Flow(subscribers=[collector])
    yield made
    made.shutdown()


@pytest.fixture
def session(flow: Flow) -> Iterator[requests.Session]:
    with requests_session(flow) as made:
        yield made


def test_non_llm_requests_pass_through_unread(
    upstream: UpstreamServer, session: requests.Session, flow: Flow
) -> None:
    upstream.app.enqueue(Canned.json({"data": []}), Canned.json({"id": "file-1"}))
    multipart = b"--boundary\r\nraw multipart \xff\xfe"
    response = session.get(upstream.url("/v1/models"))
    posted = session.post(upstream.url("/v1/files"), data=multipart)
    assert response.json() == {"data": []} and posted.json() == {"id": "file-1"}
    assert upstream.app.received[1].body == multipart
    assert flow.stats().passed_through == 2
    assert flow.flush(5) and flow.stats().calls_recorded == 0


def test_a_streamed_upload_to_an_llm_route_passes_through(
    upstream: UpstreamServer, session: requests.Session, flow: Flow
) -> None:
    upstream.app.enqueue(Canned.json(COMPLETION))
    parts = [b'{"model": "gpt-4o-mini", ', b'"messages": []}']
    response = session.post(upstream.url(CHAT_PATH), data=iter(parts))
    assert response.json()["id"] == "x" and upstream.app.received[0].body == b"".join(parts)
    assert flow.stats().passed_through == 1
    assert flow.flush(5) and flow.stats().calls_recorded == 0


def test_the_adapter_alone_reads_a_non_streamed_body_before_returning(
    upstream: UpstreamServer, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.json(COMPLETION))
    adapter = NemoflowAdapter(flow)
    prepared = requests.Request("POST", upstream.url(CHAT_PATH), json=REQUEST).prepare()
    response = adapter.send(prepared)
    assert flow.flush(5) and [c.status for c in collector.calls] == [CallStatus.OK]
    assert response.json()["id"] == "x"
    adapter.close()


def test_unchanged_request_bytes_are_identical(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    raw = b'{"model": "gpt-4o-mini",  "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}'
    upstream.app.enqueue(Canned.json(COMPLETION))
    response = session.post(upstream.url(CHAT_PATH), data=raw, headers={"content-type": "application/json"})
    assert response.json()["choices"][0]["message"]["content"] == "Hi"
    assert upstream.app.received[0].body == raw
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.usage.prompt_tokens == 7 and call.http_status == 200


def test_stream_is_teed_and_injected_usage_stripped(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    flow.policies = (nemoflow.cap_max_tokens(50),)
    upstream.app.enqueue(Canned.sse(STREAM))
    with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True) as response:
        received = b"".join(response.iter_content(chunk_size=None))
    sent = upstream.app.received[0]
    assert sent.json()["max_tokens"] == 50 and sent.json()["stream_options"] == {"include_usage": True}
    assert sent.header("content-length") == str(len(sent.body)) and sent.header("transfer-encoding") is None
    assert received == STRIPPED  # the usage-only chunk the app never asked for is gone
    assert response.request.body == sent.body  # response.request is what went on the wire
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.response is not None and call.response.text == "Hello"
    assert call.usage.prompt_tokens == 7 and call.policies_applied


def test_callers_own_stream_options_are_never_touched(
    upstream: UpstreamServer, session: requests.Session
) -> None:
    upstream.app.enqueue(Canned.sse(STREAM))
    body = orjson.dumps({**REQUEST, "stream": True, "stream_options": {"include_usage": True}})
    with session.post(upstream.url(CHAT_PATH), data=body, stream=True) as response:
        received = b"".join(response.iter_content(chunk_size=None))
    assert upstream.app.received[0].body == body and received == b"".join(STREAM)


def test_breaking_out_of_a_stream_cancels_with_partial_text(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse([chunk("Hel"), chunk("lo"), chunk(" world")]))
    with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True) as response:
        for piece in response.iter_content(chunk_size=None):
            assert piece == chunk("Hel")
            break
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.CANCELLED
    assert call.response is not None and call.response.text == "Hel"


def test_closing_before_reading_cancels(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse(STREAM))
    response = session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True)
    response.close()
    assert flow.flush(5)
    assert [c.status for c in collector.calls] == [CallStatus.CANCELLED]


def test_an_abandoned_response_is_finished_when_collected(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse([chunk("partial")]))
    response = session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True)
    with warnings.catch_warnings():  # the abandoned connection's socket is collected unclosed
        warnings.simplefilter("ignore", ResourceWarning)
        del response
        gc.collect()
    assert flow.flush(5)
    assert [c.status for c in collector.calls] == [CallStatus.CANCELLED]


def test_upstream_failure_is_recorded_and_reraised(
    session: requests.Session, flow: Flow, collector: Collector
) -> None:
    for port in refused_port():
        with pytest.raises(requests.ConnectionError):
            session.post(f"http://127.0.0.1:{port}{CHAT_PATH}", json=REQUEST)
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.exception is not None
    assert "Connection refused" in call.exception


def test_a_stream_broken_midway_is_an_error_with_partial_text(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse([chunk("Hel"), chunk("lo"), chunk(finish="stop")], abort_after=2))
    pieces: list[bytes] = []
    with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True) as response:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for piece in response.iter_content(chunk_size=None):
                pieces.append(piece)
    assert b"".join(pieces) == chunk("Hel") + chunk("lo")
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.response is not None and call.response.text == "Hello"


def test_error_status_is_classified(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    error = {
        "error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}
    }
    upstream.app.enqueue(Canned.json(error, status=401))
    response = session.post(upstream.url(CHAT_PATH), json=REQUEST)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.error is not None and call.error.kind == "authentication"
    assert call.http_status == 401


def test_guardrail_block_reaches_the_caller_and_nothing_is_sent(
    upstream: UpstreamServer, collector: Collector
) -> None:
    flow = Flow(guardrails=[lambda request, ctx: nemoflow.Block("off-topic")], subscribers=[collector])
    upstream.app.enqueue(Canned.sse(STREAM))
    with requests_session(flow) as session:
        with pytest.raises(nemoflow.GuardrailBlocked, match="off-topic"):
            session.post(upstream.url(CHAT_PATH), json=REQUEST)
    assert upstream.app.received == []
    assert flow.flush(5) and collector.calls[0].status is CallStatus.BLOCKED
    flow.shutdown()


def test_gzip_encoded_stream_is_decoded_for_the_app_and_the_record(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse(STREAM).gzipped())
    with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True) as response:
        assert response.headers["content-encoding"] == "gzip"
        lines = list(response.iter_lines())
    assert lines == STRIPPED.splitlines()
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.response is not None and call.response.text == "Hello"
    assert call.usage.total_tokens == 9


def test_raw_reads_are_teed_and_respect_the_size_asked(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(Canned.sse(STREAM))
    with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True) as response:
        pieces = []
        while piece := response.raw.read(7):
            assert len(piece) <= 7
            pieces.append(piece)
    assert b"".join(pieces) == STRIPPED
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.usage.total_tokens == 9


def test_undecoded_raw_reads_still_feed_the_record(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    canned = Canned.sse(STREAM).gzipped()
    upstream.app.enqueue(canned)
    with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True) as response:
        body = response.raw.read(decode_content=False)
    assert body == b"".join(canned.chunks)  # the app asked for the bytes as sent, and gets them
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.response is not None and call.response.text == "Hello"


def test_the_first_event_reaches_the_app_before_the_rest_is_sent(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    gate = Gate(timeout=5.0)
    upstream.app.enqueue(Canned.sse(STREAM, gates={1: gate}))
    with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True) as response:
        pieces = response.iter_content(chunk_size=None)
        first = next(pieces)
        # Still held by the server: a buffering adapter could not have returned yet.
        assert first == STREAM[0] and not gate.is_open and not gate.timed_out
        gate.open()
        rest = b"".join(pieces)
    assert not gate.timed_out
    assert first + rest == STRIPPED
    assert flow.flush(5) and collector.calls[0].status is CallStatus.OK


def test_a_redirect_runs_the_applications_body_through_the_flow_again(
    upstream: UpstreamServer, session: requests.Session, flow: Flow, collector: Collector
) -> None:
    upstream.app.enqueue(
        Canned(307, [("location", CHAT_PATH + "?hop=2"), ("content-length", "0")]), Canned.sse(STREAM)
    )
    with session.post(upstream.url(CHAT_PATH), json={**REQUEST, "stream": True}, stream=True) as response:
        received = b"".join(response.iter_content(chunk_size=None))
    first, second = upstream.app.received
    assert second.query == "hop=2" and second.body == first.body
    assert second.json()["stream_options"] == {"include_usage": True}
    assert received == STRIPPED
    assert flow.flush(5) and collector.calls[-1].status is CallStatus.OK


def test_adapter_factories(flow: Flow) -> None:
    adapter = requests_adapter(flow, max_retries=2, pool_maxsize=4)
    assert isinstance(adapter, NemoflowAdapter) and adapter.flow is flow and adapter.max_retries.total == 2
    with requests_session(flow) as session:
        assert isinstance(session.get_adapter("https://api.openai.com/v1/chat/completions"), NemoflowAdapter)
        assert isinstance(session.get_adapter("http://127.0.0.1/"), NemoflowAdapter)
    assert NemoflowAdapter().flow is nemoflow.default_flow()
