"""The nemoflow error tree.

Every exception nemoflow raises on purpose derives from :class:`NemoflowError`::

    NemoflowError
    ├── CodecError            a provider payload could not be decoded or encoded (carries a JSON path)
    │   ├── DecodeError       also a ValueError: the payload is malformed or not what the codec handles
    │   └── EncodeError       an annotated object cannot be written back in the provider's format
    ├── PolicyError           a request policy failed (raised only when the flow is fail-closed)
    ├── GuardrailBlocked      a guardrail refused the request; nothing was sent
    └── ConfigurationError    nemoflow was set up wrongly (unknown codec name, bad option, broken plugin)

Foreign exceptions are mapped at the boundary with ``raise ... from exc`` so the original stays attached.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "ConfigurationError",
    "DecodeError",
    "EncodeError",
    "GuardrailBlocked",
    "NemoflowError",
    "PolicyError",
    "json_path",
]


def json_path(*parts: str | int) -> str:
    """Build a JSONPath string such as ``$.messages[3].content`` from keys and indexes."""
    pieces = ["$"]
    for part in parts:
        if isinstance(part, int):
            pieces.append(f"[{part}]")
        else:
            pieces.append(f".{part}")
    return "".join(pieces)


class NemoflowError(Exception):
    """Base class of every error nemoflow raises on purpose."""


class CodecError(NemoflowError):
    """A provider payload could not be decoded or encoded.

    Attributes:
        message: What is wrong, in words.
        path: JSONPath of the offending value (``$`` for the whole payload).
        codec: Name of the codec that raised, when known.
    """

    def __init__(self, message: str, *, path: str = "$", codec: str | None = None) -> None:
        """Create the error; ``path`` is a JSONPath such as ``$.messages[0].role``."""
        self.message = message
        self.path = path
        self.codec = codec
        prefix = f"{codec}: " if codec else ""
        super().__init__(f"{prefix}{message} (at {path})")

    def __reduce__(self) -> tuple[object, ...]:
        """Keep keyword-only attributes when pickled (e.g. across processes)."""
        return (_rebuild_codec_error, (type(self), self.message, self.path, self.codec))


def _rebuild_codec_error(cls: type[CodecError], message: str, path: str, codec: str | None) -> CodecError:
    return cls(message, path=path, codec=codec)


class DecodeError(CodecError, ValueError):
    """A payload is malformed or is not the shape this codec handles."""


class EncodeError(CodecError):
    """An annotated object cannot be written back in the provider's format."""


class PolicyError(NemoflowError):
    """A request policy raised; surfaced only when the flow is fail-closed."""


class GuardrailBlocked(NemoflowError):
    """A guardrail refused the request; nothing was sent upstream.

    Attributes:
        reason: The guardrail's explanation, safe to show to the user.
        guardrail: Name of the guardrail that blocked, when known.
    """

    def __init__(self, reason: str, *, guardrail: str | None = None) -> None:
        """Create the error with the guardrail's ``reason``."""
        self.reason = reason
        self.guardrail = guardrail
        by = f" by {guardrail}" if guardrail else ""
        super().__init__(f"request blocked{by}: {reason}")


class ConfigurationError(NemoflowError):
    """nemoflow was set up wrongly: unknown codec name, invalid option, broken plugin."""
