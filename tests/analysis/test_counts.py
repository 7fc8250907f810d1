"""Counts per bin, effort, MaxN, events and presence on hand-made detections (vidlake/analysis/counts.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from vidlake.analysis.counts import counts_per_bin, effort_per_bin, place_detections, presence

UTC = timezone.utc


def _placements(rows):
    return pl.DataFrame(rows, schema={"video_id": pl.String, "deployment_id": pl.String, "timezone": pl.String,
                                      "start_utc": pl.Datetime("us", "UTC"), "end_utc": pl.Datetime("us", "UTC"),
                                      "dated": pl.Boolean})


def _detections(rows):
    return pl.DataFrame(rows, schema={"video_id": pl.String, "query": pl.String, "object_id": pl.Int32, "t": pl.Float64},
                        orient="row")


def _world(bin="hour", clock="local"):
    start = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)  # 08:30 in Berlin (CEST)
    placements = _placements([
        {"video_id": "v1", "deployment_id": "d1", "timezone": "Europe/Berlin", "start_utc": start,
         "end_utc": start + timedelta(hours=1), "dated": True},
        {"video_id": "v2", "deployment_id": "d1", "timezone": "Europe/Berlin", "start_utc": None, "end_utc": None,
         "dated": False},
    ])
    detections = _detections([("v1", "deer", 1, 0.0), ("v1", "deer", 1, 10.0), ("v1", "deer", 2, 10.0),
                              ("v1", "deer", 1, 20.0), ("v1", "deer", 3, 2000.0), ("v2", "deer", 1, 5.0)])
    effort = effort_per_bin(placements.filter(pl.col("dated")).select("deployment_id", "timezone", "start_utc", "end_utc"),
                            bin, clock)
    return place_detections(detections, placements), effort


def test_counts_per_local_hour_with_effort_maxn_events_and_zero_bins():
    placed, effort = _world()
    assert sorted(effort["effort_min"].to_list()) == [30.0, 30.0]  # 08:30-09:00 and 09:00-09:30 local
    rows = counts_per_bin(placed, effort, "hour", "local", gap_s=300).filter(pl.col("dated"))
    got = {(r["bin_start_local"].hour, r["query"]): (r["effort_min"], r["detections"], r["individuals"], r["max_n"],
                                                    r["events"]) for r in rows.to_dicts()}
    assert got == {(8, "deer"): (30.0, 4, 2, 2, 1), (9, "deer"): (30.0, 1, 1, 1, 1)}
    (undated,) = counts_per_bin(placed, effort, "hour", "local", gap_s=300).filter(~pl.col("dated")).to_dicts()
    assert (undated["video_id"], undated["bin_offset_s"], undated["detections"], undated["bin_start_utc"]) == ("v2", 0.0, 1, None)


def test_events_merge_detections_closer_than_the_gap():
    placed, effort = _world("day", "utc")
    rows = counts_per_bin(placed, effort, "day", "utc", gap_s=5000).filter(pl.col("dated")).to_dicts()
    assert [(r["events"], r["detections"], r["individuals"]) for r in rows] == [(1, 5, 3)]  # t 0..2000 s: one event


def test_daylight_saving_neither_loses_nor_doubles_an_hour():
    # Berlin falls back on 2026-10-25 at 03:00 CEST -> 02:00 CET: local 02:00-03:00 happens twice
    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)  # 01:00 CEST
    intervals = pl.DataFrame({"deployment_id": ["d"], "timezone": ["Europe/Berlin"], "start_utc": [start],
                              "end_utc": [start + timedelta(hours=4)]},
                             schema_overrides={"start_utc": pl.Datetime("us", "UTC"), "end_utc": pl.Datetime("us", "UTC")})
    hours = effort_per_bin(intervals, "hour", "local").sort("bin_start_utc")
    assert hours["effort_min"].to_list() == [60.0] * 4  # four recorded hours, four bins
    assert [t.hour for t in hours["bin_start_local"]] == [1, 2, 2, 3]  # the repeated hour is two bins
    days = effort_per_bin(intervals, "day", "local")
    assert days["effort_min"].to_list() == [240.0]
    spring = intervals.with_columns(start_utc=pl.lit(datetime(2026, 3, 29, 0, 0, tzinfo=UTC)),
                                    end_utc=pl.lit(datetime(2026, 3, 29, 3, 0, tzinfo=UTC)))
    hours = effort_per_bin(spring, "hour", "local").sort("bin_start_utc")
    assert [t.hour for t in hours["bin_start_local"]] == [1, 3, 4] and hours["effort_min"].sum() == 180.0


def test_presence_with_first_and_last_seen_in_local_time():
    placed, effort = _world()
    counts = counts_per_bin(placed, effort, "hour", "local", gap_s=300)
    from vidlake.analysis.incremental import binned_extremes
    from vidlake.analysis.spec import CountsAnalysis

    spec = CountsAnalysis(name="a", version="1", queries=["deer", "fox"])
    counts = counts.join(binned_extremes(placed, spec), on=["deployment_id", "query", "bin_start_utc"], how="left")
    deployments = pl.DataFrame({"deployment_id": ["d1", "d2"], "timezone": ["Europe/Berlin", "UTC"]})
    rows = {(r["deployment_id"], r["query"]): r for r in presence(counts, deployments, ["deer", "fox"]).to_dicts()}
    deer = rows[("d1", "deer")]
    assert deer["present"] and deer["detections"] == 6 and deer["individuals"] == 3 and deer["undated_videos"] == 1
    assert deer["first_seen_local"] == datetime(2026, 6, 1, 8, 30) and deer["effort_min"] == 60.0
    assert not rows[("d1", "fox")]["present"] and not rows[("d2", "deer")]["present"]


def test_counts_across_the_autumn_change_keep_both_repeated_hours():
    """Detections at 02:30 local twice (CEST, then CET an hour later): two bins with the same local label."""
    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)  # 01:00 CEST
    placements = _placements([{"video_id": "v", "deployment_id": "d", "timezone": "Europe/Berlin",
                               "start_utc": start, "end_utc": start + timedelta(hours=4), "dated": True}])
    detections = _detections([("v", "deer", 1, 5400.0), ("v", "deer", 2, 9000.0)])  # 00:30 and 01:30 UTC
    effort = effort_per_bin(placements.select("deployment_id", "timezone", "start_utc", "end_utc"), "hour", "local")
    rows = counts_per_bin(place_detections(detections, placements), effort, "hour", "local", gap_s=300).sort(
        "bin_start_utc")
    assert [(r["bin_start_local"].hour, r["detections"]) for r in rows.to_dicts()] == [(1, 0), (2, 1), (2, 1), (3, 0)]
    assert rows["effort_min"].sum() == 240.0 and rows["bin_start_utc"].n_unique() == 4
