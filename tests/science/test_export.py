"""vidlake export: a Camtrap DP 1.0 package that frictionless validates and that says what the lake's points
and tracks say; MOT files that the ground-truth reader reads back as the lake's tracks; CSV and Parquet
equal to the lake's tables; bad requests refused before anything is written."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from vidlake.analysis.exports.camtrap import media_rows
from vidlake.analysis.exports.camtrap_observations import observations
from vidlake.analysis.exports.camtrap_schema import report_problems, validate_camtrap_dp
from vidlake.errors import ConfigError, JobFailed, StorageError
from vidlake.evaluation.formats import load_truth
from vidlake.jobs.eval import run_eval
from vidlake.jobs.export import run_export
from vidlake.platform.config import StorageSettings, load_settings
from vidlake.platform.lake import Lake

TAXA = {"shapes": "Animalia"}


@pytest.fixture
def lake(science_lake, tmp_path) -> Path:
    """A private copy of the shared science lake (an export writes a runs row)."""
    return Path(shutil.copytree(science_lake.lake, tmp_path / "lake"))


def _export(lake: Path, fmt: str, out: Path, **kwargs):
    return run_export(str(lake), fmt, str(out), load_settings(), show=False, **kwargs)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _frame(lake: Path, table: str) -> pl.DataFrame:
    return pl.from_arrow(Lake(str(lake)).read(table))


def _expected_observations(lake: Path) -> dict[tuple[str, str, str], int]:
    """(video, scientific name, task key) -> count, from the lake's points and tracks: distinct object ids."""
    keep = ["video_id", "task_key", "query", "object_id"]
    rows = pl.concat([_frame(lake, "points").select(keep), _frame(lake, "tracks").select(keep)])
    counted = rows.group_by("video_id", "task_key", "query").agg(pl.col("object_id").n_unique())
    return {(r["video_id"], TAXA.get(r["query"], r["query"]), r["task_key"]): r["object_id"]
            for r in counted.iter_rows(named=True)}


def test_camtrap_dp_package_validates_and_says_what_the_lake_says(lake, tmp_path):
    out = tmp_path / "package"
    result = _export(lake, "camtrap-dp", out, taxa=TAXA)
    report = validate_camtrap_dp(out)
    assert report.valid, report_problems(report)

    placements = _frame(lake, "placements")
    placed = placements.filter(pl.col("dated") & pl.col("deployment_id").is_not_null() & (pl.col("kind") == "video"))
    media = _rows(out / "media.csv")
    assert sorted(m["mediaID"] for m in media) == sorted(placed["video_id"]) and len(media) == 3
    starts = dict(zip(placed["video_id"], placed["start_utc"]))
    for m in media:  # on the deployment's clock (Berlin, summer: +02:00), the same instant as the lake's start
        assert m["timestamp"].endswith("+02:00")
        assert datetime.fromisoformat(m["timestamp"]) == starts[m["mediaID"]].replace(microsecond=0)
        assert m["filePath"].startswith("file:///") and m["filePublic"] == "false"
        assert m["fileMediatype"] in ("video/mp4", "video/webm")

    observed = _rows(out / "observations.csv")
    expected = _expected_observations(lake)
    assert len(observed) == len(expected) == result.rows["observations.csv"] == 7
    got = {(o["mediaID"], o["scientificName"], o["observationTags"].split("taskKey:")[1].split("|")[0]): int(o["count"])
           for o in observed}
    assert got == expected
    points = _frame(lake, "points").join(placements.select("video_id", "start_utc"), on="video_id")
    first = points.group_by("video_id", "task_key").agg(pl.col("start_utc").first(), pl.col("t").min())
    for r in first.iter_rows(named=True):  # eventStart: the first detection, cut to the second
        o = next(o for o in observed if o["mediaID"] == r["video_id"] and r["task_key"] in o["observationTags"])
        when = r["start_utc"] + timedelta(seconds=r["t"])
        assert datetime.fromisoformat(o["eventStart"]) == when.replace(microsecond=0)
    assert all(o["observationType"] == "animal" and o["classificationMethod"] == "machine" for o in observed)
    model = _frame(lake, "outputs").row(0, named=True)
    assert all(o["classifiedBy"].startswith(f"{model['model_id']}@{model['model_revision']}") for o in observed)

    package = json.loads((out / "datapackage.json").read_text())
    assert {t["scientificName"] for t in package["taxonomic"]} == {"Animalia", "circles"}
    assert package["temporal"] == {"start": "2026-05-01", "end": "2026-07-01"}
    assert package["spatial"]["bbox"] == [5.1, 52.1, 5.2, 52.2]
    runs = _frame(lake, "runs").filter(pl.col("job") == "export")
    assert runs["status"].to_list() == ["completed"] and runs["run_id"][0] == result.run_id
    assert json.loads(runs["metrics_json"][0])["rows"]["media.csv"] == 3


