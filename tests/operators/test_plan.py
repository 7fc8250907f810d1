import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlake.operators.plan import PlanWindows, plan_windows, sample_rate, sampling_spec
from vidlake.platform.config import SamplingSettings
from vidlake.platform.lake.ids import window_id

VIDEO = {
    "uri": "/videos/a.mp4", "video_id": "ab" * 32, "size": 1000, "duration_s": 10.0, "fps": 25.0, "frames": 250,
    "width": 640, "height": 272, "codec": "h264", "rotation": 0, "status": "ok",
}


def test_short_video_is_one_window_at_two_fps():
    rows = PlanWindows()(VIDEO)
    assert len(rows) == 1
    w = rows[0]
    assert w["sample_times_s"] == [i / 2 for i in range(20)]
    assert (w["start_s"], w["end_s"], w["kind"], w["window_index"], w["window_count"]) == (0.0, 10.0, "slow", 0, 1)
    assert (w["sample_fps"], w["sample_size"], w["resize"]) == (2.0, 378, "square")
    assert w["video_frames"] == 250 and "frames" not in w  # the count makes room for the sampled frames
    assert w["uri"] == VIDEO["uri"] and w["codec"] == "h264"
    assert json.loads(w["sampling_json"]) == sampling_spec(SamplingSettings())
    assert w["window_id"] == window_id(VIDEO["video_id"], 0.0, 10.0, sampling_spec(SamplingSettings()))


def test_one_frame_video_is_one_window_of_one_frame():
    for duration, fps, end in ((0.04, 25.0, 0.04), (0.0, 25.0, 0.04), (0.0, 0.0, 0.0)):
        rows = PlanWindows()({**VIDEO, "duration_s": duration, "fps": fps, "frames": 1})
        assert len(rows) == 1 and rows[0]["sample_times_s"] == [0.0]
        assert rows[0]["start_s"] == 0.0 and rows[0]["end_s"] == end


def test_exact_multiple_fills_one_window_exactly():
    windows = plan_windows(64.0, 30.0, SamplingSettings())
    assert len(windows) == 1 and len(windows[0].times_s) == 128
    windows = plan_windows(64.5, 30.0, SamplingSettings())
    assert len(windows) == 2  # 129 samples: one more than a window holds


def test_long_video_windows_overlap_by_whole_samples():
    s = SamplingSettings()  # 2 fps, 128 frames, 2 s overlap = 4 samples
    windows = plan_windows(3600.0, 29.97, s)
    assert len(windows) == math.ceil((7200 - 4) / (128 - 4))
    for a, b in zip(windows, windows[1:]):
        assert a.times_s[-4:] == b.times_s[:4]
        assert b.start_s == a.times_s[-4] and a.end_s == pytest.approx(a.times_s[-1] + 0.5)
    lengths = {len(w.times_s) for w in windows}
    assert max(lengths) <= 128 and max(lengths) - min(lengths) <= 1  # balanced: no stub at the end
    assert windows[-1].end_s == 3600.0 and windows[-1].times_s[-1] == 3599.5


def test_rate_never_exceeds_the_source():
    assert sample_rate(SamplingSettings(fps=2.0), 0.5) == 0.5
    assert sample_rate(SamplingSettings(fps=2.0), None) == 2.0
    windows = plan_windows(20.0, 0.5, SamplingSettings())
    assert windows[0].times_s == tuple(float(2 * i) for i in range(10))


def test_fast_pass_only_for_videos_longer_than_a_window():
    s = SamplingSettings(fast_pass=True, fast_max_frames=16)
    assert [w.kind for w in plan_windows(60.0, 30.0, s)] == ["slow"]
    rows = PlanWindows(s)({**VIDEO, "duration_s": 600.0, "frames": 15000})
    fast = [r for r in rows if r["kind"] == "fast"]
    assert len(fast) == 1 and len(rows) == 1 + 10
    f = fast[0]
    assert (f["start_s"], f["end_s"], f["sample_size"], len(f["sample_times_s"])) == (0.0, 600.0, 189, 16)
    assert f["sample_times_s"][1] == 37.5
    assert f["window_id"] not in {r["window_id"] for r in rows if r["kind"] == "slow"}


def test_window_ids_are_deterministic_and_follow_settings():
    a = [r["window_id"] for r in PlanWindows()({**VIDEO, "duration_s": 300.0})]
    assert a == [r["window_id"] for r in PlanWindows()({**VIDEO, "duration_s": 300.0})]
    assert len(set(a)) == len(a)
    b = [r["window_id"] for r in PlanWindows(SamplingSettings(size=224))({**VIDEO, "duration_s": 300.0})]
    assert not set(a) & set(b)


def test_error_rows_pass_through_and_missing_duration_is_an_error():
    bad = {"uri": "/x.mp4", "status": "error", "error_kind": "not_a_video", "error": "nope", "video_id": None}
    [row] = PlanWindows()(bad)
    assert row["status"] == "error" and row["window_id"] is None and row["error_kind"] == "not_a_video"
    [row] = PlanWindows()({**VIDEO, "duration_s": None, "fps": 0.0, "frames": None})
    assert (row["status"], row["error_kind"]) == ("error", "no_duration")
    [row] = PlanWindows()({**VIDEO, "duration_s": None, "fps": 10.0, "frames": 30})
    assert row["end_s"] == 3.0


@settings(max_examples=200, deadline=None)
@given(
    duration=st.floats(0.0, 5000.0),
    source_fps=st.one_of(st.none(), st.floats(0.2, 240.0)),
    fps=st.floats(0.1, 10.0),
    max_frames=st.integers(1, 300),
    overlap_s=st.floats(0.0, 120.0),
)
def test_windows_cover_the_video_without_gaps(duration, source_fps, fps, max_frames, overlap_s):
    s = SamplingSettings(fps=fps, max_frames=max_frames, overlap_s=overlap_s)
    windows = plan_windows(duration, source_fps, s)
    r = sample_rate(s, source_fps)
    grid = [round(i / r, 6) for i in range(max(1, math.ceil(round(duration * r, 6))))]
    overlap = min(round(overlap_s * r), (max_frames - 1) // 2)
    assert r <= fps and (source_fps is None or r <= source_fps)
    assert windows[0].start_s == 0.0 and windows[-1].end_s == max(duration, windows[-1].times_s[-1])
    assert len(windows) == (1 if len(grid) <= max_frames else math.ceil((len(grid) - overlap) / (max_frames - overlap)))
    covered = []
    for a, b in zip(windows, windows[1:]):
        assert b.start_s <= a.end_s  # no gap
        assert a.end_s - b.start_s == pytest.approx(overlap / r, abs=1e-5)  # overlap is exactly the rule
        assert a.times_s[len(a.times_s) - overlap :] == b.times_s[:overlap]
    for w in windows:
        assert 1 <= len(w.times_s) <= max_frames
        assert list(w.times_s) == sorted(set(w.times_s))
        assert w.start_s == w.times_s[0] and w.times_s[-1] <= w.end_s
        covered.extend(w.times_s[overlap if covered else 0 :])
    assert covered == grid  # every grid time is sampled, in order, once outside the overlaps
