"""Gemini ``generateContent`` requests: wire JSON ↔ :class:`~nemoflow.AnnotatedLlmRequest`.

Wire reference: Gemini API reference, ``models.generateContent`` (``GenerateContentRequest``, ``Content``,
``Part``, ``GenerationConfig``, ``Tool``, ``ToolConfig``) and the Vertex AI reference of the same method;
field spellings as the google-genai SDK sends them (see :mod:`._wire`).

How the request maps onto the model:

* ``model`` and ``stream`` come from the URL (``models/{m}:streamGenerateContent``): the body has neither,
  and ``encode`` never writes them (see :meth:`GeminiGenerateContentCodec.url_for` to route an edit).
* ``contents`` → ``messages``; role ``model`` reads as ``assistant`` (written back as ``model``), a
  missing role as ``user``. ``functionCall`` parts go to ``Message.tool_calls`` (the part's other keys,
  such as ``thoughtSignature``, to the call's ``extra``), every other part to ``content`` in order;
  ``content`` is ``None`` when nothing but calls is left. An edited turn is written back with its calls in
  their original positions among the parts; added parts and calls go at the end.
* ``systemInstruction`` → ``system``: its text parts joined by a blank line.
* ``generationConfig`` → ``params``. ``response_format`` is the dict of the ``responseMimeType``,
  ``responseSchema`` and ``responseJsonSchema`` keys as sent (an OpenAI-style ``{"type": "json_schema"}``
  value set by a policy is translated); ``reasoning_effort`` is ``thinkingConfig.thinkingLevel`` in lower
  case (a ``thinkingBudget`` is a token count, not an effort: it stays in ``extra``). The config's other
  keys (``thinkingConfig``, ``responseModalities``...) are kept in ``extra["generationConfig"]``, and the
  other keys of ``toolConfig`` in ``extra["toolConfig"]``: editing those nested dicts edits the config.
* ``tools`` → one :class:`~nemoflow.ToolDefinition` per function declaration (``parameters`` or
  ``parametersJsonSchema``) and one per built-in tool (``googleSearch``, ``codeExecution``,
  ``urlContext``...; ``type`` and ``name`` are the camelCase key, ``extra`` its settings).
* ``toolConfig.functionCallingConfig`` → ``tool_choice``: ``AUTO``/``VALIDATED`` → ``auto``, ``NONE`` →
  ``none``, ``ANY`` → ``required``, or ``tool`` when it allows exactly one function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
    encode_boundary,
    is_pristine,
    json_equal,
    mark_pristine,
    optional_int,
    optional_number,
    optional_str,
)

from ._wire import (
    CAMEL,
    CODEC,
    EMPTY,
    SNAKE,
    expect_list,
    expect_mapping,
    key_for,
    keys_of,
    lookup,
    model_of_url,
    streams,
    unknown_keys,
    uses_snake_case,
    value_of,
)

_TOP_KNOWN = frozenset({"contents", "systemInstruction", "generationConfig", "tools", "toolConfig"})
_CONTENT_KNOWN = frozenset({"role", "parts"})
_TEXT_KNOWN = frozenset({"text"})
_REASONING_KNOWN = frozenset({"text", "thought", "thoughtSignature"})
_CALL_KNOWN = frozenset({"functionCall"})
_RESULT_KNOWN = frozenset({"functionResponse"})
_TOOL_CONFIG_KNOWN = frozenset({"functionCallingConfig"})
_RESPONSE_FORMAT_KEYS = ("responseMimeType", "responseSchema", "responseJsonSchema")
_GENERATION_KNOWN = frozenset(
    {
        "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "seed", "candidateCount",
        "presencePenalty", "frequencyPenalty", *_RESPONSE_FORMAT_KEYS,
    }
)  # fmt: skip
_OTHER_DATA_KEYS = (
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "toolCall",
    "toolResponse",
)
"""Part data fields besides ``text``, in the order they are looked for."""
_PART_METADATA = frozenset(
    {"thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"}
    | {SNAKE[name] for name in ("thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution")}
)
_ROLE_IN = {"model": "assistant"}
_ROLE_OUT = {"assistant": "model"}
SYSTEM_SEPARATOR = "\n\n"
"""Joins the text parts of ``systemInstruction`` into the normalized system text."""

_new_message = constructor(Message, pristine=True)
_new_text_part = constructor(TextPart, pristine=True)
_new_tool_call = constructor(ToolCall, pristine=True)
_new_tool = constructor(ToolDefinition, pristine=True)
_new_request = constructor(AnnotatedLlmRequest, pristine=True)
_new_params = constructor(GenerationParams, pristine=False)

# ----------------------------------------------------------------------------------------- decode


def _optional_str(raw: Mapping[str, Any], name: str, path: str) -> str | None:
    key, value = lookup(raw, name)
    if value is None or isinstance(value, str):
        return value
    return optional_str(value, f"{path}.{key}", CODEC)  # raises with the path


def _reasoning_part(part: Mapping[str, Any], text: str | None, path: str) -> ReasoningPart:
    signature = _optional_str(part, "thoughtSignature", path)
    return mark_pristine(
        ReasoningPart(text=text, signature=signature, extra=unknown_keys(part, _REASONING_KNOWN), raw=part)
    )


def _media_part(part: Mapping[str, Any], name: str, key: str, value: Any, path: str) -> ContentPart:
    blob_path = f"{path}.{key}"
    blob = expect_mapping(value, blob_path, key)
    media_type = _optional_str(blob, "mimeType", blob_path)
    display_name = _optional_str(blob, "displayName", blob_path)
    extra = unknown_keys(part, frozenset({name}))
    inline = name == "inlineData"
    data = optional_str(blob.get("data"), f"{blob_path}.data", CODEC) if inline else None
    url = None if inline else _optional_str(blob, "fileUri", blob_path)
    result: ContentPart
    if media_type is not None and media_type.startswith("image/"):
        result = ImagePart(url=url, data=data, media_type=media_type, extra=extra, raw=part)
    elif inline and media_type is not None and media_type.startswith("audio/"):
        result = AudioPart(data=data, format=media_type[6:] or None, extra=extra, raw=part)
    else:
        result = FilePart(
            data=data, filename=display_name, media_type=media_type, url=url, extra=extra, raw=part
        )
    return mark_pristine(result)


def _function_call(part: Mapping[str, Any], key: str, value: Any, path: str) -> ToolCall:
    call_path = f"{path}.{key}"
    call = expect_mapping(value, call_path, key)
    name = optional_str(call.get("name"), f"{call_path}.name", CODEC) or ""
    call_id = optional_str(call.get("id"), f"{call_path}.id", CODEC)
    args = call.get("args")
    if args is not None and not isinstance(args, Mapping):
        expect_mapping(args, f"{call_path}.args", "args")  # raises with the path
    return _new_tool_call(call_id, name, args, None, "function", unknown_keys(part, _CALL_KNOWN), part)


def _function_response(part: Mapping[str, Any], key: str, value: Any, path: str) -> ToolResultPart:
    result_path = f"{path}.{key}"
    result = expect_mapping(value, result_path, key)
    response = result.get("response")
    if response is not None and not isinstance(response, Mapping):
        expect_mapping(response, f"{result_path}.response", "response")  # raises with the path
    return mark_pristine(
        ToolResultPart(
            tool_call_id=optional_str(result.get("id"), f"{result_path}.id", CODEC),
            content=response,
            name=optional_str(result.get("name"), f"{result_path}.name", CODEC),
            extra=unknown_keys(part, _RESULT_KNOWN),
            raw=part,
        )
    )


def _other_type(part: Mapping[str, Any]) -> str:
    for key in part:
        if key not in _PART_METADATA:
            return CAMEL.get(key, key)
    return next(iter(part), "unknown")


def decode_part(raw: Any, path: str) -> ContentPart | ToolCall:
    """One entry of a ``Content``'s ``parts``: a content part, or a :class:`ToolCall` for ``functionCall``."""
    part = expect_mapping(raw, path, "a part")
    text = part.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise DecodeError("a text part needs a string 'text'", path=f"{path}.text", codec=CODEC)
        if part.get("thought") is True:
            return _reasoning_part(part, text, path)
        return _new_text_part(text, "text", unknown_keys(part, _TEXT_KNOWN), part)
    for name in _OTHER_DATA_KEYS:
        key, value = lookup(part, name)
        if value is None or key is None:
            continue
        if name == "inlineData" or name == "fileData":
            return _media_part(part, name, key, value, path)
        if name == "functionCall":
            return _function_call(part, key, value, path)
        if name == "functionResponse":
            return _function_response(part, key, value, path)
        return mark_pristine(OtherPart(type=name, extra=dict(part), raw=part))
    if part.get("thought") is True:
        return _reasoning_part(part, None, path)
    return mark_pristine(OtherPart(type=_other_type(part), extra=dict(part), raw=part))


