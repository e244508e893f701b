"""Chat Completions requests: wire JSON ↔ :class:`~nemoflow.AnnotatedLlmRequest`.

Wire reference: OpenAI API reference, "Create chat completion" (request body), which OpenAI-compatible
servers (vLLM, Ollama, LM Studio, llama.cpp, OpenRouter, Azure OpenAI) accept as well.

Encode is a merge: an object still pristine (untouched since decode) is written back as its original dict;
an edited one is its original dict with only the changed fields rewritten; a new one is written fresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

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
    RefusalPart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
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

CODEC = "openai-chat"
SYSTEM_ROLES = frozenset({"system", "developer"})

_REQUEST_KEYS = frozenset(
    {
        "model", "messages", "stream", "temperature", "top_p", "top_k", "max_tokens",
        "max_completion_tokens", "stop", "seed", "n", "presence_penalty", "frequency_penalty",
        "response_format", "reasoning_effort", "tools", "tool_choice",
    }
)  # fmt: skip
_MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})
_TOOL_CALL_KEYS = frozenset({"id", "type", "function"})
_TOOL_KEYS = frozenset({"type", "function"})
_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})

# Decoding builds one object per message, part, tool and call: these take the init fields positionally
# and flag the result pristine (see nemoflow.codec_support.constructor).
_new_message = constructor(Message, pristine=True)
_new_text_part = constructor(TextPart, pristine=True)
_new_tool_call = constructor(ToolCall, pristine=True)
_new_tool = constructor(ToolDefinition, pristine=True)
_new_request = constructor(AnnotatedLlmRequest, pristine=True)
_new_params = constructor(GenerationParams, pristine=False)
_TEXT_PART_KEYS = frozenset({"type", "text"})

# ----------------------------------------------------------------------------------------- decode


def _expect_mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    return expect_object(value, path, what, CODEC)


def _expect_list(value: Any, path: str, what: str) -> Sequence[Any]:
    return expect_array(value, path, what, CODEC)


def parse_arguments(value: Any, path: str, codec: str = CODEC) -> tuple[Any, str | None]:
    """Tool-call arguments as ``(parsed, raw string)``; malformed JSON gives ``(None, raw)``."""
    if value is None:
        return None, None
    if isinstance(value, str):
        try:
            return orjson.loads(value), value
        except orjson.JSONDecodeError:
            return None, value
    if isinstance(value, Mapping):
        # Some OpenAI-compatible servers (Ollama) send the arguments as an object.
        return value, None
    raise DecodeError(
        f"tool arguments must be a string or an object, got {type(value).__name__}", path=path, codec=codec
    )


def _media_type_of_data_url(url: str) -> str | None:
    if not url.startswith("data:"):
        return None
    end = url.find(";")
    comma = url.find(",")
    if end == -1 or (comma != -1 and comma < end):
        end = comma
    return url[5:end] or None if end != -1 else None


def decode_part(raw: Any, path: str) -> ContentPart:
    """One content part of a message."""
    part = _expect_mapping(raw, path, "a content part")
    part_type = part.get("type")
    if not isinstance(part_type, str):
        raise DecodeError("content part has no string 'type'", path=f"{path}.type", codec=CODEC)
    result: ContentPart
    if part_type == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise DecodeError("text part needs a string 'text'", path=f"{path}.text", codec=CODEC)
        return _new_text_part(text, "text", split_known(part, _TEXT_PART_KEYS), part)
    elif part_type == "image_url":
        image = part.get("image_url")
        if isinstance(image, str):  # some compatible servers accept the bare URL
            url: str | None = image
            detail = None
        else:
            image = _expect_mapping(image, f"{path}.image_url", "image_url")
            url = optional_str(image.get("url"), f"{path}.image_url.url", CODEC)
            detail = optional_str(image.get("detail"), f"{path}.image_url.detail", CODEC)
        result = ImagePart(
            url=url,
            detail=detail,
            media_type=_media_type_of_data_url(url) if url else None,
            extra=split_known(part, frozenset({"type", "image_url"})),
            raw=part,
        )
    elif part_type == "input_audio":
        audio = _expect_mapping(part.get("input_audio"), f"{path}.input_audio", "input_audio")
        result = AudioPart(
            data=optional_str(audio.get("data"), f"{path}.input_audio.data", CODEC),
            format=optional_str(audio.get("format"), f"{path}.input_audio.format", CODEC),
            extra=split_known(part, frozenset({"type", "input_audio"})),
            raw=part,
        )
    elif part_type == "file":
        file = _expect_mapping(part.get("file"), f"{path}.file", "file")
        data = optional_str(file.get("file_data"), f"{path}.file.file_data", CODEC)
        result = FilePart(
            file_id=optional_str(file.get("file_id"), f"{path}.file.file_id", CODEC),
            data=data,
            filename=optional_str(file.get("filename"), f"{path}.file.filename", CODEC),
            media_type=_media_type_of_data_url(data) if data else None,
            extra=split_known(part, frozenset({"type", "file"})),
            raw=part,
        )
    elif part_type == "refusal":
        refusal = part.get("refusal")
        if not isinstance(refusal, str):
            raise DecodeError("refusal part needs a string 'refusal'", path=f"{path}.refusal", codec=CODEC)
        result = RefusalPart(
            refusal=refusal, extra=split_known(part, frozenset({"type", "refusal"})), raw=part
        )
    else:
        result = OtherPart(type=part_type, extra=split_known(part, frozenset({"type"})), raw=part)
    return mark_pristine(result)


def decode_tool_call(raw: Any, path: str) -> ToolCall:
    """One entry of an assistant message's ``tool_calls``."""
    call = _expect_mapping(raw, path, "a tool call")
    call_type = optional_str(call.get("type"), f"{path}.type", CODEC) or "function"
    body = call.get(call_type) if call_type != "function" else call.get("function")
    body = _expect_mapping(body if body is not None else {}, f"{path}.{call_type}", call_type)
    name = optional_str(body.get("name"), f"{path}.{call_type}.name", CODEC) or ""
    if call_type == "function":
        arguments, arguments_raw = parse_arguments(body.get("arguments"), f"{path}.function.arguments")
    else:  # custom tools carry free-form text input
        arguments, arguments_raw = None, optional_str(body.get("input"), f"{path}.{call_type}.input", CODEC)
    call_id = call.get("id")
    if call_id is not None and not isinstance(call_id, str):
        optional_str(call_id, f"{path}.id", CODEC)  # raises with the path
    known = _TOOL_CALL_KEYS if call_type == "function" else frozenset({"id", "type", call_type})
    extra = split_known(call, known)
    return _new_tool_call(call_id, name, arguments, arguments_raw, call_type, extra, call)


