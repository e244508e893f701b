"""Outside checks against the official google-genai SDK (no network: a mock httpx2 transport answers).

* Every fixture payload is valid for the SDK's own pydantic types, which forbid unknown fields: responses
  and stream chunks as ``GenerateContentResponse``, request pieces as ``Content`` / ``Tool`` /
  ``GenerationConfig`` / ``ToolConfig`` / ``SafetySetting`` (``x_`` test keys removed), error bodies as
  the SDK's ``APIError`` reads them. An unrealistic fixture fails here.
* Requests the SDK really builds (``generate_content`` and ``generate_content_stream``, Gemini API and
  Vertex AI) decode to the facts that were asked for and round-trip losslessly; the SDK's parse of the
  replies agrees with the codec's; bodies the codec edits are still valid for the SDK's types.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import google.oauth2.credentials
import httpx2
import pytest
from google import genai
from google.genai import errors, types

from nemoflow import Message, ToolChoice, ToolDefinition
from nemoflow_codec_gemini import GeminiGenerateContentCodec
from tests.test_roundtrip import assert_json_equal, rebuilt

CODEC = GeminiGenerateContentCodec()
FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "fixtures" / "gemini-generate-content"


def _fixtures(kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(FIXTURES.glob("*.json")):
        fixture = json.loads(path.read_text(encoding="utf-8"))
        if fixture["kind"] == kind:
            found.append((path.stem, fixture))
    return found


def strip_test_keys(value: Any) -> Any:
    """``value`` without the ``x_`` keys fixtures add to prove unknown keys survive."""
    if isinstance(value, dict):
        return {key: strip_test_keys(item) for key, item in value.items() if not key.startswith("x_")}
    if isinstance(value, list):
        return [strip_test_keys(item) for item in value]
    return value


def sse_chunks(text: str) -> Iterator[Any]:
    """The JSON chunks of a stream fixture: SSE ``data:`` events or the elements of a JSON array."""
    if text.lstrip().startswith("["):
        yield from json.loads(text)
        return
    for line in text.splitlines():
        if line.startswith("data:"):
            yield json.loads(line[5:])


_PIECES: dict[str, Any] = {
    "systemInstruction": types.Content,
    "generationConfig": types.GenerationConfig,
    "toolConfig": types.ToolConfig,
}


def assert_valid_request(body: dict[str, Any]) -> None:
    """Validate every piece of a request body with the SDK's types (JSON mode: base64 bytes checked)."""
    body = strip_test_keys(body)
    for content in body.get("contents", []):
        types.Content.model_validate_json(json.dumps(content))
    for tool in body.get("tools", []):
        types.Tool.model_validate_json(json.dumps(tool))
    for camel, model in _PIECES.items():
        for key in (camel, _snake(camel)):
            if key in body:
                model.model_validate_json(json.dumps(body[key]))
    for setting in body.get("safetySettings", body.get("safety_settings", [])):
        types.SafetySetting.model_validate_json(json.dumps(setting))
    known = {"contents", "tools", "cachedContent", "labels", "safetySettings"}
    known |= set(_PIECES) | {_snake(name) for name in [*_PIECES, "cachedContent", "safetySettings"]}
    assert set(body) <= known, f"request keys the API does not know: {sorted(set(body) - known)}"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


# ----------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize(
    ("name", "fixture"), _fixtures("response"), ids=lambda v: v if isinstance(v, str) else ""
)
def test_response_fixture_is_a_valid_sdk_response(name: str, fixture: dict[str, Any]) -> None:
    parsed = types.GenerateContentResponse.model_validate_json(json.dumps(fixture["input"]))
    decoded = CODEC.decode_response(fixture["input"], url=fixture.get("url"))
    assert [(c.name, c.args) for c in parsed.function_calls or []] == [
        (call.name, call.arguments) for call in decoded.tool_calls
    ]
    assert (parsed.response_id, len(parsed.candidates or [])) == (decoded.id, len(decoded.choices))


@pytest.mark.parametrize(
    ("name", "fixture"), _fixtures("stream"), ids=lambda v: v if isinstance(v, str) else ""
)
def test_stream_fixture_chunks_are_valid_sdk_responses(name: str, fixture: dict[str, Any]) -> None:
    chunks = list(sse_chunks(fixture["sse"]))
    assert chunks
    for chunk in chunks:
        if "error" in chunk:
            assert errors.APIError(chunk["error"]["code"], chunk).status == chunk["error"]["status"]
        else:
            types.GenerateContentResponse.model_validate_json(json.dumps(chunk))


