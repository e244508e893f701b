"""``nemoflow run``: launch a program with nemoflow instrumentation applied from its first line.

The launcher puts ``nemoflow/_run_site`` first on ``PYTHONPATH`` so the child interpreter imports its
``sitecustomize``, which calls :func:`start_from_environment`: it builds the chosen exporter, makes it the
default flow's subscriber, and calls ``instrument()`` so every HTTP client the program creates is wrapped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "EXPORTER_CHOICES",
    "build_environment",
    "http_url_problem",
    "launch",
    "start_from_environment",
]

EXPORTER_CHOICES = ("console", "jsonl", "openinference", "genai", "otlp")
_ENV_EXPORTER = "NEMOFLOW_RUN_EXPORTER"
_ENV_PHOENIX = "NEMOFLOW_RUN_PHOENIX"
_ENV_JSONL = "NEMOFLOW_RUN_JSONL"
_ENV_PROJECT = "NEMOFLOW_RUN_PROJECT"
_SITE_DIR = Path(__file__).resolve().parent / "_run_site"


def http_url_problem(text: str, example: str = "http://127.0.0.1:6006") -> str | None:
    """Why ``text`` is not an absolute ``http://`` or ``https://`` URL with a host, or ``None`` if it is."""
    example = f"such as {example}"
    try:
        parts = urlsplit(text.strip())
        port = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        return f"expected an http:// or https:// URL {example}, got {text!r} ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL {example}, got {text!r}"
    if port == 0:
        return f"expected an http:// or https:// URL {example}, got {text!r} (port 0)"
    return None


def build_environment(
    base: Mapping[str, str],
    *,
    exporter: str,
    phoenix: str | None = None,
    jsonl: str | None = None,
    project: str | None = None,
) -> dict[str, str]:
    """The child's environment: ``base`` plus nemoflow's settings and its start-up hook on PYTHONPATH."""
    env = dict(base)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_SITE_DIR) + (os.pathsep + existing if existing else "")
    env[_ENV_EXPORTER] = exporter
    for key, value in ((_ENV_PHOENIX, phoenix), (_ENV_JSONL, jsonl), (_ENV_PROJECT, project)):
        if value:
            env[key] = value
    return env


@contextmanager
def _program_owns_interrupts() -> Iterator[None]:
    """While the program runs, Ctrl-C is its business: the terminal sends it to the program as well.

    A handler that does nothing (not ``SIG_IGN``, which the program would inherit) keeps this process
    waiting for the program, so the program can shut down its own way, flush its traces, and its exit
    status is the one reported.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def launch(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``command`` to completion with ``env``; returns its exit status (128+N when signal N ended it).

    Raises:
        OSError: The command could not be started (``FileNotFoundError``, ``PermissionError``...).
    """
    with _program_owns_interrupts():
        process = subprocess.Popen(list(command), env=dict(env))
        code = process.wait()
    return 128 - code if code < 0 else code


def _subscriber_from_environment(env: Mapping[str, str]) -> Any:
    from nemoflow._exporters import get_exporter

    name = env.get(_ENV_EXPORTER, "").strip() or "console"
    if name == "otlp":
        name = "genai"  # the GenAI exporter sends OTLP to OTEL_EXPORTER_OTLP_* like any OTel exporter
    exporter_class: Any = get_exporter(name)
    if name == "jsonl":
        return exporter_class(env.get(_ENV_JSONL) or "nemoflow-traces.jsonl")
    if name == "openinference":
        options: dict[str, Any] = {}
        phoenix = env.get(_ENV_PHOENIX, "").strip()
        if phoenix:
            problem = http_url_problem(phoenix)
            if problem is not None:
                raise ValueError(f"{_ENV_PHOENIX}: {problem}")
            base = phoenix.rstrip("/")
            options["endpoint"] = base if base.endswith("/v1/traces") else base + "/v1/traces"
        if env.get(_ENV_PROJECT):
            options["project_name"] = env[_ENV_PROJECT]
        return exporter_class(**options)
    return exporter_class()


def start_from_environment(env: Mapping[str, str] | None = None) -> None:
    """Configure the default flow with the exporter ``nemoflow run`` chose and instrument HTTP clients."""
    from nemoflow._flow import configure
    from nemoflow._instrument import instrument

    environment = os.environ if env is None else env
    configure(subscribers=[_subscriber_from_environment(environment)])
    instrument()
