"""`vidlake analyze` end to end: synthetic videos with known contents, the oracle engine, deployments."""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from vidlake.analysis.spec import AnalysisFile
from vidlake.errors import ConfigError
from vidlake.evaluation.synth import make_synthetic
from vidlake.evaluation.world import match_query
from vidlake.jobs.analyze import run_analyze
from vidlake.jobs.run import run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.executors import LocalExecutor

BERLIN = ZoneInfo("Europe/Berlin")
DEPLOYMENTS = """deploymentID,locationName,cameraID,latitude,longitude,deploymentStart,deploymentEnd,timezone
pond-1,pond,cam1,52.1,5.1,2026-05-01T00:00:00+02:00,2026-07-01T00:00:00+02:00,Europe/Berlin
marsh-1,marsh,cam2,52.2,5.2,2026-05-01T00:00:00+02:00,2026-07-01T00:00:00+02:00,Europe/Berlin
"""
STARTS = {0: datetime(2026, 6, 1, 8, 59, 50, tzinfo=BERLIN), 1: datetime(2026, 6, 1, 10, 30, tzinfo=BERLIN)}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    make_synthetic(root, videos=4, seed=7, max_seconds=20, short_seconds=(12, 20))
    return root


def _archive(world: Path, root: Path, indices: list[int]) -> Path:
    """Videos 0, 1 (and 3) at the pond with sidecar start times; video 2 in the marsh without one."""
    files = sorted((world / "videos").iterdir())
    for i in indices:
        folder = root / ("marsh/cam2" if i == 2 else "pond/cam1")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(files[i], folder / files[i].name)
        start = STARTS.get(i) or (datetime(2026, 6, 1, 12, 0, tzinfo=BERLIN) if i == 3 else None)
        if start is not None:
            (folder / (files[i].name + ".json")).write_text(json.dumps({"start": start.isoformat()}))
    return root


def _job(world: Path, src: Path, lake: Path) -> None:
    spec = parse_job_spec({"sources": [str(src)], "lake": str(lake), "model": {"name": f"oracle:{world}"},
                           "tasks": [{"task": "count", "queries": ["shapes", "circles"]}],
                           "sampling": {"fps": 2, "max_frames": 8, "overlap_s": 1.0, "size": 126}})
    run_job(spec, load_settings(), show=False, executor=LocalExecutor())


def _spec(tmp_path: Path, lake: Path, src: Path, **counts) -> AnalysisFile:
    (tmp_path / "deployments.csv").write_text(DEPLOYMENTS)
    return AnalysisFile.model_validate({
        "lake": str(lake),
        "deployments": {"file": str(tmp_path / "deployments.csv"), "path_pattern": "{locationName}/{cameraID}/*",
                        "roots": [str(src)]},
        "analyses": [{"name": "hourly", "version": 1, "kind": "counts", "queries": ["shapes", "circles"],
                      "bin": "hour", "clock": "local", "event_gap_s": 300, **counts}],
    })


def _expected(world: Path, lake: Lake, query: str) -> dict:
    """(video file, local hour) -> (detections, individuals, max_n) from the truth at the frames sampled."""
    names = {v["video_id"]: Path(v["uris"][0]).name for v in lake.read("videos").to_pylist()}
    sampled = defaultdict(set)
    for w in lake.read("windows").to_pylist():
        sampled[names[w["video_id"]]].update(round(t * 1000) for t in w["timestamps_s"])
    truth = defaultdict(list)
    with open(world / "points.csv") as f:
        for r in csv.DictReader(f):
            if match_query(query, r["label"]):
                truth[(r["video"], round(float(r["time_s"]) * 1000))].append(r["object_id"])
    out: dict = defaultdict(lambda: [0, set(), 0])
    for name, times in sampled.items():
        index = int(name[1:4])
        if index not in STARTS:
            continue
        for ms in sorted(times):
            objects = truth.get((name, ms), [])
            hour = (STARTS[index] + timedelta(milliseconds=ms)).hour
            cell = out[hour]
            cell[0] += len(objects)
            cell[2] = max(cell[2], len(objects))
            cell[1].update((name, o) for o in objects if not any((name, o) in c[1] for h, c in out.items() if h < hour))
    return {h: (c[0], len(c[1]), c[2]) for h, c in out.items()}


