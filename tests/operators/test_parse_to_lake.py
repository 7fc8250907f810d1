"""Real-format Molmo 2 answers through ParseOutput and WriteTables into lake rows (no model)."""

import pytest

from vidlake.operators.parse import ParseOutput
from vidlake.operators.write import WriteTables
from vidlake.platform.lake import Lake


def _window(i, start, end, task, raw, query=None, total=2):
    times = [round(start + k * 0.5, 3) for k in range(int((end - start) / 0.5))]
    return {
        "video_id": "v", "uri": "/v.mp4", "task": task, "task_key": f"k-{task}", "query": query,
        "window_id": f"w{i}", "window_index": i, "windows_total": total, "kind": "slow", "start_s": start,
        "end_s": end, "timestamps_s": times, "time_offset_s": start, "width": 640, "height": 360, "rotation": 0,
        "status": "ok", "raw_text": raw, "prompt": "p", "prompt_tokens": 1, "generated_tokens": 1,
        "model_id": "m", "model_revision": "r",
    }


def test_tracks_from_two_overlapping_windows(tmp_path):
    # window 0 covers 0-4 s, window 1 covers 3-7 s; the model's times are window-relative.
    # The same car is id 1 in window 0 and id 2 in window 1; window 1 also sees a new person (id 1).
    w0 = '<tracks coords="0.0 1 100 500;1.0 1 200 500;2.0 1 300 500;3.0 1 400 500;3.5 1 450 500">car</tracks>'
    w1 = ('<tracks coords="0.0 2 400 500;0.5 2 450 500;1.0 2 500 500 1 900 100;2.0 2 600 500 1 880 120">car</tracks>')
    parse = ParseOutput()
    lake = Lake(str(tmp_path / "lake"))
    writer = WriteTables(lake, "run")
    writer.add(parse(_window(0, 0.0, 4.0, "track", w0, query="the car")))
    writer.add(parse(_window(1, 3.0, 7.0, "track", w1, query="the car")))
    writer.flush()
    rows = sorted(lake.read("tracks").to_pylist(), key=lambda r: (r["object_id"], r["t"]))
    car = [(r["t"], r["x"], r["y"]) for r in rows if r["object_id"] == 1]
    # absolute times; overlap 3-4 s split at 3.5 s: window 0 keeps t < 3.5, window 1 the rest
    assert car == [(0.0, 64.0, 180.0), (1.0, 128.0, 180.0), (2.0, 192.0, 180.0), (3.0, 256.0, 180.0),
                   (3.5, 288.0, 180.0), (4.0, 320.0, 180.0), (5.0, 384.0, 180.0)]
    person = [r for r in rows if r["object_id"] == 2]
    assert [(r["t"], r["x"], r["y"]) for r in person] == [(4.0, 576.0, 36.0), pytest.approx((5.0, 563.2, 43.2))]
    assert {r["id_scope"] for r in rows if r["object_id"] == 1} == {"video"}
    assert {r["id_scope"] for r in person} == {"window"}
    assert all(r["label"] == "car" and r["query"] == "the car" for r in rows)


def test_count_answer_with_points(tmp_path):
    raw = 'Counting the <points coords="0.5 1 120 300;1.5 2 500 310;2.0 3 800 320">cars</points> shows a total of 3.'
    lake = Lake(str(tmp_path / "lake"))
    writer = WriteTables(lake, "run")
    writer.add(ParseOutput()(_window(0, 10.0, 14.0, "count", raw, query="cars", total=1)))
    writer.flush()
    (count,) = lake.read("counts").to_pylist()
    assert (count["count"], count["event_times_s"]) == (3, [10.5, 11.5, 12.0])
    points = lake.read("points").to_pylist()
    assert sorted((p["t"], p["object_id"]) for p in points) == [(10.5, 1), (11.5, 2), (12.0, 3)]
    outputs = lake.read("outputs").to_pylist()
    assert outputs[0]["raw_text"] == raw and outputs[0]["parse_status"] == "ok"
