"""ParseOutput: raw text -> rows in absolute video time and original-frame pixels, on the right moment."""

from __future__ import annotations

import av
import numpy as np
import pytest
from media import make_video
from tiny_model import decode_window

from vidlake.operators.parse import PARSE_COLUMNS, ParseOutput


def _bar_x(frame: np.ndarray) -> float:
    """make_video draws a bright green bar 8 px wide at a position that encodes the frame index."""
    cols = np.where(frame[..., 1].mean(axis=0) > 128)[0]
    return float(cols.mean())


def _frame_at(path, t: float) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if abs(float(frame.pts * stream.time_base) - t) < 1e-6:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {t}")


def test_parsed_points_land_on_the_moment_and_place_the_model_saw(tmp_path):
    # variable frame rate: irregular PTS, so a fixed-fps assumption would pick the wrong frame
    times = [round(i * 0.1 + (0.033 if i % 3 == 0 else 0.0), 3) for i in range(90)]
    path = make_video(tmp_path / "vfr.mp4", timestamps_s=times, size=(320, 48), fps=10)
    row = decode_window(path, fps=2.0, max_frames=8, start_s=3.0)
    offset = 3.0  # BuildPrompt's time_offset_s for this window (its start)
    # What the model would answer pointing at the bar in the 2nd, 5th and 8th frames it saw:
    picks = [1, 4, 7]
    groups = []
    for k in picks:
        x = _bar_x(row["frames"][k]) / 320 * 1000
        groups.append(f"{row['timestamps_s'][k] - offset:.1f} 1 {round(x):03d} 500")
    out = ParseOutput()(dict(row, frames=None, raw_text=f'<tracks coords="{";".join(groups)}">bar</tracks>',
                             time_offset_s=offset, task="track"))
    assert out["parse_status"] == "ok"
    assert [p["t"] for p in out["tracks"]] == [row["timestamps_s"][k] for k in picks]  # exact PTS, absolute
    for point in out["tracks"]:
        source = _frame_at(path, point["t"])  # the frame of the source video at the parsed time
        assert point["x"] == pytest.approx(_bar_x(source), abs=1.0)  # 0-1000 rounding: <= 0.16 px here
        assert point["y"] == pytest.approx(24.0)


def test_rotated_video_pixels_are_in_the_upright_frame():
    row = {"status": "ok", "raw_text": '<points coords="0.0 1 250 750">cup</points>', "width": 1920, "height": 1080,
           "rotation": 270, "time_offset_s": 12.0, "timestamps_s": [12.0, 12.5], "task": "point"}
    point = ParseOutput()(row)["points"][0]
    assert (point["x"], point["y"], point["t"]) == (pytest.approx(270.0), pytest.approx(1440.0), 12.0)


def test_counts_captions_and_status_columns():
    count = ParseOutput()({"status": "ok", "width": 100, "height": 100, "task": "count", "time_offset_s": 0.0,
                           "timestamps_s": [0.0], "raw_text":
                           'Counting the <points coords="0.0 1 10 10 2 20 20">dogs</points> shows a total of 2.'})
    assert (count["count"], count["count_source"], count["answer"]) == (2, "text", "Counting the dogs shows a total of 2.")
    assert count["captions"] == [] and count["event_times_s"] == [0.0, 0.0]
    window = {"status": "ok", "width": 100, "height": 100, "task": "caption", "start_s": 60.0, "end_s": 124.0,
              "time_offset_s": 60.0, "timestamps_s": [60.0]}
    caption = ParseOutput()({**window, "raw_text": "A street. At 2.0 seconds, a bus passes. At 10.5 seconds, it rains."})
    assert caption["captions"] == [
        {"start_s": 60.0, "end_s": 62.0, "text": "A street."},
        {"start_s": 62.0, "end_s": 70.5, "text": "At 2.0 seconds, a bus passes."},
        {"start_s": 70.5, "end_s": 124.0, "text": "At 10.5 seconds, it rains."},
    ]
    # times named out of order: spans in time order, none ending before it starts
    shuffled = ParseOutput()({**window, "raw_text": "At 10.5 seconds, it rains. At 2.0 seconds, a bus passes."})
    assert [(c["start_s"], c["end_s"]) for c in shuffled["captions"]] == [(62.0, 70.5), (70.5, 124.0)]
    plain = ParseOutput()({"status": "ok", "width": 100, "height": 100, "task": "caption", "start_s": 0.0,
                           "end_s": 8.0, "raw_text": "Two people talk."})
    assert plain["captions"] == [{"start_s": 0.0, "end_s": 8.0, "text": "Two people talk."}]


def test_noise_and_errors_never_raise_and_raw_text_stays():
    noise = "oman child83�ottoellow <tracks coords=\"0.5 1 9"
    out = ParseOutput()({"status": "ok", "raw_text": noise, "width": 64, "height": 48, "task": "track"})
    assert out["parse_status"] == "partial" and out["raw_text"] == noise and out["parse_issues"]
    failed = ParseOutput()({"status": "error", "error_kind": "out_of_memory", "raw_text": None})
    assert failed["status"] == "error" and all(failed[c] is None for c in PARSE_COLUMNS)
    broken = ParseOutput()({"status": "ok", "raw_text": "x", "width": None, "height": 1})
    assert broken["parse_status"] == "failed" and broken["answer"] == "x"


def test_caption_times_outside_the_window_are_reported_not_used():
    from vidlake.operators.parse import ParseOutput

    row = {"raw_text": "bike 69927S then At 2.5 seconds, a bike jumps.", "width": 640, "height": 272, "task": "caption",
           "status": "ok", "start_s": 0.0, "end_s": 4.0, "timestamps_s": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
           "time_offset_s": 0.0}
    out = ParseOutput()(row)
    assert out["parse_status"] == "partial"
    assert any("outside the window" in issue for issue in out["parse_issues"])
    assert all(0.0 <= c["start_s"] <= 4.0 for c in out["captions"])
