"""Delivery of records to subscribers on a background thread, behind a bounded queue.

The caller's thread only appends to a bounded deque: when it is full the record is dropped and counted,
so a slow exporter can never slow the application. Delivery happens in order on one daemon thread per
flow, with OpenTelemetry instrumentation suppressed so an exporter's own HTTP calls are never traced.
Queued records are flushed at interpreter exit.

The thread gathers records for a moment (``linger``) before delivering them, so one wake-up serves
many calls. Waking per record cost more than the record: each wake-up took the GIL from the
application in the middle of its next request (measured with the SDK benchmark in ``bench/``). A flush,
a shutdown or a half-full queue ends the wait at once.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
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
        linger: float = 0.02,
    ) -> None:
        """``subscribers`` is read at delivery time, so subscribers added later receive later records."""
        self._subscribers = subscribers
        self._items: deque[tuple[int, Any]] = deque()
        self._max = max_queue
        self._linger = linger
        self._on_error = on_error
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(threading.Lock())
        self._idle = False  # the thread waits for a first record (set and read under _wakeup)
        self._lingering = False  # the thread waits for more records before delivering
        self._urgent = False  # a flush or stop is queued: deliver now
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
        items = self._items
        if len(items) >= self._max:
            self.dropped += 1
            return
        items.append((kind, item))
        # Appended first, flags read second: the thread sets a flag first and checks the queue second,
        # so one of the two always sees the other (no lost wake-up).
        if self._idle or (self._lingering and len(items) * 2 >= self._max):
            with self._wakeup:
                self._wakeup.notify()

    def _put_urgent(self, kind: int, item: Any) -> None:
        """Queue a flush or stop (never dropped) and end any wait of the thread."""
        self._items.append((kind, item))
        with self._wakeup:
            self._urgent = True
            self._wakeup.notify()

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
        self._put_urgent(_FLUSH, (done, deadline))
        return done.wait(max(0.0, deadline - time.monotonic()))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, shut subscribers down, and stop the thread."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._put_urgent(_STOP, None)
            thread.join(timeout)
        for subscriber in self._subscribers():
            try:
                subscriber.shutdown()
            except Exception as exc:  # contained: shutdown must finish for the others
                self._on_error("subscriber", exc)

    def _wait_for_records(self) -> None:
        wakeup, items = self._wakeup, self._items
        with wakeup:
            self._idle = True
            while not items:
                wakeup.wait()
            self._idle = False
            if not self._urgent and self._linger > 0 and len(items) * 2 < self._max:
                self._lingering = True
                wakeup.wait(self._linger)  # ended early by a flush, a stop or a half-full queue
                self._lingering = False
            self._urgent = False

    def _run(self) -> None:
        _in_delivery.active = True
        # Exporters' own HTTP requests must never be traced by instrumentation (ours or OTel's).
        otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        items = self._items
        while True:
            self._wait_for_records()
            while items:
                kind, item = items.popleft()
                if kind == _STOP:
                    return
                self._deliver(kind, item)

    def _deliver(self, kind: int, item: Any) -> None:
        if kind == _FLUSH:
            done, deadline = item
            for subscriber in self._subscribers():
                try:
                    subscriber.flush(max(0.0, deadline - time.monotonic()))
                except Exception as exc:
                    self._on_error("subscriber", exc)
            done.set()
            return
        if kind == _CALL:
            try:
                item = item()
            except Exception as exc:  # building the record failed: count it, deliver nothing
                self._on_error("record", exc)
                return
            if item is None:
                return
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