def _decode_parts(parts_raw: Any, path: str) -> tuple[tuple[ContentPart, ...] | None, tuple[ToolCall, ...]]:
    if parts_raw is None:
        return None, ()
    items = expect_list(parts_raw, path, "parts")
    content: list[ContentPart] = []
    calls: list[ToolCall] = []
    for index, item in enumerate(items):
        part = decode_part(item, f"{path}[{index}]")
        if isinstance(part, ToolCall):
            calls.append(part)
        else:
            content.append(part)
    return (tuple(content) if content else None), tuple(calls)


def decode_message(raw: Any, path: str) -> Message:
    """One ``Content`` of ``contents``."""
    content = expect_mapping(raw, path, "a content")
    role = content.get("role")
    if role is None:
        role = "user"
    elif not isinstance(role, str):
        raise DecodeError("role must be a string", path=f"{path}.role", codec=CODEC)
    else:
        role = _ROLE_IN.get(role, role)
    parts, calls = _decode_parts(content.get("parts"), f"{path}.parts")
    return _new_message(role, parts, None, calls, None, unknown_keys(content, _CONTENT_KNOWN), content)


def system_text(instruction: Any, path: str) -> str | None:
    """The normalized text of ``systemInstruction``: its text parts joined by a blank line."""
    if instruction is None or isinstance(instruction, str):
        return instruction
    content = expect_mapping(instruction, path, "systemInstruction")
    parts = content.get("parts")
    if parts is None:
        return None
    texts: list[str] = []
    for index, item in enumerate(expect_list(parts, f"{path}.parts", "parts")):
        part = expect_mapping(item, f"{path}.parts[{index}]", "a part")
        text = part.get("text")
        if text is None or part.get("thought") is True:
            continue
        if not isinstance(text, str):
            raise DecodeError("text must be a string", path=f"{path}.parts[{index}].text", codec=CODEC)
        texts.append(text)
    return SYSTEM_SEPARATOR.join(texts) if texts else None


def _number(config: Mapping[str, Any], name: str, path: str) -> float | None:
    key, value = lookup(config, name)
    return None if value is None else optional_number(value, f"{path}.{key}", CODEC)


def _integer(config: Mapping[str, Any], name: str, path: str) -> int | None:
    key, value = lookup(config, name)
    return None if value is None else optional_int(value, f"{path}.{key}", CODEC)


