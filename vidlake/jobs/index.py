"""Index: build or update the search index beside the lake (``vidlake index``).

    lake (captions, answers, points, tracks, counts, videos, sets) -> BuildIndex -> LanceDB at search.index_uri

Runs in the driver process: the index is one LanceDB database, written by one writer; the heavy part,
embedding new texts, batches on the CPU (or ``search.device``). A first run builds everything, later
runs only read and embed what changed. Every run appends a ``runs`` row (job ``index``).
"""

from __future__ import annotations

from vidlake.errors import LakeError
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.runs import RunRecord
from vidlake.platform.runtime import print_summary
from vidlake.platform.runtime.progress import JobProgress
from vidlake.index.build import BuildIndex, IndexResult
from vidlake.index.store import IndexStore, index_uri_for

__all__ = ["run_index"]


def run_index(settings: Settings, rebuild: bool = False, show: bool = True) -> IndexResult:
    """Build (or incrementally update) the index of ``settings.lake``. Raises ``LakeError`` when the
    lake has no ``videos`` table (nothing was ingested there)."""
    lake = Lake(settings.lake.uri, settings.storage)
    if not lake.exists("videos"):
        raise LakeError(f"no lake at {lake.uri} (no videos table): run `vidlake ingest` or a job first")
    store = IndexStore(index_uri_for(settings), settings.storage)
    bar = JobProgress("embedding", None) if show else None
    progress = (lambda done, total: bar.advance(done - bar.done)) if bar else None
    with RunRecord(lake, "index", sources=[lake.uri], spec_json=settings.model_dump_json()) as record:
        result = BuildIndex(lake, store, settings.search, progress=progress).run(rebuild=rebuild)
        metrics = {k: getattr(result, k) for k in ("mode", "reason", "pairs_changed", "segments_written",
                                                   "segments_deleted", "embedded", "reused")}
        record.finish("completed", metrics={**metrics, "rows": result.rows, "index_uri": store.uri})
    if show:
        print_summary(f"index {record.run_id} -> {store.uri}", [
            ("mode", result.mode + (f" ({result.reason})" if result.reason else "")),
            ("(video, task) pairs changed", result.pairs_changed),
            ("segments written", result.segments_written),
            ("segments deleted", result.segments_deleted),
            ("texts embedded", result.embedded),
            ("vectors reused", result.reused),
            *[(f"rows: {t}", n) for t, n in sorted(result.rows.items())],
            ("seconds", result.seconds),
        ])
    return result
