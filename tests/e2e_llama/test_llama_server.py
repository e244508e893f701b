"""The official ``openai`` and ``anthropic`` SDKs through nemoflow, against a real llama.cpp server.

Nothing here is replayed: llama.cpp's own ``llama-server`` (built from source with a tiny hand-wired
model, see ``conftest.py``) answers Chat Completions, Responses and Anthropic Messages, plain and
streamed, with text and tool calls. Most scenarios send the same request, at ``temperature: 0``, from a
plain SDK client and from one whose HTTP client is ``flow.httpx2_client()``: the application must read
what it would have read without nemoflow, and the record must carry the server's real token counts (what
the plain client was told), the finish reason, the tool calls and, for streams, the time to first token.
A transport under nemoflow's logs the bodies that really went out, so the tests also see what nemoflow
changed on the wire (only ``stream_options`` on Chat streams that lack it).

A second server with the prompt cache on checks cached-token counts; streams the application closes
early, errors and non-LLM routes are checked too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import jsonschema
import openai
import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseUsage

from nemoflow import CallStatus, ErrorKind, FinishReason, Flow, LlmCall, Subscriber, Usage, codecs

pytestmark = pytest.mark.e2e

MODEL = "tiny-llama"
REPLY = "Hello! I am a tiny test model."
API_KEY = "x"
REQUEST_TIMEOUT_S = 60.0
FLUSH_TIMEOUT_S = 10.0
MAX_TOKENS = 64

USER_MESSAGES: list[Any] = [{"role": "user", "content": "Say hello."}]
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}
CHAT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": WEATHER_SCHEMA,
        },
    }
]
RESPONSES_TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": WEATHER_SCHEMA,
        "strict": False,
    }
]
ANTHROPIC_TOOLS: list[Any] = [
    {"name": "get_weather", "description": "Current weather in a city.", "input_schema": WEATHER_SCHEMA}
]
# anthropic 2.x no longer takes ``temperature`` as an argument; llama-server still honours it in the body.
GREEDY: dict[str, Any] = {"temperature": 0}
# llama-server's own switch to generate past the end of the reply: a stream that is still running when the
# application closes it, however fast the machine (the Messages endpoint does not honour it).
KEEP_GOING: dict[str, Any] = {"ignore_eos": True}
LONG_REPLY_TOKENS = 1000
# Long enough that a prompt-cache hit is unmistakable (hundreds of tokens).
LONG_PROMPT = " ".join(f"Line {n}: the quick brown fox jumps over the lazy dog." for n in range(40))


# ----------------------------------------------------------------------------------------- observing


class Collector(Subscriber):
    """Keeps every finished LLM call record."""

    def __init__(self) -> None:
        self.calls: list[LlmCall] = []

    def on_call(self, call: LlmCall) -> None:
        self.calls.append(call)


class WireLog(httpx2.BaseTransport):
    """The transport under nemoflow's: keeps the JSON bodies that actually went to the server."""

    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport()
        self.bodies: list[Any] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        content = request.read()
        self.bodies.append(json.loads(content) if content else None)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class Observed:
    """A flow with a collecting subscriber, and the wire log under its transport."""

    flow: Flow = field(default_factory=Flow)
    collector: Collector = field(default_factory=Collector)
    wire: WireLog = field(default_factory=WireLog)

    def __post_init__(self) -> None:
        self.flow.add_subscriber(self.collector)

    def http_client(self) -> httpx2.Client:
        client: httpx2.Client = self.flow.httpx2_client(transport=self.wire)
        return client

    def calls(self, count: int) -> list[LlmCall]:
        """Exactly ``count`` records delivered so far (then forgotten); nothing nemoflow had to contain."""
        assert self.flow.flush(FLUSH_TIMEOUT_S), "records were not delivered in time"
        calls = list(self.collector.calls)
        self.collector.calls.clear()
        assert len(calls) == count, f"expected {count} records, got {len(calls)}: {calls}"
        assert self.flow.stats().errors == {}, f"nemoflow contained errors: {self.flow.stats().errors}"
        return calls

    def call(self) -> LlmCall:
        """The one record of the last call."""
        return self.calls(1)[0]


