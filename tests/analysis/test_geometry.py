from datetime import datetime, timedelta, timezone

import polars as pl
import pyarrow as pa
import pytest
from pydantic import ValidationError

from vidlake.analysis.geometry import line_crossings, track_stats, zone_visits
from vidlake.analysis.shapes import Line, Zone
from vidlake.platform.lake.schemas import LINE_CROSSINGS, TRACK_STATS, ZONE_VISITS
from vidlake.errors import ConfigError, LakeError

START = datetime(2024, 5, 1, 6, 0, tzinfo=timezone.utc)
WIDTH, HEIGHT = 1000, 500  # pixels of the upright frame


def samples(points, deployment="cam1", video="v1", query="fish", object_id=1, start=START):
    """Rows for one track from (t, x_norm, y_norm) triples; start=None leaves t_utc null."""
    return [{"deployment_id": deployment, "video_id": video, "query": query, "object_id": object_id, "t": t,
             "t_utc": None if start is None else start + timedelta(seconds=t),
             "x_norm": x, "y_norm": y, "x": x * WIDTH, "y": y * HEIGHT} for t, x, y in points]


def table(*tracks):
    rows = [row for track in tracks for row in track]
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("deployment_id", pa.string()), ("video_id", pa.string()), ("query", pa.string()),
        ("object_id", pa.int32()), ("t", pa.float64()), ("t_utc", pa.timestamp("us", tz="UTC")),
        ("x_norm", pa.float64()), ("y_norm", pa.float64()), ("x", pa.float64()), ("y", pa.float64()),
    ]))


def moving(xs, y=0.5, dt=0.5, t0=0.0):
    return [(t0 + i * dt, x, y) for i, x in enumerate(xs)]


DOWN = Line(name="gate", start=(0.42, 0.0), end=(0.42, 1.0))  # drawn top to bottom: rightwards is "in"


# line crossings


def test_rightward_track_crosses_vertical_line_in_at_interpolated_time():
    # 0.1 frame widths per second from x=0.1, sampled every 0.5 s: reaches x=0.42 at t=3.2 s
    track = samples([(i * 0.5, 0.1 + 0.05 * i, 0.5) for i in range(12)])
    out = line_crossings(table(track), {"cam1": [DOWN]})
    assert out.schema == LINE_CROSSINGS
    [row] = out.to_pylist()
    assert row["direction"] == "in" and row["line"] == "gate" and row["object_id"] == 1
    assert row["t"] == pytest.approx(3.2)
    assert row["t_utc"] == START + timedelta(seconds=3.2)


def test_direction_follows_supervision_line_zone():
    # supervision's LineZone from (0, y) to (10, y) counts a box moving up the image (y decreasing) as "in"
    across = Line(name="road", start=(0.0, 0.5), end=(1.0, 0.5))
    up = samples([(0.0, 0.5, 0.7), (1.0, 0.5, 0.3)], object_id=1)
    down = samples([(0.0, 0.5, 0.3), (1.0, 0.5, 0.7)], object_id=2)
    out = line_crossings(table(up, down), {"cam1": [across]})
    assert [(r["object_id"], r["direction"]) for r in out.to_pylist()] == [(1, "in"), (2, "out")]
    # swapping the ends swaps the directions
    flipped = Line(name="road", start=(1.0, 0.5), end=(0.0, 0.5))
    assert line_crossings(table(up), {"cam1": [flipped]})["direction"].to_pylist() == ["out"]


def test_back_and_forth_is_in_then_out():
    track = samples(moving([0.3, 0.5, 0.3]))  # crosses x=0.42 at t=0.3 going right, at t=0.7 going left
    out = line_crossings(table(track), {"cam1": [DOWN]})
    assert out["direction"].to_pylist() == ["in", "out"]
    assert out["t"].to_pylist() == pytest.approx([0.3, 0.7])


def test_stopping_on_the_line_and_returning_is_no_crossing():
    back = samples(moving([0.3, 0.42, 0.42, 0.3]), object_id=1)
    touch = samples(moving([0.3, 0.42]), object_id=2)
    through = samples(moving([0.3, 0.42, 0.42, 0.6]), object_id=3)  # stops on it, then goes on
    out = line_crossings(table(back, touch, through), {"cam1": [DOWN]})
    # only the object that went on crosses, once, at the time it left the line
    assert [(r["object_id"], r["direction"], r["t"]) for r in out.to_pylist()] == [(3, "in", 1.0)]


def test_passing_beyond_the_line_end_is_no_crossing():
    short = Line(name="short", start=(0.42, 0.0), end=(0.42, 0.4))
    below = samples(moving([0.3, 0.6], y=0.6))  # crosses the line's extension, not the line
    assert line_crossings(table(below), {"cam1": [short]}).num_rows == 0
    at_end = samples(moving([0.3, 0.6], y=0.4))  # passes through its end point, which belongs to the line
    assert line_crossings(table(at_end), {"cam1": [short]}).num_rows == 1


