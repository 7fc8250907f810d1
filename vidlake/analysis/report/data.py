"""The numbers of a report, read from the lake as Polars frames: each plot and table draws one of them, and the
same frame is written beside the page as CSV and Parquet.

Analyses' numbers come from their result tables (``analysis_counts``, ``analysis_presence``,
``analysis_tracks``, ``analysis_crossings``, ``analysis_zone_visits``), selected by fingerprint; the
positions drawn over frames come from ``points`` and ``tracks``, restricted to the task keys the analysis
read. Without an analysis, a lake's own rows are read with the task key a run wrote last for each task
and query (as ``vidlake analyze`` does).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from vidlake.analysis.spec import TracksAnalysis
from vidlake.platform.lake import Lake

__all__ = [
    "HEATMAP_BINS", "analysis_rows", "counts_over_time", "crossings_per_line", "detections", "heatmap_cells",
    "heatmap_grid", "hour_of_day", "latest_task_keys", "models", "placements", "presence", "task_keys",
    "track_stats", "trajectories", "undated_counts", "video_counts", "zone_summary",
]

HEATMAP_BINS = 24  # cells along each side of the frame

_COUNT_COLUMNS = ["deployment_id", "query", "bin_start_utc", "bin_start_local", "effort_min", "detections",
                  "individuals", "max_n", "events", "first_utc", "last_utc"]
_STAT_COLUMNS = ["deployment_id", "video_id", "query", "object_id", "samples", "start_t", "end_t", "start_utc",
                 "end_utc", "duration_s", "path_length_norm", "mean_speed_norm", "max_speed_norm", "path_length_m",
                 "mean_speed_m_s", "max_speed_m_s"]


def analysis_rows(lake: Lake, table: str, fingerprint: str) -> pl.DataFrame:
    """An analysis' rows of one result table (empty when the table does not exist)."""
    return pl.from_arrow(lake.read(table, filters=[("fingerprint", "=", fingerprint)]))


def counts_over_time(rows: pl.DataFrame) -> pl.DataFrame:
    """Dated ``analysis_counts`` rows, per deployment, query and bin: every bin with recorded footage, zeros
    included."""
    return rows.filter(pl.col("dated")).select(_COUNT_COLUMNS).sort("deployment_id", "query", "bin_start_utc")


def undated_counts(rows: pl.DataFrame) -> pl.DataFrame:
    """``analysis_counts`` rows of footage with no known start, binned in each video's own time."""
    return rows.filter(~pl.col("dated")).select(
        "video_id", "deployment_id", "query", "bin_offset_s", "detections", "individuals", "max_n", "events"
    ).sort("video_id", "query", "bin_offset_s")


def hour_of_day(over_time: pl.DataFrame) -> pl.DataFrame:
    """Per query and hour of the bins' clock: detections, recorded hours and detections per recorded hour
    (hours without footage have no row). Needs bins of an hour or shorter."""
    return over_time.group_by("query", hour=pl.col("bin_start_local").dt.hour().cast(pl.Int32)).agg(
        pl.col("detections").sum(), (pl.col("effort_min").sum() / 60).alias("effort_h"),
    ).filter(pl.col("effort_h") > 0).with_columns(
        detections_per_hour=pl.col("detections") / pl.col("effort_h")).sort("query", "hour")


