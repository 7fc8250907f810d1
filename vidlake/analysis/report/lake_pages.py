"""The pages of a report without an analysis file: what the lake holds.

``counts``: counts per video (``counts``, and the points behind them) and, where videos are placed, per
deployment. ``videos``: a section per video and image set, with a heatmap of its points and its track
trajectories over a frame of it. Rows are read with the task key a run wrote last for each task and query.
"""

from __future__ import annotations

import polars as pl

from vidlake.analysis.report import data, plots
from vidlake.analysis.report.analysis_pages import page_section
from vidlake.analysis.report.frames import Frames
from vidlake.analysis.report.page import Page, Plot, Table
from vidlake.platform.lake import Lake

__all__ = ["lake_pages"]


def lake_pages(lake: Lake, frames: Frames, header: list[tuple[str, str]]) -> list[Page]:
    keys = data.latest_task_keys(lake)
    header = [*header, ("model", "; ".join(data.models(lake, keys["task_key"].to_list())) or "none"),
              ("task keys", ", ".join(f"{r['task']} {r['query']!r}: {r['task_key']}" for r in keys.to_dicts()))]
    footage = _footage(lake)
    return [_counts_page(lake, keys, footage, header), _videos_page(lake, keys, footage, frames, header)]


def _footage(lake: Lake) -> pl.DataFrame:
    """Every video and image set: id, kind, name (the first path's file name), deployment (when placed)."""
    videos = pl.from_arrow(lake.read("videos", columns=["video_id", "uris"])).select(
        "video_id", kind=pl.lit("video"), uri=pl.col("uris").list.first())
    if lake.exists("sets"):
        sets = pl.from_arrow(lake.read("sets", columns=["set_id", "uris"])).select(
            video_id="set_id", kind=pl.lit("image set"), uri=pl.col("uris").list.first())
        videos = pl.concat([videos, sets])
    videos = videos.with_columns(name=pl.col("uri").str.split("/").list.last())
    twice = pl.col("name").is_duplicated()  # one file name in two folders: the id tells them apart
    videos = videos.with_columns(name=pl.when(twice).then(pl.format("{} ({})", "name", pl.col("video_id").str.slice(
        0, 8))).otherwise("name"))
    return videos.join(data.placements(lake), on="video_id", how="left").sort("uri", "video_id")


def _counts_page(lake: Lake, keys: pl.DataFrame, footage: pl.DataFrame, header: list[tuple[str, str]]) -> Page:
    page = Page("counts", "Counts per video", "counts per video (and per deployment where videos are placed)",
                header)
    rows = data.video_counts(lake, keys, footage.select("video_id", "deployment_id"))
    per_video = page.table(Table("counts_per_video", "Counts per video", "Per video, task and query: the count "
                                 "(method: distinct_ids, max_per_image or stated) and the points behind it.", rows))
    section = page_section(page, "Per video")
    series = _series(rows).join(footage.select("video_id", "name"), on="video_id", how="left").with_columns(
        label=pl.col("name").fill_null(pl.col("video_id").str.slice(0, 12)))
    if rows.height:
        section.blocks.append(Plot("counts_per_video", "Counts per video", "The count of each query in each video "
                                   "(distinct objects across the video), a bar per query.",
                                   plots.counts_bars(series, "label", "count", "count"), per_video.name))
    section.blocks.append(per_video)
    placed = rows.filter(pl.col("deployment_id").is_not_null())
    if placed.height:
        per_deployment = page.table(Table(
            "counts_per_deployment", "Counts per deployment", "Per deployment, task and query: the videos' counts "
            "added up (an animal seen in two videos counts twice), the points, and the videos.",
            placed.group_by("deployment_id", "task", "query").agg(
                pl.col("count").sum(), pl.col("points").sum(), pl.col("video_id").n_unique().alias("videos"))
            .sort("deployment_id", "task", "query")))
        section = page_section(page, "Per deployment")
        section.blocks += [Plot("counts_per_deployment", "Counts per deployment", "The videos' counts of each "
                                "query added up per deployment, a bar per query.",
                                plots.counts_bars(_series(per_deployment.frame), "deployment_id", "count", "count"),
                                per_deployment.name), per_deployment]
    return page


def _videos_page(lake: Lake, keys: pl.DataFrame, footage: pl.DataFrame, frames: Frames,
                 header: list[tuple[str, str]]) -> Page:
    page = Page("videos", "Points and tracks per video", "point heatmaps and track trajectories per video", header)
    by_task = {t: keys.filter(pl.col("task") == t)["task_key"].to_list() for t in keys["task"].unique().to_list()}
    points = data.detections(lake, "points", keys["task_key"].to_list())
    tracks = data.detections(lake, "tracks", by_task.get("track", []))
    cells = page.table(Table("heatmap", "Points per cell", f"Per video and query, points per cell of a "
                             f"{data.HEATMAP_BINS} x {data.HEATMAP_BINS} grid over the frame (cells with points "
                             "only; x0..x1 and y0..y1 are fractions of the frame).",
                             data.heatmap_cells(points, "video_id")))
    samples = page.table(Table("trajectories", "Track samples", "Every track sample of the latest track task keys.",
                               tracks.select("video_id", "query", "object_id", "t", "x", "y", "x_norm", "y_norm")
                               .sort("video_id", "query", "object_id", "t")))
    for video in footage.to_dicts():
        vid = video["video_id"]
        place = f" at {video['deployment_id']}" if video.get("deployment_id") else ""
        section = page_section(page, f"{video['name']}{place}", video=vid)
        mine_points, mine_tracks = points.filter(pl.col("video_id") == vid), tracks.filter(pl.col("video_id") == vid)
        if mine_points.is_empty() and mine_tracks.is_empty():
            section.blocks.append(f"{video['kind']} {vid[:12]} ({video['uri']}): no points and no tracks.")
            continue
        frame = frames.pick(pl.concat([mine_points, mine_tracks]), [vid])
        if mine_points.height:
            mine = cells.frame.filter(pl.col("video_id") == vid)
            grids = [(q, data.heatmap_grid(mine.filter(pl.col("query") == q)))
                     for q in sorted(mine_points["query"].unique().to_list())]
            section.blocks.append(Plot("heatmap", f"Points in {video['name']}", f"Every point of every task "
                                       f"(latest task keys), per cell, over a frame of the video ({frame.note}); a "
                                       "panel per query.", plots.heatmap(frame, grids), cells.name, {"video": vid}))
        if mine_tracks.height:
            section.blocks.append(Plot("trajectories", f"Tracks in {video['name']}", f"Every track (a colour per "
                                       f"track, a dot where it starts) over a frame of the video ({frame.note}).",
                                       plots.trajectories(frame, mine_tracks, [], [], None), samples.name,
                                       {"video": vid}))
    return page


def _series(rows: pl.DataFrame) -> pl.DataFrame:
    """``query`` named with its task when the rows hold several tasks (a bar per task and query)."""
    if rows["task"].n_unique() <= 1:
        return rows
    return rows.with_columns(query=pl.format("{} ({})", "query", "task"))
