"""Hypothesis strategies for the OpenAI codecs' property tests.

The request strategies draw bodies that OpenAI's Chat Completions and Embeddings endpoints (or the
OpenAI-compatible servers the codec also serves) accept, then add *unknown* keys at every depth where
the codec has to carry them through untouched: the top level, messages, content parts, the nested
``image_url`` / ``input_audio`` / ``file`` objects, tools and their ``function`` objects, tool calls and
their ``function`` objects, and ``tool_choice`` objects.

Unknown key names all start with ``x_``; no key the codec knows does, so they never collide with one.
Their values are any JSON: nested objects and arrays, unicode text, integers past 64 bits, finite floats
and ``null``.

The response, chunk and junk strategies at the bottom feed the error tests, which want payloads that
are almost right as well as payloads that are nothing like a request.
"""

from __future__ import annotations

import base64
import json
import math
import string
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "CHAT_SAMPLES",
    "EMBEDDINGS_SAMPLES",
    "UNKNOWN_PREFIX",
    "chat_chunks",
    "chat_requests",
    "chat_responses",
    "embeddings_requests",
    "embeddings_responses",
    "forced_tool_choices",
    "json_values",
    "junk_values",
    "mutated",
    "unknown_key",
]

JsonDict = dict[str, Any]
Strategy = st.SearchStrategy

UNKNOWN_PREFIX = "x_"
"""Every injected unknown key starts with this; no key the OpenAI codecs know does."""

# ----------------------------------------------------------------------------------------- JSON values

big_ints: Strategy[int] = st.integers(min_value=-(2**100), max_value=2**100)
"""Integers well past the 64-bit range (valid JSON, and Python parses them exactly)."""

json_scalars: Strategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    big_ints,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)

json_values: Strategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
"""Any JSON value (as Python data): what an unknown key may carry."""

json_objects: Strategy[JsonDict] = st.dictionaries(st.text(max_size=6), json_values, max_size=3)

unknown_key: Strategy[str] = st.text(max_size=6).map(lambda suffix: UNKNOWN_PREFIX + suffix)
"""A key no OpenAI codec knows."""


unknown_values: Strategy[Any] = st.one_of(json_values, st.booleans(), st.sampled_from([0, 1]))
"""What an unknown key carries: any JSON, with flags (``true``, ``1``) a little more likely than by chance."""


def unknown_keys(max_size: int = 2) -> Strategy[JsonDict]:
    """Zero or more unknown keys with arbitrary JSON values."""
    return st.dictionaries(unknown_key, unknown_values, max_size=max_size)


def with_unknown(known: Strategy[JsonDict]) -> Strategy[JsonDict]:
    """``known`` objects with unknown keys mixed in (sometimes none)."""
    return st.builds(lambda base, extra: {**base, **extra}, known, unknown_keys())


def obj(
    required: Mapping[str, Strategy[Any]], optional: Mapping[str, Strategy[Any]] | None = None
) -> Strategy[JsonDict]:
    """A JSON object with the ``required`` keys, some of the ``optional`` ones, and unknown keys."""
    return with_unknown(st.fixed_dictionaries(dict(required), optional=dict(optional or {})))


# ----------------------------------------------------------------------------------------- small pieces

texts: Strategy[str] = st.text(max_size=20)
names: Strategy[str] = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
call_ids: Strategy[str] = names.map(lambda suffix: "call_" + suffix)
models: Strategy[str] = st.sampled_from(["gpt-4o", "gpt-4.1-mini", "o3", "llama3.1:8b"]) | names


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


base64_payloads: Strategy[str] = st.binary(max_size=12).map(_b64)
http_urls: Strategy[str] = st.builds(lambda host, path: f"https://{host}.example/{path}.png", names, names)
data_urls: Strategy[str] = st.builds(
    lambda media, payload: f"data:{media};base64,{payload}",
    st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
    base64_payloads,
)
image_urls: Strategy[str] = http_urls | data_urls

