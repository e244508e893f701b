"""Where an Anthropic Messages request goes: api.anthropic.com (and proxies), Bedrock, Vertex AI.

The route matters for three facts the body may lack: the model (Bedrock and Vertex name it in the URL and
drop it from the body), the streaming mode (Bedrock's ``invoke-with-response-stream``, Vertex's
``:streamRawPredict``), and whether the body must carry ``anthropic_version`` to be an Anthropic body at
all (Bedrock's ``invoke`` serves every model family, so only the body tells them apart).

Wire references: Anthropic API reference "Messages"; Amazon Bedrock "InvokeModel" /
"InvokeModelWithResponseStream" and the Anthropic Claude Messages parameters page; Google Cloud Vertex AI
"Use Claude models" (``rawPredict`` / ``streamRawPredict``); the ``anthropic`` SDK's Bedrock and Vertex
clients, which build exactly these paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from nemoflow.codec_support import request_path

__all__ = ["Route", "parse_route", "route_of_url", "url_for"]

_BEDROCK = re.compile(r"/model/(?P<model>.+)/(?P<op>invoke|invoke-with-response-stream)$")
_VERTEX = re.compile(
    r"/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/(?P<model>[^/:]+):"
    r"(?P<op>rawPredict|streamRawPredict)$"
)
_MESSAGES_SUFFIX = "/v1/messages"
_VERTEX_COUNT_TOKENS = "count-tokens"


@dataclass(frozen=True, slots=True)
class Route:
    """What the request URL says about the call."""

    platform: Literal["anthropic", "bedrock", "vertex"]
    """Which front door serves the request."""
    model: str | None = None
    """The model named in the URL (Bedrock ``{modelId}``, Vertex ``models/{m}``), URL-decoded."""
    stream: bool | None = None
    """The streaming mode the URL fixes, when it fixes one."""


_ANTHROPIC = Route("anthropic")


def parse_route(path: str) -> Route | None:
    """The route a request path (no query) belongs to, or ``None`` when it is not a Messages call."""
    if path.endswith(_MESSAGES_SUFFIX):
        return _ANTHROPIC
    if "/model/" in path:
        match = _BEDROCK.search(path)
        if match is not None:
            model = unquote(match["model"])
            return Route("bedrock", model or None, match["op"] == "invoke-with-response-stream")
    if "/publishers/anthropic/" in path:
        match = _VERTEX.search(path)
        if match is not None and match["model"] != _VERTEX_COUNT_TOKENS:
            model = unquote(match["model"])
            return Route("vertex", model or None, match["op"] == "streamRawPredict")
    return None


def route_of_url(url: str | None) -> Route | None:
    """The route of a request URL or path; ``None`` when there is no URL or it is not a Messages call."""
    if not url:
        return None
    return parse_route(request_path(url))


def url_for(url: str, *, model: str | None = None, stream: bool | None = None) -> str:
    """``url`` moved to another model and/or streaming mode on Bedrock or Vertex (host and query kept).

    On api.anthropic.com the model and ``stream`` live in the body, so its URLs come back unchanged, as
    does any URL that is not a Messages route.
    """
    path = request_path(url)
    start = url.find(path) if path != "/" else -1
    if start == -1:
        return url
    match = _BEDROCK.search(path) if "/model/" in path else None
    if match is not None:
        name = quote(model, safe="") if model is not None else match["model"]
        streamed = match["op"] == "invoke-with-response-stream" if stream is None else stream
        operation = "invoke-with-response-stream" if streamed else "invoke"
        new_path = path[: match.start()] + f"/model/{name}/{operation}"
    else:
        match = _VERTEX.search(path) if "/publishers/anthropic/" in path else None
        if match is None:
            return url
        name = quote(model, safe="@") if model is not None else match["model"]
        streamed = match["op"] == "streamRawPredict" if stream is None else stream
        operation = "streamRawPredict" if streamed else "rawPredict"
        new_path = path[: match.start("model")] + f"{name}:{operation}"
    return url[:start] + new_path + url[start + len(path) :]
