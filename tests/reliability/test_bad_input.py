"""Bad input to the command line and to configuration: one clear line, the documented exit code, no traceback.

The command line answers a user's mistake with one line on stderr that names what is wrong and what was
expected (after argparse's usage synopsis when the command line itself is wrong) and exit code 2; ``nemoflow
run`` follows the shell for a program it cannot start (127 not found, 126 not executable). Configuration
errors (exporter options, environment variables, price overrides) are either a clear ``TypeError`` or
``ValueError`` at construction, naming the option, or a documented fallback with one warning. A program
under ``nemoflow run`` always runs, even when nemoflow's own start-up fails.

Extends tests/test_cli.py and tests/test_demo_and_run.py (the happy paths and a first few errors there).
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from nemoflow import Flow, as_dict
from nemoflow._cli import main
from nemoflow._cost import ModelPrice, PriceTable
from nemoflow._local import ConsoleExporter, JsonlExporter
from nemoflow._runner import build_environment
from nemoflow_exporter_genai import GenAIExporter
from nemoflow_exporter_genai._exporter import CAPTURE_CONTENT_ENV, capture_content_from_env
from nemoflow_exporter_openinference import OpenInferenceExporter
from nemoflow_exporter_openinference._config import DEFAULT_BASE64_IMAGE_MAX_LENGTH, HideConfig
from nemoflow_exporter_openinference._provider import (
    DEFAULT_ENDPOINT,
    build_tracer_provider,
    default_endpoint,
)
from tests.upstream import refused_port

PY = sys.executable
TIMEOUT = 60
POSIX = sys.platform != "win32"
ROOT = POSIX and os.geteuid() == 0

REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
}
ERROR_LINE = re.compile(r"nemoflow(?: (?:decode|codecs|demo|run))?: error: \S")


# ----------------------------------------------------------------------------------------- helpers


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any nemoflow, OpenInference, Phoenix or OTel setting."""
    prefixes = ("NEMOFLOW_", "OPENINFERENCE_", "PHOENIX_", "OTEL_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env.update(extra)
    return env


def nemoflow(*argv: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """``python -m nemoflow ARGV`` as a process: a real traceback would show in its output."""
    done = subprocess.run(
        [PY, "-m", "nemoflow", *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=clean_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout, done.stderr


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``nemoflow._cli.main(ARGV)`` in this process; a traceback would escape as an exception."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def user_error(result: tuple[int, str, str], *needles: str, status: int = 2) -> str:
    """Assert ``result`` is a user error reported the documented way; returns the message line."""
    code, out, err = result
    assert "Traceback" not in out and "Traceback" not in err, err
    assert code == status, err
    assert out == "", "nothing may reach stdout on an error"
    lines = err.splitlines()
    assert lines, "no message on stderr"
    message = lines[-1]
    assert ERROR_LINE.match(message), err
    usage = lines[:-1]
    if usage:  # argparse puts its usage synopsis, and nothing else, before the message
        assert usage[0].startswith("usage: nemoflow"), err
        assert all(line.startswith(" ") for line in usage[1:]), err
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# ----------------------------------------------------------------------------------------- decode

DECODE_CASES: list[tuple[str, bytes | None, tuple[str, ...], tuple[str, ...]]] = [
    # (id, file content or None for no file, extra argv, words the message must hold)
    ("missing-file", None, (), ("cannot read", "No such file or directory")),
    ("empty-file", b"", (), ("is empty", "expected a JSON payload or a server-sent event stream")),
    ("blank-file", b" \n\t\r\n", (), ("is empty",)),
    ("truncated-json", b'{"model": "gpt-4o", "messages": [', (), ("is not valid JSON",)),
    ("non-utf8", b'\xff\xfe{"model": "gpt-4o"}', (), ("is not UTF-8 text", "0xff at offset 0")),
    ("latin1-inside", '{"model": "caf\xe9"}'.encode("latin-1"), (), ("is not UTF-8 text", "0xe9")),
    ("json-string", b'"hello"', (), ("expected a JSON object, got a string",)),
    ("json-null", b"null", (), ("expected a JSON object, got null",)),
    ("json-number", b"42", (), ("expected a JSON object, got a number",)),
    ("unknown-codec", json.dumps(REQUEST).encode(), ("--codec", "gpt"), ("argument --codec", "known:")),
    (
        "request-as-response",
        json.dumps(REQUEST).encode(),
        ("--kind", "response"),
        ("looks like an openai-chat request, not a response", "--kind response"),
    ),
    (
        "response-as-request",
        json.dumps(RESPONSE).encode(),
        ("--codec", "openai-chat", "--kind", "request"),
        ("looks like an openai-chat response, not a request", "--kind request"),
    ),
    (
        "other-providers-codec",
        json.dumps(REQUEST).encode(),
        ("--codec", "anthropic-messages"),
        ("does not look like an anthropic-messages payload", "--kind"),
    ),
    (
        "json-as-stream",
        json.dumps(REQUEST).encode(),
        ("--kind", "stream"),
        ("is not a server-sent event stream", "--codec"),
    ),
    (
        "response-as-stream",
        json.dumps(RESPONSE).encode(),
        ("--kind", "stream", "--codec", "openai-chat"),
        ("looks like an openai-chat response, not a stream",),
    ),
    ("depth-beyond-orjson", nested(5000).encode(), (), ("is not valid JSON", "depth")),
    (
        "depth-beyond-printing",  # parses and decodes (orjson allows 1024 levels), too deep to print
        json.dumps(REQUEST)[:-1].encode() + b',"metadata_x":' + nested(1015).encode() + b"}",
        (),
        ("nested too deeply to print as JSON",),
    ),
    ("sse-garbage-only", b"data: {not json\n\ndata: also not\n\n", (), ("no JSON event", "--codec")),
]


@pytest.mark.parametrize(
    ("content", "extra", "needles"), [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES]
)
def test_decode_bad_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    extra: tuple[str, ...],
    needles: tuple[str, ...],
) -> None:
    path = tmp_path / "payload.json"
    if content is not None:
        path.write_bytes(content)
    message = user_error(in_process(capsys, "decode", str(path), *extra), *needles)
    assert str(path) in message or "argument --codec" in message  # says which input was at fault


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda tmp: tmp, "Is a directory" if POSIX else ""),
        (lambda tmp: write(tmp, "plain", "x") / "child.json", "Not a directory" if POSIX else ""),
    ],
    ids=["directory", "path-through-a-file"],
)
def test_decode_unreadable_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path], needle: str
) -> None:
    path = make(tmp_path)
    user_error(in_process(capsys, "decode", str(path)), f"cannot read {path}", needle)


