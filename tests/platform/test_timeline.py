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
    with pytest.raises(LakeError, match="at least 6"):
        resolve_video_id(lake, "ab")
    with pytest.raises(LakeError, match="no video"):
        resolve_video_id(lake, "ffffff")


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
