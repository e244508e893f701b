"""Converse requests: wire JSON ↔ :class:`~nemoflow.AnnotatedLlmRequest`.

Wire reference: Bedrock Runtime API reference "Converse" (request body: ``messages``, ``system``,
``inferenceConfig``, ``toolConfig``, ``outputConfig``, ``additionalModelRequestFields``,
``additionalModelResponseFieldPaths``, ``guardrailConfig``, ``promptVariables``, ``requestMetadata``,
``performanceConfig``, ``serviceTier``), "ContentBlock", "SystemContentBlock", "ToolResultBlock",
"ReasoningContentBlock", "Tool", "ToolChoice", and the service model botocore ships.

The model id and the streaming mode are not in the body: they are the ``{modelId}`` of
``/model/{modelId}/converse`` (URL-encoded) and the ``-stream`` suffix of the route.

Content blocks are unions: a JSON object with one member key (``{"text": ...}``, ``{"image": {...}}``).
An annotated part's ``extra`` holds the keys beside that member; keys inside the member object that the
model does not name survive through ``raw``. ``toolUse`` blocks become ``Message.tool_calls`` and are put
back where they were on encode. Blocks the model has no part for (``cachePoint``, ``guardContent``,
``citationsContent``, a tool result's ``json`` ...) are :class:`~nemoflow.OtherPart` s whose ``extra`` is
the whole block. Tool entries other than ``toolSpec`` (``cachePoint``, ``systemTool``) are
:class:`~nemoflow.ToolDefinition` s typed by their member key, the whole entry in ``extra``.

Encode is a merge: an object still pristine is written back as its original dict; an edited one is its
original dict with only the changed fields rewritten; a new one is written fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    optional_bool,
    optional_int,
    optional_number,
    optional_str,
    set_or_pop,
    split_known,
    write_if_changed,
)

from ._common import (
    BLOCK_TYPES,
    CODEC,
    DOCUMENT_FORMATS,
    DOCUMENT_MEDIA_TYPES,
    VIDEO_FORMATS,
    VIDEO_MEDIA_TYPES,
    block_type,
    expect_list,
    expect_mapping,
    expect_str,
    route_facts,
)

_REQUEST_KEYS = frozenset({"messages", "system", "inferenceConfig", "toolConfig", "outputConfig"})
_MESSAGE_KEYS = frozenset({"role", "content"})
_SPEC_KEYS = frozenset({"name", "description", "inputSchema", "strict"})
_TOOL_ENTRY_TYPES = frozenset({"toolSpec", "systemTool", "cachePoint"})
_RESULT_PART_TYPES = frozenset({"text", "image", "document", "video"})
_CHOICE_MODES: dict[str, Literal["auto", "required", "tool"]] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
}
_CHOICE_MEMBERS = {"auto": "auto", "required": "any", "tool": "tool"}
_ONLY = {key: frozenset({key}) for key in BLOCK_TYPES | _TOOL_ENTRY_TYPES}
_NOTHING: frozenset[str] = frozenset()

_new_message = constructor(Message, pristine=True)
_new_text_part = constructor(TextPart, pristine=True)
_new_tool_call = constructor(ToolCall, pristine=True)
_new_tool = constructor(ToolDefinition, pristine=True)
_new_request = constructor(AnnotatedLlmRequest, pristine=True)
_new_params = constructor(GenerationParams, pristine=False)


def _only(key: str) -> frozenset[str]:
    known = _ONLY.get(key)
    return known if known is not None else frozenset({key})


# ----------------------------------------------------------------------------------------- decode


def _decode_source(value: Any, path: str) -> tuple[str | None, str | None]:
    """``(inline payload, s3 URI)`` of an image/document/video/audio ``source``."""
    if value is None:
        return None, None
    source = expect_mapping(value, path, "source")
    data = optional_str(source.get("bytes"), f"{path}.bytes", CODEC)
    if data is None:
        data = optional_str(source.get("text"), f"{path}.text", CODEC)  # documents may be plain text
    location = source.get("s3Location")
    uri = None
    if location is not None:
        location = expect_mapping(location, f"{path}.s3Location", "s3Location")
        uri = optional_str(location.get("uri"), f"{path}.s3Location.uri", CODEC)
    return data, uri


def _media(value: Any, path: str) -> tuple[Mapping[str, Any], str | None, str | None, str | None]:
    """``(member object, format, inline payload, s3 URI)`` of a media block's member."""
    media = expect_mapping(value, path, "a media block")
    fmt = optional_str(media.get("format"), f"{path}.format", CODEC)
    data, uri = _decode_source(media.get("source"), f"{path}.source")
    return media, fmt, data, uri


def _decode_tool_use(value: Any, block: Mapping[str, Any], path: str) -> ToolCall:
    tool_use = expect_mapping(value, path, "toolUse")
    call_id = optional_str(tool_use.get("toolUseId"), f"{path}.toolUseId", CODEC)
    name = optional_str(tool_use.get("name"), f"{path}.name", CODEC) or ""
    call_type = optional_str(tool_use.get("type"), f"{path}.type", CODEC) or "function"
    return _new_tool_call(
        call_id, name, tool_use.get("input"), None, call_type, split_known(block, _only("toolUse")), block
    )


def _decode_reasoning(value: Any, block: Mapping[str, Any], path: str) -> ReasoningPart:
    reasoning = expect_mapping(value, path, "reasoningContent")
    text = signature = None
    redacted = False
    text_block = reasoning.get("reasoningText")
    if text_block is not None:
        text_block = expect_mapping(text_block, f"{path}.reasoningText", "reasoningText")
        text = optional_str(text_block.get("text"), f"{path}.reasoningText.text", CODEC)
        signature = optional_str(text_block.get("signature"), f"{path}.reasoningText.signature", CODEC)
    elif reasoning.get("redactedContent") is not None:
        signature = optional_str(reasoning.get("redactedContent"), f"{path}.redactedContent", CODEC)
        redacted = True
    part = ReasoningPart(
        text=text,
        signature=signature,
        redacted=redacted,
        extra=split_known(block, _only("reasoningContent")),
        raw=block,
    )
    return mark_pristine(part)


