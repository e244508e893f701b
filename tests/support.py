"""Helpers shared by the adapter and runtime tests: a recording subscriber and a chat-stream event builder."""

from __future__ import annotations

from typing import Any

import orjson

from nemoflow import LlmCall, Subscriber


class Collector(Subscriber):
    def __init__(self) -> None:
        self.calls: list[LlmCall] = []

    def on_call(self, call: LlmCall) -> None:
        self.calls.append(call)


def chunk(
    content: str | None = None, finish: str | None = None, usage: Any = None, choices: bool = True
) -> bytes:
    event: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
    }
    event["choices"] = (
        [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]
        if choices
        else []
    )
    if usage is not None:
        event["usage"] = usage
    return b"data: " + orjson.dumps(event) + b"\n\n"