def deny_access_as_root(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make ``open`` refuse ``denied`` and anything below it the way a missing permission would.

    Permissions do not stop root (CI runs as root), so there the refusal is simulated at ``open``; as
    any other user the real permission bits do it and this does nothing.
    """
    if not ROOT:
        return
    real_open = builtins.open

    def refusing_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | os.PathLike) and Path(file).is_relative_to(denied):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)


@pytest.mark.skipif(not POSIX, reason="permission bits are POSIX's")
def test_decode_file_without_read_permission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "secret.json", json.dumps(REQUEST))
    path.chmod(0)
    deny_access_as_root(monkeypatch, path)
    try:
        user_error(in_process(capsys, "decode", str(path)), f"cannot read {path}", "Permission denied")
    finally:
        path.chmod(0o600)


def test_decode_empty_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    user_error(in_process(capsys, "decode", "-"), "standard input is empty")


def test_decode_accepts_a_byte_order_mark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Editors on Windows save JSON with a BOM: that is not bad input."""
    path = write(tmp_path, "bom.json", b"\xef\xbb\xbf" + json.dumps(REQUEST).encode())
    code, out, err = in_process(capsys, "decode", str(path), "--compact")
    assert code == 0, err
    assert json.loads(out)["annotated"]["model"] == "gpt-4o"


@pytest.mark.parametrize("status", ["99", "1000", "-1", "600", "abc", "4e2", ""])
def test_decode_status_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str], status: str) -> None:
    path = write(tmp_path, "err.json", '{"error": {"message": "slow down"}}')
    argv = ("decode", str(path), "--codec", "openai-chat", "--kind", "error", "--status", status)
    user_error(in_process(capsys, *argv), "argument --status", "HTTP status code", "100", "599")


@pytest.mark.parametrize("status", ["100", "599"])
def test_decode_status_edges_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    path = write(tmp_path, "err.json", '{"error": {"message": "slow down"}}')
    code, out, err = in_process(
        capsys, "decode", str(path), "--codec", "openai-chat", "--kind", "error", "--status", status
    )
    assert code == 0, err
    assert json.loads(out)["annotated"]["status"] == int(status)


@pytest.mark.parametrize(
    "url",
    [
        "notaurl",
        "api.openai.com/v1/chat/completions",
        "ftp://host/v1",
        "http://",
        "http://[::1",
        "http://h:99999/v1",
        "",
    ],
)
def test_decode_malformed_url(tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str) -> None:
    path = write(tmp_path, "req.json", json.dumps(REQUEST))
    user_error(
        in_process(capsys, "decode", str(path), "--url", url), "argument --url", "http:// or https:// URL"
    )


