"""``nemoflow demo``: the official SDKs, through nemoflow, against a local replay of recorded transcripts.

A small loopback HTTP server (standard library only) answers like OpenAI, Anthropic and Gemini do, from
the transcripts bundled in ``nemoflow/examples/demo/``. The demo runs an agent inside an AGENT scope: an
OpenAI call that asks for a tool, the tool run, a streamed OpenAI answer, an Anthropic summary (with prompt
caching) and a Gemini translation, with a sample policy capping ``max_tokens``. It prints the trace tree;
``--phoenix URL`` also exports to Arize Phoenix. No network, no API keys.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, TextIO
from urllib.parse import urlsplit

__all__ = ["DemoResult", "ReplayServer", "run_demo"]

_PHOENIX_CONNECT_TIMEOUT = 3.0

_MISSING_SDKS = (
    "nemoflow demo drives the official SDKs; install them with: pip install 'nemoflow[demo]' "
    "(openai, anthropic, google-genai)"
)


def _transcript(name: str) -> Any:
    return json.loads(resources.files("nemoflow").joinpath("examples", "demo", name).read_text("utf-8"))


def _check_phoenix(url: str) -> str:
    """The OTLP traces endpoint under Phoenix's base ``url``, once a TCP connection to it succeeded.

    Raises:
        ConfigurationError: ``url`` is not an http(s) URL, or nothing accepts connections there.
    """
    from nemoflow._errors import ConfigurationError
    from nemoflow._runner import http_url_problem

    problem = http_url_problem(url)
    if problem is not None:
        raise ConfigurationError(f"--phoenix: {problem}")
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=_PHOENIX_CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = (
            "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc) or type(exc).__name__
        )
        raise ConfigurationError(
            f"cannot reach Phoenix at {url} ({reason}); start it (phoenix serve) or leave out --phoenix"
        ) from exc
    base = url.strip().rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


class _ReplayHandler(BaseHTTPRequestHandler):
    server: ReplayServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        """Keep the demo's output clean."""

    def do_POST(self) -> None:
        """Answer from the transcripts, the way the real API would for this request."""
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, body))
        path = self.path.split("?", 1)[0]
        if path.endswith("/chat/completions"):
            self._openai(body)
        elif path.endswith("/messages"):
            self._json(200, _transcript("anthropic-message.json"))
        elif ":generateContent" in path:
            self._json(200, _transcript("gemini-response.json"))
        else:
            self._json(404, {"error": {"message": f"the demo replay has no transcript for {path}"}})

    def _openai(self, body: dict[str, Any]) -> None:
        has_tool_result = any(m.get("role") == "tool" for m in body.get("messages", []))
        if not has_tool_result:
            self._json(200, _transcript("openai-tool-call.json"))
            return
        stream = _transcript("openai-final-stream.json")
        events = list(stream["chunks"])
        # Like OpenAI: the usage-only chunk is sent only when the request asks for it.
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(stream["usage_chunk"])
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for event in events:
            self.wfile.write(b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ReplayServer(ThreadingHTTPServer):
    """The loopback upstream: replays the bundled transcripts and keeps the requests it received."""

    daemon_threads = True

    def __init__(self) -> None:
        """Bind to a free port on 127.0.0.1."""
        super().__init__(("127.0.0.1", 0), _ReplayHandler)
        self.requests: list[tuple[str, Any]] = []

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @contextmanager
    def running(self) -> Iterator[ReplayServer]:
        """Serve on a background thread for the duration of the block."""
        thread = threading.Thread(target=self.serve_forever, name="nemoflow-demo-upstream", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.shutdown()
            self.server_close()
            thread.join(5)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo's agent produced (for tests and for printing)."""

    answer: str
    summary: str
    translation: str
    requests: list[tuple[str, Any]]


def run_demo(
    *, out: TextIO | None = None, phoenix: str | None = None, project: str = "nemoflow-demo"
) -> DemoResult:
    """Run the demo agent and print its trace tree to ``out`` (default: standard output).

    Raises:
        ConfigurationError: The official SDKs are not installed, or ``phoenix`` is not an http(s) URL
            that accepts connections (checked before the demo starts).
    """
    from nemoflow._errors import ConfigurationError
    from nemoflow._flow import Flow
    from nemoflow._hooks import cap_max_tokens
    from nemoflow._local import ConsoleExporter
    from nemoflow._records import Subscriber

    endpoint = _check_phoenix(phoenix) if phoenix else None  # before the slow SDK imports
    try:
        import anthropic
        import openai
        from google import genai
        from google.genai import types as genai_types
    except ImportError as exc:
        raise ConfigurationError(_MISSING_SDKS) from exc
    stream = out if out is not None else sys.stdout
    subscribers: list[Subscriber] = [ConsoleExporter(stream)]
    if endpoint is not None:
        from nemoflow._exporters import get_exporter

        exporter_class = get_exporter("openinference")
        subscribers.append(exporter_class(endpoint=endpoint, project_name=project))  # type: ignore[call-arg]
    flow = Flow(policies=[cap_max_tokens(256)], subscribers=subscribers)
    with ReplayServer().running() as upstream:
        base = upstream.base_url
        print(f"nemoflow demo: the upstream is a LOCAL REPLAY of recorded transcripts at {base}", file=stream)
        print("(no network, no API keys; policy: cap_max_tokens(256))\n", file=stream)
        oai = openai.OpenAI(
            base_url=f"{base}/v1", api_key="demo", http_client=flow.httpx2_client(), max_retries=0
        )
        claude = anthropic.Anthropic(
            base_url=base, api_key="demo", http_client=flow.httpx2_client(), max_retries=0
        )
        gemini = genai.Client(
            api_key="demo",
            http_options=genai_types.HttpOptions(base_url=base, httpx_client=flow.httpx2_client()),
        )
        tools: Any = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ]
        messages: list[Any] = [
            {"role": "system", "content": "You are a travel assistant."},
            {"role": "user", "content": "I'm in Lyon tomorrow. Do I need an umbrella?"},
        ]
        with flow.scope("trip-planner", kind="AGENT", session_id="demo-session", user_id="demo-user"):
            first = oai.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=tools, max_tokens=1024
            )
            call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
            arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
            with flow.tool("get_weather", arguments=arguments, tool_call_id=call.id) as run:
                run.result = {"city": arguments.get("city"), "forecast": "rain", "temp_c": 14}
            messages += [
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(run.result)},
            ]
            pieces = []
            for chunk in oai.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
            answer = "".join(pieces)
            summary_message = claude.messages.create(
                model="claude-haiku-4-5",
                max_tokens=512,
                system=[
                    {
                        "type": "text",
                        "text": "Summarize travel advice.",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
                messages=[{"role": "user", "content": answer}],
            )
            summary = "".join(block.text for block in summary_message.content if block.type == "text")
            translated = gemini.models.generate_content(
                model="gemini-2.5-flash", contents=f"Translate to French: {summary}"
            )
            translation = translated.text or ""
        flow.flush(10)  # the trace tree prints when the agent scope ends
        requests = list(upstream.requests)
    flow.shutdown()
    print(f"\nanswer:      {answer}\nsummary:     {summary}\ntranslation: {translation}", file=stream)
    if phoenix:
        print(f"\nspans exported to Phoenix at {phoenix} (project {project!r})", file=stream)
    return DemoResult(answer=answer, summary=summary, translation=translation, requests=requests)
