"""Responses API requests: wire JSON ↔ :class:`~nemoflow.AnnotatedLlmRequest`.

Wire reference: OpenAI API reference, "Create a model response" (``POST /v1/responses``) and the request
types of the official ``openai`` SDK (``ResponseCreateParams``, ``ResponseInputItemParam``, ``ToolParam``),
which Azure OpenAI (``/openai/v1/responses``) and compatible servers (llama.cpp) accept as well.

Mapping:

* ``input`` as a string is one user :class:`Message` with string content; an item list gives one
  :class:`Message` per item: messages as they are, ``function_call`` / ``custom_tool_call`` items as an
  assistant message holding one :class:`ToolCall` (its ``id`` is the ``call_id``), ``function_call_output`` /
  ``custom_tool_call_output`` items as a ``tool`` message, ``reasoning`` items as an assistant message holding
  one :class:`ReasoningPart`, and every other item (built-in tool calls, MCP items, item references) as a
  message holding one :class:`OtherPart`. One item per message keeps the merge lossless.
* ``instructions`` is the normalized system text (input system/developer messages stay messages).
* ``max_output_tokens`` is ``params.max_tokens``; ``reasoning.effort`` is ``params.reasoning_effort``;
  ``text.format`` is ``params.response_format`` (the wrappers' other keys are kept through ``raw``).

Encode is a merge: an object still pristine (untouched since decode) is written back as its original dict;
an edited one is its original dict with only the changed fields rewritten; a new one is written fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from nemoflow import (
    AnnotatedLlmRequest,
    AudioPart,
    ContentPart,
    DecodeError,
    EncodeError,
    FilePart,
    GenerationParams,
    ImagePart,
    Message,
    OtherPart,
    ReasoningPart,
    RefusalPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
    ToolResultPart,
)
from nemoflow.codec_support import (
    apply_extra,
    constructor,
    dump_json,
    encode_boundary,
    expect_array,
    expect_object,
    is_pristine,
    json_equal,
    mark_pristine,
    optional_bool,
    optional_int,
    optional_number,
    optional_str,
    set_or_pop,
    split_known,
    write_if_changed,
)

from ._chat_request import azure_deployment, parse_arguments

CODEC = "openai-responses"

_REQUEST_KEYS = frozenset(
    {
        "model", "input", "instructions", "stream", "temperature", "top_p", "max_output_tokens",
        "reasoning", "text", "tools", "tool_choice",
    }
)  # fmt: skip
_MESSAGE_KEYS = frozenset({"type", "role", "content"})
_FUNCTION_CALL_KEYS = frozenset({"type", "call_id", "name", "arguments"})
_CUSTOM_CALL_KEYS = frozenset({"type", "call_id", "name", "input"})
_OUTPUT_KEYS = frozenset({"type", "call_id", "output", "name"})
_REASONING_KEYS = frozenset({"type", "summary", "content", "encrypted_content"})
_TYPE_ONLY = frozenset({"type"})
_FLAT_FUNCTION_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})
_NESTED_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})
_CUSTOM_TOOL_KEYS = frozenset({"type", "name", "description"})
_TEXT_PART_KEYS = frozenset({"type", "text"})
_IMAGE_PART_KEYS = frozenset({"type", "image_url", "file_id", "detail"})
_FILE_PART_KEYS = frozenset({"type", "file_id", "file_data", "filename", "file_url"})
_AUDIO_PART_KEYS = frozenset({"type", "input_audio"})
_REFUSAL_PART_KEYS = frozenset({"type", "refusal"})

CALL_ITEM_TYPES = {"function_call": "function", "custom_tool_call": "custom"}
"""Item types that carry a client tool call, and the :attr:`ToolCall.type` each becomes."""
_CALL_ITEMS_BY_TOOL_TYPE = {"function": "function_call", "custom": "custom_tool_call"}
OUTPUT_ITEM_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})
"""Item types that carry a client tool result."""
_TEXT_PART_TYPES = frozenset({"input_text", "output_text", "text"})

# Input items the API knows besides messages, calls, results and reasoning: they decode to an OtherPart
# and are written back as items (not as content parts) when a message holding one is written fresh.
_OTHER_ITEM_TYPES = frozenset(
    {
        "web_search_call", "file_search_call", "computer_call", "computer_call_output",
        "code_interpreter_call", "image_generation_call", "local_shell_call", "local_shell_call_output",
        "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_list_tools",
        "mcp_approval_request", "mcp_approval_response", "mcp_call", "item_reference", "compaction",
        "compaction_trigger", "tool_search_call", "tool_search_output", "additional_tools",
        "configuration_update", "program", "program_output",
    }
)  # fmt: skip

_new_message = constructor(Message, pristine=True)
_new_plain_message = constructor(Message, pristine=False)
_new_text_part = constructor(TextPart, pristine=True)
_new_other_part = constructor(OtherPart, pristine=True)
_new_tool_call = constructor(ToolCall, pristine=True)
_new_tool = constructor(ToolDefinition, pristine=True)
_new_request = constructor(AnnotatedLlmRequest, pristine=True)
_new_params = constructor(GenerationParams, pristine=False)

# ----------------------------------------------------------------------------------------- decode


def _expect_mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    return expect_object(value, path, what, CODEC)


def _expect_list(value: Any, path: str, what: str) -> Sequence[Any]:
    return expect_array(value, path, what, CODEC)


def _str_or_none(value: Any, path: str) -> str | None:
    """``value`` when it is a string or ``None``; the JSON path is only built when it is neither."""
    if value is None or isinstance(value, str):
        return value
    return optional_str(value, path, CODEC)


def media_type_of_data_url(url: str | None) -> str | None:
    """The MIME type of a ``data:`` URL (``None`` for other URLs)."""
    if not url or not url.startswith("data:"):
        return None
    end = url.find(";")
    comma = url.find(",")
    if end == -1 or (comma != -1 and comma < end):
        end = comma
    return (url[5:end] or None) if end != -1 else None


def item_type(item: Mapping[str, Any], path: str) -> str:
    """The type of an input item; messages and item references may leave ``type`` out."""
    kind = item.get("type")
    if isinstance(kind, str):
        return kind
    if kind is None:
        if "role" in item:
            return "message"
        if "id" in item:
            return "item_reference"
        raise DecodeError("an input item needs a 'type' (or a 'role')", path=f"{path}.type", codec=CODEC)
    raise DecodeError("an input item's 'type' must be a string", path=f"{path}.type", codec=CODEC)


def decode_part(raw: Any, path: str) -> ContentPart:
    """One content part of a message (or of a tool output)."""
    part = _expect_mapping(raw, path, "a content part")
    part_type = part.get("type")
    if not isinstance(part_type, str):
        raise DecodeError("content part has no string 'type'", path=f"{path}.type", codec=CODEC)
    result: ContentPart
    if part_type in _TEXT_PART_TYPES:
        text = part.get("text")
        if not isinstance(text, str):
            raise DecodeError("a text part needs a string 'text'", path=f"{path}.text", codec=CODEC)
        return _new_text_part(text, "text", split_known(part, _TEXT_PART_KEYS), part)
    if part_type == "input_image":
        url = _str_or_none(part.get("image_url"), f"{path}.image_url")
        result = ImagePart(
            url=url,
            detail=_str_or_none(part.get("detail"), f"{path}.detail"),
            media_type=media_type_of_data_url(url),
            file_id=_str_or_none(part.get("file_id"), f"{path}.file_id"),
            extra=split_known(part, _IMAGE_PART_KEYS),
            raw=part,
        )
    elif part_type == "input_file":
        data = _str_or_none(part.get("file_data"), f"{path}.file_data")
        result = FilePart(
            file_id=_str_or_none(part.get("file_id"), f"{path}.file_id"),
            data=data,
            filename=_str_or_none(part.get("filename"), f"{path}.filename"),
            media_type=media_type_of_data_url(data),
            url=_str_or_none(part.get("file_url"), f"{path}.file_url"),
            extra=split_known(part, _FILE_PART_KEYS),
            raw=part,
        )
    elif part_type == "input_audio":
        audio = _expect_mapping(part.get("input_audio"), f"{path}.input_audio", "input_audio")
        result = AudioPart(
            data=_str_or_none(audio.get("data"), f"{path}.input_audio.data"),
            format=_str_or_none(audio.get("format"), f"{path}.input_audio.format"),
            extra=split_known(part, _AUDIO_PART_KEYS),
            raw=part,
        )
    elif part_type == "refusal":
        refusal = part.get("refusal")
        if not isinstance(refusal, str):
            raise DecodeError("a refusal part needs a string 'refusal'", path=f"{path}.refusal", codec=CODEC)
        result = RefusalPart(refusal=refusal, extra=split_known(part, _REFUSAL_PART_KEYS), raw=part)
    else:
        return _new_other_part(part_type, "other", split_known(part, _TYPE_ONLY), part)
    return mark_pristine(result)


def _decode_content(raw: Any, path: str) -> str | tuple[ContentPart, ...] | None:
    if raw is None or isinstance(raw, str):
        return raw
    parts = _expect_list(raw, path, "content")
    return tuple([decode_part(part, f"{path}[{i}]") for i, part in enumerate(parts)])


def decode_call_item(item: Mapping[str, Any], kind: str, path: str) -> ToolCall:
    """A ``function_call`` or ``custom_tool_call`` item as a :class:`ToolCall` (id = ``call_id``)."""
    name = item.get("name")
    if not isinstance(name, str):
        name = _str_or_none(name, f"{path}.name") or ""
    call_id = _str_or_none(item.get("call_id"), f"{path}.call_id")
    if kind == "function_call":
        arguments, arguments_raw = parse_arguments(item.get("arguments"), f"{path}.arguments", CODEC)
        return _new_tool_call(
            call_id, name, arguments, arguments_raw, "function", split_known(item, _FUNCTION_CALL_KEYS), item
        )
    text = _str_or_none(item.get("input"), f"{path}.input")
    return _new_tool_call(call_id, name, None, text, "custom", split_known(item, _CUSTOM_CALL_KEYS), item)


def _texts_of(entries: Any, path: str, what: str) -> list[str] | None:
    """The ``text`` of each entry of a reasoning item's ``summary`` or ``content`` (``None`` when absent)."""
    if entries is None:
        return None
    items = _expect_list(entries, path, what)
    texts: list[str] = []
    for i, entry in enumerate(items):
        body = _expect_mapping(entry, f"{path}[{i}]", f"a {what} entry")
        text = body.get("text")
        if isinstance(text, str):
            texts.append(text)
        elif text is not None:
            optional_str(text, f"{path}[{i}].text", CODEC)  # raises with the path
    return texts


