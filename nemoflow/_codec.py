"""The codec contract (:class:`LlmCodec`, :class:`StreamDecoder`) and the codec registry.

Codecs are plugins: a distribution registers a class (instantiated with no arguments) under the
``nemoflow.codecs`` entry-point group. The registry loads them once, on first use; tests and applications
can also :func:`register_codec` explicitly. The core never imports a plugin by name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from nemoflow._errors import ConfigurationError
from nemoflow._model import AnnotatedLlmError, AnnotatedLlmRequest, AnnotatedLlmResponse

__all__ = [
    "CODEC_ENTRY_POINT_GROUP",
    "LlmCodec",
    "PayloadKind",
    "StreamDecoder",
    "codecs",
    "get_codec",
    "register_codec",
    "request_path",
    "resolve_codec",
    "unregister_codec",
]

_log = logging.getLogger("nemoflow")

CODEC_ENTRY_POINT_GROUP = "nemoflow.codecs"
"""Entry-point group under which codec classes are registered."""

PayloadKind: TypeAlias = Literal["request", "response", "stream_chunk", "error"]
"""What a provider JSON object is: a request body, a full response, one streamed event, or an error."""


@runtime_checkable
class StreamDecoder(Protocol):
    """Assembles a streamed reply, one server-sent event at a time.

    ``feed`` is called with each event's ``data`` (and its ``event`` name, for providers that type their
    events); ``finish`` is called once at the end, also when the stream stopped early, and returns what was
    assembled. A malformed event raises :class:`~nemoflow.CodecError`; the decoder stays usable.

    A decoder MAY also offer a ``has_content`` property (True once generated text, reasoning or a tool
    call has arrived); the runtime uses it to time the first token, else it counts the first event.
    """

    def feed(self, data: str | bytes, event: str | None = None) -> None:
        """Take one event's data."""
        ...

    def finish(self) -> AnnotatedLlmResponse:
        """Return the reply assembled so far; finish reason ``error`` if the stream ended abnormally."""
        ...


