"""Hypothesis strategies for the ``bedrock-converse`` codec's property tests.

Requests follow the Converse request body (botocore's ``bedrock-runtime`` service model) and carry
*unknown* keys (``x_…``) at every depth the codec must carry them through: the top level, messages,
content blocks (beside the union member) and inside their member objects (``image``, ``source``,
``s3Location``, ``toolUse``, ``toolResult``, ``reasoningContent``, ``reasoningText``), system blocks,
``inferenceConfig``, ``toolConfig``, tool entries and ``toolSpec``/``inputSchema``, ``toolChoice``, and
``outputConfig``. The URL (``/model/{modelId}/converse[-stream]``) is drawn with the body, because the
model and the streaming flag live there.
"""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from tests.strategies import base64_payloads, json_values, names, obj, texts, unknown_keys

JsonDict = dict[str, Any]
Strategy = st.SearchStrategy

HOST = "https://bedrock-runtime.us-west-2.amazonaws.com"
KNOWN_BLOCK_TYPES = frozenset(
    {
        "text", "image", "document", "video", "audio", "toolUse", "toolResult", "reasoningContent",
        "cachePoint", "guardContent", "citationsContent", "searchResult", "json",
    }
)  # fmt: skip

model_ids: Strategy[str] = st.one_of(
    st.sampled_from(
        [
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "amazon.nova-pro-v1:0",
            "meta.llama3-1-70b-instruct-v1:0",
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "arn:aws:bedrock:us-west-2:123456789012:provisioned-model/abc123def456",
        ]
    ),
    st.text(alphabet=string.ascii_letters + string.digits + ".-:_/", min_size=1, max_size=30),
)


def converse_url(model: str, stream: bool) -> str:
    """The request URL of a Converse call (the modelId percent-encoded, as the AWS SDKs send it)."""
    return f"{HOST}/model/{quote(model, safe='')}/converse" + ("-stream" if stream else "")


tool_use_ids: Strategy[str] = names.map(lambda suffix: "tooluse_" + suffix)
s3_locations = obj(
    {"uri": names.map(lambda key: f"s3://acme-bucket/{key}")}, {"bucketOwner": st.just("123456789012")}
)
sources: Strategy[JsonDict] = obj({"bytes": base64_payloads}) | obj({"s3Location": s3_locations})
document_sources: Strategy[JsonDict] = sources | obj({"text": texts})

text_blocks = obj({"text": texts})
image_blocks = obj(
    {"image": obj({"format": st.sampled_from(["png", "jpeg", "gif", "webp"]), "source": sources})}
)
document_blocks = obj(
    {
        "document": obj(
            {
                "format": st.sampled_from(["pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"]),
                "name": names,
                "source": document_sources,
            },
            {"context": texts},
        )
    }
)
video_blocks = obj(
    {
        "video": obj(
            {"format": st.sampled_from(["mp4", "mov", "webm", "mkv", "three_gp", "mpg"]), "source": sources}
        )
    }
)
audio_blocks = obj({"audio": obj({"format": st.sampled_from(["mp3", "wav", "ogg"]), "source": sources})})
cache_points = obj({"cachePoint": obj({"type": st.just("default")}, {"ttl": st.sampled_from(["5m", "1h"])})})
guard_blocks = obj({"guardContent": st.fixed_dictionaries({"text": obj({"text": texts})})})
other_blocks: Strategy[JsonDict] = st.builds(
    lambda kind, value, extra: {kind: value, **extra},
    st.sampled_from(["citationsContent", "searchResult", "toolAddition"])
    | names.filter(lambda name: name not in KNOWN_BLOCK_TYPES),
    json_values,
    unknown_keys(),
)
"""Blocks of a kind the codec keeps whole (cache points aside): citations, search results, future kinds."""
reasoning_blocks = obj(
    {
        "reasoningContent": obj({"reasoningText": obj({"text": texts}, {"signature": names})})
        | obj({"redactedContent": base64_payloads})
    }
)
tool_use_blocks = obj(
    {
        "toolUse": obj(
            {"toolUseId": tool_use_ids, "name": names, "input": json_values},
            {"type": st.just("server_tool_use")},
        )
    }
)
json_result_blocks = obj({"json": json_values})
tool_result_blocks = obj(
    {
        "toolResult": obj(
            {
                "toolUseId": tool_use_ids,
                "content": st.lists(
                    st.one_of(text_blocks, json_result_blocks, image_blocks, document_blocks), max_size=3
                ),
            },
            {"status": st.sampled_from(["success", "error"])},
        )
    }
)