def decode_message(raw: Any, path: str) -> Message:
    """One message of ``messages``."""
    message = _expect_mapping(raw, path, "a message")
    get = message.get
    role = get("role")
    if not isinstance(role, str):
        raise DecodeError("message needs a string 'role'", path=f"{path}.role", codec=CODEC)
    content_raw = get("content")
    content: str | tuple[ContentPart, ...] | None
    if content_raw is None or isinstance(content_raw, str):
        content = content_raw
    else:
        parts = _expect_list(content_raw, f"{path}.content", "content")
        content = tuple([decode_part(part, f"{path}.content[{i}]") for i, part in enumerate(parts)])
    calls_raw = get("tool_calls")
    tool_calls: tuple[ToolCall, ...] = ()
    if calls_raw is not None:
        calls = _expect_list(calls_raw, f"{path}.tool_calls", "tool_calls")
        tool_calls = tuple(
            [decode_tool_call(call, f"{path}.tool_calls[{i}]") for i, call in enumerate(calls)]
        )
    name = get("name")
    if name is not None and not isinstance(name, str):
        optional_str(name, f"{path}.name", CODEC)  # raises with the path
    tool_call_id = get("tool_call_id")
    if tool_call_id is not None and not isinstance(tool_call_id, str):
        optional_str(tool_call_id, f"{path}.tool_call_id", CODEC)  # raises with the path
    extra = split_known(message, _MESSAGE_KEYS)
    return _new_message(role, content, name, tool_calls, tool_call_id, extra, message)