# ----------------------------------------------------------------------------------------- content parts

KNOWN_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})

text_parts = obj({"type": st.just("text"), "text": texts})
image_parts = obj(
    {
        "type": st.just("image_url"),
        # Bare URL strings are accepted by some OpenAI-compatible servers, and by the codec.
        "image_url": obj({"url": image_urls}, {"detail": st.sampled_from(["auto", "low", "high"])})
        | image_urls,
    }
)
audio_parts = obj(
    {
        "type": st.just("input_audio"),
        "input_audio": obj({"data": base64_payloads, "format": st.sampled_from(["wav", "mp3"])}),
    }
)
file_parts = obj(
    {
        "type": st.just("file"),
        "file": obj({"file_id": names.map(lambda s: "file-" + s)}, {"filename": names})
        | obj(
            {"file_data": base64_payloads.map(lambda payload: "data:application/pdf;base64," + payload)},
            {"filename": names.map(lambda s: s + ".pdf")},
        ),
    }
)
refusal_parts = obj({"type": st.just("refusal"), "refusal": texts})
other_parts: Strategy[JsonDict] = st.builds(
    lambda part_type, rest: {**rest, "type": part_type},
    (st.sampled_from(["input_video", "output_text", "thinking"]) | st.text(max_size=10)).filter(
        lambda value: value not in KNOWN_PART_TYPES
    ),
    # Every key but "type" of a part the codec does not know is carried in ``extra``: any name goes.
    st.dictionaries(st.text(max_size=6).filter(lambda key: key != "type"), json_values, max_size=3),
)
"""Parts of a type the codec does not know."""

user_parts = st.one_of(text_parts, image_parts, audio_parts, file_parts, other_parts)

# ----------------------------------------------------------------------------------------- tool calls


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


valid_arguments: Strategy[str] = st.one_of(
    st.builds(
        lambda value, ascii_only: json.dumps(value, ensure_ascii=ascii_only), json_objects, st.booleans()
    ),
    json_values.map(json.dumps),
)
malformed_arguments: Strategy[str] = st.one_of(
    st.just('{"city": "Par'),
    texts.map(lambda text: '{"unterminated": "' + text),
    texts.filter(lambda text: not _is_json(text)),
)
function_calls = obj({"name": names}, {"arguments": valid_arguments | malformed_arguments})
tool_calls: Strategy[JsonDict] = st.one_of(
    obj({"id": call_ids, "type": st.just("function"), "function": function_calls}),
    obj({"id": call_ids, "type": st.just("custom"), "custom": obj({"name": names, "input": texts})}),
)

# ----------------------------------------------------------------------------------------- messages

system_messages = obj(
    {
        "role": st.sampled_from(["system", "developer"]),
        "content": texts | st.lists(text_parts, min_size=1, max_size=3),
    },
    {"name": names},
)
user_messages = obj(
    {"role": st.just("user"), "content": texts | st.lists(user_parts, min_size=1, max_size=4)},
    {"name": names},
)


@st.composite
def assistant_messages(draw: st.DrawFn) -> JsonDict:
    """An assistant turn: text, refusal parts, tool calls, or several of these."""
    message: JsonDict = {"role": "assistant"}
    calls = draw(st.lists(tool_calls, max_size=3))
    content_choice = draw(
        st.sampled_from(["text", "parts", "null", "absent"] if calls else ["text", "parts", "null"])
    )
    if content_choice == "text":
        message["content"] = draw(texts)
    elif content_choice == "parts":
        message["content"] = draw(st.lists(text_parts | refusal_parts, min_size=1, max_size=3))
    elif content_choice == "null":
        message["content"] = None
    if calls:
        message["tool_calls"] = calls
    optional = draw(st.fixed_dictionaries({}, optional={"name": names, "refusal": st.none() | texts}))
    return {**message, **optional, **draw(unknown_keys())}