def _stop_sequences(config: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    key, value = lookup(config, "stopSequences")
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    items = expect_list(value, f"{path}.{key}", "stopSequences")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise DecodeError("stop sequences must be strings", path=f"{path}.{key}[{index}]", codec=CODEC)
    return tuple(items)


def _thinking_level(config: Mapping[str, Any], path: str) -> str | None:
    key, thinking = lookup(config, "thinkingConfig")
    if not isinstance(thinking, Mapping):
        return None
    level = _optional_str(thinking, "thinkingLevel", f"{path}.{key}")
    return level.lower() if level is not None else None


def decode_params(config: Any, path: str) -> tuple[GenerationParams, Mapping[str, Any]]:
    """``generationConfig`` → the parameters and the config's keys the parameters do not name."""
    if config is None:
        return _new_params(), EMPTY
    config = expect_mapping(config, path, "generationConfig")
    if not config:
        return _new_params(), EMPTY
    top_k_key, top_k = lookup(config, "topK")
    if isinstance(top_k, float) and not top_k.is_integer():
        top_k = None  # Vertex AI takes a float top-k; a fractional one has no integer reading
    elif top_k is not None:
        top_k = optional_int(top_k, f"{path}.{top_k_key}", CODEC)
    response_format = {
        key: config[key]
        for name in _RESPONSE_FORMAT_KEYS
        for key in (lookup(config, name)[0],)
        if key is not None
    }
    params = _new_params(
        _number(config, "temperature", path),
        _number(config, "topP", path),
        top_k,
        _integer(config, "maxOutputTokens", path),
        _stop_sequences(config, path),
        _integer(config, "seed", path),
        _integer(config, "candidateCount", path),
        _number(config, "presencePenalty", path),
        _number(config, "frequencyPenalty", path),
        response_format or None,
        _thinking_level(config, path),
    )
    return params, unknown_keys(config, _GENERATION_KNOWN)


def _declaration(raw: Any, path: str) -> ToolDefinition:
    declaration = expect_mapping(raw, path, "a function declaration")
    name = declaration.get("name")
    if not isinstance(name, str):
        raise DecodeError("a function declaration needs a string 'name'", path=f"{path}.name", codec=CODEC)
    description = declaration.get("description")
    if description is not None and not isinstance(description, str):
        optional_str(description, f"{path}.description", CODEC)  # raises with the path
    if "parameters" in declaration:
        parameters = declaration["parameters"]
        known = frozenset({"name", "description", "parameters"})
    else:
        parameters = value_of(declaration, "parametersJsonSchema")
        known = frozenset({"name", "description", "parametersJsonSchema"})
    extra = unknown_keys(declaration, known)
    return _new_tool(name, description, parameters, None, "function", extra, declaration)


def _canonical(key: str, tool: Mapping[str, Any]) -> str:
    """A Tool key's camelCase name (a snake_case key whose camelCase twin is present stays as it is)."""
    camel = CAMEL.get(key)
    return camel if camel is not None and camel not in tool else key


def decode_tools(raw: Any, path: str) -> tuple[ToolDefinition, ...]:
    """``tools``: every function declaration and every built-in tool, in wire order."""
    tools: list[ToolDefinition] = []
    for index, item in enumerate(expect_list(raw, path, "tools")):
        tool_path = f"{path}[{index}]"
        tool = expect_mapping(item, tool_path, "a tool")
        for key, value in tool.items():
            name = _canonical(key, tool)
            if name == "functionDeclarations":
                declarations = expect_list(value, f"{tool_path}.{key}", key) if value is not None else ()
                tools.extend(
                    _declaration(declaration, f"{tool_path}.{key}[{position}]")
                    for position, declaration in enumerate(declarations)
                )
            else:
                settings = dict(value) if isinstance(value, Mapping) else EMPTY
                tools.append(mark_pristine(ToolDefinition(name=name, type=name, extra=settings, raw=tool)))
    return tuple(tools)


_MODES: dict[str, Literal["auto", "none", "required"]] = {"NONE": "none", "ANY": "required"}


def decode_tool_choice(raw: Any, path: str) -> ToolChoice:
    """``functionCallingConfig`` → :class:`ToolChoice`."""
    config = expect_mapping(raw, path, "functionCallingConfig")
    mode_raw = optional_str(config.get("mode"), f"{path}.mode", CODEC)
    mode = _MODES.get(mode_raw.upper(), "auto") if mode_raw is not None else "auto"
    names = value_of(config, "allowedFunctionNames")
    if mode == "required" and isinstance(names, list) and len(names) == 1 and isinstance(names[0], str):
        extra = unknown_keys(config, frozenset({"mode", "allowedFunctionNames"}))
        return mark_pristine(ToolChoice(mode="tool", name=names[0], extra=extra, raw=config))
    return mark_pristine(ToolChoice(mode=mode, extra=unknown_keys(config, frozenset({"mode"})), raw=config))


@dataclass(slots=True)
class Sections:
    """The nested objects of a request body, with the keys they live (or would be created) under."""

    system_key: str
    system: Any
    config_key: str
    config: Any
    tool_config_key: str
    tool_config: Any


def sections(body: Mapping[str, Any]) -> Sections:
    """Find ``systemInstruction``, ``generationConfig`` and ``toolConfig`` under either spelling."""
    system_key, system = lookup(body, "systemInstruction")
    config_key, config = lookup(body, "generationConfig")
    tool_config_key, tool_config = lookup(body, "toolConfig")
    return Sections(
        system_key or key_for(body, "systemInstruction"),
        system,
        config_key or key_for(body, "generationConfig"),
        config,
        tool_config_key or key_for(body, "toolConfig"),
        tool_config,
    )


def decode_tool_config(raw: Any, path: str) -> tuple[ToolChoice | None, Mapping[str, Any]]:
    """``toolConfig`` → the tool choice and the config's other keys."""
    if raw is None:
        return None, EMPTY
    config = expect_mapping(raw, path, "toolConfig")
    key, calling = lookup(config, "functionCallingConfig")
    choice = decode_tool_choice(calling, f"{path}.{key}") if calling is not None else None
    return choice, unknown_keys(config, _TOOL_CONFIG_KNOWN)


def request_extra(
    body: Mapping[str, Any],
    found: Sections,
    config_extra: Mapping[str, Any],
    tool_config_extra: Mapping[str, Any],
) -> Mapping[str, Any]:
    """Top-level unknown keys, plus the unknown keys of ``generationConfig`` and ``toolConfig`` nested."""
    extra = unknown_keys(body, _TOP_KNOWN)
    if not config_extra and not tool_config_extra:
        return extra
    merged = dict(extra)
    if config_extra:
        merged[found.config_key] = config_extra
    if tool_config_extra:
        merged[found.tool_config_key] = tool_config_extra
    return merged


def decode_request(request: Any, url: str | None) -> AnnotatedLlmRequest:
    """A whole ``GenerateContentRequest`` body."""
    body = expect_mapping(request, "$", "the request body")
    contents = body.get("contents")
    messages: tuple[Message, ...] = ()
    if contents is not None:
        items = expect_list(contents, "$.contents", "contents")
        messages = tuple([decode_message(item, f"$.contents[{i}]") for i, item in enumerate(items)])
    found = sections(body)
    params, config_extra = decode_params(found.config, f"$.{found.config_key}")
    tools_raw = body.get("tools")
    tools = decode_tools(tools_raw, "$.tools") if tools_raw is not None else ()
    choice, tool_config_extra = decode_tool_config(found.tool_config, f"$.{found.tool_config_key}")
    return _new_request(
        model_of_url(url),
        streams(url),
        system_text(found.system, f"$.{found.system_key}"),
        messages,
        params,
        tools,
        choice,
        None,
        "chat",
        request_extra(body, found, config_extra, tool_config_extra),
        body,
    )


# ----------------------------------------------------------------------------------------- encode


def _set_or_pop(out: dict[str, Any], name: str, value: Any) -> None:
    """Write the field ``name`` under its existing spelling (or ``out``'s style); ``None`` removes it."""
    if value is None:
        for key in keys_of(out, name):
            del out[key]
    else:
        out[key_for(out, name)] = value


def _update(out: dict[str, Any], name: str, new: Any, old: Any, merging: bool) -> None:
    """Write ``new`` unless merging and unchanged (so an explicit ``null`` that was sent stays)."""
    if merging and json_equal(new, old):
        return
    _set_or_pop(out, name, new)


def _split_data_url(url: str) -> tuple[str | None, str] | None:
    """``(media type, base64 payload)`` of a ``data:...;base64,`` URL."""
    if not url.startswith("data:"):
        return None
    comma = url.find(",")
    if comma == -1:
        return None
    header = url[5:comma]
    media_type = header.split(";", 1)[0] or None
    return media_type, url[comma + 1 :]


def _media_facts(part: ImagePart | AudioPart | FilePart) -> tuple[str | None, str | None, str | None]:
    """``(media type, inline data, file URI)`` of a media part, as Gemini wants them."""
    if isinstance(part, AudioPart):
        media_type = f"audio/{part.format}" if part.format is not None else None
        return media_type, part.data, None
    media_type, data = part.media_type, part.data
    url = part.url if part.url is not None else part.file_id
    if data is None and url is not None:
        split = _split_data_url(url)
        if split is not None:
            media_type, data = media_type or split[0], split[1]
            url = None
    return media_type, data, url


def _encode_media(
    out: dict[str, Any],
    part: ImagePart | AudioPart | FilePart,
    old: ImagePart | AudioPart | FilePart | None,
    path: str,
) -> None:
    media_type, data, url = _media_facts(part)
    old_facts = _media_facts(old) if old is not None else (None, None, None)
    inline_key, inline = lookup(out, "inlineData")
    file_key, file = lookup(out, "fileData")
    was_inline = old is not None and inline is not None
    was_file = old is not None and file is not None and not was_inline
    if data is not None and (url is None or not was_file):
        name, source, merging = "inlineData", inline, was_inline
        for key in keys_of(out, "fileData"):
            del out[key]
    elif url is not None:
        name, source, merging = "fileData", file, was_file
        for key in keys_of(out, "inlineData"):
            del out[key]
    else:
        raise EncodeError("a media part needs inline data or a URL", path=path, codec=CODEC)
    blob: dict[str, Any] = dict(source) if merging and isinstance(source, Mapping) else {}
    _update(blob, "mimeType", media_type, old_facts[0], merging)
    if name == "inlineData":
        _update(blob, "data", data, old_facts[1], merging)
    else:
        _update(blob, "fileUri", url, old_facts[2], merging)
    if isinstance(part, FilePart) and merging and ("displayName" in blob or "display_name" in blob):
        # Only where the part had one: the Gemini API (unlike Vertex AI) rejects displayName here.
        _update(blob, "displayName", part.filename, old.filename if isinstance(old, FilePart) else None, True)
    target = (inline_key if name == "inlineData" else file_key) if merging else None
    out[target or key_for(out, name)] = blob


def _response_object(part: ToolResultPart, path: str) -> Any:
    """A tool result's ``content`` as a ``functionResponse.response`` object."""
    content = part.content
    if content is None or isinstance(content, Mapping):
        return content if content is not None else {}
    if isinstance(content, tuple | list):
        texts = [item.text for item in content if isinstance(item, TextPart)]
        if len(texts) != len(content):
            raise EncodeError("a Gemini function response holds JSON, not parts", path=path, codec=CODEC)
        content = "".join(texts)
    if isinstance(content, str):
        return {"error": content} if part.is_error else {"output": content}
    raise EncodeError(
        f"a function response must be an object or text, got {type(content).__name__}", path=path, codec=CODEC
    )


def _same_kind(old: Any, part: Any) -> bool:
    if type(old) is not type(part):
        return False
    return not isinstance(part, OtherPart) or old.type == part.type


@encode_boundary(CODEC)
def encode_part(part: ContentPart, path: str) -> Any:
    """A content part in wire form: its original dict when untouched, else a merge over it."""
    if is_pristine(part):
        return part.raw
    raw = part.raw if isinstance(part.raw, Mapping) else None
    decoded = decode_part(raw, path) if raw is not None else None
    old = decoded if _same_kind(decoded, part) else None
    out: dict[str, Any] = dict(raw) if (old is not None and raw is not None) else {}
    old_extra = old.extra if old is not None else EMPTY
    if isinstance(part, TextPart):
        out["text"] = part.text
    elif isinstance(part, ReasoningPart):
        assert old is None or isinstance(old, ReasoningPart)
        _update(out, "text", part.text, old.text if old else None, old is not None)
        out["thought"] = True
        _update(out, "thoughtSignature", part.signature, old.signature if old else None, old is not None)
    elif isinstance(part, ImagePart | AudioPart | FilePart):
        assert old is None or isinstance(old, ImagePart | AudioPart | FilePart)
        _encode_media(out, part, old, path)
    elif isinstance(part, ToolResultPart):
        assert old is None or isinstance(old, ToolResultPart)
        key, previous = lookup(out, "functionResponse")
        merging = old is not None
        body: dict[str, Any] = dict(previous) if merging and isinstance(previous, Mapping) else {}
        _update(body, "id", part.tool_call_id, old.tool_call_id if old else None, merging)
        _update(body, "name", part.name, old.name if old else None, merging)
        if not merging or not json_equal(part.content, old.content if old else None):
            body["response"] = _response_object(part, path)
        out[key or "functionResponse"] = body
    elif isinstance(part, RefusalPart):
        out["text"] = part.refusal
    elif not isinstance(part, OtherPart):
        raise EncodeError(f"not a content part: {type(part).__name__}", path=path, codec=CODEC)
    apply_extra(out, part.extra, old_extra)
    return out


def _call_arguments(call: ToolCall, path: str) -> Any:
    if call.arguments is not None or call.arguments_raw is None:
        return call.arguments
    try:
        return orjson.loads(call.arguments_raw)
    except orjson.JSONDecodeError as exc:
        raise EncodeError(f"tool call arguments are not JSON: {exc}", path=path, codec=CODEC) from exc


@encode_boundary(CODEC)
def encode_tool_call(call: ToolCall, path: str) -> Any:
    """A tool call as a ``functionCall`` part."""
    if is_pristine(call):
        return call.raw
    if call.type != "function":
        raise EncodeError(f"Gemini has no '{call.type}' tool calls", path=path, codec=CODEC)
    raw = call.raw if isinstance(call.raw, Mapping) else None
    decoded = decode_part(raw, path) if raw is not None else None
    old = decoded if isinstance(decoded, ToolCall) else None
    out: dict[str, Any] = dict(raw) if (old is not None and raw is not None) else {}
    key, previous = lookup(out, "functionCall")
    merging = old is not None
    body: dict[str, Any] = dict(previous) if merging and isinstance(previous, Mapping) else {}
    _update(body, "id", call.id, old.id if old else None, merging)
    if not merging or old is None or call.name != old.name:
        body["name"] = call.name
    arguments = _call_arguments(call, path)
    if arguments is not None and not isinstance(arguments, Mapping):
        raise EncodeError("Gemini function call arguments must be an object", path=path, codec=CODEC)
    _update(body, "args", arguments, old.arguments if old else None, merging)
    out[key or "functionCall"] = body
    apply_extra(out, call.extra, old.extra if old is not None else EMPTY)
    return out


def _is_call_part(part: Any) -> bool:
    return isinstance(part, Mapping) and isinstance(value_of(part, "functionCall"), Mapping)


def _interleave(wire: Any, content: list[Any], calls: list[Any]) -> list[Any]:
    """Put content parts and calls back in the positions the original parts had (extras at the end)."""
    out: list[Any] = []
    next_content = next_call = 0
    for part in wire if isinstance(wire, list) else ():
        if _is_call_part(part):
            if next_call < len(calls):
                out.append(calls[next_call])
                next_call += 1
        elif next_content < len(content):
            out.append(content[next_content])
            next_content += 1
    out.extend(content[next_content:])
    out.extend(calls[next_call:])
    return out


def _encode_items(items: Any, encode_one: Callable[[Any, str], Any], path: str) -> list[Any]:
    if not isinstance(items, tuple | list):
        raise EncodeError(f"expected a tuple, got {type(items).__name__}", path=path, codec=CODEC)
    return [encode_one(item, f"{path}[{i}]") for i, item in enumerate(items)]


def _differs(new: list[Any], old: Any) -> bool:
    if not isinstance(old, list) or len(old) != len(new):
        return True
    return any(a is not b for a, b in zip(new, old, strict=True))


@encode_boundary(CODEC)
def encode_message(message: Message, path: str) -> Any:
    """A message as a ``Content``."""
    if is_pristine(message):
        return message.raw
    if message.name is not None or message.tool_call_id is not None:
        raise EncodeError("Gemini contents have no 'name' or 'tool_call_id'", path=path, codec=CODEC)
    raw = message.raw if isinstance(message.raw, Mapping) else None
    old = decode_message(raw, path) if raw is not None else None
    out: dict[str, Any] = dict(raw) if raw is not None else {}
    if old is None or message.role != old.role:
        if not isinstance(message.role, str):
            raise EncodeError("role must be a string", path=f"{path}.role", codec=CODEC)
        out["role"] = _ROLE_OUT.get(message.role, message.role)
    content = message.content
    if isinstance(content, str):
        content = (TextPart(text=content),)
    elif content is None:
        content = ()
    parts = _encode_items(content, encode_part, f"{path}.parts")
    calls = _encode_items(message.tool_calls, encode_tool_call, f"{path}.tool_calls")
    wire = raw.get("parts") if raw is not None else None
    merged = _interleave(wire, parts, calls)
    if _differs(merged, wire) and (merged or wire is not None):
        out["parts"] = merged
    apply_extra(out, message.extra, old.extra if old is not None else EMPTY)
    return out


@encode_boundary(CODEC)
def encode_declaration(tool: ToolDefinition, path: str) -> Any:
    """A function tool as a ``FunctionDeclaration``."""
    if is_pristine(tool):
        return tool.raw
    if tool.strict is not None:
        raise EncodeError("Gemini function declarations have no 'strict'", path=path, codec=CODEC)
    raw = tool.raw if isinstance(tool.raw, Mapping) and "name" in tool.raw else None
    old = _declaration(raw, path) if raw is not None else None
    out: dict[str, Any] = dict(raw) if raw is not None else {}
    merging = old is not None
    if old is None or tool.name != old.name:
        out["name"] = tool.name
    _update(out, "description", tool.description, old.description if old else None, merging)
    if not merging or not json_equal(tool.parameters, old.parameters if old else None):
        name = "parameters" if "parameters" in out else "parametersJsonSchema"
        _set_or_pop(out, name, tool.parameters)
    apply_extra(out, tool.extra, old.extra if old is not None else EMPTY)
    return out


_NO_PREVIOUS: Any = object()
"""``encode_builtin``'s ``previous`` for a tool that is new (not merged over a wire value)."""


@encode_boundary(CODEC)
def encode_builtin(tool: ToolDefinition, path: str, previous: Any, old_extra: Mapping[str, Any]) -> Any:
    """A built-in tool's settings object (``{}`` for ``googleSearch``), merged over ``previous``."""
    if tool.description is not None or tool.parameters is not None or tool.strict is not None:
        raise EncodeError(
            f"the built-in tool '{tool.type}' takes no description, parameters or strict",
            path=path,
            codec=CODEC,
        )
    if isinstance(previous, Mapping):
        out = dict(previous)
        apply_extra(out, tool.extra, old_extra)
        return previous if json_equal(out, previous) else out
    if previous is not _NO_PREVIOUS and not tool.extra:
        return previous  # settings that are not an object (null, say) stay as they were sent
    return dict(tool.extra)


Slot = tuple[int, int | str]
"""Where a tool sits on the wire: (index of the ``Tool``, position of a declaration or a built-in's key)."""


def _slots(tools: Sequence[Any]) -> dict[tuple[int, str], list[Slot]]:
    """The wire slots of every declaration and built-in tool, by identity of the dict decode keeps as raw.

    That dict is the declaration, or the ``Tool`` holding the built-in (keyed with its type); a dict met
    twice has several slots, taken in order.
    """
    slots: dict[tuple[int, str], list[Slot]] = {}
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            continue
        for key, value in tool.items():
            name = _canonical(key, tool)
            if name == "functionDeclarations":
                for position, declaration in enumerate(value if isinstance(value, list) else ()):
                    slots.setdefault((id(declaration), "function"), []).append((index, position))
            else:
                slots.setdefault((id(tool), name), []).append((index, key))
    return slots


def _unchanged_tools(tools: tuple[ToolDefinition, ...], wire: Any) -> bool:
    """Whether ``tools`` is exactly what decoding ``wire`` gave (every object pristine, in order)."""
    if not isinstance(wire, list):
        return False
    position = 0
    for tool in wire:
        if not isinstance(tool, Mapping):
            return False
        for key, value in tool.items():
            name = _canonical(key, tool)
            if name == "functionDeclarations":
                for declaration in value if isinstance(value, list) else ():
                    if position >= len(tools):
                        return False
                    candidate = tools[position]
                    if not is_pristine(candidate) or candidate.raw is not declaration:
                        return False
                    position += 1
            else:
                if position >= len(tools):
                    return False
                candidate = tools[position]
                if not is_pristine(candidate) or candidate.raw is not tool or candidate.type != name:
                    return False
                position += 1
    return position == len(tools)


def encode_tools(tools: Any, wire: Any, path: str) -> tuple[list[Any], bool]:
    """``tools`` in wire form, grouped as the original ``Tool`` objects were; and whether it changed."""
    if not isinstance(tools, tuple | list):
        raise EncodeError(f"expected a tuple, got {type(tools).__name__}", path=path, codec=CODEC)
    if _unchanged_tools(tuple(tools), wire):
        return wire, False
    originals: list[Any] = list(wire) if isinstance(wire, list) else []
    slots = _slots(originals)
    grouped: dict[int, list[Any]] = {}
    claimed: dict[Slot, Any] = {}
    new_declarations: list[Any] = []
    new_builtins: list[dict[str, Any]] = []
    for position, tool in enumerate(tools):
        tool_path = f"{path}[{position}]"
        if not isinstance(tool, ToolDefinition):
            raise EncodeError(f"not a ToolDefinition: {type(tool).__name__}", path=tool_path, codec=CODEC)
        if not isinstance(tool.type, str) or not tool.type:
            raise EncodeError("a tool needs a string 'type'", path=tool_path, codec=CODEC)
        free = slots.get((id(tool.raw), tool.type)) if tool.raw is not None else None
        slot = free.pop(0) if free else None
        if tool.type == "function":
            encoded = encode_declaration(tool, tool_path)
            if slot is not None:
                grouped.setdefault(slot[0], []).append(encoded)
            else:
                new_declarations.append(encoded)
        elif slot is not None:
            previous = originals[slot[0]][slot[1]]
            old_extra = dict(previous) if isinstance(previous, Mapping) else EMPTY
            claimed[slot] = encode_builtin(tool, tool_path, previous, old_extra)
        else:
            new_builtins.append({tool.type: encode_builtin(tool, tool_path, _NO_PREVIOUS, EMPTY)})
    out: list[Any] = []
    for index, original in enumerate(originals):
        if not isinstance(original, Mapping):
            out.append(original)
            continue
        rebuilt: dict[str, Any] = {}
        for key, value in original.items():
            if _canonical(key, original) == "functionDeclarations":
                declarations = grouped.get(index, [])
                if declarations:
                    rebuilt[key] = value if not _differs(declarations, value) else declarations
                elif not isinstance(value, list) or not value:
                    rebuilt[key] = value  # an empty or odd list stays as it was sent
            elif (index, key) in claimed:
                rebuilt[key] = claimed[(index, key)]
        if rebuilt or not original:
            same = rebuilt.keys() == original.keys() and all(rebuilt[k] is original[k] for k in rebuilt)
            out.append(original if same else rebuilt)
    if new_declarations:
        for index in range(len(out) - 1, -1, -1):
            tool = out[index]
            key = _declarations_key(tool)
            if key is not None and isinstance(tool[key], list):
                out[index] = {**tool, key: [*tool[key], *new_declarations]}
                break
        else:
            out.append({"functionDeclarations": new_declarations})
    out.extend(new_builtins)
    return out, _differs(out, wire)


def _declarations_key(tool: Any) -> str | None:
    if not isinstance(tool, Mapping):
        return None
    key, _ = lookup(tool, "functionDeclarations")
    return key


_WIRE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}


