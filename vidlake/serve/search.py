"""Search one opened index generation: ranked, filtered, highlighted hits with evidence; timelines.

Synchronous and thread-safe (LanceDB queries release the GIL); the web app calls it from a thread
pool, tests call it directly. Inputs are already validated (ids are hex, tasks are slugs).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np
import pyarrow as pa
from cachetools import LRUCache

from vidlake.index import documents as D
from vidlake.index.embed import Embedder
from vidlake.index.store import IndexMeta
from vidlake.platform.config import SearchSettings
from vidlake.serve.ranking import filter_clause, fuse_rrf, highlight, join_evidence, query_terms, samples_clause

__all__ = ["HIT_COLUMNS", "QueryBatcher", "Searcher", "set_hit"]

HIT_COLUMNS = ["source", "video_id", "task", "task_key", "start_s", "end_s", "text", "question", "label"]
_SAMPLE_COLUMNS = ["source", "video_id", "task", "task_key", "label", "object_id", "t", "x", "y", "x_norm", "y_norm",
                   "box", "image_id"]
_MAX_SAMPLES = 20_000
_MAX_SAMPLES_PER_VIDEO = 5_000
_CACHED_SAMPLES = 500_000
_CACHED_QUERIES = 1024


class Searcher:
    """Queries over the tables of one index generation (``meta.tables``)."""

    def __init__(self, db: Any, meta: IndexMeta, embedder: Embedder, settings: SearchSettings):
        self.meta, self.embedder, self.settings = meta, embedder, settings
        self.segments = db.open_table(meta.tables[D.SEGMENTS])
        self.ds = self.segments.to_lance()  # this generation's snapshot, searched directly (see _bm25)
        self.evidence = db.open_table(meta.tables[D.EVIDENCE])
        self.counts_table = db.open_table(meta.tables[D.COUNTS])
        videos = db.open_table(meta.tables[D.VIDEOS]).to_arrow().to_pylist()
        self.videos: dict[str, dict] = {v["video_id"]: v for v in sorted(videos, key=lambda v: v["uri"] or "")}
        sets = db.open_table(meta.tables[D.SETS]).to_arrow().to_pylist()
        self.sets: dict[str, dict] = {s["set_id"]: s for s in sorted(sets, key=lambda s: s["uri"] or "")}
        self.ev_ds = self.evidence.to_lance()
        self.with_samples = set(self.ev_ds.to_table(columns=["video_id"])["video_id"].unique().to_pylist())
        self._queries = QueryBatcher(embedder)
        self._vectors: LRUCache[str, np.ndarray] = LRUCache(_CACHED_QUERIES)
        self._samples: LRUCache[str, list[dict]] = LRUCache(_CACHED_SAMPLES, getsizeof=len)  # size: samples
        self._big: set[str] = set()
        self._lock = threading.Lock()
        self._hit_ids: np.ndarray | None = None  # sorted row ids of self._hits
        self._hits: pa.Table | None = None
        if self.ds.count_rows() <= settings.hit_cache_rows:
            self._hit_ids, self._hits = _hit_columns(self.ds)
        if self.ev_ds.count_rows() <= _CACHED_SAMPLES:  # small enough to keep whole: no search waits on a read
            self._remember(self.ev_ds.to_table(columns=_SAMPLE_COLUMNS).to_pylist(), list(self.with_samples))

    # -- search ---------------------------------------------------------------------------------

    def search(self, text: str, k: int = 10, mode: str = "hybrid", video_id: str | None = None,
               task: str | None = None, task_key: str | None = None, t_from: float | None = None,
               t_to: float | None = None) -> list[dict]:
        """The best ``k`` hits for ``text``; each a dict shaped like ``models.Hit`` minus the URLs."""
        where = filter_clause(video_id, task, task_key, t_from, t_to)
        if mode == "hybrid":
            rows = self._hybrid(text, k, where)
        else:
            table = self._bm25(text, k, where) if mode == "bm25" else self._semantic(text, k, where)
            rows = self._rows(table["_rowid"].to_pylist(), [{mode: s} for s in _scores(table)])
        terms = query_terms(text)
        hits = []
        for row in rows:
            marked, spans = highlight(row["text"], terms)
            image_set = self.sets.get(row["video_id"])
            media = image_set or self.videos.get(row["video_id"], {})
            hits.append({**{c: row[c] for c in HIT_COLUMNS}, "uri": media.get("uri"),
                         "media": "set" if image_set else "video",
                         "image_set": set_hit(image_set, row["start_s"], row["end_s"]) if image_set else None,
                         "score": float(row["_fused"]), "scores": row["_scores"], "highlight": marked, "spans": spans})
        samples = self.samples([(h["video_id"], h["start_s"], h["end_s"]) for h in hits])
        for hit, evidence in zip(hits, join_evidence(hits, samples)):
            hit["evidence"] = evidence
        return hits

    # Retrieval goes through the Lance dataset of this generation (``self.ds``, one snapshot) rather
    # than LanceDB's query builder: the same indexes and results for less CPU per query, and row ids
    # that stay valid between retrieval and ``_take_rows``. Retrieval asks for row ids and scores only;
    # the hit columns of the final k come afterwards (``_rows``: from memory, or read by id), which
    # costs less than projecting them in the query (docs/search.md, benchmarks/results/search.md).

    def _bm25(self, text: str, n: int, where: str | None) -> pa.Table:
        from lance.query import MatchQuery

        return self.ds.to_table(columns=["_score"], full_text_query=MatchQuery(text, "text"), filter=where,
                                prefilter=True if where else None, limit=n, with_row_id=True)

    def _semantic(self, text: str, n: int, where: str | None) -> pa.Table:
        nearest = {"column": "vector", "q": self.vector(text), "k": n, "metric": "cosine",
                   "nprobes": self.settings.nprobes, "refine_factor": self.settings.refine_factor}
        return self.ds.to_table(columns=["_distance"], nearest=nearest, filter=where,
                                prefilter=True if where else None, with_row_id=True)

    def _hybrid(self, text: str, k: int, where: str | None) -> list[dict]:
        """Both retrievers' best ``search.candidates`` row ids, fused (RRF); columns for the top ``k`` only."""
        n = max(k, self.settings.candidates)
        scores: dict[int, dict[str, float]] = {}
        ranked = []
        for name, table in (("bm25", self._bm25(text, n, where)), ("semantic", self._semantic(text, n, where))):
            ids = table["_rowid"].to_pylist()
            for rid, value in zip(ids, _scores(table)):
                scores.setdefault(rid, {})[name] = value
            ranked.append(ids)
        top = fuse_rrf(ranked, self.settings.rrf_k)[:k]
        rows = self._rows([rid for rid, _ in top], [scores[rid] for rid, _ in top])
        for row, (_, fused) in zip(rows, top):
            row["_fused"] = fused
        return rows

    def _rows(self, ids: list[int], scores: list[dict[str, float]]) -> list[dict]:
        """The hit columns of rows ``ids``, in that order, each with its ``_scores`` (and ``_fused``: the
        single score of a one-retriever search)."""
        if not ids:
            return []
        rows = None
        if self._hits is not None and len(self._hit_ids):
            wanted = np.asarray(ids, dtype=np.uint64)
            pos = np.minimum(np.searchsorted(self._hit_ids, wanted), len(self._hit_ids) - 1)
            if np.array_equal(self._hit_ids[pos], wanted):
                rows = self._hits.take(pos).to_pylist()
        if rows is None:  # not kept in memory (a large index)
            rows = self.ds._take_rows(ids, columns=HIT_COLUMNS).to_pylist()  # same order as asked
        for row, score in zip(rows, scores):
            row["_scores"], row["_fused"] = score, next(iter(score.values()))
        return rows

    def vector(self, text: str) -> np.ndarray:
        """The query's embedding; the last ``_CACHED_QUERIES`` distinct queries are kept."""
        with self._lock:
            vec = self._vectors.get(text)
        if vec is None:
            vec = self._queries.embed_query(text)
            with self._lock:
                self._vectors[text] = vec
        return vec

    # -- per video or image set -----------------------------------------------------------------

    def media(self, media_id: str) -> dict | None:
        """The ``videos`` or ``sets`` row of ``media_id`` (a set's id is its outputs' ``video_id``)."""
        return self.videos.get(media_id) or self.sets.get(media_id)

    def samples(self, ranges: list[tuple[str, float, float]], limit: int = _MAX_SAMPLES) -> list[dict]:
        """Point and track samples inside any of the (video_id, start_s, end_s) ranges, time order.

        A video's samples are read once and kept (LRU, at most ``_CACHED_SAMPLES`` in all); a video
        with more samples than ``_MAX_SAMPLES_PER_VIDEO`` is queried by range each time instead.
        """
        ranges = [r for r in ranges if r[0] in self.with_samples]
        by_video: dict[str, list[tuple[float, float]]] = {}
        for video, start, end in ranges:
            by_video.setdefault(video, []).append((start, end))
        cached = self._video_samples(list(by_video))
        out = [s for video, rows in cached.items() for s in rows
               if any(a <= s["t"] <= b for a, b in by_video[video])]
        clause = samples_clause([r for r in ranges if r[0] not in cached])
        if clause is not None:
            out += self.evidence.search().where(clause).select(_SAMPLE_COLUMNS).limit(limit).to_arrow().to_pylist()
        return sorted(out, key=lambda s: (s["video_id"], s["t"], s["object_id"] or 0))[:limit]

    def _video_samples(self, videos: list[str]) -> dict[str, list[dict]]:
        """Every sample of each of ``videos`` that is small enough to keep, from the cache or one query."""
        with self._lock:
            found = {v: rows for v in videos if (rows := self._samples.get(v)) is not None}
        missing = [v for v in videos if v not in found and v not in self._big]
        if missing:
            where = "video_id IN (" + ", ".join(f"'{v}'" for v in missing) + ")"
            found.update(self._remember(self.ev_ds.to_table(columns=_SAMPLE_COLUMNS, filter=where).to_pylist(), missing))
        return found

    def _remember(self, rows: list[dict], videos: list[str]) -> dict[str, list[dict]]:
        """Cache the samples ``rows`` of ``videos`` (all of each), per video; returns the cached ones."""
        fetched: dict[str, list[dict]] = {v: [] for v in videos}
        for r in rows:
            fetched[r["video_id"]].append(r)
        kept = {}
        with self._lock:
            for v, vrows in fetched.items():
                if len(vrows) > _MAX_SAMPLES_PER_VIDEO:
                    self._big.add(v)
                    continue
                kept[v] = self._samples[v] = vrows
        return kept

    def timeline(self, video_id: str, t_from: float | None, t_to: float | None, limit: int) -> tuple[list[dict], bool]:
        """Captions, answers, points and tracks of one video (or image set) overlapping [t_from, t_to], time order."""
        where = filter_clause(video_id, None, None, t_from, t_to, sources=("captions", "answers"))
        segs = self.segments.search().where(where).select(HIT_COLUMNS).limit(limit + 1).to_arrow().to_pylist()
        end = (self.media(video_id) or {}).get("duration_s") or float("inf")
        samples = self.samples([(video_id, t_from or 0.0, end if t_to is None else t_to)], limit + 1)
        events = [{"kind": s["source"], "t": s["start_s"], "end": s["end_s"], "task": s["task"],
                   "task_key": s["task_key"], "text": s["text"], "question": s["question"]} for s in segs]
        events += [{"kind": s["source"], "t": s["t"], "task": s["task"], "task_key": s["task_key"],
                    "label": s["label"], "object_id": s["object_id"], "x": s["x"], "y": s["y"],
                    "x_norm": s["x_norm"], "y_norm": s["y_norm"], "box": s["box"], "image_id": s["image_id"]}
                   for s in samples]
        events.sort(key=lambda e: (e["t"], e["kind"], e.get("object_id") or 0))
        return events[:limit], len(segs) > limit or len(samples) > limit or len(events) > limit

    def tasks(self, video_id: str) -> list[dict]:
        """Per-task summary of one video: rows per table, labels, covered time range."""
        where = f"video_id = '{video_id}'"
        segs = self.ds.to_table(columns=["source", "task", "task_key", "start_s", "end_s", "label"],
                                filter=where).to_pylist()
        evs = self.ev_ds.to_table(columns=["source", "task", "task_key", "t"], filter=where).to_pylist()
        out: dict[str, dict] = {}
        for r in segs + evs:
            s = out.setdefault(r["task_key"], {"task": r["task"], "task_key": r["task_key"], "captions": 0,
                                               "answers": 0, "points": 0, "tracks": 0, "labels": [],
                                               "start_s": None, "end_s": None})
            if "t" in r:  # a point/track sample
                s[r["source"]] += 1
                lo, hi = r["t"], r["t"]
            elif r["source"] in ("captions", "answers"):
                s[r["source"]] += 1
                lo, hi = r["start_s"], r["end_s"]
            else:  # a label segment
                s["labels"].append(r["label"])
                continue
            s["start_s"] = lo if s["start_s"] is None else min(s["start_s"], lo)
            s["end_s"] = hi if s["end_s"] is None else max(s["end_s"], hi)
        for s in out.values():
            s["labels"] = sorted(set(s["labels"]))
        return sorted(out.values(), key=lambda s: (s["task"], s["task_key"]))

    def counts(self, query: str | None, video_id: str | None, limit: int) -> list[dict]:
        """Counts rows whose query contains ``query`` (any case), optionally of one video."""
        parts = [f"video_id = '{video_id}'"] if video_id else []
        if query:
            parts.append("strpos(lower(query), '" + query.lower().replace("'", "''") + "') > 0")
        q = self.counts_table.search()
        if parts:
            q = q.where(" AND ".join(parts))
        rows = q.limit(limit).to_arrow().to_pylist()
        return [{**r, "uri": (self.media(r["video_id"]) or {}).get("uri"),
                 "media": "set" if r["video_id"] in self.sets else "video"} for r in rows]


