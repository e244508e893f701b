"""Policies that move a request whose model lives in the URL (Gemini, Bedrock, Anthropic on Bedrock/Vertex).

The body of such a request does not name the model, so an edit of ``model`` (or ``stream``) is carried out
by sending to another URL: the codec's ``url_for`` says which, the runtime puts it on the handle, and every
adapter sends there. A request signed with AWS SigV4 cannot change at all and goes out as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import orjson
import pytest
import requests

import nemoflow
from nemoflow import Flow, PolicyError, get_codec
from tests.support import Collector
from tests.upstream import Canned, UpstreamServer

GEMINI_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
GEMINI_REPLY = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "hello"}]}, "finishReason": "STOP", "index": 0}
    ],
    "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3},
    "modelVersion": "gemini-2.5-pro",
}
TO_PRO = nemoflow.route_model({"gemini-2.5-flash": "gemini-2.5-pro"})
ADAPTERS = ("httpx2", "httpx", "requests", "aiohttp")


def post(adapter: str, flow: Flow, url: str, body: Any, headers: dict[str, str] | None = None) -> bytes:
    data = orjson.dumps(body)
    sent = {"content-type": "application/json", **(headers or {})}
    if adapter in ("httpx2", "httpx"):
        mod: Any = httpx2 if adapter == "httpx2" else httpx
        with mod.Client(transport=flow.transport(mod.HTTPTransport())) as client:
            content: bytes = client.post(url, content=data, headers=sent).content
            return content
    if adapter == "requests":
        with flow.requests_session() as session:
            answer: bytes = session.post(url, data=data, headers=sent, timeout=10).content
            return answer

    async def main() -> bytes:
        async with flow.aiohttp_session() as session:
            async with session.post(url, data=data, headers=sent) as reply:
                read: bytes = await reply.read()
                return read

    return asyncio.run(main())


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as running:
        yield running


@pytest.fixture
def upstream(server: UpstreamServer) -> Iterator[UpstreamServer]:
    server.app.reset()
    yield server
    server.app.reset()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_model_routing_policy_moves_a_gemini_request_to_the_new_models_url(
    adapter: str, upstream: UpstreamServer
) -> None:
    collector = Collector()
    flow = Flow(subscribers=[collector], policies=[TO_PRO])
    upstream.app.enqueue(Canned.json(GEMINI_REPLY))
    try:
        reply = post(adapter, flow, upstream.url(GEMINI_PATH) + "?key=secret-key-123", GEMINI_BODY)
        assert flow.flush(5)
    finally:
        flow.shutdown()
    assert orjson.loads(reply) == GEMINI_REPLY
    [received] = upstream.app.received
    assert received.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert received.query == "key=secret-key-123"  # the rest of the URL is kept
    assert received.json() == GEMINI_BODY  # the model is not in the body: the body goes out as it was
    [call] = collector.calls
    assert call.request is not None and call.request.model == "gemini-2.5-pro"
    assert call.url.endswith("/models/gemini-2.5-pro:generateContent")  # the URL it was sent to
    assert "secret-key-123" not in call.url
    assert call.policies_applied == ("route_model",) and dict(flow.stats().errors) == {}


@pytest.mark.parametrize(
    ("url", "body", "sent_to"),
    [
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-lite-v1%3A0/converse",
            {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-pro-v1%3A0/converse",
        ),
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 9,
                "messages": [{"role": "user", "content": "x"}],
            },
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke",
        ),
        (
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/"
            "models/claude-haiku-4-5@20251001:streamRawPredict",
            {"anthropic_version": "vertex-2023-10-16", "max_tokens": 9, "stream": True, "messages": []},
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/"
            "models/claude-sonnet-4-5@20250929:streamRawPredict",
        ),
    ],
    ids=["bedrock-converse", "anthropic-on-bedrock", "anthropic-on-vertex"],
)
def test_every_codec_with_the_model_in_the_url_routes_a_model_edit(
    url: str, body: dict[str, Any], sent_to: str
) -> None:
    policy = nemoflow.route_model(
        {
            "us.amazon.nova-lite-v1:0": "us.amazon.nova-pro-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0": "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "claude-haiku-4-5@20251001": "claude-sonnet-4-5@20250929",
        }
    )
    flow = Flow(policies=[policy])
    try:
        handle = flow.start_call("POST", url, {"authorization": "Bearer token-123456"}, orjson.dumps(body))
        assert handle is not None
        assert handle.url_changed and handle.url == sent_to
        assert not handle.body_changed and orjson.loads(handle.body) == body
        assert handle.codec.decode(body, url=handle.url).model == handle.request.model
        handle.finish()
        assert dict(flow.stats().errors) == {}
    finally:
        flow.shutdown()


def test_without_an_edit_nothing_moves() -> None:
    flow = Flow(policies=[nemoflow.route_model({"other-model": "gemini-2.5-pro"})])
    try:
        handle = flow.start_call(
            "POST", "https://generativelanguage.googleapis.com" + GEMINI_PATH, {}, orjson.dumps(GEMINI_BODY)
        )
        assert handle is not None and not handle.url_changed and handle.url.endswith(GEMINI_PATH)
        handle.finish()
    finally:
        flow.shutdown()


SIGNED = {
    "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261121/us-east-1/bedrock/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0123456789abcdef",
    "x-amz-date": "20261121T120000Z",
}
CONVERSE_URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-lite-v1%3A0/converse"
CONVERSE_BODY = {
    "messages": [{"role": "user", "content": [{"text": "hi"}]}],
    "inferenceConfig": {"maxTokens": 900},
}


@pytest.mark.parametrize(
    "policy",
    [
        nemoflow.route_model({"us.amazon.nova-lite-v1:0": "us.amazon.nova-pro-v1:0"}),
        nemoflow.cap_max_tokens(100),
    ],
    ids=["url-edit", "body-edit"],
)
def test_a_sigv4_signed_request_goes_out_as_it_was_and_says_why(policy: Any) -> None:
    collector = Collector()
    flow = Flow(subscribers=[collector], policies=[policy])
    raw = orjson.dumps(CONVERSE_BODY)
    try:
        handle = flow.start_call("POST", CONVERSE_URL, SIGNED, raw)
        assert handle is not None
        assert handle.body is raw and not handle.body_changed and not handle.url_changed
        assert handle.url == CONVERSE_URL and handle.headers_update == {}
        assert handle.request.params.max_tokens == 900 and handle.policies_applied == ()
        assert flow.stats().errors == {"policy": 1}
        handle.finish()
        assert flow.flush(5)
        [call] = collector.calls
        assert call.request is not None and call.request.model == "us.amazon.nova-lite-v1:0"
    finally:
        flow.shutdown()
    strict = Flow(policies=[policy], fail_open=False)
    try:
        with pytest.raises(PolicyError, match="signed"):
            strict.start_call("POST", CONVERSE_URL, SIGNED, raw)
    finally:
        strict.shutdown()


@pytest.mark.parametrize(
    ("codec", "url", "options", "expected"),
    [
        (
            "gemini-generate-content",
            "https://h/v1beta/models/gemini-2.5-flash:generateContent?key=k",
            {"stream": True},
            "https://h/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=k&alt=sse",
        ),
        (
            "bedrock-converse",
            "https://h/model/m1/converse-stream?x=1",
            {"model": "arn:aws:bedrock:us-east-1:1:inference-profile/p", "stream": False},
            "https://h/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fp/converse?x=1",
        ),
        (
            "bedrock-converse",
            "https://h/v1/chat/completions",
            {"model": "x"},
            "https://h/v1/chat/completions",
        ),
        (
            "anthropic-messages",
            "https://h/model/anthropic.claude-v2/invoke-with-response-stream",
            {"stream": False},
            "https://h/model/anthropic.claude-v2/invoke",
        ),
        (
            "anthropic-messages",
            "https://api.anthropic.com/v1/messages",
            {"model": "x"},
            "https://api.anthropic.com/v1/messages",
        ),
    ],
    ids=["gemini-stream", "bedrock-arn", "bedrock-not-a-route", "anthropic-bedrock-stream", "anthropic-api"],
)
def test_url_for(codec: str, url: str, options: dict[str, Any], expected: str) -> None:
    assert get_codec(codec).url_for(url, **options) == expected  # type: ignore[attr-defined]
    if expected != url:  # and the codec reads back what was asked
        body: dict[str, Any] = {"contents": []} if codec == "gemini-generate-content" else {"messages": []}
        if codec == "anthropic-messages":
            body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1, "messages": []}
        decoded = get_codec(codec).decode(body, url=expected)
        if "model" in options:
            assert decoded.model == options["model"]
        if "stream" in options:
            assert decoded.stream is options["stream"]


def test_requests_sessions_keep_the_apps_prepared_request_unchanged(upstream: UpstreamServer) -> None:
    # The adapter sends a copy, so a redirect (rebuilt by requests from the original) runs the flow again.
    flow = Flow(policies=[TO_PRO])
    upstream.app.enqueue(Canned.json(GEMINI_REPLY))
    try:
        with flow.requests_session() as session:
            prepared = session.prepare_request(
                requests.Request("POST", upstream.url(GEMINI_PATH), json=GEMINI_BODY)
            )
            session.send(prepared, timeout=10)
        assert prepared.url == upstream.url(GEMINI_PATH)
        assert upstream.app.received[0].path.endswith("gemini-2.5-pro:generateContent")
    finally:
        flow.shutdown()
