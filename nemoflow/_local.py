"""Local exporters that need no server: a trace tree on the console, and JSON Lines in a file.

Both are subscribers registered under the ``nemoflow.exporters`` entry points (``console`` and ``jsonl``), so
a newcomer sees traces at once::

    flow = Flow(subscribers=[ConsoleExporter()])

They only read what records carry (times included), so the same records always give the same output.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Final

import orjson

from nemoflow._model import (
    AnnotatedLlmError,
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    Message,
    ToolCall,
    as_dict,
)
from nemoflow._records import CallStatus, LlmCall, ScopeRecord, Subscriber

__all__ = ["ConsoleExporter", "JsonlExporter"]

# ----------------------------------------------------------------------------------------- formatting


@dataclass(frozen=True, slots=True)
class _Glyphs:
    branch: str
    last: str
    pipe: str
    blank: str
    sep: str
    failed: str
    stopped: str
    said: str
    answered: str


_UNICODE: Final = _Glyphs("├─ ", "└─ ", "│  ", "   ", " · ", "✗", "⊘", "→", "←")
_ASCII: Final = _Glyphs("|- ", "`- ", "|  ", "   ", " | ", "x", "-", ">", "<")

_RESET: Final = "\x1b[0m"
_STYLES: Final[Mapping[str, str]] = {
    "AGENT": "\x1b[1;35m",
    "CHAIN": "\x1b[1;34m",
    "TOOL": "\x1b[1;33m",
    "LLM": "\x1b[1;36m",
    "dim": "\x1b[2m",
    "error": "\x1b[31m",
    "warn": "\x1b[33m",
    "cost": "\x1b[32m",
}

_CONTENT_WIDTH: Final = 160


def _glyphs_for(stream: IO[str]) -> _Glyphs:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        "├─│└✗⊘·→←".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return _ASCII
    return _UNICODE


def _duration(nanoseconds: int) -> str:
    millis = nanoseconds / 1e6
    if millis < 1000:
        return f"{millis:,.0f} ms"
    return f"{millis / 1000:,.2f} s"


def _money(amount: float, currency: str) -> str:
    text = f"{amount:,.4f}" if amount == 0 or amount >= 0.0001 else f"{amount:.6f}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


_CONTROL: Final = {code: "?" for code in (*range(0x20), *range(0x7F, 0xA0))}


def _safe(text: str) -> str:
    """``text`` on one line without control characters (a model name must not drive the terminal)."""
    return " ".join(text.split()).translate(_CONTROL)


def _one_line(text: str) -> str:
    flat = _safe(text)
    return flat if len(flat) <= _CONTENT_WIDTH else flat[: _CONTENT_WIDTH - 3] + "..."


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _json_bytes(as_dict(value)).decode()


@dataclass(slots=True)
class _Tally:
    """Token counts and cost of one call, or summed over the calls under a scope."""

    calls: int = 0
    prompt: int | None = None
    completion: int | None = None
    cached: int = 0
    written: int = 0
    reasoning: int = 0
    cost: float = 0.0
    currency: str = "USD"
    priced: int = 0
    unpriced: int = 0

    def add(self, call: LlmCall) -> None:
        usage = call.usage
        if call.status is not CallStatus.OK and not usage.reported and call.cost is None:
            return  # a failed call with nothing to count: its mark says enough
        self.calls += 1
        if usage.prompt_tokens is not None:
            self.prompt = (self.prompt or 0) + usage.prompt_tokens
        if usage.completion_tokens is not None:
            self.completion = (self.completion or 0) + usage.completion_tokens
        self.cached += usage.cache_read_tokens or 0
        self.written += usage.cache_write_tokens or 0
        self.reasoning += usage.reasoning_tokens or 0
        if call.cost is None:
            self.unpriced += 1
        else:
            self.priced += 1
            self.cost += call.cost.total
            self.currency = call.cost.currency

    def tokens(self, sep: str) -> str:
        parts: list[str] = []
        if self.prompt is not None:
            details = [f"cached {self.cached:,}"] if self.cached else []
            if self.written:
                details.append(f"cache write {self.written:,}")
            parts.append(f"in {self.prompt:,}" + (f" ({', '.join(details)})" if details else ""))
        if self.completion is not None:
            reasoning = f" (reasoning {self.reasoning:,})" if self.reasoning else ""
            parts.append(f"out {self.completion:,}{reasoning}")
        return sep.join(parts) if parts else "tokens n/a"

    def price(self) -> str:
        if not self.priced:
            return "cost n/a"
        money = _money(self.cost, self.currency)
        return f"{money} ({self.unpriced} unpriced)" if self.unpriced else money


# ----------------------------------------------------------------------------------------- console


@dataclass(slots=True)
class _Trace:
    """Records of one trace, held until its root scope ends."""

    scopes: dict[int, ScopeRecord] = field(default_factory=dict)
    calls: dict[int, LlmCall] = field(default_factory=dict)
    """Calls by arrival number."""
    order: dict[int, int] = field(default_factory=dict)
    """Arrival number of each scope, by span id."""
    dropped: int = 0

    def size(self) -> int:
        return len(self.scopes) + len(self.calls)


@dataclass(frozen=True, slots=True)
class _Node:
    sort_key: tuple[int, int]
    scope: ScopeRecord | None = None
    call: LlmCall | None = None


class ConsoleExporter(Subscriber):
    """Prints a compact tree per trace when its root scope ends.

    Each line shows the kind (``AGENT``, ``CHAIN``, ``TOOL``, ``LLM``), the scope name or model, tokens
    (``in 1,187 (cached 1,024) · out 24``), cost (``$0.0012``, or ``cost n/a`` when unknown), latency (and
    time to first token for streams) and marks for failures (``✗``), cancellations and guardrail blocks
    (``⊘``). Scope lines sum the tokens and cost of every call under them. Records under a scope are held
    until the root scope ends; a call outside any scope is printed at once, as a one-line tree.

    Args:
        stream: Where to write (default: ``sys.stderr`` at the time of writing).
        color: ``True`` or ``False`` to force ANSI colors on or off; ``None`` (default) colors only a
            terminal, and never when the ``NO_COLOR`` environment variable is set.
        show_content: Also print the last user message and the reply under each call, and the arguments
            and result under each tool run, cut to one line.
        max_traces: Traces held at once; when more start, the oldest is printed as it stands.
        max_records_per_trace: Records held per trace; later ones are counted, not shown.

    Raises:
        TypeError: ``stream`` has no ``write`` method, or an option is not of its documented type.
        ValueError: ``max_traces`` or ``max_records_per_trace`` is below 1.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        color: bool | None = None,
        show_content: bool = False,
        max_traces: int = 1000,
        max_records_per_trace: int = 10_000,
    ) -> None:
        if stream is not None:
            _check_writable("stream", stream, "an open text stream with write() or None")
        _check_option("color", color, (bool, type(None)), "True, False or None")
        _check_option("show_content", show_content, (bool,), "True or False")
        _check_count("max_traces", max_traces)
        _check_count("max_records_per_trace", max_records_per_trace)
        self._stream = stream
        self._color = color
        self.show_content = show_content
        """Whether message text, tool arguments and results are printed."""
        self._max_traces = max_traces
        self._max_records = max_records_per_trace
        self._lock = threading.Lock()
        self._traces: OrderedDict[int, _Trace] = OrderedDict()
        self._seq = 0

    # ----------------------------------------------------------------------------------------- records

    def on_scope_start(self, scope: ScopeRecord) -> None:
        """Hold the scope until its trace's root scope ends."""
        with self._lock:
            self._hold(scope.trace_id, scope=scope, create=True)

    def on_scope_end(self, scope: ScopeRecord) -> None:
        """Record the end; print the tree when the scope is the root of what is held for its trace."""
        with self._lock:
            trace = self._hold(scope.trace_id, scope=scope, create=True)
            if trace is None or scope.span_id not in trace.scopes or scope.parent_id in trace.scopes:
                return  # dropped by the bound, or held until its root ends
            text = self._render_subtree(trace, scope.span_id)
            if not trace.scopes and not trace.calls:
                del self._traces[scope.trace_id]
        self._write(text)

    def on_call(self, call: LlmCall) -> None:
        """Hold a call under its scope, or print it at once when its scope is gone or it has none."""
        with self._lock:
            trace = self._traces.get(call.trace_id)
            if call.parent_id is not None and trace is not None:
                if call.parent_id in trace.scopes:
                    self._hold(call.trace_id, call=call, create=False)
                    return
                if trace.dropped:  # its scope was dropped by the bound: count the call with it
                    trace.dropped += 1
                    return
        late = call.parent_id is not None
        self._write(self._render([_Node((0, 0), call=call)], {}, late=late))

    def _hold(
        self, trace_id: int, *, scope: ScopeRecord | None = None, call: LlmCall | None = None, create: bool
    ) -> _Trace | None:
        trace = self._traces.get(trace_id)
        if trace is None:
            if not create:
                return None
            trace = self._traces[trace_id] = _Trace()
            self._evict()
        known = scope is not None and scope.span_id in trace.scopes
        if not known and trace.size() >= self._max_records:
            trace.dropped += 1
            return trace
        self._seq += 1
        if scope is not None:
            trace.scopes[scope.span_id] = scope
            trace.order.setdefault(scope.span_id, self._seq)
        elif call is not None:
            trace.calls[self._seq] = call
        return trace

    def _evict(self) -> None:
        while len(self._traces) > self._max_traces:
            _, oldest = self._traces.popitem(last=False)
            text = self._render_all(oldest)
            if text:
                self._write(text)

    # ----------------------------------------------------------------------------------------- rendering

    def _children(self, trace: _Trace) -> dict[int | None, list[_Node]]:
        children: dict[int | None, list[_Node]] = {}
        for scope in trace.scopes.values():
            parent = scope.parent_id if scope.parent_id in trace.scopes else None
            key = (scope.start_time_ns, trace.order.get(scope.span_id, 0))
            children.setdefault(parent, []).append(_Node(key, scope=scope))
        for seq, call in trace.calls.items():
            parent = call.parent_id if call.parent_id in trace.scopes else None
            children.setdefault(parent, []).append(_Node((call.start_time_ns, seq), call=call))
        for nodes in children.values():
            nodes.sort(key=lambda node: node.sort_key)
        return children

    def _render_subtree(self, trace: _Trace, root_id: int) -> str:
        children = self._children(trace)
        root = trace.scopes[root_id]
        text = self._render([_Node((0, 0), scope=root)], children, dropped=trace.dropped)
        self._forget(trace, root_id, children)
        trace.dropped = 0
        return text

    def _forget(self, trace: _Trace, span_id: int, children: dict[int | None, list[_Node]]) -> None:
        trace.scopes.pop(span_id, None)
        trace.order.pop(span_id, None)
        for node in children.get(span_id, ()):
            if node.scope is not None:
                self._forget(trace, node.scope.span_id, children)
            else:
                trace.calls.pop(node.sort_key[1], None)

    def _render_all(self, trace: _Trace) -> str:
        children = self._children(trace)
        return self._render(children.get(None, []), children, dropped=trace.dropped)

    def _render(
        self,
        roots: list[_Node],
        children: dict[int | None, list[_Node]],
        *,
        late: bool = False,
        dropped: int = 0,
    ) -> str:
        glyphs = _glyphs_for(self._target())
        paint = _Painter(self._use_color())
        lines: list[str] = []

        def walk(node: _Node, lead: str, own: str, follow: str) -> None:
            lines.append(paint("dim", lead + own) + self._line(node, children, glyphs, paint, late=late))
            below = lead + follow
            kids = children.get(node.scope.span_id, []) if node.scope is not None else []
            indent = below + (glyphs.pipe if kids else glyphs.blank)
            lines.extend(paint("dim", indent + text) for text in self._content(node, glyphs))
            for index, kid in enumerate(kids):
                last = index == len(kids) - 1
                walk(
                    kid, below, glyphs.last if last else glyphs.branch, glyphs.blank if last else glyphs.pipe
                )

        for node in roots:
            walk(node, "", "", "")
        if dropped:
            lines.append(paint("dim", f"({dropped:,} more records of this trace not shown)"))
        return "".join(line + "\n" for line in lines)

    def _line(
        self,
        node: _Node,
        children: dict[int | None, list[_Node]],
        glyphs: _Glyphs,
        paint: _Painter,
        *,
        late: bool,
    ) -> str:
        if node.call is not None:
            return self._call_line(node.call, glyphs, paint, late=late)
        scope = node.scope
        if scope is None:  # pragma: no cover - a node holds a scope or a call
            return ""
        parts = [paint(scope.kind, scope.kind) + " " + _safe(scope.name)]
        tally = _Tally()
        for call in self._calls_under(scope.span_id, children):
            tally.add(call)
        if tally.calls:
            parts.append(tally.tokens(glyphs.sep))
            parts.append(paint("cost" if tally.priced else "dim", tally.price()))
        if scope.end_time_ns is None:
            parts.append(paint("warn", "open"))
        else:
            parts.append(_duration(scope.end_time_ns - scope.start_time_ns))
        if scope.status == "error":
            parts.append(paint("error", f"{glyphs.failed} {_one_line(scope.error or 'error')}"))
        return glyphs.sep.join(parts)

    def _calls_under(self, span_id: int, children: dict[int | None, list[_Node]]) -> Iterable[LlmCall]:
        for node in children.get(span_id, ()):
            if node.call is not None:
                yield node.call
            elif node.scope is not None:
                yield from self._calls_under(node.scope.span_id, children)

    def _call_line(self, call: LlmCall, glyphs: _Glyphs, paint: _Painter, *, late: bool) -> str:
        model = call.model or (call.request.model if call.request is not None else None) or call.codec
        head = paint("LLM", "LLM") + " " + _safe(model)
        if call.operation != "chat":
            head += f" ({call.operation})"
        parts = [head]
        tally = _Tally()
        tally.add(call)
        if tally.calls:
            parts.append(tally.tokens(glyphs.sep))
            parts.append(paint("cost" if tally.priced else "dim", tally.price()))
        parts.append(_duration(call.end_time_ns - call.start_time_ns))
        if call.stream and call.first_token_time_ns is not None:
            parts.append("TTFT " + _duration(call.first_token_time_ns - call.start_time_ns))
        if call.attempt > 1:
            parts.append(f"attempt {call.attempt}")
        mark = self._call_mark(call, glyphs)
        if mark is not None:
            parts.append(paint("error" if call.status is CallStatus.ERROR else "warn", mark))
        if late:
            path = _safe("/".join(call.scope_path))
            parts.append(paint("dim", f"late, under {path}" if path else "late"))
        return glyphs.sep.join(parts)

    @staticmethod
    def _call_mark(call: LlmCall, glyphs: _Glyphs) -> str | None:
        if call.status is CallStatus.BLOCKED:
            reason = f": {_one_line(call.block_reason)}" if call.block_reason else ""
            return f"{glyphs.stopped} blocked{reason}"
        if call.status is CallStatus.CANCELLED:
            return f"{glyphs.stopped} cancelled"
        if call.status is not CallStatus.ERROR:
            return None
        return f"{glyphs.failed} {_error_label(call)}"

    def _content(self, node: _Node, glyphs: _Glyphs) -> list[str]:
        if not self.show_content:
            return []
        lines: list[str] = []
        if node.call is not None:
            request, response = node.call.request, node.call.response
            asked = _last_user_text(request.messages) if request is not None else None
            if asked:
                lines.append(f"{glyphs.said} user: {_one_line(asked)}")
            answer = _reply_text(response) if response is not None else None
            if answer:
                lines.append(f"{glyphs.answered} assistant: {_one_line(answer)}")
        elif node.scope is not None and node.scope.kind == "TOOL":
            if node.scope.tool_arguments is not None:
                lines.append(f"{glyphs.said} arguments: {_one_line(_to_text(node.scope.tool_arguments))}")
            if node.scope.tool_result is not None:
                lines.append(f"{glyphs.answered} result: {_one_line(_to_text(node.scope.tool_result))}")
        return lines

    # ----------------------------------------------------------------------------------------- output

    def _target(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    def _use_color(self) -> bool:
        if self._color is not None:
            return self._color
        if os.environ.get("NO_COLOR"):
            return False
        isatty = getattr(self._target(), "isatty", None)
        try:
            return bool(isatty()) if callable(isatty) else False
        except (ValueError, OSError):  # a closed stream
            return False

    def _write(self, text: str) -> None:
        if not text:
            return
        target = self._target()
        try:
            target.write(text)
        except UnicodeEncodeError:  # content the stream's encoding cannot hold
            encoding = getattr(target, "encoding", None) or "ascii"
            target.write(text.encode(encoding, "replace").decode(encoding))
        target.flush()

    def flush(self, timeout: float) -> bool:
        """Flush the stream; traces whose root scope is still open stay held."""
        try:
            self._target().flush()
        except (ValueError, OSError):
            return False
        return True

    def shutdown(self) -> None:
        """Print every trace still held, open scopes marked ``open``."""
        with self._lock:
            traces = list(self._traces.values())
            self._traces.clear()
        for trace in traces:
            self._write(self._render_all(trace))


class _Painter:
    """Wraps text in ANSI styles, or leaves it alone when color is off."""

    __slots__ = ("_on",)

    def __init__(self, on: bool) -> None:
        self._on = on

    def __call__(self, style: str, text: str) -> str:
        if not self._on or not text:
            return text
        return f"{_STYLES[style]}{text}{_RESET}"


def _error_label(call: LlmCall) -> str:
    error = call.error
    if error is not None:
        label = error.kind.value
        if error.status is not None:
            label += f" (HTTP {error.status})"
        if error.message:
            label += f": {_one_line(error.message)}"
        return label
    if call.exception:
        return _one_line(call.exception)
    if call.http_status is not None:
        return f"HTTP {call.http_status}"
    return "error"


def _last_user_text(messages: Iterable[Message]) -> str | None:
    for message in reversed(tuple(messages)):
        if message.role == "user" and message.text:
            return message.text
    return None


def _arguments_text(call: ToolCall) -> str:
    if call.arguments is not None:
        return _to_text(call.arguments)
    return call.arguments_raw or ""


def _reply_text(response: AnnotatedLlmResponse) -> str | None:
    if response.text:
        return response.text
    if response.tool_calls:
        return ", ".join(f"{call.name}({_arguments_text(call)})" for call in response.tool_calls)
    return response.refusal


# ----------------------------------------------------------------------------------------- JSON Lines


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def _json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_json_default)
    except TypeError:  # integers beyond 64 bits and the like
        return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def _trace_hex(value: int) -> str:
    return f"{value:032x}"