def reasoning_text_source(item: Mapping[str, Any], path: str) -> tuple[str | None, str]:
    """A reasoning item's text and the key it came from: ``summary``, else ``content`` reasoning text."""
    summary = _texts_of(item.get("summary"), f"{path}.summary", "summary")
    content = _texts_of(item.get("content"), f"{path}.content", "content")
    if summary:
        return "\n\n".join(summary), "summary"
    if content:
        return "\n\n".join(content), "content"
    return None, "summary"


def decode_reasoning_item(item: Mapping[str, Any], path: str) -> ReasoningPart:
    """A ``reasoning`` item as a :class:`ReasoningPart` (``encrypted_content`` is its signature)."""
    text, _ = reasoning_text_source(item, path)
    signature = _str_or_none(item.get("encrypted_content"), f"{path}.encrypted_content")
    extra = split_known(item, _REASONING_KEYS)
    return mark_pristine(ReasoningPart(text=text, signature=signature, extra=extra, raw=item))


def _other_role(kind: str) -> str:
    # Results the client sends back for a built-in tool (computer_call_output, shell_call_output...) answer
    # a call like function_call_output does; every other item is the model's (or the server's) turn.
    return "tool" if kind.endswith("_output") else "assistant"


def decode_item(raw: Any, path: str) -> Message:
    """One item of ``input`` as one :class:`Message`."""
    item = _expect_mapping(raw, path, "an input item")
    kind = item_type(item, path)
    if kind == "message":
        role = item.get("role")
        if not isinstance(role, str):
            raise DecodeError("a message needs a string 'role'", path=f"{path}.role", codec=CODEC)
        content = _decode_content(item.get("content"), f"{path}.content")
        return _new_message(role, content, None, (), None, split_known(item, _MESSAGE_KEYS), item)
    if kind in CALL_ITEM_TYPES:
        call = decode_call_item(item, kind, path)
        return _new_message("assistant", None, None, (call,), None, {}, item)
    if kind in OUTPUT_ITEM_TYPES:
        call_id = _str_or_none(item.get("call_id"), f"{path}.call_id")
        name = _str_or_none(item.get("name"), f"{path}.name")
        output = _decode_content(item.get("output"), f"{path}.output")
        return _new_message("tool", output, name, (), call_id, split_known(item, _OUTPUT_KEYS), item)
    if kind == "reasoning":
        part: ContentPart = decode_reasoning_item(item, path)
        return _new_message("assistant", (part,), None, (), None, {}, item)
    role = _other_role(kind)
    call_id = item.get("call_id") if role == "tool" else None
    part = _new_other_part(kind, "other", split_known(item, _TYPE_ONLY), item)
    return _new_message(role, (part,), None, (), call_id if isinstance(call_id, str) else None, {}, item)