@pytest.fixture
def observed() -> Iterator[Observed]:
    made = Observed()
    try:
        yield made
    finally:
        made.flow.shutdown(FLUSH_TIMEOUT_S)


# ----------------------------------------------------------------------------------------- clients


@pytest.fixture
def plain_openai(llama_server: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{llama_server}/v1", api_key=API_KEY, max_retries=0, timeout=REQUEST_TIMEOUT_S
    ) as client:
        yield client


@pytest.fixture
def traced_openai(llama_server: str, observed: Observed) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{llama_server}/v1",
        api_key=API_KEY,
        http_client=observed.http_client(),
        max_retries=0,
        timeout=REQUEST_TIMEOUT_S,
    ) as client:
        yield client


@pytest.fixture
def anthropic_codec() -> None:
    if "anthropic-messages" not in codecs():
        pytest.skip("the anthropic-messages codec is not registered (nemoflow-codec-anthropic not installed)")


@pytest.fixture
def plain_anthropic(llama_server: str, anthropic_codec: None) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=llama_server, api_key=API_KEY, max_retries=0, timeout=REQUEST_TIMEOUT_S
    ) as client:
        yield client


@pytest.fixture
def traced_anthropic(
    llama_server: str, observed: Observed, anthropic_codec: None
) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=llama_server,
        api_key=API_KEY,
        http_client=observed.http_client(),
        max_retries=0,
        timeout=REQUEST_TIMEOUT_S,
    ) as client:
        yield client


# ----------------------------------------------------------------------------------------- expectations


def chat_usage(usage: CompletionUsage | None) -> Usage:
    """What nemoflow must record for a Chat Completions ``usage`` object."""
    assert usage is not None, "the server reported no usage"
    prompt_details = usage.prompt_tokens_details
    completion_details = usage.completion_tokens_details
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cache_read_tokens=prompt_details.cached_tokens if prompt_details else None,
        reasoning_tokens=completion_details.reasoning_tokens if completion_details else None,
    )


def responses_usage(usage: ResponseUsage | None) -> Usage:
    """What nemoflow must record for a Responses ``usage`` object."""
    assert usage is not None, "the server reported no usage"
    # The SDK types both details as present; llama-server may leave them out (the SDK then has None).
    input_details: Any = usage.input_tokens_details
    output_details: Any = usage.output_tokens_details
    return Usage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        cache_read_tokens=input_details.cached_tokens if input_details is not None else None,
        reasoning_tokens=output_details.reasoning_tokens if output_details is not None else None,
    )


