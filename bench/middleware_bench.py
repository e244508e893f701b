"""Benchmark nemoflow's HTTP middleware (the httpx2 transport) against a loopback upstream.

Everything runs in one process: a small uvicorn server on 127.0.0.1 (in a thread) answers OpenAI Chat
Completions requests with a canned JSON reply or an SSE stream, and the client sides take turns, round by
round, so none of them profits from a warmer CPU or a quieter moment. Reported numbers are medians over
rounds. Four sections:

1. ``sdk``: the official ``openai`` SDK, raw, with nemoflow's transport (``Flow`` + OpenInference
   exporter), and with ``openinference-instrumentation-openai`` (when it can be imported), both tracing
   sides exporting through a ``BatchSpanProcessor`` into an ``InMemorySpanExporter``.
2. ``stream``: time to first chunk at the application, per-chunk added cost, and tracemalloc peaks for
   long streams read through nemoflow.
3. ``concurrency``: 256 concurrent async streams through one ``httpx2.AsyncClient``.
4. ``passthrough``: a plain GET (no codec claims it) through the wrapped and the unwrapped client.

Usage::

    uv run python bench/middleware_bench.py --quick
    uv run --with openinference-instrumentation-openai python bench/middleware_bench.py --json out.json
    uv run --with openinference-instrumentation-openai python bench/middleware_bench.py --profile

See ``bench/README.md`` (section "Middleware") for what each row means.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime as dt
import gc
import importlib
import io
import json
import platform
import pstats
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from importlib import metadata
from typing import Any

import httpx2
import openai
import orjson
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nemoflow import Flow, LlmCall, Subscriber
from nemoflow_exporter_openinference import OpenInferenceExporter

MODEL = "gpt-4o-mini"
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Name three prime numbers."},
]
CHUNKS_HEADER = "x-bench-chunks"
MEMORY_CAP = 16_384
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0

# ----------------------------------------------------------------------------------------- upstream

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _completion() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
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


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    return b"data: " + orjson.dumps(body) + b"\n\n"


FIRST_EVENT = _chunk({"role": "assistant", "content": ""})
TOKEN_EVENT = _chunk({"content": "tok "})
LAST_EVENT = _chunk({}, finish="stop")
DONE_EVENT = b"data: [DONE]\n\n"
COMPLETION = _completion()


class BenchApp:
    """ASGI app: JSON or SSE chat completions (``x-bench-chunks`` events), and ``GET /ping``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if scope["method"] == "GET":
            await self._whole(send, b"text/plain", b"pong")
            return
        request = orjson.loads(body)
        if not request.get("stream"):
            await self._whole(send, b"application/json", COMPLETION)
            return
        chunks = 200
        for key, value in scope["headers"]:
            if key == CHUNKS_HEADER.encode():
                chunks = int(value)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": FIRST_EVENT, "more_body": True})
        for _ in range(chunks - 3):
            await send({"type": "http.response.body", "body": TOKEN_EVENT, "more_body": True})
        await send({"type": "http.response.body", "body": LAST_EVENT, "more_body": True})
        if (request.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": 21,
                "completion_tokens": max(chunks - 3, 0),
                "total_tokens": chunks + 18,
            }
            await send({"type": "http.response.body", "body": _chunk({}, usage=usage), "more_body": True})
        await send({"type": "http.response.body", "body": DONE_EVENT, "more_body": False})

    @staticmethod
    async def _whole(send: Send, content_type: bytes, data: bytes) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": False})


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # Without TCP_NODELAY (inherited by accepted sockets on Linux), uvicorn's separate writes of
    # headers and body meet delayed ACKs on keep-alive connections: ~40 ms per call on loopback.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve_upstream() -> None:
    """Child-process side of :class:`Upstream`: print the port, serve until stdin closes."""
    sock = _listening_socket()
    config = uvicorn.Config(
        BenchApp(),
        http="h11",
        loop="asyncio",
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        backlog=2048,
        # uvicorn closes keep-alive connections idle for 5 s by default; a side's pool sits idle that long
        # while the other sides run, and a request sent on a connection being closed fails (ReadError).
        timeout_keep_alive=300,
    )
    server = uvicorn.Server(config)

    def watch_parent() -> None:
        sys.stdin.read()  # returns when the parent closes our stdin (or dies)
        server.should_exit = True

    threading.Thread(target=watch_parent, daemon=True).start()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


