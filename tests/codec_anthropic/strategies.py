"""Hypothesis strategies and shared helpers for the anthropic-messages codec tests.

The request strategies draw Messages bodies the API accepts (shapes from the Anthropic API reference and
the ``anthropic`` SDK's ``MessageCreateParams`` types), then add *unknown* keys at every depth the codec
must carry through untouched: the top level, messages, every kind of content block and its ``source``,
``tool_result`` content, system blocks, tools, ``tool_choice``, ``thinking`` and ``output_config``.
Unknown keys start with ``x_`` (no Anthropic key does); their values are any JSON.

The generic JSON and junk strategies come from the shared ``tests.strategies`` module.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any

from hypothesis import strategies as st

from tests.strategies import (
    base64_payloads,
    json_objects,
    json_schemas,
    json_values,
    junk_values,
    mutated,
    obj,
    unknown_keys,
)

__all__ = [
    "ANTHROPIC_SAMPLES",
    "assert_json_equal",
    "json_diff",
    "junk_values",
    "messages_requests",
    "messages_responses",
    "mutated",
    "rebuilt",
    "stream_events",
]

JsonDict = dict[str, Any]
Strategy = st.SearchStrategy

# ----------------------------------------------------------------------------------------- helpers


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def json_diff(actual: Any, expected: Any, path: str = "$") -> str | None:
    """Where two JSON documents first differ, strictly (``true`` is not ``1``); ``None`` when equal."""
    kind = _kind(actual)
    if kind != _kind(expected):
        return f"{path}: {kind} {actual!r} != {_kind(expected)} {expected!r}"
    if isinstance(actual, Mapping):
        if set(actual) != set(expected):
            return f"{path}: keys differ: {sorted(map(repr, actual))} != {sorted(map(repr, expected))}"
        for key in actual:
            diff = json_diff(actual[key], expected[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(actual, list | tuple):
        if len(actual) != len(expected):
            return f"{path}: length {len(actual)} != {len(expected)}"
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            diff = json_diff(left, right, f"{path}[{index}]")
            if diff:
                return diff
        return None
    return None if actual == expected else f"{path}: {actual!r} != {expected!r}"


def assert_json_equal(actual: Any, expected: Any) -> None:
    """Fail with the first place where two JSON documents differ."""
    diff = json_diff(actual, expected)
    assert diff is None, diff


def rebuilt(value: Any) -> Any:
    """``value`` with every annotated object rebuilt by ``replace``: same fields, no pristine flag."""
    if is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: rebuilt(getattr(value, f.name)) for f in fields(value) if f.init and f.name != "raw"
        }
        return replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(rebuilt(item) for item in value)
    return value


def annotated_objects(value: Any) -> Iterator[Any]:
    """Every annotated object under ``value`` (``value`` included)."""
    if is_dataclass(value) and not isinstance(value, type):
        yield value
        for f in fields(value):
            if f.name != "raw":
                yield from annotated_objects(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from annotated_objects(item)


# ----------------------------------------------------------------------------------------- small pieces

texts: Strategy[str] = st.text(max_size=20)
names: Strategy[str] = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
tool_ids: Strategy[str] = names.map(lambda suffix: "toolu_" + suffix)
models: Strategy[str] = (
    st.sampled_from(["claude-sonnet-4-5", "claude-opus-4-1-20250805", "claude-haiku-4-5"]) | names
)
cache_controls: Strategy[JsonDict] = obj(
    {"type": st.just("ephemeral")}, {"ttl": st.sampled_from(["5m", "1h"])}
)
_CACHE = {"cache_control": cache_controls}

KNOWN_BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
)

citations = st.lists(
    obj(
        {
            "type": st.just("char_location"),
            "cited_text": texts,
            "document_index": st.integers(0, 3),
            "start_char_index": st.integers(0, 50),
            "end_char_index": st.integers(50, 99),
        }
    ),
    max_size=2,
)
text_blocks = obj({"type": st.just("text"), "text": texts}, {**_CACHE, "citations": st.none() | citations})
image_sources = st.one_of(
    obj(
        {
            "type": st.just("base64"),
            "media_type": st.sampled_from(["image/jpeg", "image/png", "image/gif", "image/webp"]),
            "data": base64_payloads,
        }
    ),
    obj({"type": st.just("url"), "url": names.map(lambda s: f"https://img.example/{s}.png")}),
    obj({"type": st.just("file"), "file_id": names.map(lambda s: "file_" + s)}),
)
image_blocks = obj({"type": st.just("image"), "source": image_sources}, _CACHE)
document_sources = st.one_of(
    obj({"type": st.just("base64"), "media_type": st.just("application/pdf"), "data": base64_payloads}),
    obj({"type": st.just("text"), "media_type": st.just("text/plain"), "data": texts}),
    obj({"type": st.just("url"), "url": names.map(lambda s: f"https://docs.example/{s}.pdf")}),
    obj({"type": st.just("file"), "file_id": names.map(lambda s: "file_" + s)}),
    obj({"type": st.just("content"), "content": texts | st.lists(text_blocks, min_size=1, max_size=2)}),
)
document_blocks = obj(
    {"type": st.just("document"), "source": document_sources},
    {**_CACHE, "title": texts, "context": texts, "citations": obj({"enabled": st.booleans()})},
)
thinking_blocks = obj({"type": st.just("thinking"), "thinking": texts, "signature": names})
redacted_blocks = obj({"type": st.just("redacted_thinking"), "data": names})
tool_use_blocks = obj(
    {"type": st.just("tool_use"), "id": tool_ids, "name": names, "input": json_objects},
    {**_CACHE, "caller": obj({"type": st.just("direct")})},
)
server_blocks = st.one_of(
    obj(
        {
            "type": st.just("server_tool_use"),
            "id": names.map(lambda s: "srvtoolu_" + s),
            "name": st.sampled_from(["web_search", "web_fetch", "code_execution"]),
            "input": json_objects,
        }
    ),
    obj(
        {
            "type": st.just("web_search_tool_result"),
            "tool_use_id": names.map(lambda s: "srvtoolu_" + s),
            "content": st.lists(
                obj(
                    {
                        "type": st.just("web_search_result"),
                        "url": texts,
                        "title": texts,
                        "encrypted_content": names,
                    }
                ),
                max_size=2,
            ),
        }
    ),
)
other_blocks: Strategy[JsonDict] = st.builds(
    lambda block_type, rest: {**rest, "type": block_type},
    (st.sampled_from(["search_result", "container_upload", "mcp_tool_use"]) | st.text(max_size=10)).filter(
        lambda value: value not in KNOWN_BLOCK_TYPES
    ),
    # Every key but "type" of a block the codec does not know is kept in ``extra``: any name goes.
    st.dictionaries(st.text(max_size=6).filter(lambda key: key != "type"), json_values, max_size=3),
)
"""Blocks of a type the codec keeps whole (server-tool blocks included)."""

tool_result_blocks = obj(
    {"type": st.just("tool_result"), "tool_use_id": tool_ids},
    {
        **_CACHE,
        "content": texts | st.lists(text_blocks | image_blocks | document_blocks | other_blocks, max_size=3),
        "is_error": st.booleans(),
    },
)

user_blocks = st.one_of(text_blocks, image_blocks, document_blocks, tool_result_blocks, other_blocks)
assistant_blocks = st.one_of(
    text_blocks,
    thinking_blocks,
    redacted_blocks,
    tool_use_blocks,
    tool_use_blocks,
    server_blocks,
    other_blocks,
)
user_messages = obj(
    {"role": st.just("user"), "content": texts | st.lists(user_blocks, min_size=1, max_size=4)}
)
assistant_messages = obj(
    {"role": st.just("assistant"), "content": texts | st.lists(assistant_blocks, min_size=1, max_size=5)}
)
any_messages = st.one_of(user_messages, assistant_messages)

system_values: Strategy[Any] = texts | st.lists(text_blocks, min_size=1, max_size=3)

# ----------------------------------------------------------------------------------------- tools

custom_tools = obj(
    {"name": names, "input_schema": json_schemas},
    {**_CACHE, "description": texts, "strict": st.booleans(), "type": st.just("custom")},
)
server_tools = st.one_of(
    obj(
        {"type": st.just("web_search_20250305"), "name": st.just("web_search")},
        {"max_uses": st.integers(1, 10), "allowed_domains": st.lists(names, max_size=2), **_CACHE},
    ),
    obj({"type": st.just("bash_20250124"), "name": st.just("bash")}),
    obj({"type": st.just("text_editor_20250728"), "name": st.just("str_replace_based_edit_tool")}),
    obj({"type": st.just("code_execution_20250825"), "name": st.just("code_execution")}),
    obj({"type": st.just("mcp_toolset"), "mcp_server_name": names}),
)
tools = st.one_of(custom_tools, custom_tools, server_tools)

forced_tool_choices = obj(
    {"type": st.just("tool"), "name": names}, {"disable_parallel_tool_use": st.booleans()}
)
tool_choices: Strategy[Any] = st.one_of(
    obj({"type": st.sampled_from(["auto", "any"])}, {"disable_parallel_tool_use": st.booleans()}),
    obj({"type": st.just("none")}),
    forced_tool_choices,
)

# ----------------------------------------------------------------------------------------- parameters

thinking_configs = st.one_of(
    obj({"type": st.just("enabled"), "budget_tokens": st.integers(1024, 32000)}),
    obj({"type": st.just("disabled")}),
    obj({"type": st.just("adaptive")}, {"display": st.sampled_from(["summarized", "omitted"])}),
)
output_configs = obj(
    {},
    {
        "effort": st.sampled_from(["low", "medium", "high", "max"]) | st.none(),
        "format": obj({"type": st.just("json_schema"), "schema": json_schemas}),
    },
)
PARAMETERS: dict[str, Strategy[Any]] = {
    "temperature": st.floats(min_value=0, max_value=1) | st.integers(min_value=0, max_value=1),
    "top_p": st.floats(min_value=0, max_value=1),
    "top_k": st.integers(min_value=1, max_value=500),
    "stop_sequences": st.lists(texts, max_size=3),
    "metadata": obj({}, {"user_id": names | st.none()}),
    "thinking": thinking_configs,
    "output_config": output_configs,
    "service_tier": st.sampled_from(["auto", "standard_only"]),
    "stream": st.booleans() | st.none(),
    "container": names | st.none(),
}


@st.composite
def messages_requests(
    draw: st.DrawFn, *, with_tools: bool = False, forced_tool_choice: bool = False
) -> JsonDict:
    """A Messages request body with unknown keys at every depth.

    Args:
        draw: Supplied by Hypothesis.
        with_tools: Always offer at least one tool.
        forced_tool_choice: Always offer tools and send a ``tool_choice`` forcing one of them.
    """
    body: JsonDict = {
        "model": draw(models),
        "max_tokens": draw(st.integers(min_value=1, max_value=64000)),
        "messages": draw(st.lists(any_messages, min_size=1, max_size=4)),
    }
    if draw(st.booleans()):
        body["system"] = draw(system_values)
    body.update(draw(st.fixed_dictionaries({}, optional=PARAMETERS)))
    if with_tools or forced_tool_choice or draw(st.booleans()):
        body["tools"] = draw(st.lists(tools, min_size=1, max_size=3))
        if forced_tool_choice:
            body["tool_choice"] = draw(forced_tool_choices)
        elif draw(st.booleans()):
            body["tool_choice"] = draw(tool_choices)
    body.update(draw(unknown_keys(3)))
    return body


# ----------------------------------------------------------------------------------------- rich samples

ANTHROPIC_SAMPLES: list[JsonDict] = [
    {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": [
            {"type": "text", "text": "Be brief.", "x_flag": True},
            {"type": "text", "text": "Use metric units.", "cache_control": {"type": "ephemeral", "x_ttl": 0}},
        ],
        "messages": [
            {
                "role": "user",
                "x_flag": 1,
                "content": [
                    {
                        "type": "text",
                        "text": "Compare these \N{SNOWMAN}",
                        "x_meta": {"nested": [1, 2.5, None]},
                    },
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgo=",
                            "x_src": 1,
                        },
                        "cache_control": {"type": "ephemeral"},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://img.example/a.png"},
                        "x_img": False,
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                        "title": "a.pdf",
                        "citations": {"enabled": True},
                    },
                    {
                        "type": "document",
                        "source": {"type": "content", "content": [{"type": "text", "text": "c"}]},
                    },
                    {
                        "type": "search_result",
                        "source": "https://s.example",
                        "title": "t",
                        "content": [],
                        "x_n": 2**70,
                    },
                ],
            },
            {
                "role": "assistant",
                "x_trace": {"id": "t-1"},
                "content": [
                    {"type": "thinking", "thinking": "Let me look.", "signature": "sig-1", "x_t": 0},
                    {"type": "redacted_thinking", "data": "ENCRYPTED"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "weather",
                        "input": {"city": "Paris", "x_in": True},
                        "x_origin": "model",
                    },
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {"query": "q"},
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "tool_use", "id": "toolu_2", "name": "clock", "input": {}},
                    {"type": "text", "text": "Done."},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "x_ms": 12},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": False,
                        "content": [{"type": "text", "text": "12:00", "x_part": 1}],
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
            {"role": "assistant", "content": "You're welcome.", "x_flag": False},
        ],
        "temperature": 1,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END", "\n\nHuman:"],
        "metadata": {"user_id": "u-1", "x_meta": 0},
        "thinking": {"type": "enabled", "budget_tokens": 2048, "x_think": True},
        "output_config": {"effort": "low", "x_cfg": 1},
        "tools": [
            {
                "name": "weather",
                "description": "Current weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                "cache_control": {"type": "ephemeral"},
                "x_tool_flag": True,
            },
            {"type": "custom", "name": "clock", "input_schema": {"type": "object"}, "strict": True},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3, "x_beta": 1},
            {"type": "mcp_toolset", "mcp_server_name": "files"},
        ],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True, "x_choice": 1},
        "stream": True,
        "x_top": {"deep": [{"deeper": [True, 1, 1.0, "1"]}]},
    },
    {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "hi", "x_count": 0},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_9", "name": "grep", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]},
        ],
        "tools": [{"name": "grep", "input_schema": {"type": "object"}, "strict": False}],
        "tool_choice": {"type": "any", "x_mode": "strict"},
        "stream": False,
        "x_priority": 0,
    },
]
"""Rich requests holding every feature at once (each test meets all of them on every run)."""


def samples() -> list[JsonDict]:
    """Fresh deep copies of :data:`ANTHROPIC_SAMPLES`."""
    return copy.deepcopy(ANTHROPIC_SAMPLES)


# ----------------------------------------------------------------------------------------- responses

usages = obj(
    {"input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**6)},
    {
        "cache_read_input_tokens": st.integers(0, 10**6) | st.none(),
        "cache_creation_input_tokens": st.integers(0, 10**6) | st.none(),
        "output_tokens_details": obj({"thinking_tokens": st.integers(0, 10**6)}),
        "server_tool_use": obj({"web_search_requests": st.integers(0, 5)}),
        "service_tier": st.sampled_from(["standard", "priority", "batch"]),
    },
)
stop_reasons = st.sampled_from(
    [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    ]
)
response_blocks = st.one_of(text_blocks, thinking_blocks, redacted_blocks, tool_use_blocks, server_blocks)


@st.composite
def messages_responses(draw: st.DrawFn) -> JsonDict:
    """A ``message`` response body."""
    body: JsonDict = {
        "id": "msg_" + draw(names),
        "type": "message",
        "role": "assistant",
        "model": draw(models),
        "content": draw(st.lists(response_blocks, max_size=4)),
        "stop_reason": draw(stop_reasons | st.none()),
        "stop_sequence": None,
        "usage": draw(usages),
    }
    return {**body, **draw(unknown_keys())}


_delta_bodies = st.one_of(
    st.fixed_dictionaries({"type": st.just("text_delta"), "text": texts}),
    st.fixed_dictionaries({"type": st.just("input_json_delta"), "partial_json": texts}),
    st.fixed_dictionaries({"type": st.just("thinking_delta"), "thinking": texts}),
    st.fixed_dictionaries({"type": st.just("signature_delta"), "signature": names}),
    st.fixed_dictionaries({"type": st.just("citations_delta"), "citation": json_objects}),
)
stream_events: Strategy[JsonDict] = st.one_of(
    st.builds(
        lambda usage, model: {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "usage": usage,
            },
        },
        usages,
        models,
    ),
    st.builds(
        lambda index, block: {"type": "content_block_start", "index": index, "content_block": block},
        st.integers(0, 3),
        response_blocks,
    ),
    st.builds(
        lambda index, delta: {"type": "content_block_delta", "index": index, "delta": delta},
        st.integers(0, 3),
        _delta_bodies,
    ),
    st.builds(lambda index: {"type": "content_block_stop", "index": index}, st.integers(0, 3)),
    st.builds(
        lambda reason, usage: {"type": "message_delta", "delta": {"stop_reason": reason}, "usage": usage},
        stop_reasons | st.none(),
        usages,
    ),
    st.just({"type": "message_stop"}),
    st.just({"type": "ping"}),
    st.builds(
        lambda kind, message: {"type": "error", "error": {"type": kind, "message": message}},
        st.sampled_from(["overloaded_error", "api_error", "rate_limit_error"]),
        texts,
    ),
)
"""One streamed event object."""
