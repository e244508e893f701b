"""Fixtures for the OpenInference exporter: an in-memory span sink, and a real Phoenix server for e2e tests.

The Phoenix fixture runs ``arize-phoenix`` from a virtual environment of its own (it has far more
dependencies than nemoflow and must not share them). The environment is cached across runs in
``~/.cache/nemoflow/phoenix-venv-<version>`` (``NEMOFLOW_PHOENIX_VENV`` overrides the path) and reused
when it already holds the pinned version; creating it takes a few minutes. The server listens on free
loopback ports with an in-memory database and is stopped by its PID when the session ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PHOENIX_VERSION = "20.26.1"
INSTALL_TIMEOUT_S = 1200.0
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


@pytest.fixture(autouse=True)
def _no_openinference_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own OPENINFERENCE_* settings must not change what the tests see.
    for name in list(os.environ):
        if name.startswith("OPENINFERENCE_") or name.startswith("PHOENIX_"):
            monkeypatch.delenv(name)


# ------------------------------------------------------------------------------------------- Phoenix


def _venv_dir() -> Path:
    configured = os.environ.get("NEMOFLOW_PHOENIX_VENV")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "nemoflow" / f"phoenix-venv-{PHOENIX_VERSION}"


def _venv_works(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not (python.exists() and (venv / "bin" / "phoenix").exists()):
        return False
    check = (
        f"import importlib.metadata as m; raise SystemExit(m.version('arize-phoenix') != {PHOENIX_VERSION!r})"
    )
    try:
        done = subprocess.run([str(python), "-c", check], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    kept = [
        line for line in text.splitlines() if "is ignored: it is neither a file nor a directory" not in line
    ]
    return "\n".join(kept[-lines:])


def _ensure_phoenix_venv() -> Path:
    """The Phoenix environment, created on first use; skips the test when it cannot be created."""
    venv = _venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / f".{venv.name}.lock"
    with lock_path.open("w") as lock:  # two test runs must not install into the same place at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _venv_works(venv):
            return venv
        log = venv.parent / f"{venv.name}.install.log"
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"arize-phoenix=={PHOENIX_VERSION}",
            ],
        ]
        with log.open("w") as out:
            for step in steps:
                try:
                    done = subprocess.run(
                        step, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
                    )
                except (OSError, subprocess.TimeoutExpired) as exc:
                    pytest.skip(f"cannot create the Phoenix environment ({' '.join(step[:3])}): {exc}")
                if done.returncode != 0:
                    command = " ".join(step[:4])
                    reason = f"cannot create the Phoenix environment: {command} exited {done.returncode}"
                    pytest.skip(f"{reason}:\n{_tail(log)}")
        if not _venv_works(venv):
            pytest.skip(f"arize-phoenix {PHOENIX_VERSION} installed but does not import:\n{_tail(log)}")
        return venv


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def phoenix_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Phoenix server started for this test session (``http://127.0.0.1:<port>``)."""
    venv = _ensure_phoenix_venv()
    workdir = tmp_path_factory.mktemp("phoenix")
    http_port, grpc_port = _free_port(), _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PHOENIX_", "OTEL_"))}
    env.update(
        {
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(http_port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_WORKING_DIR": str(workdir),
            "PHOENIX_SQL_DATABASE_URL": "sqlite:///:memory:",
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        }
    )
    log_path = workdir / "phoenix.log"
    base_url = f"http://127.0.0.1:{http_port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "phoenix"), "serve"],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(base_url):
            if process.poll() is not None:
                pytest.fail(f"phoenix serve exited with {process.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"phoenix serve not healthy after {STARTUP_TIMEOUT_S:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.25)
        yield base_url
    finally:
        with contextlib.suppress(Exception):
            _stop(process)