tool_messages = obj(
    {
        "role": st.just("tool"),
        "content": texts | st.lists(text_parts, min_size=1, max_size=2),
        "tool_call_id": call_ids,
    }
)
function_messages = obj({"role": st.just("function"), "name": names, "content": texts | st.none()})

any_messages = st.one_of(
    system_messages, user_messages, assistant_messages(), tool_messages, function_messages
)

# ----------------------------------------------------------------------------------------- tools

json_schemas: Strategy[Any] = st.one_of(
    st.builds(
        lambda properties, strict: {
            "type": "object",
            "properties": properties,
            "required": sorted(properties),
            "additionalProperties": not strict,
        },
        st.dictionaries(names, st.sampled_from([{"type": "string"}, {"type": "integer"}]), max_size=3),
        st.booleans(),
    ),
    json_objects,
)
function_definitions = obj(
    # OpenAI types ``strict`` as boolean or null.
    {"name": names},
    {"description": texts, "parameters": json_schemas, "strict": st.booleans() | st.none()},
)
function_tools = obj({"type": st.just("function"), "function": function_definitions})
other_tools = st.one_of(
    obj({"type": st.just("custom"), "custom": obj({"name": names}, {"description": texts})}),
    obj(
        {"type": st.sampled_from(["web_search_preview", "code_interpreter", "x_builtin"])},
        {"search_context_size": st.sampled_from(["low", "medium", "high"])},
    ),
)
tools: Strategy[JsonDict] = st.one_of(function_tools, other_tools)

named_function = obj({"name": names})
forced_tool_choices: Strategy[JsonDict] = st.one_of(
    obj({"type": st.just("function"), "function": named_function}),
    obj({"type": st.just("custom"), "custom": named_function}),
)
"""``tool_choice`` objects that force one named tool."""
tool_choices: Strategy[Any] = st.one_of(
    st.sampled_from(["auto", "none", "required"]),
    forced_tool_choices,
    obj(
        {
            "type": st.just("allowed_tools"),
            "allowed_tools": obj(
                {
                    "mode": st.sampled_from(["auto", "required"]),
                    "tools": st.lists(
                        st.fixed_dictionaries(
                            {"type": st.just("function"), "function": st.fixed_dictionaries({"name": names})}
                        ),
                        max_size=2,
                    ),
                }
            ),
        }
    ),
)

# ----------------------------------------------------------------------------------------- parameters


def _nullable(strategy: Strategy[Any]) -> Strategy[Any]:
    """``strategy``, or now and then an explicit ``null`` (OpenAI marks these parameters nullable)."""
    return st.one_of(strategy, strategy, st.none())


response_formats: Strategy[JsonDict] = st.one_of(
    obj({"type": st.just("text")}),
    obj({"type": st.just("json_object")}),
    obj(
        {
            "type": st.just("json_schema"),
            "json_schema": obj({"name": names, "schema": json_schemas}, {"strict": st.booleans()}),
        }
    ),
)