def anthropic_usage(usage: anthropic.types.Usage) -> Usage:
    """What nemoflow must record for a Messages ``usage`` (its ``input_tokens`` excludes cached reads)."""
    cache_read = usage.cache_read_input_tokens
    cache_write = usage.cache_creation_input_tokens
    prompt = usage.input_tokens + (cache_read or 0) + (cache_write or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=usage.output_tokens,
        total_tokens=prompt + usage.output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def anthropic_body(request: dict[str, Any], **more: Any) -> dict[str, Any]:
    """The JSON body the ``anthropic`` SDK sends for ``messages.create(**request)``."""
    body = {key: value for key, value in request.items() if key != "extra_body"}
    return {**body, **request.get("extra_body", {}), **more}


def token_counts(usage: Usage) -> tuple[int | None, ...]:
    """The counted fields of a :class:`Usage` (its ``extra`` keeps provider keys, not compared here)."""
    return (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    )


def check_call(
    call: LlmCall,
    *,
    codec: str,
    stream: bool,
    usage: Usage,
    finish: FinishReason,
    finish_raw: str,
    text: str | None,
) -> None:
    """The facts every successful call's record must state."""
    assert call.codec == codec
    assert call.status is CallStatus.OK
    assert call.http_status == 200
    assert call.error is None and call.exception is None
    assert call.stream is stream
    assert call.attempt == 1
    assert call.usage_source == "reported"
    assert token_counts(call.usage) == token_counts(usage)
    assert call.usage.prompt_tokens and call.usage.completion_tokens, "real counts are never zero here"
    assert call.response is not None
    assert call.response.finish_reason is finish
    assert call.response.finish_reason_raw == finish_raw
    assert call.response.text == text
    assert call.model, "the record names the model"
    assert call.request is not None and call.request.stream is stream
    assert call.first_byte_time_ns is not None
    assert call.start_time_ns <= call.first_byte_time_ns <= call.end_time_ns
    if stream:
        ttft = call.time_to_first_token_ms
        assert ttft is not None, "a stream's record has a time to first token"
        assert call.first_token_time_ns is not None
        assert call.first_byte_time_ns <= call.first_token_time_ns <= call.end_time_ns
        assert 0 <= ttft <= call.duration_ms


def chunk_view(chunk: ChatCompletionChunk) -> tuple[Any, ...]:
    """What a Chat chunk tells the application, without the ids and timestamps that differ per run."""
    choices = tuple(
        (
            choice.index,
            choice.delta.role,
            choice.delta.content,
            choice.finish_reason,
            tuple(
                (
                    call.index,
                    call.function.name if call.function else None,
                    call.function.arguments if call.function else None,
                )
                for call in choice.delta.tool_calls or ()
            ),
        )
        for choice in chunk.choices
    )
    return choices, chunk.usage is not None


def without_usage(chunks: list[ChatCompletionChunk]) -> tuple[list[ChatCompletionChunk], CompletionUsage]:
    """A stream read with ``include_usage``: its other chunks, and the usage it reported last.

    llama-server sends one usage chunk per choice (with ``n > 1`` the first comes mid-stream).
    """
    usages = [chunk.usage for chunk in chunks if chunk.choices == [] and chunk.usage is not None]
    assert usages, "the server reported no usage"
    return [chunk for chunk in chunks if chunk.choices != []], usages[-1]


@dataclass
class StreamedToolCall:
    """A Chat tool call as the application assembles it from deltas."""

    id: str = ""
    name: str = ""
    arguments: str = ""


def assemble_chat(chunks: list[ChatCompletionChunk]) -> tuple[str, str | None, list[StreamedToolCall]]:
    """Text, finish reason and tool calls of the first choice, as an application builds them."""
    text: list[str] = []
    finish: str | None = None
    calls: dict[int, StreamedToolCall] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, StreamedToolCall())
                call.id += delta.id or ""
                if delta.function is not None:
                    call.name += delta.function.name or ""
                    call.arguments += delta.function.arguments or ""
    return "".join(text), finish, [calls[index] for index in sorted(calls)]


# ----------------------------------------------------------------------------------------- chat


def test_chat_plain(plain_openai: openai.OpenAI, traced_openai: openai.OpenAI, observed: Observed) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": USER_MESSAGES,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    expected = plain_openai.chat.completions.create(**request)
    got = traced_openai.chat.completions.create(**request)

    assert got.choices[0].message.content == expected.choices[0].message.content == REPLY
    assert got.usage == expected.usage
    assert observed.wire.bodies == [request], "nothing to change: the app's request went out as it was"
    call = observed.call()
    check_call(
        call,
        codec="openai-chat",
        stream=False,
        usage=chat_usage(expected.usage),
        finish=FinishReason.STOP,
        finish_raw="stop",
        text=REPLY,
    )
    assert call.model == got.model
    assert call.response is not None and call.response.id == got.id
    assert call.request is not None and call.request.params.max_tokens == MAX_TOKENS
    assert call.request.messages[0].text == "Say hello."