def _decode_tool_result(value: Any, block: Mapping[str, Any], path: str) -> ToolResultPart:
    result = expect_mapping(value, path, "toolResult")
    call_id = optional_str(result.get("toolUseId"), f"{path}.toolUseId", CODEC)
    content_raw = result.get("content")
    content: tuple[ContentPart, ...] | None = None
    if content_raw is not None:
        items = expect_list(content_raw, f"{path}.content", "toolResult.content")
        content = tuple([decode_result_block(item, f"{path}.content[{i}]") for i, item in enumerate(items)])
    status = optional_str(result.get("status"), f"{path}.status", CODEC)
    part = ToolResultPart(
        tool_call_id=call_id,
        content=content,
        is_error=None if status is None else status == "error",
        extra=split_known(block, _only("toolResult")),
        raw=block,
    )
    return mark_pristine(part)


def decode_block(raw: Any, path: str) -> ContentPart | ToolCall:
    """One content block of a message (a ``toolUse`` block gives a :class:`ToolCall`)."""
    block = expect_mapping(raw, path, "a content block")
    kind = block_type(block, BLOCK_TYPES, path)
    value = block[kind]
    member_path = f"{path}.{kind}"
    if kind == "text":
        return _new_text_part(
            expect_str(value, member_path, "text"), "text", split_known(block, _only(kind)), block
        )
    if kind == "toolUse":
        return _decode_tool_use(value, block, member_path)
    if kind == "toolResult":
        return _decode_tool_result(value, block, member_path)
    if kind == "reasoningContent":
        return _decode_reasoning(value, block, member_path)
    result: ContentPart
    if kind == "image":
        _, fmt, data, uri = _media(value, member_path)
        media_type = f"image/{fmt}" if fmt else None
        result = ImagePart(
            url=uri, data=data, media_type=media_type, extra=split_known(block, _only(kind)), raw=block
        )
    elif kind == "document":
        media, fmt, data, uri = _media(value, member_path)
        name = optional_str(media.get("name"), f"{member_path}.name", CODEC)
        result = FilePart(
            data=data,
            filename=name,
            media_type=DOCUMENT_MEDIA_TYPES.get(fmt) if fmt else None,
            url=uri,
            extra=split_known(block, _only(kind)),
            raw=block,
        )
    elif kind == "video":
        _, fmt, data, uri = _media(value, member_path)
        media_type = VIDEO_MEDIA_TYPES.get(fmt, f"video/{fmt}") if fmt else None
        result = FilePart(
            data=data, media_type=media_type, url=uri, extra=split_known(block, _only(kind)), raw=block
        )
    elif kind == "audio":
        _, fmt, data, _ = _media(value, member_path)
        result = AudioPart(data=data, format=fmt, extra=split_known(block, _only(kind)), raw=block)
    else:  # cachePoint, guardContent, citationsContent, ...: kept whole
        result = OtherPart(type=kind, extra=block, raw=block)
    return mark_pristine(result)


def decode_result_block(raw: Any, path: str) -> ContentPart:
    """One block of a ``toolResult``'s content (``json`` and other kinds become :class:`OtherPart`)."""
    block = expect_mapping(raw, path, "a tool result block")
    kind = block_type(block, BLOCK_TYPES, path)
    if kind in _RESULT_PART_TYPES:
        part = decode_block(block, path)
        assert not isinstance(part, ToolCall)
        return part
    return mark_pristine(OtherPart(type=kind, extra=block, raw=block))


def decode_message(raw: Any, path: str) -> Message:
    """One entry of ``messages``."""
    message = expect_mapping(raw, path, "a message")
    role = message.get("role")
    if not isinstance(role, str):
        raise DecodeError("message needs a string 'role'", path=f"{path}.role", codec=CODEC)
    content_raw = message.get("content")
    content: tuple[ContentPart, ...] | None = None
    calls: list[ToolCall] = []
    if content_raw is not None:
        blocks = expect_list(content_raw, f"{path}.content", "content")
        parts: list[ContentPart] = []
        for i, item in enumerate(blocks):
            decoded = decode_block(item, f"{path}.content[{i}]")
            if isinstance(decoded, ToolCall):
                calls.append(decoded)
            else:
                parts.append(decoded)
        content = tuple(parts)
    return _new_message(role, content, None, tuple(calls), None, split_known(message, _MESSAGE_KEYS), message)


def system_text(system: Any, path: str = "$.system") -> str | None:
    """Normalized system text: the ``text`` blocks of ``system`` joined by a blank line."""
    if system is None:
        return None
    blocks = expect_list(system, path, "system")
    texts: list[str] = []
    for i, item in enumerate(blocks):
        block = expect_mapping(item, f"{path}[{i}]", "a system block")
        if block_type(block, BLOCK_TYPES, f"{path}[{i}]") == "text":
            texts.append(expect_str(block["text"], f"{path}[{i}].text", "text"))
    return "\n\n".join(texts) if texts else None