def decode_tool(raw: Any, path: str) -> ToolDefinition:
    """One entry of ``tools``: flat or Chat-style function tools, custom tools, built-in tools."""
    tool = _expect_mapping(raw, path, "a tool")
    tool_type = _str_or_none(tool.get("type"), f"{path}.type") or "function"
    if tool_type == "function":
        nested = tool.get("function")
        chat_style = isinstance(nested, Mapping) and "name" not in tool
        body: Mapping[str, Any] = nested if chat_style else tool  # type: ignore[assignment]
        where = f"{path}.function" if chat_style else path
        name = body.get("name")
        if not isinstance(name, str):
            raise DecodeError("a function tool needs a string 'name'", path=f"{where}.name", codec=CODEC)
        description = _str_or_none(body.get("description"), f"{where}.description")
        strict = body.get("strict")
        if strict is not None and not isinstance(strict, bool):
            optional_bool(strict, f"{where}.strict", CODEC)  # raises with the path
        extra = split_known(body, _NESTED_FUNCTION_KEYS if chat_style else _FLAT_FUNCTION_KEYS)
        return _new_tool(name, description, body.get("parameters"), strict, "function", extra, tool)
    if tool_type == "custom":
        name = tool.get("name")
        if not isinstance(name, str):
            raise DecodeError("a custom tool needs a string 'name'", path=f"{path}.name", codec=CODEC)
        description = _str_or_none(tool.get("description"), f"{path}.description")
        return _new_tool(name, description, None, None, "custom", split_known(tool, _CUSTOM_TOOL_KEYS), tool)
    name = tool.get("name")
    label = name if isinstance(name, str) else tool_type
    return _new_tool(label, None, None, None, tool_type, split_known(tool, _TYPE_ONLY), tool)


_TOOL_CHOICE_MODES: dict[str, Literal["auto", "none", "required"]] = {
    "auto": "auto",
    "none": "none",
    "required": "required",
}
_NAMED_CHOICE_TYPES = frozenset({"function", "custom", "mcp"})


def _choice_form(choice: Mapping[str, Any]) -> str:
    """``allowed`` (allowed_tools), ``chat`` (nested function), ``named`` (has a name) or ``builtin``."""
    choice_type = choice.get("type")
    if choice_type == "allowed_tools":
        return "allowed"
    if choice_type in (None, "function") and isinstance(choice.get("function"), Mapping):
        if "name" not in choice:
            return "chat"
    if choice_type in _NAMED_CHOICE_TYPES or "name" in choice:
        return "named"
    return "builtin"


def decode_tool_choice(raw: Any, path: str) -> ToolChoice:
    """``tool_choice``: a mode string, ``allowed_tools``, a named tool, or a built-in tool type."""
    if isinstance(raw, str):
        # Unknown mode strings are kept through ``raw``.
        return mark_pristine(ToolChoice(mode=_TOOL_CHOICE_MODES.get(raw, "auto"), raw=raw))
    choice = _expect_mapping(raw, path, "tool_choice")
    choice_type = _str_or_none(choice.get("type"), f"{path}.type")
    form = _choice_form(choice)
    if form == "allowed":
        mode: Literal["auto", "required"] = "required" if choice.get("mode") == "required" else "auto"
        return mark_pristine(
            ToolChoice(mode=mode, extra=split_known(choice, frozenset({"type", "mode"})), raw=choice)
        )
    if form == "chat":
        name = choice["function"].get("name")
        extra = split_known(choice, frozenset({"type", "function"}))
        return mark_pristine(
            ToolChoice(mode="tool", name=name if isinstance(name, str) else None, extra=extra, raw=choice)
        )
    if form == "named":
        name = choice.get("name")
        if not isinstance(name, str):
            label = choice.get("server_label")  # MCP: the tool name is optional, the server is not
            name = label if isinstance(label, str) else None
        extra = split_known(choice, frozenset({"type", "name"}))
        return mark_pristine(ToolChoice(mode="tool", name=name, extra=extra, raw=choice))
    return mark_pristine(
        ToolChoice(mode="tool", name=choice_type, extra=split_known(choice, _TYPE_ONLY), raw=choice)
    )


