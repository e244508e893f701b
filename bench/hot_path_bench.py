"""What each piece of nemoflow's per-call work costs, in CPU time of the calling thread, without I/O.

``middleware_bench.py`` measures whole SDK calls; this script takes the same work apart so the closing
figures of the performance notes (``docs/performance.md``) can say what costs what. It drives the runtime
as an adapter does (``Flow.start_call``, ``response_started``, the response tee, ``finish``), then builds
the record and the OpenInference span the delivery thread would build, each step timed on its own.

Each row is the minimum over repeats of a batch's ``time.thread_time_ns`` divided by the batch size
(the minimum: this is about what the code costs, not about what else the machine was doing), with the
median next to it. Usage::

    uv run python bench/hot_path_bench.py
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable

import orjson
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nemoflow import CallStatus, Flow, SSEDecoder, get_codec
from nemoflow._flow import LlmCallHandle
from nemoflow._tee import ResponseTee
from nemoflow_exporter_openinference import OpenInferenceExporter

URL = "https://api.openai.com/v1/chat/completions"
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Name three prime numbers."},
]
# What the openai SDK sends (header names and sizes as in its requests).
HEADERS = {
    "accept": "application/json",
    "content-type": "application/json",
    "user-agent": "OpenAI/Python 2.8.1",
    "x-stainless-lang": "python",
    "x-stainless-package-version": "2.8.1",
    "x-stainless-os": "Linux",
    "x-stainless-arch": "x64",
    "x-stainless-runtime": "CPython",
    "x-stainless-runtime-version": "3.11.7",
    "authorization": "Bearer sk-bench",
    "x-stainless-async": "false",
    "x-stainless-retry-count": "0",
    "x-stainless-read-timeout": "600",
}
JSON_HEADERS = {"content-type": "application/json"}
SSE_HEADERS = {"content-type": "text/event-stream"}
REQUEST = orjson.dumps({"model": "gpt-4o-mini", "messages": MESSAGES})
STREAM_REQUEST = orjson.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True})
STREAM_REQUEST_WITH_USAGE = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
)
REPLY = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "2, 3 and 5.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 6, "total_tokens": 27},
        "system_fingerprint": "fp_bench",
    }
)
STREAM_EVENTS = 2_000


def _event(choices: list[object], usage: object = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_bench",
        "choices": choices,
        "usage": usage,
        "obfuscation": "aBcD",  # OpenAI adds this key to every chunk
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


CHUNKS = [
    _event(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]
    ),
    *(
        _event([{"index": 0, "delta": {"content": f" tok{n}"}, "logprobs": None, "finish_reason": None}])
        for n in range(STREAM_EVENTS)
    ),
    _event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]),
    _event([], {"prompt_tokens": 21, "completion_tokens": STREAM_EVENTS, "total_tokens": STREAM_EVENTS + 21}),
    b"data: [DONE]\n\n",
]


def timed(name: str, run: Callable[[], object], per: int, unit: str, repeats: int = 15) -> None:
    """Print min and median CPU µs per ``unit`` of ``run`` (one call covers ``per`` units)."""
    run()  # warm up: first calls load codecs and compile constructors
    samples: list[float] = []
    for _ in range(repeats):
        gc.collect()
        start = time.thread_time_ns()
        run()
        samples.append((time.thread_time_ns() - start) / per / 1_000)
    print(f"{name:<58} {min(samples):8.2f} {statistics.median(samples):8.2f}  µs per {unit}")


def main() -> int:
    flow = Flow()
    codec = get_codec("openai-chat")
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    exporter = OpenInferenceExporter(tracer_provider=provider)
    payload = orjson.loads(REQUEST)
    batch = 300

    def many(step: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(batch):
                step()

        return run

    def json_call() -> LlmCallHandle:
        handle = flow.start_call("POST", URL, HEADERS, REQUEST)
        assert handle is not None
        handle.response_started(200, JSON_HEADERS)
        tee = ResponseTee(handle)
        tee.pass_through(REPLY)
        tee.finish(CallStatus.OK)
        return handle

    def finished_handle() -> LlmCallHandle:
        handle = flow.start_call("POST", URL, HEADERS, REQUEST)
        assert handle is not None
        handle.response_started(200, JSON_HEADERS)
        handle.response_body(REPLY)
        handle._finished = True  # as finish() leaves it, without queueing the record
        return handle

    handles = [finished_handle() for _ in range(batch)]

    def build_records() -> None:
        for handle in handles:
            flow._build_record(handle, None, CallStatus.OK, None, time.time_ns(), None)

    record = flow._build_record(handles[0], None, CallStatus.OK, None, time.time_ns(), None)

    def stream(strip: bool) -> Callable[[], None]:
        def run() -> None:
            body = STREAM_REQUEST if strip else STREAM_REQUEST_WITH_USAGE
            handle = flow.start_call("POST", URL, HEADERS, body)
            assert handle is not None
            handle.response_started(200, SSE_HEADERS)
            assert handle.injected_stream_usage is strip
            tee = ResponseTee(handle)
            for chunk in CHUNKS:
                tee.pass_through(chunk)
            tee.finish(CallStatus.OK)

        return run

    datas = [chunk[6:-2] for chunk in CHUNKS]

    def decoder_only() -> None:
        decoder = codec.stream_decoder(url=URL)
        for data in datas:
            decoder.feed(data, None)
        decoder.finish()

    def sse_only() -> None:
        SSEDecoder().feed_fields(b"".join(CHUNKS))

    def loads_only() -> None:
        for data in datas[:-1]:
            orjson.loads(data)

    print(f"{'step':<58} {'min':>8} {'median':>8}")
    print("-- a JSON call (the application's thread)")
    timed(
        "start_call: read headers, decode request, hooks, encode",
        many(lambda: flow.start_call("POST", URL, HEADERS, REQUEST)),
        batch,
        "call",
    )
    timed("  of which codec.decode (request)", many(lambda: codec.decode(payload, url=URL)), batch, "call")
    timed("whole application side (start, headers, tee body, finish)", many(json_call), batch, "call")
    print("-- the record (the delivery thread)")
    timed("build the record (decode response, cost, sanitize)", build_records, batch, "call")
    timed(
        "OpenInference span (attributes + OTel SDK span)",
        many(lambda: exporter.on_call(record)),
        batch,
        "call",
    )
    spans.clear()
    print(f"-- a {STREAM_EVENTS:,}-event Chat stream, whole call divided by events")
    timed("application side, usage strip on (nemoflow asked)", stream(True), len(CHUNKS), "event")
    timed("application side, no strip (the app asked for usage)", stream(False), len(CHUNKS), "event")
    timed("  of which SSE framing (one block)", sse_only, len(CHUNKS), "event")
    timed("  of which orjson.loads of the event", loads_only, len(CHUNKS), "event")
    timed("  of which Chat stream decoder (loads included)", decoder_only, len(CHUNKS), "event")
    flow.shutdown()
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