def decode_tool(raw: Any, path: str) -> ToolDefinition:
    """One entry of ``toolConfig.tools``."""
    entry = expect_mapping(raw, path, "a tool")
    kind = block_type(entry, _TOOL_ENTRY_TYPES, path)
    if kind == "toolSpec":
        spec_path = f"{path}.toolSpec"
        spec = expect_mapping(entry["toolSpec"], spec_path, "toolSpec")
        name = spec.get("name")
        if not isinstance(name, str):
            raise DecodeError("toolSpec needs a string 'name'", path=f"{spec_path}.name", codec=CODEC)
        description = optional_str(spec.get("description"), f"{spec_path}.description", CODEC)
        strict = optional_bool(spec.get("strict"), f"{spec_path}.strict", CODEC)
        schema = spec.get("inputSchema")
        parameters = None
        if schema is not None:
            parameters = expect_mapping(schema, f"{spec_path}.inputSchema", "inputSchema").get("json")
        return _new_tool(
            name, description, parameters, strict, "function", split_known(spec, _SPEC_KEYS), entry
        )
    name = ""
    if kind == "systemTool":
        system_tool = expect_mapping(entry["systemTool"], f"{path}.systemTool", "systemTool")
        name = optional_str(system_tool.get("name"), f"{path}.systemTool.name", CODEC) or ""
    return _new_tool(name, None, None, None, kind, entry, entry)


def _choice_kind(choice: Mapping[str, Any]) -> str | None:
    for key in choice:
        if key in _CHOICE_MODES:
            return str(key)
    return None


def decode_tool_choice(raw: Any, path: str) -> ToolChoice:
    """``toolConfig.toolChoice``: ``{"auto": {}}``, ``{"any": {}}`` or ``{"tool": {"name": ...}}``."""
    choice = expect_mapping(raw, path, "toolChoice")
    kind = _choice_kind(choice)
    if kind is None:  # a kind this codec does not know: kept whole
        return mark_pristine(ToolChoice(mode="auto", extra=split_known(choice, _NOTHING), raw=choice))
    name = None
    if kind == "tool":
        body = expect_mapping(choice["tool"], f"{path}.tool", "toolChoice.tool")
        name = optional_str(body.get("name"), f"{path}.tool.name", CODEC)
    return mark_pristine(
        ToolChoice(mode=_CHOICE_MODES[kind], name=name, extra=split_known(choice, _only(kind)), raw=choice)
    )


def _decode_tool_config(body: Mapping[str, Any]) -> tuple[tuple[ToolDefinition, ...], ToolChoice | None]:
    raw = body.get("toolConfig")
    if raw is None:
        return (), None
    config = expect_mapping(raw, "$.toolConfig", "toolConfig")
    tools: tuple[ToolDefinition, ...] = ()
    if config.get("tools") is not None:
        items = expect_list(config["tools"], "$.toolConfig.tools", "tools")
        tools = tuple([decode_tool(item, f"$.toolConfig.tools[{i}]") for i, item in enumerate(items)])
    choice_raw = config.get("toolChoice")
    choice = decode_tool_choice(choice_raw, "$.toolConfig.toolChoice") if choice_raw is not None else None
    return tools, choice


def _decode_tool_choice_only(body: Mapping[str, Any]) -> ToolChoice | None:
    config = body.get("toolConfig")
    if config is None:
        return None
    config = expect_mapping(config, "$.toolConfig", "toolConfig")
    raw = config.get("toolChoice")
    return decode_tool_choice(raw, "$.toolConfig.toolChoice") if raw is not None else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def model_top_k(fields: Any) -> int | None:
    """``top_k`` from the model-specific fields (Anthropic ``top_k``, Nova ``inferenceConfig.topK``)."""
    if not isinstance(fields, Mapping):
        return None
    top_k = _int_or_none(fields.get("top_k"))
    if top_k is None and isinstance(fields.get("inferenceConfig"), Mapping):
        top_k = _int_or_none(fields["inferenceConfig"].get("topK"))
    return top_k


def decode_params(body: Mapping[str, Any]) -> GenerationParams:
    """``inferenceConfig`` (plus ``top_k`` from the model fields and ``outputConfig``)."""
    max_tokens = temperature = top_p = None
    stop: tuple[str, ...] | None = None
    inference = body.get("inferenceConfig")
    if inference is not None:
        config = expect_mapping(inference, "$.inferenceConfig", "inferenceConfig")
        max_tokens = optional_int(config.get("maxTokens"), "$.inferenceConfig.maxTokens", CODEC)
        temperature = optional_number(config.get("temperature"), "$.inferenceConfig.temperature", CODEC)
        top_p = optional_number(config.get("topP"), "$.inferenceConfig.topP", CODEC)
        sequences = config.get("stopSequences")
        if sequences is not None:
            items = expect_list(sequences, "$.inferenceConfig.stopSequences", "stopSequences")
            stop = tuple(
                [
                    expect_str(item, f"$.inferenceConfig.stopSequences[{i}]", "a stop sequence")
                    for i, item in enumerate(items)
                ]
            )
    effort = response_format = None
    output = body.get("outputConfig")
    if output is not None:
        output = expect_mapping(output, "$.outputConfig", "outputConfig")
        effort = optional_str(output.get("effort"), "$.outputConfig.effort", CODEC)
        response_format = output.get("textFormat")
    top_k = model_top_k(body.get("additionalModelRequestFields"))
    return _new_params(
        temperature, top_p, top_k, max_tokens, stop, None, None, None, None, response_format, effort
    )


def decode_request(request: Any, url: str | None) -> AnnotatedLlmRequest:
    """A whole Converse request body (the model and the streaming flag come from ``url``)."""
    body = expect_mapping(request, "$", "the request body")
    messages: tuple[Message, ...] = ()
    messages_raw = body.get("messages")
    if messages_raw is not None:
        items = expect_list(messages_raw, "$.messages", "messages")
        messages = tuple([decode_message(item, f"$.messages[{i}]") for i, item in enumerate(items)])
    tools, tool_choice = _decode_tool_config(body)
    model, stream = route_facts(url)
    return _new_request(
        model,
        stream,
        system_text(body.get("system")),
        messages,
        decode_params(body),
        tools,
        tool_choice,
        None,
        "chat",
        split_known(body, _REQUEST_KEYS),
        body,
    )