def decode_tool(raw: Any, path: str) -> ToolDefinition:
    """One entry of ``tools`` (function tools, and other types kept as they are)."""
    tool = _expect_mapping(raw, path, "a tool")
    tool_type = optional_str(tool.get("type"), f"{path}.type", CODEC) or "function"
    if tool_type == "function":
        function = _expect_mapping(tool.get("function"), f"{path}.function", "function")
        name = function.get("name")
        if not isinstance(name, str):
            raise DecodeError(
                "function tool needs a string 'name'", path=f"{path}.function.name", codec=CODEC
            )
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            optional_str(description, f"{path}.function.description", CODEC)  # raises with the path
        strict = function.get("strict")
        if strict is not None and not isinstance(strict, bool):
            optional_bool(strict, f"{path}.function.strict", CODEC)  # raises with the path
        extra = split_known(function, _FUNCTION_KEYS)
        return _new_tool(name, description, function.get("parameters"), strict, "function", extra, tool)
    else:
        body = tool.get(tool_type)
        name = body.get("name") if isinstance(body, Mapping) else None
        description = body.get("description") if isinstance(body, Mapping) else None
        result = ToolDefinition(
            name=name if isinstance(name, str) else tool_type,
            description=description if isinstance(description, str) else None,
            type=tool_type,
            extra=split_known(tool, frozenset({"type"})),
            raw=tool,
        )
    return mark_pristine(result)


_TOOL_CHOICE_MODES: dict[str, Literal["auto", "none", "required"]] = {
    "auto": "auto",
    "none": "none",
    "required": "required",
}


def decode_tool_choice(raw: Any, path: str) -> ToolChoice:
    """``tool_choice``: a mode string or an object naming a tool."""
    if isinstance(raw, str):
        # Unknown mode strings (some compatible servers accept more) are kept through ``raw``.
        return mark_pristine(ToolChoice(mode=_TOOL_CHOICE_MODES.get(raw, "auto"), raw=raw))
    choice = _expect_mapping(raw, path, "tool_choice")
    choice_type = optional_str(choice.get("type"), f"{path}.type", CODEC)
    if choice_type == "allowed_tools":
        allowed = choice.get("allowed_tools")
        inner = allowed.get("mode") if isinstance(allowed, Mapping) else None
        mode: Literal["auto", "required"] = "required" if inner == "required" else "auto"
        return mark_pristine(
            ToolChoice(mode=mode, extra=split_known(choice, frozenset({"type"})), raw=choice)
        )
    body = choice.get(choice_type or "function")
    name = body.get("name") if isinstance(body, Mapping) else None
    return mark_pristine(
        ToolChoice(
            mode="tool",
            name=name if isinstance(name, str) else None,
            extra=split_known(choice, frozenset({"type", choice_type or "function"})),
            raw=choice,
        )
    )


def decode_stop(value: Any, path: str) -> tuple[str, ...] | None:
    """``stop``: a string, a list of strings, or null."""
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    items = _expect_list(value, path, "stop")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise DecodeError("stop sequences must be strings", path=f"{path}[{i}]", codec=CODEC)
    return tuple(items)


_NUMBER_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INT_PARAMS = ("top_k", "seed", "n")


def decode_params(request: Mapping[str, Any]) -> GenerationParams:
    """The sampling and output parameters of a request (only keys present are checked)."""
    get = request.get
    numbers = [get(key) for key in _NUMBER_PARAMS]
    for position, value in enumerate(numbers):
        if value is not None:
            numbers[position] = optional_number(value, f"$.{_NUMBER_PARAMS[position]}", CODEC)
    integers = [get(key) for key in _INT_PARAMS]
    for position, value in enumerate(integers):
        if value is not None:
            integers[position] = optional_int(value, f"$.{_INT_PARAMS[position]}", CODEC)
    max_tokens = get("max_completion_tokens")
    if max_tokens is not None:
        max_tokens = optional_int(max_tokens, "$.max_completion_tokens", CODEC)
    else:
        max_tokens = get("max_tokens")
        if max_tokens is not None:
            max_tokens = optional_int(max_tokens, "$.max_tokens", CODEC)
    stop = get("stop")
    reasoning_effort = get("reasoning_effort")
    if reasoning_effort is not None and not isinstance(reasoning_effort, str):
        optional_str(reasoning_effort, "$.reasoning_effort", CODEC)  # raises with the path
    temperature, top_p, presence_penalty, frequency_penalty = numbers
    top_k, seed, n = integers
    return _new_params(
        temperature,
        top_p,
        top_k,
        max_tokens,
        decode_stop(stop, "$.stop") if stop is not None else None,
        seed,
        n,
        presence_penalty,
        frequency_penalty,
        get("response_format"),
        reasoning_effort,
    )