@encode_boundary(CODEC)
def encode_tool_choice(choice: ToolChoice, path: str) -> Any:
    """``functionCallingConfig`` in wire form, merged over the original one."""
    if is_pristine(choice):
        return choice.raw
    previous = choice.raw if isinstance(choice.raw, Mapping) else None
    old = decode_tool_choice(previous, path) if previous is not None else None
    out: dict[str, Any] = dict(previous) if previous is not None else {}
    if choice.mode not in _WIRE_MODES:
        raise EncodeError(f"unknown tool_choice mode {choice.mode!r}", path=path, codec=CODEC)
    if choice.mode == "tool" and not isinstance(choice.name, str):
        raise EncodeError("tool_choice mode 'tool' needs a tool name", path=path, codec=CODEC)
    if old is None or (choice.mode, choice.name) != (old.mode, old.name):
        out["mode"] = _WIRE_MODES[choice.mode]
        if choice.mode == "tool":
            out[key_for(out, "allowedFunctionNames")] = [choice.name]
        elif old is not None and old.mode == "tool":
            for key in keys_of(out, "allowedFunctionNames"):
                del out[key]
    apply_extra(out, choice.extra, old.extra if old is not None else EMPTY)
    return out


def apply_system(instruction: Any, system: str) -> Any:
    """``systemInstruction`` saying ``system``: the first text part rewritten, other text parts dropped."""
    if isinstance(instruction, str) or not isinstance(instruction, Mapping):
        return system if isinstance(instruction, str) else {"parts": [{"text": system}]}
    parts = instruction.get("parts")
    out = dict(instruction)
    new_parts: list[Any] = []
    written = False
    for part in parts if isinstance(parts, list) else ():
        is_text = (
            isinstance(part, Mapping) and part.get("text") is not None and part.get("thought") is not True
        )
        if not is_text:
            new_parts.append(part)
        elif not written:
            new_parts.append({**part, "text": system})
            written = True
    if not written:
        new_parts.insert(0, {"text": system})
    out["parts"] = new_parts
    return out