@pytest.mark.parametrize(
    ("name", "fixture"), _fixtures("request"), ids=lambda v: v if isinstance(v, str) else ""
)
def test_request_fixture_is_valid_for_the_sdk_types(name: str, fixture: dict[str, Any]) -> None:
    assert_valid_request(fixture["input"])


@pytest.mark.parametrize(
    ("name", "fixture"), _fixtures("error"), ids=lambda v: v if isinstance(v, str) else ""
)
def test_error_fixture_reads_as_the_sdk_reads_it(name: str, fixture: dict[str, Any]) -> None:
    body = fixture["body"]
    decoded = CODEC.decode_error(fixture["status"], fixture.get("headers") or {}, json.dumps(body).encode())
    if isinstance(body, str):
        assert decoded.type is None
        return
    sdk = errors.APIError(fixture["status"], body)
    assert (decoded.type, decoded.message) == (sdk.status, sdk.message)


# ----------------------------------------------------------------------------------------- the real SDK

Handler = Callable[[httpx2.Request], httpx2.Response]


def client(handler: Handler, *, vertex: bool = False) -> genai.Client:
    options = types.HttpOptions(httpx_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    if vertex:
        token = google.oauth2.credentials.Credentials(token="test-token")  # type: ignore[no-untyped-call]
        return genai.Client(
            vertexai=True,
            project="my-project",
            location="us-central1",
            credentials=token,
            http_options=options,
        )
    return genai.Client(api_key="test-key", http_options=options)


def fixture_input(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


class Recorder:
    """A mock transport handler that keeps each request and answers with a canned body."""

    def __init__(self, body: bytes, content_type: str = "application/json") -> None:
        self.body = body
        self.content_type = content_type
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append((str(request.url), json.loads(request.content)))
        return httpx2.Response(200, content=self.body, headers={"content-type": self.content_type})


WEATHER = types.FunctionDeclaration(
    name="get_current_weather",
    description="Current weather",
    parameters_json_schema={"type": "object", "properties": {"location": {"type": "string"}}},
)


def rich_config() -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        system_instruction="Be brief.",
        temperature=0.4,
        top_p=0.9,
        top_k=20,
        max_output_tokens=300,
        stop_sequences=["END"],
        seed=7,
        candidate_count=1,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW, include_thoughts=True),
        response_mime_type="application/json",
        response_json_schema={"type": "object"},
        tools=[types.Tool(function_declarations=[WEATHER]), types.Tool(google_search=types.GoogleSearch())],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_current_weather"]
            )
        ),
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH,
            )
        ],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


def history() -> list[types.Content]:
    return [
        types.Content(
            role="user",
            parts=[
                types.Part.from_text(text="Weather in Boston? See the photo."),
                types.Part.from_bytes(data=b"\x89PNG\r\n", mime_type="image/png"),
                types.Part.from_uri(file_uri="gs://bucket/report.pdf", mime_type="application/pdf"),
            ],
        ),
        types.Content(
            role="model",
            parts=[
                types.Part(text="Need the weather tool.", thought=True, thought_signature=b"sig-1"),
                types.Part(
                    function_call=types.FunctionCall(
                        id="c1", name="get_current_weather", args={"location": "Boston"}
                    ),
                    thought_signature=b"sig-2",
                ),
            ],
        ),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_current_weather", response={"output": "22C"})],
        ),
    ]


def kinds(message: Message) -> list[str]:
    assert not isinstance(message.content, str)
    return [part.kind for part in message.content or ()]


