"""Counts per deployment, query and time bin, and presence: vectorised (Polars) over the lake's rows.

Inputs are Polars frames:

* ``detections``: one row per pointed object at one sampled frame: ``video_id``, ``query``,
  ``object_id``, ``t`` (seconds in the video, or after a set's first capture), ``task_key``;
* ``placements``: vidlake/analysis/placement.py's rows (``deployment_id``, ``start_utc``, ``end_utc``,
  ``timezone``, ``dated``);
* ``effort``: recorded intervals (``deployment_id``, ``timezone``, ``start_utc``, ``end_utc``).

Bins are the deployment's wall clock (``clock: local``) or UTC, truncated in that zone, so a
daylight-saving change neither loses nor doubles an hour: the hour that repeats in autumn is two bins
(two UTC starts, one local label), the hour skipped in spring is none, and a day bin is that day's 23 or
25 hours. Footage without a known start is counted in video time (``dated`` false, ``video_id`` set,
``bin_offset_s`` from the video's start): flagged, never dated.
"""

from __future__ import annotations

import polars as pl

__all__ = ["BIN_EVERY", "COUNT_COLUMNS", "PRESENCE_COLUMNS", "bin_starts", "counts_per_bin", "effort_per_bin", "place_detections", "presence"]

BIN_EVERY = {"minute": "1m", "hour": "1h", "day": "1d"}  # Polars durations of the bins
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
COUNT_COLUMNS = ["deployment_id", "query", "dated", "video_id", "bin_start_utc", "bin_start_local", "bin_offset_s",
                 "effort_min", "detections", "individuals", "max_n", "events"]
PRESENCE_COLUMNS = ["deployment_id", "query", "present", "detections", "individuals", "first_seen_utc",
                    "last_seen_utc", "first_seen_local", "last_seen_local", "effort_min", "undated_videos"]


def place_detections(detections: pl.DataFrame, placements: pl.DataFrame) -> pl.DataFrame:
    """Detections with their deployment, zone and UTC time (null when the footage is undated)."""
    placed = placements.select("video_id", "deployment_id", "timezone", "start_utc", "dated")
    return detections.join(placed, on="video_id", how="left").with_columns(
        pl.col("dated").fill_null(False),
        t_utc=pl.when(pl.col("dated")).then(pl.col("start_utc") + pl.duration(microseconds=(pl.col("t") * 1e6).round()))
    ).drop("start_utc")


def bin_starts(frame: pl.DataFrame, column: str, bin: str, clock: str) -> pl.DataFrame:
    """``bin_start_utc`` and ``bin_start_local`` of ``column`` (UTC instants), one zone at a time."""
    parts = []
    for (zone,), group in frame.group_by(["timezone"]):
        zone = zone if clock == "local" and zone else "UTC"
        local = pl.col(column).dt.convert_time_zone(zone).dt.truncate(BIN_EVERY[bin])
        parts.append(group.with_columns(bin_start_utc=local.dt.convert_time_zone("UTC"),
                                        bin_start_local=local.dt.replace_time_zone(None)))
    return pl.concat(parts) if parts else frame.with_columns(
        bin_start_utc=pl.lit(None, pl.Datetime("us", "UTC")), bin_start_local=pl.lit(None, pl.Datetime("us")))


