"""WriteTables: collect parsed window outputs per (video, task_key) and commit complete ones.

Runs on the driver, fed by the pipeline's output stream. A (video, task_key) is committed only
when every window it was planned with has come back (ok or failed): its rows of each table land in
one Delta commit, so they become visible together. Commits are idempotent merges on each table's
key (see ``schemas.KEYS``), and the ``outputs`` table, which records the raw model text per window,
is written last: it is the ledger ``SkipDone`` reads. A driver killed at any point therefore leaves
either nothing or complete videos, and the next run redoes exactly what is missing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from vidlake.operators.merge import caption_midpoint, keep_owned, link_track_ids, owned_spans
from vidlake.platform.lake import Lake

__all__ = ["WriteTables", "WriteStats", "build_rows", "plain"]

_ORDER = ("windows", "errors", "captions", "answers", "points", "tracks", "counts", "outputs")


@dataclass
class WriteStats:
    videos_committed: int = 0  # (video, task_key) pairs
    windows_ok: int = 0
    windows_failed: int = 0
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class WriteTables:
    """Driver-side accumulator. ``add(row)`` per parsed window, ``flush()`` commits what is complete.

    Reads: video_id, uri, task, task_key, query, window_id, window_index, windows_total, start_s,
    end_s, kind, timestamps_s, sampling_json, decoder, partial, partial_reason, status, error_kind,
    error, raw_text, prompt, prompt_tokens, generated_tokens, model_id, model_revision and
    ParseOutput's columns: answer, captions, points, tracks, count, parse_status.
    """

    def __init__(self, lake: Lake, run_id: str, flush_every: int = 32, flush_seconds: float = 30.0):
        self.lake, self.run_id = lake, run_id
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self.stats = WriteStats()
        self._pending: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self._staged: dict[str, list[dict]] = defaultdict(list)
        self._staged_videos = 0
        self._last_flush = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        row = plain(row)
        key = (row["video_id"], row["task_key"])
        self._pending[key].append(row)
        if row["status"] == "ok":
            self.stats.windows_ok += 1
        else:
            self.stats.windows_failed += 1
        if len(self._pending[key]) >= row["windows_total"]:
            self._stage(self._pending.pop(key))
        if self._staged_videos >= self.flush_every or time.monotonic() - self._last_flush > self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Commit every staged (video, task_key): one idempotent merge per table, ``outputs`` last."""
        for table in _ORDER:
            rows = self._staged.pop(table, [])
            if rows:
                self.stats.rows[table] += self._insert_new(table, rows)
        self.stats.videos_committed += self._staged_videos
        self._staged_videos = 0
        self._last_flush = time.monotonic()

    @property
    def incomplete(self) -> list[tuple[str, str]]:
        """(video, task_key) pairs still waiting for windows (should be empty at the end of a run)."""
        return list(self._pending)

    def _insert_new(self, table: str, rows: list[dict]) -> int:
        if table == "errors":
            return self.lake.append(table, rows)  # errors are per run: a re-run that fails again says so again
        return self.lake.insert_missing(table, rows)

    def _stage(self, rows: list[dict]) -> None:
        rows.sort(key=lambda r: r["start_s"])
        now = datetime.now(timezone.utc)
        for table, out in build_rows(rows, self.run_id, now).items():
            self._staged[table].extend(out)
        self._staged_videos += 1


def plain(value: Any) -> Any:
    """Rows from Ray Data carry numpy arrays and NaN for nulls: back to lists, dicts and None."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def build_rows(rows: list[dict], run_id: str, now: datetime) -> dict[str, list[dict]]:
    """Lake rows for one complete (video, task_key) from its windows' parsed outputs (sorted by start)."""
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
                "uri": r.get("uri"), "video_id": r["video_id"], "stage": stage_of(r.get("error_kind")),
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
        linked = link_track_ids(grounded, [(r["start_s"], r["end_s"]) for r in rows])
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
            "box": list(p["box"]) if p.get("box") is not None else None}


def stage_of(error_kind: str | None) -> str:
    """The pipeline stage an error kind comes from (for the ``errors`` table)."""
    kind = error_kind or ""
    if kind.startswith("prompt"):
        return "prompt"
    if kind in ("out_of_memory", "inference_failed") or kind.startswith("infer"):
        return "infer"
    if kind.startswith("parse"):
        return "parse"
    return "sample"


def _count_row(base: dict, rows: list[dict], grounded: list[list[dict]], points: list[dict]) -> dict:
    """Count = distinct objects pointed at across the video (ids joined across windows); without
    points, the counts the answers state, summed over windows."""
    firsts: dict[int, float] = {}
    for p in points:
        firsts[p["object_id"]] = min(firsts.get(p["object_id"], p["t"]), p["t"])
    if firsts:
        count = len(firsts)
    else:
        stated = [r.get("count") for r in rows if r["status"] == "ok"]
        count = sum(c for c in stated if c is not None) if any(c is not None for c in stated) else None
    return {**base, "window_id": None, "query": rows[0].get("query"), "count": count,
            "event_times_s": sorted(firsts.values())}
