"""Fixtures for search tests: a seeded, indexed lake (session), the embedding model (loaded once),
a real Ray Serve app on loopback, and an in-process uvicorn server for apps with other settings."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from serve.lake_rows import make_clips, seed_lake
from vidlake.platform.config import Settings, load_settings
from vidlake.platform.lake import Lake


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
def search_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("search-clips"))


@pytest.fixture(scope="session")
def embedder():
    from vidlake.serve.embed import Embedder

    e = Embedder()
    e.embed_query("warm up")
    return e


def seeded(root: Path, clips: dict[str, Path], embedder, **overrides) -> tuple[Settings, dict[str, str]]:
    """A lake under ``root`` with the standard rows, indexed; returns its settings and video ids."""
    from vidlake.platform.lake import Lake
    from vidlake.serve.index import BuildIndex
    from vidlake.serve.store import IndexStore, index_uri_for

    settings = load_settings(lake={"uri": str(root / "lake")}, **overrides)
    lake = Lake(settings.lake.uri, settings.storage)
    ids = seed_lake(lake, clips)
    BuildIndex(lake, IndexStore(index_uri_for(settings), settings.storage), settings.search, embedder).run()
    return settings, ids


@pytest.fixture(scope="session")
def search_lake(tmp_path_factory, search_clips, embedder) -> tuple[Settings, dict[str, str]]:
    """Read-only for tests: settings of a seeded lake with a built index, and clip name -> video_id."""
    return seeded(tmp_path_factory.mktemp("search-lake"), search_clips, embedder,
                  serve={"refresh_s": 0.2, "replica_cpus": 0.5, "replicas": 1})  # one: per-replica state is seen


@pytest.fixture(scope="session")
def searcher(search_lake, embedder):
    from vidlake.serve.search import Searcher
    from vidlake.serve.store import IndexStore, index_uri_for

    settings, _ = search_lake
    store = IndexStore(index_uri_for(settings))
    return Searcher(store.connect(), store.read_meta(), embedder, settings.search)


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
