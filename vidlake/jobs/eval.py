"""``vidlake eval``: the lake's counts, points, tracks and search hits against ground truth.

    load_truth(DIR)                     counts.csv, points.csv, mot/*.txt, events.csv (vidlake.evaluation.formats)
    match videos                        by content (sha256 of DIR/videos/*, the lake's video_id), else file name
    per task_key (and query)            count: exact, off-by-one, MAE, RMSE; point: precision, recall, F1;
                                        track: HOTA, DetA, AssA, IDF1, MOTA, ID switches (TrackEval)
    search                              recall@10 and MRR through the search index, for the truth's labels
    -> printed table, JSON, and the ``evals`` table (one row per task_key, query, metric)

Truth is compared with what the job's sampled frames show where the truth has per-frame positions with
object ids (points.csv with object_id, or mot/): a count's truth is the objects visible on at least one
sampled frame, and points and tracks are matched on the sampled timestamps. Objects that appear only
between sampled frames are not the platform's loss; they are counted and reported, and the whole-video
counts of counts.csv are compared too (``count_*_all_frames``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vidlake.errors import ConfigError
from vidlake.evaluation.compare import (
    LakeRows, count_rows, match_videos, point_rows, search_rows, track_rows, truth_frames,
)
from vidlake.evaluation.formats import load_truth
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.runs import RunRecord

__all__ = ["EvalResult", "run_eval"]

@dataclass
class EvalResult:
    run_id: str
    truth: str
    fingerprint: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # the `evals` rows
    notes: list[str] = field(default_factory=list)  # what a reader needs beside the numbers
    videos_matched: int = 0
    videos_in_truth: int = 0
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps({
            "run_id": self.run_id, "truth": self.truth, "truth_fingerprint": self.fingerprint,
            "videos_matched": self.videos_matched, "videos_in_truth": self.videos_in_truth, "notes": self.notes,
            "metrics": [{k: r[k] for k in ("task_key", "task", "windows", "query", "metric", "value", "n", "model_id")}
                        for r in self.rows],
        }, indent=2, default=str)


def run_eval(lake_uri: str, truth_dir: str, settings: Settings, run: str | None = None, task_key: str | None = None,
             threshold: float = 0.05, search: bool = True) -> EvalResult:
    """Evaluate the lake at ``lake_uri`` against the truth in ``truth_dir`` (see the module docstring);
    ``run`` / ``task_key`` restrict it to one run's or one task's rows; ``threshold``: the point distance
    that still matches, as a fraction of the frame diagonal."""
    began = time.monotonic()
    truth = load_truth(Path(truth_dir))  # a bad truth file fails here, before anything is written
    lake = Lake(lake_uri, settings.storage)
    if not lake.exists("outputs"):
        raise ConfigError(f"no model outputs in the lake at {lake_uri}: run a job first (vidlake run)")
    record = RunRecord(lake, "eval", sources=[str(truth_dir)])
    result = EvalResult(run_id=record.run_id, truth=str(truth_dir), fingerprint=truth.fingerprint)
    with record:
        videos, result.videos_in_truth = match_videos(lake, truth, result.notes)
        result.videos_matched = len(videos)
        data = LakeRows(lake, videos, run, task_key)
        if not data.task_keys:
            raise ConfigError("no outputs of the matched videos" + (f" in run {run}" if run else "")
                              + (f" for task_key {task_key}" if task_key else "") + ": nothing to evaluate")
        frames = truth_frames(truth)
        for key, (task, model_id, revision) in sorted(data.task_keys.items()):
            base = {"task_key": key, "task": task, "windows": data.kinds.get(key), "model_id": model_id,
                    "model_revision": revision}
            if task == "count":
                rows = count_rows(data, key, truth, frames, videos, result.notes)
            elif task in ("point", "ground"):
                rows = point_rows(data, key, frames, videos, threshold)
            elif task == "track":
                rows = track_rows(data, key, frames, videos, threshold)
            else:
                continue
            result.rows += [{**base, **r} for r in rows]
        if search:
            result.rows += search_rows(settings, lake, frames, videos, result.notes)
        now = datetime.now(timezone.utc)
        result.rows = [{"run_id": result.run_id, "evaluated_run_id": run, "truth": str(truth_dir),
                        "truth_fingerprint": truth.fingerprint, "at": now, "model_id": None, "model_revision": None,
                        "task_key": "", "task": None, "windows": None, **r} for r in result.rows]
        if result.rows:
            lake.append("evals", result.rows)
        result.seconds = time.monotonic() - began
        record.finish("completed", metrics_json=json.dumps({"metrics": len(result.rows),
                                                             "videos_matched": result.videos_matched}))
    return result


