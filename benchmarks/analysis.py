"""Analysis benchmark: `vidlake analyze` over a generated lake, in full and after one new day.

    .venv/bin/python benchmarks/analysis.py [--days 30] [--deployments 20] [--events 1000000] [--track-points 10000000]

Input (generated rows, no model): ``--deployments`` camera deployments recording one hour-long video per
hour for ``--days`` days (placed by the time in their file names), with ``--events`` count detections
(the count task's points, query "deer") and ``--track-points`` track samples (the track task, query
"cars", random walks) spread over them; the lake is written once into ``--workdir`` and reused. Then:

1. a full run of both analyses (counts per local hour with events and presence; tracks with one line
   and one zone per deployment);
2. one more day of footage and rows written by a new run, then an incremental run;
3. a run with nothing new (what any run costs: reading the ledgers and placements, the runs row);
4. a second full run on the same lake, for the ratio measured side by side.

Goals: the incremental run costs at most 10% of the full one; the full one processes at least 1M track
points per second on this machine. Writes benchmarks/results/analysis.md. A benchmark, not a test:
nothing here asserts.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from common import RESULTS, machine_header, write_result

START = datetime(2026, 5, 1, tzinfo=timezone.utc)


def _table(n: int, **columns) -> pa.Table:
    """A table of ``n`` rows; a plain str value fills its column."""
    return pa.table({k: pa.array([v] * n, pa.string()) if isinstance(v, str) else v for k, v in columns.items()})


def _rows(rng, deployments: int, days: range, events: int, points: int, run_id: str) -> dict[str, pa.Table]:
    """videos, outputs, points and tracks rows of ``days`` (hour-long videos, one per deployment and hour)."""
    from vidlake.platform.lake.ids import stable_hash

    videos, uris = [], []
    for d in range(deployments):
        for day in days:
            for hour in range(24):
                when = START + timedelta(days=day, hours=hour)
                uris.append(f"/traps/site{d:02d}/cam{d:02d}/{when:%Y%m%d_%H%M%S}.mp4")
                videos.append(stable_hash(uris[-1])[:16].ljust(64, "0"))
    n = len(videos)
    vids = np.array(videos)
    det_video = rng.integers(0, n, events)
    det = _table(events, video_id=vids[det_video], task="count", task_key="deer-key", query="deer", label="deer",
                 t=rng.uniform(0, 3600, events).round(1), object_id=rng.integers(1, 6, events).astype(np.int32),
                 x=rng.uniform(0, 1920, events), y=rng.uniform(0, 1080, events), x_norm=rng.uniform(0, 1, events),
                 y_norm=rng.uniform(0, 1, events), window_id="w", run_id=run_id)
    per_track = 500
    tracks = max(1, points // per_track)
    track_video = rng.integers(0, n, tracks)
    steps = rng.normal(0, 0.01, (tracks, per_track, 2))
    xy = np.clip(rng.uniform(0.2, 0.8, (tracks, 1, 2)) + np.cumsum(steps, axis=1), 0, 1).reshape(-1, 2)
    t = (rng.uniform(0, 3000, (tracks, 1)) + np.arange(per_track) * 0.5).reshape(-1)
    m = tracks * per_track
    trk = _table(m, video_id=np.repeat(vids[track_video], per_track), task="track", task_key="cars-key",
                 query="cars", label="cars", object_id=np.repeat(np.arange(tracks) % 100000 + 1, per_track).astype(np.int32),
                 id_scope="video", t=t.round(3), x=xy[:, 0] * 1920, y=xy[:, 1] * 1080, x_norm=xy[:, 0],
                 y_norm=xy[:, 1], window_id="w", run_id=run_id)
    outputs = _table(2 * n, video_id=np.concatenate([vids, vids]), task=np.array(["count"] * n + ["track"] * n),
                     task_key=np.array(["deer-key"] * n + ["cars-key"] * n), window_id="w",
                     query=np.array(["deer"] * n + ["cars"] * n), parse_status="ok", run_id=run_id)
    video_rows = pa.table({"video_id": vids, "uris": [[u] for u in uris], "duration_s": [3600.0] * n})
    return {"videos": video_rows, "outputs": outputs, "points": det, "tracks": trk}


def _write(lake, rows: dict[str, pa.Table]) -> None:
    from vidlake.platform.lake.schemas import schema_for

    for table, data in rows.items():
        schema = schema_for(table)
        for name in schema.names:
            if name not in data.column_names:
                data = data.append_column(name, pa.nulls(data.num_rows, schema.field(name).type))
        lake.append(table, data.select(schema.names).cast(schema))


def _spec(workdir: Path, lake_dir: Path, deployments: int):
    from vidlake.analysis.spec import AnalysisFile

    lines = ["deploymentID,locationName,cameraID,latitude,longitude,deploymentStart,deploymentEnd,timezone"]
    for d in range(deployments):
        lines.append(f"dep{d:02d},site{d:02d},cam{d:02d},52.0,5.0,2026-04-01T00:00:00Z,2026-08-01T00:00:00Z,"
                     "Europe/Berlin")
    (workdir / "deployments.csv").write_text("\n".join(lines) + "\n")
    return AnalysisFile.model_validate({
        "lake": str(lake_dir),
        "deployments": {"file": str(workdir / "deployments.csv"), "path_pattern": "{locationName}/{cameraID}/*",
                        "roots": ["/traps"], "filename_time": "%Y%m%d_%H%M%S"},
        "analyses": [
            {"name": "deer-hourly", "version": 1, "kind": "counts", "queries": ["deer"], "bin": "hour",
             "clock": "local", "event_gap_s": 300},
            {"name": "cars", "version": 1, "kind": "tracks", "queries": ["cars"], "max_gap_s": 2,
             "lines": {f"dep{d:02d}": [{"name": "mid", "start": [0.5, 0.0], "end": [0.5, 1.0]}]
                       for d in range(deployments)},
             "zones": {f"dep{d:02d}": [{"name": "box", "polygon": [[0.3, 0.3], [0.7, 0.3], [0.7, 0.7], [0.3, 0.7]]}]
                       for d in range(deployments)}},
        ],
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--deployments", type=int, default=20)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--track-points", type=int, default=10_000_000)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vidlake-analysis-bench")
    args = ap.parse_args()

    from vidlake.jobs.analyze import run_analyze
    from vidlake.platform.config import load_settings
    from vidlake.platform.lake import Lake

    began = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    lake_dir = args.workdir / "lake"
    shutil.rmtree(lake_dir, ignore_errors=True)
    lake = Lake(str(lake_dir))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    _write(lake, _rows(rng, args.deployments, range(args.days), args.events, args.track_points, "20260501T000000Z-0"))
    write_s = time.perf_counter() - t0
    spec = _spec(args.workdir, lake_dir, args.deployments)
    settings = load_settings()

    def timed(**kw):
        t = time.perf_counter()
        result = run_analyze(spec, settings, show=False, **kw)
        return time.perf_counter() - t, result

    full_s, full = timed()
    day_events = args.events // args.days
    day_points = args.track_points // args.days
    _write(lake, _rows(np.random.default_rng(1), args.deployments, range(args.days, args.days + 1), day_events,
                       day_points, "20260601T000000Z-1"))
    incremental_s, step = timed()
    idle_s, idle = timed()  # nothing new: what any run costs (reads of the ledgers, placements, commits of runs)
    again_s, again = timed(full=True)
    points = lake.read("tracks", columns=["t"]).num_rows
    ratio = incremental_s / again_s
    lines = [
        "# Analysis benchmark", "",
        machine_header(__file__) + f" Ran {time.perf_counter() - began:.0f} s. Command: `.venv/bin/python "
        f"benchmarks/analysis.py --days {args.days} --deployments {args.deployments} --events {args.events} "
        f"--track-points {args.track_points}`.", "",
        f"Input (generated rows, no model; written in {write_s:.1f} s): {args.deployments} deployments x "
        f"{args.days} days of hour-long videos ({args.deployments * args.days * 24:,} videos), "
        f"{args.events:,} count detections and {args.track_points:,} track points; then one more day "
        f"({args.deployments * 24} videos, {day_events:,} detections, {day_points:,} track points) from a new run.", "",
        "| run | seconds | counts analysis | tracks analysis |", "|---|---:|---|---|",
    ]
    for name, seconds, result in (("full (first)", full_s, full), ("incremental (one new day)", incremental_s, step),
                                  ("incremental (nothing new)", idle_s, idle), ("full (--full, same lake)", again_s, again)):
        c, t = result.analyses["deer-hourly"], result.analyses["cars"]
        lines.append(f"| {name} | {seconds:.1f} | {c['mode']}: {c['changed_videos']:,} videos, {c['rows']:,} rows "
                     f"| {t['mode']}: {t['changed_videos']:,} videos, {t['rows']:,} rows |")
    lines += [
        "",
        f"- incremental / full, measured side by side: **{ratio:.3f}** (goal <= 0.10); a run with nothing new "
        f"costs {idle_s:.2f} s ({idle_s / again_s:.3f} of the full run): the floor of any run",
        f"- full run: {points:,} track points in {again_s:.1f} s = **{points / again_s / 1e6:.2f}M track points/s** "
        f"for every analysis together (goal >= 1M/s)",
    ]
    text = "\n".join(lines) + "\n"
    write_result(RESULTS / "analysis.md", text)


if __name__ == "__main__":
    main()