def test_lines_apply_only_to_their_deployment_and_rows_are_sorted():
    lines = {
        "cam1": [DOWN, Line(name="across", start=(0.0, 0.45), end=(1.0, 0.45))],
        "cam2": [Line(name="gate", start=(0.8, 0.0), end=(0.8, 1.0))],
    }
    a = samples(moving([0.3, 0.5]), deployment="cam1", video="va")  # crosses cam1's gate only
    b = samples(moving([0.3, 0.5]), deployment="cam2", video="vb")  # crosses no cam2 line
    c = samples([(0.0, 0.7, 0.3), (0.5, 0.9, 0.6)], deployment="cam2", video="vb", object_id=2)
    d = samples([(0.0, 0.5, 0.3), (1.0, 0.5, 0.6)], deployment="cam1", video="va", object_id=7)
    unsorted = table(c, d, b, a).take(pa.array([3, 0, 2, 1, 5, 4, 7, 6]))
    out = line_crossings(unsorted, {**lines, "cam9": [DOWN]})
    assert [(r["deployment_id"], r["line"], r["object_id"], r["direction"]) for r in out.to_pylist()] == [
        ("cam1", "across", 7, "out"),  # moving down across a left-to-right line
        ("cam1", "gate", 1, "in"),
        ("cam2", "gate", 2, "in"),
    ]


def test_unknown_start_time_gives_null_t_utc():
    out = line_crossings(table(samples(moving([0.3, 0.5]), start=None)), {"cam1": [DOWN]})
    assert out["t_utc"].to_pylist() == [None] and out["t"].to_pylist() == pytest.approx([0.3])


def test_duplicate_line_names_in_a_deployment_fail():
    with pytest.raises(ConfigError, match="two lines named"):
        line_crossings(table(samples(moving([0.3, 0.5]))), {"cam1": [DOWN, DOWN]})


# zone visits

FEEDER = Zone(name="feeder", polygon=[(0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)])


def test_enter_stay_leave_reenter_gives_two_visits_with_dwell():
    # every 0.5 s: outside 0.0-0.5, inside 1.0-3.5 (6 samples), outside 4.0-5.0, inside 5.5-6.0 (track ends)
    xs = [0.2, 0.3] + [0.5] * 6 + [0.8] * 3 + [0.5, 0.6]  # x=0.6 lies on the boundary: inside
    out = zone_visits(table(samples(moving(xs))), {"cam1": [FEEDER]})
    assert out.schema == ZONE_VISITS
    visits = [(r["enter_t"], r["exit_t"], r["dwell_s"], r["samples"]) for r in out.to_pylist()]
    # midpoint rule: 0.75 to 3.75 s; then 5.25 to 6.0 s, nothing added after the track's last sample
    assert visits == [(1.0, 3.5, 3.0, 6), (5.5, 6.0, 0.75, 2)]
    assert out["enter_utc"].to_pylist()[0] == START + timedelta(seconds=1.0)
    assert out["exit_utc"].to_pylist()[1] == START + timedelta(seconds=6.0)


def test_one_sample_visit_dwells_one_sampling_interval():
    out = zone_visits(table(samples(moving([0.2, 0.5, 0.8]))), {"cam1": [FEEDER]})
    assert [(r["enter_t"], r["exit_t"], r["dwell_s"]) for r in out.to_pylist()] == [(0.5, 0.5, 0.5)]


def test_long_gap_splits_a_visit():
    points = [(1.0, 0.5, 0.5), (1.5, 0.5, 0.5), (10.0, 0.5, 0.5), (10.5, 0.5, 0.5)]
    split = zone_visits(table(samples(points)), {"cam1": [FEEDER]}, max_gap_s=2.0)
    assert [(r["enter_t"], r["exit_t"], r["dwell_s"]) for r in split.to_pylist()] == [(1.0, 1.5, 0.5),
                                                                                       (10.0, 10.5, 0.5)]
    whole = zone_visits(table(samples(points)), {"cam1": [FEEDER]})
    assert [(r["enter_t"], r["exit_t"], r["samples"]) for r in whole.to_pylist()] == [(1.0, 10.5, 4)]


def test_zones_apply_per_deployment_and_tracks_stay_apart():
    zones = {"cam1": [FEEDER, Zone(name="den", polygon=[(0.0, 0.0), (0.3, 0.0), (0.0, 0.3)])], "cam2": []}
    a = samples(moving([0.1, 0.5]), object_id=1)  # y=0.5: never in the den
    b = samples([(0.0, 0.1, 0.1), (0.5, 0.5, 0.5)], object_id=2)
    other = samples(moving([0.5, 0.5]), deployment="cam2")
    out = zone_visits(table(other, b, a), zones)
    assert [(r["zone"], r["object_id"], r["enter_t"]) for r in out.to_pylist()] == [
        ("den", 2, 0.0), ("feeder", 1, 0.5), ("feeder", 2, 0.5)]


# track statistics