def test_chat_stream_gets_usage_the_app_never_sees(
    plain_openai: openai.OpenAI, traced_openai: openai.OpenAI, observed: Observed
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": USER_MESSAGES,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    # What the app reads without nemoflow, and the usage the server reports when asked for it.
    expected_chunks = list(plain_openai.chat.completions.create(**request, stream=True))
    with_usage = list(
        plain_openai.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
    )
    _, usage = without_usage(with_usage)

    got_chunks = list(traced_openai.chat.completions.create(**request, stream=True))

    assert observed.wire.bodies == [{**request, "stream": True, "stream_options": {"include_usage": True}}]
    assert [chunk_view(chunk) for chunk in got_chunks] == [chunk_view(chunk) for chunk in expected_chunks]
    assert all(chunk.choices != [] for chunk in got_chunks), "the injected usage chunk reached the app"
    assert all(chunk.usage is None for chunk in got_chunks)
    text, finish, _ = assemble_chat(got_chunks)
    assert (text, finish) == (REPLY, "stop")

    call = observed.call()
    check_call(
        call,
        codec="openai-chat",
        stream=True,
        usage=chat_usage(usage),
        finish=FinishReason.STOP,
        finish_raw="stop",
        text=REPLY,
    )


def test_chat_stream_keeps_usage_the_app_asked_for(traced_openai: openai.OpenAI, observed: Observed) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": USER_MESSAGES,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = list(traced_openai.chat.completions.create(**request))

    assert observed.wire.bodies == [request]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None, "the app's own usage chunk is kept"
    _, usage = without_usage(chunks)
    check_call(
        observed.call(),
        codec="openai-chat",
        stream=True,
        usage=chat_usage(usage),
        finish=FinishReason.STOP,
        finish_raw="stop",
        text=REPLY,
    )


def test_chat_stream_tool_call(
    plain_openai: openai.OpenAI, traced_openai: openai.OpenAI, observed: Observed
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": CHAT_TOOLS,
        "max_tokens": 128,
        "temperature": 0,
        "stream": True,
    }
    expected = list(plain_openai.chat.completions.create(**request, stream_options={"include_usage": True}))
    got = list(traced_openai.chat.completions.create(**request))

    text, finish, tool_calls = assemble_chat(got)
    assert finish == "tool_calls"
    expected_chunks, usage = without_usage(expected)
    assert [chunk_view(chunk) for chunk in got] == [chunk_view(chunk) for chunk in expected_chunks]
    assert len(tool_calls) == 1 and tool_calls[0].name == "get_weather"
    arguments = json.loads(tool_calls[0].arguments)
    jsonschema.validate(arguments, WEATHER_SCHEMA)

    call = observed.call()
    check_call(
        call,
        codec="openai-chat",
        stream=True,
        usage=chat_usage(usage),
        finish=FinishReason.TOOL_CALLS,
        finish_raw="tool_calls",
        text=text or None,
    )
    assert call.response is not None
    [recorded] = call.response.tool_calls
    assert (recorded.id, recorded.name) == (tool_calls[0].id, "get_weather")
    assert recorded.arguments == arguments
    assert recorded.arguments_raw == tool_calls[0].arguments
    assert call.request is not None and [tool.name for tool in call.request.tools] == ["get_weather"]


def test_chat_plain_tool_call(
    plain_openai: openai.OpenAI, traced_openai: openai.OpenAI, observed: Observed
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": CHAT_TOOLS,
        "tool_choice": "required",
        "max_tokens": 128,
        "temperature": 0,
    }
    expected = plain_openai.chat.completions.create(**request)
    got = traced_openai.chat.completions.create(**request)

    assert got.usage == expected.usage
    [tool_call] = got.choices[0].message.tool_calls or []
    assert tool_call.type == "function"
    jsonschema.validate(json.loads(tool_call.function.arguments), WEATHER_SCHEMA)
    call = observed.call()
    check_call(
        call,
        codec="openai-chat",
        stream=False,
        usage=chat_usage(expected.usage),
        finish=FinishReason.TOOL_CALLS,
        finish_raw="tool_calls",
        text=got.choices[0].message.content or None,
    )
    assert call.response is not None
    [recorded] = call.response.tool_calls
    assert (recorded.id, recorded.name, recorded.arguments_raw) == (
        tool_call.id,
        tool_call.function.name,
        tool_call.function.arguments,
    )
    assert call.request is not None and call.request.tool_choice is not None
    assert call.request.tool_choice.mode == "required"


def test_chat_error_is_recorded(traced_openai: openai.OpenAI, observed: Observed) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        traced_openai.chat.completions.create(
            model=MODEL,
            messages=USER_MESSAGES,
            max_tokens=MAX_TOKENS,
            n=0,  # llama-server refuses a request for no choices
        )

    call = observed.call()
    assert call.status is CallStatus.ERROR
    assert call.http_status == 400 == raised.value.status_code
    assert call.error is not None
    assert call.error.kind is ErrorKind.INVALID_REQUEST
    assert call.error.message and call.error.message in str(raised.value)
    assert call.usage_source == "missing"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_chat_several_choices(
    plain_openai: openai.OpenAI, traced_openai: openai.OpenAI, observed: Observed, stream: bool
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": USER_MESSAGES,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "n": 2,
    }
    if stream:
        # llama-server interleaves the two choices' deltas in one stream.
        expected_chunks, usage = without_usage(
            list(
                plain_openai.chat.completions.create(
                    **request, stream=True, stream_options={"include_usage": True}
                )
            )
        )
        got_chunks = list(traced_openai.chat.completions.create(**request, stream=True))
        assert [chunk_view(chunk) for chunk in got_chunks] == [chunk_view(chunk) for chunk in expected_chunks]
    else:
        expected = plain_openai.chat.completions.create(**request)
        usage = expected.usage
        got = traced_openai.chat.completions.create(**request)
        assert [choice.message.content for choice in got.choices] == [REPLY, REPLY]

    call = observed.call()
    check_call(
        call,
        codec="openai-chat",
        stream=stream,
        usage=chat_usage(usage),
        finish=FinishReason.STOP,
        finish_raw="stop",
        text=REPLY,
    )
    assert call.response is not None
    assert [(choice.index, choice.text, choice.finish_reason) for choice in call.response.choices] == [
        (0, REPLY, FinishReason.STOP),
        (1, REPLY, FinishReason.STOP),
    ]


def test_async_chat_stream(plain_openai: openai.OpenAI, llama_server: str, observed: Observed) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": USER_MESSAGES,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    expected = list(
        plain_openai.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
    )

    async def read() -> list[ChatCompletionChunk]:
        async with openai.AsyncOpenAI(
            base_url=f"{llama_server}/v1",
            api_key=API_KEY,
            http_client=observed.flow.async_httpx2_client(),
            max_retries=0,
            timeout=REQUEST_TIMEOUT_S,
        ) as client:
            stream = await client.chat.completions.create(**request, stream=True)
            return [chunk async for chunk in stream]

    got = asyncio.run(read())

    expected_chunks, usage = without_usage(expected)
    assert [chunk_view(chunk) for chunk in got] == [chunk_view(chunk) for chunk in expected_chunks]
    check_call(
        observed.call(),
        codec="openai-chat",
        stream=True,
        usage=chat_usage(usage),
        finish=FinishReason.STOP,
        finish_raw="stop",
        text=REPLY,
    )