def system_text(messages: Sequence[Message]) -> str | None:
    """Normalized system text: the leading system/developer messages' text, joined by blank lines."""
    texts: list[str] = []
    for message in messages:
        if message.role not in SYSTEM_ROLES:
            break
        texts.append(message.text)
    return "\n\n".join(texts) if texts else None


def azure_deployment(url: str | None) -> str | None:
    """The deployment named in an Azure OpenAI URL (``/openai/deployments/{name}/...``), if any."""
    if not url:
        return None
    marker = "/openai/deployments/"
    start = url.find(marker)
    if start == -1:
        return None
    start += len(marker)
    end = url.find("/", start)
    return url[start:end] if end != -1 else None


def _decode_model(body: Mapping[str, Any], url: str | None) -> str | None:
    model = body.get("model")
    if isinstance(model, str):
        return model
    if model is None:
        return azure_deployment(url)
    return optional_str(model, "$.model", CODEC)  # raises with the path


def _decode_stream_flag(body: Mapping[str, Any]) -> bool:
    return optional_bool(body.get("stream"), "$.stream", CODEC) or False


def _decode_optional_tool_choice(body: Mapping[str, Any]) -> ToolChoice | None:
    raw = body.get("tool_choice")
    return decode_tool_choice(raw, "$.tool_choice") if raw is not None else None