class Upstream:
    """The bench app served by uvicorn (h11, asyncio) on a free loopback port, in its own process.

    A separate process, so the upstream's CPU time and its share of the GIL never mix with the client's:
    in one process the client and the server thread take turns on the GIL for every chunk, and how the
    turns fall changes how the bytes are chunked, which moved whole-stream timings by more than
    nemoflow's cost. CPU time measured in this process is then the client's (and its tracing's) alone.
    """

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Upstream:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-upstream"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._process = process
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.__exit__()
            raise RuntimeError("the loopback upstream did not start")
        self.port = int(line.split()[1])
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:  # the port is bound before uvicorn accepts: wait for it
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        raise RuntimeError("the loopback upstream does not accept connections")

    def __exit__(self, *exc_info: object) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


# ----------------------------------------------------------------------------------------- tracing set-ups


class CountingSubscriber(Subscriber):
    """Counts records (the delivery thread is the only writer)."""

    def __init__(self) -> None:
        self.calls = 0

    def on_call(self, call: LlmCall) -> None:
        self.calls += 1


@dataclasses.dataclass
class Tracing:
    provider: TracerProvider
    spans: InMemorySpanExporter

    @classmethod
    def new(cls) -> Tracing:
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(spans))
        return cls(provider, spans)

    def drain(self) -> int:
        self.provider.force_flush()
        count = len(self.spans.get_finished_spans())
        self.spans.clear()
        return count


def nemoflow_flow() -> tuple[Flow, Tracing, CountingSubscriber]:
    tracing = Tracing.new()
    counter = CountingSubscriber()
    flow = Flow(subscribers=[OpenInferenceExporter(tracer_provider=tracing.provider), counter])
    return flow, tracing, counter


def load_openinference() -> Any | None:
    """``OpenAIInstrumentor`` from openinference-instrumentation-openai, or ``None`` when absent."""
    try:
        module = importlib.import_module("openinference.instrumentation.openai")
    except ImportError:
        return None
    return module.OpenAIInstrumentor


LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=300)
TIMEOUT = httpx2.Timeout(60.0, connect=5.0)


def sync_client(flow: Flow | None) -> httpx2.Client:
    inner = httpx2.HTTPTransport(limits=LIMITS)
    transport = flow.transport(inner) if flow is not None else inner
    return httpx2.Client(transport=transport, timeout=TIMEOUT)


def async_client(flow: Flow | None) -> httpx2.AsyncClient:
    inner = httpx2.AsyncHTTPTransport(limits=LIMITS)
    transport = flow.transport(inner, asynchronous=True) if flow is not None else inner
    return httpx2.AsyncClient(transport=transport, timeout=TIMEOUT)


def sdk(base_url: str, flow: Flow | None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, http_client=sync_client(flow)
    )


# ----------------------------------------------------------------------------------------- harness

Runner = Callable[[int], tuple[int, int]]
"""Runs ``n`` operations; returns (elapsed ns, summed time-to-first-chunk ns, 0 when not a stream)."""


@dataclasses.dataclass
class Side:
    name: str
    run: Runner
    enter: Callable[[], None] = lambda: None
    leave: Callable[[], None] = lambda: None


@dataclasses.dataclass
class Stats:
    median_us: float
    p25_us: float
    p75_us: float
    samples: int
    rounds_us: list[float]
    """Every round's value in round order, so sides can be compared round by round (see ``added``)."""

    @classmethod
    def of(cls, values_ns: Sequence[float]) -> Stats:
        ordered = sorted(values_ns)
        quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
        return cls(
            statistics.median(ordered) / 1_000,
            quartiles[0] / 1_000,
            quartiles[2] / 1_000,
            len(ordered),
            [value / 1_000 for value in values_ns],
        )


def added(side: dict[str, Any], base: dict[str, Any]) -> float:
    """Median over rounds of ``side - base`` within each round (JSON forms of :class:`Stats`).

    The sides of one round run back to back, so the machine's slow drifts (other jobs, clock speed)
    cancel out of each difference; a difference of two medians keeps them and swung by more than
    the costs being measured on a shared machine.
    """
    return float(statistics.median(a - b for a, b in zip(side["rounds_us"], base["rounds_us"], strict=True)))


def calibrate(side: Side, batch_ns: int, most: int) -> int:
    side.enter()
    try:
        elapsed, _ = side.run(4)
    finally:
        side.leave()
    return max(4, min(most, int(batch_ns * 4 / max(elapsed, 1))))


