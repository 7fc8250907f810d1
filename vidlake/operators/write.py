"""WriteTables: collect parsed window outputs per (video, task_key) and commit complete ones.

Runs on the driver, fed by the pipeline's output stream. A (video, task_key) is committed only
when every window it was planned with has come back (ok or failed): its rows of each table land in
one Delta commit, so they become visible together. A pair that is being retried (``retry``: an
earlier run left failed windows) replaces its old rows in each table, in that table's one commit. Commits are idempotent merges on each table's
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

from vidlake.operators.merge import merge_windows
from vidlake.platform.lake import Lake

__all__ = ["WriteTables", "WriteStats", "plain"]

_ORDER = ("windows", "errors", "captions", "answers", "points", "tracks", "counts", "outputs")
_PAIR_TABLES = ("captions", "answers", "points", "tracks", "counts", "outputs")  # rows owned by a (video, task_key)
_WINDOW_COLUMNS = ["kind", "window_index", "start_s", "end_s", "timestamps_s", "sampling_json", "decoder", "partial",
                   "partial_reason", "run_id"]


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
        self._retried: dict[str, list[dict]] = defaultdict(list)  # rows of retried pairs: they replace the old ones
        self._retried_pairs: set[tuple[str, str]] = set()
        self._staged_videos = 0
        self._last_flush = time.monotonic()

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        """Take one parsed window; returns it as plain Python values (what was kept)."""
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
        return row

    def flush(self) -> None:
        """Commit every staged (video, task_key): one idempotent merge per table, ``outputs`` last."""
        pairs, self._retried_pairs = self._retried_pairs, set()
        for table in _ORDER:
            rows = self._staged.pop(table, [])
            if rows:
                self.stats.rows[table] += self._insert_new(table, rows)
            retried = self._retried.pop(table, [])
            if pairs and table in _PAIR_TABLES:
                self.stats.rows[table] += self.lake.replace_pairs(table, retried, pairs)
            elif retried:
                self.stats.rows[table] += (self.lake.append(table, retried) if table == "errors"
                                           else self.lake.upsert(table, retried, _WINDOW_COLUMNS))
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
        retry = bool(rows[0].get("retry"))
        if retry:
            self._retried_pairs.add((rows[0]["video_id"], rows[0]["task_key"]))
        for table, out in merge_windows(rows, self.run_id, now).items():
            (self._retried if retry else self._staged)[table].extend(out)
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