def test_sdk_request_decodes_to_what_was_asked_and_round_trips() -> None:
    reply = fixture_input("response-function-call-stop")["input"]
    recorder = Recorder(json.dumps(reply).encode())
    response = client(recorder).models.generate_content(
        model="gemini-2.5-flash", contents=history(), config=rich_config()
    )
    ((url, body),) = recorder.requests
    assert CODEC.match_route("POST", urlsplit(url).path)
    decoded = CODEC.decode(body, url=url)
    assert (decoded.model, decoded.stream, decoded.system) == ("gemini-2.5-flash", False, "Be brief.")
    params = decoded.params
    assert (params.temperature, params.top_p, params.top_k, params.max_tokens, params.stop) == (
        0.4,
        0.9,
        20,
        300,
        ("END",),
    )
    assert (params.seed, params.n, params.presence_penalty, params.frequency_penalty) == (7, 1, 0.1, 0.2)
    assert params.reasoning_effort == "low"
    assert params.response_format is not None and params.response_format["responseJsonSchema"] == {
        "type": "object"
    }
    assert sorted((tool.type, tool.name) for tool in decoded.tools) == [
        ("function", "get_current_weather"),
        ("googleSearch", "googleSearch"),
    ]
    assert decoded.tool_choice == ToolChoice(mode="tool", name="get_current_weather")
    user, model_turn, answer = decoded.messages
    assert kinds(user) == ["text", "image", "file"]
    assert (model_turn.role, kinds(model_turn)) == ("assistant", ["reasoning"])
    call = model_turn.tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("c1", "get_current_weather", {"location": "Boston"})
    assert "thoughtSignature" in call.extra or "thought_signature" in call.extra
    assert kinds(answer) == ["tool_result"]
    assert "safetySettings" in decoded.extra or "safety_settings" in decoded.extra

    assert CODEC.encode(decoded, body, url=url) is body
    assert_json_equal(CODEC.encode(rebuilt(decoded), body, url=url), body)

    ours = CODEC.decode_response(reply, url=url)
    assert [(c.name, c.args) for c in response.function_calls or []] == [
        (t.name, t.arguments) for t in ours.tool_calls
    ]


def test_sdk_stream_route_and_reply_agree_with_the_codec() -> None:
    stream = fixture_input("stream-sse-text")
    recorder = Recorder(stream["sse"].encode(), "text/event-stream")
    sdk_chunks = list(
        client(recorder).models.generate_content_stream(
            model="gemini-2.5-flash", contents="Write a story about a magic backpack."
        )
    )
    ((url, body),) = recorder.requests
    assert ":streamGenerateContent" in url and "alt=sse" in url
    decoded = CODEC.decode(body, url=url)
    assert (decoded.model, decoded.stream) == ("gemini-2.5-flash", True)
    assert "stream" not in body and CODEC.encode(decoded, body, url=url) is body
    ours = CODEC.decode_stream([stream["sse"].encode()], url=url)
    assert ours.text == "".join(chunk.text or "" for chunk in sdk_chunks)
    last_usage = sdk_chunks[-1].usage_metadata
    assert last_usage is not None and ours.usage.total_tokens == last_usage.total_token_count


def test_sdk_vertex_request_names_the_model_in_the_publisher_path() -> None:
    reply = fixture_input("response-vertex-create-time")["input"]
    recorder = Recorder(json.dumps(reply).encode())
    response = client(recorder, vertex=True).models.generate_content(
        model="gemini-2.5-flash",
        contents="Why is the sky blue?",
        config=types.GenerateContentConfig(max_output_tokens=50),
    )
    ((url, body),) = recorder.requests
    assert (
        "/projects/my-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
        in url
    )
    decoded = CODEC.decode(body, url=url)
    assert (decoded.model, decoded.params.max_tokens) == ("gemini-2.5-flash", 50)
    ours = CODEC.decode_response(reply, url=url)
    assert ours.text == response.text
    assert response.create_time is not None and ours.created == int(response.create_time.timestamp())


def test_bodies_the_codec_edits_stay_valid_for_the_sdk() -> None:
    recorder = Recorder(json.dumps(fixture_input("response-text-stop")["input"]).encode())
    client(recorder).models.generate_content(
        model="gemini-2.5-flash", contents=history(), config=rich_config()
    )
    ((url, body),) = recorder.requests
    decoded = CODEC.decode(body, url=url)
    edited = replace(
        decoded,
        system="Answer in French.",
        params=replace(
            decoded.params,
            max_tokens=64,
            reasoning_effort="high",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "w", "schema": {"type": "object"}},
            },
        ),
        tools=(
            *decoded.tools,
            ToolDefinition(name="get_time", parameters={"type": "object"}),
            ToolDefinition(name="urlContext", type="urlContext"),
        ),
        tool_choice=ToolChoice(mode="required"),
    )
    out = dict(CODEC.encode(edited, body, url=url))
    assert_valid_request(out)
    again = CODEC.decode(out, url=url)
    assert (again.system, again.params.max_tokens, again.params.reasoning_effort) == (
        "Answer in French.",
        64,
        "high",
    )
    assert again.tool_choice is not None and again.tool_choice.mode == "required"
    assert {tool.name for tool in again.tools} == {
        "get_current_weather",
        "googleSearch",
        "get_time",
        "urlContext",
    }
    assert out["contents"] is body["contents"]