def measure(
    sides: Sequence[Side], rounds: int, batch_ns: int, warmup_ns: int, most: int = 2_000
) -> dict[str, tuple[Stats, Stats, Stats]]:
    """Warm every side up, fix one batch size for all, then time them in rotating order.

    Returns per side (per-op wall time, per-op time to first chunk, per-op CPU time of the whole
    process). CPU time counts every thread (the upstream's, the delivery and span-export threads), so
    it is the same for the upstream on every side and shows what the tracing side costs in total,
    whatever else the machine is doing; wall time also shows waiting (GIL hand-offs, thread wake-ups).
    """
    for side in sides:
        side.enter()
        try:
            deadline = time.perf_counter_ns() + warmup_ns
            while time.perf_counter_ns() < deadline:
                side.run(2)
        finally:
            side.leave()
    batch = min(calibrate(side, batch_ns, most) for side in sides)
    totals: dict[str, list[float]] = {side.name: [] for side in sides}
    firsts: dict[str, list[float]] = {side.name: [] for side in sides}
    cpus: dict[str, list[float]] = {side.name: [] for side in sides}
    for round_index in range(rounds):
        shift = round_index % len(sides)
        for side in [*sides[shift:], *sides[:shift]]:
            gc.collect()
            side.enter()
            try:
                cpu_start = time.process_time_ns()
                elapsed, first = side.run(batch)
                cpu = time.process_time_ns() - cpu_start
            finally:
                side.leave()
            totals[side.name].append(elapsed / batch)
            firsts[side.name].append(first / batch)
            cpus[side.name].append(cpu / batch)
    return {
        side.name: (Stats.of(totals[side.name]), Stats.of(firsts[side.name]), Stats.of(cpus[side.name]))
        for side in sides
    }


def json_runner(client: openai.OpenAI, after: Callable[[], object]) -> Runner:
    def run(n: int) -> tuple[int, int]:
        start = time.perf_counter_ns()
        for _ in range(n):
            reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
            if reply.choices[0].message.content is None:
                raise RuntimeError("empty reply")
        after()
        return time.perf_counter_ns() - start, 0

    return run


def stream_runner(client: openai.OpenAI, after: Callable[[], object], chunks: int) -> Runner:
    headers = {CHUNKS_HEADER: str(chunks)}

    def run(n: int) -> tuple[int, int]:
        first_sum = 0
        start = time.perf_counter_ns()
        for _ in range(n):
            call_start = time.perf_counter_ns()
            stream = client.chat.completions.create(
                model=MODEL,
                messages=MESSAGES,  # type: ignore[arg-type]
                stream=True,
                extra_headers=headers,
            )
            seen = 0
            for _chunk in stream:
                if seen == 0:
                    first_sum += time.perf_counter_ns() - call_start
                seen += 1
            if seen < chunks - 1:
                raise RuntimeError(f"stream ended after {seen} chunks")
        after()
        return time.perf_counter_ns() - start, first_sum

    return run


def _flusher(flow: Flow, tracing: Tracing) -> Callable[[], object]:
    def flush() -> None:
        flow.flush()
        tracing.provider.force_flush()

    return flush


# ----------------------------------------------------------------------------------------- sections


@dataclasses.dataclass
class Settings:
    rounds: int
    batch_ms: float
    warmup_ms: float
    stream_chunks: int
    memory_chunks: tuple[int, ...]
    concurrency: int
    concurrency_chunks: int
    concurrency_rounds: int


def section_sdk(base_url: str, s: Settings, oi_cls: Any | None) -> dict[str, Any]:
    flow, tracing, counter = nemoflow_flow()
    oi_tracing = Tracing.new()
    instrumentor = oi_cls() if oi_cls is not None else None
    raw_client, nf_client, oi_client = sdk(base_url, None), sdk(base_url, flow), sdk(base_url, None)

    def oi_enter() -> None:
        if instrumentor is not None:
            instrumentor.instrument(tracer_provider=oi_tracing.provider)

    def oi_leave() -> None:
        if instrumentor is not None:
            instrumentor.uninstrument()

    nf_after = _flusher(flow, tracing)
    oi_after = oi_tracing.provider.force_flush
    out: dict[str, Any] = {}
    for kind in ("json", "stream"):
        if kind == "json":
            sides = [
                Side("raw", json_runner(raw_client, _noop)),
                Side("nemoflow", json_runner(nf_client, nf_after)),
            ]
            if instrumentor is not None:
                sides.append(Side("openinference", json_runner(oi_client, oi_after), oi_enter, oi_leave))
        else:
            n = s.stream_chunks
            sides = [
                Side("raw", stream_runner(raw_client, _noop, n)),
                Side("nemoflow", stream_runner(nf_client, nf_after, n)),
            ]
            if instrumentor is not None:
                sides.append(Side("openinference", stream_runner(oi_client, oi_after, n), oi_enter, oi_leave))
        counter.calls = 0
        tracing.drain()
        oi_tracing.drain()
        results = measure(sides, s.rounds, int(s.batch_ms * 1e6), int(s.warmup_ms * 1e6))
        flow.flush()
        out[kind] = {
            name: {
                "total": dataclasses.asdict(total),
                "first_chunk": dataclasses.asdict(first),
                "cpu": dataclasses.asdict(cpu),
            }
            for name, (total, first, cpu) in results.items()
        }
        out[kind]["spans_seen"] = {"nemoflow": tracing.drain(), "openinference": oi_tracing.drain()}
    for client in (raw_client, nf_client, oi_client):
        client.close()
    flow.shutdown()
    oi_tracing.provider.shutdown()
    tracing.provider.shutdown()
    return out


