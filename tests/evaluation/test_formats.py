"""Ground-truth readers: typed tables from good files, a ConfigError naming file and line for bad ones."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from vidlake.errors import ConfigError
from vidlake.evaluation.formats import (load_truth, read_counts, read_events, read_frame_times, read_mot,
                                        read_objects, read_points)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_counts_with_and_without_spans(tmp_path):
    plain = read_counts(_write(tmp_path / "a.csv", "video,query,count\na.mp4,red circles,3\n"))
    assert plain.to_pylist() == [{"video": "a.mp4", "query": "red circles", "start_s": None, "end_s": None,
                                  "count": 3}]
    assert plain.schema.field("count").type == pa.int64()
    spans = read_counts(_write(tmp_path / "b.csv", "video,query,start_s,end_s,count,note\n"
                                                   "a.mp4,shapes,2,4.5,1,extra columns are ignored\n"
                                                   "a.mp4,shapes,,,2,empty span: whole video\n"))
    assert [(r["start_s"], r["end_s"], r["count"]) for r in spans.to_pylist()] == [(2.0, 4.5, 1), (None, None, 2)]


def test_points_events_objects(tmp_path):
    points = read_points(_write(tmp_path / "p.csv", "video,time_s,x,y,label,object_id\n"
                                                    "a.mp4,0.5,10,20.25,red circle,3\n\n"
                                                    "a.mp4,1,11,21,red circle,\n"))
    assert [(r["time_s"], r["y"], r["object_id"]) for r in points.to_pylist()] == [
        (0.5, 20.25, 3), (1.0, 21.0, None)]
    no_ids = read_points(_write(tmp_path / "q.csv", "video,time_s,x,y,label\na.mp4,0,1,2,square\n"))
    assert no_ids.column("object_id").null_count == 1
    events = read_events(_write(tmp_path / "e.csv", "video,object_id,label,event,time_s\na.mp4,1,red circle,enter,0\n"))
    assert events.to_pylist()[0]["event"] == "enter"
    objects = read_objects(_write(tmp_path / "o.csv",
                                  "video,object_id,label,shape,colour\na.mp4,1,red circle,circle,red\n"))
    assert objects.to_pylist()[0]["colour"] == "red"


def test_mot_times_from_frames_file_or_fps(tmp_path):
    mot = _write(tmp_path / "mot" / "s1.txt",
                 "1,1,10,20,4,6,1,-1,-1,-1\n"  # MOT15: conf, x, y, z
                 "3,2,-2,0,2,2\n"  # six columns; a box may start outside the frame
                 "2,1,12,20,4,6,0,1,0.5\n")  # MOT16/17 gt: conf (here 0, "ignore": kept), class, visibility
    frames = _write(tmp_path / "frames" / "s1.csv", "frame,time_s\n1,0\n2,0.04\n3,0.1\n")
    table = read_mot(mot, frames=frames, video="s1.mp4")
    rows = table.to_pylist()
    # the point is the box centre: (10 + 4/2, 20 + 6/2) = (12, 23)
    assert [(r["frame"], r["time_s"], r["object_id"], r["x"], r["y"], r["conf"]) for r in rows] == [
        (1, 0.0, 1, 12.0, 23.0, 1.0), (3, 0.1, 2, -1.0, 1.0, 1.0), (2, 0.04, 1, 14.0, 23.0, 0.0)]
    assert set(table.column("video").to_pylist()) == {"s1.mp4"}
    by_fps = read_mot(mot, fps=25).to_pylist()  # (frame - 1) / fps: 0, 2/25, 1/25
    assert [r["time_s"] for r in by_fps] == [0.0, 0.08, 0.04] and by_fps[0]["video"] == "s1"
    assert read_frame_times(frames) == {1: 0.0, 2: 0.04, 3: 0.1}


BAD = [
    ("counts", "video,count\na.mp4,3\n", 1, "lacks the columns query"),
    ("counts", "video,query,count\na.mp4,x,1\n\na.mp4,x,three\n", 4, "count: Input should be a valid integer"),
    ("counts", "video,query,count\na.mp4,x,-1\n", 2, "greater than or equal to 0"),
    ("counts", "video,query,start_s,end_s,count\na.mp4,x,5,2,1\n", 2, "start_s 5.0 is after end_s 2.0"),
    ("counts", "video,query,start_s,count\na.mp4,x,5,1\n", 2, "give both start_s and end_s"),
    ("counts", "video,query,count\n,x,1\n", 2, "video: String should have at least 1 character"),
    ("points", "video,time_s,x,y,label\na.mp4,0,nan,1,dot\n", 2, "x: Input should be a finite number"),
    ("points", "video,time_s,x,y,label\na.mp4,0,1,dot\n", 2, "4 values for 5 columns"),
    ("points", "video,time_s,x,y,label\na.mp4,-0.5,1,2,dot\n", 2, "time_s: Input should be greater than or equal"),
    ("points", "video,time_s,x,y,label,object_id\na.mp4,0,1,2,dot,1.5\n", 2, "object_id: Input should be a valid"),
    ("events", "video,object_id,label,event\na.mp4,1,dot,enter\n", 1, "lacks the columns time_s"),
    ("objects", "video,object_id,label,shape,colour\na.mp4,x,dot,circle,red\n", 2, "object_id"),
    ("frames", "frame,time_s\n1,0\n1,0.5\n", 3, "frame 1 is listed twice"),
    ("frames", "frame,time_s\n0,0\n", 2, "frame: Input should be greater than or equal to 1"),
    ("mot", "1,1,10,20,4\n", 1, "5 values; a MOTChallenge row has 6 to 10"),
    ("mot", "1,1,10,20,4,6\n-1,1,10,20,4,6\n", 2, "column 1 (frame): Input should be greater than or equal to 1"),
    ("mot", "1,1,ten,20,4,6\n", 1, "column 3 (left): Input should be a valid number"),
    ("mot", "1,-1,10,20,4,6\n", 1, "column 2 (object_id)"),
    ("mot", "1,1,10,20,-4,6\n", 1, "column 5 (width)"),
    ("mot", "1,1,10,20,4,6,1,-1,-1,z\n", 1, "column 10: Input should be a valid number"),
    ("mot", "1,1,10,20,4,6\n9,1,10,20,4,6\n", 2, "frame 9 has no time in the frames file"),
]


@pytest.mark.parametrize("kind,text,line,problem", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_file_line_and_problem(tmp_path, kind, text, line, problem):
    path = _write(tmp_path / f"{kind}.txt", text)
    read = {"counts": read_counts, "points": read_points, "events": read_events, "objects": read_objects,
            "frames": read_frame_times,
            "mot": lambda p: read_mot(p, frames=_write(tmp_path / "f.csv", "frame,time_s\n1,0\n2,1\n"))}[kind]
    with pytest.raises(ConfigError) as caught:
        read(path)
    assert f"{path}, line {line}: " in str(caught.value)
    assert problem in str(caught.value)


def test_empty_file_and_unknown_frame_times(tmp_path):
    with pytest.raises(ConfigError, match="is empty: expected a header video,query"):
        read_counts(_write(tmp_path / "c.csv", "\n"))
    with pytest.raises(ConfigError, match=re.escape("add frames/s.csv (frame,time_s) or give a frame rate")):
        read_mot(_write(tmp_path / "s.txt", "1,1,1,1,1,1\n"))


def _world(root: Path) -> Path:
    """A truth folder as `vidlake synth` lays it out (two videos, one with a frames file)."""
    _write(root / "counts.csv", "video,query,start_s,end_s,count\ns0.mp4,shapes,0,2,1\n")
    _write(root / "points.csv", "video,time_s,x,y,label,object_id\ns0.mp4,0,12,23,red circle,1\n")
    _write(root / "events.csv", "video,object_id,label,event,time_s\ns0.mp4,1,red circle,enter,0\n")
    _write(root / "objects.csv", "video,object_id,label,shape,colour\ns0.mp4,1,red circle,circle,red\n")
    _write(root / "mot" / "s0.txt", "1,1,10,20,4,6,1,-1,-1,-1\n2,1,11,20,4,6,1,-1,-1,-1\n")
    _write(root / "frames" / "s0.csv", "frame,time_s\n1,0\n2,0.5\n")
    _write(root / "mot" / "s1.txt", "3,4,0,0,2,2\n")
    _write(root / "videos" / "s0.mp4", "not really a video")
    _write(root / "videos" / "s1.webm", "nor this")
    return root


def test_load_truth_reads_what_is_there(tmp_path):
    truth = load_truth(_world(tmp_path / "w"), fps=10)
    assert truth.counts.num_rows == truth.points.num_rows == truth.events.num_rows == truth.objects.num_rows == 1
    # the MOT video is the file in videos/ with the txt's stem; s1 has no frames file: (3 - 1) / 10 s
    assert [(r["video"], r["time_s"]) for r in truth.tracks.to_pylist()] == [
        ("s0.mp4", 0.0), ("s0.mp4", 0.5), ("s1.webm", 0.2)]
    (tmp_path / "w" / "events.csv").unlink()
    assert load_truth(tmp_path / "w", fps=10).events is None
    with pytest.raises(ConfigError, match=re.escape("add frames/s1.csv")):
        load_truth(tmp_path / "w")  # s1 needs a frame rate


def test_load_truth_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_truth(tmp_path / "nowhere")
    _write(tmp_path / "empty" / "videos" / "a.mp4", "x")
    with pytest.raises(ConfigError, match="holds no truth"):
        load_truth(tmp_path / "empty")
    _write(tmp_path / "empty" / "mot" / "b.txt", "1,1,1,1,1,1\n")
    with pytest.raises(ConfigError, match=r"mot/b.txt: no video named b\.\*"):
        load_truth(tmp_path / "empty", fps=1)


def test_fingerprint_follows_the_truth_not_the_videos(tmp_path):
    root = _world(tmp_path / "w")
    first = load_truth(root, fps=10).fingerprint
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    (root / "videos" / "s0.mp4").write_text("re-encoded")
    assert load_truth(root, fps=10).fingerprint == first
    _write(root / "points.csv", "video,time_s,x,y,label,object_id\ns0.mp4,0,12,24,red circle,1\n")
    changed = load_truth(root, fps=10).fingerprint
    assert changed != first
    _write(root / "frames" / "s0.csv", "frame,time_s\n1,0\n2,0.4\n")  # frames files are truth too
    assert load_truth(root, fps=10).fingerprint != changed