user_blocks = st.one_of(
    text_blocks,
    image_blocks,
    document_blocks,
    video_blocks,
    audio_blocks,
    cache_points,
    guard_blocks,
    tool_result_blocks,
    other_blocks,
)
assistant_blocks = st.one_of(text_blocks, reasoning_blocks, tool_use_blocks, cache_points, other_blocks)

user_messages = obj({"role": st.just("user"), "content": st.lists(user_blocks, min_size=1, max_size=3)})
assistant_messages = obj(
    {"role": st.just("assistant"), "content": st.lists(assistant_blocks, min_size=1, max_size=3)}
)
messages_lists = st.lists(st.one_of(user_messages, assistant_messages), min_size=1, max_size=3)

system_blocks = st.lists(st.one_of(text_blocks, cache_points, guard_blocks), min_size=1, max_size=3)

inference_configs = obj(
    {},
    {
        "maxTokens": st.integers(min_value=1, max_value=200_000),
        "temperature": st.floats(min_value=0, max_value=1),
        "topP": st.floats(min_value=0, max_value=1),
        "stopSequences": st.lists(texts, max_size=3),
    },
)
json_schemas = st.fixed_dictionaries(
    {"type": st.just("object")}, optional={"properties": st.dictionaries(names, st.just({"type": "string"}))}
)
tool_specs = obj(
    {"name": names, "inputSchema": obj({"json": json_schemas})},
    {"description": texts, "strict": st.booleans()},
)
tool_entries = st.one_of(
    obj({"toolSpec": tool_specs}),
    cache_points,
    obj({"systemTool": obj({"name": st.just("nova_grounding")})}),
)
tool_choices = st.one_of(
    obj({"auto": obj({})}),
    obj({"any": obj({})}),
    obj({"tool": obj({"name": names})}),
)
forced_tool_choices = obj({"tool": obj({"name": names})})
output_configs = obj(
    {},
    {
        "effort": st.sampled_from(["low", "medium", "high"]),
        "textFormat": obj(
            {"type": st.just("json_schema"), "structure": obj({"jsonSchema": obj({"schema": texts})})}
        ),
    },
)
model_fields: Strategy[JsonDict] = st.one_of(
    st.dictionaries(names, json_values, max_size=2),
    st.builds(lambda top_k, rest: {**rest, "top_k": top_k}, st.integers(1, 500), unknown_keys()),
    st.builds(lambda top_k: {"inferenceConfig": {"topK": top_k}}, st.integers(1, 500)),
    st.just({"thinking": {"type": "enabled", "budget_tokens": 2048}}),
)
SERVICE_FIELDS: dict[str, Strategy[Any]] = {
    "additionalModelRequestFields": model_fields,
    "additionalModelResponseFieldPaths": st.lists(names.map(lambda name: "/" + name), max_size=2),
    "guardrailConfig": obj({"guardrailIdentifier": names, "guardrailVersion": st.just("1")}),
    "requestMetadata": st.dictionaries(names, texts, max_size=2),
    "performanceConfig": obj({"latency": st.sampled_from(["standard", "optimized"])}),
    "serviceTier": obj({"type": st.sampled_from(["default", "priority", "flex"])}),
    "outputConfig": output_configs,
    "inferenceConfig": inference_configs,
}