def test_broken_packages_do_not_validate(lake, tmp_path):
    good = tmp_path / "good"
    _export(lake, "camtrap-dp", good)

    def broken(name: str, table: str, column: str, value: str) -> Path:
        folder = Path(shutil.copytree(good, tmp_path / name))
        rows = _rows(folder / table)
        rows[0][column] = value
        with open(folder / table, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return folder

    cases = {
        "unknown media": (broken("fk", "observations.csv", "mediaID", "no-such-media"), "foreign-key"),
        "bad enum": (broken("enum", "observations.csv", "observationType", "animals"), "constraint-error"),
        "no offset": (broken("time", "media.csv", "timestamp", "2026-06-01T08:59:50"), "type-error"),
        "no count zero": (broken("zero", "observations.csv", "count", "0"), "constraint-error"),
    }
    for case, (folder, kind) in cases.items():
        report = validate_camtrap_dp(folder)
        assert not report.valid, case
        assert kind in {e.type for task in report.tasks for e in task.errors}, (case, report_problems(report))
    no_project = Path(shutil.copytree(good, tmp_path / "meta"))
    package = json.loads((no_project / "datapackage.json").read_text())
    del package["project"]
    package["resources"][2]["schema"] = "https://example.org/observations.json"
    (no_project / "datapackage.json").write_text(json.dumps(package))
    problems = report_problems(validate_camtrap_dp(no_project))
    assert any("'project'" in p for p in problems) and any("resource 'observations'" in p for p in problems)


def test_a_package_that_does_not_validate_fails_the_run_and_is_not_written(lake, tmp_path, monkeypatch):
    import vidlake.jobs.export as job

    real = job.export_camtrap_dp

    def unknown_media(lake, folder, taxa):  # the writer gone wrong: an observation of a media file not in media.csv
        exported = real(lake, folder, taxa)
        text = (folder / "observations.csv").read_text()
        media = _rows(folder / "observations.csv")[0]["mediaID"]
        (folder / "observations.csv").write_text(text.replace(media, "no-such-media", 1))
        return exported

    monkeypatch.setattr(job, "export_camtrap_dp", unknown_media)
    out = tmp_path / "package"
    with pytest.raises(JobFailed, match=r"does not validate(.|\n)*no-such-media"):
        _export(lake, "camtrap-dp", out)
    assert not out.exists()
    run = _frame(lake, "runs").filter(pl.col("job") == "export")
    assert run["status"].to_list() == ["failed"] and "foreign" in run["message"][0].lower()


@pytest.mark.s3
def test_an_export_to_s3_is_written_file_by_file(lake, s3_endpoint, s3_bucket):
    import boto3

    settings = load_settings(storage=StorageSettings(endpoint_url=s3_endpoint).model_dump())
    out = f"s3://{s3_bucket}/exports/mot"
    result = run_export(str(lake), "mot", out, settings, show=False)
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=s3_bucket, Prefix="exports/mot/")
    assert sorted(f"s3://{s3_bucket}/{o['Key']}" for o in listed["Contents"]) == sorted(result.files)
    assert sorted(f.removeprefix(out + "/") for f in result.files) == sorted(result.rows)
    with pytest.raises(StorageError, match="cannot reach the bucket 'no-such-bucket'"):
        run_export(str(lake), "mot", "s3://no-such-bucket/x", settings, show=False)


