"""The synthetic world: deterministic, its truth files agree with each other, with the decoder and with the pixels."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import av
import numpy as np
import pytest

from vidlake.cli import main
from vidlake.evaluation.synth import make_synthetic
from vidlake.evaluation.world import COLOURS, QUERIES, match_query
from vidlake.platform.media import read_pyav

VIDEOS = 7  # one of each kind: mp4 and webm, constant and variable rate, rotated 270, 90, 180


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    make_synthetic(root, videos=VIDEOS, seed=0, max_seconds=12, echo=None)
    return root


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _decoded_pts(path: Path) -> list[float]:
    """Every frame's PTS (s) as PyAV decodes it, in presentation order."""
    with av.open(str(path)) as c:
        return sorted(f.time for f in c.decode(c.streams.video[0]))


def _videos(root: Path) -> list[dict]:
    return json.loads((root / "world.json").read_text())["videos"]


def test_the_world_has_every_kind(world):
    videos = _videos(world)
    assert [v["file"] for v in videos] == sorted(p.name for p in (world / "videos").iterdir())
    assert {Path(v["file"]).suffix for v in videos} == {".mp4", ".webm"}
    assert {v["rotation"] for v in videos} == {0, 90, 180, 270}
    assert {Path(v["file"]).suffix for v in videos if v["fps"] == "vfr"} == {".mp4", ".webm"}
    assert [v["duration_s"] for v in videos][::4] == [12.0, 12.0]  # every 4th video lasts --max-seconds
    assert len(QUERIES) == 16 and all(1 <= len(v["objects"]) <= 6 for v in videos)


def test_match_query():
    assert match_query("Red Circles", "red circle") and match_query("red circle", "red circle")
    assert match_query("circles", "blue circle") and match_query("CIRCLE", "blue circle")
    assert match_query("shapes", "green triangle") and match_query("objects", "yellow square")
    assert match_query("red shapes", "red square") and not match_query("red shapes", "blue square")
    assert match_query("red circles", "blue circle") is False and match_query("squares", "red circle") is False
    assert match_query("dogs", "red circle") is None and match_query("big red circles", "red circle") is None


def test_same_seed_same_files_other_seed_another(world, tmp_path):
    """Byte for byte, videos included, from a fresh process whose malloc hands out non-zero memory: an encoder
    reading memory nobody wrote (x264's mb-tree did) shows up here."""
    again = tmp_path / "again"
    env = {**os.environ, "MALLOC_PERTURB_": "1"}
    subprocess.run([sys.executable, "-m", "vidlake.cli", "synth", str(again), "--videos", str(VIDEOS),
                    "--max-seconds", "12"], env=env, check=True, capture_output=True, timeout=120)
    assert _files(again) == _files(world)
    other = make_synthetic(tmp_path / "other", videos=2, seed=1, max_seconds=12, echo=None)
    for name in ("objects.csv", "points.csv"):
        mine = [r for r in _rows(world / name) if r["video"] in {p.name for p in other}]
        assert _rows(tmp_path / "other" / name) != mine


def test_counts_events_boxes_and_points_agree(world):
    points = _rows(world / "points.csv")
    frames = {p.stem: [r["time_s"] for r in _rows(p)] for p in (world / "frames").iterdir()}
    seen: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))  # video -> id -> frame indices
    labels = {}
    for r in points:
        seen[r["video"]][int(r["object_id"])].append(frames[Path(r["video"]).stem].index(r["time_s"]))
        labels[(r["video"], int(r["object_id"]))] = r["label"]
    counts = _rows(world / "counts.csv")
    durations = {v["file"]: v["duration_s"] for v in _videos(world)}
    assert len(counts) == 16 * VIDEOS
    for c in counts:
        ids = {i for i in seen[c["video"]] if match_query(c["query"], labels[(c["video"], i)])}
        assert int(c["count"]) == len(ids), c
        assert float(c["start_s"]) == 0 and float(c["end_s"]) == durations[c["video"]]
    events = defaultdict(list)
    for e in _rows(world / "events.csv"):
        frame = frames[Path(e["video"]).stem].index(e["time_s"])  # raises when the time is no frame's PTS
        events[(e["video"], int(e["object_id"]))].append((e["event"], frame))
    re_entries = 0
    for video, ids in seen.items():
        for i, idx in ids.items():
            runs = np.split(np.array(idx), np.flatnonzero(np.diff(idx) != 1) + 1)  # consecutive visible frames
            assert events[(video, i)] == [x for r in runs for x in (("enter", r[0]), ("leave", r[-1]))]
            re_entries += len(runs) > 1
    assert re_entries and any(t > 0 for pairs in events.values() for e, t in pairs if e == "enter")
    for stem, times in frames.items():
        mot = np.loadtxt(world / "mot" / f"{stem}.txt", delimiter=",", ndmin=2)
        rows = [r for r in points if Path(r["video"]).stem == stem]
        assert {(int(f), int(i)) for f, i in mot[:, :2]} == {(times.index(r["time_s"]) + 1, int(r["object_id"]))
                                                             for r in rows}
        assert (mot[:, 6] == 1).all() and (mot[:, 7:] == -1).all() and (mot[:, 4:6] > 0).all()


