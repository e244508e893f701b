"""The runtime, driven as an HTTP adapter would drive it: hooks, records, scopes, fail-open, delivery."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider

import nemoflow
from nemoflow import (
    AnnotatedLlmRequest,
    Block,
    CallContext,
    CallStatus,
    DropContent,
    Flow,
    LlmCall,
    MaskPatterns,
    ScopeRecord,
    Subscriber,
    TruncateMedia,
)

CHAT_URL = "https://api.openai.com/v1/chat/completions"


class Collector(Subscriber):
    def __init__(self) -> None:
        self.calls: list[LlmCall] = []
        self.started: list[ScopeRecord] = []
        self.ended: list[ScopeRecord] = []
        self.order: list[str] = []

    def on_scope_start(self, scope: ScopeRecord) -> None:
        self.started.append(scope)
        self.order.append(f"start:{scope.name}")

    def on_scope_end(self, scope: ScopeRecord) -> None:
        self.ended.append(scope)
        self.order.append(f"end:{scope.name}")

    def on_call(self, call: LlmCall) -> None:
        self.calls.append(call)
        self.order.append("call")


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def flow(collector: Collector) -> Iterator[Flow]:
    made = Flow(subscribers=[collector])
    yield made
    made.shutdown()


def body(**overrides: Any) -> bytes:
    request: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Mail me at ana@example.com"},
        ],
        "max_tokens": 500,
    }
    request.update(overrides)
    return orjson.dumps(request)


RESPONSE = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Sure."}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 10,
            "total_tokens": 1010,
            "prompt_tokens_details": {"cached_tokens": 800},
        },
    }
)


def sse(*events: dict[str, Any], done: bool = True) -> list[bytes]:
    chunks = [b"data: " + orjson.dumps(event) + b"\n\n" for event in events]
    if done:
        chunks.append(b"data: [DONE]\n\n")
    return chunks


def chunk(
    content: str | None = None, finish: str | None = None, usage: Any = None, choices: bool = True
) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
        "usage": usage,
    }


def run_plain(
    flow: Flow, request: bytes = b"", headers: dict[str, str] | None = None
) -> nemoflow.LlmCallHandle:
    sent = {"content-type": "application/json", **(headers or {})}
    handle = flow.start_call("POST", CHAT_URL, sent, request or body())
    assert handle is not None
    handle.response_started(200, {"content-type": "application/json"})
    handle.response_body(RESPONSE)
    handle.finish()
    return handle


# ----------------------------------------------------------------------------------------- request side


def test_non_llm_traffic_is_left_alone(flow: Flow) -> None:
    assert flow.start_call("GET", "https://api.openai.com/v1/models", {}, None) is None
    assert flow.start_call("POST", "https://example.com/upload", {}, b"{}") is None
    multipart = b"--x\r\nContent-Disposition: form-data\r\n\r\nhi\r\n--x--"
    assert flow.start_call("POST", CHAT_URL, {"content-type": "multipart/form-data"}, multipart) is None
    assert flow.stats().passed_through == 3


def test_unchanged_request_sends_the_original_bytes(flow: Flow) -> None:
    original = body()
    handle = flow.start_call("POST", CHAT_URL, {}, original)
    assert handle is not None
    assert handle.body is original and not handle.body_changed and handle.headers_update == {}


def test_streamed_request_gets_usage_injected_and_flagged(flow: Flow) -> None:
    handle = flow.start_call("POST", CHAT_URL, {}, body(stream=True))
    assert handle is not None and handle.injected_stream_usage and handle.body_changed
    assert orjson.loads(handle.body)["stream_options"] == {"include_usage": True}
    # the usage event is stripped from what the app reads, which needs an uncompressed body
    assert handle.headers_update == {"content-length": str(len(handle.body)), "accept-encoding": "identity"}
    own = flow.start_call("POST", CHAT_URL, {}, body(stream=True, stream_options={"include_usage": False}))
    assert own is not None and not own.injected_stream_usage and not own.body_changed


def test_injection_can_be_turned_off_per_url(collector: Collector) -> None:
    flow = Flow(inject_stream_usage=lambda url: "localhost" not in url)
    local = flow.start_call("POST", "http://localhost:8080/v1/chat/completions", {}, body(stream=True))
    remote = flow.start_call("POST", CHAT_URL, {}, body(stream=True))
    assert local is not None and not local.body_changed and not local.injected_stream_usage
    assert remote is not None and remote.injected_stream_usage


def test_policies_rewrite_what_is_sent_and_are_recorded(collector: Collector) -> None:
    flow = Flow(
        policies=[nemoflow.cap_max_tokens(100), nemoflow.route_model({"gpt-4o-mini": "gpt-4.1-mini"})],
        subscribers=[collector],
    )
    handle = run_plain(flow)
    sent = orjson.loads(handle.body)
    assert sent["max_tokens"] == 100 and sent["model"] == "gpt-4.1-mini"
    assert sent["messages"] == orjson.loads(body())["messages"]
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.policies_applied == ("cap_max_tokens(100)", "route_model")
    assert call.request is not None and call.request.params.max_tokens == 100


def test_gzip_request_bodies_are_read_and_rewritten_in_gzip(flow: Flow) -> None:
    flow.policies = (nemoflow.cap_max_tokens(7),)
    handle = flow.start_call("POST", CHAT_URL, {"Content-Encoding": "gzip"}, gzip.compress(body()))
    assert handle is not None and handle.body_changed
    assert orjson.loads(gzip.decompress(handle.body))["max_tokens"] == 7


def test_guardrail_block_raises_and_records_a_blocked_call(collector: Collector) -> None:
    def no_secrets(request: AnnotatedLlmRequest, ctx: CallContext) -> Block | None:
        return Block("contains an e-mail address") if "@" in request.messages[-1].text else None

    flow = Flow(guardrails=[no_secrets], subscribers=[collector])
    with pytest.raises(nemoflow.GuardrailBlocked) as caught:
        flow.start_call("POST", CHAT_URL, {}, body())
    assert caught.value.reason == "contains an e-mail address" and caught.value.guardrail == "no_secrets"
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.BLOCKED and call.block_reason == "contains an e-mail address"
    assert call.http_status is None


def boom(request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest:
    raise RuntimeError("policy bug")


def test_a_failing_policy_is_contained_when_fail_open(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    flow = Flow(policies=[boom, nemoflow.cap_max_tokens(10)], subscribers=[collector])
    for _ in range(3):
        handle = flow.start_call("POST", CHAT_URL, {}, body())
        assert handle is not None and orjson.loads(handle.body)["max_tokens"] == 10
    assert flow.stats().errors["policy"] == 3
    assert sum("policy error contained" in r.getMessage() for r in caplog.records) == 1  # logged once


def test_a_failing_policy_raises_when_fail_closed() -> None:
    flow = Flow(policies=[boom], fail_open=False)
    with pytest.raises(nemoflow.PolicyError, match="policy bug"):
        flow.start_call("POST", CHAT_URL, {}, body())


def test_a_request_the_codec_rejects_passes_through_or_raises() -> None:
    bad = orjson.dumps({"model": "m", "messages": 5})
    open_flow = Flow()
    assert open_flow.start_call("POST", CHAT_URL, {}, bad) is None
    assert open_flow.stats().errors["codec"] == 1
    with pytest.raises(nemoflow.DecodeError):
        Flow(fail_open=False).start_call("POST", CHAT_URL, {}, bad)


# ----------------------------------------------------------------------------------------- records


def test_plain_call_record(flow: Flow, collector: Collector) -> None:
    run_plain(flow, headers={"x-stainless-retry-count": "2", "Authorization": "Bearer sk-secret"})
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.OK and call.http_status == 200 and call.attempt == 3
    assert (
        call.model == "gpt-4o-mini-2024-07-18" and call.codec == "openai-chat" and call.provider == "openai"
    )
    assert call.usage.prompt_tokens == 1000 and call.usage.cache_read_tokens == 800
    assert call.usage_source == "reported"
    assert call.response is not None and call.response.text == "Sure."
    assert call.cost is not None and call.cost.source == "price_table" and call.cost.total is not None
    assert call.cost.total > 0
    assert (
        call.first_byte_time_ns is not None
        and call.start_time_ns <= call.first_byte_time_ns <= call.end_time_ns
    )
    assert "sk-secret" not in repr(call)


def test_streamed_call_record_in_any_chunking(flow: Flow, collector: Collector) -> None:
    events = sse(
        chunk("Hel"),
        chunk("lo"),
        chunk(finish="stop"),
        chunk(choices=False, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}),
    )
    data = b"".join(events)
    handle = flow.start_call("POST", CHAT_URL, {}, body(stream=True))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream; charset=utf-8"})
    for i in range(0, len(data), 7):
        handle.stream_chunk(data[i : i + 7])
    handle.finish()
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.stream and call.status is CallStatus.OK
    assert call.response is not None and call.response.text == "Hello"
    assert (call.usage.prompt_tokens, call.usage.completion_tokens) == (5, 2)
    assert call.time_to_first_token_ms is not None and call.time_to_first_token_ms >= 0


def test_stream_closed_early_is_cancelled_with_the_partial_reply(flow: Flow, collector: Collector) -> None:
    handle = flow.start_call("POST", CHAT_URL, {}, body(stream=True))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    handle.stream_chunk(sse(chunk("Partial"), done=False)[0])
    handle.finish(CallStatus.CANCELLED)
    handle.finish(CallStatus.OK)  # a second finish (e.g. from GC) changes nothing
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.CANCELLED
    assert call.response is not None and call.response.text == "Partial"
    assert call.usage_source == "missing" and call.usage.prompt_tokens is None and call.cost is None


def test_garbage_in_the_stream_is_contained(flow: Flow, collector: Collector) -> None:
    handle = flow.start_call("POST", CHAT_URL, {}, body(stream=True))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    handle.stream_chunk(b"data: {not json}\n\n")
    handle.stream_chunk(sse(chunk("ok", finish="stop"))[0])
    handle.finish()
    assert flow.flush(5)
    assert collector.calls[0].response is not None and collector.calls[0].response.text == "ok"
    assert flow.stats().errors["stream"] == 1


def test_error_response_is_classified(flow: Flow, collector: Collector) -> None:
    handle = flow.start_call("POST", CHAT_URL, {}, body())
    assert handle is not None
    handle.response_started(429, {"content-type": "application/json", "retry-after": "3"})
    handle.response_body(
        orjson.dumps({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}})
    )
    handle.finish()
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.http_status == 429
    assert call.error is not None and call.error.kind == "rate_limit" and call.error.retry_after == 3.0


def test_transport_exception_is_recorded(flow: Flow, collector: Collector) -> None:
    handle = flow.start_call("POST", CHAT_URL, {}, body())
    assert handle is not None
    handle.finish(exception=ConnectionResetError("reset by peer"))
    assert flow.flush(5)
    (call,) = collector.calls
    assert call.status is CallStatus.ERROR and call.exception == "ConnectionResetError: reset by peer"


def test_url_credentials_are_never_recorded(flow: Flow, collector: Collector) -> None:
    url = "https://user:pw@generativelanguage.googleapis.com/v1/chat/completions?key=AIzaSECRET&alt=sse"
    handle = flow.start_call("POST", url, {}, body())
    assert handle is not None
    handle.finish()
    assert flow.flush(5)
    recorded = collector.calls[0].url
    assert "AIzaSECRET" not in recorded and "pw@" not in recorded and "alt=sse" in recorded


# ----------------------------------------------------------------------------------------- sanitizers


def test_sanitizers_change_only_what_is_recorded(collector: Collector) -> None:
    flow = Flow(sanitizers=[MaskPatterns()], subscribers=[collector])
    handle = run_plain(flow)
    assert b"ana@example.com" in handle.body  # what is sent is untouched
    assert flow.flush(5)
    request = collector.calls[0].request
    assert request is not None and request.messages[-1].text == "Mail me at [masked]"


def test_drop_content_keeps_counts(collector: Collector) -> None:
    flow = Flow(sanitizers=[DropContent()], subscribers=[collector])
    run_plain(flow)
    assert flow.flush(5)
    call = collector.calls[0]
    assert call.request is not None and call.request.system == "[redacted]"
    assert all(m.text == "[redacted]" for m in call.request.messages)
    assert call.response is not None and call.response.text == "[redacted]"
    assert call.usage.prompt_tokens == 1000


def test_truncate_media(collector: Collector) -> None:
    image = "data:image/png;base64," + "A" * 10_000
    request = body(
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]}]
    )
    flow = Flow(sanitizers=[TruncateMedia(16)], subscribers=[collector])
    handle = flow.start_call("POST", CHAT_URL, {}, request)
    assert handle is not None and handle.body is request
    handle.finish()
    assert flow.flush(5)
    recorded = collector.calls[0].request
    assert recorded is not None
    part = recorded.messages[0].content[0]  # type: ignore[index]
    assert isinstance(part, nemoflow.ImagePart)
    assert part.url == "data:image/png;base64," + "A" * 16 + "…[truncated 10000 chars]"


# ----------------------------------------------------------------------------------------- scopes


def test_scopes_and_tools_parent_calls(flow: Flow, collector: Collector) -> None:
    with flow.scope("plan-trip", kind="AGENT", session_id="s-1", user_id="u-1", team="travel") as agent:
        with flow.scope("research", kind="CHAIN"):
            run_plain(flow)
            with flow.tool("get_weather", arguments={"city": "Oslo"}, tool_call_id="call_1") as tool:
                tool.result = {"temp_c": 3}
    assert flow.flush(5)
    assert collector.order == [
        "start:plan-trip",
        "start:research",
        "call",
        "start:get_weather",
        "end:get_weather",
        "end:research",
        "end:plan-trip",
    ]
    by_name = {scope.name: scope for scope in collector.ended}
    call = collector.calls[0]
    assert call.parent_id == by_name["research"].span_id
    assert by_name["research"].parent_id == agent.span_id == by_name["plan-trip"].span_id
    assert by_name["get_weather"].parent_id == by_name["research"].span_id
    assert {s.trace_id for s in collector.ended} == {call.trace_id}
    assert call.scope_path == ("plan-trip", "research")
    assert (call.session_id, call.user_id) == ("s-1", "u-1")
    assert by_name["get_weather"].tool_result == {"temp_c": 3}
    assert by_name["get_weather"].tool_arguments == {"city": "Oslo"}
    assert by_name["plan-trip"].attributes == {"team": "travel"}


def test_a_failing_scope_is_marked_and_the_exception_propagates(flow: Flow, collector: Collector) -> None:
    with pytest.raises(KeyError):
        with flow.scope("agent"):
            raise KeyError("missing")
    assert flow.flush(5)
    assert collector.ended[0].status == "error" and collector.ended[0].error == "KeyError: 'missing'"


def test_threads_do_not_share_scopes(flow: Flow, collector: Collector) -> None:
    ready = threading.Barrier(4)

    def worker(name: str) -> None:
        with flow.scope(name):
            ready.wait(5)  # all four scopes are open at the same time
            run_plain(flow)

    threads = [threading.Thread(target=worker, args=(f"agent-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert flow.flush(5)
    spans = {s.name: s.span_id for s in collector.ended}
    assert sorted(c.scope_path[0] for c in collector.calls) == sorted(spans)
    assert all(c.parent_id == spans[c.scope_path[0]] for c in collector.calls)


def test_asyncio_tasks_do_not_share_scopes(flow: Flow, collector: Collector) -> None:
    async def task(name: str, gate: asyncio.Event) -> None:
        async with flow.scope(name):
            await gate.wait()
            run_plain(flow)

    async def main() -> None:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(task(f"t{i}", gate)) for i in range(5)]
        await asyncio.sleep(0)  # let every task open its scope before any call
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert flow.flush(5)
    spans = {s.name: s.span_id for s in collector.ended}
    assert len(collector.calls) == 5
    assert all(c.parent_id == spans[c.scope_path[0]] for c in collector.calls)


def test_calls_under_an_application_span_keep_its_otel_context(flow: Flow, collector: Collector) -> None:
    tracer = TracerProvider().get_tracer("app")
    with tracer.start_as_current_span("request-handler"):
        run_plain(flow)
    run_plain(flow)
    assert flow.flush(5)
    assert collector.calls[0].otel_context is not None and collector.calls[1].otel_context is None


INTERNAL_URL = "http://llm.internal:8000/v1/chat/completions"


def parse_traceparent(value: str) -> tuple[int, int]:
    version, trace_hex, span_hex, flags = value.split("-")
    assert (version, flags, len(trace_hex), len(span_hex)) == ("00", "01", 32, 16)
    return int(trace_hex, 16), int(span_hex, 16)


def test_no_traceparent_is_sent_by_default(flow: Flow) -> None:
    handle = flow.start_call("POST", INTERNAL_URL, {}, body())
    assert handle is not None and "traceparent" not in handle.headers_update
    assert handle.headers_update == {} and not handle.body_changed
    handle.finish()


def test_traceparent_goes_only_to_hosts_the_predicate_accepts(collector: Collector) -> None:
    flow = Flow(subscribers=[collector], propagate_trace_context=lambda url: "internal" in url)
    try:
        with flow.scope("agent") as scope:
            internal = flow.start_call("POST", INTERNAL_URL, {}, body())
            public = flow.start_call("POST", CHAT_URL, {}, body())
        assert internal is not None and public is not None
        assert "traceparent" not in public.headers_update
        trace_id, span_id = parse_traceparent(internal.headers_update["traceparent"])
        assert (trace_id, span_id) == (internal.trace_id, internal.span_id)
        for handle in (internal, public):
            handle.finish()
        assert flow.flush(5)
    finally:
        flow.shutdown()
    record = next(call for call in collector.calls if "internal" in call.url)
    assert (record.trace_id, record.span_id) == (trace_id, span_id)
    assert record.parent_id == scope.span_id and record.trace_id == collector.started[0].trace_id


def test_a_broken_propagation_predicate_sends_nothing_and_is_counted(collector: Collector) -> None:
    def broken(url: str) -> bool:
        raise RuntimeError("bad predicate")

    flow = Flow(subscribers=[collector], propagate_trace_context=broken)
    try:
        handle = flow.start_call("POST", INTERNAL_URL, {}, body())
        assert handle is not None and "traceparent" not in handle.headers_update
        handle.finish()
        assert flow.stats().errors.get("config") == 1
    finally:
        flow.shutdown()


def test_roots_under_an_application_span_join_its_trace(flow: Flow, collector: Collector) -> None:
    tracer = TracerProvider().get_tracer("app")
    with tracer.start_as_current_span("request-handler") as app_span:
        app_trace = app_span.get_span_context().trace_id
        run_plain(flow)
        with flow.scope("agent"):
            run_plain(flow)
    run_plain(flow)
    assert flow.flush(5)
    unscoped, scoped, outside = collector.calls
    assert unscoped.trace_id == app_trace == scoped.trace_id == collector.started[0].trace_id
    assert outside.trace_id != app_trace


# ----------------------------------------------------------------------------------------- delivery


class Raising(Subscriber):
    def on_call(self, call: LlmCall) -> None:
        raise RuntimeError("exporter bug")


def test_a_raising_subscriber_does_not_stop_the_others(collector: Collector) -> None:
    flow = Flow(subscribers=[Raising(), collector])
    run_plain(flow)
    run_plain(flow)
    assert flow.flush(5)
    assert len(collector.calls) == 2 and flow.stats().errors["subscriber"] == 2


class Blocking(Subscriber):
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def on_call(self, call: LlmCall) -> None:
        self.entered.set()
        self.release.wait(10)


def test_a_stuck_subscriber_never_blocks_the_caller() -> None:
    stuck = Blocking()
    flow = Flow(subscribers=[stuck], max_queue=2)
    run_plain(flow)
    assert stuck.entered.wait(5)  # delivery thread is now stuck inside the subscriber
    for _ in range(10):
        run_plain(flow)  # returns at once although nothing is being delivered
    assert flow.stats().events_dropped == 8
    assert flow.flush(0.05) is False  # bounded wait, reports the timeout
    stuck.release.set()
    assert flow.flush(5)


class Reentrant(Subscriber):
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.results: list[object] = []

    def on_call(self, call: LlmCall) -> None:
        # An exporter's own HTTP request passing through instrumented clients must not be observed.
        self.results.append(self.flow.start_call("POST", CHAT_URL, {}, body()))


def test_delivery_thread_traffic_is_never_observed() -> None:
    flow = Flow()
    reentrant = Reentrant(flow)
    flow.add_subscriber(reentrant)
    run_plain(flow)
    assert flow.flush(5)
    assert reentrant.results == [None]


def test_default_flow_and_configure() -> None:
    first = nemoflow.default_flow()
    assert nemoflow.default_flow() is first
    configured = nemoflow.configure(policies=[nemoflow.cap_max_tokens(5)])
    try:
        assert nemoflow.default_flow() is configured is not first
    finally:
        nemoflow.configure()


# ----------------------------------------------------------------------------------------- built-in policies


def ctx() -> CallContext:
    return CallContext(codec="openai-chat", provider="openai", method="POST", url=CHAT_URL, headers={})


def decoded(**overrides: Any) -> AnnotatedLlmRequest:
    return nemoflow.get_codec("openai-chat").decode(orjson.loads(body(**overrides)))


def test_builtin_policies() -> None:
    request = decoded(temperature=0.3, metadata={"team": "a"}, logit_bias={"1": 2})
    assert nemoflow.cap_max_tokens(1000)(request, ctx()) is None  # already below the cap
    capped = nemoflow.cap_max_tokens(50)(request, ctx())
    assert capped is not None and capped.params.max_tokens == 50
    assert nemoflow.set_system("New")(request, ctx()).system == "New"  # type: ignore[union-attr]
    prepended = nemoflow.prepend_system("Policy:")(request, ctx())
    assert prepended is not None and prepended.system == "Policy:\n\nBe brief."
    assert nemoflow.prepend_system("Policy:")(prepended, ctx()) is None  # idempotent across retries
    dropped = nemoflow.drop_params("temperature", "logit_bias")(request, ctx())
    assert dropped is not None and dropped.params.temperature is None and "logit_bias" not in dropped.extra
    tagged = nemoflow.add_metadata({"env": "prod"})(request, ctx())
    assert tagged is not None and tagged.extra["metadata"] == {"team": "a", "env": "prod"}
    user = nemoflow.add_metadata({"user": "u-9"}, key="user")(request, ctx())
    assert user is not None and user.extra["user"] == "u-9"
    assert nemoflow.route_model({"other": "x"})(request, ctx()) is None
    with pytest.raises(ValueError):
        nemoflow.cap_max_tokens(0)


def test_policy_edits_reach_the_wire_through_every_builtin(flow: Flow) -> None:
    flow.policies = (nemoflow.prepend_system("Stay safe."), nemoflow.drop_params("temperature"))
    handle = flow.start_call("POST", CHAT_URL, {}, body(temperature=1.2))
    assert handle is not None
    sent = orjson.loads(handle.body)
    assert "temperature" not in sent
    assert sent["messages"][0] == {"role": "system", "content": "Stay safe.\n\nBe brief."}
    assert replace(handle.request, system=None).messages == handle.request.messages


EXIT_SCRIPT = """
import atexit, sys, threading, orjson
from nemoflow import Flow, Subscriber