_PARAM_KEYS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "seed": "seed",
    "n": "candidateCount",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def _write_response_format(config: dict[str, Any], value: Any, path: str) -> None:
    for name in _RESPONSE_FORMAT_KEYS:
        for key in keys_of(config, name):
            del config[key]
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise EncodeError("response_format must be an object", path=path, codec=CODEC)
    kind = value.get("type")
    if not isinstance(kind, str):  # Gemini keys, as decoded
        config.update(value)
        return
    if kind == "text":
        return
    if kind not in ("json_object", "json_schema"):
        raise EncodeError(f"Gemini has no response_format type {kind!r}", path=path, codec=CODEC)
    config[key_for(config, "responseMimeType")] = "application/json"
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if schema is not None:
            config[key_for(config, "responseJsonSchema")] = schema


def _write_reasoning_effort(config: dict[str, Any], effort: Any, path: str) -> None:
    key, previous = lookup(config, "thinkingConfig")
    thinking: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
    old_level = value_of(thinking, "thinkingLevel")
    present = keys_of(thinking, "thinkingLevel")
    snake = uses_snake_case(thinking) if thinking else uses_snake_case(config)
    level_key = present[0] if present else ("thinking_level" if snake else "thinkingLevel")
    for stale in present:
        del thinking[stale]
    if effort is not None:
        if not isinstance(effort, str):
            raise EncodeError("reasoning_effort must be a string", path=path, codec=CODEC)
        level = effort.lower() if isinstance(old_level, str) and old_level.islower() else effort.upper()
        thinking[level_key] = level
        for budget_key in keys_of(thinking, "thinkingBudget"):
            del thinking[budget_key]  # the API rejects a level and a budget together
    if thinking:
        config[key or key_for(config, "thinkingConfig")] = thinking
    elif key is not None:
        del config[key]


