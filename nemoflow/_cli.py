"""The ``nemoflow`` command line.

``nemoflow decode FILE|-`` turns a provider payload (request, response, error body or a recorded SSE
stream) into the annotated object and prints it as JSON. User errors print one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, NoReturn

import orjson

from nemoflow._codec import LlmCodec, PayloadKind, codecs, get_codec, resolve_codec
from nemoflow._errors import NemoflowError
from nemoflow._model import as_dict
from nemoflow._sse import SSEDecoder

__all__ = ["main"]

EXIT_USAGE = 2
_KINDS: tuple[PayloadKind, ...] = ("request", "response", "stream_chunk", "error")
_EXAMPLES = {
    "openai-chat-request": "openai-chat-request.json",
    "openai-chat-response": "openai-chat-response.json",
    "openai-chat-stream": "openai-chat-stream.sse",
}
_DEFAULT_EXAMPLE = "openai-chat-stream"


class _UserError(Exception):
    """A problem with what the user gave us: reported in one line, exit code 2."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemoflow",
        description="Codecs and middleware for LLM observability.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    decode = commands.add_parser(
        "decode",
        help="decode a provider request, response, error body or SSE stream and print it as JSON",
        description=(
            "Decode a provider payload into nemoflow's annotated model and print it as JSON. "
            "The codec and the payload kind are detected unless given."
        ),
    )
    source = decode.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="payload file, or - for standard input")
    source.add_argument(
        "--example",
        nargs="?",
        const=_DEFAULT_EXAMPLE,
        choices=sorted(_EXAMPLES),
        help=f"decode a bundled example instead of a file (default: {_DEFAULT_EXAMPLE})",
    )
    decode.add_argument("--codec", help="codec name (see --list-codecs); detected when omitted")
    decode.add_argument(
        "--kind",
        choices=("request", "response", "stream", "error"),
        help="what the payload is; detected when omitted",
    )
    decode.add_argument("--url", help="request URL, for routing facts such as an Azure deployment")
    decode.add_argument("--status", type=int, default=400, help="HTTP status for --kind error (default 400)")
    decode.add_argument("--compact", action="store_true", help="print one line instead of indented JSON")
    commands.add_parser("codecs", help="list the registered codecs")
    demo = commands.add_parser(
        "demo",
        help="run the official SDKs through nemoflow against a local replay and print the trace tree",
        description=(
            "Start a local replay of recorded OpenAI, Anthropic and Gemini transcripts, run an agent that "
            "uses the official SDKs through nemoflow (a policy caps max_tokens; a tool runs inside an AGENT "
            "scope), and print the trace tree with tokens, cost and latency. Offline; no API keys."
        ),
    )
    demo.add_argument("--phoenix", metavar="URL", help="also export the spans to Arize Phoenix at URL")
    demo.add_argument(
        "--project", default="nemoflow-demo", help="Phoenix project name (default nemoflow-demo)"
    )
    run = commands.add_parser(
        "run",
        help="run a program with every HTTP client it creates instrumented",
        description="Run COMMAND with nemoflow applied from its start (like opentelemetry-instrument).",
        usage="nemoflow run [--exporter NAME] [--phoenix URL] [--jsonl PATH] -- COMMAND [ARGS...]",
    )
    run.add_argument(
        "--exporter",
        choices=("console", "jsonl", "openinference", "genai", "otlp"),
        help="where traces go (default: console, or openinference when --phoenix is given)",
    )
    run.add_argument(
        "--phoenix", metavar="URL", help="Arize Phoenix base URL (implies --exporter openinference)"
    )
    run.add_argument(
        "--jsonl", metavar="PATH", help="file for --exporter jsonl (default nemoflow-traces.jsonl)"
    )
    run.add_argument("--project", help="project name for Phoenix")
    run.add_argument("program", nargs=argparse.REMAINDER, help="the command to run, after --")
    return parser


def _run_program(args: argparse.Namespace) -> int:
    from nemoflow._runner import build_environment, launch

    command = list(args.program)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise _UserError("nothing to run: nemoflow run [options] -- COMMAND [ARGS...]")
    exporter = args.exporter or ("openinference" if args.phoenix else "console")
    env = build_environment(
        os.environ, exporter=exporter, phoenix=args.phoenix, jsonl=args.jsonl, project=args.project
    )
    try:
        return launch(command, env)
    except FileNotFoundError as exc:
        raise _UserError(f"cannot run {command[0]!r}: command not found") from exc
    except PermissionError as exc:
        raise _UserError(f"cannot run {command[0]!r}: permission denied") from exc


