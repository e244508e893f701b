"""The local exporters: the console trace tree and JSON Lines."""

from __future__ import annotations

import io
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from nemoflow._cost import Cost
from nemoflow._exporters import get_exporter
from nemoflow._flow import Flow
from nemoflow._local import ConsoleExporter, JsonlExporter
from nemoflow._model import (
    AnnotatedLlmError,
    AnnotatedLlmRequest,
    AnnotatedLlmResponse,
    ErrorKind,
    FinishReason,
    Message,
    ToolCall,
    Usage,
)
from nemoflow._records import CallStatus, LlmCall, ScopeKind, ScopeRecord
from nemoflow_codec_openai import OpenAIChatCodec

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
TRACE = 0x0123456789ABCDEF0123456789ABCDEF


def scope(
    kind: ScopeKind, name: str, span_id: int, parent_id: int | None, start_ms: int, **extra: Any
) -> ScopeRecord:
    return ScopeRecord(
        span_id=span_id,
        parent_id=parent_id,
        trace_id=TRACE,
        kind=kind,
        name=name,
        start_time_ns=T0 + start_ms * MS,
        **extra,
    )


def ended(record: ScopeRecord, end_ms: int, **changes: Any) -> ScopeRecord:
    return replace(record, end_time_ns=T0 + end_ms * MS, **changes)


def call(span_id: int, parent_id: int | None, start_ms: int, end_ms: int, **extra: Any) -> LlmCall:
    fields: dict[str, Any] = {
        "call_id": f"call-{span_id}",
        "span_id": span_id,
        "parent_id": parent_id,
        "trace_id": TRACE,
        "codec": "openai-chat",
        "provider": "openai",
        "operation": "chat",
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "start_time_ns": T0 + start_ms * MS,
        "end_time_ns": T0 + end_ms * MS,
        "status": CallStatus.OK,
        "model": "gpt-4o-mini",
    }
    fields.update(extra)
    return LlmCall(**fields)


def cost(total: float) -> Cost:
    return Cost(
        total, None, None, None, None, source="price_table", table_version="2026-11-01", model_key="m"
    )


CACHED = Usage(prompt_tokens=1187, completion_tokens=24, total_tokens=1211, cache_read_tokens=1024)
PLAIN = Usage(prompt_tokens=300, completion_tokens=41, total_tokens=341)

AGENT = scope("AGENT", "plan-trip", 1, None, 0, session_id="s-1")
CHAIN = scope("CHAIN", "research", 2, 1, 10)
TOOL = scope("TOOL", "search", 3, 2, 20, tool_arguments={"q": "Lisbon weather"}, tool_call_id="call_1")
FIRST = call(
    4,
    2,
    100,
    912,
    usage=CACHED,
    usage_source="reported",
    cost=cost(0.0012),
    request=AnnotatedLlmRequest(model="gpt-4o-mini", messages=(Message(role="user", content="Where to?"),)),
    response=AnnotatedLlmResponse(text="Lisbon.", finish_reason=FinishReason.STOP),
)
SECOND = call(
    5,
    1,
    1000,
    1600,
    usage=PLAIN,
    usage_source="reported",
    stream=True,
    first_token_time_ns=T0 + 1095 * MS,
    model="claude-haiku-4-5",
    provider="anthropic",
)

EXPECTED_TREE = (
    "AGENT plan-trip · in 1,487 (cached 1,024) · out 65 · $0.0012 (1 unpriced) · 1.70 s\n"
    "├─ CHAIN research · in 1,187 (cached 1,024) · out 24 · $0.0012 · 940 ms\n"
    "│  ├─ TOOL search · 45 ms\n"
    "│  └─ LLM gpt-4o-mini · in 1,187 (cached 1,024) · out 24 · $0.0012 · 812 ms\n"
    "└─ LLM claude-haiku-4-5 · in 300 · out 41 · cost n/a · 600 ms · TTFT 95 ms\n"
)


def deliver_trip(exporter: Any) -> None:
    """The records of one agent run, in the order a flow delivers them."""
    exporter.on_scope_start(AGENT)
    exporter.on_scope_start(CHAIN)
    exporter.on_scope_start(TOOL)
    exporter.on_scope_end(ended(TOOL, 65, tool_result={"sky": "sunny"}))
    exporter.on_call(FIRST)
    exporter.on_scope_end(ended(CHAIN, 950))
    exporter.on_call(SECOND)
    exporter.on_scope_end(ended(AGENT, 1700))


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def color_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)


