"""The official ``anthropic`` SDK, unmodified, through nemoflow, against a loopback replay of recorded calls.

Each scenario runs with a plain SDK client and with one given ``flow.httpx2_client()``
(``flow.async_httpx2_client()``) against the same replayed bytes: the application must get identical
objects and events, the request bytes must be identical, and the record and span must carry the
fixture's facts (model, tokens with cache reads and writes, finish reason, tool calls, thinking).

The SDK's own OpenTelemetry spans are switched off here (``open_telemetry=False``) so that no tracer
provider another test registered globally can change what these tests see; how they combine with
nemoflow's spans is tested in ``test_anthropic_tracing.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import anthropic
import pytest

from nemoflow import CallStatus, ErrorKind, Flow
from tests.e2e_sdk.observe import Expect, Observed, check_recorded, requires_codec
from tests.e2e_sdk.replay import Replay, error_reply, fixture_reply, stream_reply

pytestmark = requires_codec("anthropic-messages")

API_KEY = "sk-ant-e2e-not-a-real-key"
MODEL = "claude-sonnet-4-6"  # not on the SDK's deprecation list (it warns, and warnings fail tests)
MESSAGES: list[Any] = [{"role": "user", "content": "What are the major themes of Pride and Prejudice?"}]
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather in a location.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
}
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}

Mode = Literal["sync", "async"]
MODES = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]
T = TypeVar("T")


def run_both(
    mode: Mode,
    base_url: str,
    flow: Flow,
    sync_call: Callable[[anthropic.Anthropic], T],
    async_call: Callable[[anthropic.AsyncAnthropic], Awaitable[T]],
    *,
    max_retries: int = 0,
) -> tuple[T, T]:
    """What the application gets from a plain client, then from one whose HTTP client nemoflow wraps."""
    common: Any = {
        "api_key": API_KEY,
        "base_url": base_url,
        "max_retries": max_retries,
        "open_telemetry": False,
    }
    if mode == "sync":
        with (
            anthropic.Anthropic(**common) as plain,
            anthropic.Anthropic(**common, http_client=flow.httpx2_client()) as wrapped,
        ):
            return sync_call(plain), sync_call(wrapped)

    async def both() -> tuple[T, T]:
        async with (
            anthropic.AsyncAnthropic(**common) as plain,
            anthropic.AsyncAnthropic(**common, http_client=flow.async_httpx2_client()) as wrapped,
        ):
            return await async_call(plain), await async_call(wrapped)

    return asyncio.run(both())


def assert_same_bytes_sent(replay: Replay, count: int = 2) -> None:
    sent = replay.take(count)
    half = count // 2
    for plain, wrapped in zip(sent[:half], sent[half:], strict=True):
        assert wrapped.body == plain.body
        assert (wrapped.method, wrapped.path) == (plain.method, plain.path) == ("POST", "/v1/messages")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("name", "options"),
    [
        pytest.param("response-text-end-turn-cached", {}, id="cached"),
        pytest.param("response-tool-use", {"tools": [WEATHER_TOOL]}, id="tools"),
        pytest.param("response-thinking-signature", {"thinking": THINKING}, id="thinking"),
    ],
)
def test_messages_create(
    mode: Mode, name: str, options: Any, base_url: str, replay: Replay, observed: Observed
) -> None:
    replay.expect(fixture_reply("anthropic-messages", name), fixture_reply("anthropic-messages", name))

    def sync_call(client: anthropic.Anthropic) -> Any:
        return client.messages.create(model=MODEL, max_tokens=2048, messages=MESSAGES, **options).model_dump()

    async def async_call(client: anthropic.AsyncAnthropic) -> Any:
        message = await client.messages.create(model=MODEL, max_tokens=2048, messages=MESSAGES, **options)
        return message.model_dump()

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain
    assert_same_bytes_sent(replay)
    check_recorded(observed, Expect.from_fixture("anthropic-messages", name))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("name", "options"),
    [
        pytest.param("stream-text", {}, id="text"),
        pytest.param("stream-tool-use", {"tools": [WEATHER_TOOL]}, id="tools"),
        pytest.param("stream-thinking", {"thinking": THINKING}, id="thinking"),
    ],
)
def test_messages_stream_events(
    mode: Mode, name: str, options: Any, base_url: str, replay: Replay, observed: Observed
) -> None:
    replay.expect(stream_reply("anthropic-messages", name), stream_reply("anthropic-messages", name))

    def sync_call(client: anthropic.Anthropic) -> list[Any]:
        stream = client.messages.create(
            model=MODEL, max_tokens=2048, messages=MESSAGES, stream=True, **options
        )
        return [event.model_dump() for event in stream]

    async def async_call(client: anthropic.AsyncAnthropic) -> list[Any]:
        stream = await client.messages.create(
            model=MODEL, max_tokens=2048, messages=MESSAGES, stream=True, **options
        )
        return [event.model_dump() async for event in stream]

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain and wrapped[-1]["type"] == "message_stop"
    assert_same_bytes_sent(replay)
    [call] = check_recorded(observed, Expect.from_fixture("anthropic-messages", name))
    assert call.first_token_time_ns is not None


@pytest.mark.parametrize("mode", MODES)
def test_messages_stream_helper(mode: Mode, base_url: str, replay: Replay, observed: Observed) -> None:
    name = "stream-thinking"
    replay.expect(stream_reply("anthropic-messages", name), stream_reply("anthropic-messages", name))

    def sync_call(client: anthropic.Anthropic) -> Any:
        with client.messages.stream(
            model=MODEL, max_tokens=2048, messages=MESSAGES, thinking=THINKING
        ) as stream:
            text = "".join(stream.text_stream)
            return text, stream.get_final_message().model_dump()

    async def async_call(client: anthropic.AsyncAnthropic) -> Any:
        async with client.messages.stream(
            model=MODEL, max_tokens=2048, messages=MESSAGES, thinking=THINKING
        ) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            return text, (await stream.get_final_message()).model_dump()

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call)

    assert wrapped == plain and wrapped[0] == "27 * 453 = 12,231"
    assert_same_bytes_sent(replay)
    check_recorded(observed, Expect.from_fixture("anthropic-messages", name))


@pytest.mark.parametrize("mode", MODES)
def test_sdk_retry_is_two_attempts(mode: Mode, base_url: str, replay: Replay, observed: Observed) -> None:
    # The SDK reads retry-after: 0 as "no advice" and backs off; retry-after-ms keeps the test fast.
    rate_limited = error_reply(
        "anthropic-messages",
        "error-429-rate-limit-retry-after",
        headers={"retry-after": "0", "retry-after-ms": "1"},
    )
    ok = fixture_reply("anthropic-messages", "response-text-end-turn-cached")
    replay.expect(rate_limited, ok, rate_limited, ok)

    def sync_call(client: anthropic.Anthropic) -> Any:
        return client.messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES).model_dump()

    async def async_call(client: anthropic.AsyncAnthropic) -> Any:
        return (await client.messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES)).model_dump()

    plain, wrapped = run_both(mode, base_url, observed.flow, sync_call, async_call, max_retries=2)

    assert wrapped == plain
    sent = replay.take(4)
    assert [request.headers["x-stainless-retry-count"] for request in sent] == ["0", "1", "0", "1"]
    failed, _ = check_recorded(
        observed,
        Expect(
            codec="anthropic-messages",
            model=MODEL,
            usage={},
            finish_reason=None,
            status=CallStatus.ERROR,
            http_status=429,
        ),
        Expect.from_fixture("anthropic-messages", "response-text-end-turn-cached", attempt=2),
    )
    assert failed.error is not None and failed.error.kind is ErrorKind.RATE_LIMIT
