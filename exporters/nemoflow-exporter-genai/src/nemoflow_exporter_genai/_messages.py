"""Annotated requests and responses as the GenAI message JSON (``gen_ai.input.messages`` and friends).

The shapes follow the JSON schemas published with the GenAI conventions (``gen-ai-input-messages.json``,
``gen-ai-output-messages.json``, ``gen-ai-system-instructions.json``): a message is
``{"role": ..., "parts": [...]}``; a part has a ``type`` of ``text``, ``tool_call``, ``tool_call_response``,
``reasoning``, ``blob``, ``file``, ``uri`` or, for anything else, its own type name (the generic part).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from nemoflow._model import (
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    AudioPart,
    Choice,
    ContentPart,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    ReasoningPart,
    RefusalPart,
    TextPart,
    ToolCall,
    ToolResultPart,
    as_dict,
)

__all__ = [
    "finish_reason",
    "finish_reasons",
    "input_messages",
    "output_messages",
    "system_instructions",
    "to_json",
    "tool_definitions",
]

_FINISH_REASONS = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.TOOL_CALLS: "tool_call",
    FinishReason.CONTENT_FILTER: "content_filter",
    FinishReason.ERROR: "error",
}

_ROLES = {"model": "assistant", "function": "tool"}
"""Provider roles renamed to the convention's (Gemini ``model``, legacy OpenAI ``function``)."""

_SYSTEM_ROLES = frozenset({"system", "developer"})


def to_json(value: Any) -> str:
    """Compact JSON text of ``value``; values JSON cannot hold become their ``str``."""
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # integers beyond 64 bits and the like
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def finish_reason(reason: FinishReason, raw: str | None) -> str | None:
    """The convention's finish reason: the normalized one, else the provider's own, else ``None``."""
    mapped = _FINISH_REASONS.get(reason)
    if mapped is not None:
        return mapped
    return raw or None


def _modality(media_type: str | None, default: str) -> str:
    if media_type:
        top = media_type.split("/", 1)[0].lower()
        if top in ("image", "audio", "video"):
            return top
    return default


def _data_url(url: str) -> tuple[str | None, str] | None:
    """``(mime type, base64 payload)`` of a base64 ``data:`` URL, else ``None``."""
    if not url.startswith("data:"):
        return None
    header, sep, payload = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    mime = header[: -len(";base64")] or None
    return mime, payload


def _media_part(
    *,
    modality: str,
    media_type: str | None,
    url: str | None = None,
    data: str | None = None,
    file_id: str | None = None,
) -> dict[str, Any]:
    if url is not None:
        inline = _data_url(url)
        if inline is not None:
            mime, payload = inline
            media_type = media_type or mime
            return _blob(_modality(media_type, modality), media_type, payload)
        part: dict[str, Any] = {"type": "uri", "modality": _modality(media_type, modality), "uri": url}
    elif data is not None:
        return _blob(_modality(media_type, modality), media_type, data)
    elif file_id is not None:
        part = {"type": "file", "modality": _modality(media_type, modality), "file_id": file_id}
    else:
        part = {"type": modality}
    if media_type:
        part["mime_type"] = media_type
    return part


def _blob(modality: str, media_type: str | None, data: str) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "blob", "modality": modality, "content": data}
    if media_type:
        part["mime_type"] = media_type
    return part


def _tool_result_value(content: Any) -> Any:
    if isinstance(content, tuple):
        parts = [_part(item) for item in content]
        if all(part.get("type") == "text" for part in parts):
            return "".join(str(part["content"]) for part in parts)
        return parts
    return as_dict(content)


def _part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "content": part.text}
    if isinstance(part, ImagePart):
        return _media_part(
            modality="image", media_type=part.media_type, url=part.url, data=part.data, file_id=part.file_id
        )
    if isinstance(part, AudioPart):
        media_type = f"audio/{part.format}" if part.format else None
        return _media_part(modality="audio", media_type=media_type, data=part.data)
    if isinstance(part, FilePart):
        found = _media_part(
            modality="document",
            media_type=part.media_type,
            url=part.url,
            data=part.data,
            file_id=part.file_id,
        )
        if part.filename:
            found["filename"] = part.filename
        return found
    if isinstance(part, ReasoningPart):
        return {"type": "reasoning", "content": part.text or ""}
    if isinstance(part, RefusalPart):
        return {"type": "refusal", "content": part.refusal}
    if isinstance(part, ToolResultPart):
        result: dict[str, Any] = {
            "type": "tool_call_response",
            "id": part.tool_call_id,
            "response": _tool_result_value(part.content),
        }
        if part.name:
            result["name"] = part.name
        return result
    return {**as_dict(part.extra), "type": part.type}


