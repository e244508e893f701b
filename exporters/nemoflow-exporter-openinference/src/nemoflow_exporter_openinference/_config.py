"""Content-hiding options, following the OpenInference configuration conventions.

Each option can be given to the exporter; when it is not, the matching ``OPENINFERENCE_*`` environment
variable decides, and when that is unset too, nothing is hidden (the OpenInference default). Boolean
variables accept ``true``/``false`` in any case (also ``1``/``0``, ``yes``/``no``, ``on``/``off``); a value
that does not parse is ignored with a warning, as OpenInference instrumentations do.

What each option does to an attribute is decided by :meth:`HideConfig.mask`, from the attribute's key:

* hidden ``input.value``/``output.value`` become ``"__REDACTED__"`` and lose their mime type;
* hidden messages (``llm.input_messages.*``, ``llm.output_messages.*``) are left out entirely;
* hidden text inside messages becomes ``"__REDACTED__"``; hidden images are left out;
* a base64 ``data:`` image URL longer than ``base64_image_max_length`` becomes ``"__REDACTED__"``.

nemoflow is stricter than the convention in one respect: ``input.value`` carries the whole request and
``output.value`` the whole reply, so any option that hides part of the input (messages, text, images)
redacts ``input.value`` as well, and any output option redacts ``output.value``. Otherwise the hidden
content would still reach the backend through the raw payload.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from openinference.semconv.trace import (
    EmbeddingAttributes,
    ImageAttributes,
    MessageAttributes,
    MessageContentAttributes,
    SpanAttributes,
    ToolCallAttributes,
)

__all__ = ["DEFAULT_BASE64_IMAGE_MAX_LENGTH", "REDACTED_VALUE", "HideConfig"]

_log = logging.getLogger("nemoflow")

REDACTED_VALUE = "__REDACTED__"
"""What a hidden value is replaced with (the OpenInference convention)."""

DEFAULT_BASE64_IMAGE_MAX_LENGTH = 32_000
"""Longest base64 image URL kept in a span, in characters (the OpenInference default)."""

_ENV_PREFIX = "OPENINFERENCE_"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

_INPUT_MESSAGES = SpanAttributes.LLM_INPUT_MESSAGES
_OUTPUT_MESSAGES = SpanAttributes.LLM_OUTPUT_MESSAGES
_CONTENT_SUFFIX = "." + MessageAttributes.MESSAGE_CONTENT
_CONTENT_TEXT_SUFFIX = "." + MessageContentAttributes.MESSAGE_CONTENT_TEXT
_IMAGE_MARK = "." + MessageContentAttributes.MESSAGE_CONTENT_IMAGE + "."
_IMAGE_URL_SUFFIX = "." + ImageAttributes.IMAGE_URL
_EMBEDDINGS = SpanAttributes.EMBEDDING_EMBEDDINGS
_EMBEDDING_TEXT_SUFFIX = "." + EmbeddingAttributes.EMBEDDING_TEXT
_EMBEDDING_VECTOR_SUFFIX = "." + EmbeddingAttributes.EMBEDDING_VECTOR
# Attributes of a TOOL span that carry the tool's input: hidden with the inputs.
_TOOL_INPUT_KEYS = frozenset(
    {SpanAttributes.TOOL_PARAMETERS, ToolCallAttributes.TOOL_CALL_FUNCTION_ARGUMENTS_JSON}
)


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(_ENV_PREFIX + name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    _log.warning("nemoflow: ignoring %s%s=%r (expected true or false)", _ENV_PREFIX, name, raw)
    return None


def _env_int(name: str) -> int | None:
    raw = os.environ.get(_ENV_PREFIX + name)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        _log.warning("nemoflow: ignoring %s%s=%r (expected an integer)", _ENV_PREFIX, name, raw)
        return None
    if value < 0:
        _log.warning("nemoflow: ignoring %s%s=%r (must not be negative)", _ENV_PREFIX, name, raw)
        return None
    return value


def is_base64_image_url(value: object) -> bool:
    """Whether ``value`` is an inline (``data:image/...;base64,``) image URL."""
    return isinstance(value, str) and value.startswith("data:image/") and ";base64," in value[:256]


@dataclass(frozen=True, slots=True)
class HideConfig:
    """Resolved content-hiding options (arguments first, then environment, then defaults)."""

    hide_inputs: bool = False
    """Redact ``input.value`` and leave out every input message and embedding text."""
    hide_outputs: bool = False
    """Redact ``output.value`` and leave out every output message."""
    hide_input_messages: bool = False
    """Leave out the input messages (and embedding texts)."""
    hide_output_messages: bool = False
    """Leave out the output messages."""
    hide_input_images: bool = False
    """Leave out images of input messages."""
    hide_input_text: bool = False
    """Redact the text of input messages and embedding texts."""
    hide_output_text: bool = False
    """Redact the text of output messages."""
    hide_embedding_vectors: bool = False
    """Leave out embedding vectors (nemoflow records none today; honoured for forward compatibility)."""
    hide_llm_invocation_parameters: bool = False
    """Leave out ``llm.invocation_parameters``."""
    base64_image_max_length: int = DEFAULT_BASE64_IMAGE_MAX_LENGTH
    """Base64 image URLs longer than this are redacted."""

    @classmethod
    def resolve(
        cls,
        *,
        hide_inputs: bool | None = None,
        hide_outputs: bool | None = None,
        hide_input_messages: bool | None = None,
        hide_output_messages: bool | None = None,
        hide_input_images: bool | None = None,
        hide_input_text: bool | None = None,
        hide_output_text: bool | None = None,
        hide_embedding_vectors: bool | None = None,
        hide_llm_invocation_parameters: bool | None = None,
        base64_image_max_length: int | None = None,
    ) -> HideConfig:
        """Combine explicit options with the ``OPENINFERENCE_*`` environment variables.

        Args:
            hide_inputs: Overrides ``OPENINFERENCE_HIDE_INPUTS``.
            hide_outputs: Overrides ``OPENINFERENCE_HIDE_OUTPUTS``.
            hide_input_messages: Overrides ``OPENINFERENCE_HIDE_INPUT_MESSAGES``.
            hide_output_messages: Overrides ``OPENINFERENCE_HIDE_OUTPUT_MESSAGES``.
            hide_input_images: Overrides ``OPENINFERENCE_HIDE_INPUT_IMAGES``.
            hide_input_text: Overrides ``OPENINFERENCE_HIDE_INPUT_TEXT``.
            hide_output_text: Overrides ``OPENINFERENCE_HIDE_OUTPUT_TEXT``.
            hide_embedding_vectors: Overrides ``OPENINFERENCE_HIDE_EMBEDDING_VECTORS``.
            hide_llm_invocation_parameters: Overrides ``OPENINFERENCE_HIDE_LLM_INVOCATION_PARAMETERS``.
            base64_image_max_length: Overrides ``OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH``.

        Returns:
            The resolved options.

        Raises:
            TypeError: A ``hide_*`` option is not ``True``, ``False`` or ``None`` (a string such as
                ``"false"`` would otherwise count as true), or ``base64_image_max_length`` is not an int.
            ValueError: ``base64_image_max_length`` is negative.
        """
        if base64_image_max_length is not None:
            if isinstance(base64_image_max_length, bool) or not isinstance(base64_image_max_length, int):
                raise TypeError(
                    f"base64_image_max_length must be an int or None, not {base64_image_max_length!r}"
                )
            if base64_image_max_length < 0:
                raise ValueError("base64_image_max_length must not be negative")

        def pick(given: bool | None, env: str) -> bool:
            if given is not None:
                if not isinstance(given, bool):
                    raise TypeError(f"{env.lower()} must be True, False or None, not {given!r}")
                return given
            from_env = _env_bool(env)
            return from_env if from_env is not None else False

        if base64_image_max_length is None:
            base64_image_max_length = _env_int("BASE64_IMAGE_MAX_LENGTH")
        return cls(
            hide_inputs=pick(hide_inputs, "HIDE_INPUTS"),
            hide_outputs=pick(hide_outputs, "HIDE_OUTPUTS"),
            hide_input_messages=pick(hide_input_messages, "HIDE_INPUT_MESSAGES"),
            hide_output_messages=pick(hide_output_messages, "HIDE_OUTPUT_MESSAGES"),
            hide_input_images=pick(hide_input_images, "HIDE_INPUT_IMAGES"),
            hide_input_text=pick(hide_input_text, "HIDE_INPUT_TEXT"),
            hide_output_text=pick(hide_output_text, "HIDE_OUTPUT_TEXT"),
            hide_embedding_vectors=pick(hide_embedding_vectors, "HIDE_EMBEDDING_VECTORS"),
            hide_llm_invocation_parameters=pick(
                hide_llm_invocation_parameters, "HIDE_LLM_INVOCATION_PARAMETERS"
            ),
            base64_image_max_length=(
                base64_image_max_length
                if base64_image_max_length is not None
                else DEFAULT_BASE64_IMAGE_MAX_LENGTH
            ),
        )

    @property
    def hides_any_input(self) -> bool:
        """Whether some part of the input is hidden (``input.value`` is then redacted whole)."""
        return self.hide_inputs or self.hide_input_messages or self.hide_input_text or self.hide_input_images

    @property
    def hides_any_output(self) -> bool:
        """Whether some part of the output is hidden (``output.value`` is then redacted whole)."""
        return self.hide_outputs or self.hide_output_messages or self.hide_output_text

    @property
    def hides_anything(self) -> bool:
        """Whether any option is on (when none is, :meth:`mask` only guards image sizes)."""
        return (
            self.hides_any_input
            or self.hides_any_output
            or self.hide_embedding_vectors
            or (self.hide_llm_invocation_parameters)
        )

    def mask(self, key: str, value: object) -> object | None:
        """The value to record for attribute ``key``: ``value``, ``REDACTED_VALUE``, or ``None`` to drop it.

        Args:
            key: The attribute key.
            value: The attribute value.

        Returns:
            What to record, or ``None`` to leave the attribute out.
        """
        if key == SpanAttributes.INPUT_VALUE:
            return REDACTED_VALUE if self.hides_any_input else value
        if key == SpanAttributes.INPUT_MIME_TYPE:
            return None if self.hides_any_input else value
        if key == SpanAttributes.OUTPUT_VALUE:
            return REDACTED_VALUE if self.hides_any_output else value
        if key == SpanAttributes.OUTPUT_MIME_TYPE:
            return None if self.hides_any_output else value
        if key == SpanAttributes.LLM_INVOCATION_PARAMETERS:
            return None if self.hide_llm_invocation_parameters else value
        if key in _TOOL_INPUT_KEYS:
            return REDACTED_VALUE if self.hide_inputs else value
        if key.startswith(_INPUT_MESSAGES):
            if self.hide_inputs or self.hide_input_messages:
                return None
            if _IMAGE_MARK in key:
                if self.hide_input_images:
                    return None
                if key.endswith(_IMAGE_URL_SUFFIX) and is_base64_image_url(value):
                    assert isinstance(value, str)
                    return REDACTED_VALUE if len(value) > self.base64_image_max_length else value
                return value
            if self.hide_input_text and (key.endswith(_CONTENT_SUFFIX) or key.endswith(_CONTENT_TEXT_SUFFIX)):
                return REDACTED_VALUE
            return value
        if key.startswith(_OUTPUT_MESSAGES):
            if self.hide_outputs or self.hide_output_messages:
                return None
            if self.hide_output_text and (
                key.endswith(_CONTENT_SUFFIX) or key.endswith(_CONTENT_TEXT_SUFFIX)
            ):
                return REDACTED_VALUE
            return value
        if key.startswith(_EMBEDDINGS):
            if key.endswith(_EMBEDDING_VECTOR_SUFFIX) and self.hide_embedding_vectors:
                return None
            if key.endswith(_EMBEDDING_TEXT_SUFFIX):
                if self.hide_inputs or self.hide_input_messages:
                    return None
                if self.hide_input_text:
                    return REDACTED_VALUE
            return value
        return value
