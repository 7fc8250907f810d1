"""Pure search logic: query terms, highlighting, rank fusion, time-range math, evidence joining.

Nothing here touches LanceDB, Ray or HTTP; ``search.py`` feeds it rows and tests call it directly.
A hit is a time range of one video (or image set: seconds after its first capture), ``[start_s, end_s]``
in seconds; its evidence is every point and track sample of that video with ``start_s <= t <= end_s``.
"""

from __future__ import annotations

import html
import re
import threading
from collections import defaultdict
from functools import lru_cache
from typing import Hashable, Iterable, Sequence

import snowballstemmer

__all__ = [
    "filter_clause", "fuse_rrf", "highlight", "join_evidence", "overlaps", "query_terms", "samples_clause", "stem",
]

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be by for from has he her his in into is it its of on or she that the their them then "
    "there these they this to was were will with".split()
)
_HEX = re.compile(r"^[0-9a-f]+$")


_ENGLISH = snowballstemmer.stemmer("english")
_ENGLISH_LOCK = threading.Lock()  # a stemmer object keeps per-word state: one word at a time


@lru_cache(maxsize=65536)  # highlighting stems every word of every hit; the vocabulary repeats
def stem(word: str) -> str:
    """The English Snowball (Porter2) stem of ``word``, lower case: the stemmer of LanceDB's full-text
    index, so what BM25 matched is what gets marked (drops, dropped, dropping -> drop)."""
    with _ENGLISH_LOCK:
        return _ENGLISH.stemWord(word.lower())


def query_terms(text: str) -> list[str]:
    """Distinct stems of the query's words, stopwords dropped (all words when all are stopwords)."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(stem(w) for w in kept))


def highlight(text: str, terms: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """``text`` HTML-escaped with ``<mark>`` around words matching ``terms``, and the matched spans."""
    wanted = set(terms)
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text) if stem(m.group()) in wanted]
    out, pos = [], 0
    for start, end in spans:
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out), spans


def fuse_rrf(rankings: Iterable[Sequence[Hashable]], k: int = 60) -> list[tuple[Hashable, float]]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank), rank from 1. Best first.

    Ties keep the order in which documents were first seen (earlier rankings first).
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    order = {doc: i for i, doc in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def overlaps(start: float, end: float, t_from: float | None, t_to: float | None) -> bool:
    """Whether ``[start, end]`` meets the closed window ``[t_from, t_to]`` (open sides unbounded)."""
    return (t_from is None or end >= t_from) and (t_to is None or start <= t_to)


def _literal(value: str) -> str:
    if not _HEX.match(value) and not re.match(r"^[a-z_]+$", value):
        raise ValueError(f"refusing to put {value!r} into a filter")
    return f"'{value}'"


def filter_clause(video_id: str | None = None, task: str | None = None, task_key: str | None = None,
                  t_from: float | None = None, t_to: float | None = None, sources: Sequence[str] = ()) -> str | None:
    """SQL filter over ``segments`` for the given filters (values must be validated ids or slugs)."""
    parts = []
    if video_id is not None:
        parts.append(f"video_id = {_literal(video_id)}")
    if task is not None:
        parts.append(f"task = {_literal(task)}")
    if task_key is not None:
        parts.append(f"task_key = {_literal(task_key)}")
    if t_from is not None:
        parts.append(f"end_s >= {float(t_from)!r}")
    if t_to is not None:
        parts.append(f"start_s <= {float(t_to)!r}")
    if sources:
        parts.append("source IN (" + ", ".join(_literal(s) for s in sources) + ")")
    return " AND ".join(parts) or None


def samples_clause(ranges: Iterable[tuple[str, float, float]]) -> str | None:
    """SQL filter over ``evidence`` for samples inside any of the (video_id, start_s, end_s) ranges."""
    by_video: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for video, start, end in ranges:
        by_video[video].append((start, end))
    parts = []
    for video, spans in by_video.items():
        times = " OR ".join(f"(t >= {float(s)!r} AND t <= {float(e)!r})" for s, e in _merge(spans))
        parts.append(f"(video_id = {_literal(video)} AND ({times}))")
    return " OR ".join(parts) or None


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def join_evidence(hits: Sequence[dict], samples: Sequence[dict], max_points: int = 50, max_boxes: int = 20) -> list[dict]:
    """Evidence of each hit: its video's samples with ``start_s <= t <= end_s``.

    Returns one dict per hit: ``points`` (point samples, time order, at most ``max_points``), ``tracks``
    (one entry per (task_key, object_id) with label, first/last t, sample count and up to ``max_boxes``
    boxes), ``truncated`` (whether points or boxes were cut).
    """
    by_video: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        by_video[s["video_id"]].append(s)
    for rows in by_video.values():
        rows.sort(key=lambda s: (s["t"], s.get("object_id") or 0))
    out = []
    for hit in hits:
        inside = [s for s in by_video.get(hit["video_id"], ()) if hit["start_s"] <= s["t"] <= hit["end_s"]]
        points = [_point(s) for s in inside if s["source"] == "points"]
        tracks: dict[tuple, dict] = {}
        truncated = len(points) > max_points
        for s in inside:
            if s["source"] != "tracks":
                continue
            tr = tracks.setdefault((s["task_key"], s["object_id"]), {
                "object_id": s["object_id"], "label": s["label"], "task_key": s["task_key"],
                "t_first": s["t"], "t_last": s["t"], "samples": 0, "boxes": []})
            tr["t_last"], tr["samples"] = s["t"], tr["samples"] + 1
            if len(tr["boxes"]) < max_boxes:
                tr["boxes"].append(_point(s))
            else:
                truncated = True
        out.append({"points": points[:max_points], "tracks": list(tracks.values()), "truncated": truncated})
    return out


def _point(s: dict) -> dict:
    keys = ("t", "x", "y", "x_norm", "y_norm", "label", "object_id", "task_key", "box", "image_id")
    return {k: s.get(k) for k in keys}