def decode_params(body: Mapping[str, Any]) -> GenerationParams:
    """The sampling and output parameters of a request (only keys present are checked)."""
    get = body.get
    temperature = get("temperature")
    if temperature is not None:
        temperature = optional_number(temperature, "$.temperature", CODEC)
    top_p = get("top_p")
    if top_p is not None:
        top_p = optional_number(top_p, "$.top_p", CODEC)
    max_tokens = get("max_output_tokens")
    if max_tokens is not None:
        max_tokens = optional_int(max_tokens, "$.max_output_tokens", CODEC)
    effort = None
    reasoning = get("reasoning")
    if reasoning is not None:
        effort = _str_or_none(
            _expect_mapping(reasoning, "$.reasoning", "reasoning").get("effort"), "$.reasoning.effort"
        )
    response_format = None
    text = get("text")
    if text is not None:
        response_format = _expect_mapping(text, "$.text", "text").get("format")
    return _new_params(
        temperature, top_p, None, max_tokens, None, None, None, None, None, response_format, effort
    )


def _decode_model(body: Mapping[str, Any], url: str | None) -> str | None:
    model = body.get("model")
    if isinstance(model, str):
        return model
    if model is None:
        return azure_deployment(url)
    return optional_str(model, "$.model", CODEC)  # raises with the path


def _decode_stream_flag(body: Mapping[str, Any]) -> bool:
    stream = body.get("stream")
    return stream is True or bool(optional_bool(stream, "$.stream", CODEC))


def _decode_optional_tool_choice(body: Mapping[str, Any]) -> ToolChoice | None:
    raw = body.get("tool_choice")
    return decode_tool_choice(raw, "$.tool_choice") if raw is not None else None


def _decode_system(body: Mapping[str, Any]) -> str | None:
    return _str_or_none(body.get("instructions"), "$.instructions")


def decode_request(request: Any, url: str | None) -> AnnotatedLlmRequest:
    """A whole Responses request body."""
    body = _expect_mapping(request, "$", "the request body")
    input_raw = body.get("input")
    messages: tuple[Message, ...] = ()
    if isinstance(input_raw, str):
        # A bare string is one user turn; it has no dict of its own, so it is never pristine.
        messages = (_new_plain_message("user", input_raw),)
    elif input_raw is not None:
        items = _expect_list(input_raw, "$.input", "input")
        messages = tuple([decode_item(item, f"$.input[{i}]") for i, item in enumerate(items)])
    tools_raw = body.get("tools")
    tools: tuple[ToolDefinition, ...] = ()
    if tools_raw is not None:
        listed = _expect_list(tools_raw, "$.tools", "tools")
        tools = tuple([decode_tool(tool, f"$.tools[{i}]") for i, tool in enumerate(listed)])
    return _new_request(
        _decode_model(body, url),
        _decode_stream_flag(body),
        _decode_system(body),
        messages,
        decode_params(body),
        tools,
        _decode_optional_tool_choice(body),
        None,
        "chat",
        split_known(body, _REQUEST_KEYS),
        body,
    )


# ----------------------------------------------------------------------------------------- encode


