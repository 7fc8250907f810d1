"""Lake rows -> search-index rows. Pure functions over Arrow tables (no LanceDB, no Ray).

The index holds five tables (see docs/search.md):

* ``segments``: what is searched. One row per caption, per answer (question and answer text), and
  per (video, task_key, label) of points/tracks, whose time range spans the label's first to last
  sample. ``doc_id`` is a stable hash of the lake row's key, ``text_hash`` lets an update reuse
  vectors of unchanged text.
* ``evidence``: points and track samples (t, x, y, box, object id), joined to hits by time range.
* ``counts``: the lake's counts rows. ``videos``: one row per video with its first URI.
* ``sets``: one row per image set: its images (ids, paths, times after the first capture, upright sizes).

An image set's outputs sit in the lake under ``video_id`` = its ``set_id``, with times in seconds after
its first capture, so its captions, answers and labels become segments and evidence as a video's do.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "COUNTS", "EVIDENCE", "SEGMENTS", "SETS", "VIDEOS", "answer_docs", "caption_docs", "count_rows", "doc_id",
    "evidence_rows", "label_docs", "nearest_image", "segments_schema", "set_images", "set_rows", "text_hash",
    "video_rows",
]

SEGMENTS = "segments"
EVIDENCE = "evidence"
COUNTS = "counts"
VIDEOS = "videos"
SETS = "sets"

_SEGMENT_FIELDS = [
    pa.field("doc_id", pa.string()),
    pa.field("source", pa.string()),  # captions | answers | points | tracks
    pa.field("video_id", pa.string()),
    pa.field("task", pa.string()),
    pa.field("task_key", pa.string()),
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("text", pa.string()),
    pa.field("question", pa.string()),
    pa.field("label", pa.string()),
    pa.field("object_ids", pa.list_(pa.int32())),
    pa.field("text_hash", pa.string()),
]

EVIDENCE_SCHEMA = pa.schema([
    pa.field("source", pa.string()),  # points | tracks
    pa.field("video_id", pa.string()),
    pa.field("task", pa.string()),
    pa.field("task_key", pa.string()),
    pa.field("label", pa.string()),
    pa.field("object_id", pa.int32()),
    pa.field("t", pa.float64()),
    pa.field("x", pa.float64()),
    pa.field("y", pa.float64()),
    pa.field("x_norm", pa.float64()),
    pa.field("y_norm", pa.float64()),
    pa.field("box", pa.list_(pa.float64())),
    pa.field("image_id", pa.string()),  # image sets: the image the sample is on (x, y are its pixels)
])

COUNTS_SCHEMA = pa.schema([
    pa.field("video_id", pa.string()),
    pa.field("task", pa.string()),
    pa.field("task_key", pa.string()),
    pa.field("query", pa.string()),
    pa.field("count", pa.int32()),
    pa.field("event_times_s", pa.list_(pa.float64())),
    pa.field("method", pa.string()),  # distinct_ids | max_per_image | stated
])

VIDEOS_SCHEMA = pa.schema([
    pa.field("video_id", pa.string()),
    pa.field("uri", pa.string()),
    pa.field("uris", pa.list_(pa.string())),
    pa.field("duration_s", pa.float64()),
    pa.field("fps", pa.float64()),
    pa.field("frames", pa.int64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("rotation", pa.int32()),
    pa.field("codec", pa.string()),
])

SETS_SCHEMA = pa.schema([
    pa.field("set_id", pa.string()),
    pa.field("kind", pa.string()),  # burst | timelapse | manifest
    pa.field("label", pa.string()),
    pa.field("folder", pa.string()),
    pa.field("uri", pa.string()),  # the first image's path
    pa.field("start_local", pa.timestamp("us")),  # first and last capture, wall-clock
    pa.field("end_local", pa.timestamp("us")),
    pa.field("duration_s", pa.float64()),  # the last image's time
    pa.field("image_ids", pa.list_(pa.string())),  # in set order, as the lake's sets row
    pa.field("image_uris", pa.list_(pa.string())),
    pa.field("image_times_s", pa.list_(pa.float64())),  # seconds after the first capture
    pa.field("image_widths", pa.list_(pa.int32())),  # upright
    pa.field("image_heights", pa.list_(pa.int32())),
])


def segments_schema(dim: int) -> pa.Schema:
    return pa.schema(_SEGMENT_FIELDS + [pa.field("vector", pa.list_(pa.float32(), dim))])


def doc_id(*key: object) -> str:
    return hashlib.blake2b("\x1f".join("" if k is None else str(k) for k in key).encode(), digest_size=10).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _col(t: pa.Table, name: str) -> list:
    return t[name].to_pylist()


def _segments(rows: dict[str, list]) -> pa.Table:
    n = len(rows["doc_id"])
    rows["text_hash"] = [text_hash(t) for t in rows["text"]]
    cols = {f.name: rows.get(f.name, [None] * n) for f in _SEGMENT_FIELDS}
    return pa.table(cols, schema=pa.schema(_SEGMENT_FIELDS))


def caption_docs(captions: pa.Table) -> pa.Table:
    """One segment per caption with text; key (video_id, task_key, start_s, end_s)."""
    t = captions.filter(pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(captions["text"])), 0), False))
    vid, key, start, end = _col(t, "video_id"), _col(t, "task_key"), _col(t, "start_s"), _col(t, "end_s")
    return _segments({
        "doc_id": [doc_id("captions", v, k, s, e) for v, k, s, e in zip(vid, key, start, end)],
        "source": ["captions"] * t.num_rows, "video_id": vid, "task": _col(t, "task"), "task_key": key,
        "start_s": [s or 0.0 for s in start], "end_s": [e if e is not None else (s or 0.0) for s, e in zip(start, end)],
        "text": [x.strip() for x in _col(t, "text")],
    })


def answer_docs(answers: pa.Table, durations: dict[str, float]) -> pa.Table:
    """One segment per answer; searched text is question and answer. No span: the whole video."""
    out: dict[str, list] = {k: [] for k in ("doc_id", "source", "video_id", "task", "task_key", "start_s", "end_s",
                                            "text", "question")}
    for r in answers.to_pylist():
        answer = (r["text"] or "").strip()
        if not answer:
            continue
        question = (r["question"] or "").strip() or None
        start = r["start_s"] if r["start_s"] is not None else 0.0
        end = r["end_s"] if r["end_s"] is not None else max(start, durations.get(r["video_id"]) or 0.0)
        out["doc_id"].append(doc_id("answers", r["video_id"], r["task_key"], r["question"], r["window_id"]))
        out["source"].append("answers")
        for k in ("video_id", "task", "task_key"):
            out[k].append(r[k])
        out["start_s"].append(start)
        out["end_s"].append(end)
        out["text"].append(f"{question} — {answer}" if question else answer)
        out["question"].append(question)
    return _segments(out)


def label_docs(samples: pa.Table, source: str) -> pa.Table:
    """One segment per (video, task_key, label) of points or tracks, spanning its first..last sample."""
    groups: dict[tuple, dict] = {}
    for r in samples.select(["video_id", "task", "task_key", "label", "query", "t", "object_id"]).to_pylist():
        label = (r["label"] or r["query"] or "").strip()
        if not label or r["t"] is None:
            continue
        g = groups.setdefault((r["video_id"], r["task_key"], label), {"task": r["task"], "query": r["query"],
                                                                      "t0": r["t"], "t1": r["t"], "ids": set()})
        g["t0"], g["t1"] = min(g["t0"], r["t"]), max(g["t1"], r["t"])
        if r["object_id"] is not None:
            g["ids"].add(r["object_id"])
    out: dict[str, list] = {k: [] for k in ("doc_id", "source", "video_id", "task", "task_key", "start_s", "end_s",
                                            "text", "label", "object_ids")}
    for (video, key, label), g in sorted(groups.items()):
        query = (g["query"] or "").strip()
        if _bare(query) == _bare(label):
            query = ""
        out["doc_id"].append(doc_id(source, video, key, label))
        out["source"].append(source)
        out["video_id"].append(video)
        out["task"].append(g["task"])
        out["task_key"].append(key)
        out["start_s"].append(g["t0"])
        out["end_s"].append(g["t1"])
        out["text"].append(f"{label} ({query})" if query else label)
        out["label"].append(label)
        out["object_ids"].append(sorted(g["ids"]))
    return _segments(out)


def _bare(phrase: str) -> str:
    words = phrase.lower().split()
    return " ".join(words[1:] if words and words[0] in ("the", "a", "an") else words)


def evidence_rows(samples: pa.Table, source: str) -> pa.Table:
    """Points or track samples as ``evidence`` rows (label falls back to the query)."""
    label = pc.coalesce(samples["label"], samples["query"])
    box = samples["box"] if "box" in samples.column_names else pa.nulls(samples.num_rows, pa.list_(pa.float64()))
    cols = {name: samples[name] for name in ("video_id", "task", "task_key", "object_id", "t", "x", "y",
                                              "x_norm", "y_norm", "image_id")}
    table = pa.table({"source": pa.array([source] * samples.num_rows, pa.string()), **cols, "label": label,
                      "box": box.cast(pa.list_(pa.float64()))})
    table = table.filter(pc.is_valid(table["t"]))
    return table.select(EVIDENCE_SCHEMA.names).cast(EVIDENCE_SCHEMA)


def count_rows(counts: pa.Table) -> pa.Table:
    return counts.select(COUNTS_SCHEMA.names).cast(COUNTS_SCHEMA)


def video_rows(videos: pa.Table) -> pa.Table:
    # a video whose files all changed or went away keeps its row with no path: its uri is null
    first = pa.array([u[0] if u else None for u in videos["uris"].to_pylist()], pa.string())
    table = videos.select([n for n in VIDEOS_SCHEMA.names if n != "uri"]).append_column("uri", first)
    return table.select(VIDEOS_SCHEMA.names).cast(VIDEOS_SCHEMA)


def set_rows(sets: pa.Table, items: list[dict]) -> pa.Table:
    """One ``sets`` row per lake ``sets`` row that has its facts in ``items`` (``jobs.image_sets.set_items``:
    the times and upright sizes of its images, computed once for the job and the index alike)."""
    facts = {i["video_id"]: i for i in items}
    rows = []
    for s in sets.to_pylist():
        item = facts.get(s["set_id"])
        if item is None:
            continue
        rows.append({
            "set_id": s["set_id"], "kind": s["kind"], "label": s["label"], "folder": s["folder"],
            "uri": item["set_uris"][0], "start_local": s["start_local"], "end_local": s["end_local"],
            "duration_s": item["duration_s"], "image_ids": item["set_image_ids"], "image_uris": item["set_uris"],
            "image_times_s": item["set_times_s"], "image_widths": [w for w, _ in item["set_sizes"]],
            "image_heights": [h for _, h in item["set_sizes"]],
        })
    return pa.Table.from_pylist(rows, schema=SETS_SCHEMA)


def set_images(row: dict) -> list[dict]:
    """The images of a ``sets`` row in set order: ``image_id``, ``uri``, ``t`` (seconds after the first
    capture), ``captured_local`` (the set's first capture plus ``t``: its wall-clock time), upright
    ``width`` and ``height``."""
    start = row["start_local"]
    return [{"image_id": i, "uri": u, "t": t, "captured_local": start + timedelta(seconds=t) if start else None,
             "width": w, "height": h}
            for i, u, t, w, h in zip(row["image_ids"], row["image_uris"], row["image_times_s"], row["image_widths"],
                                     row["image_heights"])]


def nearest_image(row: dict, t: float) -> int:
    """The position in the set of the image whose time is nearest ``t`` (the first of equal ones)."""
    times = row["image_times_s"]
    return min(range(len(times)), key=lambda i: abs(times[i] - t))


def pairs_of(tables: Iterable[pa.Table]) -> set[tuple[str, str]]:
    """Distinct (video_id, task_key) pairs in ``tables``."""
    out: set[tuple[str, str]] = set()
    for t in tables:
        if t.num_rows:
            uniq = t.select(["video_id", "task_key"]).group_by(["video_id", "task_key"]).aggregate([])
            out.update(zip(uniq["video_id"].to_pylist(), uniq["task_key"].to_pylist()))
    return out
