"""Helpers shared by the adapter and runtime tests: a recording subscriber and a chat-stream event builder."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from nemoflow import LlmCall, Subscriber


class Collector(Subscriber):
    def __init__(self) -> None:
        self.calls: list[LlmCall] = []

    def on_call(self, call: LlmCall) -> None:
        self.calls.append(call)


def chunk(
    content: str | None = None, finish: str | None = None, usage: Any = None, choices: bool = True
) -> bytes:
    event: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
    }
    event["choices"] = (
        [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]
        if choices
        else []
    )
    if usage is not None:
        event["usage"] = usage
    return b"data: " + orjson.dumps(event) + b"\n\n"


def words(count: int, prefix: str = "w") -> list[str]:
    """``count`` distinct text pieces (`` w0``, `` w1``, ...): a streamed reply's deltas."""
    return [f" {prefix}{index}" for index in range(count)]


FLAT_STREAM_BYTES = 256 * 1024
"""Most extra peak memory 38,000 more stream events may cost (one ``str`` kept per event: megabytes)."""


def peak_bytes(run: Callable[[], object]) -> int:
    """tracemalloc peak while ``run`` runs (after a collection, so earlier garbage does not count)."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def stream_memory_growth(prepare: Callable[[int], Callable[[], object]], long_count: int) -> int:
    """Peak memory of decoding a ``long_count``-event stream beyond that of a 2,000-event one.

    ``prepare(count)`` builds a stream of ``count`` events (outside the tracing) and returns what decodes
    it. A 300-event run goes first: first use fills caches (interned names, generated constructors).
    """
    warm, short, long = prepare(300), prepare(2_000), prepare(long_count)
    peak_bytes(warm)
    short_peak = peak_bytes(short)
    return peak_bytes(long) - short_peak
