"""Hooks that run around each LLM call: guardrails, policies and sanitizers, with useful built-ins.

Order per call: guardrails (may block) → policies (rewrite what is sent) → send → sanitizers (change only
what is recorded, never what is sent or returned). Everything works on the provider-neutral annotated
model, so one hook serves every provider.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeAlias, runtime_checkable

from nemoflow._model import (
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    AudioPart,
    Choice,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    ReasoningPart,
    TextPart,
    ToolResultPart,
)

__all__ = [
    "Block",
    "CallContext",
    "DropContent",
    "Guardrail",
    "MaskPatterns",
    "Policy",
    "Sanitizer",
    "TruncateMedia",
    "add_metadata",
    "cap_max_tokens",
    "drop_params",
    "prepend_system",
    "route_model",
    "set_system",
]


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a hook may know about the call besides the request itself (read-only)."""

    codec: str
    """Codec name (``openai-chat`` ...)."""
    provider: str
    """Provider family (``openai`` ...)."""
    method: str
    """HTTP method."""
    url: str
    """Request URL."""
    headers: Mapping[str, str]
    """Request headers, names in lower case (read-only; credentials included, so never record them)."""
    scope_path: tuple[str, ...] = ()
    """Names of the enclosing scopes, outermost first."""
    attempt: int = 1
    """1 for the first try; SDK retries count up."""
    session_id: str | None = None
    """Session id of the enclosing scope."""
    user_id: str | None = None
    """User id of the enclosing scope."""


@dataclass(frozen=True, slots=True)
class Block:
    """A guardrail's verdict that the request must not be sent."""

    reason: str
    """Why, in words safe to show the user."""


