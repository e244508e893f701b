"""The ``nemoflow`` command line.

``nemoflow decode FILE|-`` turns a provider payload (request, response, error body or a recorded SSE
stream) into the annotated object and prints it as JSON. User errors print one clear line (after the usage
synopsis when the command line itself is wrong) and exit 2, never a traceback.

``nemoflow run -- COMMAND`` exits with COMMAND's own status; when COMMAND cannot be started it follows the
shell and ``env(1)``: 127 when it is not found, 126 when it is found but cannot be executed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, NoReturn

import orjson

from nemoflow._codec import LlmCodec, PayloadKind, codecs, get_codec, resolve_codec
from nemoflow._errors import CodecError, ConfigurationError, NemoflowError
from nemoflow._model import as_dict
from nemoflow._runner import EXPORTER_CHOICES, http_url_problem
from nemoflow._sse import SSEDecoder

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_CANNOT_EXECUTE = 126
"""``nemoflow run``: the command exists but cannot be executed (the shell's convention)."""
EXIT_NOT_FOUND = 127
"""``nemoflow run``: the command was not found (the shell's convention)."""
EXIT_INTERRUPTED = 130
_KINDS: tuple[PayloadKind, ...] = ("request", "response", "stream_chunk", "error")
_EXAMPLES = {
    "openai-chat-request": "openai-chat-request.json",
    "openai-chat-response": "openai-chat-response.json",
    "openai-chat-stream": "openai-chat-stream.sse",
}
_DEFAULT_EXAMPLE = "openai-chat-stream"
_COMMANDS = ("decode", "codecs", "demo", "run")


class _UserError(Exception):
    """A problem with what the user gave us: reported in one line, exit code 2 unless ``code`` says."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


_KIND_WORDS = {
    "request": "a request",
    "response": "a response",
    "stream_chunk": "a stream chunk",
    "stream": "a stream",
    "error": "an error body",
}
_RUN_EPILOG = """\
exit status: COMMAND's own (128+N when a signal N ended it); 2 when these options are wrong;
127 when COMMAND is not found and 126 when it cannot be executed, as the shell does.
A program that cannot start its instrumentation (a bad NEMOFLOW_RUN_* value, a Python without
nemoflow) still runs, uninstrumented, after one warning line on standard error."""


def _a(word: str) -> str:
    """``word`` with its indefinite article (``an openai-chat``, ``a gemini-generate-content``)."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _http_status(text: str) -> int:
    """Parse ``--status``: an HTTP status code."""
    try:
        status = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an HTTP status code (100-599), got {text!r}") from None
    if not 100 <= status <= 599:
        raise argparse.ArgumentTypeError(f"expected an HTTP status code from 100 to 599, got {status}")
    return status


def _phoenix_url(text: str) -> str:
    """Parse ``--phoenix``: an absolute http(s) URL."""
    problem = http_url_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text.strip()


def _request_url(text: str) -> str:
    """Parse ``--url``: an absolute http(s) URL."""
    problem = http_url_problem(text, "https://api.openai.com/v1/chat/completions")
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text.strip()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemoflow",
        description="Codecs and middleware for LLM observability.",
        epilog=(
            "exit status: 0 on success; 2 on bad input, reported in one line on standard error. "
            "'nemoflow run' exits with the program's own status (see nemoflow run --help)."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = False  # a missing command is reported by main(), naming the commands
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
    decode.add_argument(
        "--url", type=_request_url, help="request URL, for routing facts such as an Azure deployment"
    )
    decode.add_argument(
        "--status",
        type=_http_status,
        default=400,
        help="HTTP status (100-599) of an error body (default 400)",
    )
    decode.add_argument("--compact", action="store_true", help="print one line instead of indented JSON")
    commands.add_parser(
        "codecs", help="list the registered codecs", description="List the registered codecs."
    )
    demo = commands.add_parser(
        "demo",
        help="run the official SDKs through nemoflow against a local replay and print the trace tree",
        description=(
            "Start a local replay of recorded OpenAI, Anthropic and Gemini transcripts, run an agent that "
            "uses the official SDKs through nemoflow (a policy caps max_tokens; a tool runs inside an AGENT "
            "scope), and print the trace tree with tokens, cost and latency. Offline; no API keys."
        ),
    )
    demo.add_argument(
        "--phoenix",
        metavar="URL",
        type=_phoenix_url,
        help="also export the spans to Arize Phoenix at URL (it must be running: checked first)",
    )
    demo.add_argument(
        "--project", default="nemoflow-demo", help="Phoenix project name (default nemoflow-demo)"
    )
    run = commands.add_parser(
        "run",
        help="run a program with every HTTP client it creates instrumented",
        description="Run COMMAND with nemoflow applied from its start (like opentelemetry-instrument).",
        usage="nemoflow run [--exporter NAME] [--phoenix URL] [--jsonl PATH] -- COMMAND [ARGS...]",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--exporter",
        choices=EXPORTER_CHOICES,
        help="where traces go (default: console; openinference with --phoenix, jsonl with --jsonl)",
    )
    run.add_argument(
        "--phoenix",
        metavar="URL",
        type=_phoenix_url,
        help="Arize Phoenix base URL (implies --exporter openinference)",
    )
    run.add_argument(
        "--jsonl",
        metavar="PATH",
        help="file for --exporter jsonl, appended to (implies it; default nemoflow-traces.jsonl)",
    )
    run.add_argument("--project", help="project name for Phoenix")
    run.add_argument("program", nargs=argparse.REMAINDER, help="the command to run, after --")
    for name, subparser in commands.choices.items():
        subparser.set_defaults(command_parser=subparser, command=name)
    return parser


def _run_exporter(args: argparse.Namespace) -> str:
    """The exporter ``nemoflow run`` uses, refusing options that would be silently ignored."""
    exporter: str | None = args.exporter
    if args.phoenix and exporter not in (None, "openinference"):
        raise _UserError(f"--phoenix sends to Phoenix with --exporter openinference, not {exporter!r}")
    if args.jsonl and exporter not in (None, "jsonl"):
        raise _UserError(f"--jsonl writes traces with --exporter jsonl, not {exporter!r}")
    if args.phoenix and args.jsonl:
        raise _UserError("--phoenix and --jsonl pick different exporters; give one of them")
    if exporter is None:
        exporter = "openinference" if args.phoenix else "jsonl" if args.jsonl else "console"
    return exporter


def _check_exporter_installed(exporter: str) -> None:
    from nemoflow._exporters import exporters

    name = "genai" if exporter == "otlp" else exporter
    installed = exporters()
    if name not in installed:
        raise _UserError(
            f"--exporter {exporter}: the {name!r} exporter is not installed "
            f"(installed: {', '.join(installed) or 'none'}); install nemoflow-exporter-{name}"
        )


def _check_jsonl_path(path: str) -> None:
    """Fail now, in one line, rather than in the program's start-up: the file must be appendable."""
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise _UserError(f"--jsonl {path}: cannot write traces there ({exc.strerror or exc})") from exc


def _run_program(args: argparse.Namespace) -> int:
    from nemoflow._runner import build_environment, launch

    command = list(args.program)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise _UserError("nothing to run: nemoflow run [options] -- COMMAND [ARGS...]")
    exporter = _run_exporter(args)
    _check_exporter_installed(exporter)
    if exporter == "jsonl":
        _check_jsonl_path(args.jsonl or "nemoflow-traces.jsonl")
    env = build_environment(
        os.environ, exporter=exporter, phoenix=args.phoenix, jsonl=args.jsonl, project=args.project
    )
    try:
        return launch(command, env)
    except FileNotFoundError as exc:
        raise _UserError(f"cannot run {command[0]!r}: command not found", EXIT_NOT_FOUND) from exc
    except PermissionError as exc:
        raise _UserError(
            f"cannot run {command[0]!r}: permission denied (not an executable file)", EXIT_CANNOT_EXECUTE
        ) from exc
    except OSError as exc:  # not an executable format, a directory, too many arguments...
        reason = exc.strerror or str(exc)
        raise _UserError(f"cannot run {command[0]!r}: {reason}", EXIT_CANNOT_EXECUTE) from exc


def _read_source(args: argparse.Namespace) -> tuple[bytes, str]:
    if args.example:
        name = _EXAMPLES[args.example]
        return resources.files("nemoflow").joinpath("examples", name).read_bytes(), f"example {args.example}"
    if args.file == "-":
        data, origin = sys.stdin.buffer.read(), "standard input"
    else:
        try:
            with open(args.file, "rb") as handle:
                data, origin = handle.read(), args.file
        except OSError as exc:
            raise _UserError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    if not data.strip():
        raise _UserError(f"{origin} is empty: expected a JSON payload or a server-sent event stream")
    return data, origin


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


def _parse_json(data: bytes, origin: str) -> Any:
    """The JSON document in ``data`` (a UTF-8 byte order mark is allowed), or one line saying why not."""
    text = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise _UserError(
                f"{origin} is not UTF-8 text (byte 0x{text[bad.start]:02x} at offset {bad.start}): "
                "expected a JSON payload or a server-sent event stream"
            ) from exc
        if text.lstrip()[:1] in (b"{", b"["):
            raise _UserError(f"{origin} is not valid JSON: {exc}") from exc
        raise _UserError(f"{origin} is neither JSON nor a server-sent event stream ({exc})") from exc


def _detect(
    payload: Mapping[str, Any], url: str | None, want: str | None = None
) -> tuple[LlmCodec, PayloadKind]:
    """The codec that recognizes ``payload`` (preferring one that sees it as ``want``) and what it is."""
    candidates: list[LlmCodec] = []
    if url:
        routed = resolve_codec("POST", url, payload)
        if routed is not None:
            candidates.append(routed)
    candidates.extend(codec for codec in codecs().values() if codec not in candidates)
    found: list[tuple[LlmCodec, PayloadKind]] = []
    for codec in candidates:
        kind = codec.sniff(payload)
        if kind is not None:
            if want is None or kind == want:
                return codec, kind
            found.append((codec, kind))
    if found:
        return found[0]  # not what --kind says: the caller reports the mismatch
    known = ", ".join(sorted(codecs())) or "none installed"
    raise _UserError(f"no codec recognizes this payload (known codecs: {known}); pass --codec NAME")


def _kind_mismatch(origin: str, codec: LlmCodec, sniffed: str, wanted: str) -> _UserError:
    return _UserError(
        f"{origin} looks like {_a(codec.name)} {_KIND_WORDS[sniffed].split(' ', 1)[1]}, "
        f"not {_KIND_WORDS[wanted]} (--kind {wanted}); leave out --kind to decode it as what it is"
    )


def _check_stream_input(data: bytes, origin: str, codec: LlmCodec | None) -> None:
    """``--kind stream`` on something that is not server-sent events: refuse what cannot be a stream."""
    if codec is None:
        raise _UserError(
            f"{origin} is not a server-sent event stream (no 'data:' lines); pass --codec NAME for a "
            "provider whose streams are not SSE (Gemini JSON arrays, Bedrock event streams)"
        )
    text = data.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:1] != b"{":
        return  # a JSON array (Gemini without alt=sse) or a binary event stream (Bedrock)
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    sniffed = codec.sniff(payload) if isinstance(payload, Mapping) else None
    if sniffed in ("request", "response", "error"):
        raise _kind_mismatch(origin, codec, sniffed, "stream")


def _codec_named(name: str) -> LlmCodec:
    try:
        return get_codec(name)
    except ConfigurationError as exc:
        raise _UserError(f"argument --codec: {exc}") from exc


def _decode(args: argparse.Namespace, data: bytes, origin: str) -> tuple[LlmCodec, str, Any]:
    try:
        return _decode_payload(args, data, origin)
    except CodecError as exc:
        raise _UserError(f"{origin}: {exc}") from exc


def _decode_payload(args: argparse.Namespace, data: bytes, origin: str) -> tuple[LlmCodec, str, Any]:
    codec: LlmCodec | None = _codec_named(args.codec) if args.codec else None
    kind: str | None = args.kind
    if kind == "stream" or (kind is None and _looks_like_sse(data)):
        if not _looks_like_sse(data):
            _check_stream_input(data, origin, codec)
        if codec is None:
            first = _first_stream_payload(data)
            if first is None:
                raise _UserError(
                    f"{origin}: the stream has no JSON event to detect the codec from; pass --codec"
                )
            codec, _ = _detect(first, args.url)
        return codec, "stream", codec.decode_stream([data], url=args.url)
    try:
        payload = _parse_json(data, origin)
    except _UserError:
        if kind == "error" and codec is not None:  # a plain-text error body
            return codec, "error", codec.decode_error(args.status, {}, data, url=args.url)
        raise
    if not isinstance(payload, Mapping):
        raise _UserError(f"{origin}: expected a JSON object, got {_json_type(payload)}")
    sniffed: PayloadKind | None
    if codec is None:
        codec, sniffed = _detect(payload, args.url, kind)
    else:
        sniffed = codec.sniff(payload)
    if kind is None:
        if sniffed is None:
            raise _UserError(f"{origin} does not look like {_a(codec.name)} payload; pass --kind")
        kind = sniffed
    elif sniffed is not None and sniffed != kind:
        raise _kind_mismatch(origin, codec, sniffed, kind)
    if kind == "request":
        return codec, kind, codec.decode(payload, url=args.url)
    if kind == "response":
        return codec, kind, codec.decode_response(payload, url=args.url)
    if kind == "stream_chunk":
        decoder = codec.stream_decoder(url=args.url)
        decoder.feed(data)
        return codec, kind, decoder.finish()
    return codec, "error", codec.decode_error(args.status, {}, payload, url=args.url)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _render(codec: LlmCodec, kind: str, annotated: Any, *, compact: bool, origin: str) -> bytes:
    """The JSON document printed for ``annotated``; nesting or numbers beyond orjson use the stdlib."""
    try:
        document = {"codec": codec.name, "kind": kind, "annotated": as_dict(annotated)}
        option = orjson.OPT_NON_STR_KEYS | (0 if compact else orjson.OPT_INDENT_2)
        try:
            return orjson.dumps(document, option=option)
        except orjson.JSONEncodeError:
            pass
        text = json.dumps(document, indent=None if compact else 2, ensure_ascii=False, default=str)
    except (RecursionError, ValueError) as exc:
        raise _UserError(f"{origin}: the decoded payload is nested too deeply to print as JSON") from exc
    return text.encode("utf-8", "surrogatepass")


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"nemoflow: error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad input; ``run``: see its help)."""
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.error(f"a command is required: one of {', '.join(_COMMANDS)} (see nemoflow --help)")
    if extra:  # reported by the command's own parser, whose usage shows what it takes
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
        output = _render(codec, kind, annotated, compact=args.compact, origin=origin)
    except _UserError as exc:
        _fail(str(exc), exc.code)
    except NemoflowError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        print("nemoflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    sys.stdout.buffer.write(output + b"\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