def decode_request(request: Any, url: str | None) -> AnnotatedLlmRequest:
    """A whole Chat Completions request body."""
    body = _expect_mapping(request, "$", "the request body")
    messages_raw = body.get("messages")
    messages: tuple[Message, ...] = ()
    if messages_raw is not None:
        items = _expect_list(messages_raw, "$.messages", "messages")
        messages = tuple([decode_message(item, f"$.messages[{i}]") for i, item in enumerate(items)])
    tools_raw = body.get("tools")
    tools: tuple[ToolDefinition, ...] = ()
    if tools_raw is not None:
        items = _expect_list(tools_raw, "$.tools", "tools")
        tools = tuple([decode_tool(item, f"$.tools[{i}]") for i, item in enumerate(items)])
    return _new_request(
        _decode_model(body, url),
        _decode_stream_flag(body),
        system_text(messages),
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


@encode_boundary(CODEC)
def encode_part(part: ContentPart, path: str) -> Any:
    """A content part in wire form: its original dict when untouched, else a merge over it."""
    if is_pristine(part):
        return part.raw
    raw = part.raw or {}
    old: ContentPart | None = decode_part(raw, path) if part.raw is not None else None
    same_type = (
        old is not None
        and old.kind == part.kind
        and (not isinstance(part, OtherPart) or (isinstance(old, OtherPart) and old.type == part.type))
    )
    out: dict[str, Any] = dict(raw) if same_type else {}
    old_extra = old.extra if (same_type and old is not None) else {}
    if isinstance(part, TextPart):
        out["type"] = "text"
        out["text"] = part.text
    elif isinstance(part, ImagePart):
        out["type"] = "image_url"
        previous = raw.get("image_url") if same_type else None
        image: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
        url = part.url
        if url is None and part.data is not None:
            url = _data_url(part.media_type, part.data)
        if url is None:
            raise EncodeError("an image part needs a url or data", path=path, codec=CODEC)
        if isinstance(previous, str) and part.detail is None:
            out["image_url"] = url  # keep the bare-URL form the caller used
        else:
            image["url"] = url
            set_or_pop(image, "detail", part.detail)
            out["image_url"] = image
    elif isinstance(part, AudioPart):
        out["type"] = "input_audio"
        previous = raw.get("input_audio") if same_type else None
        audio: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
        set_or_pop(audio, "data", part.data)
        set_or_pop(audio, "format", part.format)
        out["input_audio"] = audio
    elif isinstance(part, FilePart):
        out["type"] = "file"
        previous = raw.get("file") if same_type else None
        file: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
        set_or_pop(file, "file_id", part.file_id)
        data = part.data
        if data is not None and not data.startswith("data:") and part.media_type and not same_type:
            data = _data_url(part.media_type, data)
        set_or_pop(file, "file_data", data)
        set_or_pop(file, "filename", part.filename)
        out["file"] = file
    elif isinstance(part, RefusalPart):
        out["type"] = "refusal"
        out["refusal"] = part.refusal
    elif isinstance(part, OtherPart):
        out["type"] = part.type
    else:
        # Chat Completions carries tool results as ``tool`` messages and has no reasoning part.
        raise EncodeError(
            f"openai-chat messages have no {part.kind!r} content part (send tool results as 'tool' messages)",
            path=path,
            codec=CODEC,
        )
    apply_extra(out, part.extra, old_extra)
    return out


def _arguments_text(call: ToolCall, old: ToolCall | None) -> str:
    if old is not None:
        if call.arguments != old.arguments:
            return dump_json(call.arguments, "$", CODEC) if call.arguments is not None else "{}"
        if call.arguments_raw is not None:
            return call.arguments_raw
    if call.arguments_raw is not None:
        return call.arguments_raw
    return dump_json(call.arguments, "$", CODEC) if call.arguments is not None else "{}"


@encode_boundary(CODEC)
def encode_tool_call(call: ToolCall, path: str) -> Any:
    """A tool call in wire form."""
    if is_pristine(call):
        return call.raw
    old = decode_tool_call(call.raw, path) if call.raw is not None else None
    same_type = old is not None and old.type == call.type
    out: dict[str, Any] = dict(call.raw) if (same_type and call.raw is not None) else {}
    write_if_changed(out, "id", call.id, old.id if old is not None else None, same_type)
    out["type"] = call.type
    previous = out.get(call.type)
    body: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
    body["name"] = call.name
    if call.type == "function":
        if (
            old is None
            or not same_type
            or call.arguments != old.arguments
            or (call.arguments_raw != old.arguments_raw)
        ):
            body["arguments"] = _arguments_text(call, old if same_type else None)
    else:
        set_or_pop(body, "input", call.arguments_raw)
    out[call.type] = body
    apply_extra(out, call.extra, old.extra if (same_type and old is not None) else {})
    return out


@encode_boundary(CODEC)
def encode_message(message: Message, path: str) -> Any:
    """A message in wire form."""
    if is_pristine(message):
        return message.raw
    old = decode_message(message.raw, path) if message.raw is not None else None
    out: dict[str, Any] = dict(message.raw) if message.raw is not None else {}
    out["role"] = message.role
    raw = message.raw or {}
    if isinstance(message.content, tuple | list):
        # Parts are compared by identity with the wire list: ``==`` would miss edits such as true → 1.
        parts, changed = _encode_sequence(message.content, raw.get("content"), encode_part, f"{path}.content")
        if changed or old is None:
            out["content"] = parts
    elif old is None or message.content != old.content or type(message.content) is not type(old.content):
        if message.content is not None or "content" in out or message.role != "assistant":
            out["content"] = message.content
    write_if_changed(out, "name", message.name, old.name if old else None, old is not None)
    calls, changed = _encode_sequence(
        message.tool_calls, raw.get("tool_calls"), encode_tool_call, f"{path}.tool_calls"
    )
    if changed and calls:
        out["tool_calls"] = calls
    elif changed and raw.get("tool_calls"):  # every call removed; an explicit null or [] stays as sent
        out.pop("tool_calls", None)
    write_if_changed(
        out, "tool_call_id", message.tool_call_id, old.tool_call_id if old else None, old is not None
    )
    apply_extra(out, message.extra, old.extra if old is not None else {})
    return out


@encode_boundary(CODEC)
def encode_tool(tool: ToolDefinition, path: str) -> Any:
    """A tool definition in wire form."""
    if is_pristine(tool):
        return tool.raw
    old = decode_tool(tool.raw, path) if tool.raw is not None else None
    same_type = old is not None and old.type == tool.type
    out: dict[str, Any] = dict(tool.raw) if (same_type and tool.raw is not None) else {}
    old_extra = old.extra if (same_type and old is not None) else {}
    out["type"] = tool.type
    if tool.type == "function":
        previous = out.get("function")
        function: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
        function["name"] = tool.name
        merging = same_type and old is not None
        write_if_changed(function, "description", tool.description, old.description if old else None, merging)
        write_if_changed(function, "parameters", tool.parameters, old.parameters if old else None, merging)
        write_if_changed(function, "strict", tool.strict, old.strict if old else None, merging)
        apply_extra(function, tool.extra, old_extra)
        out["function"] = function
    else:
        apply_extra(out, tool.extra, old_extra)
    return out


@encode_boundary(CODEC)
def encode_tool_choice(choice: ToolChoice, path: str = "$.tool_choice") -> Any:
    """``tool_choice`` in wire form, merged over the original object when there was one."""
    if is_pristine(choice):
        return choice.raw
    previous = choice.raw if isinstance(choice.raw, Mapping) else None
    old = decode_tool_choice(previous, path) if previous is not None else None
    old_extra = old.extra if old is not None else {}
    if choice.mode == "tool":
        if not choice.name:
            raise EncodeError("tool_choice mode 'tool' needs a tool name", path=path, codec=CODEC)
        was_named = previous is not None and old is not None and old.mode == "tool"
        kind = previous.get("type") if previous is not None and was_named else None
        if not isinstance(kind, str):
            kind = "function"
        out = dict(previous) if previous is not None and was_named else {}
        body = out.get(kind)
        named: dict[str, Any] = dict(body) if isinstance(body, Mapping) else {}
        named["name"] = choice.name
        out["type"] = kind
        out[kind] = named
        apply_extra(out, choice.extra, old_extra if was_named else {})
        return out
    if "allowed_tools" in choice.extra:
        out = dict(previous) if previous is not None and previous.get("type") == "allowed_tools" else {}
        out["type"] = "allowed_tools"
        apply_extra(out, choice.extra, old_extra if out else {})
        allowed = out.get("allowed_tools")
        out["allowed_tools"] = {**(allowed if isinstance(allowed, Mapping) else {}), "mode": choice.mode}
        return out
    return choice.mode


def apply_system(messages: list[Any], system: str | None) -> list[Any]:
    """Make the leading system/developer run of wire ``messages`` say ``system`` (or remove it)."""
    lead = 0
    while (
        lead < len(messages)
        and isinstance(messages[lead], Mapping)
        and messages[lead].get("role") in SYSTEM_ROLES
    ):
        lead += 1
    rest = messages[lead:]
    if system is None:
        return rest
    first = dict(messages[0]) if lead else {"role": "system"}
    first["content"] = system
    return [first, *rest]


def _max_tokens_key(original: Mapping[str, Any], url: str | None) -> list[str]:
    keys = [key for key in ("max_completion_tokens", "max_tokens") if key in original]
    if keys:
        return keys
    # OpenAI's newer models accept only max_completion_tokens; most compatible servers know max_tokens.
    if url is None or "openai.com" in url or "/openai/" in url:
        return ["max_completion_tokens"]
    return ["max_tokens"]


_PARAM_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "n": "n",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "response_format": "response_format",
    "reasoning_effort": "reasoning_effort",
}