def check_cancelled(call: LlmCall, read_text: str) -> None:
    """The record of a stream the application closed before its end."""
    assert call.http_status == 200
    assert call.error is None and call.exception is None
    assert call.stream
    assert call.first_token_time_ns is not None, "events arrived before the close"
    assert call.response is not None
    recorded = call.response.text or ""
    # The record holds what reached the application's HTTP layer, which may run ahead of what it parsed.
    assert recorded.startswith(read_text), (recorded, read_text)
    assert call.response.finish_reason not in (FinishReason.STOP, FinishReason.LENGTH), "the stream was cut"
    assert call.status is CallStatus.CANCELLED


def test_chat_stream_closed_early(traced_openai: openai.OpenAI, observed: Observed) -> None:
    stream = traced_openai.chat.completions.create(
        model=MODEL,
        messages=USER_MESSAGES,
        max_tokens=LONG_REPLY_TOKENS,
        stream=True,
        extra_body=KEEP_GOING,
    )
    read = [chunk for _, chunk in zip(range(3), stream, strict=False)]
    stream.close()

    text, _, _ = assemble_chat(read)
    check_cancelled(observed.call(), text)


def test_responses_stream_closed_early(traced_openai: openai.OpenAI, observed: Observed) -> None:
    stream = traced_openai.responses.create(
        model=MODEL,
        input="Say hello.",
        max_output_tokens=LONG_REPLY_TOKENS,
        stream=True,
        extra_body=KEEP_GOING,
    )
    read = [event for _, event in zip(range(5), stream, strict=False)]
    stream.close()

    text = "".join(event.delta for event in read if event.type == "response.output_text.delta")
    check_cancelled(observed.call(), text)


