"""``vidlake eval`` on the oracle's lake: what the platform loses, and a broken lake scoring lower on the right metric."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from vidlake.errors import ConfigError
from vidlake.jobs.eval import run_eval
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake

VIDLAKE = str(Path(sys.executable).with_name("vidlake"))


def _metrics(result, task: str, query: str = "shapes") -> dict[str, float]:
    """One task's metrics for one query (each query of the oracle lake has a task_key of its own)."""
    return {r["metric"]: r["value"] for r in result.rows if r["task"] == task and r["query"] == query}


@pytest.fixture(scope="module")
def evaluated(world, lake):
    return run_eval(lake.uri, str(world), load_settings(), search=False)


def test_the_oracle_loses_nothing_in_points_and_tracks(evaluated):
    for query in ("shapes", "circles", "red squares"):
        points = _metrics(evaluated, "point", query)
        assert points["point_f1"] == 1.0 and points["point_fp"] == 0
        assert points["point_mean_distance_px"] is None or points["point_mean_distance_px"] < 1.0
    tracks = _metrics(evaluated, "track")
    assert tracks["track_deta"] > 0.99 and tracks["track_fn"] == tracks["track_fp"] == 0  # MOTA < 1: id switches only
    counts = _metrics(evaluated, "count")
    assert 0.0 < counts["count_exact"] <= 1.0 and counts["count_mae"] >= 0
    assert "count_exact_all_frames" in counts  # counts.csv's whole-video counts are compared too
    assert any("never on a sampled frame" in n for n in evaluated.notes)
    assert evaluated.videos_matched == evaluated.videos_in_truth == 5


def test_results_are_kept_in_the_evals_table(evaluated, lake):
    rows = [r for r in lake.read("evals").to_pylist() if r["run_id"] == evaluated.run_id]
    assert len(rows) == len(evaluated.rows) and {r["truth_fingerprint"] for r in rows} == {evaluated.fingerprint}
    assert {r["model_id"] for r in rows if r["task"] == "point"} == {"oracle:" + Path(evaluated.truth).name}
    (run,) = [r for r in lake.read("runs").to_pylist() if r["run_id"] == evaluated.run_id]
    assert run["job"] == "eval" and run["status"] == "completed"


def _broken_copy(lake: Lake, tmp_path: Path, table: str, change) -> Lake:
    copy = tmp_path / "broken"
    shutil.copytree(lake.uri, copy)
    broken = Lake(str(copy))
    rows = [change(r) for r in broken.read(table).to_pylist()]
    write_deltalake(broken.table_uri(table), pa.Table.from_pylist(rows, schema=broken.read(table).schema),
                    mode="overwrite")
    return broken


def test_a_shifted_timestamp_lowers_point_f1(world, lake, evaluated, tmp_path):
    broken = _broken_copy(lake, tmp_path, "points", lambda r: {**r, "t": r["t"] + 0.5})
    shifted = _metrics(run_eval(broken.uri, str(world), load_settings(), search=False), "point")
    assert shifted["point_f1"] < 0.5 < _metrics(evaluated, "point")["point_f1"]


def test_swapped_ids_lower_association_not_detection(world, lake, evaluated, tmp_path):
    def swap(r):  # from halfway through each video, ids 1 and 2 trade places
        if r["t"] > 6 and r["object_id"] in (1, 2):
            return {**r, "object_id": 3 - r["object_id"]}
        return r

    broken = _metrics(run_eval(_broken_copy(lake, tmp_path, "tracks", swap).uri, str(world), load_settings(),
                               search=False), "track")
    good = _metrics(evaluated, "track")
    assert broken["track_assa"] < good["track_assa"] and broken["track_idf1"] < good["track_idf1"]
    assert broken["track_id_switches"] > good["track_id_switches"]
    assert broken["track_deta"] == pytest.approx(good["track_deta"])


def test_a_truth_without_the_lakes_videos_or_a_bad_file_fails_clearly(world, lake, tmp_path):
    other = tmp_path / "truth"
    other.mkdir()
    (other / "counts.csv").write_text("video,query,count\nnot-here.mp4,cars,3\n")
    with pytest.raises(ConfigError, match="none of the 1 videos of the truth"):
        run_eval(lake.uri, str(other), load_settings(), search=False)
    (other / "counts.csv").write_text("video,query,count\nnot-here.mp4,cars,three\n")
    with pytest.raises(ConfigError, match="line 2"):
        run_eval(lake.uri, str(other), load_settings(), search=False)


def test_the_command_prints_a_table_and_json(world, lake):
    out = subprocess.run([VIDLAKE, "eval", "--lake", lake.uri, "--truth", str(world), "--no-search", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert doc["truth_fingerprint"] and any(m["metric"] == "point_f1" and m["value"] == 1.0 for m in doc["metrics"])
    table = subprocess.run([VIDLAKE, "eval", "--lake", lake.uri, "--truth", str(world), "--no-search"],
                           capture_output=True, text=True, timeout=300)
    assert table.returncode == 0 and "point_f1" in table.stdout and "track_hota" in table.stdout, table.stderr[-2000:]
    bad = subprocess.run([VIDLAKE, "eval", "--lake", lake.uri, "--truth", str(world / "nope")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_search_is_measured_through_the_index(world, lake):
    """Labels ("red circle") and their appearances ("a red circle appears") searched in the index built from the
    oracle's captions: recall@10 and MRR, each over every label the truth shows."""
    from vidlake.jobs.index import run_index
    from vidlake.platform.config import LakeSettings

    settings = load_settings().model_copy(update={"lake": LakeSettings(uri=lake.uri)})
    run_index(settings)
    result = run_eval(lake.uri, str(world), settings)
    search = {r["metric"]: r["value"] for r in result.rows if r["task"] == "search"}
    assert search["search_queries"] == search["search_appears_queries"] >= 3
    assert search["search_recall_at_k"] > 0.5 and 0 < search["search_mrr"] <= 1  # the captions name the objects
    assert 0 <= search["search_appears_recall_at_k"] <= 1
