"""The per-video merge: one timeline per (video, task) from the outputs of its overlapping windows.

Pure functions over row dicts (absolute video times already applied); ``merge_windows`` is the entry.

Ownership: consecutive windows overlap; every instant of the video is *owned* by one window, the
one whose own span it falls in, with overlaps split at their midpoint. A caption, point or track
sample is kept only by the window that owns its time (a caption by its midpoint), so overlapping
windows never produce duplicates.

Track ids: each window numbers objects from 1. Ids are joined across windows by matching the
positions of tracks in the overlap both windows saw; an object with no evidence in the overlap (it was
away) is re-identified by its appearance when an earlier object looks like it, else gets a fresh id.
``id_scope`` says which: ``"video"`` (followed by position), ``"appearance"`` (joined across a gap by
its looks), ``"window"`` (not confirmed beyond its window).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

REID_DISTANCE = 0.25  # appearance distance under which an object that came back is the same object

__all__ = ["Span", "keep_owned", "link_track_ids", "merge_windows", "owned_spans"]


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
    per_window: list[list[dict]], windows: list[tuple[float, float]], looks: list[dict[int, list[float]]] | None = None,
    max_dist: float = 0.15, max_dt: float = 0.75, max_look: float = REID_DISTANCE,
) -> list[dict]:
    """Renumber per-window object ids into video-wide ids (rows need t, object_id, x_norm, y_norm).

    Window k+1's object j takes the id of window k's object i when, in the overlap of the two
    windows, their normalized positions at matching times (within ``max_dt``) are closer than
    ``max_dist`` on average; pairs are matched greedily, closest first. An object still without an id
    is re-identified by how it looks (``looks``: per window, local id -> appearance vector, see
    operators/appearance.py): it takes the id of the earlier object that looks most like it, among
    those last seen before it first appears, when their appearance distance is at most ``max_look``
    (between look-alikes the closest wins: the count is right either way, the id may be the twin's).
    Every id is unique in the video. ``id_scope`` is ``"video"`` when the object was followed across
    window boundaries by position (or the video is one window), ``"appearance"`` when it was joined
    across a gap by how it looks at least once, ``"window"`` when its identity could not be confirmed
    beyond its window.
    """
    out: list[dict] = []
    prev_map: dict[int, int] = {}  # local id in the previous window -> video-wide id
    prev_rows: list[dict] = []
    linked: set[int] = set()
    looked: set[int] = set()  # ids joined by appearance
    seen: dict[int, _Seen] = {}  # video-wide id -> when it was last seen and how it looked
    for k, rows in enumerate(per_window):
        mapping: dict[int, int] = {}
        if k > 0:
            overlap = (windows[k][0], windows[k - 1][1])
            for local, prev_local in _match(rows, prev_rows, overlap, max_dist, max_dt):
                mapping[local] = prev_map[prev_local]
                linked.add(mapping[local])
        look = (looks[k] if looks and k < len(looks) else None) or {}
        firsts: dict[int, float] = {}
        for r in rows:
            if r["object_id"] is not None:
                firsts[r["object_id"]] = min(firsts.get(r["object_id"], r["t"]), r["t"])
        for local, vid in _reidentify(firsts, look, mapping, seen, max_look):
            mapping[local] = vid
            looked.add(vid)
        for local in sorted(firsts):
            if local not in mapping:
                mapping[local] = len(seen) + 1
                seen[mapping[local]] = _Seen()
        for r in rows:
            if r["object_id"] is not None:
                seen[mapping[r["object_id"]]].saw(r["t"])
        for local, vector in look.items():
            if local in mapping:
                seen[mapping[local]].looked(vector)
        out.extend({**r, "object_id": mapping.get(r["object_id"])} for r in rows)
        prev_map, prev_rows = mapping, rows
    single = len(per_window) <= 1
    for r in out:
        oid = r["object_id"]
        r["id_scope"] = "appearance" if oid in looked else "video" if single or oid in linked else "window"
    return out


@dataclass
class _Seen:
    """A video-wide id so far: when it was last seen, and the mean of its windows' appearance vectors."""

    last_t: float = float("-inf")
    look: Any = None  # the mean vector (numpy), None before any
    looks: int = 0

    def saw(self, t: float) -> None:
        self.last_t = max(self.last_t, t)

    def looked(self, vector: list[float]) -> None:
        import numpy as np

        self.looks += 1
        v = np.asarray(vector, dtype=np.float64)
        self.look = v if self.look is None else self.look + (v - self.look) / self.looks


def _reidentify(firsts: dict[int, float], look: dict[int, list[float]], mapping: dict[int, int],
                seen: dict[int, _Seen], max_look: float) -> list[tuple[int, int]]:
    """(local id, earlier video-wide id) for the window's unlinked objects that look like an object last
    seen before they first appear; the closest pairs first, each earlier id once."""
    from vidlake.operators.appearance import appearance_distance

    taken = set(mapping.values())
    options = []
    for local, first in firsts.items():
        if local in mapping or local not in look:
            continue
        for vid, s in seen.items():
            if vid not in taken and s.look is not None and s.last_t < first - 1e-6:
                d = appearance_distance(look[local], s.look)
                if d <= max_look:
                    options.append((d, local, vid))
    return _one_to_one(options)


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
    return _one_to_one(candidates)


def _one_to_one(candidates: list[tuple[float, int, int]]) -> list[tuple[int, int]]:
    """(a, b) pairs from (distance, a, b) candidates, closest first, each a and each b at most once."""
    pairs, used_a, used_b = [], set(), set()
    for _, a, b in sorted(candidates):
        if a not in used_a and b not in used_b:
            pairs.append((a, b))
            used_a.add(a)
            used_b.add(b)
    return pairs


def _by_id(rows: list[dict]) -> dict[int, list[dict]]:
    groups: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        if r["object_id"] is not None and r.get("x_norm") is not None:
            groups[r["object_id"]].append(r)
    return groups


def merge_windows(rows: list[dict], run_id: str, now: datetime) -> dict[str, list[dict]]:
    """Lake rows by table for one complete (video, task_key) from its windows' parsed outputs (sorted by
    start): windows, outputs (raw text), errors, and the owned captions, answers, points, tracks and
    counts, with point and track ids joined across windows. The job's writer and ``vidlake ask`` both
    call this, so the two can never disagree."""
    first = rows[0]
    base = {"video_id": first["video_id"], "task": first["task"], "task_key": first["task_key"], "run_id": run_id}
    spans = owned_spans([(r["start_s"], r["end_s"]) for r in rows])
    out: dict[str, list[dict]] = defaultdict(list)
    grounded: list[list[dict]] = []
    for i, (r, span) in enumerate(zip(rows, spans)):
        last = i == len(rows) - 1
        win = {**base, "window_id": r["window_id"]}
        out["windows"].append(_window_row(r, run_id))
        out["outputs"].append({
            **win, "query": r.get("query"), "prompt": r.get("prompt"), "raw_text": r.get("raw_text"),
            "parse_status": r.get("parse_status") if r["status"] == "ok" else "error",
            "prompt_tokens": r.get("prompt_tokens"), "generated_tokens": r.get("generated_tokens"),
            "model_id": r.get("model_id"), "model_revision": r.get("model_revision"),
        })
        if r["status"] != "ok":
            out["errors"].append({
                "uri": r.get("uri"), "video_id": r["video_id"], "stage": r.get("error_stage") or "unknown",
                "task_key": first["task_key"], "window_id": r["window_id"],
                "error_kind": r.get("error_kind") or "failed", "message": r.get("error"), "run_id": run_id, "at": now,
            })
            grounded.append([])
            continue
        if first["task"] == "caption":
            captions = [{**win, **c} for c in r.get("captions") or () if c.get("text")]
            out["captions"].extend(keep_owned(captions, span, last, caption_midpoint))
        elif first["task"] in ("qa", "anomaly"):
            out["answers"].append({**win, "question": r.get("query") or r.get("prompt"), "start_s": r["start_s"],
                                   "end_s": r["end_s"], "text": r.get("answer")})
        grounded.append([_sample(p, r) for p in (*(r.get("points") or ()), *(r.get("tracks") or ()))])
    if any(grounded):
        # join ids on everything each window saw (the overlaps are the evidence), then keep owned samples
        looks = [{a["object_id"]: a["vector"] for a in r.get("appearance") or ()} for r in rows]
        linked = link_track_ids(grounded, [_seen_span(r) for r in rows], looks)
        owner = {r["window_id"]: (span, i == len(rows) - 1) for i, (r, span) in enumerate(zip(rows, spans))}
        table = "tracks" if first["task"] == "track" else "points"
        for s in linked:
            span, last = owner[s["window_id"]]
            if not span.contains(s["t"], last):
                continue
            row = {**base, "window_id": s.pop("window_id"), **s}
            if table == "points":
                row.pop("id_scope"), row.pop("box")
            out[table].append(row)
    if first["task"] == "count":
        out["counts"].append(_count_row(base, rows, grounded, out.get("points", [])))
    return out


def _seen_span(r: dict) -> tuple[float, float]:
    """The window's span widened to the frames it sampled: a frame's PTS can fall just before the planned
    start (the frame on screen at that instant), and the overlap two windows share is where their frames are."""
    times = [float(t) for t in r.get("timestamps_s") or ()]
    return min([r["start_s"], *times]), max([r["end_s"], *times])


def _window_row(r: dict, run_id: str) -> dict:
    return {
        "window_id": r["window_id"], "video_id": r["video_id"], "kind": r.get("kind"),
        "window_index": r.get("window_index"), "start_s": r["start_s"], "end_s": r["end_s"],
        "timestamps_s": r.get("timestamps_s"), "sampling_json": r.get("sampling_json"), "decoder": r.get("decoder"),
        "partial": r.get("partial"), "partial_reason": r.get("partial_reason"), "run_id": run_id,
    }


def _sample(p: dict, r: dict) -> dict:
    """A point or track sample as a lake row part; a timeless point is put at its window's start."""
    return {"window_id": r["window_id"], "query": r.get("query"), "label": p.get("label"),
            "t": p["t"] if p.get("t") is not None else r["start_s"], "object_id": p.get("object_id"),
            "x": p.get("x"), "y": p.get("y"), "x_norm": p.get("x_norm"), "y_norm": p.get("y_norm"),
            "box": list(p["box"]) if p.get("box") is not None else None, "image_id": p.get("image_id")}


def _count_row(base: dict, rows: list[dict], grounded: list[list[dict]], points: list[dict]) -> dict:
    """Count = distinct objects pointed at across the video (ids joined across windows: ``method``
    ``distinct_ids``); for an image set, the most objects pointed at in any one of its images
    (``max_per_image``: the camera-trap count of a burst, since a pointing answer numbers every point
    anew, an animal in three photos is three ids); without points, the counts the answers state, summed
    over windows (``stated``)."""
    firsts: dict[int, float] = {}
    for p in points:
        firsts[p["object_id"]] = min(firsts.get(p["object_id"], p["t"]), p["t"])
    method = None
    if firsts and rows[0].get("kind") == "set":
        per_image: dict[str | None, set[int]] = defaultdict(set)
        for p in points:
            per_image[p.get("image_id")].add(p["object_id"])
        count, method = max(len(ids) for ids in per_image.values()), "max_per_image"
    elif firsts:
        count, method = len(firsts), "distinct_ids"
    else:
        stated = [r.get("count") for r in rows if r["status"] == "ok"]
        count = sum(c for c in stated if c is not None) if any(c is not None for c in stated) else None
        method = "stated" if count is not None else None
    return {**base, "window_id": None, "query": rows[0].get("query"), "count": count, "method": method,
            "event_times_s": sorted(firsts.values())}
