"""``instrument()``: clients created from now on send their LLM calls through a flow, with no code changes.

The official SDKs (``openai``, ``anthropic``, ``google-genai``) build their own HTTP clients, which an
application rarely sees. Rather than asking for ``http_client=...`` at every construction site,
:func:`instrument` patches the client classes of each installed HTTP library so that every client
**created afterwards** gets nemoflow in front of its transports:

* ``httpx2`` and ``httpx``: ``Client.__init__`` and ``AsyncClient.__init__`` wrap ``client._transport``
  and every mounted transport (``client._mounts``, proxies included) in the nemoflow transport. SDK
  subclasses (``openai.DefaultHttpxClient`` and friends) call these initializers, so they are covered.
* ``requests`` and ``aiohttp``, when nemoflow's adapters for them are available: new ``requests.Session``
  objects mount the nemoflow adapter for ``http://`` and ``https://``; new ``aiohttp.ClientSession``
  objects get the nemoflow middleware.

Each call is recorded once. Clients that already exist are left as they are, and so are transports that
are already nemoflow transports (a client made by ``flow.httpx2_client()`` is never wrapped twice). An
httpx2 client whose transport itself sends through aiohttp (``openai.DefaultAioHttpClient``) is recorded
at the httpx2 level only: the aiohttp session below it passes the request through. Patching is idempotent and
reversible: :meth:`Instrumentation.uninstrument` (or leaving the ``with`` block) puts the original
initializers back; clients created while instrumentation was on keep their nemoflow transports.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import logging
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from nemoflow._errors import ConfigurationError
from nemoflow._flow import Flow
from nemoflow._httpx import transport_classes, wrap_transport

__all__ = ["Instrumentation", "instrument"]

_log = logging.getLogger("nemoflow")

_HTTPX_LIBRARIES = ("httpx2", "httpx")

_lock = threading.RLock()
_current: Instrumentation | None = None


class _Patch:
    """One attribute of one class replaced by nemoflow, and what to put back."""

    __slots__ = ("had_own", "name", "original", "owner", "replacement")

    def __init__(self, owner: type[Any], name: str, replacement: Callable[..., Any]) -> None:
        self.owner = owner
        self.name = name
        self.had_own = name in owner.__dict__
        self.original: Any = owner.__dict__.get(name)
        self.replacement = replacement

    def apply(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def restore(self) -> bool:
        """Put the original back; ``False`` when someone else has patched over us since."""
        if self.owner.__dict__.get(self.name) is not self.replacement:
            return False
        if self.had_own:
            setattr(self.owner, self.name, self.original)
        else:
            delattr(self.owner, self.name)
        return True


def _nemoflow_transport_types() -> tuple[type[Any], ...]:
    found: list[type[Any]] = []
    for library in _HTTPX_LIBRARIES:
        if library in sys.modules:
            classes = transport_classes(library)
            if classes is not None:
                found.extend(classes)
    return tuple(found)


_observed_above: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "nemoflow_observed_above", default=False
)
"""True while an instrumented httpx2/httpx client hands a request to a transport of unknown make.

Such a transport may itself send through aiohttp or requests (``openai.DefaultAioHttpClient`` is an
httpx2 client on an aiohttp session); the sessions instrumentation patched then pass the request through,
so one call is recorded once. (No known client sends through ``requests`` below httpx, so the
``requests`` adapter does not look at it.)
"""

_MARKERS: dict[tuple[str, bool], type[Any]] = {}


def _marker_class(library: str, *, asynchronous: bool) -> type[Any]:
    """A pass-through transport that sets :data:`_observed_above` while its inner transport runs."""
    cached = _MARKERS.get((library, asynchronous))
    if cached is not None:
        return cached
    mod = sys.modules[library]

    class _Marked(mod.BaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def handle_request(self, request: Any) -> Any:
            token = _observed_above.set(True)
            try:
                return self.inner.handle_request(request)
            finally:
                _observed_above.reset(token)

        def close(self) -> None:
            self.inner.close()

        def __enter__(self) -> Any:
            self.inner.__enter__()
            return self

        def __exit__(self, *exc_info: Any) -> None:
            self.inner.__exit__(*exc_info)

    class _AsyncMarked(mod.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def handle_async_request(self, request: Any) -> Any:
            token = _observed_above.set(True)
            try:
                return await self.inner.handle_async_request(request)
            finally:
                _observed_above.reset(token)

        async def aclose(self) -> None:
            await self.inner.aclose()

        async def __aenter__(self) -> Any:
            await self.inner.__aenter__()
            return self

        async def __aexit__(self, *exc_info: Any) -> None:
            await self.inner.__aexit__(*exc_info)

    made: type[Any] = _AsyncMarked if asynchronous else _Marked
    _MARKERS[(library, asynchronous)] = made
    return made


def _marked(transport: Any, *, asynchronous: bool) -> Any:
    """``transport``, behind a marker unless it is one of the library's own network transports."""
    for library in _HTTPX_LIBRARIES:
        mod = sys.modules.get(library)
        if mod is None:
            continue
        if type(transport) in (mod.HTTPTransport, mod.AsyncHTTPTransport):
            return transport  # sends on its own sockets: nothing below it to keep quiet
        if isinstance(transport, mod.BaseTransport | mod.AsyncBaseTransport):
            return _marker_class(library, asynchronous=asynchronous)(transport)
    return transport


