"""Anthropic Messages requests: wire JSON ↔ :class:`~nemoflow.AnnotatedLlmRequest`.

Wire reference: Anthropic API reference "Messages" (``POST /v1/messages``) and the ``anthropic`` SDK's
``MessageCreateParams`` types; Bedrock and Vertex AI take the same body with ``anthropic_version`` and
without ``model`` (see :mod:`._routes`).

How the wire maps onto the model:

* ``system`` (a string, or an array of text blocks that may carry ``cache_control``) is the normalized
  system text: a string as sent, the text blocks' texts joined by a blank line (two newlines).
* A message's content blocks become parts, except ``tool_use`` blocks, which become
  :attr:`Message.tool_calls` (arguments = the ``input`` object). ``tool_result`` →
  :class:`ToolResultPart`, ``thinking`` / ``redacted_thinking`` → :class:`ReasoningPart` (the redacted
  ``data`` is kept as the signature), ``image`` → :class:`ImagePart`, ``document`` → :class:`FilePart`,
  ``text`` → :class:`TextPart`; server-tool blocks (``server_tool_use``, ``web_search_tool_result``, …)
  and every other type → :class:`OtherPart`: they are not client tool calls.
* ``stop_sequences`` → ``params.stop``; ``output_config.effort`` → ``params.reasoning_effort`` and
  ``output_config.format`` → ``params.response_format`` (``output_config`` itself stays in ``extra``).
  The ``thinking`` configuration (with its ``budget_tokens``), ``metadata`` and ``anthropic_version``
  stay in ``extra``: the model has no field for a thinking budget.
* ``tool_choice`` ``auto|any|tool|none`` → modes ``auto|required|tool|none``;
  ``disable_parallel_tool_use`` stays in the choice's ``extra``. Custom tools (``input_schema``) are
  ``function`` tools; server tools (``web_search_20250305``, ``bash_20250124``, …) keep their own type.

Encode is a merge: an object still pristine is written back as its original dict; an edited one is its
original dict with only the changed fields rewritten; a new one is written fresh. An edited assistant
message keeps its block order: parts go back to the positions parts had and tool calls to the positions
``tool_use`` blocks had; new parts go after the last part, new calls at the end.

A new ``system`` text over a block array keeps the blocks when the edit only adds text before or after
the old text (a new block is inserted, so ``cache_control`` breakpoints stay where they were); any other
edit writes one block carrying the first text block's keys (``cache_control`` included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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

from ._routes import Route, route_of_url

CODEC = "anthropic-messages"
SYSTEM_SEPARATOR = "\n\n"
"""Joins the texts of ``system`` blocks into the normalized system text."""

_REQUEST_KEYS = frozenset(
    {
        "model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "top_k",
        "stream", "tools", "tool_choice",
    }
)  # fmt: skip
_MESSAGE_KEYS = frozenset({"role", "content"})
_TEXT_KEYS = frozenset({"type", "text"})
_SOURCE_BLOCK_KEYS = frozenset({"type", "source"})
_TOOL_USE_KEYS = frozenset({"type", "id", "name", "input"})
_TOOL_RESULT_KEYS = frozenset({"type", "tool_use_id", "content", "is_error"})
_THINKING_KEYS = frozenset({"type", "thinking", "signature"})
_REDACTED_KEYS = frozenset({"type", "data"})
_TYPE_ONLY = frozenset({"type"})
_CUSTOM_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "strict"})
_SERVER_TOOL_KEYS = frozenset({"type", "name"})
_TOOL_CHOICE_KEYS = frozenset({"type", "name"})

FUNCTION = "function"
"""The normalized type of client tools and client tool calls."""
_CUSTOM_TOOL_TYPES = (None, "custom")

_new_message = constructor(Message, pristine=True)
_new_text_part = constructor(TextPart, pristine=True)
_new_tool_call = constructor(ToolCall, pristine=True)
_new_tool = constructor(ToolDefinition, pristine=True)
_new_request = constructor(AnnotatedLlmRequest, pristine=True)
_new_params = constructor(GenerationParams, pristine=False)

# ----------------------------------------------------------------------------------------- decode


def expect_mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    return expect_object(value, path, what, CODEC)


def expect_list(value: Any, path: str, what: str) -> Sequence[Any]:
    return expect_array(value, path, what, CODEC)


def _source_type(source: Mapping[str, Any], path: str) -> str | None:
    return optional_str(source.get("type"), f"{path}.source.type", CODEC)


def _image_part(block: Mapping[str, Any], path: str) -> ImagePart:
    source = expect_mapping(block.get("source"), f"{path}.source", "an image source")
    kind = _source_type(source, path)
    url = data = media_type = file_id = None
    if kind == "base64":
        data = optional_str(source.get("data"), f"{path}.source.data", CODEC)
        media_type = optional_str(source.get("media_type"), f"{path}.source.media_type", CODEC)
    elif kind == "url":
        url = optional_str(source.get("url"), f"{path}.source.url", CODEC)
    elif kind == "file":
        file_id = optional_str(source.get("file_id"), f"{path}.source.file_id", CODEC)
    return ImagePart(
        url=url,
        data=data,
        media_type=media_type,
        file_id=file_id,
        extra=split_known(block, _SOURCE_BLOCK_KEYS),
        raw=block,
    )


def _file_part(block: Mapping[str, Any], path: str) -> FilePart:
    source = expect_mapping(block.get("source"), f"{path}.source", "a document source")
    kind = _source_type(source, path)
    url = data = media_type = file_id = None
    if kind in ("base64", "text"):
        data = optional_str(source.get("data"), f"{path}.source.data", CODEC)
        media_type = optional_str(source.get("media_type"), f"{path}.source.media_type", CODEC)
    elif kind == "url":
        url = optional_str(source.get("url"), f"{path}.source.url", CODEC)
    elif kind == "file":
        file_id = optional_str(source.get("file_id"), f"{path}.source.file_id", CODEC)
    # A "content" source (the document given as content blocks) has no field here: it rides in ``raw``.
    return FilePart(
        file_id=file_id,
        data=data,
        media_type=media_type,
        url=url,
        extra=split_known(block, _SOURCE_BLOCK_KEYS),
        raw=block,
    )


def decode_block(raw: Any, path: str) -> ContentPart:
    """One content block that is not a top-level ``tool_use`` (those become tool calls)."""
    block = expect_mapping(raw, path, "a content block")
    block_type = block.get("type")
    if not isinstance(block_type, str):
        raise DecodeError("content block has no string 'type'", path=f"{path}.type", codec=CODEC)
    result: ContentPart
    if block_type == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise DecodeError("text block needs a string 'text'", path=f"{path}.text", codec=CODEC)
        return _new_text_part(text, "text", split_known(block, _TEXT_KEYS), block)
    elif block_type == "image":
        result = _image_part(block, path)
    elif block_type == "document":
        result = _file_part(block, path)
    elif block_type == "tool_result":
        content_raw = block.get("content")
        content: Any
        if content_raw is None or isinstance(content_raw, str):
            content = content_raw
        else:
            items = expect_list(content_raw, f"{path}.content", "tool_result content")
            content = tuple([decode_block(item, f"{path}.content[{i}]") for i, item in enumerate(items)])
        result = ToolResultPart(
            tool_call_id=optional_str(block.get("tool_use_id"), f"{path}.tool_use_id", CODEC),
            content=content,
            is_error=optional_bool(block.get("is_error"), f"{path}.is_error", CODEC),
            extra=split_known(block, _TOOL_RESULT_KEYS),
            raw=block,
        )
    elif block_type == "thinking":
        result = ReasoningPart(
            text=optional_str(block.get("thinking"), f"{path}.thinking", CODEC),
            signature=optional_str(block.get("signature"), f"{path}.signature", CODEC),
            extra=split_known(block, _THINKING_KEYS),
            raw=block,
        )
    elif block_type == "redacted_thinking":
        result = ReasoningPart(
            text=None,
            signature=optional_str(block.get("data"), f"{path}.data", CODEC),
            redacted=True,
            extra=split_known(block, _REDACTED_KEYS),
            raw=block,
        )
    else:
        # Server-tool blocks (server_tool_use, web_search_tool_result, ...), search results, container
        # uploads and types this codec does not know yet: kept whole.
        result = OtherPart(type=block_type, extra=split_known(block, _TYPE_ONLY), raw=block)
    return mark_pristine(result)


def decode_tool_use(block: Mapping[str, Any], path: str) -> ToolCall:
    """A ``tool_use`` block of a message: a client tool call (``input`` as the arguments)."""
    name = block.get("name")
    if not isinstance(name, str):
        raise DecodeError("tool_use block needs a string 'name'", path=f"{path}.name", codec=CODEC)
    call_id = block.get("id")
    if call_id is not None and not isinstance(call_id, str):
        optional_str(call_id, f"{path}.id", CODEC)  # raises with the path
    extra = split_known(block, _TOOL_USE_KEYS)
    return _new_tool_call(call_id, name, block.get("input"), None, FUNCTION, extra, block)


def _is_tool_use(item: Any) -> bool:
    return isinstance(item, Mapping) and item.get("type") == "tool_use"


def decode_message(raw: Any, path: str) -> Message:
    """One entry of ``messages``."""
    message = expect_mapping(raw, path, "a message")
    role = message.get("role")
    if not isinstance(role, str):
        raise DecodeError("message needs a string 'role'", path=f"{path}.role", codec=CODEC)
    content_raw = message.get("content")
    content: str | tuple[ContentPart, ...] | None
    calls: tuple[ToolCall, ...] = ()
    if content_raw is None or isinstance(content_raw, str):
        content = content_raw
    else:
        items = expect_list(content_raw, f"{path}.content", "content")
        parts: list[ContentPart] = []
        tool_calls: list[ToolCall] = []
        for i, item in enumerate(items):
            if _is_tool_use(item):
                tool_calls.append(decode_tool_use(item, f"{path}.content[{i}]"))
            else:
                parts.append(decode_block(item, f"{path}.content[{i}]"))
        content = tuple(parts)
        calls = tuple(tool_calls)
    extra = split_known(message, _MESSAGE_KEYS)
    return _new_message(role, content, None, calls, None, extra, message)


def decode_system(value: Any, path: str = "$.system") -> str | None:
    """The normalized system text of a ``system`` value (a string, or text blocks joined by a blank line)."""
    if value is None or isinstance(value, str):
        return value
    blocks = expect_list(value, path, "system")
    texts: list[str] = []
    for i, item in enumerate(blocks):
        block = expect_mapping(item, f"{path}[{i}]", "a system block")
        if block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise DecodeError(
                    "system text block needs a string 'text'", path=f"{path}[{i}].text", codec=CODEC
                )
            texts.append(text)
    return SYSTEM_SEPARATOR.join(texts) if texts else None


def decode_tool(raw: Any, path: str) -> ToolDefinition:
    """One entry of ``tools``: a custom (client) tool, or a server tool kept with its own type."""
    tool = expect_mapping(raw, path, "a tool")
    tool_type = tool.get("type")
    if tool_type in _CUSTOM_TOOL_TYPES:
        name = tool.get("name")
        if not isinstance(name, str):
            raise DecodeError("tool needs a string 'name'", path=f"{path}.name", codec=CODEC)
        description = optional_str(tool.get("description"), f"{path}.description", CODEC)
        strict = optional_bool(tool.get("strict"), f"{path}.strict", CODEC)
        extra = split_known(tool, _CUSTOM_TOOL_KEYS)
        return _new_tool(name, description, tool.get("input_schema"), strict, FUNCTION, extra, tool)
    if not isinstance(tool_type, str):
        raise DecodeError("tool 'type' must be a string", path=f"{path}.type", codec=CODEC)
    name = optional_str(tool.get("name"), f"{path}.name", CODEC)
    extra = split_known(tool, _SERVER_TOOL_KEYS)
    return _new_tool(tool_type if name is None else name, None, None, None, tool_type, extra, tool)


_CHOICE_MODES: dict[str, Literal["auto", "none", "required", "tool"]] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
    "none": "none",
}
_MODE_TYPES = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}


def decode_tool_choice(raw: Any, path: str) -> ToolChoice:
    """``tool_choice``: ``{"type": "auto"|"any"|"tool"|"none", "name"?, "disable_parallel_tool_use"?}``."""
    if isinstance(raw, str):  # some Anthropic-compatible servers accept the bare type
        return mark_pristine(ToolChoice(mode=_CHOICE_MODES.get(raw, "auto"), raw=raw))
    choice = expect_mapping(raw, path, "tool_choice")
    choice_type = optional_str(choice.get("type"), f"{path}.type", CODEC)
    name = optional_str(choice.get("name"), f"{path}.name", CODEC)
    mode = _CHOICE_MODES.get(choice_type or "auto", "auto")  # an unknown type is kept through ``raw``
    return mark_pristine(
        ToolChoice(mode=mode, name=name, extra=split_known(choice, _TOOL_CHOICE_KEYS), raw=choice)
    )


def decode_stop(value: Any, path: str) -> tuple[str, ...] | None:
    """``stop_sequences``: an array of strings (a bare string is taken as one sequence)."""
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    items = expect_list(value, path, "stop_sequences")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise DecodeError("stop sequences must be strings", path=f"{path}[{i}]", codec=CODEC)
    return tuple(items)


def decode_params(body: Mapping[str, Any]) -> GenerationParams:
    """The sampling and output parameters of a request."""
    get = body.get
    effort = None
    response_format = None
    output_config = get("output_config")
    if isinstance(output_config, Mapping):
        effort = optional_str(output_config.get("effort"), "$.output_config.effort", CODEC)
        response_format = output_config.get("format")
    stop = get("stop_sequences")
    return _new_params(
        optional_number(get("temperature"), "$.temperature", CODEC),
        optional_number(get("top_p"), "$.top_p", CODEC),
        optional_int(get("top_k"), "$.top_k", CODEC),
        optional_int(get("max_tokens"), "$.max_tokens", CODEC),
        decode_stop(stop, "$.stop_sequences") if stop is not None else None,
        None,
        None,
        None,
        None,
        response_format,
        effort,
    )


def decode_model(body: Mapping[str, Any], route: Route | None) -> str | None:
    """``model`` from the body, else from the URL (Bedrock ``{modelId}``, Vertex ``models/{m}``)."""
    model = body.get("model")
    if isinstance(model, str):
        return model
    if model is None:
        return route.model if route is not None else None
    return optional_str(model, "$.model", CODEC)  # raises with the path


def decode_stream_flag(body: Mapping[str, Any], route: Route | None) -> bool:
    """``stream`` from the body, else from the route (Bedrock ``invoke-with-response-stream``)."""
    stream = optional_bool(body.get("stream"), "$.stream", CODEC)
    if stream is not None:
        return stream
    return bool(route is not None and route.stream)


def _decode_optional_tool_choice(body: Mapping[str, Any]) -> ToolChoice | None:
    raw = body.get("tool_choice")
    return decode_tool_choice(raw, "$.tool_choice") if raw is not None else None


def decode_request(request: Any, url: str | None) -> AnnotatedLlmRequest:
    """A whole Messages request body."""
    body = expect_mapping(request, "$", "the request body")
    route = route_of_url(url)
    if route is not None and route.platform == "bedrock" and "anthropic_version" not in body:
        # Bedrock's invoke path serves every model family; only this key marks an Anthropic body.
        raise DecodeError(
            "a Bedrock invoke body without 'anthropic_version' is not an Anthropic Messages request",
            path="$.anthropic_version",
            codec=CODEC,
        )
    messages_raw = body.get("messages")
    messages: tuple[Message, ...] = ()
    if messages_raw is not None:
        items = expect_list(messages_raw, "$.messages", "messages")
        messages = tuple([decode_message(item, f"$.messages[{i}]") for i, item in enumerate(items)])
    tools_raw = body.get("tools")
    tools: tuple[ToolDefinition, ...] = ()
    if tools_raw is not None:
        items = expect_list(tools_raw, "$.tools", "tools")
        tools = tuple([decode_tool(item, f"$.tools[{i}]") for i, item in enumerate(items)])
    return _new_request(
        decode_model(body, route),
        decode_stream_flag(body, route),
        decode_system(body.get("system")),
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


def _no_place_for(value: Any, what: str, path: str) -> None:
    if value is not None:
        raise EncodeError(f"the Anthropic wire has no place for {what}", path=path, codec=CODEC)


def _parse_data_url(url: str) -> tuple[str | None, str] | None:
    """``(media type, base64 payload)`` of a ``data:…;base64,…`` URL, else ``None``."""
    if not url.startswith("data:"):
        return None
    header, comma, payload = url[5:].partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    return header[: -len(";base64")] or None, payload


def _image_source(part: ImagePart, path: str) -> dict[str, Any]:
    if part.data is not None:
        if part.media_type is None:
            raise EncodeError("an inline image needs a media_type", path=path, codec=CODEC)
        return {"type": "base64", "media_type": part.media_type, "data": part.data}
    if part.url is not None:
        inline = _parse_data_url(part.url)
        if inline is None:
            return {"type": "url", "url": part.url}
        media_type = part.media_type or inline[0]
        if media_type is None:
            raise EncodeError("an inline image needs a media type", path=path, codec=CODEC)
        return {"type": "base64", "media_type": media_type, "data": inline[1]}
    if part.file_id is not None:
        return {"type": "file", "file_id": part.file_id}
    raise EncodeError("an image needs data, a url or a file_id", path=path, codec=CODEC)


def _document_source(part: FilePart, path: str) -> dict[str, Any]:
    if part.data is not None:
        data, media_type = part.data, part.media_type
        inline = _parse_data_url(data)
        if inline is not None:
            media_type, data = media_type or inline[0], inline[1]
        if media_type == "text/plain":
            return {"type": "text", "media_type": media_type, "data": data}
        # Inline documents other than plain text are base64 PDFs on the Anthropic wire.
        return {"type": "base64", "media_type": media_type or "application/pdf", "data": data}
    if part.url is not None:
        return {"type": "url", "url": part.url}
    if part.file_id is not None:
        return {"type": "file", "file_id": part.file_id}
    raise EncodeError("a document needs data, a url or a file_id", path=path, codec=CODEC)


def _write_source(
    out: dict[str, Any], new_source: Callable[[], dict[str, Any]], unchanged: bool, previous: Any
) -> None:
    if unchanged:
        return  # the original source object stays, unknown keys and all
    source = new_source()
    if isinstance(previous, Mapping) and previous.get("type") == source["type"]:
        source = {**previous, **source}
    out["source"] = source


def _same_text(new: Any, old: Any) -> bool:
    return (new is None and old is None) or (isinstance(new, str) and isinstance(old, str) and new == old)


@encode_boundary(CODEC)
def encode_part(part: ContentPart, path: str) -> Any:
    """A content part in wire form: its original dict when untouched, else a merge over it."""
    if is_pristine(part):
        return part.raw
    raw: Mapping[str, Any] = part.raw or {}
    old: ContentPart | None = decode_block(raw, path) if part.raw is not None else None
    same_type = (
        old is not None
        and old.kind == part.kind
        and (not isinstance(part, OtherPart) or (isinstance(old, OtherPart) and old.type == part.type))
        and (
            not isinstance(part, ReasoningPart)
            or (isinstance(old, ReasoningPart) and old.redacted == part.redacted)
        )
    )
    out: dict[str, Any] = dict(raw) if same_type else {}
    old_extra = old.extra if (same_type and old is not None) else {}
    if isinstance(part, TextPart):
        if not isinstance(part.text, str):
            raise EncodeError("text must be a string", path=path, codec=CODEC)
        out["type"] = "text"
        out["text"] = part.text
    elif isinstance(part, ImagePart):
        _no_place_for(part.detail, "an image 'detail'", path)
        out["type"] = "image"
        unchanged = isinstance(old, ImagePart) and same_type and _image_fields(part) == _image_fields(old)
        _write_source(
            out, lambda: _image_source(part, path), unchanged, raw.get("source") if same_type else None
        )
    elif isinstance(part, FilePart):
        _no_place_for(part.filename, "a document file name (use extra['title'])", path)
        out["type"] = "document"
        unchanged = isinstance(old, FilePart) and same_type and _file_fields(part) == _file_fields(old)
        _write_source(
            out, lambda: _document_source(part, path), unchanged, raw.get("source") if same_type else None
        )
    elif isinstance(part, ReasoningPart):
        previous = old if (same_type and isinstance(old, ReasoningPart)) else None
        if part.redacted:
            out["type"] = "redacted_thinking"
            if not isinstance(part.signature, str):
                raise EncodeError(
                    "a redacted thinking block needs its data as the signature", path=path, codec=CODEC
                )
            write_if_changed(
                out, "data", part.signature, previous.signature if previous else None, previous is not None
            )
        else:
            out["type"] = "thinking"
            write_if_changed(
                out, "thinking", part.text, previous.text if previous else None, previous is not None
            )
            write_if_changed(
                out,
                "signature",
                part.signature,
                previous.signature if previous else None,
                previous is not None,
            )
    elif isinstance(part, ToolResultPart):
        _no_place_for(part.name, "a tool result 'name'", path)
        previous_result = old if (same_type and isinstance(old, ToolResultPart)) else None
        merging = previous_result is not None
        out["type"] = "tool_result"
        write_if_changed(
            out,
            "tool_use_id",
            part.tool_call_id,
            previous_result.tool_call_id if previous_result else None,
            merging,
        )
        content = part.content
        if isinstance(content, tuple | list):
            blocks, changed = _encode_sequence(
                content, raw.get("content") if merging else None, encode_part, f"{path}.content"
            )
            if changed or not merging:
                out["content"] = blocks
        elif content is None or isinstance(content, str):
            if not merging or previous_result is None or not _same_text(content, previous_result.content):
                set_or_pop(out, "content", content)
        else:
            raise EncodeError(
                "tool result content must be text, a tuple of parts or None", path=path, codec=CODEC
            )
        write_if_changed(
            out, "is_error", part.is_error, previous_result.is_error if previous_result else None, merging
        )
    elif isinstance(part, OtherPart):
        if not isinstance(part.type, str):
            raise EncodeError("a part type must be a string", path=path, codec=CODEC)
        out["type"] = part.type
    elif isinstance(part, AudioPart | RefusalPart):
        raise EncodeError(f"Anthropic messages have no {part.kind} parts", path=path, codec=CODEC)
    else:
        raise EncodeError(f"not a content part: {type(part).__name__}", path=path, codec=CODEC)
    apply_extra(out, part.extra, old_extra)
    return out


def _image_fields(part: ImagePart) -> tuple[Any, ...]:
    return (part.url, part.data, part.media_type, part.file_id)


def _file_fields(part: FilePart) -> tuple[Any, ...]:
    return (part.url, part.data, part.media_type, part.file_id)


def _tool_input(call: ToolCall, path: str) -> Any:
    if call.arguments is not None:
        return call.arguments
    if call.arguments_raw is not None:
        try:
            return orjson.loads(call.arguments_raw)
        except orjson.JSONDecodeError as exc:
            raise EncodeError(f"tool_use input must be JSON: {exc}", path=path, codec=CODEC) from exc
    return {}


@encode_boundary(CODEC)
def encode_tool_use(call: ToolCall, path: str) -> Any:
    """A tool call as a ``tool_use`` block."""
    if is_pristine(call):
        return call.raw
    old = (
        decode_tool_use(expect_mapping(call.raw, path, "a tool_use block"), path)
        if call.raw is not None
        else None
    )
    out: dict[str, Any] = dict(call.raw) if (old is not None and call.raw is not None) else {}
    out["type"] = "tool_use"
    write_if_changed(out, "id", call.id, old.id if old else None, old is not None)
    if not isinstance(call.name, str):
        raise EncodeError("a tool call name must be a string", path=path, codec=CODEC)
    out["name"] = call.name
    if old is None or not json_equal(call.arguments, old.arguments) or call.arguments_raw is not None:
        out["input"] = _tool_input(call, f"{path}.input")
    apply_extra(out, call.extra, old.extra if old is not None else {})
    return out


def _encode_blocks(
    parts: Sequence[ContentPart], calls: Sequence[ToolCall], previous: Any, path: str
) -> tuple[list[Any], bool]:
    """A message's blocks: parts where parts were, tool calls where ``tool_use`` blocks were."""
    template: list[Any] = previous if isinstance(previous, list) else []
    positions = {id(block): i for i, block in enumerate(template)}

    def fills(slot: int, item: Any) -> bool:
        # An item decoded from a later block leaves this slot empty (the block here was removed);
        # anything else (its own block, a new item, one moved from elsewhere) takes the slot.
        raw = getattr(item, "raw", None)
        origin = positions.get(id(raw)) if raw is not None else None
        return origin is None or origin <= slot

    out: list[Any] = []
    next_part = next_call = 0
    insert_at = 0
    for slot, item in enumerate(template):
        if _is_tool_use(item):
            if next_call < len(calls) and fills(slot, calls[next_call]):
                out.append(encode_tool_use(calls[next_call], f"{path}.content[{len(out)}]"))
                next_call += 1
        elif next_part < len(parts) and fills(slot, parts[next_part]):
            out.append(encode_part(parts[next_part], f"{path}.content[{len(out)}]"))
            next_part += 1
            insert_at = len(out)
    new_parts = [
        encode_part(part, f"{path}.content[{insert_at + i}]") for i, part in enumerate(parts[next_part:])
    ]
    out[insert_at:insert_at] = new_parts
    out.extend(
        encode_tool_use(call, f"{path}.content[{len(out) + i}]") for i, call in enumerate(calls[next_call:])
    )
    changed = len(out) != len(template) or any(new is not old for new, old in zip(out, template, strict=True))
    return out, changed


