"""`vidlake show` for an image set: its kind, its images (path, capture time, upright size) and its outputs
(captions, counts with their method, the points on each image), on a lake with camera-trap photos ingested
for real and a job's rows for their sets."""

import json

import pytest

from index.lake_rows import add_trap_sets
from vidlake.cli import main
from vidlake.platform.config import load_settings


@pytest.fixture(scope="module")
def trap_lake(tmp_path_factory) -> tuple[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("show-sets")
    settings = load_settings(lake={"uri": str(root / "lake")})
    return settings.lake.uri, add_trap_sets(settings, root / "photos")


def test_show_prints_a_sets_images_and_outputs(trap_lake, capsys):
    lake, sets = trap_lake
    assert main(["show", sets["deer"][:8], "--lake", lake]) == 0
    out = capsys.readouterr().out
    assert f"{sets['deer']}  image set (burst)  4 images  2026-06-01 09:00:00 .. 2026-06-01 09:00:06" in out
    rows = [line for line in out.splitlines() if "IMG_1" in line]
    assert [r.split("│")[3].strip() for r in rows] == [f"2026-06-01 09:00:0{s}" for s in (0, 2, 4, 6)]
    assert all("64x48" in r for r in rows) and rows[0].split("│")[-2].strip().endswith("cam01/IMG_10.JPG")
    assert "A red deer stag grazes" in out and "max_per_image" in out
    assert main(["show", sets["badger"], "--lake", lake]) == 0
    out = capsys.readouterr().out
    assert "1 image " in out and "40x80" in out and "rotated.jpg" in out  # upright: EXIF turned it


def test_show_json_lists_points_per_image_and_takes_a_time_range(trap_lake, capsys):
    lake, sets = trap_lake
    assert main(["show", sets["deer"], "--lake", lake, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["set"]["kind"], shown["set"]["duration_s"]) == ("burst", 6.0)
    assert [(i["t"], i["captured_local"], i["width"], i["height"]) for i in shown["images"]][1] == (
        2.0, "2026-06-01 09:00:02", 64, 48)
    assert [(p["image"], p["image_id"], p["x"], p["y"]) for p in shown["points"]] == [
        (1, shown["images"][0]["image_id"], 20.0, 30.0), (1, shown["images"][0]["image_id"], 44.0, 30.0),
        (3, shown["images"][2]["image_id"], 32.0, 24.0)]
    assert [(c["query"], c["count"], c["method"]) for c in shown["counts"]] == [("deer", 2, "max_per_image")]
    assert [e["kind"] for e in shown["timeline"]] == ["captions"]
    assert main(["show", sets["deer"], "--lake", lake, "--json", "--from", "3"]) == 0
    assert [p["image"] for p in json.loads(capsys.readouterr().out)["points"]] == [3]
    assert main(["show", sets["dawn"], "--lake", lake]) == 0  # a set no job has run on yet
    assert "no captions, answers, counts or points yet" in capsys.readouterr().out
    assert main(["show", "f" * 16, "--lake", lake]) == 2
    assert "no video" in capsys.readouterr().err