def presence(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select("deployment_id", "query", "present", "detections", "individuals", "first_seen_local",
                       "last_seen_local", "first_seen_utc", "last_seen_utc", "effort_min", "undated_videos"
                       ).sort("deployment_id", "query")


def task_keys(rows: pl.DataFrame) -> list[str]:
    """The task keys an analysis read (every result row names them)."""
    return sorted(set(rows["task_keys"].explode().drop_nulls().to_list())) if rows.height else []


def latest_task_keys(lake: Lake) -> pl.DataFrame:
    """(task, query, task_key): per task and query, the task key a run wrote last."""
    outputs = pl.from_arrow(lake.read("outputs", columns=["task", "query", "task_key", "run_id"]))
    return (outputs.group_by("task", "query", "task_key").agg(pl.col("run_id").max()).sort("run_id")
            .group_by("task", "query", maintain_order=True).last().select("task", "query", "task_key")
            .sort("task", "query"))


def models(lake: Lake, keys: list[str] | None = None) -> list[str]:
    """``model_id @ revision`` of the outputs of these task keys (None: of every output)."""
    filters = [("task_key", "in", keys)] if keys is not None else None
    rows = pl.from_arrow(lake.read("outputs", columns=["model_id", "model_revision"], filters=filters)).unique()
    return sorted(f"{r['model_id']} @ {r['model_revision']}" for r in rows.to_dicts())


def placements(lake: Lake) -> pl.DataFrame:
    """video_id -> deployment_id (empty without a ``placements`` table)."""
    if not lake.exists("placements"):
        return pl.DataFrame(schema={"video_id": pl.String, "deployment_id": pl.String})
    return pl.from_arrow(lake.read("placements", columns=["video_id", "deployment_id"]))


def detections(lake: Lake, table: str, keys: list[str], queries: list[str] | None = None,
               videos: list[str] | None = None) -> pl.DataFrame:
    """``points`` or ``tracks`` rows of these task keys (and queries, videos) that have a position."""
    filters = [("task_key", "in", keys)] + ([("video_id", "in", videos)] if videos is not None else [])
    columns = ["video_id", "task_key", "query", "object_id", "t", "x", "y", "x_norm", "y_norm", "window_id",
               "image_id"]
    rows = pl.from_arrow(lake.read(table, columns=columns, filters=filters)).filter(
        pl.col("x_norm").is_not_null() & pl.col("y_norm").is_not_null())
    return rows.filter(pl.col("query").is_in(queries)) if queries is not None else rows


def heatmap_cells(points: pl.DataFrame, by: str) -> pl.DataFrame:
    """Points per cell of a ``HEATMAP_BINS`` square grid over the frame, per ``by`` and query (cells with
    points only; x0..x1, y0..y1 are the cell's bounds as fractions of the frame)."""
    n = HEATMAP_BINS
    cells = points.group_by(by, "query", x_bin=_cell("x_norm"), y_bin=_cell("y_norm")).agg(pl.len().alias("points"))
    return cells.with_columns(
        x0=pl.col("x_bin") / n, x1=(pl.col("x_bin") + 1) / n, y0=pl.col("y_bin") / n, y1=(pl.col("y_bin") + 1) / n,
        points=pl.col("points").cast(pl.Int64)).sort(by, "query", "y_bin", "x_bin")


def _cell(column: str) -> pl.Expr:
    """The grid cell of a coordinate in 0..1 (1.0 falls in the last cell)."""
    return pl.col(column).clip(0.0, 1.0).mul(HEATMAP_BINS).floor().clip(0, HEATMAP_BINS - 1).cast(pl.Int32)


def heatmap_grid(cells: pl.DataFrame) -> np.ndarray:
    """One group's cells as a ``HEATMAP_BINS`` square array (rows: y, top first)."""
    grid = np.zeros((HEATMAP_BINS, HEATMAP_BINS))
    grid[cells["y_bin"].to_numpy(), cells["x_bin"].to_numpy()] = cells["points"].to_numpy()
    return grid


def track_stats(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(_STAT_COLUMNS).sort("deployment_id", "video_id", "query", "object_id")


def trajectories(lake: Lake, stats: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """The samples of the analysed tracks (``analysis_tracks`` rows), with their deployment, in time order."""
    samples = detections(lake, "tracks", keys, videos=stats["video_id"].unique().to_list())
    tracks = stats.select("deployment_id", "video_id", "query", "object_id")
    return samples.join(tracks, on=["video_id", "query", "object_id"]).select(
        "deployment_id", "video_id", "query", "object_id", "t", "x", "y", "x_norm", "y_norm", "window_id", "image_id",
    ).sort("deployment_id", "video_id", "query", "object_id", "t")


def crossings_per_line(rows: pl.DataFrame, analysis: TracksAnalysis) -> pl.DataFrame:
    """In and out crossings of every line of the analysis (zeros for a line nothing crossed)."""
    lines = pl.DataFrame([{"deployment_id": d, "line": line.name} for d, ls in analysis.lines.items() for line in ls],
                         schema={"deployment_id": pl.String, "line": pl.String})
    counted = rows.group_by("deployment_id", "line").agg(
        (pl.col("direction") == "in").sum().cast(pl.Int64).alias("in"),
        (pl.col("direction") == "out").sum().cast(pl.Int64).alias("out"))
    return lines.join(counted, on=["deployment_id", "line"], how="left").with_columns(
        pl.col("in").fill_null(0), pl.col("out").fill_null(0)).sort("deployment_id", "line")


def zone_summary(rows: pl.DataFrame, analysis: TracksAnalysis) -> pl.DataFrame:
    """Visits, distinct tracks and dwell of every zone of the analysis (zeros for a zone nobody entered)."""
    zones = pl.DataFrame([{"deployment_id": d, "zone": z.name} for d, zs in analysis.zones.items() for z in zs],
                         schema={"deployment_id": pl.String, "zone": pl.String})
    visits = rows.group_by("deployment_id", "zone").agg(
        pl.len().cast(pl.Int64).alias("visits"),
        pl.struct("video_id", "query", "object_id").n_unique().cast(pl.Int64).alias("tracks"),
        pl.col("dwell_s").sum().alias("dwell_s"))
    return zones.join(visits, on=["deployment_id", "zone"], how="left").with_columns(
        pl.col("visits").fill_null(0), pl.col("tracks").fill_null(0), pl.col("dwell_s").fill_null(0.0)
    ).with_columns(mean_dwell_s=pl.when(pl.col("visits") > 0).then(pl.col("dwell_s") / pl.col("visits"))
                   ).sort("deployment_id", "zone")


def video_counts(lake: Lake, keys: pl.DataFrame, where: pl.DataFrame) -> pl.DataFrame:
    """Per video, task and query: the ``counts`` row's count and method, and the points it has, for the
    latest task keys; with the video's deployment where it is placed."""
    key_list = keys["task_key"].to_list()
    counts = pl.from_arrow(lake.read("counts", columns=["video_id", "task_key", "count", "method"],
                                     filters=[("task_key", "in", key_list)]))
    points = detections(lake, "points", key_list).group_by("video_id", "task_key").agg(
        pl.len().cast(pl.Int64).alias("points"))
    rows = counts.join(points, on=["video_id", "task_key"], how="full", coalesce=True).join(keys, on="task_key")
    uris = pl.from_arrow(lake.read("videos", columns=["video_id", "uris"])).select(
        "video_id", uri=pl.col("uris").list.first())
    return rows.join(uris, on="video_id", how="left").join(where, on="video_id", how="left").select(
        "video_id", "uri", "deployment_id", "task", "query", "count", "method",
        pl.col("points").fill_null(0)).sort("video_id", "task", "query")
