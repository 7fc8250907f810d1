"""The service's view of the index: opened once, re-checked every ``serve.refresh_s`` in the background.

A check reads the index meta file and the lake's Delta versions (in a thread). A new build or update
of the index opens a fresh ``Searcher``; a lake newer than the index marks it stale. Requests never
wait for a check except the very first one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from vidlake.index.embed import Embedder
from vidlake.index.store import FORMAT, IndexMeta, IndexStore, index_uri_for, lake_versions, staleness
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.serve.search import Searcher
from vidlake.serve.tuning import QUERY_EMBED_THREADS, freeze_index

__all__ = ["IndexUnavailable", "ServiceState"]

log = logging.getLogger("vidlake.serve")


class IndexUnavailable(Exception):
    """No usable index: the HTTP layer answers 503 with ``message`` and the command to ``run``."""

    def __init__(self, message: str, run: str):
        super().__init__(message)
        self.message, self.run = message, run


class ServiceState:
    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self.lake = Lake(settings.lake.uri, settings.storage)
        self.store = IndexStore(index_uri_for(settings), settings.storage)
        s = settings.search
        self.embedder = embedder or Embedder(s.embedding_model, s.device, batch_size=32, backend=s.embed_backend,
                                             threads=QUERY_EMBED_THREADS)
        self.searcher: Searcher | None = None
        self.meta: IndexMeta | None = None
        self.stale_reason: str | None = None
        self.missing_reason: str | None = "the index has not been opened yet"
        self.checked_at = 0.0
        self._task: asyncio.Task | None = None

    @property
    def fix_command(self) -> str:
        return f"vidlake index --lake {self.lake.uri}"

    def check(self) -> None:
        """Blocking: re-read the meta file and the lake versions; reopen the index when it changed."""
        try:
            meta = self.store.read_meta()
            if meta is None:
                self.searcher, self.meta = None, None
                self.missing_reason = f"no search index at {self.store.uri}"
            elif meta.format != FORMAT:  # tables of another layout: `vidlake index` builds them again
                self.searcher, self.meta = None, None
                self.missing_reason = (f"the search index at {self.store.uri} has format {meta.format}, "
                                       f"this vidlake reads {FORMAT}")
            else:
                if self.meta is None or meta.to_json() != self.meta.to_json() or self.searcher is None:
                    self.searcher = Searcher(self.store.connect(), meta, self.embedder, self.settings.search)
                    self.meta = meta
                    freeze_index()
                    log.info("search index opened: %s (generation %s)", self.store.uri, meta.generation)
                self.stale_reason = staleness(meta, lake_versions(self.lake), self.settings.search.embedding_model)
                self.missing_reason = None
        except Exception as exc:  # storage hiccup, half-written index: keep answering from what is open
            log.warning("search index check failed: %s", exc)
            if self.searcher is None:
                self.missing_reason = f"cannot open the search index at {self.store.uri}: {exc}"
        self.checked_at = time.monotonic()

    async def start(self) -> None:
        """First check and model load (in threads), before the app takes requests."""
        await asyncio.to_thread(self.check)
        await asyncio.to_thread(self._load_model)

    def _load_model(self) -> None:
        self.embedder.embed_query("warm up")

    def maybe_refresh(self) -> None:
        """Start a background check when the last one is older than ``serve.refresh_s``."""
        due = time.monotonic() - self.checked_at >= self.settings.serve.refresh_s
        if due and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.check))

    def ready(self) -> Searcher:
        """The searcher, or ``IndexUnavailable`` (missing index; stale unless ``serve.allow_stale``)."""
        self.maybe_refresh()
        if self.searcher is None or self.missing_reason:
            raise IndexUnavailable(f"{self.missing_reason}; build it first", self.fix_command)
        if self.stale_reason and not self.settings.serve.allow_stale:
            raise IndexUnavailable(f"the search index is stale: {self.stale_reason}; update it", self.fix_command)
        return self.searcher

    def info(self) -> dict:
        m = self.meta
        return {
            "uri": self.store.uri, "built_at": m.built_at if m else "", "embedding_model": m.embedding_model if m else "",
            "lake_versions": m.lake_versions if m else {}, "rows": m.rows if m else {},
            "stale": self.stale_reason is not None, "stale_reason": self.stale_reason,
        }