def test_decode_two_mib_sse_line(tmp_path: Path) -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": "a" * (2 * 1024 * 1024)}}],
    }
    path = write(tmp_path, "big.sse", f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n")
    user_error(nemoflow("decode", str(path)), str(path), "SSE line exceeds the 1048576-byte limit")


@pytest.mark.parametrize(
    ("content", "extra", "needles"),
    [
        (b"\x80\x81 binary", (), ("is not UTF-8 text",)),
        (json.dumps(REQUEST).encode(), ("--status", "1000", "--kind", "error"), ("argument --status",)),
        (json.dumps(REQUEST).encode(), ("--codec", "nope"), ("unknown codec 'nope'",)),
        (json.dumps(REQUEST)[:-1].encode() + b',"x":' + nested(1015).encode() + b"}", (), ("too deeply",)),
        (b"data: " + b"[" * 2000 + b"]" * 2000 + b"\n\n", ("--codec", "openai-chat"), ("not JSON",)),
    ],
    ids=["binary", "status", "codec", "deep-print", "deep-sse-event"],
)
def test_decode_errors_as_a_process(
    tmp_path: Path, content: bytes, extra: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    """The same errors from a real process: nothing but the one line, whatever the interpreter prints."""
    path = write(tmp_path, "payload", content)
    user_error(nemoflow("decode", str(path), *extra), *needles)


# ----------------------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        ((), ("a command is required", "decode, codecs, demo, run")),
        (("bogus",), ("invalid choice: 'bogus'", "'decode'")),
        (("codecs", "extra"), ("nemoflow codecs: error: unrecognized arguments: extra",)),
        (("demo", "--fast"), ("nemoflow demo: error: unrecognized arguments: --fast",)),
        (("decode", "a.json", "b.json"), ("nemoflow decode: error: unrecognized arguments: b.json",)),
    ],
    ids=["no-command", "unknown-command", "codecs-extra", "demo-extra", "decode-two-files"],
)
def test_command_line_shape(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    user_error(in_process(capsys, *argv), *needles)


def test_no_command_as_a_process() -> None:
    message = user_error(nemoflow(), "a command is required")
    assert message.startswith("nemoflow: error:")


def test_codecs_extra_argument_as_a_process() -> None:
    result = nemoflow("codecs", "--verbose")
    user_error(result, "unrecognized arguments: --verbose")
    assert result[2].splitlines()[0] == "usage: nemoflow codecs [-h]"  # its own usage: it takes nothing


# ----------------------------------------------------------------------------------------- run


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (("run", "--"), ("nothing to run", "-- COMMAND")),
        (
            ("run", "--exporter", "zipkin", "--", PY),
            ("argument --exporter", "invalid choice: 'zipkin'", "'jsonl'"),
        ),
        (("run", "--phoenix", "localhost:6006", "--", PY), ("argument --phoenix", "http:// or https:// URL")),
        (("run", "--phoenix", "ftp://x", "--", PY), ("argument --phoenix", "http:// or https:// URL")),
        (
            ("run", "--exporter", "console", "--jsonl", "t.jsonl", "--", PY),
            ("--jsonl", "--exporter jsonl", "'console'"),
        ),
        (
            ("run", "--exporter", "genai", "--phoenix", "http://127.0.0.1:6006", "--", PY),
            ("--phoenix", "--exporter openinference", "'genai'"),
        ),
        (
            ("run", "--phoenix", "http://127.0.0.1:6006", "--jsonl", "t.jsonl", "--", PY),
            ("--phoenix and --jsonl",),
        ),
        (("run", "--verbose", "--", PY), ("nemoflow run: error: unrecognized arguments: --verbose",)),
    ],
    ids=[
        "no-command",
        "unknown-exporter",
        "phoenix-no-scheme",
        "phoenix-ftp",
        "jsonl-vs-console",
        "phoenix-vs-genai",
        "phoenix-and-jsonl",
        "unknown-option",
    ],
)
def test_run_options(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    needles: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)
    user_error(in_process(capsys, *argv), *needles)
    assert not (tmp_path / "t.jsonl").exists()  # refused before anything was written