def encode_params(config: dict[str, Any], params: GenerationParams, old: GenerationParams, path: str) -> bool:
    """Write the parameters that differ from ``old`` into ``config``; whether any did."""
    changed = False
    for field_name, name in _PARAM_KEYS.items():
        value = getattr(params, field_name)
        if not json_equal(value, getattr(old, field_name)):
            _set_or_pop(config, name, value)
            changed = True
    if not json_equal(params.stop, old.stop):
        stop = params.stop
        _set_or_pop(config, "stopSequences", list(stop) if isinstance(stop, tuple | list) else stop)
        changed = True
    if not json_equal(params.response_format, old.response_format):
        _write_response_format(config, params.response_format, path)
        changed = True
    if not json_equal(params.reasoning_effort, old.reasoning_effort):
        _write_reasoning_effort(config, params.reasoning_effort, path)
        changed = True
    for unsupported in ("dimensions", "encoding_format"):
        if getattr(params, unsupported) != getattr(old, unsupported):
            raise EncodeError(f"chat requests have no '{unsupported}'", path=f"$.{unsupported}", codec=CODEC)
    return changed


def _nested_extra(extra: Any, key: str, path: str) -> Mapping[str, Any]:
    if not isinstance(extra, Mapping):
        raise EncodeError("extra must be a mapping", path="$", codec=CODEC)
    value = extra.get(key, EMPTY)
    if not isinstance(value, Mapping):
        raise EncodeError(f"extra[{key!r}] must be an object", path=path, codec=CODEC)
    return value