def _span_hex(value: int | None) -> str | None:
    return f"{value:016x}" if value is not None else None


def _request_facts(request: AnnotatedLlmRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "stream": request.stream,
        "operation": request.operation,
        "params": as_dict(request.params),
        "message_count": len(request.messages),
        "tools": [tool.name for tool in request.tools],
    }


def _response_facts(response: AnnotatedLlmResponse) -> dict[str, Any]:
    return {
        "id": response.id,
        "model": response.model,
        "operation": response.operation,
        "finish_reason": response.finish_reason.value,
        "finish_reason_raw": response.finish_reason_raw,
        "service_tier": response.service_tier,
        "system_fingerprint": response.system_fingerprint,
    }


def _error_facts(error: AnnotatedLlmError, include_content: bool) -> dict[str, Any]:
    facts: dict[str, Any] = as_dict(error)
    if not include_content:
        facts.pop("body", None)
    return facts


def _check_option(name: str, value: object, types: tuple[type, ...], expected: str) -> None:
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {expected}, not {value!r}")


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")


def _check_writable(name: str, stream: object, expected: str) -> None:
    if not callable(getattr(stream, "write", None)):
        raise TypeError(f"{name} must be {expected}, not {type(stream).__name__}")
    if getattr(stream, "closed", False) is True:
        raise ValueError(f"{name} is a closed stream")
    writable = getattr(stream, "writable", None)
    if callable(writable):
        try:
            can_write = writable()
        except ValueError:  # some streams raise instead of answering once closed
            can_write = False
        if can_write is False:
            raise ValueError(f"{name} is not open for writing (mode {getattr(stream, 'mode', '?')!r})")


