"""Transports for httpx2 (what the openai, anthropic and google-genai SDKs use) and httpx, sync and async.

One implementation serves both libraries: the classes are built from the library module, and only for
the libraries that import. Each transport wraps an inner transport of the same library and delegates
everything; for LLM requests it runs the flow (guardrails, policies, encode) before sending and tees the
response body into the call record as the application reads it.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from types import ModuleType, TracebackType
from typing import Any

from nemoflow._codec import resolve_codec
from nemoflow._flow import Flow, LlmCallHandle, default_flow
from nemoflow._records import CallStatus
from nemoflow._tee import ResponseTee

__all__ = ["transport_classes", "wrap_transport"]

_CLASSES: dict[str, tuple[type[Any], type[Any]]] = {}


def _status_for(exc: BaseException) -> CallStatus:
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | GeneratorExit):
        return CallStatus.CANCELLED
    return CallStatus.ERROR


def _rebuilt_request(mod: ModuleType, request: Any, handle: LlmCallHandle) -> Any:
    headers = mod.Headers(request.headers)
    headers.pop("transfer-encoding", None)
    for name, value in handle.headers_update.items():
        headers[name] = value
    url = mod.URL(handle.url) if handle.url_changed else request.url
    return mod.Request(
        request.method, url, headers=headers, content=handle.body, extensions=request.extensions
    )


def _build(mod: ModuleType) -> tuple[type[Any], type[Any]]:
    class _TeeStream(mod.SyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any, tee: ResponseTee) -> None:
            self._inner = inner
            self._tee = tee

        def __iter__(self) -> Iterator[bytes]:
            tee = self._tee
            try:
                for chunk in self._inner:
                    out = tee.pass_through(chunk)
                    if out:
                        yield out
                rest = tee.remainder()
                if rest:
                    yield rest
            except BaseException as exc:
                tee.finish(_status_for(exc), None if isinstance(exc, GeneratorExit) else exc)
                raise
            tee.finish(CallStatus.OK)

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._tee.finish(CallStatus.CANCELLED)  # no-op when the body was read to its end

        def __del__(self) -> None:
            # An abandoned response (never read to the end, never closed) still ends its record.
            tee = getattr(self, "_tee", None)
            if tee is not None and not tee.finished:
                tee.finish(CallStatus.CANCELLED)

    class _AsyncTeeStream(mod.AsyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any, tee: ResponseTee) -> None:
            self._inner = inner
            self._tee = tee

        async def __aiter__(self) -> AsyncIterator[bytes]:
            tee = self._tee
            try:
                async for chunk in self._inner:
                    out = tee.pass_through(chunk)
                    if out:
                        yield out
                rest = tee.remainder()
                if rest:
                    yield rest
            except BaseException as exc:
                tee.finish(_status_for(exc), None if isinstance(exc, GeneratorExit) else exc)
                raise
            tee.finish(CallStatus.OK)

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._tee.finish(CallStatus.CANCELLED)

        def __del__(self) -> None:
            tee = getattr(self, "_tee", None)
            if tee is not None and not tee.finished:
                tee.finish(CallStatus.CANCELLED)

    class NemoflowTransport(mod.BaseTransport):  # type: ignore[name-defined,misc]
        """Wraps a sync transport: LLM calls go through the flow, everything else passes untouched."""

        def __init__(self, inner: Any = None, *, flow: Flow | None = None) -> None:
            self._inner = inner if inner is not None else mod.HTTPTransport()
            self._flow = flow

        @property
        def inner(self) -> Any:
            """The wrapped transport."""
            return self._inner

        def handle_request(self, request: Any) -> Any:
            method, url = request.method, str(request.url)
            flow = self._flow or default_flow()
            codec = resolve_codec(method, url)
            if codec is None:
                flow.count_pass_through()
                return self._inner.handle_request(request)
            handle = flow.start_call(method, url, request.headers, request.read(), codec=codec)
            if handle is None:
                return self._inner.handle_request(request)
            if handle.body_changed or handle.headers_update or handle.url_changed:
                request = _rebuilt_request(mod, request, handle)
            try:
                response = self._inner.handle_request(request)
            except BaseException as exc:
                handle.finish(_status_for(exc), exc)
                raise
            handle.response_started(response.status_code, response.headers)
            return mod.Response(
                status_code=response.status_code,
                headers=response.headers,
                stream=_TeeStream(response.stream, ResponseTee(handle)),
                extensions=response.extensions,
                request=request,
            )

        def close(self) -> None:
            self._inner.close()

        def __enter__(self) -> NemoflowTransport:
            self._inner.__enter__()
            return self

        def __exit__(
            self,
            exc_type: type[BaseException] | None = None,
            exc: BaseException | None = None,
            tb: TracebackType | None = None,
        ) -> None:
            self._inner.__exit__(exc_type, exc, tb)

    class AsyncNemoflowTransport(mod.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        """Wraps an async transport: LLM calls go through the flow, everything else passes untouched."""

        def __init__(self, inner: Any = None, *, flow: Flow | None = None) -> None:
            self._inner = inner if inner is not None else mod.AsyncHTTPTransport()
            self._flow = flow

        @property
        def inner(self) -> Any:
            """The wrapped transport."""
            return self._inner

        async def handle_async_request(self, request: Any) -> Any:
            method, url = request.method, str(request.url)
            flow = self._flow or default_flow()
            codec = resolve_codec(method, url)
            if codec is None:
                flow.count_pass_through()
                return await self._inner.handle_async_request(request)
            handle = flow.start_call(method, url, request.headers, await request.aread(), codec=codec)
            if handle is None:
                return await self._inner.handle_async_request(request)
            if handle.body_changed or handle.headers_update or handle.url_changed:
                request = _rebuilt_request(mod, request, handle)
            try:
                response = await self._inner.handle_async_request(request)
            except BaseException as exc:
                handle.finish(_status_for(exc), exc)
                raise
            handle.response_started(response.status_code, response.headers)
            return mod.Response(
                status_code=response.status_code,
                headers=response.headers,
                stream=_AsyncTeeStream(response.stream, ResponseTee(handle)),
                extensions=response.extensions,
                request=request,
            )

        async def aclose(self) -> None:
            await self._inner.aclose()

        async def __aenter__(self) -> AsyncNemoflowTransport:
            await self._inner.__aenter__()
            return self

        async def __aexit__(
            self,
            exc_type: type[BaseException] | None = None,
            exc: BaseException | None = None,
            tb: TracebackType | None = None,
        ) -> None:
            await self._inner.__aexit__(exc_type, exc, tb)

    prefix = "Httpx2" if mod.__name__ == "httpx2" else "Httpx"
    for cls in (NemoflowTransport, AsyncNemoflowTransport):
        cls.__module__ = "nemoflow"
    NemoflowTransport.__name__ = NemoflowTransport.__qualname__ = f"{prefix}Transport"
    AsyncNemoflowTransport.__name__ = AsyncNemoflowTransport.__qualname__ = f"Async{prefix}Transport"
    return NemoflowTransport, AsyncNemoflowTransport


def transport_classes(library: str) -> tuple[type[Any], type[Any]] | None:
    """``(sync, async)`` transport classes for ``"httpx2"`` or ``"httpx"``; ``None`` if it isn't installed."""
    cached = _CLASSES.get(library)
    if cached is not None:
        return cached
    try:
        mod = importlib.import_module(library)
    except ImportError:
        return None
    classes = _build(mod)
    _CLASSES[library] = classes
    return classes


def wrap_transport(inner: Any, flow: Flow | None = None, *, asynchronous: bool | None = None) -> Any:
    """Wrap an httpx2 or httpx transport (sync or async) in the matching nemoflow transport.

    ``asynchronous`` picks the side for transports that serve both (such as ``MockTransport``); by
    default a transport that is a ``BaseTransport`` gets the sync wrapper.

    Raises:
        TypeError: ``inner`` is not a transport of either library.
    """
    for library in ("httpx2", "httpx"):
        classes = transport_classes(library)
        if classes is None:
            continue
        mod = sys.modules[library]
        is_sync = isinstance(inner, mod.BaseTransport)
        is_async = isinstance(inner, mod.AsyncBaseTransport)
        if is_async and (asynchronous or not is_sync):
            return classes[1](inner, flow=flow)
        if is_sync and not asynchronous:
            return classes[0](inner, flow=flow)
    raise TypeError(f"expected an httpx2 or httpx transport, got {type(inner).__name__}")