exiting = threading.Event()

class ToFile(Subscriber):
    def on_call(self, call):
        exiting.wait(10)  # hold delivery until the interpreter is exiting
        with open(sys.argv[1], "a") as out:
            out.write(call.model + "\\n")

# Registered after nemoflow's own handler, so it runs first (atexit is last-in, first-out).
atexit.register(exiting.set)
flow = Flow(subscribers=[ToFile()])
body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
for _ in range(3):
    handle = flow.start_call("POST", "https://api.openai.com/v1/chat/completions", {}, body)
    handle.finish()
# no flush: the records are still queued when the interpreter exits
"""


def test_queued_records_are_flushed_at_interpreter_exit(tmp_path: Any) -> None:
    import subprocess
    import sys

    out = tmp_path / "records.txt"
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(out)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines() == ["gpt-4o-mini"] * 3


def test_binary_event_streams_use_the_codecs_byte_decoder(flow: Flow, collector: Collector) -> None:
    import base64
    import json
    from pathlib import Path

    fixtures = sorted((Path(__file__).parent.parent / "spec/fixtures/bedrock-converse").glob("stream-*.json"))
    fixture = json.loads(fixtures[0].read_text())
    data = base64.b64decode(fixture["eventstream_base64"])
    url = fixture.get("url") or "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse-stream"
    request = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    handle = flow.start_call("POST", url, {}, orjson.dumps(request))
    assert handle is not None and handle.codec.name == "bedrock-converse"
    handle.response_started(200, {"content-type": "application/vnd.amazon.eventstream"})
    for i in range(0, len(data), 5):
        handle.stream_chunk(data[i : i + 5])
    handle.finish()
    assert flow.flush(5)
    call = collector.calls[0]
    expected = nemoflow.get_codec("bedrock-converse").decode_stream([data], url=url)
    assert call.stream and call.response is not None
    assert call.response.text == expected.text and call.usage == expected.usage
    assert flow.stats().errors == {}


def test_redirect_hops_are_not_recorded_and_unread_errors_are_errors(
    flow: Flow, collector: Collector
) -> None:
    hop = flow.start_call("POST", CHAT_URL, {}, body())
    assert hop is not None
    hop.response_started(307, {"location": "https://elsewhere/v1/chat/completions"})
    hop.finish(CallStatus.CANCELLED)
    failed = flow.start_call("POST", CHAT_URL, {}, body())
    assert failed is not None
    failed.response_started(500, {"content-type": "application/json"})
    failed.finish(CallStatus.CANCELLED)  # closed before its body was read (raise_for_status)
    assert flow.flush(5)
    assert [c.status for c in collector.calls] == [CallStatus.ERROR]
    assert collector.calls[0].http_status == 500


def test_chunks_after_finish_are_ignored(flow: Flow, collector: Collector) -> None:
    handle = flow.start_call("POST", CHAT_URL, {}, body(stream=True))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    handle.stream_chunk(sse(chunk("one"), done=False)[0])
    handle.finish(CallStatus.CANCELLED)
    handle.stream_chunk(sse(chunk(" two"), done=False)[0])
    assert flow.flush(5)
    assert collector.calls[0].response is not None and collector.calls[0].response.text == "one"


def test_a_truncated_stream_the_app_closed_is_cancelled_but_a_provider_error_is_an_error(
    flow: Flow, collector: Collector
) -> None:
    responses_url = "https://api.openai.com/v1/responses"
    cut = flow.start_call(
        "POST", responses_url, {}, orjson.dumps({"model": "m", "input": "hi", "stream": True})
    )
    assert cut is not None
    cut.response_started(200, {"content-type": "text/event-stream"})
    cut.stream_chunk(b'data: {"type":"response.output_text.delta","delta":"Hel"}\n\n')
    cut.finish(CallStatus.CANCELLED)  # no terminal event yet: the app closed the stream
    failed = flow.start_call("POST", CHAT_URL, {}, body(stream=True))
    assert failed is not None
    failed.response_started(200, {"content-type": "text/event-stream"})
    failed.stream_chunk(b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')
    failed.finish(CallStatus.CANCELLED)  # the SDK raised on the error event and closed
    assert flow.flush(5)
    assert [c.status for c in collector.calls] == [CallStatus.CANCELLED, CallStatus.ERROR]


def _first_token(handle: nemoflow.LlmCallHandle) -> int | None:
    return handle._first_token_ns


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def test_time_to_first_token_waits_for_generated_content(flow: Flow, collector: Collector) -> None:
    anthropic_url = "https://api.anthropic.com/v1/messages"
    request = {"model": "claude-haiku-4-5", "max_tokens": 50, "stream": True, "messages": []}
    handle = flow.start_call("POST", anthropic_url, {}, orjson.dumps(request))
    assert handle is not None
    handle.response_started(200, {"content-type": "text/event-stream"})
    message: dict[str, Any] = {"id": "m", "type": "message", "role": "assistant", "model": "m", "content": []}
    message["usage"] = {"input_tokens": 5, "output_tokens": 1}
    handle.stream_chunk(
        _event("message_start", {"type": "message_start", "message": message})
        + _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
    )
    assert _first_token(handle) is None  # the envelope events are not a token
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
    handle.stream_chunk(_event("content_block_delta", delta))
    assert _first_token(handle) is not None
    chat = flow.start_call("POST", CHAT_URL, {}, body(stream=True))
    assert chat is not None
    chat.response_started(200, {"content-type": "text/event-stream"})
    role_only = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
    }
    chat.stream_chunk(b"data: " + orjson.dumps(role_only) + b"\n\n")
    assert _first_token(chat) is None
    chat.stream_chunk(sse(chunk("Hi"), done=False)[0])
    assert _first_token(chat) is not None


def test_rewrites_keep_integers_beyond_64_bits(collector: Collector) -> None:
    import json

    flow = Flow(policies=[nemoflow.cap_max_tokens(10)], subscribers=[collector])
    raw = json.dumps({**orjson.loads(body()), "seed": 7, "metadata": {"trace": 2**80 + 1}}).encode()
    handle = flow.start_call("POST", CHAT_URL, {}, raw)
    assert handle is not None and handle.body_changed
    sent = json.loads(handle.body)  # the standard library keeps big integers exact
    assert sent["metadata"]["trace"] == 2**80 + 1 and sent["max_tokens"] == 10 and sent["seed"] == 7
    assert handle.policies_applied == ("cap_max_tokens(10)",)


class SeesSuppression(Subscriber):
    def __init__(self) -> None:
        self.suppressed: list[object] = []

    def on_call(self, call: LlmCall) -> None:
        from opentelemetry import context as otel_context

        # OTel HTTP instrumentations check this key and skip tracing the exporter's own requests.
        self.suppressed.append(otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY))


def test_exporters_run_with_otel_instrumentation_suppressed() -> None:
    from opentelemetry import context as otel_context

    probe = SeesSuppression()
    flow = Flow(subscribers=[probe])
    run_plain(flow)
    assert flow.flush(5)
    assert probe.suppressed == [True]
    assert (
        otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY) is None
    )  # the app's thread is not


def test_an_application_set_traceparent_is_left_alone(collector: Collector) -> None:
    flow = Flow(subscribers=[collector], propagate_trace_context=True)
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    try:
        handle = flow.start_call("POST", INTERNAL_URL, {"TraceParent": mine}, body())
        assert handle is not None and "traceparent" not in handle.headers_update
        handle.finish()
    finally:
        flow.shutdown()


def test_the_application_spans_sampling_and_tracestate_carry_over(collector: Collector) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState, use_span

    flow = Flow(subscribers=[collector], propagate_trace_context=True)
    state = TraceState([("vendor", "opaque-1"), ("other", "x")])
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(0), trace_state=state)
    try:
        with use_span(NonRecordingSpan(remote)):  # an unsampled incoming request with vendor state
            root = flow.start_call("POST", INTERNAL_URL, {}, body())
            with flow.scope("agent"):
                scoped = flow.start_call("POST", INTERNAL_URL, {}, body())
        sampled_tracer = TracerProvider().get_tracer("app")
        with sampled_tracer.start_as_current_span("handler"):
            plain = flow.start_call("POST", INTERNAL_URL, {}, body())
        unsampled_tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("app")
        with unsampled_tracer.start_as_current_span("handler"):
            dropped = flow.start_call("POST", INTERNAL_URL, {}, body())
        alone = flow.start_call("POST", INTERNAL_URL, {}, body())
        calls = (root, scoped, plain, dropped, alone)
        assert all(call is not None for call in calls)
        root_h, scoped_h, plain_h, dropped_h, alone_h = (c.headers_update for c in calls if c is not None)
        for headers in (root_h, scoped_h):
            assert (
                headers["traceparent"].startswith(f"00-{0x1234:032x}-")
                and headers["traceparent"][-3:] == "-00"
            )
            assert headers["tracestate"] == "vendor=opaque-1,other=x"
        # The SDK's own spans may also carry W3C level 2's "random trace id" flag (0x02): kept as it is.
        assert int(plain_h["traceparent"][-2:], 16) & 0x01 and "tracestate" not in plain_h
        assert int(dropped_h["traceparent"][-2:], 16) & 0x01 == 0
        assert alone_h["traceparent"].endswith("-01") and "tracestate" not in alone_h
        for call in calls:
            if call is not None:
                call.finish()
    finally:
        flow.shutdown()