def encode_params(
    out: dict[str, Any],
    params: GenerationParams,
    old: GenerationParams,
    original: Mapping[str, Any],
    url: str | None,
) -> None:
    """Write the parameters that differ from ``old``."""
    if params is old:
        return
    for field_name, key in _PARAM_KEYS.items():
        value = getattr(params, field_name)
        if not json_equal(value, getattr(old, field_name)):
            set_or_pop(out, key, value)
    if params.max_tokens != old.max_tokens:
        for key in _max_tokens_key(original, url):
            set_or_pop(out, key, params.max_tokens)
    if not json_equal(params.stop, old.stop):
        set_or_pop(out, "stop", list(params.stop) if params.stop is not None else None)
    for unsupported in ("dimensions", "encoding_format"):
        if getattr(params, unsupported) != getattr(old, unsupported):
            raise EncodeError(f"chat requests have no '{unsupported}'", path=f"$.{unsupported}", codec=CODEC)


def encode_request(
    annotated: AnnotatedLlmRequest, original: Mapping[str, Any], url: str | None, inject_stream_usage: bool
) -> Mapping[str, Any]:
    """Merge ``annotated`` over ``original``; ``original`` itself comes back when nothing changed."""
    if not isinstance(original, Mapping):
        raise EncodeError("the original request must be a JSON object", path="$", codec=CODEC)
    if is_pristine(annotated) and annotated.raw is original:
        out: Mapping[str, Any] = original
    else:
        out = _merge_request(annotated, "$", original, url)
    if inject_stream_usage and annotated.stream is True and "stream_options" not in out:
        out = {**out, "stream_options": {"include_usage": True}}
    return out