def _wrap_httpx_client(client: Any, flow: Flow | None, *, asynchronous: bool) -> None:
    """Put nemoflow in front of the default and mounted transports of a new httpx2/httpx client."""
    ours = _nemoflow_transport_types()
    wrapped: dict[int, Any] = {}  # one wrapper per transport object, however many routes share it

    def wrap(transport: Any) -> Any:
        if transport is None or isinstance(transport, ours):
            return transport
        key = id(transport)
        if key not in wrapped:
            try:
                marked = _marked(transport, asynchronous=asynchronous)
                wrapped[key] = wrap_transport(marked, flow, asynchronous=asynchronous)
            except TypeError:  # not an httpx2/httpx transport (a duck-typed one): leave it alone
                _log.debug("nemoflow: left a %s transport unwrapped", type(transport).__name__)
                wrapped[key] = transport
        return wrapped[key]

    default = getattr(client, "_transport", None)
    if default is not None:
        client._transport = wrap(default)
    mounts = getattr(client, "_mounts", None)
    if isinstance(mounts, dict):
        for pattern, transport in list(mounts.items()):
            mounts[pattern] = wrap(transport)


def _client_init(
    original: Callable[..., None], handle: Instrumentation, *, asynchronous: bool
) -> Callable[..., None]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not handle.active:  # uninstrumented, but another patch on top kept us in the chain
            return
        try:
            _wrap_httpx_client(self, handle.flow, asynchronous=asynchronous)
        except Exception as exc:  # fail-open: the application's client works, unobserved
            _log.warning("nemoflow: could not instrument %s: %r", type(self).__name__, exc)

    return __init__


def _httpx_patches(handle: Instrumentation) -> list[_Patch]:
    patches: list[_Patch] = []
    for library in _HTTPX_LIBRARIES:
        if transport_classes(library) is None:  # not installed
            continue
        mod = sys.modules[library]
        for client_cls, asynchronous in ((mod.Client, False), (mod.AsyncClient, True)):
            replacement = _client_init(client_cls.__init__, handle, asynchronous=asynchronous)
            patches.append(_Patch(client_cls, "__init__", replacement))
    return patches


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _requests_patches(handle: Instrumentation) -> list[_Patch]:
    requests = _optional_module("requests")
    adapters = _optional_module("nemoflow._requests")  # None when requests is not installed
    if requests is None or adapters is None:
        return []
    adapter_cls: type[Any] = adapters.NemoflowAdapter
    original: Callable[..., None] = requests.Session.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not handle.active:
            return
        try:
            adapter = None
            for prefix in ("https://", "http://"):
                if not isinstance(self.adapters.get(prefix), adapter_cls):
                    adapter = adapter or adapter_cls(handle.flow)
                    self.mount(prefix, adapter)
        except Exception as exc:
            _log.warning("nemoflow: could not instrument a requests session: %r", exc)

    return [_Patch(requests.Session, "__init__", __init__)]


def _is_nemoflow_middleware(middleware: Any) -> bool:
    qualname = str(getattr(middleware, "__qualname__", ""))
    module = getattr(middleware, "__module__", None)
    if module == "nemoflow._aiohttp":
        return qualname.startswith("aiohttp_middleware.")
    return module == __name__ and qualname.startswith("_quiet_below_httpx.")


def _quiet_below_httpx(middleware: Any) -> Any:
    """``middleware``, passing through requests an instrumented httpx client already observes."""

    async def nemoflow_instrumented_middleware(request: Any, handler: Any) -> Any:
        if _observed_above.get():
            return await handler(request)
        return await middleware(request, handler)

    return nemoflow_instrumented_middleware