PARAMETERS: dict[str, Strategy[Any]] = {
    "temperature": _nullable(st.floats(min_value=0, max_value=2) | st.integers(min_value=0, max_value=2)),
    "top_p": _nullable(st.floats(min_value=0, max_value=1)),
    "max_tokens": _nullable(st.integers(min_value=1, max_value=100_000)),
    "max_completion_tokens": _nullable(st.integers(min_value=1, max_value=100_000)),
    "stop": _nullable(texts | st.lists(texts, min_size=1, max_size=4)),
    "seed": _nullable(st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    "n": _nullable(st.integers(min_value=1, max_value=4)),
    "presence_penalty": _nullable(st.floats(min_value=-2, max_value=2)),
    "frequency_penalty": _nullable(st.floats(min_value=-2, max_value=2)),
    "response_format": response_formats,
    "reasoning_effort": st.sampled_from(["minimal", "low", "medium", "high"]),
    "top_k": st.integers(min_value=1, max_value=100),
    # Real OpenAI parameters the codec has no field for: they must ride through ``extra``.
    "user": names,
    "parallel_tool_calls": st.booleans(),
    "metadata": st.dictionaries(names, texts, max_size=2),
    "store": st.booleans(),
    "logprobs": st.booleans(),
}

stream_settings: Strategy[JsonDict] = st.one_of(
    st.just({}),
    st.just({"stream": False}),
    st.just({"stream": None}),
    st.just({"stream": True}),
    st.builds(
        lambda options: {"stream": True, "stream_options": options},
        st.one_of(obj({"include_usage": st.booleans()}), st.just({})),
    ),
)


@st.composite
def chat_requests(draw: st.DrawFn, *, with_tools: bool = False, forced_tool_choice: bool = False) -> JsonDict:
    """A Chat Completions request body with unknown keys at every depth.

    Args:
        draw: Supplied by Hypothesis.
        with_tools: Always offer at least one tool.
        forced_tool_choice: Always offer tools and send a ``tool_choice`` object forcing one of them.
    """
    leading = draw(st.lists(system_messages, max_size=2))
    rest = draw(st.lists(any_messages, min_size=0 if leading else 1, max_size=4))
    body: JsonDict = {"model": draw(models), "messages": leading + rest}
    body.update(draw(st.fixed_dictionaries({}, optional=PARAMETERS)))
    if with_tools or forced_tool_choice or draw(st.booleans()):
        body["tools"] = draw(st.lists(tools, min_size=1, max_size=3))
        if forced_tool_choice:
            body["tool_choice"] = draw(forced_tool_choices)
        elif draw(st.booleans()):
            body["tool_choice"] = draw(tool_choices)
    body.update(draw(stream_settings))
    body.update(draw(unknown_keys(3)))
    return body


# ----------------------------------------------------------------------------------------- rich samples

# Two hand-written requests holding every feature at once, so each test meets all of them on every run
# whatever the random draws turn up (Hypothesis favours small examples, which rarely combine many).
CHAT_SAMPLES: list[JsonDict] = [
    {
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be brief.", "name": "ops", "x_flag": True},
            {"role": "system", "content": [{"type": "text", "text": "Use metric units.", "x_part": 1}]},
            {
                "role": "user",
                "name": "ada",
                "x_flag": 1,
                "content": [
                    {
                        "type": "text",
                        "text": "Compare these \N{SNOWMAN}",
                        "x_meta": {"nested": [1, 2.5, None]},
                    },
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "https://img.example/a.png",
                            "detail": "high",
                            "x_crop": [0, 0, 9, 9],
                        },
                        "x_cache": False,
                    },
                    {"type": "image_url", "image_url": "https://img.example/bare.png"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {
                        "type": "input_audio",
                        "input_audio": {"data": "UklGRg==", "format": "wav", "x_rate": 16000},
                    },
                    {"type": "file", "file": {"file_id": "file-abc", "x_pages": "1-3"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                    {"type": "input_video", "video_url": {"url": "https://v.example/a.mp4"}, "x_fps": 2**70},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "x_trace": {"id": "t-1"},
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}', "x_hint": 0},
                        "x_origin": "model",
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Par'},
                    },
                    {
                        "id": "call_3",
                        "type": "custom",
                        "custom": {"name": "grep", "input": "TODO", "x_lang": "re"},
                    },
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": [{"type": "text", "text": "18C"}],
                "x_ms": 12,
            },
            {"role": "function", "name": "weather", "content": None},
            {
                "role": "assistant",
                "content": [
                    {"type": "refusal", "refusal": "No.", "x_policy": "p1"},
                    {"type": "text", "text": "Sorry"},
                ],
                "refusal": None,
            },
            {"role": "user", "content": "Thanks", "x_flag": False},
        ],
        "temperature": 0.7,
        "top_p": 1,
        "max_completion_tokens": 512,
        "max_tokens": None,
        "stop": ["END", "\n\n"],
        "seed": -(2**63),
        "n": 1,
        "presence_penalty": -0.5,
        "frequency_penalty": 0.0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}},
        },
        "reasoning_effort": "low",
        "top_k": 40,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    "strict": True,
                    "x_owner": "geo",
                },
                "x_tool_flag": True,
            },
            {"type": "custom", "custom": {"name": "grep", "description": "Search"}, "x_beta": 1},
            {"type": "web_search_preview", "search_context_size": "low"},
        ],
        "tool_choice": {
            "type": "function",
            "function": {"name": "weather", "x_why": "forced"},
            "x_choice": 1,
        },
        "parallel_tool_calls": False,
        "stream": True,
        "x_top": {"deep": [{"deeper": [True, 1, 1.0, "1"]}]},
        "x_flag": True,
    },
    {
        "model": "llama3.1:8b",
        "messages": [
            {"role": "system", "content": "You are terse.", "x_count": 0},
            {"role": "user", "content": [{"type": "text", "text": "hi"}], "x_count": 1},
            {"role": "assistant", "content": "hello", "x_flag": True},
        ],
        "max_tokens": 64,
        "stop": "STOP",
        "temperature": None,
        "tools": [{"type": "function", "function": {"name": "grep", "strict": None}}],
        "tool_choice": {"type": "custom", "custom": {"name": "grep", "x_mode": "strict"}},
        "stream": True,
        "stream_options": {"include_usage": False, "x_chunking": "fine"},
        "x_priority": 0,
    },
]
"""Rich Chat Completions requests: every role, part type, parameter and depth of unknown key."""