# ----------------------------------------------------------------------------------------- console tree


def test_console_prints_the_exact_tree_when_the_root_scope_ends() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out)
    deliver_trip(console)
    assert out.getvalue() == EXPECTED_TREE


def test_console_holds_children_until_the_root_scope_ends() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out)
    console.on_scope_start(AGENT)
    console.on_scope_start(CHAIN)
    console.on_call(FIRST)
    console.on_scope_end(ended(CHAIN, 950))
    assert out.getvalue() == ""
    assert console.flush(1.0) is True
    assert out.getvalue() == ""
    console.on_scope_end(ended(AGENT, 1000))
    assert out.getvalue().startswith("AGENT plan-trip")


def test_console_marks_errors_cancellations_and_blocks() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out)
    console.on_scope_start(AGENT)
    console.on_call(
        call(
            4,
            1,
            0,
            50,
            status=CallStatus.ERROR,
            http_status=429,
            error=AnnotatedLlmError(kind=ErrorKind.RATE_LIMIT, status=429, message="Rate limit reached"),
        )
    )
    console.on_call(call(5, 1, 60, 70, status=CallStatus.ERROR, exception="ReadTimeout: timed out"))
    console.on_call(
        call(
            6,
            1,
            80,
            380,
            status=CallStatus.CANCELLED,
            usage=PLAIN,
            usage_source="reported",
            cost=cost(0.00005),
        )
    )
    console.on_call(call(7, 1, 400, 401, status=CallStatus.BLOCKED, block_reason="credit card number"))
    console.on_call(call(8, 1, 410, 420, status=CallStatus.ERROR, http_status=502))
    console.on_scope_end(ended(AGENT, 500, status="error", error="RuntimeError: gave up"))
    assert out.getvalue() == (
        "AGENT plan-trip · in 300 · out 41 · $0.000050 · 500 ms · ✗ RuntimeError: gave up\n"
        "├─ LLM gpt-4o-mini · 50 ms · ✗ rate_limit (HTTP 429): Rate limit reached\n"
        "├─ LLM gpt-4o-mini · 10 ms · ✗ ReadTimeout: timed out\n"
        "├─ LLM gpt-4o-mini · in 300 · out 41 · $0.000050 · 300 ms · ⊘ cancelled\n"
        "├─ LLM gpt-4o-mini · 1 ms · ⊘ blocked: credit card number\n"
        "└─ LLM gpt-4o-mini · 10 ms · ✗ HTTP 502\n"
    )


def test_console_prints_an_unscoped_call_at_once() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out)
    console.on_call(
        call(
            9,
            None,
            0,
            1234,
            usage=CACHED,
            usage_source="reported",
            cost=cost(1.5),
            attempt=2,
            operation="chat",
        )
    )
    assert out.getvalue() == (
        "LLM gpt-4o-mini · in 1,187 (cached 1,024) · out 24 · $1.5000 · 1.23 s · attempt 2\n"
    )


def test_console_shows_cache_writes_reasoning_missing_usage_and_operation() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out)
    usage = Usage(prompt_tokens=2000, completion_tokens=700, cache_write_tokens=1500, reasoning_tokens=600)
    console.on_call(call(1, None, 0, 10, usage=usage, usage_source="reported"))
    console.on_call(call(2, None, 0, 10, model="text-embedding-3-small", operation="embeddings"))
    assert out.getvalue() == (
        "LLM gpt-4o-mini · in 2,000 (cache write 1,500) · out 700 (reasoning 600) · cost n/a · 10 ms\n"
        "LLM text-embedding-3-small (embeddings) · tokens n/a · cost n/a · 10 ms\n"
    )


def test_console_prints_a_call_whose_scope_already_ended_at_once() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out)
    console.on_scope_start(AGENT)
    console.on_scope_end(ended(AGENT, 100))
    out.seek(0)
    out.truncate()
    console.on_call(
        call(4, 1, 50, 400, usage=PLAIN, usage_source="reported", scope_path=("plan-trip", "research"))
    )
    assert out.getvalue() == (
        "LLM gpt-4o-mini · in 300 · out 41 · cost n/a · 350 ms · late, under plan-trip/research\n"
    )