@encode_boundary(CODEC)
def encode_message(message: Message, path: str) -> Any:
    """A message in wire form."""
    if is_pristine(message):
        return message.raw
    old = decode_message(message.raw, path) if message.raw is not None else None
    raw: Mapping[str, Any] = message.raw or {}
    out: dict[str, Any] = dict(raw)
    if not isinstance(message.role, str):
        raise EncodeError("a message role must be a string", path=f"{path}.role", codec=CODEC)
    out["role"] = message.role
    _no_place_for(message.name, "a message 'name'", f"{path}.name")
    _no_place_for(message.tool_call_id, "a message 'tool_call_id' (use a ToolResultPart)", path)
    content, calls = message.content, message.tool_calls
    if not isinstance(calls, tuple | list):
        raise EncodeError(f"tool_calls must be a tuple, got {type(calls).__name__}", path=path, codec=CODEC)
    if isinstance(content, str) and not calls:
        if old is None or old.tool_calls or not _same_text(content, old.content):
            out["content"] = content
    elif content is None and not calls:
        if old is not None and (old.content is not None or old.tool_calls):
            out.pop("content", None)
    else:
        parts: Sequence[ContentPart]
        if isinstance(content, str):
            parts = (TextPart(text=content),)
        elif content is None:
            parts = ()
        elif isinstance(content, tuple | list):
            parts = content
        else:
            raise EncodeError("content must be text, a tuple of parts or None", path=path, codec=CODEC)
        blocks, changed = _encode_blocks(parts, calls, raw.get("content"), path)
        if changed or old is None:
            out["content"] = blocks
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
    merging = same_type and old is not None
    if not isinstance(tool.name, str):
        raise EncodeError("a tool name must be a string", path=path, codec=CODEC)
    if tool.type == FUNCTION:
        out["name"] = tool.name
        write_if_changed(out, "description", tool.description, old.description if old else None, merging)
        if tool.parameters is None and not merging:
            out["input_schema"] = {"type": "object"}  # required by the API
        else:
            write_if_changed(out, "input_schema", tool.parameters, old.parameters if old else None, merging)
        write_if_changed(out, "strict", tool.strict, old.strict if old else None, merging)
    else:
        if not isinstance(tool.type, str):
            raise EncodeError("a tool type must be a string", path=path, codec=CODEC)
        for value, what in ((tool.description, "description"), (tool.parameters, "parameters")):
            _no_place_for(value, f"a server tool {what}", path)
        _no_place_for(tool.strict, "a server tool 'strict' flag (use extra)", path)
        out["type"] = tool.type
        if merging and old is not None:
            if tool.name != old.name:
                out["name"] = tool.name
        elif tool.name != tool.type:
            out["name"] = tool.name
    apply_extra(out, tool.extra, old.extra if (merging and old is not None) else {})
    return out


