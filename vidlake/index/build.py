"""BuildIndex: the lake's captions, answers and point/track labels -> a LanceDB search index.

A first build (or a rebuild) writes a new generation of tables (``segments_g3``...), indexes them
(full-text BM25 on ``text``, B-tree on ``video_id``, IVF-PQ on ``vector`` past
``search.vector_index_min_rows``) and then switches the meta file to it, so a running service keeps
answering from the old generation until it sees the new meta. Later runs are incremental: only
(video, task_key) pairs whose lake rows changed are re-read; vectors of unchanged texts are reused,
so only new text is embedded. Each table's update is one atomic LanceDB commit. Image sets are indexed
as videos are (their outputs carry the set's id as ``video_id``); the ``sets`` table, their images, is
derived again whenever the lake's ``sets`` table moved.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vidlake import __version__
from vidlake.platform.config import SearchSettings
from vidlake.platform.lake import Lake
from vidlake.index import documents as D
from vidlake.index.changes import LakeSnapshot, VersionGone
from vidlake.index.embed import Embedder
from vidlake.index.store import FORMAT, IndexMeta, IndexStore, lake_versions
from vidlake.jobs.image_sets import set_items

__all__ = ["BuildIndex", "IndexResult"]

_PAIRED = ("captions", "answers", "points", "tracks")
_CHUNK = 16_384  # texts embedded per step of a full build (progress)
_WRITE_ROWS = 262_144  # rows per LanceDB write of a full build (fewer, larger fragments)
# Lance file format 2.1: fetching a search hit's columns by row id is cheaper than in 2.0, whose
# constant-ish string columns (task, task_key) decode a whole page per row (docs/search.md).
_FILE_VERSION = "2.1"


@dataclass
class IndexResult:
    index_uri: str
    mode: str  # build | update | unchanged
    reason: str = ""
    pairs_changed: int = 0
    segments_written: int = 0
    segments_deleted: int = 0
    embedded: int = 0
    reused: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    lake_versions: dict[str, int | None] = field(default_factory=dict)
    seconds: float = 0.0


class BuildIndex:
    """Builds or updates the index at ``store`` from ``lake``. ``progress(done, total)`` is optional."""

    def __init__(self, lake: Lake, store: IndexStore, search: SearchSettings, embedder: Embedder | None = None,
                 progress: Callable[[int, int], None] | None = None):
        self.lake, self.store, self.search = lake, store, search
        self.embedder = embedder or Embedder(search.embedding_model, search.device, search.embed_batch,
                                             search.embed_backend, search.embed_threads)
        self.progress = progress or (lambda done, total: None)

    def run(self, rebuild: bool = False) -> IndexResult:
        started = time.monotonic()
        versions = lake_versions(self.lake)
        snap = LakeSnapshot(self.lake, versions)
        meta = self.store.read_meta()
        db = self.store.connect()
        result = IndexResult(self.store.uri, "update", lake_versions=versions)
        reason = self._full_reason(meta, db, rebuild)
        if reason is None and meta.lake_versions == versions:
            result.mode, result.rows = "unchanged", meta.rows
        else:
            if reason is None:
                try:
                    self._update(db, snap, meta, result)
                except VersionGone as exc:
                    reason = f"incremental update impossible ({exc})"
            if reason is not None:
                result.mode, result.reason = "build", reason
                meta = self._build(db, snap, meta, result)
            meta.lake_versions, meta.rows = versions, result.rows
            meta.vidlake_version = __version__
            self.store.write_meta(meta)
        result.seconds = time.monotonic() - started
        return result

    def _full_reason(self, meta: IndexMeta | None, db: Any, rebuild: bool) -> str | None:
        if rebuild:
            return "rebuild requested"
        if meta is None:
            return "no index yet"
        if meta.format != FORMAT:
            return f"index format {meta.format} -> {FORMAT}"
        if meta.embedding_model != self.search.embedding_model:
            return f"embedding model {meta.embedding_model} -> {self.search.embedding_model}"
        missing = set(meta.tables.values()) - set(_table_names(db))
        return f"index tables missing: {', '.join(sorted(missing))}" if missing else None

    # -- full build -----------------------------------------------------------------------------

    def _build(self, db: Any, snap: LakeSnapshot, old: IndexMeta | None, result: IndexResult) -> IndexMeta:
        gen = (old.generation + 1) if old else 1
        names = {t: f"{t}_g{gen}" for t in (D.SEGMENTS, D.EVIDENCE, D.COUNTS, D.VIDEOS, D.SETS)}
        for stale in [n for n in _table_names(db) if n.rsplit("_g", 1)[0] in names and n not in
                      (old.tables.values() if old else ())]:
            db.drop_table(stale)  # generations older than the one being replaced
        videos = D.video_rows(snap.read("videos"))
        sets = self._sets(snap)
        docs = self._docs(snap, None, videos, sets)
        dim = self.embedder.dim
        # every distinct text is embedded once, however many rows (videos, chunks) repeat it
        encoded = pc.dictionary_encode(docs["text"]).combine_chunks()
        texts, codes = encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False)
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        for start in range(0, len(texts), _CHUNK):
            vectors[start:start + _CHUNK] = self.embedder.embed(texts[start:start + _CHUNK])
            self.progress(min(start + _CHUNK, len(texts)), len(texts))
        result.embedded = len(texts)
        seg = None
        for start in range(0, max(docs.num_rows, 1), _WRITE_ROWS):
            table = _with_vectors(docs.slice(start, _WRITE_ROWS), vectors[codes[start:start + _WRITE_ROWS]], dim)
            if seg is None:
                seg = db.create_table(names[D.SEGMENTS], table, schema=D.segments_schema(dim), mode="overwrite",
                                      data_storage_version=_FILE_VERSION)
            elif table.num_rows:
                seg.add(table)
        del vectors
        evidence = _concat([D.evidence_rows(snap.read(t), t) for t in ("points", "tracks")], D.EVIDENCE_SCHEMA)
        ev = db.create_table(names[D.EVIDENCE], _with_ev_ids(evidence), mode="overwrite",
                             data_storage_version=_FILE_VERSION)
        self._write_media(db, names, snap, videos, sets)
        self._index(seg, ev, fresh=True)
        result.segments_written = docs.num_rows
        result.rows = _row_counts(db, names, seg, ev)
        return IndexMeta(self.lake.uri, {}, self.search.embedding_model, dim, generation=gen, tables=names)

    # -- incremental update ---------------------------------------------------------------------

    def _update(self, db: Any, snap: LakeSnapshot, meta: IndexMeta, result: IndexResult) -> None:
        pairs: set[tuple[str, str]] = set()
        for table in _PAIRED:
            changed = snap.changed_pairs(table, meta.lake_versions.get(table))
            if changed is None:
                changed = D.pairs_of([snap.read(table, columns=["video_id", "task_key"])])
            pairs |= changed
        result.pairs_changed = len(pairs)
        names = meta.tables
        videos = D.video_rows(snap.read("videos"))
        sets_moved = meta.lake_versions.get("sets") != snap.versions.get("sets")
        sets = self._sets(snap) if sets_moved else db.open_table(names[D.SETS]).to_arrow()
        seg, ev = db.open_table(names[D.SEGMENTS]), db.open_table(names[D.EVIDENCE])
        if pairs:
            docs = self._docs(snap, pairs, videos, sets)
            old = _rows_of_pairs(seg, pairs, ["doc_id", "text_hash", "vector"])
            known = {(d, h): i for i, (d, h) in enumerate(zip(old["doc_id"].to_pylist(), old["text_hash"].to_pylist()))}
            reuse = [known.get((d, h)) for d, h in zip(docs["doc_id"].to_pylist(), docs["text_hash"].to_pylist())]
            todo = [i for i, r in enumerate(reuse) if r is None]
            vectors = np.zeros((docs.num_rows, meta.dim), dtype=np.float32)
            if todo:
                vectors[todo] = self.embedder.embed([docs["text"][i].as_py() for i in todo])
            kept = [(i, r) for i, r in enumerate(reuse) if r is not None]
            if kept:
                old_vectors = np.asarray(old["vector"].combine_chunks().flatten(), dtype=np.float32).reshape(-1, meta.dim)
                vectors[[i for i, _ in kept]] = old_vectors[[r for _, r in kept]]
            result.embedded, result.reused = len(todo), len(kept)
            gone = sorted(set(old["doc_id"].to_pylist()) - set(docs["doc_id"].to_pylist()))
            _replace(seg, "doc_id", _with_vectors(docs, vectors, meta.dim), gone)
            result.segments_written, result.segments_deleted = docs.num_rows, len(gone)
            new_ev = _with_ev_ids(_concat([D.evidence_rows(snap.read(t, pairs), t) for t in ("points", "tracks")],
                                          D.EVIDENCE_SCHEMA))
            old_ev = _rows_of_pairs(ev, pairs, ["ev_id"])["ev_id"].to_pylist()
            _replace(ev, "ev_id", new_ev, sorted(set(old_ev) - set(new_ev["ev_id"].to_pylist())))
            self._index(seg, ev, fresh=False)
        self._write_media(db, names, snap, videos, sets if sets_moved else None)
        result.rows = _row_counts(db, names, seg, ev)

    # -- shared ---------------------------------------------------------------------------------

    def _sets(self, snap: LakeSnapshot) -> pa.Table:
        """The index's ``sets`` rows: the lake's sets at the pinned version, with their images' times and
        sizes as the job computes them."""
        sets = snap.read("sets")
        return D.set_rows(sets, set_items(self.lake, set(sets["set_id"].to_pylist())))

    def _write_media(self, db: Any, names: dict[str, str], snap: LakeSnapshot, videos: pa.Table,
                     sets: pa.Table | None) -> None:
        """The tables rewritten whole by every run: counts, videos, and sets (None: unchanged, kept)."""
        db.create_table(names[D.COUNTS], D.count_rows(snap.read("counts")), mode="overwrite")
        db.create_table(names[D.VIDEOS], videos, mode="overwrite")
        if sets is not None:
            db.create_table(names[D.SETS], sets, mode="overwrite")

    def _docs(self, snap: LakeSnapshot, pairs: set | None, videos: pa.Table, sets: pa.Table) -> pa.Table:
        # an answer without a span covers its whole video or set
        durations = dict(zip(videos["video_id"].to_pylist(), videos["duration_s"].to_pylist()))
        durations.update(zip(sets["set_id"].to_pylist(), sets["duration_s"].to_pylist()))
        parts = [
            D.caption_docs(snap.read("captions", pairs)),
            D.answer_docs(snap.read("answers", pairs), durations),
            D.label_docs(snap.read("points", pairs), "points"),
            D.label_docs(snap.read("tracks", pairs), "tracks"),
        ]
        return pa.concat_tables(parts)

    def _index(self, seg: Any, ev: Any, fresh: bool) -> None:
        rows = seg.count_rows()
        has = {i.columns[0]: i for i in seg.list_indices()}
        if fresh or "text" not in has:
            seg.create_fts_index("text", replace=True)
            seg.create_scalar_index("video_id", replace=True)
            ev.create_scalar_index("video_id", replace=True)
        else:
            seg.optimize()
            ev.optimize()
        if rows >= self.search.vector_index_min_rows and (fresh or "vector" not in has or
                                                          _outgrown(seg, has["vector"].name, rows)):
            seg.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_PQ",
                             num_partitions=_partitions(rows), num_sub_vectors=_sub_vectors(seg),
                             sample_rate=64, replace=True)


def _row_counts(db: Any, names: dict[str, str], seg: Any, ev: Any) -> dict[str, int]:
    return {D.SEGMENTS: seg.count_rows(), D.EVIDENCE: ev.count_rows(),
            **{t: db.open_table(names[t]).count_rows() for t in (D.VIDEOS, D.COUNTS, D.SETS)}}


def _partitions(rows: int) -> int:
    return max(16, int(math.sqrt(rows)))


def _outgrown(seg: Any, name: str, rows: int) -> bool:
    """Whether the table grew to four times the size its IVF partitions were trained for (sqrt(rows)
    partitions, so twice the partitions): updates add rows to the existing partitions, so a lake that
    kept growing gets its vector index retrained, as a full build would have it."""
    os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")  # statistics without the centroids
    try:
        stats = seg.to_lance().stats.index_stats(name)
        trained = min(s["num_partitions"] for s in stats.get("segments") or stats.get("indices") or [])
    except Exception:  # noqa: BLE001 - statistics of another index layout: keep the index
        return False
    return _partitions(rows) >= 2 * trained


def _sub_vectors(seg: Any) -> int:
    dim = seg.schema.field("vector").type.list_size
    return next(n for n in (dim // 8, dim // 4, dim // 2, dim) if n and dim % n == 0)


def _table_names(db: Any) -> list[str]:
    listing = db.list_tables() if hasattr(db, "list_tables") else db.table_names()
    return list(getattr(listing, "tables", listing))


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables([t.cast(schema) for t in tables]) if tables else schema.empty_table()


def _with_vectors(docs: pa.Table, vectors: np.ndarray, dim: int) -> pa.Table:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
    return docs.append_column("vector", pa.FixedSizeListArray.from_arrays(flat, dim))


def _with_ev_ids(evidence: pa.Table) -> pa.Table:
    cols = [evidence[c].to_pylist() for c in ("source", "video_id", "task_key", "t", "object_id", "label", "image_id")]
    return evidence.append_column("ev_id", pa.array([D.doc_id(*k) for k in zip(*cols)], pa.string()))


def _rows_of_pairs(tbl: Any, pairs: set[tuple[str, str]], columns: list[str]) -> pa.Table:
    videos = sorted({v for v, _ in pairs})
    out = []
    for i in range(0, len(videos), 500):
        where = "video_id IN (" + ", ".join(f"'{v}'" for v in videos[i:i + 500] if "'" not in v) + ")"
        out.append(tbl.to_lance().to_table(columns=["video_id", "task_key", *columns], filter=where))
    rows = pa.concat_tables(out)
    keep = [(v, k) in pairs for v, k in zip(rows["video_id"].to_pylist(), rows["task_key"].to_pylist())]
    return rows.filter(pa.array(keep, pa.bool_())).select(columns)


def _replace(tbl: Any, key: str, rows: pa.Table, gone: list[str]) -> None:
    """Upsert ``rows`` on ``key`` and delete the ``gone`` keys: one commit."""
    merge = tbl.merge_insert(key).when_matched_update_all().when_not_matched_insert_all()
    if gone:
        merge = merge.when_not_matched_by_source_delete(f"{key} IN (" + ", ".join(f"'{g}'" for g in gone) + ")")
    if rows.num_rows or gone:
        merge.execute(rows if rows.num_rows else rows.schema.empty_table())