def test_console_show_content() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out, show_content=True)
    deliver_trip(console)
    lines = out.getvalue().splitlines()
    assert lines[2:8] == [
        "│  ├─ TOOL search · 45 ms",
        '│  │     → arguments: {"q":"Lisbon weather"}',
        '│  │     ← result: {"sky":"sunny"}',
        "│  └─ LLM gpt-4o-mini · in 1,187 (cached 1,024) · out 24 · $0.0012 · 812 ms",
        "│        → user: Where to?",
        "│        ← assistant: Lisbon.",
    ]


def test_console_show_content_names_tool_calls_and_cuts_long_text() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out, show_content=True)
    reply = AnnotatedLlmResponse(tool_calls=(ToolCall(id="1", name="search", arguments={"q": "x"}),))
    request = AnnotatedLlmRequest(messages=(Message(role="user", content="word " * 100),))
    console.on_call(call(1, None, 0, 10, request=request, response=reply))
    _, asked, answered = out.getvalue().splitlines()
    assert asked.startswith("   → user: word word")
    assert asked.endswith("...")
    assert len(asked) == len("   → user: ") + 160
    assert answered == '   ← assistant: search({"q":"x"})'


def test_console_has_no_color_off_a_terminal() -> None:
    out = io.StringIO()
    deliver_trip(ConsoleExporter(out))
    assert "\x1b[" not in out.getvalue()


def test_console_colors_a_terminal() -> None:
    out = Tty()
    deliver_trip(ConsoleExporter(out))
    text = out.getvalue()
    assert "\x1b[1;35mAGENT\x1b[0m plan-trip" in text
    assert re.sub(r"\x1b\[[0-9;]*m", "", text) == EXPECTED_TREE


def test_console_honours_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = Tty()
    deliver_trip(ConsoleExporter(out))
    assert out.getvalue() == EXPECTED_TREE


def test_console_color_option_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    forced = io.StringIO()
    deliver_trip(ConsoleExporter(forced, color=True))
    assert "\x1b[" in forced.getvalue()
    monkeypatch.delenv("NO_COLOR")
    off = Tty()
    deliver_trip(ConsoleExporter(off, color=False))
    assert off.getvalue() == EXPECTED_TREE


def test_console_falls_back_to_ascii_glyphs() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    deliver_trip(ConsoleExporter(out))
    assert raw.getvalue().decode("ascii").splitlines()[:3] == [
        "AGENT plan-trip | in 1,487 (cached 1,024) | out 65 | $0.0012 (1 unpriced) | 1.70 s",
        "|- CHAIN research | in 1,187 (cached 1,024) | out 24 | $0.0012 | 940 ms",
        "|  |- TOOL search | 45 ms",
    ]


def test_console_writes_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    deliver_trip(ConsoleExporter())
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == EXPECTED_TREE


def test_console_shutdown_prints_what_is_still_held() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out)
    console.on_scope_start(AGENT)
    console.on_call(FIRST.__class__(**{**_fields(FIRST), "parent_id": 1}))
    console.shutdown()
    assert out.getvalue() == (
        "AGENT plan-trip · in 1,187 (cached 1,024) · out 24 · $0.0012 · open\n"
        "└─ LLM gpt-4o-mini · in 1,187 (cached 1,024) · out 24 · $0.0012 · 812 ms\n"
    )


def test_console_holds_a_bounded_number_of_traces() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out, max_traces=1)
    console.on_scope_start(AGENT)
    console.on_scope_start(replace(AGENT, trace_id=2, span_id=50, name="other"))
    assert out.getvalue() == "AGENT plan-trip · open\n"


def test_console_counts_records_beyond_the_per_trace_bound() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out, max_records_per_trace=2)
    console.on_scope_start(AGENT)
    console.on_call(call(4, 1, 0, 10))
    console.on_call(call(5, 1, 10, 20))
    console.on_call(call(6, 1, 20, 30))
    console.on_scope_end(ended(AGENT, 40))
    assert out.getvalue() == (
        "AGENT plan-trip · tokens n/a · cost n/a · 40 ms\n"
        "└─ LLM gpt-4o-mini · tokens n/a · cost n/a · 10 ms\n"
        "(2 more records of this trace not shown)\n"
    )


def test_console_bound_also_drops_scopes() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out, max_records_per_trace=1)
    console.on_scope_start(AGENT)
    console.on_scope_start(CHAIN)
    console.on_call(FIRST)
    console.on_scope_end(ended(CHAIN, 950))
    assert out.getvalue() == ""
    console.on_scope_end(ended(AGENT, 1000))
    assert out.getvalue() == "AGENT plan-trip · 1.00 s\n(3 more records of this trace not shown)\n"


