"""A child process for ``test_lifecycle.py``: LLM calls through a flow, then exit with their records queued.

Usage: ``python lifecycle_child.py ADAPTER BASE_URL OUT_FILE`` with ADAPTER one of httpx2 (sync client),
httpx (async client), requests, aiohttp. The upstream at BASE_URL answers, in order: a JSON chat reply, a
complete chat stream, and a stream whose rest it holds after the first event.

The flow's subscribers are a gate and a ``JsonlExporter`` writing OUT_FILE. The gate holds delivery of the
first record until the interpreter is exiting (an ``atexit`` handler registered after nemoflow's own, so it
runs first), so every record is still queued when the script ends, and nothing calls ``flush``. The child
prints ``written-before-exit=N``: how many records had reached the exporter when the script ended (0).
"""

from __future__ import annotations

import asyncio
import atexit
import sys
import threading

import orjson

from nemoflow import Flow, JsonlExporter, LlmCall, Subscriber

HOLD_S = 10.0  # the gate never holds longer than this, whatever happens
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]
PLAIN = orjson.dumps({"model": "gpt-4o-mini", "messages": MESSAGES})
STREAMED = orjson.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True})
HEADERS = {"content-type": "application/json"}


class HoldUntilExit(Subscriber):
    """Holds the delivery thread on the first record until the interpreter is exiting."""

    def __init__(self) -> None:
        self.exiting = threading.Event()
        self.entered = threading.Event()
        self.passed = 0

    def on_call(self, call: LlmCall) -> None:
        self.entered.set()
        self.exiting.wait(HOLD_S)
        self.passed += 1


def with_httpx2(flow: Flow, url: str) -> None:
    with flow.httpx2_client() as client:
        client.post(url, content=PLAIN, headers=HEADERS).read()
        with client.stream("POST", url, content=STREAMED, headers=HEADERS) as response:
            response.read()
        with client.stream("POST", url, content=STREAMED, headers=HEADERS) as response:
            next(response.iter_bytes())  # then leave the block: the response is closed early


async def with_httpx(flow: Flow, url: str) -> None:
    async with flow.async_httpx_client() as client:
        await (await client.post(url, content=PLAIN, headers=HEADERS)).aread()
        async with client.stream("POST", url, content=STREAMED, headers=HEADERS) as response:
            await response.aread()
        async with client.stream("POST", url, content=STREAMED, headers=HEADERS) as response:
            pieces = response.aiter_bytes()
            await pieces.__anext__()
            await response.aclose()


def with_requests(flow: Flow, url: str) -> None:
    with flow.requests_session() as session:
        session.post(url, data=PLAIN, headers=HEADERS, timeout=HOLD_S).raise_for_status()
        session.post(url, data=STREAMED, headers=HEADERS, timeout=HOLD_S).raise_for_status()
        with session.post(url, data=STREAMED, headers=HEADERS, stream=True, timeout=HOLD_S) as response:
            next(response.iter_content(chunk_size=None))


async def with_aiohttp(flow: Flow, url: str) -> None:
    async with flow.aiohttp_session() as session:
        async with session.post(url, data=PLAIN, headers=HEADERS) as response:
            await response.read()
        async with session.post(url, data=STREAMED, headers=HEADERS) as response:
            await response.read()
        async with session.post(url, data=STREAMED, headers=HEADERS) as response:
            await response.content.readany()


def main(adapter: str, base_url: str, out: str) -> None:
    hold = HoldUntilExit()
    exporter = JsonlExporter(out)
    # atexit runs handlers last-in first-out: this one runs before nemoflow's flush at exit.
    atexit.register(hold.exiting.set)
    flow = Flow(subscribers=[hold, exporter])
    url = base_url + CHAT
    if adapter == "httpx2":
        with_httpx2(flow, url)
    elif adapter == "httpx":
        asyncio.run(with_httpx(flow, url))
    elif adapter == "requests":
        with_requests(flow, url)
    elif adapter == "aiohttp":
        asyncio.run(with_aiohttp(flow, url))
    else:
        raise SystemExit(f"unknown adapter {adapter!r}")
    if not hold.entered.wait(HOLD_S):
        raise SystemExit("delivery never started")
    # No flush, no shutdown: the records are queued behind the held one as the interpreter exits.
    print(f"written-before-exit={hold.passed}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