@encode_boundary(CODEC)
def encode_tool_choice(choice: ToolChoice, path: str = "$.tool_choice") -> Any:
    """``tool_choice`` in wire form, merged over the original object when there was one."""
    if is_pristine(choice):
        return choice.raw
    previous = choice.raw if isinstance(choice.raw, Mapping) else None
    old = decode_tool_choice(previous, path) if previous is not None else None
    out: dict[str, Any] = dict(previous) if previous is not None else {}
    mode = choice.mode
    if mode not in _MODE_TYPES:
        raise EncodeError(f"unknown tool_choice mode {mode!r}", path=path, codec=CODEC)
    if old is None or old.mode != mode:
        out["type"] = _MODE_TYPES[mode]
    if mode == "tool":
        unchanged = old is not None and old.mode == "tool" and old.name == choice.name
        if not unchanged:
            if not isinstance(choice.name, str) or not choice.name:
                raise EncodeError("tool_choice mode 'tool' needs a tool name", path=path, codec=CODEC)
            out["name"] = choice.name
    elif old is not None and old.mode == "tool":
        out.pop("name", None)  # only a forced choice names a tool
    else:
        write_if_changed(out, "name", choice.name, old.name if old else None, old is not None)
    apply_extra(out, choice.extra, old.extra if old is not None else {})
    return out