EMBEDDINGS_SAMPLES: list[JsonDict] = [
    {"model": "text-embedding-3-small", "input": "one", "dimensions": 256, "x_flag": True},
    {"model": "text-embedding-3-large", "input": [[1, 2, 3], [4]], "encoding_format": "base64", "x_count": 1},
    {"model": "nomic-embed-text", "input": [101, 2023, 102], "user": "u-1", "x_count": 0},
]
"""Embeddings requests covering every ``input`` shape, with flag-like unknown keys."""


# ----------------------------------------------------------------------------------------- embeddings

token_ids = st.integers(min_value=0, max_value=200_000)
embedding_inputs: Strategy[Any] = st.one_of(
    texts,
    st.lists(texts, min_size=1, max_size=4),
    st.lists(token_ids, min_size=1, max_size=6),
    st.lists(st.lists(token_ids, min_size=1, max_size=6), min_size=1, max_size=3),
)
embeddings_requests: Strategy[JsonDict] = obj(
    {
        "model": st.sampled_from(["text-embedding-3-small", "text-embedding-3-large"]) | names,
        "input": embedding_inputs,
    },
    {
        "dimensions": st.integers(min_value=1, max_value=3072),
        "encoding_format": st.sampled_from(["float", "base64"]),
        "user": names,
    },
)
"""An Embeddings request body (unknown keys at the top level: the only object it has)."""

# ----------------------------------------------------------------------------------------- responses