@runtime_checkable
class Policy(Protocol):
    """Rewrites a request before it is sent: return the edited request (``dataclasses.replace``) or ``None``.

    ``None`` (or the same object) means "no change". Policies run in order, each seeing the previous one's
    result, after the guardrails.
    """

    def __call__(self, request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest | None:
        """Return the rewritten request, or ``None`` to leave it as is."""
        ...


@runtime_checkable
class Guardrail(Protocol):
    """Decides whether a request may be sent: return ``Block(reason)`` to refuse it, ``None`` to allow."""

    def __call__(self, request: AnnotatedLlmRequest, ctx: CallContext) -> Block | None:
        """Return a :class:`Block` to stop the request."""
        ...


class Sanitizer:
    """Changes what is *recorded* (never what is sent or returned). Override one or both methods."""

    def sanitize_request(self, request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest:
        """Return the request as it should be recorded."""
        return request

    def sanitize_response(self, response: AnnotatedLlmResponse, ctx: CallContext) -> AnnotatedLlmResponse:
        """Return the response as it should be recorded."""
        return response


PolicyLike: TypeAlias = Callable[[AnnotatedLlmRequest, CallContext], AnnotatedLlmRequest | None]
GuardrailLike: TypeAlias = Callable[[AnnotatedLlmRequest, CallContext], Block | None]

# ------------------------------------------------------------------------------------- built-in policies


def _named(function: Any, name: str) -> Any:
    function.__name__ = function.__qualname__ = name
    return function


def cap_max_tokens(limit: int) -> PolicyLike:
    """Cap the output-token limit at ``limit`` (setting it when the request has none)."""
    if limit <= 0:
        raise ValueError("limit must be positive")

    def policy(request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest | None:
        if request.operation != "chat":
            return None
        current = request.params.max_tokens
        if current is not None and current <= limit:
            return None
        return replace(request, params=replace(request.params, max_tokens=limit))

    return _named(policy, f"cap_max_tokens({limit})")  # type: ignore[no-any-return]


def route_model(mapping: Mapping[str, str]) -> PolicyLike:
    """Replace the model by ``mapping[model]`` when the request's model is a key (pin or route models)."""
    table = dict(mapping)

    def policy(request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest | None:
        target = table.get(request.model or "")
        return replace(request, model=target) if target and target != request.model else None

    return _named(policy, "route_model")  # type: ignore[no-any-return]


def set_system(text: str | None) -> PolicyLike:
    """Replace the system instructions with ``text`` (``None`` removes them)."""

    def policy(request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest | None:
        if request.operation != "chat" or request.system == text:
            return None
        return replace(request, system=text)

    return _named(policy, "set_system")  # type: ignore[no-any-return]


def prepend_system(text: str, *, separator: str = "\n\n") -> PolicyLike:
    """Put ``text`` before the existing system instructions (or make it the system text)."""

    def policy(request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest | None:
        if request.operation != "chat":
            return None
        if request.system is not None and request.system.startswith(text):
            return None  # already there: retries must not stack it twice
        combined = text if not request.system else f"{text}{separator}{request.system}"
        return replace(request, system=combined)

    return _named(policy, "prepend_system")  # type: ignore[no-any-return]


def drop_params(*names: str) -> PolicyLike:
    """Remove parameters a server rejects: ``GenerationParams`` fields or top-level keys in ``extra``."""
    wanted = frozenset(names)

    def policy(request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest | None:
        param_changes = {
            name: None
            for name in wanted
            if hasattr(request.params, name) and getattr(request.params, name) is not None
        }
        extra = {key: value for key, value in request.extra.items() if key not in wanted}
        if not param_changes and len(extra) == len(request.extra):
            return None
        return replace(
            request,
            params=replace(request.params, **param_changes) if param_changes else request.params,
            extra=extra if len(extra) != len(request.extra) else request.extra,
        )

    return _named(policy, f"drop_params({', '.join(sorted(wanted))})")  # type: ignore[no-any-return]


def add_metadata(values: Mapping[str, Any], *, key: str = "metadata") -> PolicyLike:
    """Merge ``values`` into a top-level object such as OpenAI's ``metadata`` (or set ``user`` via ``key``).

    With ``key="user"`` and a single ``{"user": "id"}`` value the string is set directly.
    """
    items = dict(values)

    def policy(request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest | None:
        current = request.extra.get(key)
        if key == "user" and set(items) == {"user"}:
            merged: Any = items["user"]
        else:
            merged = {**(current if isinstance(current, Mapping) else {}), **items}
        if current == merged:
            return None
        return replace(request, extra={**request.extra, key: merged})

    return _named(policy, f"add_metadata({key})")  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------ built-in sanitizers

_REDACTED = "[redacted]"


def _map_message_text(message: Message, change: Callable[[str], str]) -> Message:
    content = message.content
    if isinstance(content, str):
        new_content: Any = change(content)
    elif isinstance(content, tuple):
        new_content = tuple(_map_part_text(part, change) for part in content)
    else:
        new_content = content
    if new_content == content:
        return message
    return replace(message, content=new_content)


def _map_part_text(part: ContentPart, change: Callable[[str], str]) -> ContentPart:
    if isinstance(part, TextPart):
        return replace(part, text=change(part.text))
    if isinstance(part, ReasoningPart) and part.text is not None:
        return replace(part, text=change(part.text))
    if isinstance(part, ToolResultPart) and isinstance(part.content, str):
        return replace(part, content=change(part.content))
    return part


def _map_response_text(response: AnnotatedLlmResponse, change: Callable[[str], str]) -> AnnotatedLlmResponse:
    def opt(text: str | None) -> str | None:
        return change(text) if text is not None else None

    choices: Sequence[Choice] = tuple(
        replace(
            choice,
            text=opt(choice.text),
            reasoning_text=opt(choice.reasoning_text),
            refusal=opt(choice.refusal),
        )
        for choice in response.choices
    )
    return replace(
        response,
        text=opt(response.text),
        reasoning_text=opt(response.reasoning_text),
        refusal=opt(response.refusal),
        choices=tuple(choices),
    )


class MaskPatterns(Sanitizer):
    """Replace matches of regular expressions in recorded text (emails and API keys by default).

    Args:
        patterns: Regular expressions (strings or compiled); the defaults catch e-mail addresses and
            common API key shapes (``sk-...``, ``sk-ant-...``, ``AIza...``, AWS key ids, bearer tokens).
        replacement: What a match becomes.
    """

    DEFAULT_PATTERNS: tuple[str, ...] = (
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}",
        r"\bAIza[0-9A-Za-z_-]{35}\b",
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"\b(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}",
    )

    def __init__(
        self, patterns: Iterable[str | re.Pattern[str]] | None = None, *, replacement: str = "[masked]"
    ):
        """Compile the patterns once."""
        sources = list(patterns) if patterns is not None else list(self.DEFAULT_PATTERNS)
        compiled = [p if isinstance(p, re.Pattern) else re.compile(p) for p in sources]
        self._pattern = re.compile("|".join(f"(?:{p.pattern})" for p in compiled)) if compiled else None
        self._replacement = replacement

    def _mask(self, text: str) -> str:
        return self._pattern.sub(self._replacement, text) if self._pattern is not None else text

    def sanitize_request(self, request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest:
        """Mask the system text and every message's text."""
        return replace(
            request,
            system=self._mask(request.system) if request.system is not None else None,
            messages=tuple(_map_message_text(message, self._mask) for message in request.messages),
            inputs=tuple(self._mask(i) if isinstance(i, str) else i for i in request.inputs)
            if request.inputs is not None
            else None,
        )

    def sanitize_response(self, response: AnnotatedLlmResponse, ctx: CallContext) -> AnnotatedLlmResponse:
        """Mask reply, reasoning and refusal text."""
        return _map_response_text(response, self._mask)


class DropContent(Sanitizer):
    """Record no message content at all: text becomes ``[redacted]``, media and tool arguments are dropped.

    Token counts, model, timings and finish reasons are still recorded.
    """

    def __init__(self, *, inputs: bool = True, outputs: bool = True) -> None:
        """Choose which side to drop."""
        self._inputs = inputs
        self._outputs = outputs

    def sanitize_request(self, request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest:
        """Blank the system text, messages, tool-call arguments and embedding inputs."""
        if not self._inputs:
            return request

        def blank(_: str) -> str:
            return _REDACTED

        messages = []
        for message in request.messages:
            message = _map_message_text(message, blank)
            if isinstance(message.content, tuple):
                message = replace(
                    message,
                    content=tuple(p for p in message.content if isinstance(p, TextPart | ReasoningPart)),
                )
            if message.tool_calls:
                message = replace(
                    message,
                    tool_calls=tuple(
                        replace(c, arguments=None, arguments_raw=None) for c in message.tool_calls
                    ),
                )
            messages.append(message)
        return replace(
            request,
            system=_REDACTED if request.system is not None else None,
            messages=tuple(messages),
            inputs=tuple(_REDACTED for _ in request.inputs) if request.inputs is not None else None,
        )

    def sanitize_response(self, response: AnnotatedLlmResponse, ctx: CallContext) -> AnnotatedLlmResponse:
        """Blank reply text and tool-call arguments."""
        if not self._outputs:
            return response
        blanked = _map_response_text(response, lambda _: _REDACTED)
        return replace(
            blanked,
            tool_calls=tuple(replace(c, arguments=None, arguments_raw=None) for c in blanked.tool_calls),
            choices=tuple(
                replace(
                    choice,
                    tool_calls=tuple(
                        replace(c, arguments=None, arguments_raw=None) for c in choice.tool_calls
                    ),
                )
                for choice in blanked.choices
            ),
        )


_DATA_URL = re.compile(r"^(data:[^;,]*;base64,)(.*)$", re.DOTALL)


class TruncateMedia(Sanitizer):
    """Cut inline media (base64 images, audio, files) in what is recorded to ``max_chars`` characters.

    The cut keeps the start and notes the original length: ``<first chars>…[truncated 123456 chars]``.
    """

    def __init__(self, max_chars: int = 256) -> None:
        """``max_chars``: how much of each payload to keep."""
        if max_chars < 0:
            raise ValueError("max_chars must not be negative")
        self._max = max_chars

    def _cut(self, value: str | None) -> str | None:
        if value is None or len(value) <= self._max:
            return value
        return f"{value[: self._max]}…[truncated {len(value)} chars]"

    def _cut_url(self, url: str | None) -> str | None:
        if url is None:
            return None
        match = _DATA_URL.match(url)
        if match is None:
            return url
        cut = self._cut(match.group(2))
        return f"{match.group(1)}{cut}"

    def _part(self, part: ContentPart) -> ContentPart:
        if isinstance(part, ImagePart):
            return replace(part, url=self._cut_url(part.url), data=self._cut(part.data))
        if isinstance(part, AudioPart):
            return replace(part, data=self._cut(part.data))
        if isinstance(part, FilePart):
            return replace(part, data=self._cut(part.data))
        if isinstance(part, ToolResultPart) and isinstance(part.content, tuple):
            return replace(part, content=tuple(self._part(p) for p in part.content))
        return part

    def sanitize_request(self, request: AnnotatedLlmRequest, ctx: CallContext) -> AnnotatedLlmRequest:
        """Truncate inline media in every message."""
        messages = tuple(
            replace(m, content=tuple(self._part(p) for p in m.content)) if isinstance(m.content, tuple) else m
            for m in request.messages
        )
        return replace(request, messages=messages)


def hook_name(hook: Any) -> str:
    """A readable name for a hook (function name or class name)."""
    return str(getattr(hook, "__name__", None) or type(hook).__name__)
