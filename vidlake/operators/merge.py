"""MergeWindows: one timeline per (video, task) from the outputs of its overlapping windows.

Pure functions over lake-shaped row dicts (absolute video times already applied).

Ownership: consecutive windows overlap; every instant of the video is *owned* by one window, the
one whose own span it falls in, with overlaps split at their midpoint. A caption, point or track
sample is kept only by the window that owns its time (a caption by its midpoint), so overlapping
windows never produce duplicates.

Track ids: each window numbers objects from 1. Ids are joined across windows by matching the
positions of tracks in the overlap both windows saw; an object with no evidence in the overlap gets
a fresh id, and rows whose id could not be confirmed across a window boundary say
``id_scope = "window"`` (``"video"`` when the id is consistent for the whole video).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

__all__ = ["Span", "link_track_ids", "owned_spans", "keep_owned"]


@dataclass(frozen=True)
class Span:
    start_s: float
    end_s: float

    def contains(self, t: float, last: bool) -> bool:
        return self.start_s <= t < self.end_s or (last and self.start_s <= t <= self.end_s + 1e-6)


def owned_spans(windows: list[tuple[float, float]]) -> list[Span]:
    """The part of the video each window (sorted by start) owns: overlaps split at their midpoint."""
    spans = []
    for i, (start, end) in enumerate(windows):
        lo = start if i == 0 else (start + windows[i - 1][1]) / 2 if windows[i - 1][1] > start else start
        hi = end if i == len(windows) - 1 else (windows[i + 1][0] + end) / 2 if end > windows[i + 1][0] else end
        spans.append(Span(0.0 if i == 0 else lo, hi))
    return spans


def keep_owned(rows: list[dict], span: Span, last: bool, time_of=lambda r: r["t"]) -> list[dict]:
    """Rows of one window whose time falls in the span that window owns."""
    return [r for r in rows if time_of(r) is not None and span.contains(time_of(r), last)]


def caption_midpoint(row: dict) -> float:
    return (row["start_s"] + row["end_s"]) / 2


def link_track_ids(
    per_window: list[list[dict]], windows: list[tuple[float, float]], max_dist: float = 0.15, max_dt: float = 0.75
) -> list[dict]:
    """Renumber per-window object ids into video-wide ids (rows need t, object_id, x_norm, y_norm).

    Window k+1's object j takes the id of window k's object i when, in the overlap of the two
    windows, their normalized positions at matching times (within ``max_dt``) are closer than
    ``max_dist`` on average; pairs are matched greedily, closest first. Every id is unique in the
    video. ``id_scope`` is ``"video"`` when the object was followed across a window boundary or the
    video is one window, ``"window"`` when its identity could not be confirmed beyond its window.
    """
    out: list[dict] = []
    next_id = 1
    prev_map: dict[int, int] = {}  # local id in the previous window -> video-wide id
    prev_rows: list[dict] = []
    linked: set[int] = set()
    for k, rows in enumerate(per_window):
        mapping: dict[int, int] = {}
        if k > 0:
            overlap = (windows[k][0], windows[k - 1][1])
            for local, prev_local in _match(rows, prev_rows, overlap, max_dist, max_dt):
                mapping[local] = prev_map[prev_local]
                linked.add(mapping[local])
        for local in sorted({r["object_id"] for r in rows if r["object_id"] is not None}):
            if local not in mapping:
                mapping[local], next_id = next_id, next_id + 1
        out.extend({**r, "object_id": mapping.get(r["object_id"])} for r in rows)
        prev_map, prev_rows = mapping, rows
    single = len(per_window) <= 1
    for r in out:
        r["id_scope"] = "video" if single or r["object_id"] in linked else "window"
    return out


def _match(rows, prev_rows, overlap, max_dist, max_dt) -> list[tuple[int, int]]:
    lo, hi = overlap
    if hi <= lo:
        return []
    cur = _by_id([r for r in rows if lo - 1e-6 <= r["t"] <= hi + 1e-6])
    old = _by_id([r for r in prev_rows if lo - 1e-6 <= r["t"] <= hi + 1e-6])
    candidates = []
    for j, pts in cur.items():
        for i, prev_pts in old.items():
            dists = []
            for p in pts:
                q = min(prev_pts, key=lambda q: abs(q["t"] - p["t"]))
                if abs(q["t"] - p["t"]) <= max_dt:
                    dists.append(((p["x_norm"] - q["x_norm"]) ** 2 + (p["y_norm"] - q["y_norm"]) ** 2) ** 0.5)
            if dists and sum(dists) / len(dists) <= max_dist:
                candidates.append((sum(dists) / len(dists), j, i))
    pairs, used_j, used_i = [], set(), set()
    for _, j, i in sorted(candidates):
        if j not in used_j and i not in used_i:
            pairs.append((j, i))
            used_j.add(j)
            used_i.add(i)
    return pairs


def _by_id(rows: list[dict]) -> dict[int, list[dict]]:
    groups: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        if r["object_id"] is not None and r.get("x_norm") is not None:
            groups[r["object_id"]].append(r)
    return groups
