"""Evaluation metrics as pure functions over plain rows: counting, pointing, tracking, search.

No lake and no Ray: the eval job maps the lake's rows and the truth's onto these tuples. Times are
compared to the millisecond (a frame's PTS in the lake and in the truth agree that far). Distances are in
pixels; a match threshold is a fraction of the frame's diagonal, so one number fits every frame size.
Tracking metrics come from TrackEval (HOTA, CLEAR, Identity), not re-implemented here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["CountMetrics", "Point", "PointMetrics", "SearchMetrics", "Span", "TrackMetrics", "TrackPoint",
           "count_metrics", "point_metrics", "search_metrics", "track_metrics"]

Size = tuple[float, float]  # a video's frame (width, height) in pixels


class Point(NamedTuple):
    """A point in one frame; ``key`` is the query (predictions) or the label it answers (truth)."""

    video: str
    key: str
    time_s: float
    x: float
    y: float


class TrackPoint(NamedTuple):
    """One frame of one track: ``track_id`` is any hashable id, unique within the video."""

    video: str
    time_s: float
    track_id: Hashable
    x: float
    y: float


class Span(NamedTuple):
    """A time range of a video, in seconds; an instant has start_s == end_s."""

    video: str
    start_s: float
    end_s: float


def _ms(time_s: float) -> int:
    return round(time_s * 1000)


def _diagonal(sizes: Mapping[str, Size], video: str) -> float:
    if video not in sizes:
        raise ValueError(f"no frame size for video {video!r}: pass sizes[{video!r}] = (width, height)")
    return math.hypot(*sizes[video])


@dataclass(frozen=True)
class CountMetrics:
    n: int  # pairs scored
    exact: float | None  # share with predicted == true (None when n == 0)
    off_by_one: float | None  # share with |predicted - true| <= 1
    mae: float | None  # over the pairs with a prediction (None when there is none)
    rmse: float | None
    missing: int  # pairs whose prediction is None


def count_metrics(pairs: Iterable[tuple[int | None, int]]) -> CountMetrics:
    """Accuracy and error of (predicted count or None, true count) pairs.

    A missing prediction (None) counts as wrong for both accuracies and is left out of MAE and RMSE,
    which are taken over the predictions that exist; ``missing`` says how many there were.
    """
    pairs = list(pairs)
    errors = np.array([p - t for p, t in pairs if p is not None], dtype=float)
    n = len(pairs)
    return CountMetrics(
        n=n,
        exact=float(np.sum(errors == 0)) / n if n else None,
        off_by_one=float(np.sum(np.abs(errors) <= 1)) / n if n else None,
        mae=float(np.mean(np.abs(errors))) if errors.size else None,
        rmse=float(np.sqrt(np.mean(errors**2))) if errors.size else None,
        missing=n - errors.size,
    )


@dataclass(frozen=True)
class PointMetrics:
    tp: int
    fp: int
    fn: int
    precision: float  # 1.0 when there is no prediction (nothing claimed wrongly)
    recall: float  # 1.0 when there is no truth (nothing to miss)
    f1: float  # 0.0 when precision + recall is 0
    mean_distance_px: float | None  # over the matches; None when there is none


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def point_metrics(pred: Iterable[Point], truth: Iterable[Point], sizes: Mapping[str, Size],
                  threshold: float = 0.05) -> PointMetrics:
    """Points matched one-to-one within each (video, key, time) group.

    A prediction and a true point can match when they are at most ``threshold`` x the frame diagonal apart;
    among those pairs, the assignment (scipy's linear_sum_assignment) makes the most matches and, among
    those, has the smallest total distance. Unmatched predictions are false positives, unmatched truth
    false negatives.
    """
    groups: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for side, points in ((0, pred), (1, truth)):
        for p in map(Point._make, points):  # plain tuples in Point's order work too
            groups[(p.video, p.key, _ms(p.time_s))][side].append((p.x, p.y))
    tp = fp = fn = 0
    distances: list[float] = []
    for (video, _, _), (ps, ts) in groups.items():
        matched = []
        if ps and ts:
            limit = threshold * _diagonal(sizes, video)
            dist = np.hypot(*(np.array(ps)[:, None, :] - np.array(ts)[None, :, :]).transpose(2, 0, 1))
            # A pair beyond the limit costs more than any set of allowed pairs: more matches always win.
            cost = np.where(dist <= limit, dist, (min(len(ps), len(ts)) + 1) * limit + 1)
            rows, cols = linear_sum_assignment(cost)
            matched = [d for d in dist[rows, cols] if d <= limit]
        tp, fp, fn = tp + len(matched), fp + len(ps) - len(matched), fn + len(ts) - len(matched)
        distances += matched
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return PointMetrics(tp, fp, fn, precision, recall, _f1(precision, recall),
                        float(np.mean(distances)) if distances else None)


@dataclass(frozen=True)
class TrackMetrics:
    hota: float  # HOTA, DetA, AssA and LocA averaged over TrackEval's 19 thresholds, as it reports them
    deta: float
    assa: float
    loca: float  # TrackEval counts LocA as 1 at a threshold where nothing matched
    idf1: float
    mota: float
    id_switches: int
    tp: int  # CLEAR's matches, misses and false positives
    fn: int
    fp: int
    per_video: Mapping[str, TrackMetrics] = field(default_factory=dict)


# CLEAR (MOTA) and Identity (IDF1) match a pair at any positive similarity, i.e. closer than the threshold
# distance, the rule point_metrics uses; TrackEval's default 0.5 (IoU's convention) would halve it.
_MATCH_SIMILARITY = 1e-9


def _sequence(video: str, pred: list[TrackPoint], truth: list[TrackPoint], limit: float) -> dict:
    """One video in TrackEval's input form: per time step, 0-based contiguous ids and similarities."""
    times = sorted({_ms(p.time_s) for p in pred} | {_ms(p.time_s) for p in truth})
    step = {t: i for i, t in enumerate(times)}
    data: dict = {"num_timesteps": len(times)}
    for side, points in (("gt", truth), ("tracker", pred)):
        ids: dict[Hashable, int] = {}
        per_step: list[list] = [[] for _ in times]
        for p in points:
            per_step[step[_ms(p.time_s)]].append((ids.setdefault(p.track_id, len(ids)), p.x, p.y))
        for t, rows in zip(times, per_step):
            if len({r[0] for r in rows}) < len(rows):
                raise ValueError(f"{video}: a {side} track id appears twice at {t / 1000:.3f} s")
        data[f"{side}_ids"] = [np.array([r[0] for r in rows], dtype=int) for rows in per_step]
        data[f"{side}_xy"] = [np.array([r[1:] for r in rows], dtype=float).reshape(-1, 2) for rows in per_step]
        data[f"num_{side}_ids"], data[f"num_{side}_dets"] = len(ids), len(points)
    data["similarity_scores"] = [
        np.maximum(0.0, 1 - np.linalg.norm(g[:, None, :] - k[None, :, :], axis=2) / limit)
        for g, k in zip(data.pop("gt_xy"), data.pop("tracker_xy"))]
    return data


def _summary(hota: dict, clear: dict, identity: dict) -> TrackMetrics:
    return TrackMetrics(
        hota=float(np.mean(hota["HOTA"])), deta=float(np.mean(hota["DetA"])), assa=float(np.mean(hota["AssA"])),
        loca=float(np.mean(hota["LocA"])), idf1=float(identity["IDF1"]), mota=float(clear["MOTA"]),
        id_switches=int(clear["IDSW"]), tp=int(clear["CLR_TP"]), fn=int(clear["CLR_FN"]), fp=int(clear["CLR_FP"]))


def track_metrics(pred: Iterable[TrackPoint], truth: Iterable[TrackPoint], sizes: Mapping[str, Size],
                  threshold: float = 0.05) -> TrackMetrics:
    """HOTA (DetA, AssA, LocA), IDF1, MOTA and ID switches of point tracks, computed by TrackEval.

    Each video is one sequence over the union of predicted and true frame times; similarity of a predicted
    and a true point is max(0, 1 - distance / (threshold x frame diagonal)). HOTA sweeps its own similarity
    thresholds (0.05..0.95); MOTA and IDF1 match any pair closer than the threshold distance. Videos are
    combined with TrackEval's combine_sequences; ``per_video`` holds each video's own scores. The caller
    restricts the truth to the sampled frames when only those should count.
    """
    from trackeval.metrics import CLEAR, HOTA, Identity  # TrackEval's import pulls in all its datasets

    metrics = {"hota": HOTA(), "clear": CLEAR({"THRESHOLD": _MATCH_SIMILARITY, "PRINT_CONFIG": False}),
               "identity": Identity({"THRESHOLD": _MATCH_SIMILARITY, "PRINT_CONFIG": False})}
    by_video: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for side, points in ((0, pred), (1, truth)):
        for p in map(TrackPoint._make, points):
            by_video[p.video][side].append(p)
    if not by_video:
        raise ValueError("no tracks to evaluate: both the predictions and the truth are empty")
    results: dict[str, dict[str, dict]] = {name: {} for name in metrics}
    for video, (ps, ts) in sorted(by_video.items()):
        data = _sequence(video, ps, ts, threshold * _diagonal(sizes, video))
        for name, metric in metrics.items():
            results[name][video] = metric.eval_sequence(data)
    combined = {name: metric.combine_sequences(results[name]) for name, metric in metrics.items()}
    per_video = {v: _summary(*(results[n][v] for n in metrics)) for v in sorted(by_video)}
    return replace(_summary(*combined.values()), per_video=per_video)


@dataclass(frozen=True)
class SearchMetrics:
    queries: int  # queries scored: those with at least one true occurrence
    k: int
    recall_at_k: float | None  # share of queries with a relevant hit in their top k (None: no query)
    occurrences_at_k: float | None  # share of all true occurrences overlapped by a top-k hit of their query
    mrr: float | None  # mean of 1 / rank of the first relevant hit in the whole list (0 for a query without)
    without_truth: int  # queries left out because nothing true exists for them


def _overlaps(a: Span, b: Span) -> bool:
    """Same video and the closed time ranges share a moment (so instants and touching ranges count)."""
    return a.video == b.video and a.start_s <= b.end_s and b.start_s <= a.end_s


def search_metrics(results: Iterable[tuple[Sequence[Span], Collection[Span]]], k: int = 10) -> SearchMetrics:
    """Recall@k and MRR of ranked search hits against each query's true occurrences.

    ``results`` holds, per query, (ranked hits, true occurrences). A hit is relevant when it is in the right
    video and its time range overlaps a true occurrence. recall@k is the share of queries with at least one
    relevant hit among their first k; occurrences_at_k the share of all true occurrences (over all queries)
    overlapped by one of their query's first k hits. Queries without any true occurrence cannot be scored
    and are counted in ``without_truth`` only.
    """
    found = reciprocal = occurrences = covered = queries = without = 0
    for hits, truth in results:
        hits, truth = [Span._make(h) for h in hits], {Span._make(t) for t in truth}
        if not truth:
            without += 1
            continue
        queries += 1
        relevant = [any(_overlaps(h, t) for t in truth) for h in hits]
        found += any(relevant[:k])
        reciprocal += 1 / (relevant.index(True) + 1) if any(relevant) else 0.0
        occurrences += len(truth)
        covered += sum(any(_overlaps(h, t) for h in hits[:k]) for t in truth)
    return SearchMetrics(queries=queries, k=k, recall_at_k=found / queries if queries else None,
                         occurrences_at_k=covered / occurrences if occurrences else None,
                         mrr=reciprocal / queries if queries else None, without_truth=without)