def test_counts_per_site_and_hour_equal_the_known_contents(world, tmp_path):
    src = _archive(world, tmp_path / "src", [0, 1, 2])
    lake_dir = tmp_path / "lake"
    _job(world, src, lake_dir)
    lake = Lake(str(lake_dir))
    result = run_analyze(_spec(tmp_path, lake_dir, src), load_settings(), show=False)
    assert result.analyses["hourly"]["mode"] == "full" and result.undated == 1 and result.unplaced == 0

    placements = {Path(p["uri"]).name[:4]: p for p in lake.read("placements").to_pylist()}
    assert placements["s000"]["start_source"] == "sidecar" and placements["s000"]["deployment_id"] == "pond-1"
    assert placements["s000"]["start_utc"] == STARTS[0].astimezone(timezone.utc)
    undated = placements["s002"]
    assert (undated["dated"], undated["deployment_id"], undated["start_utc"]) == (False, "marsh-1", None)
    assert "no start time" in undated["problem"]  # flagged, never dated

    counts = pl.from_arrow(lake.read("analysis_counts"))
    for query in ("shapes", "circles"):
        rows = counts.filter((pl.col("deployment_id") == "pond-1") & (pl.col("query") == query) & pl.col("dated"))
        got = {r["bin_start_local"].hour: (r["detections"], r["individuals"], r["max_n"]) for r in rows.to_dicts()}
        expected = _expected(world, lake, query)
        assert got == {h: expected.get(h, (0, 0, 0)) for h in (8, 9, 10)}, query
    shapes = counts.filter((pl.col("query") == "shapes") & pl.col("dated")).sort("bin_start_utc")
    assert [round(m, 3) for m in shapes["effort_min"]] == [round(10 / 60, 3), round(10 / 60, 3),
                                                           round(_duration(lake, "s001") / 60, 3)]
    # video 0 runs 08:59:50-09:00:10: one event, counted in the bin where it starts; video 1 is another
    assert shapes["events"].to_list() == [1, 0, 1]
    assert counts.filter(~pl.col("dated"))["video_id"].n_unique() == 1  # the undated video, in its own time

    presence = {(r["deployment_id"], r["query"]): r for r in lake.read("analysis_presence").to_pylist()}
    assert presence[("pond-1", "shapes")]["present"]
    assert presence[("marsh-1", "shapes")]["undated_videos"] == 1


def _duration(lake: Lake, prefix: str) -> float:
    return next(v["duration_s"] for v in lake.read("videos").to_pylist() if Path(v["uris"][0]).name.startswith(prefix))


def test_an_incremental_run_equals_a_full_one(world, tmp_path):
    src = _archive(world, tmp_path / "src", [0, 1, 2])
    lake_dir = tmp_path / "lake"
    _job(world, src, lake_dir)
    spec = _spec(tmp_path, lake_dir, src)
    run_analyze(spec, load_settings(), show=False)
    again = run_analyze(spec, load_settings(), show=False)
    assert again.analyses["hourly"]["mode"] == "up to date"
    _archive(world, src, [3])  # a new video at noon
    _job(world, src, lake_dir)
    step = run_analyze(spec, load_settings(), show=False)
    assert step.analyses["hourly"] | {"rows": 0} == {"changed_videos": 1, "deployments": 1, "rows": 0,
                                                     "mode": "incremental"}
    lake = Lake(str(lake_dir))
    keep = ["deployment_id", "query", "dated", "video_id", "bin_start_utc", "bin_offset_s", "effort_min", "detections",
            "individuals", "max_n", "events", "first_utc", "last_utc"]
    incremental = pl.from_arrow(lake.read("analysis_counts")).select(keep).sort(keep[:6], nulls_last=True)
    presence_then = pl.from_arrow(lake.read("analysis_presence")).drop("run_id").sort("deployment_id", "query")
    run_analyze(spec, load_settings(), full=True, show=False)
    full = pl.from_arrow(lake.read("analysis_counts")).select(keep).sort(keep[:6], nulls_last=True)
    assert incremental.height == full.height and incremental.equals(full)
    assert presence_then.equals(pl.from_arrow(lake.read("analysis_presence")).drop("run_id").sort("deployment_id", "query"))
    assert full.filter(pl.col("bin_start_utc") == datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc)).height == 2