def _tool_call(call: ToolCall) -> dict[str, Any]:
    arguments = call.arguments if call.arguments is not None else call.arguments_raw
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": as_dict(arguments)}


def _content_parts(content: str | tuple[ContentPart, ...] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    return [_part(part) for part in content]


def _message(message: Message) -> dict[str, Any]:
    role = _ROLES.get(message.role, message.role)
    if message.tool_call_id is not None and role == "tool":
        # OpenAI-style tool message: the whole content answers one call.
        content = message.content
        response = content if content is None or isinstance(content, str) else _tool_result_value(content)
        parts = [{"type": "tool_call_response", "id": message.tool_call_id, "response": response}]
    else:
        parts = _content_parts(message.content)
    parts.extend(_tool_call(call) for call in message.tool_calls)
    out: dict[str, Any] = {"role": role, "parts": parts}
    if message.name:
        out["name"] = message.name
    return out


def input_messages(request: AnnotatedLlmRequest) -> list[dict[str, Any]]:
    """The conversation as sent, in order (system messages kept where the provider sends them inline)."""
    return [_message(message) for message in request.messages]


def system_instructions(request: AnnotatedLlmRequest) -> list[dict[str, Any]] | None:
    """System text sent apart from the conversation (Anthropic ``system``, Gemini ``systemInstruction``).

    ``None`` when there is none, or when the system text travels as messages in the conversation
    (OpenAI): the conventions record those in ``gen_ai.input.messages`` instead.
    """
    if not request.system:
        return None
    if any(message.role in _SYSTEM_ROLES for message in request.messages):
        return None
    return [{"type": "text", "content": request.system}]


def _choice_message(choice: Choice) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if choice.reasoning_text:
        parts.append({"type": "reasoning", "content": choice.reasoning_text})
    if choice.text:
        parts.append({"type": "text", "content": choice.text})
    if choice.refusal:
        parts.append({"type": "refusal", "content": choice.refusal})
    parts.extend(_tool_call(call) for call in choice.tool_calls)
    return {
        "role": _ROLES.get(choice.role or "assistant", choice.role or "assistant"),
        "parts": parts,
        "finish_reason": finish_reason(choice.finish_reason, choice.finish_reason_raw) or "",
    }


def _choices(response: AnnotatedLlmResponse) -> Iterable[Choice]:
    if response.choices:
        return response.choices
    return (
        Choice(
            index=0,
            text=response.text,
            tool_calls=response.tool_calls,
            finish_reason=response.finish_reason,
            finish_reason_raw=response.finish_reason_raw,
            reasoning_text=response.reasoning_text,
            refusal=response.refusal,
            role="assistant",
        ),
    )


def output_messages(response: AnnotatedLlmResponse) -> list[dict[str, Any]]:
    """One message per choice (candidate) of the reply."""
    return [_choice_message(choice) for choice in _choices(response)]


def finish_reasons(response: AnnotatedLlmResponse) -> list[str]:
    """Finish reason of every choice that has one, in choice order."""
    found = (finish_reason(choice.finish_reason, choice.finish_reason_raw) for choice in _choices(response))
    return [reason for reason in found if reason]


def tool_definitions(request: AnnotatedLlmRequest) -> list[dict[str, Any]] | None:
    """Tools offered to the model (``type``, ``name``, ``description``, ``parameters``), if any."""
    if not request.tools:
        return None
    definitions: list[dict[str, Any]] = []
    for tool in request.tools:
        definition: dict[str, Any] = {"type": tool.type, "name": tool.name}
        if tool.description is not None:
            definition["description"] = tool.description
        if tool.parameters is not None:
            definition["parameters"] = as_dict(tool.parameters)
        definitions.append(definition)
    return definitions