def test_run_refuses_an_exporter_that_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("nemoflow._exporters.exporters", lambda: ["console", "jsonl"])
    user_error(
        in_process(capsys, "run", "--exporter", "otlp", "--", PY, "-c", "pass"),
        "--exporter otlp",
        "'genai' exporter is not installed",
        "nemoflow-exporter-genai",
    )


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda tmp: tmp / "missing" / "t.jsonl", "No such file or directory"),
        (lambda tmp: write(tmp, "plain", "x") / "t.jsonl", "Not a directory"),
        (lambda tmp: tmp, "Is a directory"),
    ],
    ids=["missing-directory", "path-through-a-file", "a-directory"],
)
def test_run_jsonl_path_is_checked_before_the_program_starts(
    tmp_path: Path, make: Callable[[Path], Path], needle: str
) -> None:
    if not POSIX:
        pytest.skip("errno wording is POSIX's")
    path = make(tmp_path)
    marker = tmp_path / "program-ran"
    program = f"open({str(marker)!r}, 'w').close()"
    user_error(nemoflow("run", "--jsonl", str(path), "--", PY, "-c", program), f"--jsonl {path}", needle)
    assert not marker.exists()


@pytest.mark.skipif(not POSIX, reason="permission bits are POSIX's")
def test_run_jsonl_in_a_read_only_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    deny_access_as_root(monkeypatch, locked)
    try:
        user_error(
            in_process(capsys, "run", "--jsonl", str(locked / "t.jsonl"), "--", PY), "Permission denied"
        )
    finally:
        locked.chmod(0o700)


def test_run_command_not_found_exits_127() -> None:
    """Decision: like the shell and env(1), 127 for a command that is not found (documented in --help)."""
    user_error(
        nemoflow("run", "--", "nemoflow-no-such-program-xyz", "--flag"),
        "cannot run 'nemoflow-no-such-program-xyz': command not found",
        status=127,
    )


@pytest.mark.skipif(not POSIX, reason="execute permission is POSIX's")
@pytest.mark.parametrize("kind", ["file-without-execute-bit", "directory"])
def test_run_command_not_executable_exits_126(tmp_path: Path, kind: str) -> None:
    target = write(tmp_path, "script.sh", "#!/bin/sh\necho hi\n") if kind != "directory" else tmp_path
    if kind != "directory":
        target.chmod(0o644)
    user_error(nemoflow("run", "--", str(target)), f"cannot run {str(target)!r}", status=126)