def effort_per_bin(intervals: pl.DataFrame, bin: str, clock: str) -> pl.DataFrame:
    """Recorded minutes per (deployment, bin) from intervals [start_utc, end_utc), at most the bin's length."""
    if intervals.is_empty():
        return pl.DataFrame(schema={"deployment_id": pl.String, "bin_start_utc": pl.Datetime("us", "UTC"),
                                    "bin_start_local": pl.Datetime("us"), "effort_min": pl.Float64})
    parts = []
    for (zone,), group in intervals.group_by(["timezone"]):
        zone = zone if clock == "local" and zone else "UTC"
        every = BIN_EVERY[bin]
        local = group.with_columns(
            a=pl.col("start_utc").dt.convert_time_zone(zone), b=pl.col("end_utc").dt.convert_time_zone(zone))
        bins = local.with_columns(bin_local=pl.datetime_ranges(pl.col("a").dt.truncate(every), pl.col("b"),
                                                               interval=every, closed="left")).explode("bin_local")
        bins = bins.filter(pl.col("bin_local").is_not_null()).with_columns(
            bin_end=pl.col("bin_local").dt.offset_by(every))
        overlap = (pl.min_horizontal(pl.col("b"), pl.col("bin_end")) - pl.max_horizontal(pl.col("a"), pl.col("bin_local")))
        parts.append(bins.with_columns(
            bin_start_utc=pl.col("bin_local").dt.convert_time_zone("UTC"),
            bin_start_local=pl.col("bin_local").dt.replace_time_zone(None),
            seconds=overlap.dt.total_microseconds() / 1e6,
            length=(pl.col("bin_end") - pl.col("bin_local")).dt.total_microseconds() / 1e6,
        ).filter(pl.col("seconds") > 0).select("deployment_id", "bin_start_utc", "bin_start_local", "seconds", "length"))
    effort = pl.concat(parts).group_by("deployment_id", "bin_start_utc", "bin_start_local").agg(
        pl.col("seconds").sum(), pl.col("length").first())
    return effort.with_columns(effort_min=pl.min_horizontal("seconds", "length") / 60).drop("seconds", "length")


def _events(placed: pl.DataFrame, gap_s: float, key: list[str], time: str) -> pl.DataFrame:
    """1 on the detection that starts an independent event (the first of its key, or after a gap > gap_s)."""
    ordered = placed.sort([*key, time])
    step = pl.col(time).diff().over(key)
    if ordered.schema[time] != pl.Float64:
        step = step.dt.total_microseconds() / 1e6
    return ordered.with_columns(starts_event=(step.is_null() | (step > gap_s)).cast(pl.Int64))


def counts_per_bin(placed: pl.DataFrame, effort: pl.DataFrame, bin: str, clock: str, gap_s: float) -> pl.DataFrame:
    """The counts table: dated rows per (deployment, query, bin) wherever there is effort or a detection
    (a bin with effort and no detection has zeros: zero counts are not missing footage), undated rows per
    (video, query, bin of video time)."""
    queries = placed.select("query").unique()
    dated = placed.filter(pl.col("dated"))
    dated = _events(dated, gap_s, ["deployment_id", "query"], "t_utc")
    dated = bin_starts(dated, "t_utc", bin, clock)
    firsts = dated.group_by("deployment_id", "query", "video_id", "object_id").agg(pl.col("t_utc").min().alias("first"))
    firsts = bin_starts(firsts.join(dated.select("deployment_id", "timezone").unique(), on="deployment_id"), "first", bin, clock)
    keys = ["deployment_id", "query", "bin_start_utc", "bin_start_local"]
    per_frame = dated.group_by(*keys, "video_id", "t").agg(pl.col("object_id").n_unique().alias("n"))
    stats = dated.group_by(keys).agg(pl.len().alias("detections"), pl.col("starts_event").sum().alias("events"))
    stats = stats.join(per_frame.group_by(keys).agg(pl.col("n").max().alias("max_n")), on=keys, how="left")
    stats = stats.join(firsts.group_by(keys).agg(pl.len().alias("individuals")), on=keys, how="left")
    grid = effort.join(queries, how="cross")
    rows = grid.join(stats, on=keys, how="full", coalesce=True).with_columns(
        pl.col("effort_min").fill_null(0.0), *(pl.col(c).fill_null(0).cast(pl.Int64)
                                               for c in ("detections", "individuals", "max_n", "events")),
        dated=pl.lit(True), video_id=pl.lit(None, pl.String), bin_offset_s=pl.lit(None, pl.Float64))
    undated = _undated(placed.filter(~pl.col("dated")), bin, gap_s)
    return pl.concat([rows.select(COUNT_COLUMNS), undated.select(COUNT_COLUMNS)], how="vertical_relaxed").sort(
        "deployment_id", "query", "dated", "video_id", "bin_start_utc", "bin_offset_s", nulls_last=True)