def _wire_text(message: Any) -> str:
    """The text of a wire message, exactly as :attr:`Message.text` computes it after decode."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not content:
        return ""
    return "".join(part["text"] for part in content if part.get("type") == "text")


def _wire_system_text(messages: Any) -> str | None:
    texts: list[str] = []
    for message in messages or ():
        if message.get("role") not in SYSTEM_ROLES:
            break
        texts.append(_wire_text(message))
    return "\n\n".join(texts) if texts else None


def _encode_sequence(
    items: tuple[Any, ...], previous: Any, encode_one: Any, path: str
) -> tuple[list[Any], bool]:
    """Encode ``items``; report whether the result differs from the wire list ``previous``."""
    if not isinstance(items, tuple | list):
        raise EncodeError(f"expected a tuple, got {type(items).__name__}", path=path, codec=CODEC)
    encoded = [encode_one(item, f"{path}[{i}]") for i, item in enumerate(items)]
    if not isinstance(previous, list) or len(previous) != len(encoded):
        return encoded, True
    return encoded, any(new is not old for new, old in zip(encoded, previous, strict=True))


@encode_boundary(CODEC)
def _merge_request(
    annotated: AnnotatedLlmRequest, path: str, original: Mapping[str, Any], url: str | None
) -> Mapping[str, Any]:
    # The baseline is decoded shallowly: messages and tools are compared by identity with the wire
    # lists (pristine objects encode to their own raw dicts), so the original is never decoded twice.
    try:
        old_model = _decode_model(original, url)
        old_stream = _decode_stream_flag(original)
        old_params = decode_params(original)
        old_tool_choice = _decode_optional_tool_choice(original)
        wire_messages = original.get("messages")
        old_system = _wire_system_text(wire_messages) if isinstance(wire_messages, list) else None
    except (DecodeError, AttributeError, TypeError) as exc:
        raise EncodeError(f"the original request does not decode: {exc}", path="$", codec=CODEC) from exc
    old_extra = split_known(original, _REQUEST_KEYS)
    if annotated.operation != "chat" or annotated.inputs is not None:
        raise EncodeError("openai-chat encodes chat requests only", path="$", codec=CODEC)
    out = dict(original)
    if annotated.model != old_model:
        set_or_pop(out, "model", annotated.model)
    if annotated.stream != old_stream:
        if annotated.stream or "stream" in out:
            out["stream"] = annotated.stream
        if not annotated.stream and "stream_options" in out and old_stream:
            del out["stream_options"]  # OpenAI rejects stream_options on non-streamed requests
    messages, messages_changed = _encode_sequence(
        annotated.messages, wire_messages, encode_message, "$.messages"
    )
    if annotated.system != old_system:
        messages = apply_system(messages, annotated.system)
        messages_changed = True
    if messages_changed and (messages or "messages" in original):
        out["messages"] = messages
    encode_params(out, annotated.params, old_params, original, url)
    tools, tools_changed = _encode_sequence(annotated.tools, original.get("tools"), encode_tool, "$.tools")
    if tools_changed and (tools or "tools" in original):
        if tools:
            out["tools"] = tools
        else:
            # OpenAI rejects an empty tools array, and tool_choice / parallel_tool_calls without tools.
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
    apply_extra(out, annotated.extra, old_extra)
    return original if json_equal(out, original) else out