@st.composite
def converse_requests(
    draw: st.DrawFn, *, with_tools: bool = False, forced_tool_choice: bool = False
) -> tuple[str, JsonDict]:
    """``(url, body)`` of a Converse request with unknown keys at every depth."""
    url = converse_url(draw(model_ids), draw(st.booleans()))
    body: JsonDict = {"messages": draw(messages_lists)}
    if draw(st.booleans()):
        body["system"] = draw(system_blocks)
    body.update(draw(st.fixed_dictionaries({}, optional=SERVICE_FIELDS)))
    if with_tools or forced_tool_choice or draw(st.booleans()):
        tools = draw(st.lists(tool_entries, min_size=0, max_size=2))
        tools.insert(draw(st.integers(0, len(tools))), draw(obj({"toolSpec": tool_specs})))
        config: JsonDict = {"tools": tools}
        if forced_tool_choice:
            config["toolChoice"] = draw(forced_tool_choices)
        elif draw(st.booleans()):
            config["toolChoice"] = draw(tool_choices)
        config.update(draw(unknown_keys()))
        body["toolConfig"] = config
    body.update(draw(unknown_keys(3)))
    return url, body


# ----------------------------------------------------------------------------------------- responses

usages = obj(
    {"inputTokens": st.integers(0, 10**6), "outputTokens": st.integers(0, 10**6)},
    {
        "totalTokens": st.integers(0, 3 * 10**6),
        "cacheReadInputTokens": st.integers(0, 10**6),
        "cacheWriteInputTokens": st.integers(0, 10**6),
        "cacheDetails": st.lists(
            obj({"ttl": st.sampled_from(["5m", "1h"]), "inputTokens": st.integers(0, 999)})
        ),
    },
)
stop_reasons = (
    st.sampled_from(
        [
            "end_turn", "tool_use", "max_tokens", "stop_sequence", "guardrail_intervened", "content_filtered",
            "malformed_model_output", "malformed_tool_use", "model_context_window_exceeded",
        ]
    )
    | texts
)  # fmt: skip
citation_blocks = obj({"citationsContent": obj({"content": st.lists(obj({"text": texts}), max_size=2)})})
response_blocks = st.one_of(text_blocks, tool_use_blocks, reasoning_blocks, citation_blocks, image_blocks)


@st.composite
def converse_responses(draw: st.DrawFn) -> JsonDict:
    """A Converse response body."""
    body: JsonDict = {
        "output": draw(
            obj(
                {
                    "message": obj(
                        {"role": st.just("assistant"), "content": st.lists(response_blocks, max_size=4)}
                    )
                }
            )
        ),
        "stopReason": draw(stop_reasons),
        "usage": draw(usages),
        "metrics": {"latencyMs": draw(st.integers(0, 10**5))},
    }
    return {**body, **draw(unknown_keys())}


# ----------------------------------------------------------------------------------------- stream events

stream_events: Strategy[tuple[str, JsonDict]] = st.one_of(
    st.tuples(st.just("messageStart"), obj({"role": st.just("assistant")})),
    st.tuples(
        st.just("contentBlockStart"),
        obj(
            {
                "contentBlockIndex": st.integers(0, 3),
                "start": obj({"toolUse": obj({"toolUseId": tool_use_ids, "name": names})}),
            }
        ),
    ),
    st.tuples(
        st.just("contentBlockDelta"),
        obj(
            {
                "contentBlockIndex": st.integers(0, 3),
                "delta": st.one_of(
                    obj({"text": texts}),
                    obj({"toolUse": obj({"input": texts})}),
                    obj({"reasoningContent": obj({}, {"text": texts, "signature": names})}),
                ),
            }
        ),
    ),
    st.tuples(st.just("contentBlockStop"), obj({"contentBlockIndex": st.integers(0, 3)})),
    st.tuples(st.just("messageStop"), obj({"stopReason": stop_reasons})),
    st.tuples(
        st.just("metadata"), obj({"usage": usages, "metrics": obj({"latencyMs": st.integers(0, 9999)})})
    ),
    st.tuples(
        st.sampled_from(["throttlingException", "validationException", "internalServerException"]),
        obj({"message": texts}),
    ),
)
"""One ``(event type, payload)`` of a ``converse-stream`` body."""