def _undated(placed: pl.DataFrame, bin: str, gap_s: float) -> pl.DataFrame:
    """Counts of undated footage in bins of its own time (seconds from its start), per video."""
    if placed.is_empty():
        return pl.DataFrame(schema={c: pl.Null for c in COUNT_COLUMNS})
    frame = _events(placed, gap_s, ["video_id", "query"], "t").with_columns(
        bin_offset_s=(pl.col("t") // _SECONDS[bin]) * _SECONDS[bin])
    keys = ["deployment_id", "query", "video_id", "bin_offset_s"]
    firsts = frame.group_by("video_id", "query", "object_id").agg(pl.col("t").min().alias("first")).with_columns(
        bin_offset_s=(pl.col("first") // _SECONDS[bin]) * _SECONDS[bin])
    per_frame = frame.group_by(*keys, "t").agg(pl.col("object_id").n_unique().alias("n"))
    stats = frame.group_by(keys).agg(pl.len().alias("detections"), pl.col("starts_event").sum().alias("events"))
    stats = stats.join(per_frame.group_by(keys).agg(pl.col("n").max().alias("max_n")), on=keys, how="left")
    stats = stats.join(firsts.group_by("video_id", "query", "bin_offset_s").agg(pl.len().alias("individuals")),
                       on=["video_id", "query", "bin_offset_s"], how="left")
    return stats.with_columns(pl.col("individuals").fill_null(0), dated=pl.lit(False),
                              bin_start_utc=pl.lit(None, pl.Datetime("us", "UTC")),
                              bin_start_local=pl.lit(None, pl.Datetime("us")), effort_min=pl.lit(None, pl.Float64))


def presence(counts: pl.DataFrame, deployments: pl.DataFrame, queries: list[str]) -> pl.DataFrame:
    """Per (deployment, query) from an analysis' count rows (``counts_per_bin`` plus ``first_utc`` and
    ``last_utc`` per bin): present, detections, individuals, first and last seen (UTC and the
    deployment's wall clock), recorded minutes, and how many undated videos had detections (their times
    are unknown; they make a query present)."""
    grid = deployments.select("deployment_id", "timezone").join(pl.DataFrame({"query": queries}), how="cross")
    dated = counts.filter(pl.col("dated"))
    seen = dated.group_by("deployment_id", "query").agg(
        pl.col("detections").sum(), pl.col("individuals").sum(), pl.col("effort_min").sum(),
        pl.col("first_utc").min().alias("first_seen_utc"), pl.col("last_utc").max().alias("last_seen_utc"))
    undated = counts.filter(~pl.col("dated") & (pl.col("detections") > 0)).group_by("deployment_id", "query").agg(
        pl.col("video_id").n_unique().alias("undated_videos"), pl.col("detections").sum().alias("undated_detections"))
    rows = grid.join(seen, on=["deployment_id", "query"], how="left").join(undated, on=["deployment_id", "query"],
                                                                          how="left")
    parts = []
    for (zone,), group in rows.group_by(["timezone"]):
        parts.append(group.with_columns(
            first_seen_local=pl.col("first_seen_utc").dt.convert_time_zone(zone).dt.replace_time_zone(None),
            last_seen_local=pl.col("last_seen_utc").dt.convert_time_zone(zone).dt.replace_time_zone(None)))
    rows = pl.concat(parts) if parts else rows.with_columns(first_seen_local=pl.lit(None, pl.Datetime("us")),
                                                            last_seen_local=pl.lit(None, pl.Datetime("us")))
    return rows.with_columns(
        detections=pl.col("detections").fill_null(0) + pl.col("undated_detections").fill_null(0),
        individuals=pl.col("individuals").fill_null(0), undated_videos=pl.col("undated_videos").fill_null(0),
        effort_min=pl.col("effort_min").fill_null(0.0),
    ).with_columns(present=pl.col("detections") > 0).select(PRESENCE_COLUMNS).sort("deployment_id", "query")