# ----------------------------------------------------------------------------------------- encode


def _data_url_payload(value: str) -> tuple[str | None, str] | None:
    """``(media type, base64 payload)`` of a ``data:…;base64,`` URL."""
    if not value.startswith("data:"):
        return None
    comma = value.find(",")
    if comma == -1 or ";base64" not in value[:comma]:
        return None
    media = value[5:comma].split(";", 1)[0]
    return media or None, value[comma + 1 :]


def _encode_source(data: str | None, url: str | None, previous: Any, path: str) -> dict[str, Any]:
    """A ``source`` object for inline ``data`` or an ``s3://`` URL, keeping unknown keys of the old one."""
    source: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
    text_source = "text" in source and "bytes" not in source
    for key in ("bytes", "text", "s3Location", "content"):
        source.pop(key, None)
    if data is not None:
        embedded = _data_url_payload(data)
        if embedded is not None:
            source["bytes"] = embedded[1]
        else:
            source["text" if text_source else "bytes"] = data
        return source
    if url is not None and url.startswith("s3://"):
        location = previous.get("s3Location") if isinstance(previous, Mapping) else None
        source["s3Location"] = {**(location if isinstance(location, Mapping) else {}), "uri": url}
        return source
    if url is not None:
        embedded = _data_url_payload(url)
        if embedded is not None:
            source["bytes"] = embedded[1]
            return source
    raise EncodeError(
        "Bedrock takes media inline (base64 bytes) or from S3 (an s3:// URI)", path=path, codec=CODEC
    )


def _media_type_of(part: ImagePart | FilePart) -> str | None:
    if part.media_type is not None:
        return part.media_type
    for candidate in (part.data, part.url):
        if candidate is not None:
            embedded = _data_url_payload(candidate)
            if embedded is not None and embedded[0]:
                return embedded[0]
    return None


def _image_format(part: ImagePart, path: str) -> str:
    media_type = _media_type_of(part)
    if media_type is None or not media_type.startswith("image/") or len(media_type) <= len("image/"):
        raise EncodeError(
            f"cannot tell the image format from media type {media_type!r}", path=path, codec=CODEC
        )
    return media_type[len("image/") :]


def _file_member(part: FilePart, old_member: str | None) -> str:
    media_type = part.media_type
    if media_type is not None and media_type.startswith("video/"):
        return "video"
    if media_type is not None and media_type in DOCUMENT_FORMATS:
        return "document"
    return old_member if old_member in ("video", "document") else "document"


def _part_member(part: Any, old_member: str | None, path: str) -> str:
    if isinstance(part, TextPart):
        return "text"
    if isinstance(part, ImagePart):
        return "image"
    if isinstance(part, FilePart):
        return _file_member(part, old_member)
    if isinstance(part, AudioPart):
        return "audio"
    if isinstance(part, ReasoningPart):
        return "reasoningContent"
    if isinstance(part, ToolResultPart):
        return "toolResult"
    if isinstance(part, OtherPart):
        if not isinstance(part.type, str) or not part.type:
            raise EncodeError("an OtherPart needs a type", path=path, codec=CODEC)
        return part.type
    if isinstance(part, RefusalPart):
        raise EncodeError("Bedrock has no refusal content block", path=path, codec=CODEC)
    raise EncodeError(f"not a content part: {type(part).__name__}", path=path, codec=CODEC)


def _encode_image(part: ImagePart, old: Any, previous: Any, path: str) -> dict[str, Any]:
    same = isinstance(old, ImagePart)
    inner: dict[str, Any] = dict(previous) if same and isinstance(previous, Mapping) else {}
    if part.file_id is not None:
        raise EncodeError("Bedrock images cannot refer to an uploaded file id", path=path, codec=CODEC)
    if not same or part.media_type != old.media_type:
        inner["format"] = _image_format(part, path)
    if not same or part.data != old.data or part.url != old.url:
        inner["source"] = _encode_source(part.data, part.url, inner.get("source"), f"{path}.image.source")
    return inner


def _encode_file(part: FilePart, member: str, old: Any, previous: Any, path: str) -> dict[str, Any]:
    same = isinstance(old, FilePart)
    inner: dict[str, Any] = dict(previous) if same and isinstance(previous, Mapping) else {}
    if part.file_id is not None:
        raise EncodeError("Bedrock files cannot refer to an uploaded file id", path=path, codec=CODEC)
    if not same or part.media_type != old.media_type:
        media_type = _media_type_of(part)
        if member == "video":
            fmt = VIDEO_FORMATS.get(media_type) if media_type else None
            if fmt is None and media_type and media_type.startswith("video/"):
                fmt = media_type[len("video/") :]
            if fmt is None:
                raise EncodeError(f"cannot tell the video format from {media_type!r}", path=path, codec=CODEC)
            inner["format"] = fmt
        elif media_type is None:
            inner.pop("format", None)
        else:
            fmt = DOCUMENT_FORMATS.get(media_type)
            if fmt is None:
                raise EncodeError(f"Bedrock takes no document of type {media_type!r}", path=path, codec=CODEC)
            inner["format"] = fmt
    if member == "document":
        if not same:
            inner["name"] = part.filename if part.filename is not None else "document"
        elif part.filename != old.filename:
            set_or_pop(inner, "name", part.filename)
    if not same or part.data != old.data or part.url != old.url:
        inner["source"] = _encode_source(part.data, part.url, inner.get("source"), f"{path}.{member}.source")
    return inner