def system_wire(new: str, previous: Any, old_text: str | None) -> Any:
    """The ``system`` value that says ``new``, in the form the original used."""
    if not isinstance(new, str):
        raise EncodeError("system must be a string or None", path="$.system", codec=CODEC)
    if not isinstance(previous, list) or not previous:
        return new
    if old_text:
        prefix_end = len(new) - len(old_text) - len(SYSTEM_SEPARATOR)
        if prefix_end > 0 and new.endswith(SYSTEM_SEPARATOR + old_text):
            return [{"type": "text", "text": new[:prefix_end]}, *previous]
        suffix_start = len(old_text) + len(SYSTEM_SEPARATOR)
        if len(new) > suffix_start and new.startswith(old_text + SYSTEM_SEPARATOR):
            return [*previous, {"type": "text", "text": new[suffix_start:]}]
    first = next((b for b in previous if isinstance(b, Mapping) and b.get("type") == "text"), None)
    block: dict[str, Any] = dict(first) if first is not None else {"type": "text"}
    block["text"] = new
    return [block]


_UNSUPPORTED_PARAMS = ("seed", "n", "presence_penalty", "frequency_penalty", "dimensions", "encoding_format")
_PLAIN_PARAMS = ("temperature", "top_p", "top_k", "max_tokens")