@runtime_checkable
class LlmCodec(Protocol):
    """Translates one provider API between its wire JSON and the annotated model.

    Laws every codec keeps (``spec/codec-contract.md`` states them in full):

    * ``encode(decode(x), x) == x`` for every request the provider accepts, unknown keys at every depth
      included; the only exception is the stream-usage rule below.
    * ``encode`` is a merge over the original: it writes only what changed, and returns ``original``
      itself (the same object) when nothing did.
    * Stream usage: when ``stream`` is true and the request has no ``stream_options``, ``encode`` adds
      ``{"include_usage": true}`` (codecs of APIs that report usage anyway do nothing).
    * Only :class:`~nemoflow.CodecError` escapes, carrying the JSON path of the offending value.
    * No I/O, no global state: codec objects are safe to share between threads.

    Every method takes an optional keyword ``url``: the request URL or path, for routing facts such as an
    Azure deployment or a model named in the path. A codec whose API names the model (or the streaming
    mode) in the URL MAY also offer ``url_for(url, *, model=None, stream=None) -> str``; the runtime uses
    it to send a request a policy moved to another model (see the contract, section 5).
    """

    name: str
    """Registry name, e.g. ``openai-chat``."""
    provider: str
    """Provider family, e.g. ``openai``."""

    def match_route(self, method: str, path: str) -> bool:
        """Whether this codec handles requests to ``path`` (no query string, no trailing slash)."""
        ...

    def sniff(self, payload: Mapping[str, Any]) -> PayloadKind | None:
        """Say what ``payload`` is if it has this codec's shape, else ``None``."""
        ...

    def decode(self, request: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmRequest:
        """Decode a provider request body."""
        ...

    def encode(
        self, annotated: AnnotatedLlmRequest, original: Mapping[str, Any], *, url: str | None = None
    ) -> Mapping[str, Any]:
        """Write ``annotated`` back over ``original``; returns ``original`` itself when nothing changed."""
        ...

    def decode_response(self, response: Mapping[str, Any], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a complete (non-streamed) response body."""
        ...

    def stream_decoder(self, *, url: str | None = None) -> StreamDecoder:
        """Return a fresh decoder for one streamed response."""
        ...

    def decode_stream(self, byte_chunks: Iterable[bytes], *, url: str | None = None) -> AnnotatedLlmResponse:
        """Decode a whole streamed response given as raw bytes, in any chunking."""
        ...

    def decode_error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes | str | Mapping[str, Any] | None,
        *,
        url: str | None = None,
    ) -> AnnotatedLlmError:
        """Classify an error response (never raises: unreadable bodies are kept as text)."""
        ...


# ----------------------------------------------------------------------------------------- registry


class _Registry:
    """Codecs by name: entry points loaded once, plus explicit registrations (which win)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._discovered: dict[str, LlmCodec] | None = None
        self._explicit: dict[str, LlmCodec] = {}
        self._removed: set[str] = set()
        self._ordered: tuple[LlmCodec, ...] | None = None
        # Codecs claiming each (method, path) seen: every request asks, and routes repeat. Cleared with
        # the registry's order; emptied when full, since paths with ids in them never repeat.
        self._routes: dict[tuple[str, str], tuple[LlmCodec, ...]] = {}

    def claimants(self, method: str, path: str) -> tuple[LlmCodec, ...]:
        key = (method, path)
        found = self._routes.get(key)
        if found is None:
            ordered = self.ordered()
            found = tuple(codec for codec in ordered if codec.match_route(method, path))
            routes = self._routes
            if len(routes) >= _ROUTE_CACHE_SIZE:
                routes.clear()
            if self._ordered is ordered:  # not invalidated meanwhile
                routes[key] = found
        return found

    def _discover(self) -> dict[str, LlmCodec]:
        found: dict[str, LlmCodec] = {}
        for entry_point in sorted(
            metadata.entry_points(group=CODEC_ENTRY_POINT_GROUP), key=lambda ep: ep.name
        ):
            try:
                factory = entry_point.load()
                codec = factory()
            except Exception:  # a broken plugin must not take the others down
                _log.warning("nemoflow: codec plugin %r failed to load", entry_point.name, exc_info=True)
                continue
            if not isinstance(codec, LlmCodec):
                _log.warning("nemoflow: codec plugin %r does not implement LlmCodec", entry_point.name)
                continue
            found[entry_point.name] = codec
        return found

    def snapshot(self) -> dict[str, LlmCodec]:
        discovered = self._discovered
        if discovered is None:
            with self._lock:
                if self._discovered is None:
                    self._discovered = self._discover()
                discovered = self._discovered
        merged = {name: codec for name, codec in discovered.items() if name not in self._removed}
        merged.update(self._explicit)
        return merged

    def ordered(self) -> tuple[LlmCodec, ...]:
        ordered = self._ordered
        if ordered is None:
            ordered = tuple(self.snapshot().values())
            self._ordered = ordered
        return ordered

    def register(self, name: str, codec: LlmCodec) -> None:
        if not isinstance(codec, LlmCodec):
            raise ConfigurationError(f"{codec!r} does not implement nemoflow.LlmCodec")
        with self._lock:
            self._explicit[name] = codec
            self._removed.discard(name)
            self._ordered = None
            self._routes = {}

    def unregister(self, name: str) -> None:
        with self._lock:
            self._explicit.pop(name, None)
            self._removed.add(name)
            self._ordered = None
            self._routes = {}

    def reset(self) -> None:
        with self._lock:
            self._discovered = None
            self._explicit.clear()
            self._removed.clear()
            self._ordered = None
            self._routes = {}


_ROUTE_CACHE_SIZE = 4096
_registry = _Registry()


def codecs() -> dict[str, LlmCodec]:
    """Every registered codec, by name (entry-point plugins plus explicit registrations)."""
    return _registry.snapshot()


def get_codec(name: str) -> LlmCodec:
    """Return the codec registered as ``name``.

    Raises:
        ConfigurationError: No codec has that name (the message lists the known ones).
    """
    available = _registry.snapshot()
    try:
        return available[name]
    except KeyError:
        known = ", ".join(sorted(available)) or "none: is a codec distribution installed?"
        raise ConfigurationError(f"unknown codec {name!r} (known: {known})") from None


def register_codec(name: str, codec: LlmCodec) -> None:
    """Register ``codec`` as ``name``, replacing any codec of that name (plugins included)."""
    _registry.register(name, codec)


def unregister_codec(name: str) -> None:
    """Remove the codec called ``name`` (also hides an entry-point plugin of that name)."""
    _registry.unregister(name)


def _reset_registry() -> None:
    """Forget explicit registrations and rediscover entry points on next use (for tests)."""
    _registry.reset()


def request_path(url: str) -> str:
    """The path of ``url`` (a full URL or a bare path): no scheme, host, query, fragment or trailing slash."""
    scheme_end = url.find("://")
    if scheme_end != -1:
        slash = url.find("/", scheme_end + 3)
        url = url[slash:] if slash != -1 else "/"
    for separator in ("?", "#"):
        cut = url.find(separator)
        if cut != -1:
            url = url[:cut]
    if len(url) > 1 and url.endswith("/"):
        url = url.rstrip("/") or "/"
    return url


def resolve_codec(method: str, url: str, body: Mapping[str, Any] | None = None) -> LlmCodec | None:
    """Find the codec for a request from its method and URL, using the body only to break ties.

    Returns ``None`` for traffic no codec claims (callers pass it through untouched). When several codecs
    claim the path and ``body`` is given, the first whose :meth:`LlmCodec.sniff` recognizes the body as a
    request wins; without a body, the first claimant in registry order does.
    """
    path = request_path(url)
    method = method.upper()
    claimants = _registry.claimants(method, path)
    if len(claimants) <= 1:
        return claimants[0] if claimants else None
    if body is not None:
        for codec in claimants:
            try:
                if codec.sniff(body) == "request":
                    return codec
            except Exception:  # sniffing is advisory; a plugin bug must not break routing
                _log.debug("nemoflow: %s.sniff raised", codec.name, exc_info=True)
    return claimants[0]