def _encode_audio(part: AudioPart, old: Any, previous: Any, path: str) -> dict[str, Any]:
    same = isinstance(old, AudioPart)
    inner: dict[str, Any] = dict(previous) if same and isinstance(previous, Mapping) else {}
    if not same or part.format != old.format:
        if part.format is None:
            raise EncodeError("Bedrock audio needs a format", path=path, codec=CODEC)
        inner["format"] = part.format
    if not same or part.data != old.data:
        inner["source"] = _encode_source(part.data, None, inner.get("source"), f"{path}.audio.source")
    return inner


def _encode_reasoning(part: ReasoningPart, old: Any, previous: Any, path: str) -> dict[str, Any]:
    same = isinstance(old, ReasoningPart)
    inner: dict[str, Any] = dict(previous) if same and isinstance(previous, Mapping) else {}
    if same and (part.redacted, part.text, part.signature) == (old.redacted, old.text, old.signature):
        return inner
    if part.redacted:
        if not same or not old.redacted or part.signature != old.signature:
            if part.signature is None:
                raise EncodeError(
                    "redacted reasoning needs its payload in 'signature'", path=path, codec=CODEC
                )
            inner.pop("reasoningText", None)
            inner["redactedContent"] = part.signature
        return inner
    merging = same and not old.redacted and "reasoningText" in inner
    if not merging or part.text != old.text or part.signature != old.signature:
        if part.text is None:
            raise EncodeError(
                "reasoning text is required unless the reasoning is redacted", path=path, codec=CODEC
            )
        previous_text = inner.get("reasoningText") if merging else None
        text_block: dict[str, Any] = dict(previous_text) if isinstance(previous_text, Mapping) else {}
        text_block["text"] = part.text
        write_if_changed(text_block, "signature", part.signature, old.signature if merging else None, merging)
        inner.pop("redactedContent", None)
        inner["reasoningText"] = text_block
    return inner


def _encode_result_content(content: Any, previous: Any, path: str) -> Any:
    """A tool result's ``content`` list (``previous`` itself when unchanged)."""
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, Mapping):
        return [{"json": content}]
    if isinstance(content, tuple | list):
        encoded = [encode_part(part, f"{path}[{i}]") for i, part in enumerate(content)]
        if (
            isinstance(previous, list)
            and len(previous) == len(encoded)
            and all(new is old for new, old in zip(encoded, previous, strict=True))
        ):
            return previous
        return encoded
    raise EncodeError(
        f"tool result content must be text, parts or an object, got {type(content).__name__}",
        path=path,
        codec=CODEC,
    )


def _encode_tool_result(part: ToolResultPart, old: Any, previous: Any, path: str) -> dict[str, Any]:
    same = isinstance(old, ToolResultPart)
    inner: dict[str, Any] = dict(previous) if same and isinstance(previous, Mapping) else {}
    if part.tool_call_id is None and (not same or old.tool_call_id is not None):
        raise EncodeError("a Bedrock toolResult needs the toolUseId it answers", path=path, codec=CODEC)
    if not isinstance(part.tool_call_id, str | None):
        raise EncodeError("tool_call_id must be a string", path=path, codec=CODEC)
    write_if_changed(inner, "toolUseId", part.tool_call_id, old.tool_call_id if same else None, same)
    if not same or part.content is not old.content:
        if part.content is None:
            inner.pop("content", None)
        else:
            inner["content"] = _encode_result_content(
                part.content, inner.get("content"), f"{path}.toolResult.content"
            )
    if not same or part.is_error != old.is_error:
        if part.is_error is None:
            inner.pop("status", None)
        elif isinstance(part.is_error, bool):
            inner["status"] = "error" if part.is_error else "success"
        else:
            raise EncodeError("is_error must be a boolean or None", path=path, codec=CODEC)
    return inner


def _default_member(member: str) -> Any:
    return {"type": "default"} if member == "cachePoint" else {}


@encode_boundary(CODEC)
def encode_part(part: ContentPart, path: str) -> Any:
    """A content block in wire form: its original dict when untouched, else a merge over it."""
    if is_pristine(part):
        return part.raw
    raw = part.raw
    old: ContentPart | ToolCall | None = None
    old_member: str | None = None
    if raw is not None:
        old = decode_block(raw, path)
        old_member = block_type(raw, BLOCK_TYPES, path)
    member = _part_member(part, old_member, path)
    same = raw is not None and member == old_member and type(old) is type(part)
    if isinstance(part, OtherPart):
        if same and raw is not None and isinstance(old, OtherPart):
            merged = dict(raw)
            apply_extra(merged, part.extra, old.extra)
            return merged
        fresh = dict(part.extra)
        if member not in fresh:
            fresh[member] = _default_member(member)
        return fresh
    out: dict[str, Any] = dict(raw) if same and raw is not None else {}
    previous = out.get(member) if same else None
    compare = old if same else None
    value: Any
    if isinstance(part, TextPart):
        if not isinstance(part.text, str):
            raise EncodeError("text must be a string", path=path, codec=CODEC)
        value = part.text
    elif isinstance(part, ImagePart):
        value = _encode_image(part, compare, previous, path)
    elif isinstance(part, FilePart):
        value = _encode_file(part, member, compare, previous, path)
    elif isinstance(part, AudioPart):
        value = _encode_audio(part, compare, previous, path)
    elif isinstance(part, ReasoningPart):
        value = _encode_reasoning(part, compare, previous, path)
    else:
        assert isinstance(part, ToolResultPart)
        value = _encode_tool_result(part, compare, previous, path)
    out[member] = value
    apply_extra(out, part.extra, old.extra if same and old is not None else {})
    return out


