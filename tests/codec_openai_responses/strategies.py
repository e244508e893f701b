"""Hypothesis strategies for the ``openai-responses`` codec's property tests.

The request strategy draws bodies that ``POST /v1/responses`` accepts (shapes from the ``openai`` SDK's
``ResponseCreateParams``), then adds *unknown* keys (``x_…``) wherever the codec must carry them through
untouched: the top level, every input item (messages, function calls and their outputs, reasoning items,
built-in tool items), content parts, tools (flat and Chat-style), ``tool_choice`` objects and the
``reasoning`` / ``text`` wrappers.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.strategies import (
    base64_payloads,
    call_ids,
    image_urls,
    json_objects,
    json_schemas,
    json_values,
    junk_values,
    models,
    names,
    obj,
    texts,
    unknown_keys,
)

__all__ = [
    "RESPONSES_SAMPLES",
    "forced_tool_choices",
    "input_items",
    "junk_values",
    "responses_bodies",
    "responses_events",
    "responses_requests",
    "tools",
]

JsonDict = dict[str, Any]
Strategy = st.SearchStrategy

# ----------------------------------------------------------------------------------------- content parts

input_text_parts = obj({"type": st.just("input_text"), "text": texts})
output_text_parts = obj(
    {"type": st.just("output_text"), "text": texts, "annotations": st.just([])}, {"logprobs": st.just([])}
)
image_parts = st.one_of(
    obj(
        {
            "type": st.just("input_image"),
            "detail": st.sampled_from(["auto", "low", "high"]),
            "image_url": image_urls,
        }
    ),
    obj(
        {
            "type": st.just("input_image"),
            "detail": st.just("auto"),
            "file_id": names.map(lambda s: "file-" + s),
        }
    ),
)
file_parts = st.one_of(
    obj({"type": st.just("input_file"), "file_id": names.map(lambda s: "file-" + s)}),
    obj(
        {
            "type": st.just("input_file"),
            "file_data": base64_payloads.map(lambda payload: "data:application/pdf;base64," + payload),
        },
        {"filename": names.map(lambda s: s + ".pdf")},
    ),
    obj({"type": st.just("input_file"), "file_url": image_urls}),
)
audio_parts = obj(
    {
        "type": st.just("input_audio"),
        "input_audio": obj({"data": base64_payloads, "format": st.sampled_from(["wav", "mp3"])}),
    }
)
refusal_parts = obj({"type": st.just("refusal"), "refusal": texts})
other_parts: Strategy[JsonDict] = st.builds(
    lambda part_type, rest: {**rest, "type": part_type},
    st.sampled_from(["input_video", "x_part"]),
    # Every key but "type" of a part the codec does not know is carried in ``extra``: any name goes.
    st.dictionaries(st.text(max_size=6).filter(lambda key: key != "type"), json_values, max_size=3),
)
user_parts = st.one_of(input_text_parts, image_parts, file_parts, audio_parts, other_parts)
assistant_parts = st.one_of(output_text_parts, refusal_parts)

# ----------------------------------------------------------------------------------------- input items


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


arguments: Strategy[str] = st.one_of(
    json_objects.map(json.dumps),
    st.just('{"city": "Par'),
    texts.filter(lambda text: not _is_json(text)),
)
statuses = st.sampled_from(["completed", "incomplete", "in_progress"])
item_ids = names.map(lambda s: "fc_" + s)

message_items = st.one_of(
    obj(
        {
            "role": st.sampled_from(["user", "system", "developer"]),
            "content": texts | st.lists(user_parts, max_size=3),
        },
        {"type": st.just("message")},
    ),
    obj(
        {"role": st.just("assistant"), "content": texts | st.lists(assistant_parts, min_size=1, max_size=3)},
        {"type": st.just("message"), "id": names, "status": statuses, "phase": st.just("final_answer")},
    ),
)
function_call_items = obj(
    {"type": st.just("function_call"), "call_id": call_ids, "name": names, "arguments": arguments},
    {"id": item_ids, "status": statuses},
)
custom_call_items = obj(
    {"type": st.just("custom_tool_call"), "call_id": call_ids, "name": names, "input": texts},
    {"id": item_ids},
)
output_items = obj(
    {
        "type": st.sampled_from(["function_call_output", "custom_tool_call_output"]),
        "call_id": call_ids,
        "output": texts | st.lists(st.one_of(input_text_parts, image_parts, file_parts), max_size=2),
    },
    {"id": item_ids, "status": statuses},
)
reasoning_items = obj(
    {
        "type": st.just("reasoning"),
        "id": names.map(lambda s: "rs_" + s),
        "summary": st.lists(obj({"type": st.just("summary_text"), "text": texts}), max_size=2),
    },
    {
        "encrypted_content": texts | st.none(),
        "content": st.lists(obj({"type": st.just("reasoning_text"), "text": texts}), max_size=2),
        "status": statuses,
    },
)
builtin_items = st.one_of(
    obj(
        {
            "type": st.just("web_search_call"),
            "id": names,
            "status": st.just("completed"),
            "action": obj({"type": st.just("search"), "query": texts}),
        }
    ),
    obj(
        {
            "type": st.just("file_search_call"),
            "id": names,
            "status": st.just("completed"),
            "queries": st.lists(texts),
        }
    ),
    obj(
        {
            "type": st.just("computer_call_output"),
            "call_id": call_ids,
            "output": obj({"type": st.just("computer_screenshot"), "image_url": image_urls}),
        }
    ),
    obj({"type": st.just("mcp_approval_response"), "approval_request_id": names, "approve": st.booleans()}),
    obj({"type": st.just("item_reference"), "id": names}),
    st.builds(lambda item_id: {"id": item_id}, names),  # item reference without its optional type
)
input_items = st.one_of(
    message_items, function_call_items, custom_call_items, output_items, reasoning_items, builtin_items
)

# ----------------------------------------------------------------------------------------- tools

flat_function_tools = obj(
    {"type": st.just("function"), "name": names},
    {
        "description": texts | st.none(),
        "parameters": json_schemas | st.none(),
        "strict": st.booleans() | st.none(),
    },
)
chat_function_tools = obj(
    {
        "type": st.just("function"),
        "function": obj(
            {"name": names}, {"description": texts, "parameters": json_schemas, "strict": st.booleans()}
        ),
    }
)
custom_tools = obj(
    {"type": st.just("custom"), "name": names},
    {"description": texts, "format": obj({"type": st.just("text")})},
)
builtin_tools = st.one_of(
    obj(
        {"type": st.sampled_from(["web_search", "web_search_preview"])},
        {"search_context_size": st.sampled_from(["low", "medium", "high"])},
    ),
    obj({"type": st.just("file_search"), "vector_store_ids": st.lists(names, min_size=1, max_size=2)}),
    obj({"type": st.just("code_interpreter"), "container": obj({"type": st.just("auto")})}),
    obj({"type": st.just("mcp"), "server_label": names, "server_url": image_urls}),
    obj({"type": st.just("image_generation")}, {"quality": st.sampled_from(["low", "high"])}),
)
tools: Strategy[JsonDict] = st.one_of(flat_function_tools, chat_function_tools, custom_tools, builtin_tools)

forced_tool_choices: Strategy[JsonDict] = st.one_of(
    obj({"type": st.sampled_from(["function", "custom"]), "name": names}),
    obj({"type": st.just("mcp"), "server_label": names, "name": names}),
    obj({"type": st.just("function"), "function": obj({"name": names})}),
)
"""``tool_choice`` objects that force one named tool."""
tool_choices: Strategy[Any] = st.one_of(
    st.sampled_from(["auto", "none", "required"]),
    forced_tool_choices,
    obj(
        {
            "type": st.sampled_from(
                ["web_search_preview", "file_search", "code_interpreter", "image_generation"]
            )
        }
    ),
    obj({"type": st.just("mcp"), "server_label": names}),
    obj(
        {
            "type": st.just("allowed_tools"),
            "mode": st.sampled_from(["auto", "required"]),
            "tools": st.lists(
                st.fixed_dictionaries({"type": st.just("function"), "name": names}), max_size=2
            ),
        }
    ),
)

# ----------------------------------------------------------------------------------------- parameters


def _nullable(strategy: Strategy[Any]) -> Strategy[Any]:
    return st.one_of(strategy, strategy, st.none())


text_formats: Strategy[JsonDict] = st.one_of(
    obj({"type": st.just("text")}),
    obj({"type": st.just("json_object")}),
    obj({"type": st.just("json_schema"), "name": names, "schema": json_schemas}, {"strict": st.booleans()}),
)

PARAMETERS: dict[str, Strategy[Any]] = {
    "instructions": _nullable(texts),
    "temperature": _nullable(st.floats(min_value=0, max_value=2) | st.integers(min_value=0, max_value=2)),
    "top_p": _nullable(st.floats(min_value=0, max_value=1)),
    "max_output_tokens": _nullable(st.integers(min_value=16, max_value=100_000)),
    "reasoning": st.none()
    | obj(
        {},
        {
            "effort": st.sampled_from(["minimal", "low", "medium", "high"]) | st.none(),
            "summary": st.sampled_from(["auto", "concise", "detailed"]),
        },
    ),
    "text": obj({}, {"format": text_formats, "verbosity": st.sampled_from(["low", "medium", "high"])}),
    # Real parameters the codec has no field for: they must ride through ``extra``.
    "previous_response_id": names.map(lambda s: "resp_" + s),
    "store": st.booleans(),
    "include": st.lists(st.sampled_from(["reasoning.encrypted_content", "message.output_text.logprobs"])),
    "metadata": st.dictionaries(names, texts, max_size=2),
    "truncation": st.sampled_from(["auto", "disabled"]),
    "parallel_tool_calls": st.booleans(),
    "service_tier": st.sampled_from(["auto", "default", "flex", "priority"]),
    "background": st.booleans(),
    "user": names,
}

stream_settings: Strategy[JsonDict] = st.one_of(
    st.just({}),
    st.just({"stream": False}),
    st.just({"stream": None}),
    st.just({"stream": True}),
    st.builds(lambda flag: {"stream": True, "stream_options": {"include_obfuscation": flag}}, st.booleans()),
)


@st.composite
def responses_requests(
    draw: st.DrawFn, *, with_tools: bool = False, forced_tool_choice: bool = False
) -> JsonDict:
    """A Responses request body with unknown keys at every depth.

    Args:
        draw: Supplied by Hypothesis.
        with_tools: Always offer at least one tool.
        forced_tool_choice: Always offer tools and send a ``tool_choice`` object forcing one of them.
    """
    body: JsonDict = {"model": draw(models)}
    shape = draw(st.sampled_from(["string", "items", "items", "absent", "null"]))
    if shape == "string":
        body["input"] = draw(texts)
    elif shape == "items":
        body["input"] = draw(st.lists(input_items, min_size=1, max_size=5))
    elif shape == "null":  # with previous_response_id, say
        body["input"] = None
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


# ----------------------------------------------------------------------------------------- samples

RESPONSES_SAMPLES: list[JsonDict] = [
    {
        "model": "gpt-5",
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "Use metric units.", "x_flag": True},
            {
                "type": "message",
                "role": "user",
                "x_flag": 1,
                "content": [
                    {
                        "type": "input_text",
                        "text": "Compare \N{SNOWMAN}",
                        "x_meta": {"nested": [1, 2.5, None]},
                    },
                    {
                        "type": "input_image",
                        "image_url": "https://img.example/a.png",
                        "detail": "high",
                        "x_crop": 1,
                    },
                    {"type": "input_image", "file_id": "file-abc", "detail": "auto"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,JVBERi0=",
                        "filename": "a.pdf",
                    },
                    {"type": "input_file", "file_url": "https://docs.example/a.pdf"},
                    {
                        "type": "input_audio",
                        "input_audio": {"data": "UklGRg==", "format": "wav", "x_rate": 16000},
                    },
                    {"type": "input_video", "video_url": "https://v.example/a.mp4", "x_fps": 2**70},
                ],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "**Plan**", "x_s": 0}],
                "encrypted_content": "gAAAA",
                "x_r": False,
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "weather",
                "arguments": '{"city": "Paris"}',
                "status": "completed",
                "x_origin": "model",
            },
            {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": '{"city": "Par'},
            {
                "type": "custom_tool_call",
                "call_id": "call_3",
                "name": "grep",
                "input": "TODO",
                "x_lang": "re",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "18C", "x_ms": 12},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "?"}],
            },
            {"type": "custom_tool_call_output", "call_id": "call_3", "output": "3 matches"},
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search", "query": "q"},
            },
            {"type": "computer_call_output", "call_id": "call_c", "output": {"type": "computer_screenshot"}},
            {"id": "msg_ref"},
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "Sorry", "annotations": [], "x_a": [True]},
                    {"type": "refusal", "refusal": "No.", "x_policy": "p1"},
                ],
            },
            {"role": "user", "content": "Thanks", "x_flag": False},
        ],
        "temperature": 0.7,
        "top_p": 1,
        "max_output_tokens": 512,
        "reasoning": {"effort": "low", "summary": "auto", "x_r": 1},
        "text": {
            "format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}},
            "verbosity": "low",
        },
        "tools": [
            {
                "type": "function",
                "name": "weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
                "x_owner": "geo",
            },
            {"type": "function", "function": {"name": "time", "x_fn": 1}, "x_wrapper": True},
            {"type": "custom", "name": "grep", "description": "Search", "x_beta": 1},
            {"type": "web_search_preview", "search_context_size": "low"},
            {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp"},
        ],
        "tool_choice": {"type": "function", "name": "weather", "x_choice": 1},
        "parallel_tool_calls": False,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "stream": True,
        "x_top": {"deep": [{"deeper": [True, 1, 1.0, "1"]}]},
    },
    {
        "model": "gpt-oss-20b",
        "input": "Say hi",
        "instructions": None,
        "max_output_tokens": None,
        "tools": [{"type": "function", "name": "grep", "strict": None, "parameters": None}],
        "tool_choice": {
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "function", "name": "grep"}],
        },
        "stream": True,
        "stream_options": {"include_obfuscation": False},
        "x_priority": 0,
    },
]
"""Rich Responses requests: every item kind, part type, parameter and depth of unknown key."""

# ----------------------------------------------------------------------------------------- replies

usages = obj(
    {"input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**6)},
    {
        "total_tokens": st.integers(0, 2 * 10**6),
        "input_tokens_details": obj({"cached_tokens": st.integers(0, 10**6)}),
        "output_tokens_details": obj({"reasoning_tokens": st.integers(0, 10**6)}),
    },
)
output_items_strategy = st.one_of(
    obj(
        {
            "type": st.just("message"),
            "id": names,
            "role": st.just("assistant"),
            "status": statuses,
            "content": st.lists(assistant_parts, max_size=2),
        }
    ),
    function_call_items,
    custom_call_items,
    reasoning_items,
    obj({"type": st.just("web_search_call"), "id": names, "status": st.just("completed")}),
)
responses_bodies: Strategy[JsonDict] = obj(
    {
        "id": names.map(lambda s: "resp_" + s),
        "object": st.just("response"),
        "created_at": st.integers(0, 2**31),
        "model": models,
        "status": st.sampled_from(
            ["completed", "incomplete", "failed", "in_progress", "queued", "cancelled"]
        ),
        "output": st.lists(output_items_strategy, max_size=3),
    },
    {
        "usage": usages | st.none(),
        "incomplete_details": st.none()
        | obj({"reason": st.sampled_from(["max_output_tokens", "content_filter"])}),
        "error": st.none()
        | obj({"code": st.sampled_from(["server_error", "rate_limit_exceeded"]), "message": texts}),
        "service_tier": st.sampled_from(["default", "flex"]),
    },
)
"""A ``response`` object."""

responses_events: Strategy[JsonDict] = st.one_of(
    st.builds(
        lambda kind, body: {"type": kind, "response": body},
        st.sampled_from(
            ["response.created", "response.in_progress", "response.completed", "response.failed"]
        ),
        responses_bodies,
    ),
    st.builds(
        lambda kind, item, index: {"type": kind, "item": item, "output_index": index},
        st.sampled_from(["response.output_item.added", "response.output_item.done"]),
        output_items_strategy,
        st.integers(0, 3),
    ),
    obj(
        {
            "type": st.sampled_from(
                [
                    "response.output_text.delta",
                    "response.function_call_arguments.delta",
                    "response.reasoning_summary_text.delta",
                    "response.refusal.delta",
                ]
            ),
            "delta": texts,
        },
        {"item_id": names, "output_index": st.integers(0, 3), "content_index": st.integers(0, 2)},
    ),
    obj({"type": st.just("error"), "message": texts}, {"code": names, "param": st.none()}),
)
"""One Responses stream event object."""