def encode_params(out: dict[str, Any], params: GenerationParams, old: GenerationParams) -> None:
    """Write the parameters that differ from ``old``."""
    if params is old:
        return
    if not isinstance(params, GenerationParams):
        raise EncodeError("params must be GenerationParams", path="$", codec=CODEC)
    for name in _PLAIN_PARAMS:
        value = getattr(params, name)
        if not json_equal(value, getattr(old, name)):
            set_or_pop(out, name, value)
    if not json_equal(params.stop, old.stop):
        stop = params.stop
        if stop is not None and not isinstance(stop, tuple | list):
            raise EncodeError("stop must be a tuple of strings", path="$.stop_sequences", codec=CODEC)
        set_or_pop(out, "stop_sequences", list(stop) if stop is not None else None)
    effort_changed = not json_equal(params.reasoning_effort, old.reasoning_effort)
    format_changed = not json_equal(params.response_format, old.response_format)
    if effort_changed or format_changed:
        current = out.get("output_config")
        config: dict[str, Any] = dict(current) if isinstance(current, Mapping) else {}
        if effort_changed:
            set_or_pop(config, "effort", params.reasoning_effort)
        if format_changed:
            set_or_pop(config, "format", params.response_format)
        set_or_pop(out, "output_config", config or None)
    for name in _UNSUPPORTED_PARAMS:
        if getattr(params, name) != getattr(old, name):
            raise EncodeError(f"Anthropic Messages has no '{name}'", path=f"$.{name}", codec=CODEC)


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


