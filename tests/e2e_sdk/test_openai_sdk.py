"""The official ``openai`` SDK, unmodified, through nemoflow, against a loopback replay of recorded traffic.

Every scenario runs twice against the same replayed bytes: once with a plain SDK client and once with
the SDK given ``flow.httpx2_client()`` (``flow.async_httpx2_client()``). What the application gets must
be identical (``model_dump()`` of every object or chunk), what went on the wire must be identical except
where nemoflow deliberately asks for stream usage, and the nemoflow record and OpenInference span must
carry the facts the fixture states: model, token counts (cached and reasoning included), finish reason,
tool calls, status and attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import openai
import pytest

from nemoflow import CallStatus, ErrorKind, Flow
from tests.e2e_sdk.observe import Expect, Observed, check_recorded, requires_codec
from tests.e2e_sdk.replay import (
    Received,
    Replay,
    error_reply,
    fixture_reply,
    load_fixture,
    openai_chat_stream,
    stream_reply,
)

pytestmark = requires_codec("openai-chat")

API_KEY = "sk-e2e-not-a-real-key"
MESSAGES: list[Any] = [{"role": "user", "content": "What is 17 times 23?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
RESPONSES_TOOL: Any = {
    "type": "function",
    "name": "get_current_weather",
    "description": "Current weather in a location.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
}

Mode = Literal["sync", "async"]
MODES = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]
T = TypeVar("T")


def run_both(
    mode: Mode,
    base_url: str,
    flow: Flow,
    sync_call: Callable[[openai.OpenAI], T],
    async_call: Callable[[openai.AsyncOpenAI], Awaitable[T]],
    *,
    max_retries: int = 0,
) -> tuple[T, T]:
    """What the application gets from a plain client, then from one whose HTTP client nemoflow wraps."""
    url = f"{base_url}/v1"
    if mode == "sync":
        with (
            openai.OpenAI(api_key=API_KEY, base_url=url, max_retries=max_retries) as plain,
            openai.OpenAI(
                api_key=API_KEY, base_url=url, max_retries=max_retries, http_client=flow.httpx2_client()
            ) as wrapped,
        ):
            return sync_call(plain), sync_call(wrapped)

    async def both() -> tuple[T, T]:
        async with (
            openai.AsyncOpenAI(api_key=API_KEY, base_url=url, max_retries=max_retries) as plain,
            openai.AsyncOpenAI(
                api_key=API_KEY,
                base_url=url,
                max_retries=max_retries,
                http_client=flow.async_httpx2_client(),
            ) as wrapped,
        ):
            return await async_call(plain), await async_call(wrapped)

    return asyncio.run(both())


def same_bytes_sent(replay: Replay) -> tuple[Received, Received]:
    """The plain and the wrapped request, checked to be byte-identical (nemoflow changed nothing)."""
    plain, wrapped = replay.take(2)
    assert wrapped.body == plain.body
    assert (wrapped.method, wrapped.path) == (plain.method, plain.path)
    return plain, wrapped


# ----------------------------------------------------------------------------------------- chat


@pytest.mark.parametrize("mode", MODES)
def test_chat_completion(mode: Mode, base_url: str, replay: Replay, observed: Observed) -> None:
    name = "response-cached-and-reasoning-tokens"
    replay.expect(fixture_reply("openai-chat", name), fixture_reply("openai-chat", name))

    def sync_call(client: openai.OpenAI) -> Any:
        return client.chat.completions.create(model="o4-mini", messages=MESSAGES).model_dump()

    async def async_call(client: openai.AsyncOpenAI) -> Any:
        return (await client.chat.completions.create(model="o4-mini", messages=MESSAGES)).model_dump()

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain
    assert wrapped["usage"]["prompt_tokens_details"]["cached_tokens"] == 1920
    same_bytes_sent(replay)
    check_recorded(observed, Expect.from_fixture("openai-chat", name, finish_reason="stop"))


@pytest.mark.parametrize("mode", MODES)
def test_chat_stream_without_stream_options_gets_usage_the_app_never_sees(
    mode: Mode, base_url: str, replay: Replay, observed: Observed
) -> None:
    name = "stream-text-with-final-usage-chunk"
    replay.expect(openai_chat_stream(name), openai_chat_stream(name))

    def sync_call(client: openai.OpenAI) -> list[Any]:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return [chunk.model_dump() for chunk in stream]

    async def async_call(client: openai.AsyncOpenAI) -> list[Any]:
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return [chunk.model_dump() async for chunk in stream]

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain  # the usage chunk nemoflow asked for was taken out again
    assert all(chunk["usage"] is None for chunk in wrapped) and len(wrapped) == 11
    plain_sent, wrapped_sent = replay.take(2)
    assert "stream_options" not in plain_sent.json()
    assert wrapped_sent.json() == {**plain_sent.json(), "stream_options": {"include_usage": True}}
    assert wrapped_sent.headers["content-length"] == str(len(wrapped_sent.body))
    [call] = check_recorded(observed, Expect.from_fixture("openai-chat", name))
    assert call.usage_source == "reported" and call.first_token_time_ns is not None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("include_usage", [True, False], ids=["include_usage", "no_usage"])
def test_chat_stream_keeps_the_callers_stream_options(
    mode: Mode, include_usage: bool, base_url: str, replay: Replay, observed: Observed
) -> None:
    name = "stream-text-with-final-usage-chunk"
    replay.expect(openai_chat_stream(name), openai_chat_stream(name))
    options: Any = {"include_usage": include_usage}

    def sync_call(client: openai.OpenAI) -> list[Any]:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=options
        )
        return [chunk.model_dump() for chunk in stream]

    async def async_call(client: openai.AsyncOpenAI) -> list[Any]:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=options
        )
        return [chunk.model_dump() async for chunk in stream]

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain
    assert (wrapped[-1]["usage"] is not None) is include_usage  # the caller's own usage chunk stays
    plain_sent, _ = same_bytes_sent(replay)
    assert plain_sent.json()["stream_options"] == options
    if include_usage:
        check_recorded(observed, Expect.from_fixture("openai-chat", name))
    else:
        unreported = dict.fromkeys(("prompt_tokens", "completion_tokens", "total_tokens"))
        [call] = check_recorded(observed, Expect.from_fixture("openai-chat", name, usage=unreported))
        assert call.usage_source == "missing"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["response-parallel-tool-calls", "stream-parallel-tool-calls"])
def test_chat_tool_calls(mode: Mode, name: str, base_url: str, replay: Replay, observed: Observed) -> None:
    streamed = name.startswith("stream")
    reply = openai_chat_stream(name) if streamed else fixture_reply("openai-chat", name)
    replay.expect(reply, reply)
    question: Any = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]

    def sync_call(client: openai.OpenAI) -> Any:
        if streamed:
            stream = client.chat.completions.create(
                model="gpt-4o", messages=question, tools=[WEATHER_TOOL], stream=True
            )
            return [chunk.model_dump() for chunk in stream]
        return client.chat.completions.create(
            model="gpt-4o", messages=question, tools=[WEATHER_TOOL]
        ).model_dump()

    async def async_call(client: openai.AsyncOpenAI) -> Any:
        if streamed:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=question, tools=[WEATHER_TOOL], stream=True
            )
            return [chunk.model_dump() async for chunk in stream]
        completion = await client.chat.completions.create(
            model="gpt-4o", messages=question, tools=[WEATHER_TOOL]
        )
        return completion.model_dump()

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain
    plain_sent, wrapped_sent = replay.take(2)
    if not streamed:
        assert wrapped_sent.body == plain_sent.body
    [call] = check_recorded(observed, Expect.from_fixture("openai-chat", name))
    assert call.request is not None and [tool.name for tool in call.request.tools] == ["get_weather"]


# ----------------------------------------------------------------------------------------- responses


@requires_codec("openai-responses")
@pytest.mark.parametrize("mode", MODES)
def test_responses_create(mode: Mode, base_url: str, replay: Replay, observed: Observed) -> None:
    name = "response-text-cached-usage"
    replay.expect(fixture_reply("openai-responses", name), fixture_reply("openai-responses", name))

    def sync_call(client: openai.OpenAI) -> Any:
        return client.responses.create(model="gpt-4.1", input="Tell me a one-line story.").model_dump()

    async def async_call(client: openai.AsyncOpenAI) -> Any:
        return (
            await client.responses.create(model="gpt-4.1", input="Tell me a one-line story.")
        ).model_dump()

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain
    same_bytes_sent(replay)
    check_recorded(observed, Expect.from_fixture("openai-responses", name))


@requires_codec("openai-responses")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["stream-text-completed", "stream-function-call"])
def test_responses_stream(mode: Mode, name: str, base_url: str, replay: Replay, observed: Observed) -> None:
    replay.expect(stream_reply("openai-responses", name), stream_reply("openai-responses", name))
    tools: Any = [RESPONSES_TOOL]

    def sync_call(client: openai.OpenAI) -> list[Any]:
        stream = client.responses.create(
            model="gpt-4.1", input="Weather in Boston?", tools=tools, stream=True
        )
        return [event.model_dump() for event in stream]

    async def async_call(client: openai.AsyncOpenAI) -> list[Any]:
        stream = await client.responses.create(
            model="gpt-4.1", input="Weather in Boston?", tools=tools, stream=True
        )
        return [event.model_dump() async for event in stream]

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain and wrapped[-1]["type"] == "response.completed"
    same_bytes_sent(replay)  # the Responses API reports usage anyway: nothing is injected
    check_recorded(observed, Expect.from_fixture("openai-responses", name, model="gpt-4.1-2025-04-14"))


# ----------------------------------------------------------------------------------------- embeddings


@requires_codec("openai-embeddings")
@pytest.mark.parametrize("mode", MODES)
def test_embeddings_create(mode: Mode, base_url: str, replay: Replay, observed: Observed) -> None:
    name = "response-float-vectors"
    replay.expect(fixture_reply("openai-embeddings", name), fixture_reply("openai-embeddings", name))
    texts = ["The food was delicious.", "The waiter was friendly."]

    def sync_call(client: openai.OpenAI) -> Any:
        return client.embeddings.create(
            model="text-embedding-3-small", input=texts, encoding_format="float", dimensions=256
        ).model_dump()

    async def async_call(client: openai.AsyncOpenAI) -> Any:
        created = await client.embeddings.create(
            model="text-embedding-3-small", input=texts, encoding_format="float", dimensions=256
        )
        return created.model_dump()

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain and len(wrapped["data"][0]["embedding"]) == 256
    same_bytes_sent(replay)
    [call] = check_recorded(observed, Expect.from_fixture("openai-embeddings", name))
    assert call.operation == "embeddings"
    assert call.response is not None
    assert (call.response.embedding_count, call.response.embedding_dimension) == (2, 256)


# ----------------------------------------------------------------------------------------- retries


@pytest.mark.parametrize("mode", MODES)
def test_sdk_retry_is_two_attempts(mode: Mode, base_url: str, replay: Replay, observed: Observed) -> None:
    # retry-after: 0 is "retry now" to a server; the SDK reads 0 as "no advice" and backs off ~0.5 s, so
    # the replay also sends OpenAI's retry-after-ms, which the SDK honours first.
    rate_limited = error_reply(
        "openai-chat", "error-429-rate-limit-retry-after", headers={"retry-after": "0", "retry-after-ms": "1"}
    )
    ok = fixture_reply("openai-chat", "response-plain-text")
    replay.expect(rate_limited, ok, rate_limited, ok)

    def sync_call(client: openai.OpenAI) -> Any:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).model_dump()

    async def async_call(client: openai.AsyncOpenAI) -> Any:
        return (await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)).model_dump()

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call, max_retries=2)

    assert wrapped == plain
    sent = replay.take(4)
    assert [request.headers["x-stainless-retry-count"] for request in sent] == ["0", "1", "0", "1"]
    assert sent[3].body == sent[1].body
    failed, succeeded = check_recorded(
        observed,
        Expect(
            codec="openai-chat",
            model="gpt-4o-mini",
            usage={},
            finish_reason=None,
            status=CallStatus.ERROR,
            http_status=429,
            attempt=1,
        ),
        Expect.from_fixture("openai-chat", "response-plain-text", attempt=2),
    )
    assert failed.error is not None and failed.error.kind is ErrorKind.RATE_LIMIT
    recorded_error = load_fixture("openai-chat", "error-429-rate-limit-retry-after")["body"]["error"]
    assert failed.error.code == recorded_error["code"]
    assert succeeded.start_time_ns >= failed.end_time_ns