def set_hit(row: dict, start_s: float, end_s: float) -> dict:
    """What a hit on an image set carries: the set's kind, label, first and last capture, and its images
    in set order, each with ``in_hit``: whether the hit's time range covers it."""
    images = [{**image, "in_hit": start_s <= image["t"] <= end_s} for image in D.set_images(row)]
    return {"kind": row["kind"], "label": row["label"], "start_local": row["start_local"],
            "end_local": row["end_local"], "images": images}


def _scores(table: pa.Table) -> list[float]:
    """A retriever's scores, higher is better: BM25 (``_score``) or cosine similarity (1 - ``_distance``)."""
    if "_score" in table.column_names:
        return [float(v) for v in table["_score"].to_pylist()]
    return [1.0 - float(d) for d in table["_distance"].to_pylist()]


def _hit_columns(ds: Any) -> tuple[np.ndarray, pa.Table]:
    """Every row's hit columns, in row-id order, with their sorted row ids: the low-cardinality strings
    dictionary-encoded. A hit's columns are then an in-memory take instead of a read by row id (memory
    and load time per million rows: docs/search.md)."""
    table = ds.to_table(columns=HIT_COLUMNS, with_row_id=True)
    ids = table["_rowid"].to_numpy().astype(np.uint64)
    order = None if np.all(ids[1:] > ids[:-1]) else np.argsort(ids, kind="stable")  # a scan is in id order
    columns = {}
    for name in HIT_COLUMNS:
        col = table[name].combine_chunks()
        if name != "text" and pa.types.is_string(col.type):
            col = col.dictionary_encode()
        columns[name] = col if order is None else col.take(pa.array(order))
    return (ids if order is None else ids[order]), pa.table(columns)


class QueryBatcher:
    """Embeds concurrent single queries together: callers block on a future while one worker thread
    embeds everything that queued up meanwhile as one batch (no waiting when only one query is in flight).
    On a few CPU cores this keeps one model call running at a time instead of many competing ones."""

    def __init__(self, embedder: Embedder, max_batch: int = 64):
        self.embedder, self.max_batch = embedder, max_batch
        self._queue: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def embed_query(self, text: str) -> np.ndarray:
        future: Future = Future()
        self._queue.put((text, future))
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="vidlake-query-embed", daemon=True)
                self._worker.start()
        return future.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                vectors = self.embedder.embed([text for text, _ in batch])
            except BaseException as exc:  # the callers get the error, the worker keeps serving
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors):
                future.set_result(vector)