def test_console_tree_from_a_real_flow() -> None:
    out = io.StringIO()
    flow = Flow(subscribers=[ConsoleExporter(out)])
    reply = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1187,
            "completion_tokens": 24,
            "prompt_tokens_details": {"cached_tokens": 1024},
        },
    }
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
    try:
        with flow.scope("plan-trip"):
            with flow.tool("search") as run:
                run.result = "ok"
            handle = flow.start_call(
                "POST", "https://api.openai.com/v1/chat/completions", {}, body, codec=OpenAIChatCodec()
            )
            assert handle is not None
            handle.response_started(200, {"content-type": "application/json"})
            handle.response_body(orjson.dumps(reply))
            handle.finish()
        assert flow.flush(5.0)
    finally:
        flow.shutdown()
    timeless = re.sub(r"\d[\d,.]* (ms|s)\b", "T", out.getvalue())
    timeless = re.sub(r"\$\d+\.\d+", "$C", timeless)
    assert timeless == (
        "AGENT plan-trip · in 1,187 (cached 1,024) · out 24 · $C · T\n"
        "├─ TOOL search · T\n"
        "└─ LLM gpt-4o-mini-2024-07-18 · in 1,187 (cached 1,024) · out 24 · $C · T\n"
    )


def _fields(record: LlmCall) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


# ----------------------------------------------------------------------------------------- JSON Lines


def read_lines(text: str | bytes) -> list[dict[str, Any]]:
    raw = text.decode() if isinstance(text, bytes) else text
    return [orjson.loads(line) for line in raw.splitlines()]


def test_jsonl_lines_round_trip_the_key_facts() -> None:
    out = io.StringIO()
    jsonl = JsonlExporter(out)
    error_call = call(
        6,
        1,
        0,
        5,
        status=CallStatus.ERROR,
        http_status=429,
        error=AnnotatedLlmError(
            kind=ErrorKind.RATE_LIMIT, status=429, message="slow", body='{"error": "slow"}'
        ),
    )
    deliver_trip(jsonl)
    jsonl.on_call(error_call)
    jsonl.flush(1.0)
    lines = read_lines(out.getvalue())
    assert [line["type"] for line in lines] == [
        "scope_start",
        "scope_start",
        "scope_start",
        "scope_end",
        "llm_call",
        "scope_end",
        "llm_call",
        "scope_end",
        "llm_call",
    ]
    agent_start, _, tool_start, tool_end, first, chain_end, second, agent_end, failed = lines
    assert agent_start == {
        "type": "scope_start",
        "trace_id": "0123456789abcdef0123456789abcdef",
        "span_id": "0000000000000001",
        "parent_id": None,
        "kind": "AGENT",
        "name": "plan-trip",
        "start_time_ns": T0,
        "session_id": "s-1",
        "user_id": None,
        "attributes": {},
    }
    assert tool_start["tool_arguments"] == {"q": "Lisbon weather"}
    assert tool_start["tool_call_id"] == "call_1"
    assert tool_end["tool_result"] == {"sky": "sunny"}
    assert tool_end["end_time_ns"] == T0 + 65 * MS
    assert tool_end["duration_ms"] == 45.0
    assert (tool_end["status"], tool_end["error"]) == ("ok", None)
    assert chain_end["parent_id"] == "0000000000000001"
    assert agent_end["end_time_ns"] == T0 + 1700 * MS

    assert first["span_id"] == "0000000000000004"
    assert first["parent_id"] == "0000000000000002"
    assert first["trace_id"] == agent_start["trace_id"]
    assert (first["start_time_ns"], first["end_time_ns"]) == (T0 + 100 * MS, T0 + 912 * MS)
    assert first["duration_ms"] == 812.0
    assert first["status"] == "ok"
    assert first["usage"] == {
        "prompt_tokens": 1187,
        "completion_tokens": 24,
        "total_tokens": 1211,
        "cache_read_tokens": 1024,
        "cache_write_tokens": None,
        "reasoning_tokens": None,
        "extra": {},
    }
    assert first["cost"]["total"] == 0.0012
    assert first["cost"]["source"] == "price_table"
    assert first["request"]["messages"] == [
        {
            "role": "user",
            "content": "Where to?",
            "name": None,
            "tool_calls": [],
            "tool_call_id": None,
            "extra": {},
        }
    ]
    assert first["response"]["text"] == "Lisbon."
    assert first["response"]["finish_reason"] == "stop"
    assert second["stream"] is True
    assert second["time_to_first_token_ms"] == 95.0
    assert second["request"] is None
    assert failed["status"] == "error"
    assert failed["error"]["kind"] == "rate_limit"
    assert failed["error"]["body"] == '{"error": "slow"}'


