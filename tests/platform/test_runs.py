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


def _start_and_finish_runs(lake_uri: str, n: int, start, failures) -> None:  # a separate process (spawn)
    import os

    start.wait()
    lake, failed = Lake(lake_uri), []
    for _ in range(n):
        try:
            with RunRecord(lake, "index") as record:
                record.finish("completed")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            failed.append(f"{type(exc).__name__}: {exc}")
    failures.put(failed)
    failures.close()
    failures.join_thread()
    os._exit(0)


def test_runs_started_at_once_by_several_processes_all_start(tmp_path):
    """Starting a run appends its row while other runs rewrite theirs (heartbeats, finishes): an append
    that loses that race is made again instead of failing the command ("CommitFailedError ... a
    concurrent transaction deleted data this operation read", seen in the soak test)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    lake = Lake(str(tmp_path / "lake"))
    with RunRecord(lake, "setup") as record:  # the table exists before the race
        record.finish("completed")
    start, failures = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_start_and_finish_runs, args=(lake.uri, 12, start, failures)) for _ in range(3)]
    for p in procs:
        p.start()
    start.set()
    failed = [f for _ in procs for f in failures.get(timeout=300)]
    for p in procs:
        p.join(60)
    assert failed == []
    rows = [r for r in lake.read("runs").to_pylist() if r["job"] == "index"]
    assert len(rows) == 36 and {r["status"] for r in rows} == {"completed"}


def test_an_errors_table_from_before_its_window_columns_gains_them(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    from vidlake.platform.lake.schemas import ERRORS

    lake = Lake(str(tmp_path / "lake"))
    old = pa.schema([f for f in ERRORS if f.name not in ("task_key", "window_id")])
    write_deltalake(lake.table_uri("errors"), pa.Table.from_pylist(
        [{"uri": "/a.mp4", "stage": "probe", "error_kind": "empty_file", "run_id": "r1"}], schema=old))
    lake.append("errors", [{"uri": "/b.mp4", "stage": "sample", "error_kind": "undecodable", "run_id": "r2",
                            "task_key": "0123456789abcdef", "window_id": "w1"}])
    rows = sorted(lake.read("errors").to_pylist(), key=lambda r: r["uri"])
    assert [(r["uri"], r["task_key"], r["window_id"]) for r in rows] == [("/a.mp4", None, None),
                                                                         ("/b.mp4", "0123456789abcdef", "w1")]
