"""Run records: the one writer of the ``runs`` table, for every kind of run (ingest, run, index, ...).

    with RunRecord(lake, "ingest", sources=[...], spec_json=...) as run:
        ...                                   # the row says "running" from here on
        run.finish("completed", metrics={...}, videos_new=3)

The start row is appended when the block is entered. ``finish`` sets the final state, the end time,
the seconds, the metrics (JSON) and any other ``runs`` columns; leaving the block by an exception
before ``finish`` marks the run ``failed`` with the exception as the message (and re-raises), and
leaving it normally marks it ``completed``.
While the run is open, a heartbeat sets its ``seconds`` (time so far) every ``HEARTBEAT_S``: a run
whose process died (``kill -9``, a lost node, a full disk) stops beating, and readers show it as
``abandoned`` once ``started_at + seconds`` is older than ``STALE_AFTER_S`` (``run_state``). Rows are
written through deltalake with the values as data (a one-row merge on ``run_id``), never pasted into
SQL text, so any message or path is stored as it is.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from vidlake import __version__
from vidlake.platform.lake.ids import new_run_id
from vidlake.platform.lake.tables import Lake

__all__ = ["HEARTBEAT_S", "STALE_AFTER_S", "RunRecord", "run_state"]

HEARTBEAT_S = 30.0
STALE_AFTER_S = 4 * HEARTBEAT_S  # a running run whose last beat is older than this has lost its process


class RunRecord:
    """The ``runs`` row of one run; ``fields`` are any other columns of its start row."""

    def __init__(self, lake: Lake, job: str, run_id: str | None = None, heartbeat_s: float = HEARTBEAT_S,
                 **fields: Any):
        self.lake, self.job = lake, job
        self.run_id = run_id or new_run_id()
        self.fields = fields
        self.status: str | None = None  # the final state, once finished
        self.heartbeat_s = heartbeat_s
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> "RunRecord":
        self._started = time.monotonic()
        self.lake.append("runs", [{
            **self.fields, "run_id": self.run_id, "job": self.job, "status": "running",
            "started_at": datetime.now(timezone.utc), "seconds": 0.0, "vidlake_version": __version__,
        }])
        self._beat = threading.Thread(target=self._heartbeat, name=f"vidlake-run-{self.run_id}", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if self.status is None:  # the block ended without saying how: by its exception, or completed
            self.finish("failed", message=f"{kind.__name__}: {exc}") if exc is not None else self.finish("completed")
        self._stop.set()
        if self._beat is not None:
            self._beat.join()  # never leave a commit in flight at interpreter exit

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                if self.status is not None:
                    return
                try:
                    self.lake.update_row("runs", {"run_id": self.run_id, "job": self.job, "status": "running"},
                                         {"seconds": self.seconds})
                except Exception:  # noqa: BLE001 - a missed beat is retried; the run's own writes report storage errors
                    pass

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._started

    def finish(self, status: str, message: str | None = None, metrics: dict[str, Any] | None = None,
               **columns: Any) -> None:
        """Set the final state (``completed`` | ``failed``) and the run's numbers, in one commit."""
        values: dict[str, Any] = {
            **columns, "status": status, "ended_at": datetime.now(timezone.utc), "seconds": self.seconds,
        }
        if metrics is not None:
            values["metrics_json"] = json.dumps(metrics, default=str)
        if message is not None:
            values["message"] = message
        self._stop.set()
        with self._lock:
            self.lake.update_row("runs", {"run_id": self.run_id, "job": self.job}, values)
            self.status = status


def run_state(row: dict[str, Any], now: datetime | None = None, stale_after_s: float = STALE_AFTER_S) -> str:
    """A ``runs`` row's state for readers: its status, or ``abandoned`` for a run still marked
    ``running`` whose heartbeat stopped (its process died before it could say how it ended)."""
    if row.get("status") != "running" or row.get("started_at") is None:
        return row.get("status") or "unknown"
    now = now or datetime.now(timezone.utc)
    started = row["started_at"] if row["started_at"].tzinfo else row["started_at"].replace(tzinfo=timezone.utc)
    last_beat = started + timedelta(seconds=row.get("seconds") or 0.0)
    return "abandoned" if (now - last_beat).total_seconds() > stale_after_s else "running"