def _merge_config(
    out: dict[str, Any],
    annotated: AnnotatedLlmRequest,
    found: Sections,
    old_params: GenerationParams,
    old_extra: Mapping[str, Any],
) -> None:
    path = f"$.{found.config_key}"
    new_extra = _nested_extra(annotated.extra, found.config_key, path)
    config: dict[str, Any] = dict(found.config) if isinstance(found.config, Mapping) else {}
    apply_extra(config, new_extra, old_extra)
    params = annotated.params
    if not isinstance(params, GenerationParams):
        raise EncodeError("params must be GenerationParams", path=path, codec=CODEC)
    encode_params(config, params, old_params, path)
    if found.config is None and not config:
        return
    if not json_equal(config, found.config):
        out[found.config_key] = config


def _merge_tool_config(
    out: dict[str, Any],
    choice: ToolChoice | None,
    found: Sections,
    old_choice: ToolChoice | None,
    new_extra: Mapping[str, Any],
    old_extra: Mapping[str, Any],
) -> None:
    path = f"$.{found.tool_config_key}"
    original = found.tool_config if isinstance(found.tool_config, Mapping) else None
    config: dict[str, Any] = dict(original) if original is not None else {}
    apply_extra(config, new_extra, old_extra)
    key, previous = lookup(config, "functionCallingConfig")
    if choice is None:
        if old_choice is not None and key is not None:
            del config[key]
    elif not (is_pristine(choice) and choice.raw is previous):
        encoded = encode_tool_choice(choice, f"{path}.{key or 'functionCallingConfig'}")
        if not json_equal(encoded, previous):
            config[key or key_for(config, "functionCallingConfig")] = encoded
    if json_equal(config, found.tool_config):
        return
    if config:
        out[found.tool_config_key] = config
    else:
        out.pop(found.tool_config_key, None)


