import json

import pytest

from vidlake.cli import main
from vidlake.errors import LakeError
from vidlake.platform.lake import Lake
from vidlake.platform.lake.timeline import lake_overview, resolve_video_id, video_timeline

VID = "ab" * 32


@pytest.fixture
def lake(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    lake.append("videos", [{"video_id": VID, "uris": ["/a.mp4"], "duration_s": 30.0, "fps": 25.0, "frames": 750,
                             "width": 640, "height": 360, "codec": "h264", "rotation": 0}])
    lake.append("videos", [{"video_id": VID[:6] + "0" * 58, "uris": ["/b.mp4"]}])
    common = {"video_id": VID, "task_key": "k1", "window_id": "w0", "run_id": "r"}
    lake.append("captions", [
        {**common, "task": "caption", "start_s": 10.0, "end_s": 20.0, "text": "a dog runs"},
        {**common, "task": "caption", "start_s": 0.0, "end_s": 10.0, "text": "a man walks in"},
    ])
    lake.append("tracks", [
        {**common, "task": "track", "query": "dog", "label": "dog", "object_id": 1, "t": 12.5, "x": 100.0, "y": 50.0},
        {**common, "task": "track", "query": "dog", "label": "dog", "object_id": 1, "t": 25.0, "x": 300.0, "y": 60.0},
    ])
    return lake


def test_timeline_orders_and_filters(lake):
    events = video_timeline(lake, VID)
    assert [(e["kind"], e["t"]) for e in events] == [
        ("captions", 0.0), ("captions", 10.0), ("tracks", 12.5), ("tracks", 25.0)
    ]
    window = video_timeline(lake, VID, t_from=11.0, t_to=20.0)
    assert [(e["kind"], e["t"]) for e in window] == [("captions", 10.0), ("tracks", 12.5)]
    assert video_timeline(lake, "cd" * 32) == []


def test_resolve_prefix(lake):
    assert resolve_video_id(lake, VID[:8])["uris"] == ["/a.mp4"]
    with pytest.raises(LakeError, match="matches 2"):
        resolve_video_id(lake, VID[:6])
    with pytest.raises(LakeError, match="no video 'ab'.*6\\+ characters"):
        resolve_video_id(lake, "ab")
    with pytest.raises(LakeError, match="no video"):
        resolve_video_id(lake, "ffffff")


def test_resolve_a_path_or_a_file_name(lake):
    assert resolve_video_id(lake, "/a.mp4")["video_id"] == VID
    assert resolve_video_id(lake, "a.mp4")["video_id"] == VID  # the file name alone, when one video has it


def test_overview_counts_rows(lake):
    info = lake_overview(lake)
    assert info["tables"]["captions"]["rows"] == 2 and info["tables"]["videos"]["rows"] == 2
    assert "points" not in info["tables"]


def test_show_and_status_commands(lake, capsys):
    assert main(["show", VID[:10], "--lake", lake.uri]) == 0
    out = capsys.readouterr().out
    assert "a man walks in" in out and out.index("a man walks in") < out.index("a dog runs")
    assert main(["show", VID[:10], "--lake", lake.uri, "--json", "--from", "15"]) == 0
    assert "a man walks in" not in capsys.readouterr().out
    assert main(["show", "ffffff", "--lake", lake.uri]) == 2
    assert "no video" in capsys.readouterr().err
    assert main(["status", lake.uri]) == 0
    assert "captions" in capsys.readouterr().out


def test_videos_command_lists_the_lake_and_show_takes_a_path(lake, capsys):
    assert main(["videos", lake.uri]) == 0
    out = capsys.readouterr().out
    assert VID[:12] in out and "/a.mp4" in out and "videos in" in out
    assert main(["videos", lake.uri, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["video_id"] for r in rows} == {VID, VID[:6] + "0" * 58} and all("tasks_done" in r for r in rows)
    assert main(["show", "/a.mp4", "--lake", lake.uri]) == 0
    assert "a dog runs" in capsys.readouterr().out
    message = "the file /archive/site-07/camera-3/2026-11-30T04-00-00.mp4 could not be read: permission denied"
    lake.append("runs", [{"run_id": "20261130T040000.000000Z-abcdef", "job": "ingest", "status": "failed",
                          "message": message}])
    assert main(["status", lake.uri]) == 0
    assert message in capsys.readouterr().out  # on one line: off a terminal the table is not cut to 80 columns
