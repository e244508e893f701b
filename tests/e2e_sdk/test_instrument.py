"""``instrument()``: SDK clients created afterwards, with no ``http_client`` of ours, are recorded.

The SDKs build their own httpx2 clients (``openai.DefaultHttpxClient``, google-genai's
``SyncHttpx2Client`` ...); instrumentation patches the httpx2 / httpx client initializers so every client
made while it is on gets nemoflow in front of its transports. Each test undoes it, even when it fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import httpx
import httpx2
import openai
import pytest
import requests
from google import genai
from google.genai import types

import nemoflow
import nemoflow._flow
from nemoflow import ConfigurationError, Flow
from nemoflow._httpx import transport_classes
from nemoflow._instrument import Instrumentation, instrument
from tests.e2e_sdk.observe import Collector, Expect, Observed, check_recorded, requires_codec
from tests.e2e_sdk.replay import Replay, fixture_reply, json_reply, openai_chat_stream, stream_reply

pytestmark = requires_codec("openai-chat", "anthropic-messages", "gemini-generate-content")

MESSAGES: list[Any] = [{"role": "user", "content": "Hello"}]
PLAIN_TEXT = Expect.from_fixture("openai-chat", "response-plain-text")
PATCHED_CLASSES: tuple[type[Any], ...] = (
    httpx2.Client,
    httpx2.AsyncClient,
    httpx.Client,
    httpx.AsyncClient,
    requests.Session,
    aiohttp.ClientSession,
)
ORIGINAL_INITS = {cls: cls.__dict__["__init__"] for cls in PATCHED_CLASSES}


@pytest.fixture(autouse=True)
def _always_uninstrumented() -> Iterator[None]:
    yield
    from nemoflow import _instrument

    current = _instrument._current
    if current is not None:
        current.uninstrument()
    for cls, init in ORIGINAL_INITS.items():
        assert cls.__dict__["__init__"] is init, f"{cls.__qualname__}.__init__ was not restored"


def ours() -> tuple[type[Any], ...]:
    return (*(transport_classes("httpx2") or ()), *(transport_classes("httpx") or ()))


def openai_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-e2e", base_url=f"{base_url}/v1", max_retries=0)


def chat(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).model_dump()


def test_only_clients_created_while_instrumented_are_recorded(
    base_url: str, replay: Replay, observed: Observed
) -> None:
    reply = fixture_reply("openai-chat", "response-plain-text")
    replay.expect(*[reply] * 4)
    with openai_client(base_url) as before:
        handle = instrument(observed.flow)
        with openai_client(base_url) as during:
            assert isinstance(during._client._transport, ours())  # the SDK's own DefaultHttpxClient
            assert chat(during) == chat(before)
            check_recorded(observed, PLAIN_TEXT)  # only ``during`` was recorded

            handle.uninstrument()
            assert not handle.active
            with openai_client(base_url) as after:
                assert not isinstance(after._client._transport, ours())
                assert chat(after) == chat(during)
    # ``during`` keeps its nemoflow transport; ``after`` was never instrumented.
    check_recorded(observed, PLAIN_TEXT)
    assert len(replay.take(4)) == 4


def test_instrument_is_idempotent_and_never_wraps_twice(
    base_url: str, replay: Replay, observed: Observed
) -> None:
    replay.expect(*[fixture_reply("openai-chat", "response-plain-text")] * 2)
    handle = instrument(observed.flow)
    assert instrument(observed.flow) is handle
    assert handle.patched == tuple(f"{cls.__module__}.{cls.__qualname__}.__init__" for cls in PATCHED_CLASSES)
    with pytest.raises(ConfigurationError, match="another flow"):
        instrument(Flow())

    with (
        openai_client(base_url) as sdk_default,
        openai.OpenAI(
            api_key="sk-e2e",
            base_url=f"{base_url}/v1",
            max_retries=0,
            http_client=observed.flow.httpx2_client(),
        ) as explicit,
    ):
        for client in (sdk_default, explicit):
            transport = client._client._transport
            assert isinstance(transport, ours()) and not isinstance(transport.inner, ours())
            chat(client)
    check_recorded(observed, PLAIN_TEXT, PLAIN_TEXT)  # one record per call, not two
    replay.take(2)


def test_instrumentation_as_a_context_manager_covers_async_clients(
    base_url: str, replay: Replay, observed: Observed
) -> None:
    replay.expect(fixture_reply("openai-chat", "response-plain-text"))

    async def call() -> Any:
        async with openai.AsyncOpenAI(api_key="sk-e2e", base_url=f"{base_url}/v1", max_retries=0) as client:
            completion = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            return completion.model_dump()

    with instrument(observed.flow) as handle:
        assert isinstance(handle, Instrumentation) and handle.patched
        result = asyncio.run(call())
    assert not handle.active and httpx2.AsyncClient.__dict__["__init__"] is ORIGINAL_INITS[httpx2.AsyncClient]
    assert result["choices"][0]["message"]["content"] == "Hello! How can I assist you today?"
    check_recorded(observed, PLAIN_TEXT)
    replay.take(1)


def test_anthropic_and_genai_default_clients_are_recorded(
    base_url: str, replay: Replay, observed: Observed
) -> None:
    replay.expect(
        fixture_reply("anthropic-messages", "response-tool-use"),
        fixture_reply("gemini-generate-content", "response-cached-content-tokens"),
    )
    with instrument(observed.flow):
        with anthropic.Anthropic(
            api_key="sk-ant-e2e", base_url=base_url, max_retries=0, open_telemetry=False
        ) as claude:
            claude.messages.create(model="claude-sonnet-4-6", max_tokens=512, messages=MESSAGES)
        # google-genai's default sync client is an httpx2.Client subclass (its default async transport is
        # an aiohttp.ClientSession subclass when aiohttp is installed).
        with genai.Client(api_key="gemini-e2e", http_options=types.HttpOptions(base_url=base_url)) as gemini:
            gemini.models.generate_content(model="gemini-2.5-flash", contents="Summarize the transcript.")
    check_recorded(
        observed,
        Expect.from_fixture("anthropic-messages", "response-tool-use"),
        Expect.from_fixture("gemini-generate-content", "response-cached-content-tokens"),
    )
    replay.take(2)


def test_httpx_mounts_are_wrapped_and_other_traffic_passes(
    base_url: str, replay: Replay, observed: Observed
) -> None:
    replay.expect(fixture_reply("openai-chat", "response-plain-text"), json_reply({"data": []}))
    with (
        instrument(observed.flow),
        httpx.Client(mounts={"http://127.0.0.1": httpx.HTTPTransport()}) as client,
    ):
        [mounted] = [transport for transport in client._mounts.values() if transport is not None]
        assert isinstance(mounted, ours())
        client.post(f"{base_url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES})
        assert client.get(f"{base_url}/v1/models").json() == {"data": []}
    check_recorded(observed, PLAIN_TEXT)
    assert observed.flow.stats().passed_through == 1
    replay.take(2)


def test_without_a_flow_the_default_flow_at_call_time_records(
    base_url: str, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay.expect(*[fixture_reply("openai-chat", "response-plain-text")] * 2)
    first, second = Collector(), Collector()
    monkeypatch.setattr(nemoflow._flow, "_default", Flow(subscribers=[first]))
    flows: list[Flow] = []
    try:
        with instrument() as handle, openai_client(base_url) as client:
            assert handle.flow is None
            chat(client)
            flows.append(nemoflow.default_flow())
            assert flows[0].flush(10) and len(first.calls) == 1
            flows.append(nemoflow.configure(subscribers=[second]))  # replaces the default flow
            chat(client)  # the same client now reports to the new default flow
            assert flows[1].flush(10) and len(second.calls) == 1 and len(first.calls) == 1
    finally:
        for flow in flows:
            flow.shutdown()
    replay.take(2)


def test_requests_sessions_get_the_adapter(base_url: str, replay: Replay, observed: Observed) -> None:
    from nemoflow._requests import NemoflowAdapter

    replay.expect(fixture_reply("openai-chat", "response-plain-text"))
    with instrument(observed.flow), requests.Session() as session:
        assert isinstance(session.get_adapter(base_url), NemoflowAdapter)
        body = {"model": "gpt-4o-mini", "messages": MESSAGES}
        reply = session.post(f"{base_url}/v1/chat/completions", json=body, timeout=10)
        assert reply.json()["usage"]["total_tokens"] == 29
    with requests.Session() as after:
        assert not isinstance(after.get_adapter(base_url), NemoflowAdapter)
    check_recorded(observed, PLAIN_TEXT)
    replay.take(1)


def test_aiohttp_sessions_get_the_middleware(base_url: str, replay: Replay, observed: Observed) -> None:
    replay.expect(stream_reply("anthropic-messages", "stream-tool-use"))
    body = {"model": "claude-sonnet-4-6", "max_tokens": 512, "messages": MESSAGES, "stream": True}

    async def call() -> bytes:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base_url}/v1/messages", json=body) as response,
        ):
            return await response.read()

    with instrument(observed.flow):
        received = asyncio.run(call())
    assert received == stream_reply("anthropic-messages", "stream-tool-use").body
    check_recorded(observed, Expect.from_fixture("anthropic-messages", "stream-tool-use"))
    replay.take(1)


# google-genai defines an aiohttp.ClientSession subclass when it first sends, which aiohttp warns about.
@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
def test_genai_async_default_transport_is_recorded_through_aiohttp(
    base_url: str, replay: Replay, observed: Observed
) -> None:
    codec = "gemini-generate-content"
    replay.expect(
        fixture_reply(codec, "response-cached-content-tokens"), stream_reply(codec, "stream-sse-text")
    )

    async def calls() -> tuple[Any, list[Any]]:
        options = types.HttpOptions(base_url=base_url)
        async with genai.Client(api_key="gemini-e2e", http_options=options).aio as client:
            reply = await client.models.generate_content(model="gemini-2.5-flash", contents="Summarize.")
            stream = await client.models.generate_content_stream(model="gemini-2.5-flash", contents="Write.")
            return reply, [chunk async for chunk in stream]

    with instrument(observed.flow):
        reply, chunks = asyncio.run(calls())
    assert reply.text == "The transcript covers the Apollo 11 landing." and len(chunks) == 3
    check_recorded(
        observed,
        Expect.from_fixture(codec, "response-cached-content-tokens"),
        Expect.from_fixture(codec, "stream-sse-text"),
    )
    replay.take(2)


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_openai_aiohttp_client_is_recorded_once(
    streamed: bool, base_url: str, replay: Replay, observed: Observed
) -> None:
    # openai.DefaultAioHttpClient is an httpx2.AsyncClient whose transport sends through an aiohttp
    # session it creates itself: both layers are instrumented, the call must still be recorded once.
    name = "stream-text-with-final-usage-chunk" if streamed else "response-plain-text"
    replay.expect(openai_chat_stream(name) if streamed else fixture_reply("openai-chat", name))

    async def call() -> Any:
        async with openai.AsyncOpenAI(
            api_key="sk-e2e",
            base_url=f"{base_url}/v1",
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(),
        ) as client:
            if streamed:
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, stream=True
                )
                return [chunk.model_dump() async for chunk in stream]
            return (await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)).model_dump()

    with instrument(observed.flow):
        got = asyncio.run(call())
    if streamed:
        assert all(chunk["usage"] is None for chunk in got)  # the injected usage chunk was stripped once
    check_recorded(observed, Expect.from_fixture("openai-chat", name))
    sent = replay.take(1)[0].json()
    assert sent.get("stream_options") == ({"include_usage": True} if streamed else None)
