"""Fixtures for the end-to-end tests against a real llama.cpp ``llama-server`` on loopback.

The server and its tiny model are built once per machine by ``../shared/tools/llama-server/setup.sh``
(beside the repository) into a cache directory, ``$NEMOFLOW_LLAMA_DIR`` or
``~/.cache/nemoflow/llama-server``; a cache that already holds both files is used as it is. The build
takes minutes, so CI runs it before pytest; here it is the fallback for a cold cache. Without the tool
and without a cached build the tests are skipped; a build that fails is an error.

Two servers run on free ``127.0.0.1`` ports for the session: the main one with the prompt cache off
(every request evaluates its whole prompt, so token counts are the same each time) and, only for the
tests that need it, one with the prompt cache on (a repeated prompt reports ``cached_tokens``). Both are
started and stopped here, by their process ids, with bounded waits.
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
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL_DIR = REPO_ROOT.parent / "shared" / "tools" / "llama-server"
TOOL_MISSING_REASON = "../shared/tools/llama-server is missing"

SERVER_BINARY = "llama-server"
MODEL_FILE = "tiny.gguf"
MODEL_ALIAS = "tiny-llama"

BUILD_TIMEOUT_S = 45 * 60  # the build takes ~3.5 min on 2 idle cores; a busy runner can be much slower
BUILD_LOCK_TIMEOUT_S = BUILD_TIMEOUT_S + 60
HEALTH_TIMEOUT_S = 60.0
HEALTH_POLL_S = 0.1
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port can be taken between our probe and the server's bind


def cache_dir() -> Path:
    """Where the built server and model live between runs."""
    configured = os.environ.get("NEMOFLOW_LLAMA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "nemoflow" / "llama-server"


def _is_built(directory: Path) -> bool:
    return (directory / SERVER_BINARY).is_file() and (directory / MODEL_FILE).is_file()


def _toolchain_env() -> dict[str, str]:
    """The environment for ``setup.sh``: this test venv's interpreter taken off ``PATH``.

    ``uv run`` puts the venv first on ``PATH``; ``setup.sh`` writes the model with whatever ``python3`` it
    finds, and that must be the system one, which has the numpy and PyYAML the GGUF writer needs.
    """
    env = dict(os.environ)
    venv = env.pop("VIRTUAL_ENV", None)
    venv_bins = {str(Path(sys.prefix) / "bin")}
    if venv:
        venv_bins.add(str(Path(venv) / "bin"))
    env["PATH"] = os.pathsep.join(
        entry for entry in env.get("PATH", "").split(os.pathsep) if entry and entry not in venv_bins
    )
    env.pop("PYTHONHOME", None)
    return env


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """Serialize builds of one cache directory between concurrent test sessions (bounded wait)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "w") as lock:
        deadline = time.monotonic() + BUILD_LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another session held {lock.name} for too long") from None
                time.sleep(1.0)  # polling another process's lock: there is nothing to wait on instead
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"


def build_server(directory: Path) -> float:
    """Run ``setup.sh`` into ``directory``; returns the seconds it took.

    Raises:
        RuntimeError: The build failed (the error carries the end of its output).
    """
    started = time.monotonic()
    log = directory / "setup.log"
    with open(log, "wb") as out:
        try:
            result = subprocess.run(
                ["bash", str(TOOL_DIR / "setup.sh"), str(directory)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_toolchain_env(),
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"llama-server build timed out after {BUILD_TIMEOUT_S} s; see {log}") from exc
    if result.returncode != 0 or not _is_built(directory):
        details = "\n".join(
            f"--- {path.name}\n{_tail(path)}"
            for path in (log, directory / "cmake.log", directory / "build.log")
            if path.exists()
        )
        raise RuntimeError(f"llama-server build failed (exit {result.returncode}) in {directory}\n{details}")
    return time.monotonic() - started


@pytest.fixture(scope="session")
def llama_dir() -> Path:
    """A directory holding ``llama-server`` and ``tiny.gguf``, built here if the cache is cold."""
    directory = cache_dir()
    if _is_built(directory):
        return directory
    if not (TOOL_DIR / "setup.sh").is_file():
        pytest.skip(TOOL_MISSING_REASON)
    with _build_lock(directory):
        if not _is_built(directory):  # another session may have finished it while we waited
            seconds = build_server(directory)
            sys.stderr.write(f"\nnemoflow e2e: built llama-server in {directory} in {seconds:.0f} s\n")
    return directory


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def _healthy(url: str) -> bool:
    try:
        with _DIRECT.open(f"{url}/health", timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False  # not listening yet, or 503 while the model loads


@dataclass
class LlamaServer:
    """One running ``llama-server`` process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        """Terminate, wait a bounded time, then kill."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


def _start_once(directory: Path, log: Path, prompt_cache: bool) -> LlamaServer | None:
    """Start a server on a fresh port; ``None`` if it exited before becoming healthy (port taken)."""
    port = _free_port()
    command = [
        str(directory / SERVER_BINARY),
        "-m", str(directory / MODEL_FILE),
        "--host", "127.0.0.1",
        "--port", str(port),
        "-c", "4096",
        "-np", "2",
        "-t", "2",
        "-a", MODEL_ALIAS,
        "--no-webui",
    ]  # fmt: skip
    if not prompt_cache:
        command.append("--no-cache-prompt")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if _healthy(server.url):
            return server
        try:
            process.wait(timeout=HEALTH_POLL_S)  # returns at once if the server died
        except subprocess.TimeoutExpired:
            continue
        return None
    server.stop()
    raise RuntimeError(f"llama-server not healthy after {HEALTH_TIMEOUT_S} s\n{_tail(log)}")


def start_server(directory: Path, log_dir: Path, *, prompt_cache: bool) -> LlamaServer:
    """Start ``llama-server`` on a free loopback port and wait until ``/health`` answers 200.

    Raises:
        RuntimeError: It did not come up.
    """
    name = "cached" if prompt_cache else "main"
    for attempt in range(1, START_ATTEMPTS + 1):
        log = log_dir / f"llama-server-{name}-{attempt}.log"
        server = _start_once(directory, log, prompt_cache)
        if server is not None:
            return server
    raise RuntimeError(f"llama-server exited before it was healthy ({START_ATTEMPTS} tries)\n{_tail(log)}")


@pytest.fixture(scope="session")
def llama_server(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no ``/v1``) of a server with the prompt cache off: exact, repeatable token counts."""
    server = start_server(llama_dir, tmp_path_factory.mktemp("llama"), prompt_cache=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llama_cached_server(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a server with the prompt cache on: a repeated prompt reports cached tokens."""
    server = start_server(llama_dir, tmp_path_factory.mktemp("llama-cached"), prompt_cache=True)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys, endpoints and proxies of the developer's shell must not reach the loopback server.
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