def test_openai_models_list_passes_through(traced_openai: openai.OpenAI, observed: Observed) -> None:
    models = traced_openai.models.list()

    assert MODEL in [model.id for model in models.data]
    observed.calls(0)
    assert observed.flow.stats().passed_through == 1


# ----------------------------------------------------------------------------------------- responses


def test_responses_plain(
    plain_openai: openai.OpenAI, traced_openai: openai.OpenAI, observed: Observed
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "input": "Say hello.",
        "max_output_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    expected = plain_openai.responses.create(**request)
    got = traced_openai.responses.create(**request)

    assert got.output_text == expected.output_text == REPLY
    assert got.usage == expected.usage
    assert observed.wire.bodies == [request]
    call = observed.call()
    check_call(
        call,
        codec="openai-responses",
        stream=False,
        usage=responses_usage(expected.usage),
        finish=FinishReason.STOP,
        finish_raw="completed",
        text=REPLY,
    )
    assert call.response is not None and call.response.id == got.id


def test_responses_stream(
    plain_openai: openai.OpenAI, traced_openai: openai.OpenAI, observed: Observed
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "input": "Say hello.",
        "max_output_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
    }
    expected = list(plain_openai.responses.create(**request))
    got = list(traced_openai.responses.create(**request))

    assert [event.type for event in got] == [event.type for event in expected]
    assert all(getattr(event, "sequence_number", None) is None for event in got), (
        "llama-server numbers no events: this test is about decoding a stream without them"
    )
    assert observed.wire.bodies == [request], "Responses streams report usage unasked: nothing injected"
    text = "".join(event.delta for event in got if event.type == "response.output_text.delta")
    assert text == REPLY
    [completed] = [event for event in got if event.type == "response.completed"]
    [expected_completed] = [event for event in expected if event.type == "response.completed"]
    assert completed.response.usage == expected_completed.response.usage

    check_call(
        observed.call(),
        codec="openai-responses",
        stream=True,
        usage=responses_usage(completed.response.usage),
        finish=FinishReason.STOP,
        finish_raw="completed",
        text=REPLY,
    )


def test_responses_stream_function_call(
    plain_openai: openai.OpenAI, traced_openai: openai.OpenAI, observed: Observed
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "input": "What is the weather in Paris?",
        "tools": RESPONSES_TOOLS,
        "max_output_tokens": 128,
        "temperature": 0,
        "stream": True,
    }
    expected = list(plain_openai.responses.create(**request))
    got = list(traced_openai.responses.create(**request))

    [completed] = [event for event in got if event.type == "response.completed"]
    [expected_completed] = [event for event in expected if event.type == "response.completed"]
    calls = [item for item in completed.response.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    arguments = json.loads(calls[0].arguments)
    jsonschema.validate(arguments, WEATHER_SCHEMA)

    call = observed.call()
    check_call(
        call,
        codec="openai-responses",
        stream=True,
        usage=responses_usage(expected_completed.response.usage),
        finish=FinishReason.TOOL_CALLS,
        finish_raw="completed",
        text=completed.response.output_text or None,
    )
    assert call.response is not None
    [recorded] = call.response.tool_calls
    assert (recorded.id, recorded.name, recorded.arguments) == (calls[0].call_id, "get_weather", arguments)


# ----------------------------------------------------------------------------------------- anthropic


def test_anthropic_plain(
    plain_anthropic: anthropic.Anthropic, traced_anthropic: anthropic.Anthropic, observed: Observed
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": USER_MESSAGES,
        "max_tokens": MAX_TOKENS,
        "extra_body": GREEDY,
    }
    expected = plain_anthropic.messages.create(**request)
    got = traced_anthropic.messages.create(**request)

    assert [block.type for block in got.content] == ["text"]
    assert got.content[0].type == "text" and got.content[0].text == REPLY
    assert got.usage == expected.usage
    assert observed.wire.bodies == [anthropic_body(request)]
    call = observed.call()
    check_call(
        call,
        codec="anthropic-messages",
        stream=False,
        usage=anthropic_usage(expected.usage),
        finish=FinishReason.STOP,
        finish_raw="end_turn",
        text=REPLY,
    )
    assert call.response is not None and call.response.id == got.id


def test_anthropic_stream(
    plain_anthropic: anthropic.Anthropic, traced_anthropic: anthropic.Anthropic, observed: Observed
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": USER_MESSAGES,
        "max_tokens": MAX_TOKENS,
        "extra_body": GREEDY,
    }
    with plain_anthropic.messages.stream(**request) as stream:
        expected = stream.get_final_message()
    with traced_anthropic.messages.stream(**request) as stream:
        text = "".join(stream.text_stream)
        got = stream.get_final_message()

    assert text == REPLY
    assert got.usage == expected.usage
    assert observed.wire.bodies == [anthropic_body(request, stream=True)], (
        "Messages streams report usage unasked"
    )
    check_call(
        observed.call(),
        codec="anthropic-messages",
        stream=True,
        usage=anthropic_usage(expected.usage),
        finish=FinishReason.STOP,
        finish_raw="end_turn",
        text=REPLY,
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_tool_use(
    plain_anthropic: anthropic.Anthropic,
    traced_anthropic: anthropic.Anthropic,
    observed: Observed,
    stream: bool,
) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": ANTHROPIC_TOOLS,
        "max_tokens": 128,
        "extra_body": GREEDY,
    }

    def final_message(client: anthropic.Anthropic) -> anthropic.types.Message:
        if not stream:
            message: anthropic.types.Message = client.messages.create(**request)
            return message
        with client.messages.stream(**request) as events:
            return events.get_final_message()

    expected = final_message(plain_anthropic)
    got = final_message(traced_anthropic)

    assert got.stop_reason == "tool_use"
    assert got.usage == expected.usage
    uses = [block for block in got.content if block.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather"
    assert isinstance(uses[0].input, dict)
    jsonschema.validate(uses[0].input, WEATHER_SCHEMA)
    texts = [block.text for block in got.content if block.type == "text"]

    call = observed.call()
    check_call(
        call,
        codec="anthropic-messages",
        stream=stream,
        usage=anthropic_usage(expected.usage),
        finish=FinishReason.TOOL_CALLS,
        finish_raw="tool_use",
        text="".join(texts) or None,
    )
    assert call.response is not None
    [recorded] = call.response.tool_calls
    assert (recorded.id, recorded.name, recorded.arguments) == (uses[0].id, "get_weather", uses[0].input)


def test_anthropic_count_tokens_passes_through(
    traced_anthropic: anthropic.Anthropic, observed: Observed
) -> None:
    counted = traced_anthropic.messages.count_tokens(model=MODEL, messages=USER_MESSAGES)

    assert counted.input_tokens > 0
    observed.calls(0)
    assert observed.flow.stats().passed_through == 1


# ----------------------------------------------------------------------------------------- prompt cache


@pytest.fixture
def cached_openai(llama_cached_server: str, observed: Observed) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{llama_cached_server}/v1",
        api_key=API_KEY,
        http_client=observed.http_client(),
        max_retries=0,
        timeout=REQUEST_TIMEOUT_S,
    ) as client:
        yield client


@pytest.fixture
def cached_anthropic(
    llama_cached_server: str, observed: Observed, anthropic_codec: None
) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=llama_cached_server,
        api_key=API_KEY,
        http_client=observed.http_client(),
        max_retries=0,
        timeout=REQUEST_TIMEOUT_S,
    ) as client:
        yield client


def test_chat_cached_prompt_tokens(cached_openai: openai.OpenAI, observed: Observed) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"Chat cache. {LONG_PROMPT}"}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    first = cached_openai.chat.completions.create(**request)
    again = cached_openai.chat.completions.create(**request)
    chunks = list(cached_openai.chat.completions.create(**request, stream=True))
    assert chunks and all(chunk.choices for chunk in chunks)

    first_call, again_call, stream_call = observed.calls(3)
    assert again.usage is not None and again.usage.prompt_tokens_details is not None
    cached = again.usage.prompt_tokens_details.cached_tokens
    assert cached, "the server served the repeated prompt from its cache"
    for call, usage in ((first_call, first.usage), (again_call, again.usage)):
        check_call(
            call,
            codec="openai-chat",
            stream=False,
            usage=chat_usage(usage),
            finish=FinishReason.STOP,
            finish_raw="stop",
            text=REPLY,
        )
    # The third run hits the same cache; its usage only nemoflow saw (the app did not ask for it).
    check_call(
        stream_call,
        codec="openai-chat",
        stream=True,
        usage=chat_usage(again.usage),
        finish=FinishReason.STOP,
        finish_raw="stop",
        text=REPLY,
    )
    assert stream_call.usage.cache_read_tokens == cached
    assert stream_call.usage.prompt_tokens == again.usage.prompt_tokens > cached