def encode_request(
    annotated: AnnotatedLlmRequest, original: Mapping[str, Any], url: str | None
) -> Mapping[str, Any]:
    """Merge ``annotated`` over ``original``; ``original`` itself comes back when nothing changed.

    Anthropic reports usage in every stream (``message_start`` / ``message_delta``), so nothing is
    ever injected.
    """
    if not isinstance(original, Mapping):
        raise EncodeError("the original request must be a JSON object", path="$", codec=CODEC)
    if is_pristine(annotated) and annotated.raw is original:
        return original
    return _merge_request(annotated, "$", original, url)


@encode_boundary(CODEC)
def _merge_request(
    annotated: AnnotatedLlmRequest, path: str, original: Mapping[str, Any], url: str | None
) -> Mapping[str, Any]:
    route = route_of_url(url)
    try:
        old_model = decode_model(original, route)
        old_stream = decode_stream_flag(original, route)
        old_params = decode_params(original)
        old_tool_choice = _decode_optional_tool_choice(original)
        old_system = decode_system(original.get("system"))
    except (DecodeError, AttributeError, TypeError) as exc:
        raise EncodeError(f"the original request does not decode: {exc}", path="$", codec=CODEC) from exc
    if annotated.operation != "chat" or annotated.inputs is not None:
        raise EncodeError("anthropic-messages encodes chat requests only", path="$", codec=CODEC)
    old_extra = split_known(original, _REQUEST_KEYS)
    out = dict(original)
    if annotated.model != old_model:
        if "model" not in original and route is not None and route.model is not None:
            raise EncodeError(
                "this route names the model in the URL; encode cannot move the request",
                path="$.model",
                codec=CODEC,
            )
        set_or_pop(out, "model", annotated.model)
    if annotated.stream != old_stream:
        if route is not None and route.stream is not None:
            raise EncodeError("this route fixes the streaming mode in the URL", path="$.stream", codec=CODEC)
        if annotated.stream or "stream" in out:
            out["stream"] = annotated.stream
    messages, messages_changed = _encode_sequence(
        annotated.messages, original.get("messages"), encode_message, "$.messages"
    )
    if messages_changed and (messages or "messages" in original):
        out["messages"] = messages
    if annotated.system != old_system:
        if annotated.system is None:
            out.pop("system", None)
        else:
            out["system"] = system_wire(annotated.system, original.get("system"), old_system)
    apply_extra(out, annotated.extra, old_extra)  # before the params: output_config lives in extra
    encode_params(out, annotated.params, old_params)
    tools, tools_changed = _encode_sequence(annotated.tools, original.get("tools"), encode_tool, "$.tools")
    if tools_changed and (tools or "tools" in original):
        if tools:
            out["tools"] = tools
        else:
            out.pop("tools", None)  # and tool_choice, which the API rejects without tools
            if annotated.tool_choice == old_tool_choice:
                out.pop("tool_choice", None)
    choice = annotated.tool_choice
    if choice is None:
        if old_tool_choice is not None:
            out.pop("tool_choice", None)
    elif not (is_pristine(choice) and choice.raw is original.get("tool_choice")):
        wire_choice = encode_tool_choice(choice, "$.tool_choice")
        if not json_equal(wire_choice, original.get("tool_choice")):
            out["tool_choice"] = wire_choice
    return original if json_equal(out, original) else out
