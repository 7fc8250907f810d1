"""Lake rows against ground truth, per task: what ``vidlake eval`` (vidlake/jobs/eval.py) computes.

Videos are matched by content, then file name (``match_videos``); the lake rows of the matched videos are
read once (``LakeRows``); truth with per-frame positions and ids is cut to the job's sampled timestamps
(``on_sampled``) before each task's rows are scored with vidlake.evaluation.metrics; every number becomes
one ``evals`` row (``metric_rows``).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import defaultdict
from typing import Any

from vidlake.errors import ConfigError
from vidlake.evaluation import metrics as M
from vidlake.evaluation.formats import Truth, video_hashes
from vidlake.evaluation.world import match_query
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake

__all__ = ["LakeRows", "count_rows", "match_videos", "matches", "point_rows", "search_rows", "track_rows",
           "truth_frames"]

_SAME_FRAME_S = 0.0015  # a truth time and a sampled PTS name one frame when this close (ms rounding)
_ENTER_S = 1.0  # a hit about "a red circle appears" is relevant when it overlaps the appearance +- this


def matches(query: str | None, label: str) -> bool:
    """Whether a truth object labelled ``label`` answers ``query``: the synthetic world's vocabulary, else the
    same words with plurals and case ignored ("Cars" answers "car")."""
    if not query:
        return False
    known = match_query(query, label)
    if known is not None:
        return known
    words = lambda s: [w.removesuffix("s") for w in s.lower().replace("the ", "").split()]  # noqa: E731
    return words(query) == words(label)


# ---------------------------------------------------------------------------------------------- matching


def match_videos(lake: Lake, truth: Truth, notes: list[str]) -> tuple[dict[str, dict], int]:
    """video_id -> {name (the truth's file name), width, height (upright), duration_s} for every video the
    truth names."""
    named = set()
    for table in (truth.counts, truth.points, truth.tracks, truth.events):
        if table is not None:
            named |= set(table.column("video").to_pylist())
    by_hash = video_hashes(truth.root, named)
    out = {}
    for v in lake.read("videos").to_pylist():
        name = by_hash.get(v["video_id"]) or next(
            (n for n in named for uri in v["uris"] if uri.rstrip("/").rsplit("/", 1)[-1] == n), None)
        if name is None:
            continue
        w, h = int(v["width"] or 0), int(v["height"] or 0)
        if int(v["rotation"] or 0) % 180 == 90:
            w, h = h, w
        out[v["video_id"]] = {"name": name, "width": w, "height": h, "duration_s": v["duration_s"] or 0.0}
    if not out:
        raise ConfigError(f"none of the {len(named)} videos of the truth in {truth.root} is in the lake (matched by "
                          "content, then by file name): ingest and run them first")
    if len(out) < len(named):
        notes.append(f"{len(named) - len(out)} of the truth's {len(named)} videos are not in the lake")
    return out, len(named)


class LakeRows:
    """The lake rows an evaluation reads, restricted to the matched videos (and ``run`` / ``task_key``)."""

    def __init__(self, lake: Lake, videos: dict[str, dict], run: str | None, task_key: str | None):
        def keep(r: dict) -> bool:
            return r["video_id"] in videos and (run is None or r["run_id"] == run) and (
                task_key is None or r["task_key"] == task_key)

        outputs = [o for o in lake.read("outputs").to_pylist() if keep(o)]
        self.task_keys = {o["task_key"]: (o["task"], o["model_id"], o["model_revision"]) for o in outputs}
        self.queries: dict[str, set[str]] = defaultdict(set)  # task_key -> the queries it asked
        for o in outputs:
            if o["query"]:
                self.queries[o["task_key"]].add(o["query"])
        seen_windows = defaultdict(set)  # (video, task_key) -> window ids the model answered
        for o in outputs:
            if o["parse_status"] != "error":
                seen_windows[(o["video_id"], o["task_key"])].add(o["window_id"])
        windows = {w["window_id"]: w for w in lake.read("windows").to_pylist() if w["video_id"] in videos}
        self.kinds: dict[str, str] = {}  # task_key -> the kind of window it ran on (slow | fast)
        for o in outputs:
            if o["window_id"] in windows:
                self.kinds.setdefault(o["task_key"], windows[o["window_id"]]["kind"] or "slow")
        self.sampled: dict[tuple[str, str], list[float]] = {
            k: sorted({t for w in ids if w in windows for t in windows[w]["timestamps_s"] or ()})
            for k, ids in seen_windows.items()}
        self.tables = {name: [r for r in lake.read(name).to_pylist() if keep(r)] if lake.exists(name) else []
                       for name in ("counts", "points", "tracks")}


def truth_frames(truth: Truth) -> dict[str, list[dict]] | None:
    """Per video, every truth position with an object id (points.csv with ids, else mot/ box centres)."""
    rows = []
    if truth.points is not None and truth.points.column("object_id").null_count < truth.points.num_rows:
        rows = [r for r in truth.points.to_pylist() if r["object_id"] is not None]
    elif truth.tracks is not None:
        labels = {}
        if truth.objects is not None:
            labels = {(o["video"], o["object_id"]): o["label"] for o in truth.objects.to_pylist()}
        rows = [{**r, "label": labels.get((r["video"], r["object_id"]), "")} for r in truth.tracks.to_pylist()]
    if not rows:
        return None
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        out[r["video"]].append(r)
    return out


def on_sampled(rows: list[dict], sampled: list[float]) -> list[dict]:
    """The truth rows whose time is one of the sampled frames (that frame's PTS put in ``t``)."""
    out = []
    for r in rows:
        i = bisect.bisect_left(sampled, r["time_s"] - _SAME_FRAME_S)
        if i < len(sampled) and abs(sampled[i] - r["time_s"]) <= _SAME_FRAME_S:
            out.append({**r, "t": sampled[i]})
    return out


# ---------------------------------------------------------------------------------------------- per task


def count_rows(data: LakeRows, key: str, truth: Truth, frames, videos, notes: list[str]) -> list[dict]:
    predicted = {(c["video_id"], c["query"]): c["count"] for c in data.tables["counts"] if c["task_key"] == key}
    durations = {v["name"]: v["duration_s"] for v in videos.values()}
    whole = {}  # the counts.csv rows about a whole video (no span, or 0 to its end)
    if truth.counts is not None:
        whole = {(c["video"], c["query"]): c["count"] for c in truth.counts.to_pylist()
                 if (c["start_s"] or 0.0) == 0.0 and (c["end_s"] is None or c["end_s"] >= durations.get(c["video"], 0) - 0.5)}
    queries = sorted({q for _, q in predicted})
    out, between = [], 0
    for query in with_all(queries):
        sampled_pairs, all_pairs = [], []
        for (video_id, q), count in sorted(predicted.items()):
            if query and q != query:
                continue
            name = videos[video_id]["name"]
            if frames is not None:
                seen = on_sampled([r for r in frames.get(name, ()) if matches(q, r["label"])],
                                   data.sampled.get((video_id, key), []))
                true = len({r["object_id"] for r in seen})
                sampled_pairs.append((count, true))
                ever = len({r["object_id"] for r in frames.get(name, ()) if matches(q, r["label"])})
                between += (ever - true) if query else 0
            if (name, q) in whole:
                all_pairs.append((count, whole[(name, q)]))
        out += metric_rows(query, "count", M.count_metrics(sampled_pairs)) if sampled_pairs else []
        out += metric_rows(query, "count", M.count_metrics(all_pairs), suffix="_all_frames") if all_pairs else []
    if frames is not None:
        notes.append(f"counts ({key}): {between} (object, query) pairs were never on a sampled frame "
                            "(not the platform's loss: the sampling never showed them)")
    return out


def point_rows(data: LakeRows, key: str, frames, videos, threshold: float) -> list[dict]:
    if frames is None:
        return []
    pred = [p for p in data.tables["points"] if p["task_key"] == key]
    sizes = {v: (videos[v]["width"], videos[v]["height"]) for v in videos}
    queries = sorted({p["query"] for p in pred} | set(data.queries.get(key, ())))
    out = []
    for query in with_all(queries):
        asked = [query] if query else queries
        truth_pts = [M.Point(video_id, q, r["t"], r["x"], r["y"])
                     for video_id in videos for q in asked
                     for r in on_sampled([r for r in frames.get(videos[video_id]["name"], ()) if matches(q, r["label"])],
                                          data.sampled.get((video_id, key), []))]
        pred_pts = [M.Point(p["video_id"], p["query"], p["t"], p["x"], p["y"]) for p in pred if p["query"] in asked]
        out += metric_rows(query, "point", M.point_metrics(pred_pts, truth_pts, sizes, threshold))
    return out


def track_rows(data: LakeRows, key: str, frames, videos, threshold: float) -> list[dict]:
    """Each (video, query) is one tracking sequence, scored on the sampled frames of its windows."""
    if frames is None:
        return []
    pred = [p for p in data.tables["tracks"] if p["task_key"] == key]
    queries = sorted({p["query"] for p in pred} | set(data.queries.get(key, ())))
    sizes = {f"{v}|{q}": (videos[v]["width"], videos[v]["height"]) for v in videos for q in queries}
    out = []
    for query in with_all(queries):
        asked = [query] if query else queries
        truth_rows = [M.TrackPoint(f"{video_id}|{q}", r["t"], r["object_id"], r["x"], r["y"])
                      for video_id in videos for q in asked if (video_id, key) in data.sampled
                      for r in on_sampled([r for r in frames.get(videos[video_id]["name"], ()) if matches(q, r["label"])],
                                           data.sampled[(video_id, key)])]
        pred_rows = [M.TrackPoint(f"{p['video_id']}|{p['query']}", p["t"], p["object_id"], p["x"], p["y"])
                     for p in pred if p["query"] in asked and p["object_id"] is not None]
        out += metric_rows(query, "track", M.track_metrics(pred_rows, truth_rows, sizes, threshold))
    return out


def search_rows(settings: Settings, lake: Lake, frames, videos, notes: list[str]) -> list[dict]:
    """recall@10 and MRR of the index's hits, through the search index, for each label the truth shows
    ("red circle": a hit overlapping a run of frames where such an object is visible counts) and for its
    appearances ("a red circle appears": a hit within ``_ENTER_S`` of a run's first frame counts);
    skipped, with a note, when there is no index."""
    from vidlake.serve.state import ServiceState

    if frames is None:
        return []
    state = ServiceState(settings.model_copy(update={"lake": settings.lake.model_copy(update={"uri": lake.uri})}))
    state.check()
    if state.searcher is None:
        notes.append(f"search not measured: {state.missing_reason} (run `vidlake index --lake {lake.uri}`)")
        return []
    visible: dict[str, list[tuple[str, float, float]]] = defaultdict(list)  # label -> (video, run start, end)
    names = {v["name"]: video_id for video_id, v in videos.items()}
    for name, rows in frames.items():
        if name not in names:
            continue
        by_object: dict[tuple[int, str], list[float]] = defaultdict(list)
        for r in rows:
            by_object[(r["object_id"], r["label"])].append(r["time_s"])
        for (_, label), times in by_object.items():
            for start, end in _runs(sorted(times)):
                visible[label].append((names[name], start, end))
    kinds, enters = [], []
    for label, spans in sorted(visible.items()):
        for query, truth, out in ((label, spans, kinds),
                                  (f"a {label} appears", [(v, s - _ENTER_S, s + _ENTER_S) for v, s, _ in spans], enters)):
            hits = state.searcher.search(query, k=10, mode="hybrid")
            out.append(([M.Span(h["video_id"], h["start_s"], h["end_s"]) for h in hits], [M.Span(*t) for t in truth]))
    if state.stale_reason:
        notes.append(f"search: the index is stale ({state.stale_reason})")
    return (metric_rows("", "search", M.search_metrics(kinds, k=10), task="search")
            + metric_rows("", "search_appears", M.search_metrics(enters, k=10), task="search"))


def _runs(times: list[float], gap_s: float = 0.5) -> list[tuple[float, float]]:
    """The spans of consecutive frame times no more than ``gap_s`` apart: the runs an object is visible."""
    runs = [[times[0], times[0]]]
    for t in times[1:]:
        if t - runs[-1][1] > gap_s:
            runs.append([t, t])
        else:
            runs[-1][1] = t
    return [(a, b) for a, b in runs]


def with_all(queries: list[str]) -> list[str]:
    """Each query, then "" (all of them together) when there are several."""
    return [*queries, ""] if len(queries) > 1 else queries


def metric_rows(query: str, prefix: str, metrics: Any, suffix: str = "", task: str | None = None) -> list[dict]:
    """One `evals` row per number of a metrics dataclass (``count_exact``, ``point_f1``, ``track_hota``...);
    ``n``: the (video, query) pairs counted, the true points or track samples, or the search queries."""
    values = {k: v for k, v in dataclasses.asdict(metrics).items() if k != "per_video"}
    n = values["tp"] + values["fn"] if "tp" in values else values.get("n", values.get("queries", 0))
    out = []
    for name, value in values.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        out.append({"query": query, "metric": f"{prefix}_{name}{suffix}", "value": float(value), "n": int(n or 0),
                    **({"task": task} if task else {})})
    return out
