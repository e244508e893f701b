"""Fixtures for the end-to-end SDK tests: the loopback replay upstream and an observed flow.

One uvicorn server (``127.0.0.1``, a free port) serves the whole package; each test gets the replay app
with an empty script and checks, when it ends, that every scripted reply was used and no request came
that was not scripted.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e_sdk.observe import Observed
from tests.e2e_sdk.replay import Replay, ReplayServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e_sdk" in item.nodeid:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def replay_server() -> Iterator[ReplayServer]:
    server = ReplayServer(Replay())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def replay(replay_server: ReplayServer) -> Iterator[Replay]:
    app = replay_server.app
    app.reset()
    yield app
    unexpected, pending = list(app.unexpected), app.pending
    app.reset()
    assert not unexpected, f"requests the test did not script: {unexpected}"
    assert pending == 0, f"{pending} scripted replies were never requested"


@pytest.fixture
def base_url(replay_server: ReplayServer) -> str:
    return replay_server.url


@pytest.fixture
def observed() -> Iterator[Observed]:
    made = Observed()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(autouse=True)
def _no_sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own keys, endpoints and SDK switches must not change what the tests see.
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_OPEN_TELEMETRY",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_HTTP_CLIENT",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