def _noop() -> None:
    return None


def section_memory(base_url: str, s: Settings) -> dict[str, Any]:
    """tracemalloc peak while reading a long stream with httpx2: raw, through nemoflow, and capped.

    nemoflow keeps the reply's text for the record, so its peak grows with the text (4 characters per
    chunk here) up to ``max_recorded_text``; the capped flow (``MEMORY_CAP`` characters) shows the bound.
    """
    flow, tracing, _ = nemoflow_flow()
    capped = Flow(
        subscribers=[OpenInferenceExporter(tracer_provider=tracing.provider)], max_recorded_text=MEMORY_CAP
    )
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    out: dict[str, Any] = {}
    with sync_client(None) as raw, sync_client(flow) as wrapped, sync_client(capped) as capped_client:
        sides = (
            ("raw", raw),
            ("nemoflow", wrapped),
            (f"nemoflow, max_recorded_text={MEMORY_CAP:,}", capped_client),
        )
        for label, client in sides:
            client.get(base_url + "/ping")  # open the connection before tracing
            for chunks in s.memory_chunks:
                gc.collect()
                tracemalloc.start()
                tracemalloc.reset_peak()
                base, _ = tracemalloc.get_traced_memory()
                received = 0
                start = time.perf_counter()
                headers = {CHUNKS_HEADER: str(chunks)}
                url = base_url + "/v1/chat/completions"
                with client.stream("POST", url, json=body, headers=headers) as response:
                    for data in response.iter_bytes():
                        received += len(data)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                seconds = time.perf_counter() - start
                flow.flush()
                out[f"{label}/{chunks}"] = {
                    "chunks": chunks,
                    "peak_kib": (peak - base) / 1024,
                    "bytes_read": received,
                    "seconds_under_tracemalloc": seconds,
                }
    flow.shutdown()
    capped.shutdown()
    tracing.drain()
    tracing.provider.shutdown()
    return out


async def _one_stream(client: httpx2.AsyncClient, url: str, chunks: int) -> str | None:
    """One streamed call read to its end; ``None`` when it succeeded, else what went wrong."""
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    try:
        async with client.stream("POST", url, json=body, headers={CHUNKS_HEADER: str(chunks)}) as response:
            async for _ in response.aiter_bytes():
                pass
            return None if response.status_code == 200 else f"HTTP {response.status_code}"
    except httpx2.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"


async def _concurrency(base_url: str, s: Settings) -> dict[str, Any]:
    flow, tracing, counter = nemoflow_flow()
    url = base_url + "/v1/chat/completions"
    rates: dict[str, list[float]] = {"raw": [], "nemoflow": []}
    errors = {"raw": 0, "nemoflow": 0}
    calls = {"raw": 0, "nemoflow": 0}
    kinds: dict[str, int] = {}
    async with async_client(None) as raw, async_client(flow) as wrapped:
        clients = {"raw": raw, "nemoflow": wrapped}
        for name in ("raw", "nemoflow"):  # warm-up: open the pools
            await asyncio.gather(*(_one_stream(clients[name], url, 4) for _ in range(s.concurrency)))
        await asyncio.to_thread(flow.flush)
        tracing.drain()
        counter.calls = 0
        for round_index in range(s.concurrency_rounds):
            order = ("raw", "nemoflow") if round_index % 2 == 0 else ("nemoflow", "raw")
            for name in order:
                gc.collect()
                start = time.perf_counter()
                oks = await asyncio.gather(
                    *(_one_stream(clients[name], url, s.concurrency_chunks) for _ in range(s.concurrency))
                )
                if name == "nemoflow":
                    await asyncio.to_thread(flow.flush)
                rates[name].append(s.concurrency / (time.perf_counter() - start))
                failures = [outcome for outcome in oks if outcome is not None]
                errors[name] += len(failures)
                for failure in failures:
                    kinds[failure[:80]] = kinds.get(failure[:80], 0) + 1
                calls[name] += len(oks)
    await asyncio.to_thread(flow.flush)
    spans = tracing.drain()
    stats = flow.stats()
    flow.shutdown()
    tracing.provider.shutdown()
    return {
        "streams": s.concurrency,
        "chunks_per_stream": s.concurrency_chunks,
        "rounds": s.concurrency_rounds,
        "calls_per_s": {name: statistics.median(values) for name, values in rates.items()},
        "errors": errors,
        "error_kinds": kinds,
        "calls": calls,
        "records": counter.calls,
        "calls_recorded_stat": stats.calls_recorded,
        "spans": spans,
        "records_match": counter.calls == calls["nemoflow"] == spans,
    }


