"""``nemoflow decode``: detection, output, and clear exit-2 errors without tracebacks."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nemoflow._cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object] | None, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip().startswith("{") else None), err


def test_bundled_stream_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(capsys, "decode", "--example")
    assert code == 0 and doc is not None
    assert doc["codec"] == "openai-chat" and doc["kind"] == "stream"
    annotated = doc["annotated"]
    assert isinstance(annotated, dict)
    assert annotated["text"] == "It's 14 °C in Paris with rain likely: take an umbrella."
    assert annotated["usage"]["prompt_tokens"] == 1187
    assert annotated["usage"]["cache_read_tokens"] == 1024
    assert annotated["finish_reason"] == "stop"


def test_bundled_request_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(capsys, "decode", "--example", "openai-chat-request")
    assert code == 0 and doc is not None and doc["kind"] == "request"
    annotated = doc["annotated"]
    assert isinstance(annotated, dict)
    assert annotated["system"] == "You are a travel assistant. Answer briefly."
    assert annotated["params"]["max_tokens"] == 256
    assert annotated["tools"][0]["name"] == "get_weather"
    assert annotated["messages"][2]["tool_calls"][0]["arguments"] == {"city": "Paris", "unit": "celsius"}


def test_file_and_url_give_azure_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = tmp_path / "req.json"
    payload.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    url = "https://r.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
    code, doc, _ = run(capsys, "decode", str(payload), "--url", url)
    assert code == 0 and doc is not None
    assert doc["annotated"]["model"] == "prod-4o"  # type: ignore[index]


def test_stdin_error_body(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(body).encode())))
    code, doc, _ = run(capsys, "decode", "-", "--codec", "openai-chat", "--kind", "error", "--status", "429")
    assert code == 0 and doc is not None
    assert doc["annotated"]["kind"] == "rate_limit"  # type: ignore[index]
    assert doc["annotated"]["status"] == 429  # type: ignore[index]


@pytest.mark.parametrize(
    ("content", "argv_extra", "message"),
    [
        (b"not json at all", (), "neither JSON nor a server-sent event stream"),
        (b"[1, 2]", (), "expected a JSON object"),
        (b'{"hello": "world"}', (), "no codec recognizes this payload"),
        (b'{"model": 5, "messages": []}', (), "$.model"),
        (b'{"model": "m", "messages": [{"role": "user", "content": 7}]}', (), "$.messages[0].content"),
        (b'{"model": "m"}', ("--codec", "no-such-codec"), "unknown codec 'no-such-codec'"),
        (b"data: {not json}\n\n", ("--codec", "openai-chat"), "not JSON"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    argv_extra: tuple[str, ...],
    message: str,
) -> None:
    path = tmp_path / "payload"
    path.write_bytes(content)
    code, doc, err = run(capsys, "decode", str(path), *argv_extra)
    assert code == 2 and doc is None
    assert err.startswith("nemoflow: error: ")
    assert message in err
    assert "Traceback" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "decode", "/definitely/not/here.json")
    assert code == 2 and "cannot read" in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "decode")
    assert code == 2 and "usage:" in err


def test_console_script_runs_as_a_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nemoflow", "decode", "--example", "openai-chat-response", "--compact"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["kind"] == "response"
    assert doc["annotated"]["usage"] == {
        "prompt_tokens": 1187,
        "completion_tokens": 24,
        "total_tokens": 1211,
        "cache_read_tokens": 1024,
        "cache_write_tokens": None,
        "reasoning_tokens": 0,
        "extra": doc["annotated"]["usage"]["extra"],
    }


def test_codecs_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codecs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split("\t")[0] for line in lines]
    assert "openai-chat" in names and "openai-embeddings" in names
