"""Run records: one writer for every kind of run; values are data, never SQL text."""

from __future__ import annotations

import json

import pytest

from vidlake.platform.lake import Lake
from vidlake.platform.lake.runs import RunRecord


def test_a_run_starts_running_and_finishes_with_its_numbers(tmp_path):
    lake = Lake(str(tmp_path / "it's a lake"))  # a quote in the path: stored as it is
    with RunRecord(lake, "ingest", sources=[lake.uri], files_found=3) as run:
        (row,) = lake.read("runs").to_pylist()
        assert (row["run_id"], row["status"], row["sources"], row["files_found"]) == (run.run_id, "running", [lake.uri], 3)
        run.finish("completed", metrics={"bytes": 10}, videos_new=2)
    (row,) = lake.read("runs").to_pylist()
    assert (row["status"], row["videos_new"], json.loads(row["metrics_json"])) == ("completed", 2, {"bytes": 10})
    assert row["ended_at"] >= row["started_at"] and row["seconds"] >= 0 and row["sources"] == [lake.uri]


def test_an_exception_fails_the_run_with_its_message_verbatim(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    message = "can't read 'x.mp4'; DROP TABLE runs; -- \"quoted\" \\ end"
    with pytest.raises(OSError):
        with RunRecord(lake, "run"):
            raise OSError(message)
    (row,) = lake.read("runs").to_pylist()
    assert row["status"] == "failed" and row["message"] == f"OSError: {message}"


def test_runs_do_not_touch_each_other(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    with RunRecord(lake, "index") as first, RunRecord(lake, "index") as second:
        second.finish("failed", message="boom")
        first.finish("completed")
    rows = {r["run_id"]: r for r in lake.read("runs").to_pylist()}
    assert (rows[first.run_id]["status"], rows[second.run_id]["status"]) == ("completed", "failed")
    assert rows[first.run_id]["message"] is None and rows[second.run_id]["message"] == "boom"


def test_a_run_whose_process_died_is_shown_abandoned(tmp_path):
    import subprocess
    import sys
    import time
    from datetime import timedelta

    from vidlake.platform.lake.runs import run_state
    from vidlake.platform.lake.timeline import lake_overview

    lake = Lake(str(tmp_path / "lake"))
    code = ("import sys, time; from vidlake.platform.lake import Lake; from vidlake.platform.lake.runs import RunRecord\n"
            "with RunRecord(Lake(sys.argv[1]), 'run', heartbeat_s=0.2):\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, lake.uri])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for a few beats
            rows = lake.read("runs").to_pylist() if lake.exists("runs") else []
            if rows and (rows[0]["seconds"] or 0) > 0.5:
                break
            time.sleep(0.2)
        (row,) = lake.read("runs").to_pylist()
        assert row["status"] == "running" and run_state(row, stale_after_s=30) == "running"  # beating
    finally:
        proc.kill()  # kill -9: the run never says how it ended
        proc.wait()
    (row,) = lake.read("runs").to_pylist()
    assert row["status"] == "running"
    later = row["started_at"] + timedelta(seconds=row["seconds"] + 31)
    assert run_state(row, now=later, stale_after_s=30) == "abandoned"
    assert lake_overview(lake)["runs"][0]["status"] == "running"  # its last beat is recent: not yet stale