def test_jsonl_without_content_keeps_only_facts() -> None:
    out = io.StringIO()
    jsonl = JsonlExporter(out, include_content=False)
    deliver_trip(jsonl)
    jsonl.on_call(
        call(
            6,
            None,
            0,
            5,
            status=CallStatus.ERROR,
            error=AnnotatedLlmError(kind=ErrorKind.SERVER, body="secret"),
        )
    )
    jsonl.flush(1.0)
    text = out.getvalue()
    assert "Where to?" not in text
    assert "Lisbon" not in text
    assert "secret" not in text
    lines = read_lines(text)
    first = next(line for line in lines if line.get("span_id") == "0000000000000004")
    assert first["request"] == {
        "model": "gpt-4o-mini",
        "stream": False,
        "operation": "chat",
        "params": first["request"]["params"],
        "message_count": 1,
        "tools": [],
    }
    assert first["request"]["params"]["max_tokens"] is None
    assert first["response"]["finish_reason"] == "stop"
    assert first["usage"]["prompt_tokens"] == 1187
    tool_lines = [line for line in lines if line.get("kind") == "TOOL"]
    assert all("tool_arguments" not in line and "tool_result" not in line for line in tool_lines)
    assert lines[-1]["error"]["kind"] == "server"
    assert "body" not in lines[-1]["error"]


def test_jsonl_file_is_appended_flushed_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text('{"type": "earlier"}\n')
    jsonl = JsonlExporter(path)
    jsonl.on_call(FIRST)
    assert jsonl.flush(1.0) is True
    assert [line["type"] for line in read_lines(path.read_text())] == ["earlier", "llm_call"]
    stream = jsonl._stream
    jsonl.shutdown()
    assert stream.closed
    jsonl.on_call(SECOND)  # ignored after shutdown
    jsonl.shutdown()
    assert len(path.read_text().splitlines()) == 2


def test_jsonl_leaves_a_given_stream_open() -> None:
    out = io.BytesIO()
    jsonl = JsonlExporter(out)
    jsonl.on_call(FIRST)
    jsonl.shutdown()
    assert not out.closed
    assert read_lines(out.getvalue())[0]["call_id"] == "call-4"


def test_jsonl_writes_values_json_cannot_hold() -> None:
    out = io.StringIO()
    jsonl = JsonlExporter(out)
    odd = scope("CHAIN", "odd", 9, None, 0, attributes={"big": 2**70, "tags": {"a"}, "when": object})
    jsonl.on_scope_start(odd)
    (line,) = read_lines(out.getvalue())
    assert line["attributes"]["big"] == 2**70
    assert line["attributes"]["tags"] == ["a"]
    assert line["attributes"]["when"] == "<class 'object'>"


def test_jsonl_is_thread_safe() -> None:
    out = io.StringIO()
    jsonl = JsonlExporter(out)
    barrier = threading.Barrier(8)

    def write(worker: int) -> None:
        barrier.wait()
        for index in range(200):
            jsonl.on_call(replace(FIRST, call_id=f"{worker}-{index}"))

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = read_lines(out.getvalue())
    assert len(lines) == 1600
    assert len({line["call_id"] for line in lines}) == 1600


def test_local_exporters_are_registered() -> None:
    assert get_exporter("console") is ConsoleExporter
    assert get_exporter("jsonl") is JsonlExporter


def test_console_replaces_content_the_stream_cannot_encode() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    console = ConsoleExporter(out, show_content=True)
    request = AnnotatedLlmRequest(messages=(Message(role="user", content="Olá, Zürich"),))
    console.on_call(call(1, None, 0, 10, request=request))
    assert raw.getvalue().decode("ascii").splitlines() == [
        "LLM gpt-4o-mini | tokens n/a | cost n/a | 10 ms",
        "   > user: Ol?, Z?rich",
    ]


def test_console_strips_control_characters_from_record_text() -> None:
    out = io.StringIO()
    console = ConsoleExporter(out)
    console.on_call(
        call(1, None, 0, 10, model="evil\x1b[2Jmodel\nname", status=CallStatus.BLOCKED, block_reason="a\rb")
    )
    assert out.getvalue() == "LLM evil?[2Jmodel name · 10 ms · ⊘ blocked: a b\n"