usages = obj(
    {"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**6)},
    {
        "total_tokens": st.integers(0, 2 * 10**6),
        "prompt_tokens_details": obj({"cached_tokens": st.integers(0, 10**6)}),
        "completion_tokens_details": obj({"reasoning_tokens": st.integers(0, 10**6)}),
        "cost": st.floats(min_value=0, max_value=10),
    },
)
finish_reasons = st.sampled_from(["stop", "length", "tool_calls", "content_filter", "function_call"]) | texts
response_messages = obj(
    {"role": st.just("assistant"), "content": texts | st.none()},
    {
        "tool_calls": st.lists(tool_calls, max_size=2),
        "refusal": texts | st.none(),
        "reasoning_content": texts,
    },
)


@st.composite
def chat_responses(draw: st.DrawFn) -> JsonDict:
    """A ``chat.completion`` response body."""
    count = draw(st.integers(min_value=0, max_value=3))
    choices = [
        draw(
            obj(
                {
                    "index": st.just(i),
                    "message": response_messages,
                    "finish_reason": finish_reasons | st.none(),
                }
            )
        )
        for i in range(count)
    ]
    body: JsonDict = {
        "id": "chatcmpl-" + draw(names),
        "object": "chat.completion",
        "created": draw(st.integers(0, 2**31)),
        "model": draw(models),
        "choices": choices,
    }
    body.update(draw(st.fixed_dictionaries({}, optional={"usage": usages, "system_fingerprint": names})))
    return {**body, **draw(unknown_keys())}


chunk_tool_calls = obj(
    {"index": st.integers(0, 3)},
    {
        "id": call_ids,
        "type": st.just("function"),
        "function": st.fixed_dictionaries({}, optional={"name": names, "arguments": texts}),
    },
)
deltas = st.fixed_dictionaries(
    {},
    optional={
        "role": st.just("assistant"),
        "content": texts | st.none(),
        "reasoning_content": texts,
        "refusal": texts,
        "tool_calls": st.lists(chunk_tool_calls, max_size=2),
    },
)
chat_chunks: Strategy[JsonDict] = obj(
    {
        "id": names,
        "object": st.just("chat.completion.chunk"),
        "model": models,
        "choices": st.lists(
            obj({"index": st.integers(0, 2), "delta": deltas}, {"finish_reason": finish_reasons | st.none()}),
            max_size=2,
        ),
    },
    {"usage": usages | st.none()},
)
"""One ``chat.completion.chunk`` event object."""


@st.composite
def embeddings_responses(draw: st.DrawFn) -> JsonDict:
    """An embeddings ``list`` response with float or base64 vectors."""
    dimension = draw(st.integers(min_value=0, max_value=4))
    as_base64 = draw(st.booleans())
    vector = st.lists(st.floats(-1, 1, width=32), min_size=dimension, max_size=dimension)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _b64(bytes(4 * dimension)) if as_base64 else draw(vector),
        }
        for i in range(draw(st.integers(min_value=0, max_value=3)))
    ]
    body: JsonDict = {
        "object": "list",
        "data": data,
        "model": draw(models),
        "usage": draw(obj({"prompt_tokens": st.integers(0, 10**6), "total_tokens": st.integers(0, 10**6)})),
    }
    return {**body, **draw(unknown_keys())}


# ----------------------------------------------------------------------------------------- junk


def _nested(depth: int, leaf: Any, as_list: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


junk_scalars: Strategy[Any] = st.one_of(
    json_scalars,
    st.floats(),  # nan and +-inf included: Python dicts can hold them even though JSON cannot
    st.integers(min_value=-(10**400), max_value=10**400),  # far too big for a float
    st.sampled_from([float("nan"), math.inf, -math.inf, 10**400, -(10**400), 2**64, True, False, 0, -1, ""]),
)
junk_values: Strategy[Any] = st.one_of(
    st.recursive(
        junk_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=8,
    ),
    st.builds(_nested, st.integers(min_value=1, max_value=400), junk_scalars, st.booleans()),
)
"""Values of every JSON type and then some: non-finite floats, enormous integers, very deep nesting."""


@st.composite
def mutated(draw: st.DrawFn, documents: Strategy[Any], junk: Strategy[Any] = junk_values) -> Any:
    """A document from ``documents`` with one value somewhere replaced by junk or one key removed."""
    document = draw(documents)

    def rebuild(node: Any) -> Any:
        children: list[Any]
        if isinstance(node, dict):
            children = list(node)
        elif isinstance(node, list):
            children = list(range(len(node)))
        else:
            children = []
        if not children or draw(st.integers(min_value=0, max_value=3)) == 0:
            return draw(junk)
        key = draw(st.sampled_from(children))
        if isinstance(node, dict):
            if draw(st.integers(min_value=0, max_value=5)) == 0:
                return {k: v for k, v in node.items() if k != key}
            return {**node, key: rebuild(node[key])}
        copied = list(node)
        copied[key] = rebuild(node[key])
        return copied

    return rebuild(document)
