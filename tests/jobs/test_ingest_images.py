"""Ingest of still images beside videos: identity by content, upright size, capture times, bursts as sets."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from media import photo as _photo
from media import trap_folder as _trap_folder
from vidlake.jobs.ingest import run_ingest
from vidlake.platform.config import LakeSettings, load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.executors import LocalExecutor


def test_images_are_ingested_with_upright_sizes_times_and_bursts(tmp_path):
    src = _trap_folder(tmp_path / "src")
    settings = load_settings().model_copy(update={"lake": LakeSettings(uri=str(tmp_path / "lake"))})
    result = run_ingest(settings, [str(src)], show=False, executor=LocalExecutor())
    assert (result.new, result.images_new, result.failed) == (1, 13, 1)  # the video, 13 images, the corrupt JPEG
    lake = Lake(settings.lake.uri)
    images = {Path(i["uris"][0]).name: i for i in lake.read("images").to_pylist()}
    assert len(images) == 13 and "corrupt.jpg" not in images
    rotated = images["rotated.jpg"]
    assert (rotated["width"], rotated["height"], rotated["orientation"]) == (40, 80, 6)  # upright: sides swapped
    assert rotated["captured_at_source"] == "exif_local" and rotated["captured_at"] is None  # never guessed as UTC
    assert rotated["captured_local"] == datetime(2026, 6, 2, 10, 0, 0)
    first = images["IMG_00.JPG"]
    assert first["captured_at"] == datetime(2026, 6, 1, 6, 0, 0, tzinfo=timezone.utc) and first["utc_offset"] == "+02:00"
    assert images["no-exif.jpg"]["captured_at_source"] == "file_mtime"
    assert images["alpha.png"]["has_alpha"] and images["deep.tif"]["bit_depth"] == 16
    (error,) = lake.read("errors").to_pylist()
    assert error["uri"].endswith("corrupt.jpg") and error["error_kind"] == "bad_image"

    sets = lake.read("sets").to_pylist()
    bursts = sorted((len(s["image_ids"]), s["start_local"]) for s in sets if s["folder"].endswith("cam01"))
    assert bursts == [(2, datetime(2026, 6, 1, 14, 0, 0)), (3, datetime(2026, 6, 1, 8, 0, 0)),
                      (4, datetime(2026, 6, 1, 9, 0, 0))]
    assert result.sets_new == len(sets)

    versions = {t: lake.version(t) for t in ("videos", "images", "sets", "files", "errors")}
    again = run_ingest(settings, [str(src)], show=False, executor=LocalExecutor())  # a re-run writes nothing
    assert (again.images_new, again.images_known, again.sets_new, again.skipped_failed) == (0, 13, 0, 1)
    assert {t: lake.version(t) for t in versions} == {**versions, "files": lake.version("files")}
    assert lake.read("images").num_rows == 13 and lake.read("sets").num_rows == len(sets)


def test_a_burst_longer_than_a_set_is_split_evenly(tmp_path):
    cam = tmp_path / "cam"
    cam.mkdir()
    for shot in range(7):
        _photo(cam / f"{shot}.jpg", f"2026:06:01 08:00:{shot:02d}", "+00:00", seed=shot)
    settings = load_settings(ingest={"set_max_images": 5}).model_copy(
        update={"lake": LakeSettings(uri=str(tmp_path / "lake"))})
    run_ingest(settings, [str(cam)], show=False, executor=LocalExecutor())
    sizes = sorted(len(s["image_ids"]) for s in Lake(settings.lake.uri).read("sets").to_pylist())
    assert sizes == [3, 4]


def test_time_lapse_and_manifest_sets(tmp_path):
    import pytest

    from vidlake.errors import ConfigError

    cam = tmp_path / "tl"
    cam.mkdir()
    for shot in range(7):  # one frame a minute
        _photo(cam / f"{shot}.jpg", f"2026:06:01 08:{shot:02d}:00", "+00:00", seed=shot)
    lapse = load_settings(ingest={"image_sets": "timelapse", "timelapse_every": 3}).model_copy(
        update={"lake": LakeSettings(uri=str(tmp_path / "lake1"))})
    run_ingest(lapse, [str(cam)], show=False, executor=LocalExecutor())
    sets = Lake(lapse.lake.uri).read("sets").to_pylist()
    assert sorted(len(s["image_ids"]) for s in sets) == [1, 3, 3] and {s["kind"] for s in sets} == {"timelapse"}

    (tmp_path / "sets.csv").write_text("set_id,image\nmorning,tl/0.jpg\nmorning,tl/1.jpg\nlater,tl/6.jpg\n")
    named = load_settings(ingest={"image_sets": "manifest", "set_manifest": str(tmp_path / "sets.csv")}).model_copy(
        update={"lake": LakeSettings(uri=str(tmp_path / "lake2"))})
    run_ingest(named, [str(cam)], show=False, executor=LocalExecutor())
    sets = {s["label"]: s for s in Lake(named.lake.uri).read("sets").to_pylist()}
    assert sorted(sets) == ["later", "morning"] and [Path(u).name for u in sets["morning"]["uris"]] == ["0.jpg", "1.jpg"]

    (tmp_path / "sets.csv").write_text("set_id,image\nmorning,tl/nope.jpg\n")
    with pytest.raises(ConfigError, match="line 2: unknown image"):
        run_ingest(named, [str(cam)], show=False, executor=LocalExecutor())
    missing = load_settings(ingest={"image_sets": "manifest", "set_manifest": str(tmp_path / "none.csv")}).model_copy(
        update={"lake": LakeSettings(uri=str(tmp_path / "lake3"))})
    with pytest.raises(ConfigError, match="manifest .* does not exist"):
        run_ingest(missing, [str(cam)], show=False, executor=LocalExecutor())
    assert not Lake(missing.lake.uri).exists("images")  # refused before any work
