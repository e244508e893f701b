"""The official ``google-genai`` SDK, unmodified, through nemoflow, against a loopback replay.

google-genai takes custom HTTP clients through ``HttpOptions``: ``httpx_client`` (sync) and
``httpx_async_client`` (async), each an ``httpx2`` (or ``httpx``) client, and ``base_url`` points it at
the replay. A plain client and one given ``flow.httpx2_client()`` / ``flow.async_httpx2_client()`` must
get identical responses (headers included: the replay sends the same bytes every time), send identical
request bytes, and the record and span must carry the fixture's facts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx2
import pytest
from google import genai
from google.genai import types
from google.genai.client import AsyncClient

from nemoflow import Flow
from tests.e2e_sdk.observe import Expect, Observed, check_recorded, requires_codec
from tests.e2e_sdk.replay import Replay, fixture_reply, stream_reply

pytestmark = requires_codec("gemini-generate-content")

API_KEY = "gemini-e2e-not-a-real-key"
WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_current_weather",
            description="Current weather in a location.",
            parameters_json_schema={
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        )
    ]
)

Mode = Literal["sync", "async"]
MODES = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]
SyncCall = Callable[[genai.Client], Any]
AsyncCall = Callable[[AsyncClient], Awaitable[Any]]

CASES = [
    pytest.param("response-cached-content-tokens", "gemini-2.5-flash", False, id="cached"),
    pytest.param("response-function-call-stop", "gemini-3-pro-preview", True, id="tools"),
]
STREAM_CASES = [
    pytest.param("stream-sse-text", "gemini-2.5-flash", False, id="text"),
    pytest.param("stream-sse-function-call", "gemini-3-pro-preview", True, id="tools"),
    pytest.param("stream-sse-thinking", "gemini-2.5-pro", False, id="thinking"),
]


def make_client(base_url: str, http: httpx2.Client | httpx2.AsyncClient) -> genai.Client:
    """A client whose sync or async requests go through ``http`` (the SDK never closes it: we do)."""
    if isinstance(http, httpx2.AsyncClient):
        # Without it the SDK's async transport would be aiohttp (when installed), not httpx2.
        options = types.HttpOptions(base_url=base_url, httpx_async_client=http)
    else:
        options = types.HttpOptions(base_url=base_url, httpx_client=http)
    return genai.Client(api_key=API_KEY, http_options=options)


def run_both(mode: Mode, base_url: str, flow: Flow, sync_call: SyncCall, async_call: AsyncCall) -> list[Any]:
    """What a client on plain httpx2 gets, then what one on nemoflow's httpx2 client gets."""
    if mode == "sync":
        with httpx2.Client() as plain_http, flow.httpx2_client() as wrapped_http:
            results = []
            for http in (plain_http, wrapped_http):
                with make_client(base_url, http) as client:
                    results.append(sync_call(client))
            return results

    async def both() -> list[Any]:
        async with httpx2.AsyncClient() as plain_http, flow.async_httpx2_client() as wrapped_http:
            results = []
            for http in (plain_http, wrapped_http):
                async with make_client(base_url, http).aio as client:
                    results.append(await async_call(client))
            return results

    return asyncio.run(both())


def config(tools: bool) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(tools=[WEATHER_TOOL] if tools else None, temperature=0.0)


def dump(response: types.GenerateContentResponse) -> Any:
    return response.model_dump(mode="json")


def assert_same_bytes_sent(replay: Replay, method: str) -> None:
    plain, wrapped = replay.take(2)
    assert wrapped.body == plain.body
    assert wrapped.path == plain.path and plain.path.endswith(method), plain.path
    assert wrapped.query == plain.query


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "model", "tools"), CASES)
def test_generate_content(
    mode: Mode, name: str, model: str, tools: bool, base_url: str, replay: Replay, observed: Observed
) -> None:
    codec = "gemini-generate-content"
    replay.expect(fixture_reply(codec, name), fixture_reply(codec, name))

    def sync_call(client: genai.Client) -> Any:
        return dump(client.models.generate_content(model=model, contents="Hi", config=config(tools)))

    async def async_call(client: AsyncClient) -> Any:
        return dump(await client.models.generate_content(model=model, contents="Hi", config=config(tools)))

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain
    assert_same_bytes_sent(replay, f"/models/{model}:generateContent")
    check_recorded(observed, Expect.from_fixture(codec, name))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "model", "tools"), STREAM_CASES)
def test_generate_content_stream(
    mode: Mode, name: str, model: str, tools: bool, base_url: str, replay: Replay, observed: Observed
) -> None:
    codec = "gemini-generate-content"
    replay.expect(stream_reply(codec, name), stream_reply(codec, name))

    def sync_call(client: genai.Client) -> Any:
        stream = client.models.generate_content_stream(model=model, contents="Hi", config=config(tools))
        return [dump(chunk) for chunk in stream]

    async def async_call(client: AsyncClient) -> Any:
        stream = await client.models.generate_content_stream(model=model, contents="Hi", config=config(tools))
        return [dump(chunk) async for chunk in stream]

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain and len(plain) >= 2
    assert_same_bytes_sent(replay, f"/models/{model}:streamGenerateContent")
    [call] = check_recorded(observed, Expect.from_fixture(codec, name, model=model))
    assert call.first_token_time_ns is not None