def test_anthropic_cached_prompt_tokens(cached_anthropic: anthropic.Anthropic, observed: Observed) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"Messages cache. {LONG_PROMPT}"}],
        "max_tokens": MAX_TOKENS,
        "extra_body": GREEDY,
    }
    first = cached_anthropic.messages.create(**request)
    again = cached_anthropic.messages.create(**request)
    with cached_anthropic.messages.stream(**request) as stream:
        streamed = stream.get_final_message()

    first_call, again_call, stream_call = observed.calls(3)
    cached = again.usage.cache_read_input_tokens
    assert cached, "the server served the repeated prompt from its cache"
    for call, message, streaming in (
        (first_call, first, False),
        (again_call, again, False),
        (stream_call, streamed, True),
    ):
        check_call(
            call,
            codec="anthropic-messages",
            stream=streaming,
            usage=anthropic_usage(message.usage),
            finish=FinishReason.STOP,
            finish_raw="end_turn",
            text=REPLY,
        )
    # input_tokens leaves the cached reads out; nemoflow's prompt_tokens counts the whole prompt.
    assert again_call.usage.prompt_tokens == again.usage.input_tokens + cached
    assert again_call.usage.prompt_tokens == first_call.usage.prompt_tokens
    assert again_call.usage.cache_read_tokens == cached
