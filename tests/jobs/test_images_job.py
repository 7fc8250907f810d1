"""The main job on still images: image sets go to Molmo 2 through its image path, beside the videos."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from media import trap_folder
from tiny_model import tiny_settings  # noqa: F401 - fixture
from vidlake.jobs.image_sets import set_items
from vidlake.jobs.run import run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.operators.merge import merge_windows
from vidlake.operators.parse import ParseOutput
from vidlake.operators.plan import PlanWindows
from vidlake.operators.sample import SampleConfig, SampleFrames
from vidlake.platform.config import SamplingSettings, load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.executors import LocalExecutor

SAMPLING = {"max_frames": 8, "size": 126, "image_size": 96}


def test_image_sets_are_captioned_counted_and_pointed_once(tiny_settings, tmp_path):  # noqa: F811
    src = trap_folder(tmp_path / "src")
    spec = parse_job_spec({
        "sources": [str(src)], "lake": str(tmp_path / "lake"), "model": tiny_settings.model_dump(),
        "tasks": [{"task": "caption", "max_new_tokens": 6}, {"task": "count", "queries": ["deer"], "max_new_tokens": 8}],
        "sampling": SAMPLING,
    })
    result = run_job(spec, load_settings(), show=False, executor=LocalExecutor())
    lake = Lake(spec.lake)
    sets = {s["set_id"]: s for s in lake.read("sets").to_pylist()}
    (video,) = lake.read("videos").to_pylist()
    assert (result.videos, result.sets) == (1, len(sets)) and result.windows_failed == 0
    assert len(result.task_keys) == 4  # caption and count, on videos and on image sets: keys of their own
    outputs = lake.read("outputs").to_pylist()
    by_media = {(o["video_id"] in sets, o["task"]): set() for o in outputs}
    for o in outputs:
        by_media[(o["video_id"] in sets, o["task"])].add(o["task_key"])
    assert {k: len(v) for k, v in by_media.items()} == {(False, "caption"): 1, (False, "count"): 1,
                                                        (True, "caption"): 1, (True, "count"): 1}
    assert by_media[(True, "caption")] != by_media[(False, "caption")]
    assert {o["video_id"] for o in outputs} == {*sets, video["video_id"]}
    assert all("these images" in o["prompt"] for o in outputs if o["task"] == "caption" and o["video_id"] in sets)

    windows = {w["video_id"]: w for w in lake.read("windows").to_pylist() if w["kind"] == "set"}
    assert set(windows) == set(sets)
    burst = next(s for s in sets.values() if len(s["image_ids"]) == 4)  # 09:00:00, :02, :04, :06
    assert windows[burst["set_id"]]["timestamps_s"] == [0.0, 2.0, 4.0, 6.0]
    assert (windows[burst["set_id"]]["start_s"], windows[burst["set_id"]]["end_s"]) == (0.0, 6.0)
    captions = {c["video_id"]: c for c in lake.read("captions").to_pylist() if c["video_id"] in sets}
    assert captions[burst["set_id"]]["start_s"] == 0.0 and captions[burst["set_id"]]["end_s"] == 6.0
    assert {c["video_id"] for c in lake.read("counts").to_pylist()} == {*sets, video["video_id"]}

    versions = {t: lake.version(t) for t in ("windows", "outputs", "captions", "counts", "sets", "images")}
    again = run_job(spec, load_settings(), show=False, executor=LocalExecutor())  # a re-run writes nothing
    assert again.videos_todo == 0 and again.windows_planned == 0
    assert {t: lake.version(t) for t in versions} == versions


def test_a_set_window_holds_its_images_upright_at_their_capture_times(tiny_settings, tmp_path):  # noqa: F811
    from vidlake.jobs.ingest import run_ingest
    from vidlake.platform.config import LakeSettings

    src = trap_folder(tmp_path / "src")
    settings = load_settings().model_copy(update={"lake": LakeSettings(uri=str(tmp_path / "lake"))})
    ingest = run_ingest(settings, [str(src)], show=False, executor=LocalExecutor())
    items = {Path(i["set_uris"][0]).name: i for i in set_items(Lake(settings.lake.uri), ingest.source_set_ids)}
    rotated = items["rotated.jpg"]
    assert rotated["set_sizes"] == [[40, 80]] and rotated["set_times_s"] == [0.0]
    (window,) = PlanWindows(SamplingSettings(**SAMPLING))({**rotated, "pending_task_keys": ["k"]})
    assert (window["kind"], window["window_count"], window["sample_size"]) == ("set", 1, 96)
    sampled = SampleFrames(SampleConfig(sampling=SamplingSettings(**SAMPLING)))(window)
    assert sampled["frames"].shape == (1, 80, 40, 3) and sampled["decoder"] == "pillow"  # EXIF orientation applied
    burst = items["IMG_00.JPG"]
    assert burst["set_times_s"] == [0.0, 2.0, 4.0] and burst["duration_s"] == 4.0


def test_points_in_a_set_land_on_their_image_and_a_burst_counts_its_fullest_image():
    """A pointing answer numbers every point anew across the images, so the same deer in three photos is
    three ids: the burst's count is the most deer in any one photo (the camera-trap convention)."""
    row = {
        "status": "ok", "kind": "set", "task": "count", "task_key": "k", "video_id": "s", "window_id": "w",
        "query": "deer", "start_s": 0.0, "end_s": 4.0, "timestamps_s": [0.0, 2.0, 4.0], "time_offset_s": 0.0,
        "width": 400, "height": 300, "rotation": 0, "set_times_s": [0.0, 2.0, 4.0],
        "set_sizes": [[400, 300], [400, 300], [300, 400]], "set_image_ids": ["i1", "i2", "i3"],
        "raw_text": 'Counting the <points coords="1 1 500 500 2 100 100;2 3 510 500;3 4 250 750">deer</points> '
                    "shows a total of 4.",
    }
    parsed = ParseOutput()(row)
    assert parsed["parse_status"] == "ok"
    tables = merge_windows([parsed], "r", datetime.now(timezone.utc))
    points = sorted((p["image_id"], p["t"], p["x"], p["y"]) for p in tables["points"])
    assert points == [("i1", 0.0, 40.0, 30.0), ("i1", 0.0, 200.0, 150.0), ("i2", 2.0, 204.0, 150.0),
                      ("i3", 4.0, 75.0, 300.0)]  # the third image is portrait: its own pixels
    (count,) = tables["counts"]
    assert (count["count"], count["method"]) == (2, "max_per_image")