def test_undated_footage_is_left_out_and_listed(lake, tmp_path):
    table = Lake(str(lake))
    rows = table.read("placements").to_pylist()
    undated = next(r for r in rows if "s001" in r["uri"])
    undated.update(dated=False, start_utc=None, end_utc=None, problem="no start time: no sidecar")
    table.upsert("placements", [undated], ["dated", "start_utc", "end_utc", "problem"])
    out = tmp_path / "package"
    result = _export(lake, "camtrap-dp", out)
    assert validate_camtrap_dp(out).valid
    assert undated["video_id"] not in {m["mediaID"] for m in _rows(out / "media.csv")}
    assert undated["video_id"] not in {o["mediaID"] for o in _rows(out / "observations.csv")}
    assert len(_rows(out / "media.csv")) == 2 and len(_rows(out / "observations.csv")) == 5
    assert [(s.item, s.reason) for s in result.skipped] == [
        (f"video {undated['uri']}", "undated (no start time: no sidecar): Camtrap DP needs a timestamp")]


def test_media_with_nothing_found_get_one_blank_observation(lake, tmp_path):
    table = Lake(str(lake))
    video = _frame(lake, "placements").filter(pl.col("uri").str.contains("s000"))["video_id"][0]
    for name in ("points", "tracks"):  # the tasks ran (outputs) and found nothing
        table.replace_where(name, [], {"video_id": video})
    out = tmp_path / "package"
    _export(lake, "camtrap-dp", out)
    assert validate_camtrap_dp(out).valid
    mine = [o for o in _rows(out / "observations.csv") if o["mediaID"] == video]
    assert [(o["observationType"], o["count"], o["scientificName"]) for o in mine] == [("blank", "", "")]


def test_images_of_a_set_are_media_with_their_own_observations():
    start = datetime(2026, 6, 1, 6, 0, tzinfo=timezone.utc)
    local = datetime(2026, 6, 1, 8, 0)
    images = [{"image_id": f"img{i}", "uris": [f"/traps/a/{i}.jpg"], "format": "JPEG",
               "captured_at_source": "exif_offset", "captured_local": local + timedelta(seconds=2 * i),
               "utc_offset": "+02:00", "captured_at": None} for i in range(2)]
    sets = [{"set_id": "set1", "image_ids": ["img0", "img1"], "uris": ["/traps/a/0.jpg", "/traps/a/1.jpg"],
             "folder": "/traps/a"}]
    placements = [{"video_id": "set1", "kind": "set", "uri": "/traps/a/0.jpg", "deployment_id": "d1",
                   "start_utc": start, "end_utc": start, "dated": True, "problem": None}]
    skipped = []
    media = media_rows(placements, [], sets, images, {"d1": "Europe/Berlin"}, skipped)
    assert [(m["row"]["mediaID"], m["row"]["timestamp"], m["row"]["fileMediatype"]) for m in media] == [
        ("img0", "2026-06-01T08:00:00+02:00", "image/jpeg"), ("img1", "2026-06-01T08:00:02+02:00", "image/jpeg")]
    detections = pl.DataFrame({"video_id": ["set1"] * 3, "task": ["count"] * 3, "task_key": ["k1"] * 3,
                               "query": ["deer"] * 3, "t": [2.0] * 3, "object_id": [1, 2, 3], "image_id": ["img1"] * 3})
    outputs = pl.DataFrame({"video_id": ["set1"], "task": ["count"], "task_key": ["k1"], "query": ["deer"],
                            "model_id": ["m"], "model_revision": ["r"], "run_id": ["run1"]})
    counts = pl.DataFrame({"video_id": ["set1"], "task_key": ["k1"], "query": ["deer"], "count": [3],
                           "method": ["max_per_image"]})
    rows = observations(media, detections, outputs, counts, {}, {"deer": "Capreolus capreolus"}, skipped)
    got = [(o["mediaID"], o["observationType"], o.get("scientificName"), o.get("count"), o["eventStart"]) for o in rows]
    assert got == [
        ("img0", "blank", None, None, "2026-06-01T08:00:00+02:00"),
        ("img1", "animal", "Capreolus capreolus", 3, "2026-06-01T08:00:02+02:00")]
    assert skipped == []