def test_track_stats_path_speed_and_calibration():
    # 3-4-5 steps in pixels: (0,0) -> (300,400) -> (600,800)... in a 1000 x 1000 frame
    rows = [{"deployment_id": "cam1", "video_id": "v1", "query": "fish", "object_id": 1, "t": t,
             "t_utc": None, "x_norm": x / 1000, "y_norm": y / 1000, "x": x, "y": y}
            for t, x, y in [(2.0, 600.0, 800.0), (0.0, 0.0, 0.0), (1.0, 300.0, 400.0)]]
    out = track_stats(pl.DataFrame(rows), px_per_m={"cam1": 50.0})  # polars input, rows out of order
    assert out.schema == TRACK_STATS
    [row] = out.to_pylist()
    assert (row["samples"], row["start_t"], row["end_t"], row["duration_s"]) == (3, 0.0, 2.0, 2.0)
    assert row["start_utc"] is None and row["end_utc"] is None
    assert row["path_length_norm"] == pytest.approx(1.0)
    assert row["mean_speed_norm"] == pytest.approx(0.5)
    assert row["max_speed_norm"] == pytest.approx(0.5)
    assert row["path_length_m"] == pytest.approx(1000 / 50)  # 1000 px at 50 px per metre
    assert row["mean_speed_m_s"] == pytest.approx(10.0)
    assert row["max_speed_m_s"] == pytest.approx(10.0)


def test_track_stats_without_calibration_and_single_sample():
    out = track_stats(table(samples(moving([0.1, 0.2, 0.4])), samples([(5.0, 0.5, 0.5)], object_id=2)),
                      px_per_m={"elsewhere": 10.0})
    moved, still = out.to_pylist()
    assert moved["path_length_norm"] == pytest.approx(0.3)
    assert moved["max_speed_norm"] == pytest.approx(0.4)  # 0.2 in 0.5 s
    assert moved["path_length_m"] is None and moved["mean_speed_m_s"] is None
    assert moved["start_utc"] == START and moved["end_utc"] == START + timedelta(seconds=1.0)
    assert (still["samples"], still["duration_s"], still["path_length_norm"]) == (1, 0.0, 0.0)
    assert still["mean_speed_norm"] is None and still["max_speed_norm"] is None


def test_max_gap_leaves_the_jump_out_of_path_and_speed():
    # steady 0.1/s, then away for 10 s and back 0.5 further on
    points = [(0.0, 0.1, 0.5), (1.0, 0.2, 0.5), (11.0, 0.7, 0.5), (12.0, 0.8, 0.5)]
    [gapped] = track_stats(table(samples(points)), max_gap_s=2.0).to_pylist()
    assert gapped["path_length_norm"] == pytest.approx(0.2)
    assert gapped["mean_speed_norm"] == pytest.approx(0.1)  # over the 2 s spent on counted steps
    assert gapped["max_speed_norm"] == pytest.approx(0.1)
    assert gapped["duration_s"] == 12.0
    [whole] = track_stats(table(samples(points))).to_pylist()
    assert whole["path_length_norm"] == pytest.approx(0.7)
    assert whole["mean_speed_norm"] == pytest.approx(0.7 / 12)


# input and configuration errors


def test_empty_input_gives_empty_tables_with_the_schemas():
    empty = table()
    assert track_stats(empty).schema == TRACK_STATS and track_stats(empty).num_rows == 0
    assert line_crossings(empty, {"cam1": [DOWN]}).schema == LINE_CROSSINGS
    assert zone_visits(empty, {"cam1": [FEEDER]}).schema == ZONE_VISITS


def test_bad_samples_fail_with_a_clear_message():
    with pytest.raises(LakeError, match="lack the columns"):
        track_stats(table(samples(moving([0.1]))).drop_columns(["t"]))
    with pytest.raises(LakeError, match="two samples at t=0.5"):
        track_stats(table(samples([(0.5, 0.1, 0.1), (0.5, 0.2, 0.2)])))
    with pytest.raises(ConfigError, match="pixels per metre"):
        track_stats(table(samples(moving([0.1]))), px_per_m={"cam1": 0.0})


@pytest.mark.parametrize("polygon, message", [
    ([(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)], "self-intersecting"),  # a bowtie
    ([(0.1, 0.1), (0.9, 0.9)], "needs at least 3 distinct points"),
    ([(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.1)], None),  # a closed ring is fine
    ([(0.1, 0.1), (1.5, 0.1), (0.9, 0.9)], "out of 0..1"),
    ([(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)], "zero area"),
])
def test_zone_polygon_must_be_a_polygon(polygon, message):
    if message is None:
        assert Zone(name="z", polygon=polygon).geometry.area == pytest.approx(0.32)
        return
    with pytest.raises(ValidationError, match=message):
        Zone(name="z", polygon=polygon)


def test_line_must_be_a_line():
    with pytest.raises(ValidationError, match="two distinct points"):
        Line(name="l", start=(0.5, 0.5), end=(0.5, 0.5))
    with pytest.raises(ValidationError, match="out of 0..1"):
        Line(name="l", start=(0.5, -0.1), end=(0.5, 0.5))
    with pytest.raises(ValidationError):
        Line(name="", start=(0.1, 0.5), end=(0.5, 0.5))
    with pytest.raises(ValidationError):
        Line(name="l", start=(0.1, 0.5), end=(0.5, 0.5), side="left")
