"""``nemoflow demo`` (the README's main job) and ``nemoflow run`` (instrumentation from the outside)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nemoflow._cli import main
from nemoflow._demo import run_demo

APP = """
import openai
from nemoflow._demo import ReplayServer

with ReplayServer().running() as upstream:
    client = openai.OpenAI(base_url=upstream.base_url + "/v1", api_key="sk-not-recorded", max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    print("finish:", reply.choices[0].finish_reason)
"""


def test_demo_runs_every_sdk_through_nemoflow() -> None:
    out = io.StringIO()
    result = run_demo(out=out)
    text = out.getvalue()
    assert "LOCAL REPLAY" in text
    tree = [line for line in text.splitlines() if line.startswith(("AGENT", "├", "└"))]
    assert tree[0].startswith("AGENT trip-planner · in 4,536 (cached 4,224) · out 101 (reasoning 30) · $")
    kinds = [line.split(" ")[1] for line in tree[1:]]
    assert kinds == ["LLM", "TOOL", "LLM", "LLM", "LLM"]
    assert "claude-haiku-4-5" in tree[4] and "gemini-2.5-flash" in tree[5] and "TTFT" in tree[3]
    paths = [path for path, _ in result.requests]
    assert (
        paths[0] == "/v1/chat/completions" and paths[2] == "/v1/messages" and ":generateContent" in paths[3]
    )
    first, streamed = result.requests[0][1], result.requests[1][1]
    assert first["max_tokens"] == 256  # the sample policy capped the app's 1024 on the wire
    assert streamed["stream_options"] == {"include_usage": True}  # injected for token counts
    assert result.answer == "Yes: rain is forecast in Lyon (14 °C), so pack an umbrella."
    assert result.translation.startswith("Pluie")


def test_demo_command_exits_cleanly() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nemoflow", "demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "AGENT trip-planner" in done.stdout and "Traceback" not in done.stderr


def test_run_instruments_a_program_that_never_mentions_nemoflow(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    traces = tmp_path / "traces.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nemoflow",
            "run",
            "--exporter",
            "jsonl",
            "--jsonl",
            str(traces),
            "--",
            sys.executable,
            str(app),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "finish: tool_calls" in done.stdout
    records = [json.loads(line) for line in traces.read_text().splitlines()]
    calls = [r for r in records if r["type"] == "llm_call"]
    assert len(calls) == 1 and calls[0]["codec"] == "openai-chat" and calls[0]["status"] == "ok"
    assert "sk-not-recorded" not in traces.read_text()


def test_run_passes_the_exit_status_through(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nemoflow", "run", "--", sys.executable, "-c", "raise SystemExit(7)"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 7


@pytest.mark.parametrize(
    ("argv", "message", "status"),
    [
        (["run"], "nothing to run", 2),
        # like the shell and env(1): 127 for a command that is not found (tests/reliability/test_bad_input.py)
        (["run", "--", "definitely-not-a-command-xyz"], "command not found", 127),
    ],
)
def test_run_user_errors_exit_2(
    argv: list[str], message: str, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == status
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
