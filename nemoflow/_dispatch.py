"""Delivery of records to subscribers on a background thread, behind a bounded queue.

The caller's thread only does a non-blocking ``put``: when the queue is full the record is dropped and
counted, so a slow exporter can never slow the application. Delivery happens in order on one daemon
thread per flow, with OpenTelemetry instrumentation suppressed so an exporter's own HTTP calls are never
traced. Queued records are flushed at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context

from nemoflow._records import LlmCall, ScopeRecord, Subscriber

__all__ = ["Dispatcher", "delivery_thread_active"]

_log = logging.getLogger("nemoflow")

_SCOPE_START = 0
_SCOPE_END = 1
_CALL = 2
_FLUSH = 3
_STOP = 4

_in_delivery = threading.local()


def delivery_thread_active() -> bool:
    """Whether the current thread is a nemoflow delivery thread (adapters then pass traffic through)."""
    return bool(getattr(_in_delivery, "active", False))


class Dispatcher:
    """One bounded queue and one delivery thread serving a flow's subscribers."""

    def __init__(
        self,
        subscribers: Callable[[], Sequence[Subscriber]],
        *,
        max_queue: int,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        """``subscribers`` is read at delivery time, so subscribers added later receive later records."""
        self._subscribers = subscribers
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=max_queue)
        self._on_error = on_error
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.dropped = 0
        _live_dispatchers.add(self)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name="nemoflow-delivery", daemon=True)
                thread.start()
                self._thread = thread

    def _put(self, kind: int, item: Any) -> None:
        if self._closed:
            self.dropped += 1
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait((kind, item))
        except queue.Full:
            self.dropped += 1

    def scope_started(self, record: ScopeRecord) -> None:
        """Queue a scope-start announcement."""
        self._put(_SCOPE_START, record)

    def scope_ended(self, record: ScopeRecord) -> None:
        """Queue a finished scope."""
        self._put(_SCOPE_END, record)

    def call_ended(self, build: Callable[[], LlmCall | None]) -> None:
        """Queue a finished LLM call; ``build`` makes its record on the delivery thread."""
        self._put(_CALL, build)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is delivered and subscribers flushed; ``False`` on timeout."""
        if self._thread is None or self._closed:
            return True  # nothing was ever queued, or shutdown already delivered everything
        deadline = time.monotonic() + timeout
        done = threading.Event()
        try:
            self._queue.put((_FLUSH, (done, deadline)), timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            return False
        return done.wait(max(0.0, deadline - time.monotonic()))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, shut subscribers down, and stop the thread."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        thread = self._thread
        if thread is not None:
            try:
                self._queue.put((_STOP, None), timeout=timeout)
            except queue.Full:
                return
            thread.join(timeout)
        for subscriber in self._subscribers():
            try:
                subscriber.shutdown()
            except Exception as exc:  # contained: shutdown must finish for the others
                self._on_error("subscriber", exc)

    def _run(self) -> None:
        _in_delivery.active = True
        # Exporters' own HTTP requests must never be traced by instrumentation (ours or OTel's).
        otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        while True:
            kind, item = self._queue.get()
            if kind == _STOP:
                return
            if kind == _FLUSH:
                done, deadline = item
                for subscriber in self._subscribers():
                    try:
                        subscriber.flush(max(0.0, deadline - time.monotonic()))
                    except Exception as exc:
                        self._on_error("subscriber", exc)
                done.set()
                continue
            if kind == _CALL:
                try:
                    item = item()
                except Exception as exc:  # building the record failed: count it, deliver nothing
                    self._on_error("record", exc)
                    continue
                if item is None:
                    continue
            for subscriber in self._subscribers():
                try:
                    if kind == _CALL:
                        subscriber.on_call(item)
                    elif kind == _SCOPE_START:
                        subscriber.on_scope_start(item)
                    else:
                        subscriber.on_scope_end(item)
                except Exception as exc:  # a subscriber can never break delivery to the others
                    self._on_error("subscriber", exc)


_live_dispatchers: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for dispatcher in list(_live_dispatchers):
        try:
            dispatcher.shutdown(timeout=5.0)
        except Exception:  # never raise at interpreter exit
            _log.debug("nemoflow: flush at exit failed", exc_info=True)