def test_objects_hide_behind_higher_ids(world):
    """Some object has its centre inside the frame yet is not visible: covered by one drawn above it."""
    from vidlake.evaluation.world import plan_video, visibility

    hidden = 0
    for index, v in enumerate(_videos(world)):
        xs, ys, visible = visibility(plan_video(0, index, 12))
        inside = (xs >= 0) & (xs < v["width"]) & (ys >= 0) & (ys < v["height"])
        assert not (visible & ~inside).any()
        hidden += int((inside & ~visible).sum())
    assert hidden > 0


def test_frame_times_are_the_decoded_pts(world):
    for path in sorted((world / "videos").iterdir()):
        truth = [float(r["time_s"]) for r in _rows(world / "frames" / f"{path.stem}.csv")]
        decoded = _decoded_pts(path)
        assert len(decoded) == len(truth), path.name
        assert np.abs(np.array(decoded) - truth).max() <= 1e-6, path.name


def test_vidlakes_reader_sees_each_object_at_its_truth_centre(world):
    """Every kind (rotated ones too): the reader's upright frame shows the object's colour at its centre."""
    points = defaultdict(list)
    for r in _rows(world / "points.csv"):
        points[(r["video"], r["time_s"])].append(r)
    palette = np.array(list(COLOURS.values()), dtype=np.int32)
    for v in _videos(world):
        times = [r["time_s"] for r in _rows(world / "frames" / f"{Path(v['file']).stem}.csv")][::9]
        batch = read_pyav(str(world / "videos" / v["file"]), [float(t) for t in times], size=0)
        assert not batch.problems and np.allclose(batch.timestamps_s, [float(t) for t in times], atol=1e-6)
        assert batch.frames.shape[1:3] == (v["height"], v["width"]), v["file"]
        checked = 0
        for frame, t in zip(batch.frames, times):
            for r in points[(v["file"], t)]:
                pixel = frame[int(float(r["y"])), int(float(r["x"]))].astype(np.int32)
                want = np.array(COLOURS[r["label"].split()[0]])
                assert np.abs(pixel - want).max() <= 60, (v["file"], t, r, pixel)
                assert list(COLOURS)[np.abs(palette - pixel).sum(axis=1).argmin()] == r["label"].split()[0]
                checked += 1
        assert checked > 0, v["file"]


def test_cli_writes_a_world_and_refuses_bad_arguments(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", str(out), "--videos", "3", "--seed", "1", "--max-seconds", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("s000-h264-15fps.mp4: 150 frames, 10.0 s")
    assert len(list((out / "videos").iterdir())) == 3 and (out / "points.csv").stat().st_size > 0
    assert main(["synth", str(out), "--videos", "1", "--max-seconds", "2"]) == 0  # an earlier world is replaced
    assert [p.name for p in (out / "videos").iterdir()] == ["s000-h264-15fps.mp4"]
    capsys.readouterr()
    assert main(["synth", str(tmp_path / "bad"), "--videos", "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: videos must be at least 1 (got 0)"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["synth", str(tmp_path / "busy")]) == 2
    assert "not empty" in capsys.readouterr().err