def _tool_input(call: ToolCall, path: str) -> Any:
    if call.arguments is not None:
        return call.arguments
    if call.arguments_raw is not None:
        try:
            return orjson.loads(call.arguments_raw)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise EncodeError(
                "Bedrock needs tool input as JSON; the raw arguments are not", path=path, codec=CODEC
            ) from exc
    return {}


@encode_boundary(CODEC)
def encode_tool_call(call: ToolCall, path: str) -> Any:
    """A ``toolUse`` block in wire form."""
    if is_pristine(call):
        return call.raw
    raw = call.raw
    old = decode_block(raw, path) if raw is not None else None
    same = isinstance(old, ToolCall)
    out: dict[str, Any] = dict(raw) if same and raw is not None else {}
    previous = out.get("toolUse")
    inner: dict[str, Any] = dict(previous) if same and isinstance(previous, Mapping) else {}
    old_call = old if isinstance(old, ToolCall) else None
    if call.id is None and (old_call is None or old_call.id is not None):
        raise EncodeError("a Bedrock toolUse needs a toolUseId", path=path, codec=CODEC)
    if (
        not isinstance(call.id, str | None)
        or not isinstance(call.name, str)
        or not isinstance(call.type, str)
    ):
        raise EncodeError("tool call id, name and type must be strings", path=path, codec=CODEC)
    write_if_changed(inner, "toolUseId", call.id, old_call.id if old_call else None, same)
    write_if_changed(inner, "name", call.name, old_call.name if old_call else None, same)
    if (
        old_call is None
        or not json_equal(call.arguments, old_call.arguments)
        or call.arguments_raw != old_call.arguments_raw
    ):
        inner["input"] = _tool_input(call, path)
    old_type = old_call.type if old_call else "function"
    if old_call is None or call.type != old_type:
        if call.type == "function":
            inner.pop("type", None)
        else:
            inner["type"] = call.type
    out["toolUse"] = inner
    apply_extra(out, call.extra, old_call.extra if old_call else {})
    return out


def _is_tool_use(block: Any) -> bool:
    if not isinstance(block, Mapping) or not block:
        return False
    try:
        return block_type(block, BLOCK_TYPES, "$") == "toolUse"
    except DecodeError:
        return False


def _layout(original: Any, parts: list[Any], calls: list[Any]) -> list[Any]:
    """Content blocks: parts and tool calls back in the slots they held, new ones after their kind."""
    if not isinstance(original, list):
        return parts + calls
    blocks: list[Any] = []
    part_index = call_index = insert_at = 0
    for block in original:
        if _is_tool_use(block):
            if call_index < len(calls):
                blocks.append(calls[call_index])
                call_index += 1
        elif part_index < len(parts):
            blocks.append(parts[part_index])
            part_index += 1
            insert_at = len(blocks)
    blocks[insert_at:insert_at] = parts[part_index:]
    blocks.extend(calls[call_index:])
    return blocks


def _slot_paths(original: Any, path: str) -> tuple[list[str], list[str]]:
    """JSON paths of the original part slots and tool-call slots of a message's content."""
    part_paths: list[str] = []
    call_paths: list[str] = []
    if isinstance(original, list):
        for i, block in enumerate(original):
            (call_paths if _is_tool_use(block) else part_paths).append(f"{path}.content[{i}]")
    return part_paths, call_paths


def _path_at(paths: list[str], index: int, fallback: str) -> str:
    return paths[index] if index < len(paths) else f"{fallback}.content[+{index - len(paths)}]"


@encode_boundary(CODEC)
def encode_message(message: Message, path: str) -> Any:
    """A message in wire form."""
    if is_pristine(message):
        return message.raw
    raw = message.raw
    old = decode_message(raw, path) if raw is not None else None
    out: dict[str, Any] = dict(raw) if raw is not None else {}
    if not isinstance(message.role, str):
        raise EncodeError("role must be a string", path=f"{path}.role", codec=CODEC)
    out["role"] = message.role
    if message.name is not None or message.tool_call_id is not None:
        raise EncodeError("Bedrock messages have no name or tool_call_id", path=path, codec=CODEC)
    original = raw.get("content") if raw is not None else None
    part_paths, call_paths = _slot_paths(original, path)
    content = message.content
    parts: list[Any]
    if isinstance(content, str):
        parts = [{"text": content}]
    elif content is None:
        parts = []
    elif isinstance(content, tuple | list):
        parts = [encode_part(part, _path_at(part_paths, i, path)) for i, part in enumerate(content)]
    else:
        raise EncodeError(
            f"content must be text, parts or None, got {type(content).__name__}", path=path, codec=CODEC
        )
    if not isinstance(message.tool_calls, tuple | list):
        raise EncodeError("tool_calls must be a tuple", path=path, codec=CODEC)
    calls = [
        encode_tool_call(call, _path_at(call_paths, i, path)) for i, call in enumerate(message.tool_calls)
    ]
    blocks = _layout(original, parts, calls)
    unchanged = (
        isinstance(original, list)
        and len(original) == len(blocks)
        and all(new is old_block for new, old_block in zip(blocks, original, strict=True))
    )
    # A null or absent content stays so while the message still has none.
    if not unchanged and (blocks or old is None or original is not None or content is not None):
        out["content"] = blocks
    apply_extra(out, message.extra, old.extra if old is not None else {})
    return out