def test_bad_deployments_and_missing_outputs_fail_before_any_work(world, tmp_path):
    src = _archive(world, tmp_path / "src", [0])
    lake_dir = tmp_path / "lake"
    _job(world, src, lake_dir)
    spec = _spec(tmp_path, lake_dir, src)
    (tmp_path / "deployments.csv").write_text(DEPLOYMENTS.replace("Europe/Berlin\nmarsh", "Mars/Olympus\nmarsh"))
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        run_analyze(spec, load_settings(), show=False)
    (tmp_path / "deployments.csv").write_text(DEPLOYMENTS.replace("marsh-1,marsh,cam2", "marsh-1,pond,cam1"))
    with pytest.raises(ConfigError, match="overlap"):
        run_analyze(spec, load_settings(), show=False)
    (tmp_path / "deployments.csv").write_text(DEPLOYMENTS)
    wrong = spec.model_copy(update={"analyses": [spec.analyses[0].model_copy(update={"task": "track"})]})
    with pytest.raises(ConfigError, match="needs the track task's outputs"):
        run_analyze(wrong, load_settings(), show=False)
    unknown = spec.model_copy(update={"analyses": [AnalysisFile.model_validate({
        "deployments": spec.deployments.model_dump(),
        "analyses": [{"name": "x", "version": 1, "kind": "tracks", "queries": ["shapes"],
                      "lines": {"nowhere": [{"name": "l", "start": [0, 0], "end": [1, 1]}]}}]}).analyses[0]]})
    with pytest.raises(ConfigError, match=r"deployments \['nowhere'\]"):
        run_analyze(unknown, load_settings(), show=False)
    with pytest.raises(Exception, match="self-intersecting"):
        AnalysisFile.model_validate({"deployments": spec.deployments.model_dump(), "analyses": [{
            "name": "x", "version": 1, "kind": "tracks", "queries": ["shapes"],
            "zones": {"pond-1": [{"name": "bow", "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]}]}}]})
    assert not Lake(str(lake_dir)).exists("analysis_counts")


def test_track_speeds_and_line_crossings_equal_the_known_paths(world, tmp_path):
    """The oracle's tracks through the job and the tracks analysis: path lengths (in metres with a
    calibration of 1 px/m) and crossings of a vertical line equal what the truth's positions at the
    sampled frames give."""
    src = _archive(world, tmp_path / "src", [0, 1])
    lake_dir = tmp_path / "lake"
    spec = parse_job_spec({"sources": [str(src)], "lake": str(lake_dir), "model": {"name": f"oracle:{world}"},
                           "tasks": [{"task": "track", "queries": ["shapes"]}],
                           "sampling": {"fps": 2, "max_frames": 8, "overlap_s": 1.0, "size": 126}})
    run_job(spec, load_settings(), show=False, executor=LocalExecutor())
    (tmp_path / "deployments.csv").write_text(DEPLOYMENTS.replace("timezone\n", "timezone,pixelsPerMetre\n")
                                              .replace("Berlin\n", "Berlin,1\n"))
    analysis = AnalysisFile.model_validate({
        "lake": str(lake_dir),
        "deployments": {"file": str(tmp_path / "deployments.csv"), "path_pattern": "{locationName}/{cameraID}/*",
                        "roots": [str(src)]},
        "analyses": [{"name": "paths", "version": 1, "kind": "tracks", "queries": ["shapes"],
                      "lines": {"pond-1": [{"name": "middle", "start": [0.5, 0.0], "end": [0.5, 1.0]}]},
                      "zones": {"pond-1": [{"name": "right", "polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}]}}],
    })
    run_analyze(analysis, load_settings(), show=False)
    lake = Lake(str(lake_dir))
    names = {v["video_id"]: Path(v["uris"][0]).name for v in lake.read("videos").to_pylist()}
    tracks = lake.read("tracks").to_pylist()
    truth = {}
    with open(world / "points.csv") as f:
        for r in csv.DictReader(f):
            truth[(r["video"], round(float(r["time_s"]) * 1000), r["object_id"])] = (float(r["x"]), float(r["y"]))
    by_track: dict = defaultdict(list)
    for r in tracks:  # the truth object at each lake sample (the oracle's points lie within a pixel of it)
        name = names[r["video_id"]]
        near = min(((k[2], xy) for k, xy in truth.items() if k[0] == name and k[1] == round(r["t"] * 1000)),
                   key=lambda o: (o[1][0] - r["x"]) ** 2 + (o[1][1] - r["y"]) ** 2)
        by_track[(r["video_id"], r["object_id"])].append((r["t"], near[1], r["x_norm"]))
    stats = {(s["video_id"], s["object_id"]): s for s in lake.read("analysis_tracks").to_pylist()}
    assert set(stats) == set(by_track)
    expected_in = expected_out = 0
    for key, samples in by_track.items():
        samples.sort()
        path = sum(((b[1][0] - a[1][0]) ** 2 + (b[1][1] - a[1][1]) ** 2) ** 0.5 for a, b in zip(samples, samples[1:]))
        assert stats[key]["path_length_m"] == pytest.approx(path, abs=1.5 * len(samples))  # within a pixel a sample
        for a, b in zip(samples, samples[1:]):
            if (a[2] - 0.5) * (b[2] - 0.5) < 0:
                expected_in += a[2] < 0.5
                expected_out += a[2] > 0.5
    crossings = lake.read("analysis_crossings").to_pylist()
    assert expected_in + expected_out > 0  # the world's shapes do cross the middle
    assert sum(c["direction"] == "in" for c in crossings) == expected_in  # rightward across a downward line
    assert sum(c["direction"] == "out" for c in crossings) == expected_out
    assert all(c["t_utc"] is not None for c in crossings)
    # dwell in the right half: runs of samples inside, each standing for half the interval to its neighbours
    expected_dwell = 0.0
    for samples in by_track.values():
        times = [t for t, _, _ in samples]
        for i, (t, _, x) in enumerate(samples):
            if x >= 0.5:
                expected_dwell += ((t - times[i - 1]) / 2 if i else 0.0) + (
                    (times[i + 1] - t) / 2 if i + 1 < len(times) else 0.0)
    visits = lake.read("analysis_zone_visits").to_pylist()
    assert visits and sum(v["dwell_s"] for v in visits) == pytest.approx(expected_dwell, abs=1e-6)


def test_a_job_spec_runs_its_analyses_after_the_job(world, tmp_path):
    src = _archive(world, tmp_path / "src", [0])
    (tmp_path / "deployments.csv").write_text(DEPLOYMENTS)
    data = {"sources": [str(src)], "lake": str(tmp_path / "lake"), "model": {"name": f"oracle:{world}"},
            "tasks": [{"task": "count", "queries": ["shapes"]}], "sampling": {"max_frames": 8, "size": 126},
            "analyses": [{"name": "hourly", "version": 1, "kind": "counts", "queries": ["shapes"]}]}
    with pytest.raises(ConfigError, match="analyses need a deployments"):
        parse_job_spec(data)
    data["deployments"] = {"file": str(tmp_path / "deployments.csv"), "path_pattern": "{locationName}/{cameraID}/*",
                           "roots": [str(src)]}
    run_job(parse_job_spec(data), load_settings(), show=False, executor=LocalExecutor())
    lake = Lake(str(tmp_path / "lake"))
    assert {r["job"] for r in lake.read("runs").to_pylist()} >= {"job", "analyze"}
    assert lake.read("analysis_counts").num_rows > 0


def _tables(lake: Lake) -> tuple[pl.DataFrame, pl.DataFrame]:
    keep = ["deployment_id", "query", "dated", "video_id", "bin_start_utc", "bin_offset_s", "effort_min", "detections",
            "individuals", "max_n", "events", "first_utc", "last_utc"]
    counts = pl.from_arrow(lake.read("analysis_counts")).select(keep).sort(keep[:6], nulls_last=True)
    presence = pl.from_arrow(lake.read("analysis_presence")).drop("run_id").sort("deployment_id", "query")
    return counts, presence


def test_undated_footage_and_an_edited_deployments_file_are_followed_incrementally(world, tmp_path):
    """A new undated video updates its deployment's presence; renaming a deployment moves its footage, and
    the old deployment's rows go: each incremental run equals a full one."""
    src = _archive(world, tmp_path / "src", [0, 1])
    lake_dir = tmp_path / "lake"
    _job(world, src, lake_dir)
    spec = _spec(tmp_path, lake_dir, src)
    run_analyze(spec, load_settings(), show=False)
    lake = Lake(str(lake_dir))
    _archive(world, src, [2])  # the marsh's video, no start time
    _job(world, src, lake_dir)
    assert run_analyze(spec, load_settings(), show=False).analyses["hourly"]["mode"] == "incremental"
    step = _tables(lake)
    assert step[1].filter(pl.col("deployment_id") == "marsh-1")["undated_videos"].to_list() == [1, 1]
    run_analyze(spec, load_settings(), full=True, show=False)
    full = _tables(lake)
    assert step[0].equals(full[0]) and step[1].equals(full[1])

    (tmp_path / "deployments.csv").write_text(DEPLOYMENTS.replace("pond-1", "pond-9"))
    run_analyze(spec, load_settings(), show=False)
    moved = _tables(lake)
    assert "pond-1" not in set(moved[0]["deployment_id"].to_list()) | set(moved[1]["deployment_id"].to_list())
    run_analyze(spec, load_settings(), full=True, show=False)
    full = _tables(lake)
    assert moved[0].equals(full[0]) and moved[1].equals(full[1])


def test_a_video_without_sidecar_is_dated_by_its_container_tag(tmp_path):
    from media import make_video

    from vidlake.analysis.deployments import PathPattern, load_deployments
    from vidlake.analysis.placement import place
    from vidlake.jobs.analyze import _creation_time

    (tmp_path / "pond" / "cam1").mkdir(parents=True)
    path = make_video(tmp_path / "pond" / "cam1" / "clip.mp4", created="2026-06-01T07:00:00.000000Z")
    deployments = load_deployments(DEPLOYMENTS, "d.csv")
    (row,) = place([{"video_id": "v", "kind": "video", "uri": str(path), "duration_s": 2.0}], deployments,
                   PathPattern("{locationName}/{cameraID}/*", [str(tmp_path)]),
                   read_creation_time=lambda uri: _creation_time(uri, load_settings()))
    assert (row["start_source"], row["deployment_id"], row["dated"]) == ("container", "pond-1", True)
    assert row["start_utc"] == datetime(2026, 6, 1, 7, 0, tzinfo=timezone.utc)