def test_run_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = in_process(capsys, "run", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "127 when COMMAND is not found" in text and "126 when it cannot be executed" in text
    assert "2 when these options are wrong" in text


@pytest.mark.skipif(not POSIX, reason="signals are POSIX's")
def test_run_reports_a_signal_like_the_shell() -> None:
    done = subprocess.run(
        [
            PY,
            "-m",
            "nemoflow",
            "run",
            "--",
            PY,
            "-c",
            "import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=clean_env(),
    )
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not POSIX, reason="signals are POSIX's")
def test_run_leaves_ctrl_c_to_the_program() -> None:
    """Ctrl-C reaches the program from the terminal; nemoflow waits for it, with no traceback of its own."""
    program = "import sys; print('ready', flush=True); sys.stdin.readline(); print('done', flush=True)"
    process = subprocess.Popen(
        [PY, "-m", "nemoflow", "run", "--", PY, "-c", program],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"  # the program runs, so nemoflow is waiting for it
        process.send_signal(signal.SIGINT)  # to nemoflow only: the program must be the one to decide
        out, err = process.communicate(b"\n", timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    assert process.returncode == 0, err
    assert out == b"done\n"
    assert b"Traceback" not in err


# ----------------------------------------------------------------------------------------- run: the child


def run_child(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    """A program started the way ``nemoflow run`` starts it, with some settings replaced."""
    env = build_environment(clean_env(), exporter="console")
    env.update(overrides)
    return subprocess.run(
        [PY, "-c", "print('app ran')"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
        cwd=tmp_path,
    )


def shadow_nemoflow(tmp_path: Path) -> str:
    """A folder that makes ``import nemoflow`` fail as it does in a Python without nemoflow installed."""
    package = tmp_path / "shadow" / "nemoflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'nemoflow'\", name='nemoflow')\n"
    )
    return str(package.parent)


CHILD_CASES: list[tuple[str, Callable[[Path], dict[str, str]], tuple[str, ...]]] = [
    (
        "unknown-exporter",
        lambda tmp: {"NEMOFLOW_RUN_EXPORTER": "zipkin"},
        ("unknown exporter 'zipkin'", "known:"),
    ),
    (
        "jsonl-missing-directory",
        lambda tmp: {
            "NEMOFLOW_RUN_EXPORTER": "jsonl",
            "NEMOFLOW_RUN_JSONL": str(tmp / "missing" / "t.jsonl"),
        },
        ("No such file or directory", "t.jsonl"),
    ),
    (
        "phoenix-not-a-url",
        lambda tmp: {"NEMOFLOW_RUN_EXPORTER": "openinference", "NEMOFLOW_RUN_PHOENIX": "phoenix:6006"},
        ("NEMOFLOW_RUN_PHOENIX", "http:// or https:// URL", "'phoenix:6006'"),
    ),
    (
        "python-without-nemoflow",
        lambda tmp: {
            "PYTHONPATH": os.pathsep.join(
                [build_environment({}, exporter="console")["PYTHONPATH"], shadow_nemoflow(tmp)]
            )
        },
        ("cannot import nemoflow", "run the program with the Python it is installed in"),
    ),
    (
        "hide-inputs-maybe",
        lambda tmp: {"NEMOFLOW_RUN_EXPORTER": "openinference", "OPENINFERENCE_HIDE_INPUTS": "maybe"},
        ("OPENINFERENCE_HIDE_INPUTS='maybe'", "expected true or false"),
    ),
    (
        "phoenix-endpoint-env",
        lambda tmp: {
            "NEMOFLOW_RUN_EXPORTER": "openinference",
            "PHOENIX_COLLECTOR_ENDPOINT": "localhost:6006",
        },
        ("PHOENIX_COLLECTOR_ENDPOINT", "http:// or https:// URL", DEFAULT_ENDPOINT),
    ),
    (
        "genai-capture-odd",
        lambda tmp: {"NEMOFLOW_RUN_EXPORTER": "otlp", CAPTURE_CONTENT_ENV: "sometimes"},
        (CAPTURE_CONTENT_ENV, "'sometimes'", "not captured"),
    ),
]


@pytest.mark.parametrize(
    ("settings", "needles"), [c[1:] for c in CHILD_CASES], ids=[c[0] for c in CHILD_CASES]
)
def test_bad_settings_never_stop_the_program(
    tmp_path: Path, settings: Callable[[Path], dict[str, str]], needles: tuple[str, ...]
) -> None:
    done = run_child(tmp_path, **settings(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "app ran\n"
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # one warning line, nothing else
    assert lines[0].startswith("nemoflow: ")
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def test_empty_exporter_setting_means_the_default(tmp_path: Path) -> None:
    done = run_child(tmp_path, NEMOFLOW_RUN_EXPORTER=" ")
    assert (done.returncode, done.stdout, done.stderr) == (0, "app ran\n", "")


# ----------------------------------------------------------------------------------------- demo


@pytest.fixture
def dead_port() -> Iterator[int]:
    yield from refused_port()


def test_demo_unreachable_phoenix_fails_fast_and_says_so(dead_port: int) -> None:
    url = f"http://127.0.0.1:{dead_port}"
    message = user_error(nemoflow("demo", "--phoenix", url), f"cannot reach Phoenix at {url}", "--phoenix")
    assert "refused" in message.lower()


@pytest.mark.parametrize("url", ["phoenix", "127.0.0.1:6006", "ftp://127.0.0.1:6006", "http://:6006"])
def test_demo_phoenix_not_a_url(capsys: pytest.CaptureFixture[str], url: str) -> None:
    user_error(in_process(capsys, "demo", "--phoenix", url), "argument --phoenix", "http:// or https:// URL")


def test_run_demo_checks_phoenix_for_library_callers(dead_port: int) -> None:
    from nemoflow import ConfigurationError
    from nemoflow._demo import run_demo

    with pytest.raises(ConfigurationError, match="cannot reach Phoenix"):
        run_demo(out=io.StringIO(), phoenix=f"http://127.0.0.1:{dead_port}")
    with pytest.raises(ConfigurationError, match="http:// or https:// URL"):
        run_demo(out=io.StringIO(), phoenix="phoenix.local")


# ----------------------------------------------------------------------------------------- exporter settings


@pytest.fixture
def no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith(("OPENINFERENCE_", "PHOENIX_", "OTEL_")):
            monkeypatch.delenv(key)
    return monkeypatch


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nemoflow" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("value", ["maybe", "", "2", "tru", "yes please"])
def test_hide_variable_that_does_not_parse_is_ignored_with_a_warning(
    no_exporter_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    no_exporter_env.setenv("OPENINFERENCE_HIDE_OUTPUTS", value)
    with caplog.at_level(logging.WARNING, logger="nemoflow"):
        config = HideConfig.resolve()
    assert config.hide_outputs is False  # the documented default
    assert warnings_of(caplog) == [
        f"nemoflow: ignoring OPENINFERENCE_HIDE_OUTPUTS={value!r} (expected true or false)"
    ]


@pytest.mark.parametrize(("value", "expected"), [(" TRUE ", True), ("On", True), ("0", False), ("no", False)])
def test_hide_variable_accepted_spellings(
    no_exporter_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str, expected: bool
) -> None:
    no_exporter_env.setenv("OPENINFERENCE_HIDE_INPUTS", value)
    with caplog.at_level(logging.WARNING, logger="nemoflow"):
        assert HideConfig.resolve().hide_inputs is expected
    assert warnings_of(caplog) == []


@pytest.mark.parametrize("value", ["lots", "-5", "1e3"])
def test_image_length_variable_that_does_not_parse_is_ignored(
    no_exporter_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    no_exporter_env.setenv("OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH", value)
    with caplog.at_level(logging.WARNING, logger="nemoflow"):
        assert HideConfig.resolve().base64_image_max_length == DEFAULT_BASE64_IMAGE_MAX_LENGTH
    [warning] = warnings_of(caplog)
    assert "OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH" in warning and repr(value) in warning


@pytest.mark.parametrize(
    ("options", "error", "needle"),
    [
        ({"hide_inputs": "false"}, TypeError, "hide_inputs must be True, False or None, not 'false'"),
        ({"hide_output_text": 1}, TypeError, "hide_output_text must be True, False or None"),
        ({"base64_image_max_length": "100"}, TypeError, "base64_image_max_length must be an int"),
        ({"base64_image_max_length": -1}, ValueError, "base64_image_max_length must not be negative"),
    ],
)
def test_hide_options_of_the_wrong_type_are_refused(
    no_exporter_env: pytest.MonkeyPatch, options: dict[str, Any], error: type[Exception], needle: str
) -> None:
    """``hide_inputs="false"`` used to mean *hide*; ``capture``-style strings must not pass for booleans."""
    with pytest.raises(error, match=re.escape(needle)):
        HideConfig.resolve(**options)


@pytest.mark.parametrize(
    "value", ["localhost:6006", "phoenix.internal", "ftp://phoenix:6006", "http://", "http://phoenix:99999"]
)
def test_phoenix_collector_endpoint_that_is_not_a_url_falls_back(
    no_exporter_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    no_exporter_env.setenv("PHOENIX_COLLECTOR_ENDPOINT", value)
    with caplog.at_level(logging.WARNING, logger="nemoflow"):
        assert default_endpoint() == DEFAULT_ENDPOINT
    [warning] = warnings_of(caplog)
    assert "PHOENIX_COLLECTOR_ENDPOINT" in warning and repr(value) in warning and DEFAULT_ENDPOINT in warning


def test_phoenix_collector_endpoint_valid_forms(no_exporter_env: pytest.MonkeyPatch) -> None:
    no_exporter_env.setenv("PHOENIX_COLLECTOR_ENDPOINT", " https://phoenix.example:443/ ")
    assert default_endpoint() == "https://phoenix.example:443/v1/traces"
    no_exporter_env.setenv("PHOENIX_COLLECTOR_ENDPOINT", "http://phoenix:6006/custom/path")
    assert default_endpoint() == "http://phoenix:6006/custom/path"


@pytest.mark.parametrize("endpoint", ["phoenix:6006/v1/traces", "127.0.0.1", "file:///tmp/x"])
def test_explicit_endpoint_that_is_not_a_url_is_refused(
    no_exporter_env: pytest.MonkeyPatch, endpoint: str
) -> None:
    with pytest.raises(ValueError, match=r"endpoint: expected an http:// or https:// URL"):
        build_tracer_provider(endpoint, "p", shutdown_on_exit=False)
    with pytest.raises(ValueError, match=re.escape(repr(endpoint))):
        OpenInferenceExporter(endpoint=endpoint)


@pytest.mark.parametrize(
    ("value", "captured", "warned"),
    [
        ("true", True, False),
        (" SPAN_ONLY ", True, False),
        ("span_and_event", True, False),
        ("false", False, False),
        ("NO_CONTENT", False, False),
        ("event_only", False, False),
        ("", False, False),
        ("maybe", False, True),
        ("enabled", False, True),
        ("2", False, True),
    ],
)
def test_genai_capture_variable(
    no_exporter_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    value: str,
    captured: bool,
    warned: bool,
) -> None:
    no_exporter_env.setenv(CAPTURE_CONTENT_ENV, value)
    with caplog.at_level(logging.WARNING, logger="nemoflow"):
        assert capture_content_from_env() is captured
        exporter = GenAIExporter(TracerProvider(shutdown_on_exit=False))
    assert exporter.capture_content is captured
    warnings = warnings_of(caplog)
    if warned:
        assert len(warnings) == 2  # once per read: the function, then the exporter
        assert CAPTURE_CONTENT_ENV in warnings[0] and repr(value) in warnings[0]
    else:
        assert warnings == []


@pytest.mark.parametrize("value", ["false", "no", 0, 1])
def test_genai_capture_option_must_be_a_bool(no_exporter_env: pytest.MonkeyPatch, value: object) -> None:
    """``capture_content="false"`` would otherwise record personal data."""
    with pytest.raises(
        TypeError, match=re.escape(f"capture_content must be True, False or None, not {value!r}")
    ):
        GenAIExporter(TracerProvider(shutdown_on_exit=False), capture_content=value)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- price overrides


@pytest.mark.parametrize(
    ("overrides", "error", "needles"),
    [
        ({"gpt-4o": {"input": "2.5"}}, ValueError, ("'gpt-4o'", "input", "number", "str")),
        ({"gpt-4o": {"output": -1.0}}, ValueError, ("'gpt-4o'", "output", "non-negative")),
        ({"gpt-4o": {"cache_read": math.nan}}, ValueError, ("'gpt-4o'", "cache_read", "finite")),
        ({"gpt-4o": {"reasoning": True}}, ValueError, ("'gpt-4o'", "reasoning", "bool")),
        ({"gpt-4o": {"cache_write": math.inf}}, ValueError, ("'gpt-4o'", "cache_write", "finite")),
        ({"gpt-4o": {"ouput": 1.0}}, ValueError, ("'gpt-4o'", "unknown fields ['ouput']")),
        ({"gpt-4o": {"input": None}}, ValueError, ("'gpt-4o'", "input", "None")),
        ({"acme-large": {"output": 1.0}}, ValueError, ("'acme-large'", "input price")),
        ({"gpt-4o": 2.5}, TypeError, ("'gpt-4o'", "ModelPrice or a mapping", "float")),
        ({"gpt-4o": [2.5, 10.0]}, TypeError, ("'gpt-4o'", "list")),
        ({42: {"input": 1.0}}, TypeError, ("model names", "int", "42")),
        ([("gpt-4o", {"input": 1.0})], TypeError, ("mapping of model name to prices", "list")),
        ("gpt-4o=2.5", TypeError, ("mapping of model name to prices", "str")),
        ({"  ": {"input": 1.0}}, ValueError, ("empty model name",)),
    ],
    ids=[
        "price-as-string",
        "negative",
        "nan",
        "bool",
        "infinite",
        "misspelt-field",
        "input-none",
        "new-model-without-input",
        "bare-number",
        "list-of-prices",
        "int-key",
        "list-of-pairs",
        "string",
        "blank-name",
    ],
)
def test_price_overrides_with_wrong_types(
    overrides: Any, error: type[Exception], needles: tuple[str, ...]
) -> None:
    """``Flow(price_overrides=...)`` with wrong types is refused at construction, naming model and field."""
    with pytest.raises(error) as caught:
        Flow(price_overrides=overrides)
    for needle in needles:
        assert needle in str(caught.value), f"{needle!r} not in {caught.value}"


def test_price_overrides_that_are_fine_still_apply() -> None:
    flow = Flow(price_overrides={"GPT-4o": {"input": 2}, "acme-large": ModelPrice(input=1.0, output=3.0)})
    assert flow.price_table.models["gpt-4o"].input == 2.0
    assert flow.price_table.is_override("acme-large")


@pytest.mark.parametrize(
    ("entry", "needles"),
    [
        ({"input": "1.5", "output": 2}, ("'acme-large'", "input", "str")),
        ({"input": 1, "output": 2, "aliases": "acme"}, ("aliases of 'acme-large'", "list of strings")),
        ({"input": 1, "outptu": 2}, ("'acme-large'", "unknown fields ['outptu']")),
    ],
)
def test_price_file_with_wrong_types(
    tmp_path: Path, entry: Mapping[str, Any], needles: tuple[str, ...]
) -> None:
    """A price file as a user would load it: the error names the model and the field."""
    path = write(tmp_path, "prices.json", json.dumps({"models": {"acme-large": entry}}))
    with pytest.raises(ValueError) as caught:
        PriceTable.from_mapping(json.loads(path.read_text()))
    for needle in needles:
        assert needle in str(caught.value)


# ----------------------------------------------------------------------------------------- local exporters


@pytest.mark.parametrize(
    ("make", "error", "needle"),
    [
        (lambda tmp: 123, TypeError, "path_or_stream must be a file path"),
        (lambda tmp: None, TypeError, "not NoneType"),
        (lambda tmp: b"/tmp/traces.jsonl", TypeError, "not bytes"),
        (lambda tmp: tmp / "missing" / "t.jsonl", FileNotFoundError, "t.jsonl"),
        (lambda tmp: tmp, IsADirectoryError if POSIX else PermissionError, "directory" if POSIX else ""),
        (lambda tmp: write(tmp, "in.txt", "").open("r"), ValueError, "not open for writing"),
        (lambda tmp: _closed_stream(), ValueError, "closed stream"),
    ],
    ids=["int", "none", "bytes-path", "missing-directory", "directory", "read-only-stream", "closed-stream"],
)
def test_jsonl_exporter_bad_destination(
    tmp_path: Path, make: Callable[[Path], Any], error: type[Exception], needle: str
) -> None:
    target = make(tmp_path)
    try:
        with pytest.raises(error, match=re.escape(needle)):
            JsonlExporter(target)
    finally:
        if hasattr(target, "close"):
            target.close()


def _closed_stream() -> io.StringIO:
    stream = io.StringIO()
    stream.close()
    return stream


def test_jsonl_exporter_include_content_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=re.escape("include_content must be True or False, not 'no'")):
        JsonlExporter(io.StringIO(), include_content="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "error", "needle"),
    [
        ({"stream": 42}, TypeError, "stream must be an open text stream"),
        ({"stream": "stderr"}, TypeError, "not str"),
        ({"color": "yes"}, TypeError, "color must be True, False or None, not 'yes'"),
        ({"show_content": "false"}, TypeError, "show_content must be True or False, not 'false'"),
        ({"max_traces": 0}, ValueError, "max_traces must be at least 1, not 0"),
        ({"max_traces": "10"}, TypeError, "max_traces must be an int, not '10'"),
        ({"max_records_per_trace": -1}, ValueError, "max_records_per_trace must be at least 1"),
        ({"max_records_per_trace": 2.5}, TypeError, "max_records_per_trace must be an int"),
    ],
)
def test_console_exporter_bad_arguments(options: dict[str, Any], error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=re.escape(needle)):
        ConsoleExporter(**options)


def test_console_exporter_refuses_a_read_only_stream() -> None:
    with pytest.raises(ValueError, match="stream is not open for writing"):
        ConsoleExporter(io.BufferedReader(io.BytesIO(b"")))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- Flow(...)


@pytest.mark.parametrize(
    ("options", "error", "needle"),
    [
        pytest.param({"max_queue": 0}, ValueError, "max_queue must be a positive integer"),
        pytest.param({"max_queue": "100"}, ValueError, "max_queue must be a positive integer"),
        pytest.param(
            {"subscribers": [ConsoleExporter]},
            TypeError,
            "subscriber",
        ),
        pytest.param(
            {"subscribers": [42]},
            TypeError,
            "subscriber",
        ),
        pytest.param(
            {"policies": ["cap_max_tokens"]},
            TypeError,
            "polic",
        ),
        pytest.param(
            {"price_table": {"gpt-4o": {"input": 1.0}}},
            TypeError,
            "price_table",
        ),
        pytest.param(
            {"fail_open": "false"},
            TypeError,
            "fail_open",
        ),
    ],
    ids=[
        "max-queue-zero",
        "max-queue-str",
        "subscriber-class",
        "subscriber-int",
        "policy-str",
        "price-table-dict",
        "fail-open-str",
    ],
)
def test_flow_constructor_bad_arguments(options: dict[str, Any], error: type[Exception], needle: str) -> None:
    flow: Flow | None = None
    try:
        with pytest.raises(error, match=needle):
            flow = Flow(**options)
    finally:
        if flow is not None:
            flow.shutdown()


@pytest.mark.parametrize("value", [0, -3, "10", True, 2.5])
def test_exporters_refuse_a_bad_max_open_spans(value: Any) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    with pytest.raises(ValueError, match="max_open_spans must be an integer of at least 1"):
        OpenInferenceExporter(tracer_provider=provider, max_open_spans=value)
    with pytest.raises(ValueError, match="max_open_spans must be an integer of at least 1"):
        GenAIExporter(provider, max_open_spans=value)


def test_as_dict_converts_json_nested_deeper_than_the_recursion_limit() -> None:
    root: dict[str, Any] = {}
    node = root
    for _ in range(3000):
        node["a"] = {}
        node = node["a"]
    node["leaf"] = (1, [2])
    converted = as_dict(root)
    for _ in range(3000):
        converted = converted["a"]
    assert converted == {"leaf": [1, [2]]}
