"""An AWS event-stream frame encoder for tests, and the readable source of the stream fixtures.

The encoder is written from the wire format (AWS "Event stream encoding"): prelude (total length, headers
length, CRC32 of those eight bytes), headers, payload, CRC32 of everything before it. It is independent of
the codec's decoder, and botocore's parser checks what it produces (``test_eventstream.py``).

``STREAM_FIXTURES`` lists the ``converse-stream`` fixtures as readable events; the JSON files in
``spec/fixtures/bedrock-converse/stream-*.json`` are generated from it (``eventstream_base64`` holds the
whole binary body) and a test checks the files still match. Regenerate with::

    uv run python -m tests.codec_bedrock.frames
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "fixtures" / "bedrock-converse"
URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/{model}/converse-stream"
CLAUDE_35 = "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
CLAUDE_37_PROFILE = "us.anthropic.claude-3-7-sonnet-20250219-v1%3A0"
NOVA_PRO = "amazon.nova-pro-v1%3A0"

# ----------------------------------------------------------------------------------------- encoder

BOOL_TRUE, BOOL_FALSE, BYTE, SHORT, INT, LONG, BYTES, STRING, TIMESTAMP, UUID = range(10)

Header = tuple[str, int, Any]


def encode_header(name: str, value_type: int, value: Any) -> bytes:
    """One header: name length (u8), name, value type (u8), value."""
    raw_name = name.encode("utf-8")
    out = struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!B", value_type)
    if value_type in (BOOL_TRUE, BOOL_FALSE):
        return out
    if value_type == BYTE:
        return out + struct.pack("!b", value)
    if value_type == SHORT:
        return out + struct.pack("!h", value)
    if value_type == INT:
        return out + struct.pack("!i", value)
    if value_type in (LONG, TIMESTAMP):
        return out + struct.pack("!q", value)
    if value_type == BYTES:
        raw = bytes(value)
        return out + struct.pack("!H", len(raw)) + raw
    if value_type == STRING:
        encoded = str(value).encode("utf-8")
        return out + struct.pack("!H", len(encoded)) + encoded
    if value_type == UUID:
        assert isinstance(value, uuid.UUID)
        return out + value.bytes
    raise ValueError(f"unknown header type {value_type}")


def encode_frame(headers: Iterable[Header], payload: bytes) -> bytes:
    """A whole event-stream message."""
    header_bytes = b"".join(encode_header(name, kind, value) for name, kind, value in headers)
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + header_bytes + payload
    return body + struct.pack("!I", zlib.crc32(body))


_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def padded(payload: Mapping[str, Any], serial: int) -> bytes:
    """The JSON payload with Bedrock's ``p`` padding key (a prefix of the alphabet, of varying length)."""
    pad = _PAD[: 1 + (serial * 7) % len(_PAD)]
    return json.dumps({**payload, "p": pad}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_frame(event_type: str, payload: Mapping[str, Any], serial: int = 0) -> bytes:
    """A Bedrock ``:message-type: event`` frame, headers in the order Bedrock sends them."""
    headers = [
        (":event-type", STRING, event_type),
        (":content-type", STRING, "application/json"),
        (":message-type", STRING, "event"),
    ]
    return encode_frame(headers, padded(payload, serial))


def exception_frame(exception_type: str, payload: Mapping[str, Any]) -> bytes:
    """A ``:message-type: exception`` frame (its payload carries no padding)."""
    headers = [
        (":exception-type", STRING, exception_type),
        (":content-type", STRING, "application/json"),
        (":message-type", STRING, "exception"),
    ]
    return encode_frame(headers, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


Event = tuple[str, Mapping[str, Any]]
"""``(event type, payload)``; an event type ending in ``Exception`` becomes an exception frame."""


def encode_events(events: Iterable[Event]) -> bytes:
    """The body of a ``converse-stream`` response."""
    frames: list[bytes] = []
    for serial, (name, payload) in enumerate(events):
        if name.endswith("Exception"):
            frames.append(exception_frame(name, payload))
        else:
            frames.append(event_frame(name, payload, serial))
    return b"".join(frames)


def text_deltas(index: int, *pieces: str) -> list[Event]:
    """``contentBlockDelta`` text events for one block."""
    return [("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}) for piece in pieces]


def tool_deltas(index: int, *pieces: str) -> list[Event]:
    """``contentBlockDelta`` tool-input events for one block."""
    return [
        ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}})
        for piece in pieces
    ]


# ----------------------------------------------------------------------------------------- fixtures

SOURCE = (
    "Bedrock Runtime API reference: ConverseStream, ConverseStreamOutput and its event shapes "
    "(botocore bedrock-runtime 2023-09-30 service model); AWS event-stream framing with :event-type, "
    ":content-type and :message-type headers and the 'p' padding key Bedrock adds to each event payload"
)

STREAM_FIXTURES: dict[str, dict[str, Any]] = {
    "stream-text-end-turn": {
        "description": "A plain Claude 3.5 Sonnet text stream: deltas joined, end_turn is stop, the model "
        "comes from the URL-decoded modelId, usage and latency from the metadata event.",
        "url": URL.format(model=CLAUDE_35),
        "events": [
            ("messageStart", {"role": "assistant"}),
            *text_deltas(0, "Bonjour", " ! Comment puis-je", " vous aider aujourd'hui ?"),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("messageStop", {"stopReason": "end_turn"}),
            (
                "metadata",
                {
                    "usage": {"inputTokens": 14, "outputTokens": 17, "totalTokens": 31},
                    "metrics": {"latencyMs": 538},
                },
            ),
        ],
        "expected": {
            "id": None,
            "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "text": "Bonjour ! Comment puis-je vous aider aujourd'hui ?",
            "finish_reason": "stop",
            "finish_reason_raw": "end_turn",
            "tool_calls": [],
            "usage": {
                "prompt_tokens": 14,
                "completion_tokens": 17,
                "total_tokens": 31,
                "cache_read_tokens": None,
                "cache_write_tokens": None,
                "reasoning_tokens": None,
            },
            "choices": [
                {
                    "index": 0,
                    "role": "assistant",
                    "text": "Bonjour ! Comment puis-je vous aider aujourd'hui ?",
                }
            ],
            "error": None,
            "extra": {"metrics": {"latencyMs": 538}},
        },
    },
    "stream-tool-use": {
        "description": "Text then a toolUse block: the contentBlockStart names the tool, input fragments are "
        "joined per block and parsed, tool_use is tool_calls.",
        "url": URL.format(model=CLAUDE_35),
        "events": [
            ("messageStart", {"role": "assistant"}),
            *text_deltas(0, "Je regarde la m", "étéo à Lyon."),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            (
                "contentBlockStart",
                {
                    "contentBlockIndex": 1,
                    "start": {
                        "toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather"}
                    },
                },
            ),
            *tool_deltas(1, "", '{"city": "Ly', 'on", "unit": ', '"celsius"}'),
            ("contentBlockStop", {"contentBlockIndex": 1}),
            ("messageStop", {"stopReason": "tool_use"}),
            (
                "metadata",
                {
                    "usage": {"inputTokens": 412, "outputTokens": 71, "totalTokens": 483},
                    "metrics": {"latencyMs": 1290},
                },
            ),
        ],
        "expected": {
            "text": "Je regarde la météo à Lyon.",
            "finish_reason": "tool_calls",
            "finish_reason_raw": "tool_use",
            "tool_calls": [
                {
                    "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                    "name": "get_weather",
                    "arguments": {"city": "Lyon", "unit": "celsius"},
                    "arguments_raw": '{"city": "Lyon", "unit": "celsius"}',
                    "type": "function",
                }
            ],
            "usage": {"prompt_tokens": 412, "completion_tokens": 71, "total_tokens": 483},
        },
    },
    "stream-parallel-tools-no-input": {
        "description": "Two tool calls in one turn, one of them without input (no delta at all): each keeps "
        "its own id and arguments; the empty input is an empty object.",
        "url": URL.format(model=CLAUDE_37_PROFILE),
        "events": [
            ("messageStart", {"role": "assistant"}),
            (
                "contentBlockStart",
                {
                    "contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": "tooluse_Ab1", "name": "get_time"}},
                },
            ),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            (
                "contentBlockStart",
                {
                    "contentBlockIndex": 1,
                    "start": {"toolUse": {"toolUseId": "tooluse_Cd2", "name": "get_weather"}},
                },
            ),
            *tool_deltas(1, '{"city":', ' "Oslo"}'),
            ("contentBlockStop", {"contentBlockIndex": 1}),
            ("messageStop", {"stopReason": "tool_use"}),
            (
                "metadata",
                {
                    "usage": {"inputTokens": 380, "outputTokens": 64, "totalTokens": 444},
                    "metrics": {"latencyMs": 980},
                },
            ),
        ],
        "expected": {
            "model": "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "text": None,
            "finish_reason": "tool_calls",
            "tool_calls": [
                {"id": "tooluse_Ab1", "name": "get_time", "arguments": {}, "arguments_raw": None},
                {"id": "tooluse_Cd2", "name": "get_weather", "arguments": {"city": "Oslo"}},
            ],
        },
    },
    "stream-reasoning": {
        "description": "Claude 3.7 extended thinking: reasoningContent text deltas go to reasoning_text and "
        "out of the text; the signature delta is not text.",
        "url": URL.format(model=CLAUDE_37_PROFILE),
        "events": [
            ("messageStart", {"role": "assistant"}),
            (
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "The user wants 17 * 23. "}}},
            ),
            (
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "17 * 23 = 391."}}},
            ),
            (
                "contentBlockDelta",
                {
                    "contentBlockIndex": 0,
                    "delta": {"reasoningContent": {"signature": "EqoBCkgIARABGAIiQGmJ3vXbd0Q8lq0SfVbMx"}},
                },
            ),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            *text_deltas(1, "17 * 23 = ", "391."),
            ("contentBlockStop", {"contentBlockIndex": 1}),
            ("messageStop", {"stopReason": "end_turn"}),
            (
                "metadata",
                {
                    "usage": {"inputTokens": 45, "outputTokens": 96, "totalTokens": 141},
                    "metrics": {"latencyMs": 2210},
                },
            ),
        ],
        "expected": {
            "text": "17 * 23 = 391.",
            "reasoning_text": "The user wants 17 * 23. 17 * 23 = 391.",
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 45, "completion_tokens": 96, "reasoning_tokens": None},
        },
    },
    "stream-prompt-cache-usage": {
        "description": "Usage with prompt caching: inputTokens counts only uncached input, so prompt_tokens "
        "adds cacheReadInputTokens and cacheWriteInputTokens; totalTokens is kept as stated; "
        "max_tokens is length.",
        "url": URL.format(model=CLAUDE_37_PROFILE),
        "events": [
            ("messageStart", {"role": "assistant"}),
            *text_deltas(0, "Section 4.2 of the contract says the notice period is"),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("messageStop", {"stopReason": "max_tokens"}),
            (
                "metadata",
                {
                    "usage": {
                        "inputTokens": 21,
                        "outputTokens": 12,
                        "totalTokens": 3337,
                        "cacheReadInputTokens": 3104,
                        "cacheWriteInputTokens": 200,
                    },
                    "metrics": {"latencyMs": 640},
                },
            ),
        ],
        "expected": {
            "finish_reason": "length",
            "finish_reason_raw": "max_tokens",
            "usage": {
                "prompt_tokens": 3325,
                "completion_tokens": 12,
                "total_tokens": 3337,
                "cache_read_tokens": 3104,
                "cache_write_tokens": 200,
            },
        },
    },
    "stream-guardrail-intervened": {
        "description": "A guardrail blocked the reply: guardrail_intervened is content_filter; the guardrail "
        "trace of the metadata event stays in extra.",
        "url": URL.format(model=NOVA_PRO),
        "events": [
            ("messageStart", {"role": "assistant"}),
            *text_deltas(0, "Sorry, I can't help with that request."),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("messageStop", {"stopReason": "guardrail_intervened"}),
            (
                "metadata",
                {
                    "usage": {"inputTokens": 31, "outputTokens": 9, "totalTokens": 40},
                    "metrics": {"latencyMs": 301},
                    "trace": {
                        "guardrail": {
                            "inputAssessment": {
                                "gr-7x2k9": {
                                    "topicPolicy": {
                                        "topics": [
                                            {"name": "Investment advice", "type": "DENY", "action": "BLOCKED"}
                                        ]
                                    }
                                }
                            }
                        }
                    },
                },
            ),
        ],
        "expected": {
            "model": "amazon.nova-pro-v1:0",
            "text": "Sorry, I can't help with that request.",
            "finish_reason": "content_filter",
            "finish_reason_raw": "guardrail_intervened",
            "extra": {
                "metrics": {"latencyMs": 301},
                "trace": {
                    "guardrail": {
                        "inputAssessment": {
                            "gr-7x2k9": {
                                "topicPolicy": {
                                    "topics": [
                                        {"name": "Investment advice", "type": "DENY", "action": "BLOCKED"}
                                    ]
                                }
                            }
                        }
                    }
                },
            },
        },
    },
    "stream-throttling-exception": {
        "description": "A throttlingException frame mid-stream: finish_reason error, the error classified as "
        "rate_limit, and the text assembled before it kept; no usage was reported (None, not 0).",
        "url": URL.format(model=CLAUDE_35),
        "events": [
            ("messageStart", {"role": "assistant"}),
            *text_deltas(0, "Here is the first part of"),
            ("throttlingException", {"message": "Too many tokens, please wait before trying again."}),
        ],
        "expected": {
            "text": "Here is the first part of",
            "finish_reason": "error",
            "error": {
                "kind": "rate_limit",
                "type": "throttlingException",
                "message": "Too many tokens, please wait before trying again.",
            },
            "usage": {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None},
        },
    },
    "stream-model-stream-error": {
        "description": "A modelStreamErrorException: classified from its originalStatusCode "
        "(529 → overloaded); originalMessage stays in the error's extra.",
        "url": URL.format(model=CLAUDE_35),
        "events": [
            ("messageStart", {"role": "assistant"}),
            *text_deltas(0, "Once upon"),
            (
                "modelStreamErrorException",
                {
                    "message": "Model stream error: the model is overloaded.",
                    "originalStatusCode": 529,
                    "originalMessage": "Overloaded",
                },
            ),
        ],
        "expected": {
            "text": "Once upon",
            "finish_reason": "error",
            "error": {
                "kind": "overloaded",
                "type": "modelStreamErrorException",
                "extra": {"originalStatusCode": 529, "originalMessage": "Overloaded"},
            },
        },
    },
}


def stream_fixture(name: str) -> dict[str, Any]:
    """The JSON document of one stream fixture."""
    spec = STREAM_FIXTURES[name]
    body = encode_events(spec["events"])
    return {
        "description": spec["description"],
        "source": SOURCE,
        "kind": "stream",
        "url": spec["url"],
        "eventstream_base64": base64.b64encode(body).decode("ascii"),
        "expected": spec["expected"],
    }


def render(document: Mapping[str, Any]) -> str:
    """A fixture as written to disk."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Write every stream fixture file."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in STREAM_FIXTURES:
        (FIXTURES / f"{name}.json").write_text(render(stream_fixture(name)), encoding="utf-8")


if __name__ == "__main__":
    main()
