"""Run records: the one writer of the ``runs`` table, for every kind of run (ingest, run, index, ...).

    with RunRecord(lake, "ingest", sources=[...], spec_json=...) as run:
        ...                                   # the row says "running" from here on
        run.finish("completed", metrics={...}, videos_new=3)

The start row is appended when the block is entered. ``finish`` sets the final state, the end time,
the seconds, the metrics (JSON) and any other ``runs`` columns; leaving the block by an exception
before ``finish`` marks the run ``failed`` with the exception as the message (and re-raises). Rows are
written through deltalake with the values as data (a one-row merge on ``run_id``), never pasted into
SQL text, so any message or path is stored as it is.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from vidlake import __version__
from vidlake.platform.lake.ids import new_run_id
from vidlake.platform.lake.tables import Lake

__all__ = ["RunRecord"]


class RunRecord:
    """The ``runs`` row of one run; ``fields`` are any other columns of its start row."""

    def __init__(self, lake: Lake, job: str, run_id: str | None = None, **fields: Any):
        self.lake, self.job = lake, job
        self.run_id = run_id or new_run_id()
        self.fields = fields
        self.status: str | None = None  # the final state, once finished
        self._started = time.monotonic()

    def __enter__(self) -> "RunRecord":
        self._started = time.monotonic()
        self.lake.append("runs", [{
            **self.fields, "run_id": self.run_id, "job": self.job, "status": "running",
            "started_at": datetime.now(timezone.utc), "vidlake_version": __version__,
        }])
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if exc is not None and self.status is None:
            self.finish("failed", message=f"{kind.__name__}: {exc}")

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
        self.lake.update_row("runs", {"run_id": self.run_id, "job": self.job}, values)
        self.status = status
