"""Fixtures for index and search tests, registered for the whole test run (``tests/conftest.py``): the
embedding model (loaded once), a seeded lake of videos and image sets with a built index (session), a
Searcher over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.lake_rows import add_trap_sets, make_clips, seed_lake, trap_set_ids
from vidlake.platform.config import Settings, load_settings


@pytest.fixture(scope="session")
def search_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("search-clips"))


@pytest.fixture(scope="session")
def embedder():
    from vidlake.index.embed import Embedder

    e = Embedder()
    e.embed_query("warm up")
    return e


def seeded(root: Path, clips: dict[str, Path], embedder, sets: bool = False,
           **overrides) -> tuple[Settings, dict[str, str]]:
    """A lake under ``root`` with the standard rows (and the camera-trap sets: ``sets``), indexed; returns its
    settings and video ids."""
    from vidlake.platform.lake import Lake

    settings = load_settings(lake={"uri": str(root / "lake")}, **overrides)
    ids = seed_lake(Lake(settings.lake.uri, settings.storage), clips)
    if sets:
        add_trap_sets(settings, root / "photos")
    build(settings, embedder)
    return settings, ids


@pytest.fixture(scope="session")
def search_lake(tmp_path_factory, search_clips, embedder) -> tuple[Settings, dict[str, str]]:
    """Read-only for tests: settings of a seeded lake of videos and image sets with a built index, and clip
    name -> video_id (``search_sets``: the sets' ids)."""
    return seeded(tmp_path_factory.mktemp("search-lake"), search_clips, embedder, sets=True,
                  serve={"refresh_s": 0.2, "replica_cpus": 0.5, "replicas": 1})  # one: per-replica state is seen


@pytest.fixture(scope="session")
def search_sets(search_lake) -> dict[str, str]:
    """Name -> set_id of the image sets in ``search_lake`` (``lake_rows.trap_set_ids``)."""
    from vidlake.platform.lake import Lake

    settings, _ = search_lake
    return trap_set_ids(Lake(settings.lake.uri, settings.storage))


@pytest.fixture(scope="session")
def searcher(search_lake, embedder):
    return open_searcher(search_lake[0], embedder)


def build(settings: Settings, embedder, rebuild: bool = False):
    """``BuildIndex(...).run(rebuild)`` for ``settings``: the IndexResult."""
    from vidlake.index.build import BuildIndex
    from vidlake.index.store import IndexStore, index_uri_for
    from vidlake.platform.lake import Lake

    lake = Lake(settings.lake.uri, settings.storage)
    return BuildIndex(lake, IndexStore(index_uri_for(settings), settings.storage), settings.search, embedder).run(rebuild)


def open_searcher(settings: Settings, embedder):
    """A Searcher over the index of ``settings`` as it is now."""
    from vidlake.index.store import IndexStore, index_uri_for
    from vidlake.serve.search import Searcher

    store = IndexStore(index_uri_for(settings), settings.storage)
    return Searcher(store.connect(), store.read_meta(), embedder, settings.search)