def _read_source(args: argparse.Namespace) -> tuple[bytes, str]:
    if args.example:
        name = _EXAMPLES[args.example]
        return resources.files("nemoflow").joinpath("examples", name).read_bytes(), f"example {args.example}"
    if args.file == "-":
        return sys.stdin.buffer.read(), "standard input"
    try:
        with open(args.file, "rb") as handle:
            return handle.read(), args.file
    except OSError as exc:
        raise _UserError(f"cannot read {args.file}: {exc.strerror or exc}") from exc


def _looks_like_sse(text: bytes) -> bool:
    head = text.lstrip(b"\xef\xbb\xbf \t\r\n")[:16]
    return head.startswith((b"data:", b"event:", b"id:", b":", b"retry:"))


def _first_stream_payload(data: bytes) -> Mapping[str, Any] | None:
    decoder = SSEDecoder()
    for event in [*decoder.feed(data), *decoder.finish()]:
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(payload, Mapping):
            return payload
    return None


def _detect(payload: Mapping[str, Any], url: str | None) -> tuple[LlmCodec, PayloadKind]:
    candidates: list[LlmCodec] = []
    if url:
        routed = resolve_codec("POST", url, payload)
        if routed is not None:
            candidates.append(routed)
    candidates.extend(codec for codec in codecs().values() if codec not in candidates)
    for codec in candidates:
        kind = codec.sniff(payload)
        if kind is not None:
            return codec, kind
    known = ", ".join(sorted(codecs())) or "none installed"
    raise _UserError(f"no codec recognizes this payload (known codecs: {known}); pass --codec NAME")


def _decode(args: argparse.Namespace, data: bytes, origin: str) -> tuple[LlmCodec, str, Any]:
    codec: LlmCodec | None = get_codec(args.codec) if args.codec else None
    kind: str | None = args.kind
    if kind == "stream" or (kind is None and _looks_like_sse(data)):
        if codec is None:
            first = _first_stream_payload(data)
            if first is None:
                raise _UserError(
                    f"{origin}: the stream has no JSON event to detect the codec from; pass --codec"
                )
            codec, _ = _detect(first, args.url)
        return codec, "stream", codec.decode_stream([data], url=args.url)
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if kind == "error" and codec is not None:
            return codec, "error", codec.decode_error(args.status, {}, data, url=args.url)
        raise _UserError(f"{origin} is neither JSON nor a server-sent event stream ({exc})") from exc
    if not isinstance(payload, Mapping):
        raise _UserError(f"{origin}: expected a JSON object, got {type(payload).__name__}")
    if codec is None:
        codec, sniffed = _detect(payload, args.url)
        kind = kind or sniffed
    elif kind is None:
        kind = codec.sniff(payload)
        if kind is None:
            raise _UserError(f"{origin} does not look like a {codec.name} payload; pass --kind")
    if kind == "request":
        return codec, kind, codec.decode(payload, url=args.url)
    if kind == "response":
        return codec, kind, codec.decode_response(payload, url=args.url)
    if kind == "stream_chunk":
        decoder = codec.stream_decoder(url=args.url)
        decoder.feed(data)
        return codec, kind, decoder.finish()
    return codec, "error", codec.decode_error(args.status, {}, payload, url=args.url)


def _fail(message: str) -> NoReturn:
    print(f"nemoflow: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad input)."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run_program(args)
        if args.command == "demo":
            from nemoflow._demo import run_demo

            run_demo(phoenix=args.phoenix, project=args.project)
            return 0
        if args.command == "codecs":
            for name, codec in sorted(codecs().items()):
                print(f"{name}\t{codec.provider}\t{type(codec).__module__}.{type(codec).__qualname__}")
            return 0
        data, origin = _read_source(args)
        codec, kind, annotated = _decode(args, data, origin)
    except _UserError as exc:
        _fail(str(exc))
    except NemoflowError as exc:
        _fail(str(exc))
    option = 0 if args.compact else orjson.OPT_INDENT_2
    document = {"codec": codec.name, "kind": kind, "annotated": as_dict(annotated)}
    sys.stdout.buffer.write(orjson.dumps(document, option=option | orjson.OPT_NON_STR_KEYS) + b"\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