@encode_boundary(CODEC)
def encode_tool(tool: ToolDefinition, path: str) -> Any:
    """A ``toolConfig.tools`` entry in wire form."""
    if is_pristine(tool):
        return tool.raw
    raw = tool.raw
    old = decode_tool(raw, path) if raw is not None else None
    if not isinstance(tool.type, str) or not isinstance(tool.name, str):
        raise EncodeError("tool name and type must be strings", path=path, codec=CODEC)
    same = old is not None and old.type == tool.type
    if tool.type == "function":
        out: dict[str, Any] = dict(raw) if same and raw is not None else {}
        previous = out.get("toolSpec")
        spec: dict[str, Any] = dict(previous) if same and isinstance(previous, Mapping) else {}
        merging = same and old is not None
        write_if_changed(spec, "name", tool.name, old.name if old else None, merging)
        write_if_changed(spec, "description", tool.description, old.description if old else None, merging)
        if not merging or old is None or not json_equal(tool.parameters, old.parameters):
            schema_previous = spec.get("inputSchema")
            schema: dict[str, Any] = dict(schema_previous) if isinstance(schema_previous, Mapping) else {}
            parameters = tool.parameters
            schema["json"] = parameters if parameters is not None else {"type": "object", "properties": {}}
            spec["inputSchema"] = schema
        write_if_changed(spec, "strict", tool.strict, old.strict if old else None, merging)
        apply_extra(spec, tool.extra, old.extra if merging and old is not None else {})
        out["toolSpec"] = spec
        return out
    if same and raw is not None and old is not None:
        out = dict(raw)
        apply_extra(out, tool.extra, old.extra)
    else:
        out = dict(tool.extra)
        if tool.type not in out:
            out[tool.type] = _default_member(tool.type)
    if tool.type == "systemTool" and (old is None or not same or tool.name != old.name):
        previous = out.get("systemTool")
        out["systemTool"] = {**(previous if isinstance(previous, Mapping) else {}), "name": tool.name}
    return out


@encode_boundary(CODEC)
def encode_tool_choice(choice: ToolChoice, path: str) -> Any:
    """``toolChoice`` in wire form, merged over the original object when there was one."""
    if is_pristine(choice):
        return choice.raw
    previous = choice.raw if isinstance(choice.raw, Mapping) else None
    old = decode_tool_choice(previous, path) if previous is not None else None
    member = _CHOICE_MEMBERS.get(choice.mode) if isinstance(choice.mode, str) else None
    if member is None:
        raise EncodeError(
            f"Bedrock has no tool choice {choice.mode!r} (remove the tools instead)", path=path, codec=CODEC
        )
    same = old is not None and old.mode == choice.mode
    out: dict[str, Any] = dict(previous) if same and previous is not None else {}
    if member == "tool":
        if not isinstance(choice.name, str) or not choice.name:
            raise EncodeError("tool choice 'tool' needs a tool name", path=path, codec=CODEC)
        body = out.get("tool")
        named: dict[str, Any] = dict(body) if isinstance(body, Mapping) else {}
        named["name"] = choice.name
        out["tool"] = named
    elif not same or previous is None or _choice_kind(previous) is not None:
        out[member] = out.get(member, {})
    apply_extra(out, choice.extra, old.extra if same and old is not None else {})
    return out


def apply_system(previous: Any, system: str | None) -> list[Any] | None:
    """``system`` blocks saying ``system``: its text blocks replaced, cache points and guards kept in place.

    Returns ``None`` when nothing but cache points would be left (the field is then dropped).
    """
    blocks = list(previous) if isinstance(previous, list) else []
    kept: list[Any] = []
    placed = False
    for block in blocks:
        if isinstance(block, Mapping) and block and block_type(block, BLOCK_TYPES, "$.system") == "text":
            if system is not None and not placed:
                kept.append({**block, "text": system})
                placed = True
            continue
        kept.append(block)
    if system is not None and not placed:
        kept.insert(0, {"text": system})
    if all(isinstance(block, Mapping) and "cachePoint" in block for block in kept):
        return None
    return kept


def _encode_sequence(
    items: Any, previous: Any, encode_one: Callable[[Any, str], Any], path: str
) -> tuple[list[Any], bool]:
    """Encode ``items``; report whether the result differs from the wire list ``previous``."""
    if not isinstance(items, tuple | list):
        raise EncodeError(f"expected a tuple, got {type(items).__name__}", path=path, codec=CODEC)
    encoded = [encode_one(item, f"{path}[{i}]") for i, item in enumerate(items)]
    if not isinstance(previous, list) or len(previous) != len(encoded):
        return encoded, True
    return encoded, any(new is not old for new, old in zip(encoded, previous, strict=True))