def _aiohttp_patches(handle: Instrumentation) -> list[_Patch]:
    aiohttp = _optional_module("aiohttp")
    adapters = _optional_module("nemoflow._aiohttp")  # None when aiohttp is missing or older than 3.12
    if aiohttp is None or adapters is None:
        return []
    make_middleware: Callable[[Flow | None], Any] = adapters.aiohttp_middleware
    original: Callable[..., None] = aiohttp.ClientSession.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if handle.active:
            try:
                given = tuple(kwargs.get("middlewares") or ())
                if not any(_is_nemoflow_middleware(middleware) for middleware in given):
                    # First, so middlewares that sign the body sign what is actually sent.
                    kwargs["middlewares"] = (_quiet_below_httpx(make_middleware(handle.flow)), *given)
            except Exception as exc:
                _log.warning("nemoflow: could not instrument an aiohttp session: %r", exc)
        original(self, *args, **kwargs)

    return [_Patch(aiohttp.ClientSession, "__init__", __init__)]


class Instrumentation:
    """The handle :func:`instrument` returns: what is patched, and how to undo it.

    Use it as a context manager to instrument a block only::

        with nemoflow.instrument(flow):
            client = openai.OpenAI()  # its calls are recorded by ``flow``
    """

    def __init__(self, flow: Flow | None) -> None:
        """Created by :func:`instrument` (not active until it has patched the libraries)."""
        self._flow = flow
        self._patches: list[_Patch] = []
        self._active = False

    @property
    def flow(self) -> Flow | None:
        """The flow new clients report to; ``None`` means the default flow at the time of each call."""
        return self._flow

    @property
    def active(self) -> bool:
        """Whether clients created now are instrumented."""
        return self._active

    @property
    def patched(self) -> tuple[str, ...]:
        """Qualified names of the patched initializers (``httpx2.Client.__init__`` ...)."""
        return tuple(f"{p.owner.__module__}.{p.owner.__qualname__}.{p.name}" for p in self._patches)

    def _install(self) -> None:
        patches = [*_httpx_patches(self), *_requests_patches(self), *_aiohttp_patches(self)]
        for patch in patches:
            patch.apply()
        self._patches = patches
        self._active = True

    def uninstrument(self) -> None:
        """Put the original initializers back; clients created from now on are not instrumented.

        Clients created while instrumentation was on keep their nemoflow transports. Calling this twice,
        or on a handle that is no longer the active one, does nothing.
        """
        global _current
        with _lock:
            if not self._active:
                return
            self._active = False
            for patch in reversed(self._patches):
                if not patch.restore():
                    # Someone patched on top of us: our initializer stays in their chain, inert.
                    _log.debug("nemoflow: %s.%s was patched again; left in place", patch.owner, patch.name)
            self._patches = []
            if _current is self:
                _current = None

    def __enter__(self) -> Instrumentation:
        """Return the handle; instrumentation is already on."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Undo the instrumentation (see :meth:`uninstrument`)."""
        self.uninstrument()

    def __repr__(self) -> str:
        state = "active" if self._active else "inactive"
        return f"<nemoflow.Instrumentation {state} flow={self._flow!r} patched={list(self.patched)}>"


def instrument(flow: Flow | None = None) -> Instrumentation:
    """Send the LLM calls of every HTTP client created from now on through ``flow``.

    Patches ``httpx2`` and ``httpx`` (whichever are installed) and, when nemoflow's adapters for them
    are available, ``requests`` and ``aiohttp``. Calling it again while instrumentation is on returns
    the same handle and patches nothing twice.

    Args:
        flow: The flow that records the calls; ``None`` uses the process-wide default flow, looked up
            at each call (so a later :func:`nemoflow.configure` takes effect for these clients too).

    Returns:
        The active :class:`Instrumentation`; ``uninstrument()`` it, or use it as a context manager.

    Raises:
        ConfigurationError: Instrumentation is already on with a different flow.
    """
    global _current
    with _lock:
        current = _current
        if current is not None and current.active:
            if current.flow is not flow:
                raise ConfigurationError(
                    "nemoflow.instrument() is already active with another flow; "
                    "call uninstrument() on the handle it returned first"
                )
            return current
        handle = Instrumentation(flow)
        handle._install()
        _current = handle
        return handle