def section_concurrency(base_url: str, s: Settings) -> dict[str, Any]:
    return asyncio.run(_concurrency(base_url, s))


def section_passthrough(base_url: str, s: Settings) -> dict[str, Any]:
    flow, tracing, _ = nemoflow_flow()
    url = base_url + "/ping"
    with sync_client(None) as raw, sync_client(flow) as wrapped:

        def runner(client: httpx2.Client) -> Runner:
            def run(n: int) -> tuple[int, int]:
                start = time.perf_counter_ns()
                for _ in range(n):
                    if client.get(url).status_code != 200:
                        raise RuntimeError("ping failed")
                return time.perf_counter_ns() - start, 0

            return run

        results = measure(
            [Side("raw", runner(raw)), Side("nemoflow", runner(wrapped))],
            s.rounds,
            int(s.batch_ms * 1e6),
            int(s.warmup_ms * 1e6),
        )
    passed = flow.stats().passed_through
    flow.shutdown()
    tracing.provider.shutdown()
    return {
        "results": {name: dataclasses.asdict(total) for name, (total, _, _) in results.items()},
        "passed_through": passed,
    }


def profile_nemoflow(base_url: str, calls: int, top: int) -> str:
    """cProfile of SDK calls through nemoflow (JSON and streamed), delivery thread work included via flush."""
    flow, tracing, _ = nemoflow_flow()
    client = sdk(base_url, flow)
    run_json = json_runner(client, _flusher(flow, tracing))
    run_stream = stream_runner(client, _flusher(flow, tracing), 200)
    run_json(20)
    run_stream(5)
    profiler = cProfile.Profile()
    profiler.enable()
    run_json(calls)
    run_stream(max(calls // 10, 1))
    profiler.disable()
    client.close()
    flow.shutdown()
    tracing.provider.shutdown()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats("nemoflow", top)
    stats.sort_stats("cumulative").print_stats("nemoflow", top)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------- report


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []
    sdk_part = results["sdk"]
    for kind in ("json", "stream"):
        part = sdk_part[kind]
        raw = part["raw"]["total"]["median_us"]
        nf = added(part["nemoflow"]["total"], part["raw"]["total"])
        oi = added(part["openinference"]["total"], part["raw"]["total"]) if "openinference" in part else None
        ratio = f"{nf / oi:.2f}" if oi else "n/a"
        label = "canned JSON" if kind == "json" else f"{results['settings']['stream_chunks']}-chunk stream"
        rows.append((f"SDK call, {label}", "per call µs (raw)", _us(raw), "", ""))
        rows.append((f"SDK call, {label}", "added µs per call", "", _us(nf), _us(oi)))
        rows.append((f"SDK call, {label}", "nemoflow ÷ OpenInference (goal ≤ 0.1)", "", ratio, ""))
        raw_cpu = part["raw"]["cpu"]["median_us"]
        nf_cpu = added(part["nemoflow"]["cpu"], part["raw"]["cpu"])
        oi_cpu = added(part["openinference"]["cpu"], part["raw"]["cpu"]) if "openinference" in part else None
        cpu_ratio = f"{nf_cpu / oi_cpu:.2f}" if oi_cpu else "n/a"
        rows.append((f"SDK call, {label}", "CPU µs per call, all threads (raw)", _us(raw_cpu), "", ""))
        rows.append((f"SDK call, {label}", "added CPU µs per call", "", _us(nf_cpu), _us(oi_cpu)))
        rows.append((f"SDK call, {label}", "CPU: nemoflow ÷ OpenInference", "", cpu_ratio, ""))
    stream = sdk_part["stream"]
    chunks = results["settings"]["stream_chunks"]
    raw_first = stream["raw"]["first_chunk"]["median_us"]
    nf_first = stream["nemoflow"]["first_chunk"]["median_us"]
    first_added = added(stream["nemoflow"]["first_chunk"], stream["raw"]["first_chunk"])
    rows.append(("stream", "time to first chunk µs", _us(raw_first), _us(nf_first), ""))
    rows.append(("stream", "added µs to the first chunk", "", _us(first_added), ""))
    per_chunk = [
        (nf_total - raw_total - (nf_first_round - raw_first_round)) / chunks
        for nf_total, raw_total, nf_first_round, raw_first_round in zip(
            stream["nemoflow"]["total"]["rounds_us"],
            stream["raw"]["total"]["rounds_us"],
            stream["nemoflow"]["first_chunk"]["rounds_us"],
            stream["raw"]["first_chunk"]["rounds_us"],
            strict=True,
        )
    ]
    rows.append(("stream", "added µs per chunk", "", _us(statistics.median(per_chunk)), ""))
    for key, value in results["memory"].items():
        side, n = key.rsplit("/", 1)
        rows.append(
            (
                f"memory, {int(n):,}-chunk stream",
                "tracemalloc peak KiB" + ("" if side in ("raw", "nemoflow") else f" ({side})"),
                _us(value["peak_kib"]) if side == "raw" else "",
                "" if side == "raw" else _us(value["peak_kib"]),
                "",
            )
        )
    conc = results["concurrency"]
    rows.append(
        (
            f"{conc['streams']} concurrent async streams",
            "calls/s",
            f"{conc['calls_per_s']['raw']:,.0f}",
            f"{conc['calls_per_s']['nemoflow']:,.0f}",
            "",
        )
    )
    rows.append(("", "errors", str(conc["errors"]["raw"]), str(conc["errors"]["nemoflow"]), ""))
    rows.append(
        (
            "",
            "records = calls",
            "",
            f"{conc['records']} / {conc['calls']['nemoflow']} ({'yes' if conc['records_match'] else 'NO'})",
            "",
        )
    )
    passthrough = results["passthrough"]["results"]
    raw_get = passthrough["raw"]["median_us"]
    rows.append(
        (
            "plain GET (passthrough)",
            "per call µs",
            _us(raw_get),
            _us(passthrough["nemoflow"]["median_us"]),
            "",
        )
    )
    rows.append(("", "added µs", "", _us(added(passthrough["nemoflow"], passthrough["raw"])), ""))
    header = ("section", "metric", "raw", "nemoflow", "openinference")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(header))]
    lines.append("-+-".join("-" * width for width in widths))
    lines.extend(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds; rough numbers")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, help="timed rounds per side (default 11, 3 with --quick)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the nemoflow path")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        serve_upstream()
        return 0
    if args.quick:
        s = Settings(3, 40, 30, 200, (2_000, 10_000), 256, 20, 2)
    else:
        s = Settings(21, 150, 300, 200, (10_000, 100_000), 256, 50, 7)
    if args.rounds:
        s.rounds = args.rounds
    oi_cls = load_openinference()
    began = time.perf_counter()
    with Upstream() as upstream:
        base = upstream.base_url
        results: dict[str, Any] = {
            "meta": {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "packages": {
                    name: _version(name)
                    for name in (
                        "nemoflow",
                        "openai",
                        "httpx2",
                        "uvicorn",
                        "opentelemetry-sdk",
                        "openinference-instrumentation-openai",
                    )
                },
                "openinference_instrumentation": oi_cls is not None,
            },
            "settings": dataclasses.asdict(s),
        }
        results["sdk"] = section_sdk(base, s, oi_cls)
        results["memory"] = section_memory(base, s)
        results["concurrency"] = section_concurrency(base, s)
        results["passthrough"] = section_passthrough(base, s)
        results["meta"]["seconds"] = time.perf_counter() - began
        print(table(results))
        if oi_cls is None:
            print("\nopeninference-instrumentation-openai is not importable: its column is n/a. Run with")
            print("  uv run --with openinference-instrumentation-openai python bench/middleware_bench.py")
        print(f"\n{results['meta']['seconds']:.1f} s")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(results, handle, indent=2)
        if args.profile:
            print(profile_nemoflow(base, 100 if args.quick else 500, 20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