def test_mot_files_read_back_as_the_lakes_tracks(lake, tmp_path):
    table = Lake(str(lake))
    sample = table.read("tracks").to_pylist()[0]  # one sample with a box: the file holds the box, centred on it
    table.upsert("tracks", [{**sample, "box": [sample["x"] - 5, sample["y"] - 4, sample["x"] + 5, sample["y"] + 4]}],
                 ["box"])
    out = tmp_path / "mot"
    result = _export(lake, "mot", out)
    names = {(r["folder"], r["name"]): r["video_id"] for r in _rows(out / "sequences.csv")}
    assert {f for f, _ in names} == {"shapes"} and len(names) == 3
    truth = pl.from_arrow(load_truth(out / "shapes").tracks)
    read = {(names[("shapes", r["video"])], r["object_id"], round(r["time_s"], 5)): (r["x"], r["y"], r["width"])
            for r in truth.iter_rows(named=True)}
    tracks = _frame(lake, "tracks")
    lake_rows = {(r["video_id"], r["object_id"], round(r["t"], 5)): (r["x"], r["y"])
                 for r in tracks.iter_rows(named=True)}
    assert read.keys() == lake_rows.keys() and len(read) == tracks.height == sum(
        n for f, n in result.rows.items() if "/mot/" in f)
    assert max(abs(read[k][i] - lake_rows[k][i]) for k in read for i in (0, 1)) < 1e-3
    boxed = (sample["video_id"], sample["object_id"], round(sample["t"], 5))
    assert read[boxed][2] == 10.0 and sorted({v[2] for v in read.values()}) == [0.0, 10.0]
    # the names are the videos' file names, so `vidlake eval` matches them: the lake scores 1.0 against itself
    scores = run_eval(str(lake), str(out / "shapes"), load_settings(), search=False).rows
    track = {r["metric"]: r["value"] for r in scores if r["task"] == "track"}
    assert track["track_hota"] == track["track_idf1"] == 1.0 and track["track_tp"] == tracks.height


def test_csv_and_parquet_equal_the_lake_tables(lake, tmp_path):
    out = tmp_path / "tables"
    result = _export(lake, "csv", out)
    for name in ("counts", "points", "tracks", "placements", "deployments", "analysis_counts", "analysis_presence",
                 "analysis_tracks", "analysis_crossings", "analysis_zone_visits"):
        have = Lake(str(lake)).read(name)
        assert have.num_rows > 0, name
        parquet = pq.read_table(out / f"{name}.parquet")
        keys = [(c, "ascending") for c in have.column_names
                if not str(have.schema.field(c).type).startswith(("list", "fixed"))]
        assert parquet.sort_by(keys).to_pylist() == have.sort_by(keys).to_pylist(), name
        rows = _rows(out / f"{name}.csv")
        assert len(rows) == have.num_rows == result.rows[f"{name}.csv"], name
    placements = {r["video_id"]: r for r in _rows(out / "placements.csv")}
    for p in Lake(str(lake)).read("placements").to_pylist():
        assert datetime.fromisoformat(placements[p["video_id"]]["start_utc"]) == p["start_utc"]
        assert datetime.fromisoformat(placements[p["video_id"]]["end_utc"]) == p["end_utc"]
    counts = {(r["video_id"], r["task_key"]): r for r in _rows(out / "counts.csv")}
    for c in Lake(str(lake)).read("counts").to_pylist():
        row = counts[(c["video_id"], c["task_key"])]
        assert int(row["count"]) == c["count"] and json.loads(row["event_times_s"]) == c["event_times_s"]
    points = sorted((r["video_id"], r["task_key"], float(r["t"]), float(r["x"])) for r in _rows(out / "points.csv"))
    assert points == sorted((p["video_id"], p["task_key"], p["t"], p["x"])
                            for p in Lake(str(lake)).read("points").to_pylist())


def test_bad_requests_fail_before_anything_is_written(lake, tmp_path):
    out = tmp_path / "out"
    runs = Lake(str(lake)).read("runs").num_rows
    with pytest.raises(ConfigError, match="camtrap-dp, mot, csv"):
        _export(lake, "darwin-core", out)
    with pytest.raises(ConfigError, match=r"taxa names queries .*'deer'"):
        _export(lake, "camtrap-dp", out, taxa={"deer": "Cervus elaphus"})
    shutil.rmtree(lake / "tracks")
    with pytest.raises(ConfigError, match=r"run a track task \(`vidlake run`"):
        _export(lake, "mot", out)
    shutil.rmtree(lake / "deployments")
    with pytest.raises(ConfigError, match="run `vidlake analyze` with a deployments file first"):
        _export(lake, "camtrap-dp", out)
    with pytest.raises(ConfigError, match="not a vidlake lake"):
        _export(tmp_path / "nowhere", "csv", out)
    assert not out.exists()
    assert Lake(str(lake)).read("runs").num_rows == runs