def _merge_nested(out: dict[str, Any], key: str, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` (``None`` removes) to the object under ``key``, creating it only when needed."""
    previous = out.get(key)
    nested: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
    for name, value in changes.items():
        set_or_pop(nested, name, value)
    if nested or isinstance(previous, Mapping):
        out[key] = nested


_INFERENCE_FIELDS = (("max_tokens", "maxTokens"), ("temperature", "temperature"), ("top_p", "topP"))
_UNSUPPORTED_PARAMS = ("seed", "n", "presence_penalty", "frequency_penalty", "dimensions", "encoding_format")


def encode_params(out: dict[str, Any], params: GenerationParams, old: GenerationParams) -> None:
    """Write the parameters that differ from ``old`` into their Converse homes."""
    if params is old:
        return
    if not isinstance(params, GenerationParams):
        raise EncodeError("params must be GenerationParams", path="$", codec=CODEC)
    inference: dict[str, Any] = {}
    for field_name, key in _INFERENCE_FIELDS:
        value = getattr(params, field_name)
        if not json_equal(value, getattr(old, field_name)):
            inference[key] = value
    if not json_equal(params.stop, old.stop):
        inference["stopSequences"] = list(params.stop) if params.stop is not None else None
    if inference:
        _merge_nested(out, "inferenceConfig", inference)
    output: dict[str, Any] = {}
    if not json_equal(params.reasoning_effort, old.reasoning_effort):
        output["effort"] = params.reasoning_effort
    if not json_equal(params.response_format, old.response_format):
        output["textFormat"] = params.response_format
    if output:
        _merge_nested(out, "outputConfig", output)
    if not json_equal(params.top_k, old.top_k):
        fields = out.get("additionalModelRequestFields")
        nested = fields.get("inferenceConfig") if isinstance(fields, Mapping) else None
        if (
            isinstance(fields, Mapping)
            and "top_k" not in fields
            and isinstance(nested, Mapping)
            and "topK" in nested
        ):
            updated = dict(nested)
            set_or_pop(updated, "topK", params.top_k)
            _merge_nested(out, "additionalModelRequestFields", {"inferenceConfig": updated})
        else:
            _merge_nested(out, "additionalModelRequestFields", {"top_k": params.top_k})
    for name in _UNSUPPORTED_PARAMS:
        if not json_equal(getattr(params, name), getattr(old, name)):
            raise EncodeError(f"Bedrock Converse has no '{name}' parameter", path="$", codec=CODEC)


def _encode_tool_config(
    out: dict[str, Any],
    annotated: AnnotatedLlmRequest,
    original: Mapping[str, Any],
    old_choice: ToolChoice | None,
) -> None:
    previous = original.get("toolConfig")
    config = previous if isinstance(previous, Mapping) else None
    previous_tools = config.get("tools") if config is not None else None
    tools, tools_changed = _encode_sequence(
        annotated.tools, previous_tools, encode_tool, "$.toolConfig.tools"
    )
    if previous_tools is None and not tools:
        tools_changed = False
    choice = annotated.tool_choice
    if choice is not None and not isinstance(choice, ToolChoice):
        raise EncodeError("tool_choice must be a ToolChoice", path="$.toolConfig.toolChoice", codec=CODEC)
    previous_choice = config.get("toolChoice") if config is not None else None
    encoded_choice: Any = None
    if choice is None:
        choice_changed = old_choice is not None
    elif is_pristine(choice) and choice.raw is previous_choice:
        choice_changed = False
    else:
        encoded_choice = encode_tool_choice(choice, "$.toolConfig.toolChoice")
        choice_changed = not json_equal(encoded_choice, previous_choice)
    if not tools_changed and not choice_changed:
        return
    if not tools and (tools_changed or config is None):
        # Bedrock rejects an empty tool list, and a tool choice without tools.
        if choice is not None and choice_changed:
            raise EncodeError(
                "a tool choice needs at least one tool", path="$.toolConfig.toolChoice", codec=CODEC
            )
        out.pop("toolConfig", None)
        return
    updated: dict[str, Any] = dict(config) if config is not None else {}
    if tools_changed:
        updated["tools"] = tools
    if choice_changed:
        set_or_pop(updated, "toolChoice", encoded_choice)
    out["toolConfig"] = updated


def encode_request(
    annotated: AnnotatedLlmRequest, original: Mapping[str, Any], url: str | None
) -> Mapping[str, Any]:
    """Merge ``annotated`` over ``original``; ``original`` itself comes back when nothing changed."""
    if not isinstance(original, Mapping):
        raise EncodeError("the original request must be a JSON object", path="$", codec=CODEC)
    if is_pristine(annotated) and annotated.raw is original:
        return original
    return _merge_request(annotated, "$", original, url)


@encode_boundary(CODEC)
def _merge_request(
    annotated: AnnotatedLlmRequest, path: str, original: Mapping[str, Any], url: str | None
) -> Mapping[str, Any]:
    try:
        old_params = decode_params(original)
        old_system = system_text(original.get("system"))
        old_choice = _decode_tool_choice_only(original)
    except (DecodeError, AttributeError, TypeError) as exc:
        raise EncodeError(f"the original request does not decode: {exc}", path="$", codec=CODEC) from exc
    if not isinstance(annotated, AnnotatedLlmRequest):
        raise EncodeError("expected an AnnotatedLlmRequest", path="$", codec=CODEC)
    if url is not None:
        model, stream = route_facts(url)
        if annotated.model != model:
            raise EncodeError(
                "the model is the {modelId} of the URL; a request body cannot change it",
                path="$",
                codec=CODEC,
            )
        if annotated.stream != stream:
            raise EncodeError("streaming is chosen by the route (/converse-stream)", path="$", codec=CODEC)
    if annotated.operation != "chat" or annotated.inputs is not None:
        raise EncodeError("bedrock-converse encodes chat requests only", path="$", codec=CODEC)
    if annotated.system is not None and not isinstance(annotated.system, str):
        raise EncodeError("system must be a string", path="$.system", codec=CODEC)
    out = dict(original)
    messages, messages_changed = _encode_sequence(
        annotated.messages, original.get("messages"), encode_message, "$.messages"
    )
    if messages_changed and (messages or "messages" in original):
        out["messages"] = messages
    if annotated.system != old_system:
        system = apply_system(original.get("system"), annotated.system)
        set_or_pop(out, "system", system)
    apply_extra(out, annotated.extra, split_known(original, _REQUEST_KEYS))
    encode_params(out, annotated.params, old_params)
    _encode_tool_config(out, annotated, original, old_choice)
    return original if json_equal(out, original) else out


def looks_like_request(payload: Mapping[str, Any]) -> bool:
    """Whether ``payload`` has the shape of a Converse request body."""
    if "model" in payload:
        return False
    if any(key in payload for key in ("inferenceConfig", "toolConfig", "additionalModelRequestFields")):
        return True
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return False
    system = payload.get("system")
    if isinstance(system, list) and system and isinstance(system[0], Mapping) and "type" not in system[0]:
        return True
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and content:
            first = content[0]
            return isinstance(first, Mapping) and "type" not in first and bool(first)
    return False