def _data_url(media_type: str | None, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def _redecode(decode: Callable[[Any, str], Any], raw: Any, path: str) -> Any:
    """Decode an object's ``raw`` again to learn what changed; ``None`` if it no longer decodes."""
    try:
        return decode(raw, path)
    except DecodeError:
        return None


def _same_part_kind(old: ContentPart | None, part: ContentPart) -> bool:
    if old is None or old.kind != part.kind:
        return False
    return not isinstance(part, OtherPart) or (isinstance(old, OtherPart) and old.type == part.type)


@encode_boundary(CODEC)
def encode_part(part: ContentPart, path: str, role: str) -> Any:
    """A content part in wire form: its original dict when untouched, else a merge over it."""
    if is_pristine(part):
        return part.raw
    raw = part.raw if isinstance(part.raw, Mapping) else None
    old: ContentPart | None = _redecode(decode_part, raw, path) if raw is not None else None
    same = raw is not None and _same_part_kind(old, part)
    out: dict[str, Any] = dict(raw) if (same and raw is not None) else {}
    old_extra = old.extra if (same and old is not None) else {}
    if isinstance(part, TextPart):
        previous = out.get("type")
        kind = previous if same and isinstance(previous, str) else None
        if kind is None:
            kind = "output_text" if role == "assistant" else "input_text"
        out["type"] = kind
        out["text"] = part.text
        if kind == "output_text" and not same and "annotations" not in part.extra:
            out["annotations"] = []
    elif isinstance(part, ImagePart):
        previous_image = old if same and isinstance(old, ImagePart) else None
        out["type"] = "input_image"
        url = part.url
        if url is None and part.data is not None:
            url = _data_url(part.media_type, part.data)
        if url is None and part.file_id is None:
            raise EncodeError("an image part needs a url, data or a file_id", path=path, codec=CODEC)
        merging = previous_image is not None
        write_if_changed(out, "image_url", url, previous_image.url if previous_image else None, merging)
        write_if_changed(
            out, "file_id", part.file_id, previous_image.file_id if previous_image else None, merging
        )
        detail = part.detail if merging or part.detail is not None else "auto"
        write_if_changed(out, "detail", detail, previous_image.detail if previous_image else None, merging)
    elif isinstance(part, FilePart):
        previous_file = old if same and isinstance(old, FilePart) else None
        merging = previous_file is not None
        out["type"] = "input_file"
        data = part.data
        if data is not None and not merging and part.media_type and not data.startswith("data:"):
            data = _data_url(part.media_type, data)
        write_if_changed(
            out, "file_id", part.file_id, previous_file.file_id if previous_file else None, merging
        )
        write_if_changed(out, "file_data", data, previous_file.data if previous_file else None, merging)
        write_if_changed(
            out, "filename", part.filename, previous_file.filename if previous_file else None, merging
        )
        write_if_changed(out, "file_url", part.url, previous_file.url if previous_file else None, merging)
    elif isinstance(part, AudioPart):
        out["type"] = "input_audio"
        previous = out.get("input_audio") if same else None
        audio: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
        set_or_pop(audio, "data", part.data)
        set_or_pop(audio, "format", part.format)
        out["input_audio"] = audio
    elif isinstance(part, RefusalPart):
        out["type"] = "refusal"
        out["refusal"] = part.refusal
    elif isinstance(part, OtherPart):
        out["type"] = part.type
    else:
        raise EncodeError(
            f"a {part.kind} part cannot be message content in the Responses API", path=path, codec=CODEC
        )
    apply_extra(out, part.extra, old_extra)
    return out


def _encode_parts(
    parts: tuple[ContentPart, ...], previous: Any, path: str, role: str
) -> tuple[list[Any], bool]:
    """Encode a tuple of parts; report whether the result differs from the wire list ``previous``."""
    if not isinstance(parts, tuple | list):
        raise EncodeError(f"expected a tuple, got {type(parts).__name__}", path=path, codec=CODEC)
    encoded = [encode_part(part, f"{path}[{i}]", role) for i, part in enumerate(parts)]
    if not isinstance(previous, list) or len(previous) != len(encoded):
        return encoded, True
    return encoded, any(new is not old for new, old in zip(encoded, previous, strict=True))


def _arguments_text(call: ToolCall, old: ToolCall | None, path: str) -> str:
    if old is not None and call.arguments != old.arguments:
        return dump_json(call.arguments, path, CODEC) if call.arguments is not None else "{}"
    if call.arguments_raw is not None:
        return call.arguments_raw
    return dump_json(call.arguments, path, CODEC) if call.arguments is not None else "{}"


def _custom_input(call: ToolCall, path: str) -> str:
    if call.arguments_raw is not None:
        return call.arguments_raw
    if isinstance(call.arguments, str):
        return call.arguments
    return dump_json(call.arguments, path, CODEC) if call.arguments is not None else ""


@encode_boundary(CODEC)
def encode_call(call: ToolCall, path: str) -> Any:
    """A tool call as a ``function_call`` / ``custom_tool_call`` item, merged over its original item."""
    if is_pristine(call):
        return call.raw
    kind = _CALL_ITEMS_BY_TOOL_TYPE.get(call.type)
    if kind is None:
        raise EncodeError(
            f"the Responses API has no client tool call of type {call.type!r}",
            path=f"{path}.type",
            codec=CODEC,
        )
    raw = call.raw if isinstance(call.raw, Mapping) and call.raw.get("type") == kind else None
    old: ToolCall | None = None
    if raw is not None:
        old = _redecode(lambda value, where: decode_call_item(value, kind, where), raw, path)
        if old is None:
            raw = None
    out: dict[str, Any] = dict(raw) if raw is not None else {"type": kind}
    if call.id is None and old is None:
        raise EncodeError("a tool call item needs an id (its call_id)", path=f"{path}.id", codec=CODEC)
    write_if_changed(out, "call_id", call.id, old.id if old else None, old is not None)
    write_if_changed(out, "name", call.name, old.name if old else None, old is not None)
    if kind == "function_call":
        if old is None or call.arguments != old.arguments or call.arguments_raw != old.arguments_raw:
            out["arguments"] = _arguments_text(call, old, f"{path}.arguments")
    elif old is None or call.arguments_raw != old.arguments_raw or call.arguments != old.arguments:
        out["input"] = _custom_input(call, f"{path}.input")
    apply_extra(out, call.extra, old.extra if old is not None else {})
    return out


@encode_boundary(CODEC)
def encode_reasoning(part: ReasoningPart, path: str) -> Any:
    """A :class:`ReasoningPart` as a ``reasoning`` item, merged over its original item."""
    if is_pristine(part):
        return part.raw
    raw = part.raw if isinstance(part.raw, Mapping) and part.raw.get("type") == "reasoning" else None
    old = _redecode(decode_reasoning_item, raw, path) if raw is not None else None
    if old is None:
        raw = None
    out: dict[str, Any] = dict(raw) if raw is not None else {"type": "reasoning", "summary": []}
    if old is None or part.text != old.text:
        source = reasoning_text_source(raw, path)[1] if raw is not None else "summary"
        if source == "summary":
            out["summary"] = [] if part.text is None else [{"type": "summary_text", "text": part.text}]
        else:
            out["content"] = [] if part.text is None else [{"type": "reasoning_text", "text": part.text}]
    write_if_changed(
        out, "encrypted_content", part.signature, old.signature if old else None, old is not None
    )
    apply_extra(out, part.extra, old.extra if old is not None else {})
    return out


@encode_boundary(CODEC)
def encode_other_item(part: OtherPart, path: str) -> Any:
    """An :class:`OtherPart` standing for a whole input item (a built-in tool call, a reference...)."""
    if is_pristine(part):
        return part.raw
    raw = part.raw if isinstance(part.raw, Mapping) else None
    same = False
    if raw is not None:
        try:
            same = item_type(raw, path) == part.type
        except DecodeError:
            same = False
    out: dict[str, Any] = dict(raw) if (same and raw is not None) else {}
    if not (same and raw is not None and "type" not in raw):  # item references may leave out the type
        out["type"] = part.type
    apply_extra(out, part.extra, split_known(raw, _TYPE_ONLY) if (same and raw is not None) else {})
    return out


def _encode_output(content: Any, previous: Any, path: str) -> tuple[Any, bool]:
    """A tool result's ``output``: a string, or a list of input parts."""
    if content is None:
        return "", not isinstance(previous, str) or previous != ""
    if isinstance(content, str):
        return content, not (isinstance(previous, str) and previous == content)
    return _encode_parts(content, previous, path, "user")


def _is_item_part(part: Any) -> bool:
    return isinstance(part, ReasoningPart | ToolResultPart) or (
        isinstance(part, OtherPart) and (part.type in _OTHER_ITEM_TYPES or part.type.endswith("_call"))
    )


def _no_content(content: Any) -> bool:
    return content is None or content == "" or content == ()


def _check_content(content: Any, path: str) -> None:
    if content is not None and not isinstance(content, str | tuple | list):
        raise EncodeError(
            f"content must be a string, a tuple of parts or None, got {type(content).__name__}",
            path=f"{path}.content",
            codec=CODEC,
        )


def _merge_message_item(message: Message, raw: Mapping[str, Any], old: Message, path: str) -> Any:
    if message.tool_calls or message.role == "tool" or message.tool_call_id is not None:
        return None
    content = message.content
    if isinstance(content, tuple | list) and any(_is_item_part(part) for part in content):
        return None
    if message.name is not None:
        raise EncodeError("Responses messages have no 'name'", path=f"{path}.name", codec=CODEC)
    out = dict(raw)
    if message.role != old.role:
        out["role"] = message.role
    if isinstance(content, tuple | list):
        parts, changed = _encode_parts(content, raw.get("content"), f"{path}.content", message.role)
        if changed or not isinstance(old.content, tuple):
            out["content"] = parts
    elif content != old.content or type(content) is not type(old.content):
        out["content"] = "" if content is None else content
    apply_extra(out, message.extra, old.extra)
    return out


def _merge_item(message: Message, raw: Mapping[str, Any], path: str) -> Any:
    """``message`` merged over the item it was decoded from, or ``None`` when it no longer fits that item."""
    old = _redecode(decode_item, raw, path)
    if old is None:
        return None
    kind = item_type(raw, path)
    if kind == "message":
        return _merge_message_item(message, raw, old, path)
    if kind in CALL_ITEM_TYPES:
        calls = message.tool_calls
        if (
            message.role != "assistant"
            or not _no_content(message.content)
            or len(calls) != 1
            or message.tool_call_id is not None
            or calls[0].type != CALL_ITEM_TYPES[kind]
        ):
            return None
        out = encode_call(calls[0], path)
        if message.extra:
            out = dict(out)
            apply_extra(out, message.extra, {})
        return out
    if kind in OUTPUT_ITEM_TYPES:
        content = message.content
        if message.role != "tool" or message.tool_calls:
            return None
        if isinstance(content, tuple | list) and any(_is_item_part(part) for part in content):
            return None
        out = dict(raw)
        output, changed = _encode_output(message.content, raw.get("output"), f"{path}.output")
        if changed and not (message.content is None and old.content is None):
            out["output"] = output
        write_if_changed(out, "call_id", message.tool_call_id, old.tool_call_id, True)
        write_if_changed(out, "name", message.name, old.name, True)
        apply_extra(out, message.extra, old.extra)
        return out
    content = message.content
    if message.tool_calls or not isinstance(content, tuple | list) or len(content) != 1:
        return None
    (part,) = content
    if kind == "reasoning":
        if not isinstance(part, ReasoningPart) or message.role != "assistant":
            return None
        out = encode_reasoning(part, f"{path}")
    elif isinstance(part, OtherPart) and part.type == kind:
        out = encode_other_item(part, path)
        if message.tool_call_id != old.tool_call_id:
            out = dict(out)
            set_or_pop(out, "call_id", message.tool_call_id)
    else:
        return None
    if message.extra:
        out = dict(out)
        apply_extra(out, message.extra, {})
    return out


def _tool_result_item(part: ToolResultPart, path: str) -> dict[str, Any]:
    if part.tool_call_id is None:
        raise EncodeError("a tool result needs the id of its call", path=f"{path}.tool_call_id", codec=CODEC)
    content = part.content
    output: Any
    if content is None or isinstance(content, str):
        output = content or ""
    elif isinstance(content, tuple | list):
        output = _encode_parts(tuple(content), None, f"{path}.content", "user")[0]
    else:
        output = dump_json(content, f"{path}.content", CODEC)
    out: dict[str, Any] = {"type": "function_call_output", "call_id": part.tool_call_id, "output": output}
    if part.name is not None:
        out["name"] = part.name
    apply_extra(out, part.extra, {})
    return out


def _fresh_items(message: Message, path: str) -> list[Any]:
    """``message`` written fresh: one item, or several when it holds calls, reasoning, results or built-ins.

    Content parts go to a message item (a ``function_call_output`` item for the ``tool`` role); reasoning
    parts, tool results and built-in items become items of their own, in order; tool calls follow.
    """
    role = message.role
    if not isinstance(role, str):
        raise EncodeError("a message needs a string role", path=f"{path}.role", codec=CODEC)
    is_tool = role == "tool"
    if message.name is not None and not is_tool:
        raise EncodeError("Responses messages have no 'name'", path=f"{path}.name", codec=CODEC)
    calls = message.tool_calls
    if not isinstance(calls, tuple | list):
        raise EncodeError("tool_calls must be a tuple", path=f"{path}.tool_calls", codec=CODEC)
    if is_tool and calls:
        raise EncodeError("a tool message cannot make tool calls", path=f"{path}.tool_calls", codec=CODEC)

    def container(body: Any) -> dict[str, Any]:
        if not is_tool:
            return {"role": role, "content": body}
        if message.tool_call_id is None:
            raise EncodeError(
                "a tool message needs the id of its call", path=f"{path}.tool_call_id", codec=CODEC
            )
        item: dict[str, Any] = {
            "type": "function_call_output",
            "call_id": message.tool_call_id,
            "output": body,
        }
        if message.name is not None:
            item["name"] = message.name
        return item

    items: list[Any] = []
    anchor: dict[str, Any] | None = None  # the item carrying the message's own unknown keys
    content = message.content
    if isinstance(content, str):
        anchor = container(content)
        items.append(anchor)
    elif isinstance(content, tuple | list):
        pending: list[Any] = []
        part_role = "user" if is_tool else role
        for i, part in enumerate(content):
            where = f"{path}.content[{i}]"
            if not _is_item_part(part):
                pending.append(encode_part(part, where, part_role))
                continue
            if pending:
                items.append(container(list(pending)))
                anchor = anchor or items[-1]
                pending.clear()
            if isinstance(part, ReasoningPart):
                items.append(encode_reasoning(part, where))
            elif isinstance(part, ToolResultPart):
                items.append(_tool_result_item(part, where))
            elif isinstance(part, OtherPart):
                items.append(encode_other_item(part, where))
        if pending:
            items.append(container(pending))
            anchor = anchor or items[-1]
    for i, call in enumerate(calls):
        items.append(encode_call(call, f"{path}.tool_calls[{i}]"))
    if not items:
        anchor = container("")
        items.append(anchor)
    if message.extra:
        if anchor is None:  # no message item: the unknown keys ride on the first item written
            anchor = dict(items[0])
            items[0] = anchor
        apply_extra(anchor, message.extra, {})
    return items


@encode_boundary(CODEC)
def encode_message(message: Message, path: str) -> list[Any]:
    """A message as input items: its original item when untouched, else a merge, else fresh items."""
    if is_pristine(message):
        return [message.raw]
    _check_content(message.content, path)
    raw = message.raw if isinstance(message.raw, Mapping) else None
    if raw is not None:
        merged = _merge_item(message, raw, path)
        if merged is not None:
            return [merged]
    return _fresh_items(message, path)


def _encode_items(messages: tuple[Message, ...], previous: Any) -> tuple[list[Any], bool]:
    """Encode every message; report whether the item list differs from the wire list ``previous``."""
    if not isinstance(messages, tuple | list):
        raise EncodeError(f"expected a tuple, got {type(messages).__name__}", path="$.messages", codec=CODEC)
    items: list[Any] = []
    for i, message in enumerate(messages):
        items.extend(encode_message(message, f"$.input[{i}]"))
    if not isinstance(previous, list) or len(previous) != len(items):
        return items, True
    return items, any(new is not old for new, old in zip(items, previous, strict=True))


@encode_boundary(CODEC)
def encode_tool(tool: ToolDefinition, path: str) -> Any:
    """A tool definition in wire form (flat function tools for new ones; the original form kept)."""
    if is_pristine(tool):
        return tool.raw
    raw = tool.raw if isinstance(tool.raw, Mapping) else None
    old = _redecode(decode_tool, raw, path) if raw is not None else None
    same = old is not None and old.type == tool.type
    out: dict[str, Any] = dict(raw) if (same and raw is not None) else {}
    old_extra = old.extra if (same and old is not None) else {}
    merging = same and old is not None
    out["type"] = tool.type
    if tool.type == "function":
        nested = out.get("function")
        if merging and isinstance(nested, Mapping) and "name" not in out:  # Chat-style, as sent
            function: dict[str, Any] = dict(nested)
            target = function
        else:
            target = out
        target["name"] = tool.name
        write_if_changed(target, "description", tool.description, old.description if old else None, merging)
        write_if_changed(target, "parameters", tool.parameters, old.parameters if old else None, merging)
        write_if_changed(target, "strict", tool.strict, old.strict if old else None, merging)
        apply_extra(target, tool.extra, old_extra)
        if target is not out:
            out["function"] = target
    elif tool.type == "custom":
        out["name"] = tool.name
        write_if_changed(out, "description", tool.description, old.description if old else None, merging)
        apply_extra(out, tool.extra, old_extra)
    else:  # built-in tools are their type and settings; the name is only a label
        apply_extra(out, tool.extra, old_extra)
    return out


@encode_boundary(CODEC)
def encode_tool_choice(choice: ToolChoice, path: str = "$.tool_choice") -> Any:
    """``tool_choice`` in wire form, merged over the original value."""
    if is_pristine(choice):
        return choice.raw
    previous = choice.raw if isinstance(choice.raw, Mapping) else None
    old = _redecode(decode_tool_choice, previous, path) if previous is not None else None
    if old is None:
        previous = None
    old_extra = old.extra if old is not None else {}
    if choice.mode == "tool":
        if previous is not None and old is not None and old.mode == "tool":
            form = _choice_form(previous)
            out = dict(previous)
            renamed = choice.name != old.name
            if renamed and not choice.name:
                raise EncodeError("tool_choice mode 'tool' needs a tool name", path=path, codec=CODEC)
            if renamed and form == "chat":
                out["function"] = {**out["function"], "name": choice.name}
            elif renamed and form == "named":
                out["name"] = choice.name
            elif renamed:  # a built-in type swapped for a named function
                out = {"type": "function", "name": choice.name}
            apply_extra(out, choice.extra, old_extra)
            return out
        if not choice.name:
            raise EncodeError("tool_choice mode 'tool' needs a tool name", path=path, codec=CODEC)
        out = {"type": "function", "name": choice.name}
        apply_extra(out, choice.extra, {})
        return out
    if choice.mode != "none" and previous is not None and previous.get("type") == "allowed_tools":
        out = dict(previous)
        if old is None or choice.mode != old.mode:
            out["mode"] = choice.mode
        apply_extra(out, choice.extra, old_extra)
        return out
    if choice.mode != "none" and previous is None and "tools" in choice.extra:
        out = {"type": "allowed_tools", "mode": choice.mode}
        apply_extra(out, choice.extra, {})
        return out
    if isinstance(choice.raw, str) and _TOOL_CHOICE_MODES.get(choice.raw, "auto") == choice.mode:
        return choice.raw  # an unknown mode string decodes as auto; keep it as sent
    return choice.mode


def _native_format(value: Any) -> Any:
    """A response format in the Responses form: Chat's nested ``json_schema`` object is flattened."""
    if isinstance(value, Mapping) and value.get("type") == "json_schema":
        inner = value.get("json_schema")
        if isinstance(inner, Mapping):
            rest = {key: item for key, item in value.items() if key not in ("type", "json_schema")}
            return {"type": "json_schema", **inner, **rest}
    return value


def _write_wrapped(
    out: dict[str, Any], original: Mapping[str, Any], wrapper: str, key: str, value: Any
) -> None:
    """Set (or remove) ``key`` inside the ``wrapper`` object, keeping the wrapper's other keys."""
    base = original.get(wrapper)
    inner: dict[str, Any] = dict(base) if isinstance(base, Mapping) else {}
    set_or_pop(inner, key, value)
    if inner:
        out[wrapper] = inner
    else:
        out.pop(wrapper, None)


_UNSUPPORTED_PARAMS = (
    "top_k", "stop", "seed", "n", "presence_penalty", "frequency_penalty", "dimensions", "encoding_format",
)  # fmt: skip


def encode_params(
    out: dict[str, Any], params: GenerationParams, old: GenerationParams, original: Mapping[str, Any]
) -> None:
    """Write the parameters that differ from ``old``."""
    if params is old:
        return
    if not json_equal(params.temperature, old.temperature):
        set_or_pop(out, "temperature", params.temperature)
    if not json_equal(params.top_p, old.top_p):
        set_or_pop(out, "top_p", params.top_p)
    if not json_equal(params.max_tokens, old.max_tokens):
        set_or_pop(out, "max_output_tokens", params.max_tokens)
    if not json_equal(params.reasoning_effort, old.reasoning_effort):
        _write_wrapped(out, original, "reasoning", "effort", params.reasoning_effort)
    if not json_equal(params.response_format, old.response_format):
        _write_wrapped(out, original, "text", "format", _native_format(params.response_format))
    for name in _UNSUPPORTED_PARAMS:
        if not json_equal(getattr(params, name), getattr(old, name)):
            raise EncodeError(f"Responses requests have no '{name}'", path=f"$.{name}", codec=CODEC)


def encode_request(
    annotated: AnnotatedLlmRequest, original: Mapping[str, Any], url: str | None
) -> Mapping[str, Any]:
    """Merge ``annotated`` over ``original``; ``original`` itself comes back when nothing changed.

    The Responses API always reports usage in its final event, so nothing is injected for streams.
    """
    if not isinstance(original, Mapping):
        raise EncodeError("the original request must be a JSON object", path="$", codec=CODEC)
    if is_pristine(annotated) and annotated.raw is original:
        return original
    return _merge_request(annotated, "$", original, url)


def _string_input(items: list[Any]) -> str | None:
    """The text of an item list that is exactly one plain user message with string content."""
    if len(items) != 1:
        return None
    item = items[0]
    if (
        isinstance(item, Mapping)
        and item.keys() == {"role", "content"}
        and item["role"] == "user"
        and isinstance(item["content"], str)
    ):
        return str(item["content"])
    return None


@encode_boundary(CODEC)
def _merge_request(
    annotated: AnnotatedLlmRequest, path: str, original: Mapping[str, Any], url: str | None
) -> Mapping[str, Any]:
    # The baseline is decoded shallowly: items and tools are compared by identity with the wire lists
    # (pristine objects encode to their own raw dicts), so the original is never decoded twice.
    try:
        old_model = _decode_model(original, url)
        old_stream = _decode_stream_flag(original)
        old_system = _decode_system(original)
        old_params = decode_params(original)
        old_tool_choice = _decode_optional_tool_choice(original)
    except (DecodeError, AttributeError, TypeError) as exc:
        raise EncodeError(f"the original request does not decode: {exc}", path="$", codec=CODEC) from exc
    if annotated.operation != "chat" or annotated.inputs is not None:
        raise EncodeError("openai-responses encodes model responses only", path="$", codec=CODEC)
    out = dict(original)
    if annotated.model != old_model:
        set_or_pop(out, "model", annotated.model)
    if annotated.stream != old_stream:
        if annotated.stream or "stream" in out:
            out["stream"] = annotated.stream
        if not annotated.stream:
            out.pop("stream_options", None)  # only valid together with stream: true
    if annotated.system != old_system:
        set_or_pop(out, "instructions", annotated.system)
    wire_input = original.get("input")
    items, changed = _encode_items(annotated.messages, wire_input)
    if changed:
        text = _string_input(items) if isinstance(wire_input, str) else None
        if text is not None:
            out["input"] = text
        elif items or (wire_input is not None and "input" in original):
            out["input"] = items
    encode_params(out, annotated.params, old_params, original)
    tools = annotated.tools
    if not isinstance(tools, tuple | list):
        raise EncodeError(f"expected a tuple, got {type(tools).__name__}", path="$.tools", codec=CODEC)
    wire_tools = original.get("tools")
    encoded_tools = [encode_tool(tool, f"$.tools[{i}]") for i, tool in enumerate(tools)]
    tools_changed = not isinstance(wire_tools, list) or len(wire_tools) != len(encoded_tools)
    tools_changed = tools_changed or any(
        a is not b for a, b in zip(encoded_tools, wire_tools or (), strict=False)
    )
    if tools_changed and (encoded_tools or "tools" in original):
        if encoded_tools:
            out["tools"] = encoded_tools
        elif wire_tools:
            # Without tools, a tool_choice or parallel_tool_calls setting no longer means anything.
            out.pop("tools", None)
            if annotated.tool_choice == old_tool_choice:
                out.pop("tool_choice", None)
            out.pop("parallel_tool_calls", None)
    if annotated.tool_choice is None:
        if old_tool_choice is not None:
            out.pop("tool_choice", None)
    elif not (
        is_pristine(annotated.tool_choice) and annotated.tool_choice.raw is original.get("tool_choice")
    ):
        choice = encode_tool_choice(annotated.tool_choice, "$.tool_choice")
        if not json_equal(choice, original.get("tool_choice")):
            out["tool_choice"] = choice
    apply_extra(out, annotated.extra, split_known(original, _REQUEST_KEYS))
    return original if json_equal(out, original) else out