class JsonlExporter(Subscriber):
    """Writes one JSON object per line for every record: ``llm_call``, ``scope_start`` and ``scope_end``.

    Ids are lower-case hex like OpenTelemetry's (32 digits for trace ids, 16 for span ids), times are
    integer nanoseconds since the epoch, and requests and responses are the annotated objects as
    :func:`nemoflow.as_dict` gives them. Lines are buffered until :meth:`flush`. Safe to share between
    threads.

    Args:
        path_or_stream: A file path (opened for appending, closed on :meth:`shutdown`) or an open text or
            binary stream (flushed, never closed).
        include_content: Write messages, replies, tool arguments and results, and error bodies. When
            ``False`` only their non-content facts are kept (model, parameters, counts, finish reason).

    Raises:
        OSError: The file cannot be opened for appending (its folder does not exist, no permission...).
        TypeError: ``path_or_stream`` is neither a path nor a stream with ``write``, or
            ``include_content`` is not a bool.
        ValueError: The stream is closed or not open for writing.
    """

    def __init__(
        self, path_or_stream: str | os.PathLike[str] | IO[str] | IO[bytes], *, include_content: bool = True
    ) -> None:
        _check_option("include_content", include_content, (bool,), "True or False")
        if not isinstance(path_or_stream, str | os.PathLike):
            _check_writable(
                "path_or_stream",
                path_or_stream,
                "a file path (str or os.PathLike) or an open stream with write()",
            )
        self.include_content = include_content
        """Whether content is written."""
        self._lock = threading.Lock()
        self._closed = False
        if isinstance(path_or_stream, str | os.PathLike):
            self._stream: IO[Any] = open(os.fspath(path_or_stream), "ab")  # closed in shutdown()
            self._owned = True
            self._binary = True
        else:
            self._stream = path_or_stream
            self._owned = False
            self._binary = isinstance(path_or_stream, io.RawIOBase | io.BufferedIOBase) or "b" in str(
                getattr(path_or_stream, "mode", "")
            )

    # ----------------------------------------------------------------------------------------- records

    def on_scope_start(self, scope: ScopeRecord) -> None:
        """Write a ``scope_start`` line."""
        self._emit(self._scope_dict(scope, "scope_start"))

    def on_scope_end(self, scope: ScopeRecord) -> None:
        """Write a ``scope_end`` line."""
        self._emit(self._scope_dict(scope, "scope_end"))

    def on_call(self, call: LlmCall) -> None:
        """Write an ``llm_call`` line."""
        self._emit(self.call_dict(call))

    def _scope_dict(self, scope: ScopeRecord, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": kind,
            "trace_id": _trace_hex(scope.trace_id),
            "span_id": _span_hex(scope.span_id),
            "parent_id": _span_hex(scope.parent_id),
            "kind": scope.kind,
            "name": scope.name,
            "start_time_ns": scope.start_time_ns,
            "session_id": scope.session_id,
            "user_id": scope.user_id,
            "attributes": as_dict(scope.attributes),
        }
        if scope.kind == "TOOL":
            out["tool_call_id"] = scope.tool_call_id
            if self.include_content:
                out["tool_arguments"] = as_dict(scope.tool_arguments)
        if kind == "scope_end":
            end = scope.end_time_ns
            out["end_time_ns"] = end
            out["duration_ms"] = (end - scope.start_time_ns) / 1e6 if end is not None else None
            out["status"] = scope.status
            out["error"] = scope.error
            if scope.kind == "TOOL" and self.include_content:
                out["tool_result"] = as_dict(scope.tool_result)
        return out

    def call_dict(self, call: LlmCall) -> dict[str, Any]:
        """The JSON-ready object written as the line for ``call``."""
        content = self.include_content
        request = call.request
        response = call.response
        return {
            "type": "llm_call",
            "call_id": call.call_id,
            "trace_id": _trace_hex(call.trace_id),
            "span_id": _span_hex(call.span_id),
            "parent_id": _span_hex(call.parent_id),
            "codec": call.codec,
            "provider": call.provider,
            "operation": call.operation,
            "method": call.method,
            "url": call.url,
            "status": call.status.value,
            "http_status": call.http_status,
            "start_time_ns": call.start_time_ns,
            "end_time_ns": call.end_time_ns,
            "first_byte_time_ns": call.first_byte_time_ns,
            "first_token_time_ns": call.first_token_time_ns,
            "duration_ms": call.duration_ms,
            "time_to_first_token_ms": call.time_to_first_token_ms,
            "attempt": call.attempt,
            "stream": call.stream,
            "model": call.model,
            "usage": as_dict(call.usage),
            "usage_source": call.usage_source,
            "cost": as_dict(call.cost) if call.cost is not None else None,
            "error": _error_facts(call.error, content) if call.error is not None else None,
            "exception": call.exception,
            "block_reason": call.block_reason,
            "policies_applied": list(call.policies_applied),
            "scope_path": list(call.scope_path),
            "session_id": call.session_id,
            "user_id": call.user_id,
            "request": None if request is None else as_dict(request) if content else _request_facts(request),
            "response": None
            if response is None
            else as_dict(response)
            if content
            else _response_facts(response),
        }

    # ----------------------------------------------------------------------------------------- output

    def _emit(self, obj: dict[str, Any]) -> None:
        line = _json_bytes(obj) + b"\n"
        with self._lock:
            if self._closed:
                return
            if self._binary:
                self._stream.write(line)
            else:
                self._stream.write(line.decode())

    def flush(self, timeout: float) -> bool:
        """Push buffered lines to the file or stream."""
        with self._lock:
            if self._closed:
                return True
            self._stream.flush()
        return True

    def shutdown(self) -> None:
        """Flush, and close the file if this exporter opened it; later records are ignored."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._stream.flush()
            finally:
                if self._owned:
                    self._stream.close()