@encode_boundary(CODEC)
def _merge_request(
    annotated: AnnotatedLlmRequest, path: str, original: Mapping[str, Any]
) -> Mapping[str, Any]:
    # The baseline is decoded shallowly: contents and tools are compared by identity with the wire lists
    # (pristine objects encode to their own raw dicts), so the original is never decoded twice.
    try:
        found = sections(original)
        old_system = system_text(found.system, f"$.{found.system_key}")
        old_params, old_config_extra = decode_params(found.config, f"$.{found.config_key}")
        old_choice, old_tool_config_extra = decode_tool_config(
            found.tool_config, f"$.{found.tool_config_key}"
        )
    except (DecodeError, AttributeError, TypeError) as exc:
        raise EncodeError(f"the original request does not decode: {exc}", path="$", codec=CODEC) from exc
    if annotated.operation != "chat" or annotated.inputs is not None:
        raise EncodeError("gemini-generate-content encodes chat requests only", path="$", codec=CODEC)
    out = dict(original)
    wire_contents = original.get("contents")
    messages = _encode_items(annotated.messages, encode_message, "$.contents")
    if _differs(messages, wire_contents) and (messages or wire_contents is not None):
        out["contents"] = messages
    if annotated.system != old_system:
        if annotated.system is None:
            for key in keys_of(original, "systemInstruction"):
                out.pop(key, None)
        elif not isinstance(annotated.system, str):
            raise EncodeError("system must be a string", path=f"$.{found.system_key}", codec=CODEC)
        else:
            out[found.system_key] = apply_system(found.system, annotated.system)
    _merge_config(out, annotated, found, old_params, old_config_extra)
    wire_tools = original.get("tools")
    tools, tools_changed = encode_tools(annotated.tools, wire_tools, "$.tools")
    choice = annotated.tool_choice
    if tools_changed:
        if tools:
            out["tools"] = tools
        else:
            out.pop("tools", None)
            if choice == old_choice:
                choice = None  # a function-calling mode without tools is rejected
    new_tool_config_extra = _nested_extra(
        annotated.extra, found.tool_config_key, f"$.{found.tool_config_key}"
    )
    if choice is not None and not isinstance(choice, ToolChoice):
        raise EncodeError("tool_choice must be a ToolChoice", path=f"$.{found.tool_config_key}", codec=CODEC)
    _merge_tool_config(out, choice, found, old_choice, new_tool_config_extra, old_tool_config_extra)
    old_top = unknown_keys(original, _TOP_KNOWN)
    nested = (found.config_key, found.tool_config_key)
    new_top = {key: value for key, value in annotated.extra.items() if key not in nested}
    apply_extra(out, new_top, old_top)
    return original if json_equal(out, original) else out


def encode_request(
    annotated: AnnotatedLlmRequest, original: Mapping[str, Any], url: str | None = None
) -> Mapping[str, Any]:
    """Merge ``annotated`` over ``original``; ``original`` itself comes back when nothing changed.

    ``model`` and ``stream`` live in the URL, so they are never written into the body. Given the
    ``url``, an edit of either is an :class:`EncodeError` rather than silently lost: route it with
    ``GeminiGenerateContentCodec.url_for``.
    """
    if not isinstance(original, Mapping):
        raise EncodeError("the original request must be a JSON object", path="$", codec=CODEC)
    if is_pristine(annotated) and annotated.raw is original:
        return original
    if url is not None:
        if annotated.model != model_of_url(url):
            raise EncodeError(
                "the model is named in the URL (models/{model}); the request body cannot change it",
                path="$",
                codec=CODEC,
            )
        if annotated.stream != streams(url):
            raise EncodeError(
                "streaming is chosen by the route (:streamGenerateContent)", path="$", codec=CODEC
            )
    return _merge_request(annotated, "$", original)
