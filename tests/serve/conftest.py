"""Fixtures for service tests: a real Ray Serve app on loopback and an in-process uvicorn server for apps
with other settings (the indexed lake and the embedding model come from ``index/fixtures.py``)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.cluster import free_port


def http_get(url: str, headers: dict | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET; 4xx/5xx are returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str, headers: dict | None = None) -> tuple[int, object]:
    status, _, body = http_get(url, headers)
    return status, json.loads(body)


@pytest.fixture(scope="session")
def serve_url(ray_session, search_lake) -> str:
    """The vidlake app on a real Ray Serve (HTTP proxy on a free loopback port, route prefix /vl)."""
    from ray import serve

    from vidlake.serve.deployment import build_app

    settings, _ = search_lake
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"log_level": "WARNING"})
    serve.run(build_app(settings), name="vidlake-test", route_prefix="/vl")
    url = f"http://127.0.0.1:{port}/vl"
    deadline = time.monotonic() + 120
    while http_get(f"{url}/healthz")[0] != 200:
        assert time.monotonic() < deadline, "the Serve app did not come up"
        time.sleep(0.5)
    yield url
    serve.delete("vidlake-test")
    serve.shutdown()


class LocalServer:
    """``create_app(settings)`` under uvicorn in a thread of this process (real HTTP on loopback)."""

    def __init__(self, settings: Settings, embedder=None):
        import uvicorn

        from vidlake.serve.app import create_app
        from vidlake.serve.state import ServiceState

        self.state = ServiceState(settings, embedder)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings, self.state), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def local_server(embedder):
    """Start ``LocalServer``s for this test; they stop at its end."""
    servers: list[LocalServer] = []

    def start(settings: Settings) -> LocalServer:
        server = LocalServer(settings, embedder).__enter__()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.__exit__()


@pytest.fixture
def lake_of():
    return lambda settings: Lake(settings.lake.uri, settings.storage)
