"""The page of one analysis: a counts analysis (counts over time per deployment, activity by hour of day, presence,
point heatmaps) or a tracks analysis (trajectories with the lines and zones, crossings, zone visits and dwell,
track statistics). Numbers come from vidlake/analysis/report/data.py, figures from plots.py.
"""

from __future__ import annotations

import polars as pl

from vidlake.analysis.report import data, plots
from vidlake.analysis.report.frames import Frames
from vidlake.analysis.report.page import Page, Plot, Section, Table
from vidlake.analysis.spec import CountsAnalysis, TracksAnalysis
from vidlake.platform.lake import Lake

__all__ = ["counts_page", "page_name", "tracks_page"]


def page_name(name: str) -> str:
    """The page's file stem: the analysis' name (``index`` is the report's own page)."""
    return "analysis-index" if name == "index" else name


def counts_page(lake: Lake, analysis: CountsAnalysis, frames: Frames, header: list[tuple[str, str]]) -> Page:
    rows = data.analysis_rows(lake, "analysis_counts", analysis.fingerprint)
    keys = data.task_keys(rows)
    page = Page(page_name(analysis.name), f"{analysis.name}: counts per {analysis.bin}",
                f"counts analysis of {', '.join(analysis.queries)} per {analysis.bin}",
                _header(lake, analysis, rows, keys, header))
    clock = _clocks(lake, analysis.clock)
    over_time = page.table(Table(
        "counts_over_time", "Counts per bin", f"Dated bins per deployment and query (bin: {analysis.bin}, clock: "
        f"{analysis.clock}); every bin with recorded footage has a row, zeros included.", data.counts_over_time(rows)))
    section = page_section(page, "Counts over time")
    for deployment, group in over_time.frame.partition_by("deployment_id", as_dict=True, maintain_order=True).items():
        deployment = deployment[0]
        section.blocks.append(Plot(
            "counts_over_time", f"Counts per {analysis.bin} at {deployment}",
            f"Detections (pointed objects on sampled frames), individuals (distinct objects first seen in the bin) "
            f"and MaxN (most objects on one frame) per {analysis.bin} bin, by {clock(deployment)}, one line per "
            "query. Bins with footage and no detection are drawn at zero; a break in a line is time without "
            "footage.", plots.counts_over_time(group, analysis.bin), over_time.name, {"deployment": deployment}))
    if over_time.frame.is_empty():
        section.blocks.append("No dated footage: no bins on the wall clock.")
    undated = data.undated_counts(rows)
    if undated.height:
        section.blocks.append(page.table(Table(
            "undated_counts", "Footage without a known start",
            "Counts of videos with no known start, binned in each video's own time (bin_offset_s).", undated)))

    section = page_section(page, "Activity by hour of day")
    if analysis.bin == "day":
        section.blocks.append("Bins of a day have no hour of day: an analysis with bin: hour or minute shows "
                              "activity by hour.")
    else:
        hours = page.table(Table(
            "hour_of_day", "Activity by hour of day", "Per query and hour of day: detections, recorded hours "
            "(effort) and detections per recorded hour, over every deployment.", data.hour_of_day(over_time.frame)))
        section.blocks.append(Plot(
            "hour_of_day", "Detections per recorded hour by hour of day",
            f"Detections divided by the hours of footage recorded in that hour of day ({_clock_name(analysis)}), "
            "over every deployment, a bar per query; an hour without footage has no bar.",
            plots.hour_of_day(hours.frame, _clock_name(analysis)), hours.name))

    section = page_section(page, "Presence")
    section.blocks.append(page.table(Table(
        "presence", "Presence per deployment and query", "Whether each query was seen, its detections and "
        "individuals, first and last seen (local and UTC), recorded minutes, and undated videos with detections.",
        data.presence(data.analysis_rows(lake, "analysis_presence", analysis.fingerprint)))))
    _heatmaps(lake, analysis, keys, frames, page)
    return page


def _heatmaps(lake: Lake, analysis: CountsAnalysis, keys: list[str], frames: Frames, page: Page) -> None:
    section = page_section(page, "Where on the frame")
    videos = data.analysis_rows(lake, "analysis_inputs", analysis.fingerprint)["video_id"].unique().to_list()
    placed = data.placements(lake).filter(pl.col("video_id").is_in(videos) & pl.col("deployment_id").is_not_null())
    table = "tracks" if analysis.task == "track" else "points"
    points = data.detections(lake, table, keys, analysis.queries, placed["video_id"].to_list()).join(
        placed, on="video_id")
    cells = page.table(Table("heatmap", "Points per cell", f"Per deployment and query, {table} per cell of a "
                             f"{data.HEATMAP_BINS} x {data.HEATMAP_BINS} grid over the frame (cells with points "
                             "only; x0..x1 and y0..y1 are fractions of the frame's width and height).",
                             data.heatmap_cells(points, "deployment_id")))
    for deployment in sorted(placed["deployment_id"].unique().to_list()):
        mine = points.filter(pl.col("deployment_id") == deployment)
        frame = frames.pick(mine, placed.filter(pl.col("deployment_id") == deployment)["video_id"].to_list())
        grids = [(q, data.heatmap_grid(cells.frame.filter((pl.col("deployment_id") == deployment)
                                                          & (pl.col("query") == q)))) for q in analysis.queries]
        section.blocks.append(Plot(
            "heatmap", f"Where {', '.join(analysis.queries)} were seen at {deployment}",
            f"Every {table[:-1]} of the analysis' task at {deployment}, counted per cell and drawn over a frame of "
            f"its footage ({frame.note}); a panel per query.", plots.heatmap(frame, grids), cells.name,
            {"deployment": deployment}))


def tracks_page(lake: Lake, analysis: TracksAnalysis, frames: Frames, header: list[tuple[str, str]]) -> Page:
    rows = data.analysis_rows(lake, "analysis_tracks", analysis.fingerprint)
    keys = data.task_keys(rows)
    page = Page(page_name(analysis.name), f"{analysis.name}: tracks, lines and zones",
                f"tracks analysis of {', '.join(analysis.queries)}", _header(lake, analysis, rows, keys, header))
    stats = data.track_stats(rows)
    samples = page.table(Table("trajectories", "Track samples", "Every sample of the analysed tracks: video "
                               "seconds, position in pixels and as fractions of the frame.",
                               data.trajectories(lake, stats, keys)))
    section = page_section(page, "Trajectories")
    placed = data.placements(lake)
    shown = set(stats["deployment_id"].drop_nulls().to_list()) | set(analysis.lines) | set(analysis.zones)
    for deployment in sorted(shown):
        mine = samples.frame.filter(pl.col("deployment_id") == deployment)
        frame = frames.pick(mine, placed.filter(pl.col("deployment_id") == deployment)["video_id"].to_list())
        lines, zones = analysis.lines.get(deployment, []), analysis.zones.get(deployment, [])
        shapes = [f"{_n(len(lines), 'counting line')} (the arrow points to the side a crossing \"in\" goes to)"
                  if lines else "", _n(len(zones), "zone") if zones else ""]
        section.blocks.append(Plot(
            "trajectories", f"Tracks at {deployment}",
            f"Every track of {', '.join(analysis.queries)} at {deployment} (a colour per track, a dot where it "
            f"starts), drawn over a frame of its footage ({frame.note})"
            + (f", with {' and '.join(s for s in shapes if s)}." if lines or zones else "."),
            plots.trajectories(frame, mine, lines, zones, analysis.max_gap_s), samples.name,
            {"deployment": deployment}))
    if not shown:
        section.blocks.append("No tracks: the analysis found none in the footage it read.")

    section = page_section(page, "Line crossings")
    if analysis.lines:
        events = data.analysis_rows(lake, "analysis_crossings", analysis.fingerprint)
        per_line = page.table(Table("crossings", "Crossings per line", "In and out crossings of each line.",
                                    data.crossings_per_line(events, analysis)))
        section.blocks += [Plot("crossings", "Crossings in and out per line",
                                "Crossings of each counting line by direction (\"in\": from the right of the line "
                                "to its left, walking from its start to its end).", plots.crossings(per_line.frame),
                                per_line.name), per_line]
        page.table(Table("crossing_events", "Every crossing", "One row per crossing: the track, the interpolated "
                         "time and the direction.", events.drop("analysis", "fingerprint", "task_keys", "run_id")))
    else:
        section.blocks.append("The analysis has no counting lines.")

    section = page_section(page, "Zone visits")
    if analysis.zones:
        visits = data.analysis_rows(lake, "analysis_zone_visits", analysis.fingerprint)
        per_zone = page.table(Table("zones", "Visits and dwell per zone", "Visits, distinct tracks, total and "
                                    "mean dwell (seconds) in each zone.", data.zone_summary(visits, analysis)))
        section.blocks += [Plot("zones", "Visits and dwell per zone", "The number of visits to each zone and the "
                                "seconds spent in it, all visits together (midpoint rule).",
                                plots.zones(per_zone.frame), per_zone.name), per_zone]
        page.table(Table("zone_visits", "Every visit", "One row per visit: enter and exit, samples inside, dwell.",
                         visits.drop("analysis", "fingerprint", "task_keys", "run_id")))
    else:
        section.blocks.append("The analysis has no zones.")

    section = page_section(page, "Track statistics")
    section.blocks.append(page.table(Table(
        "track_statistics", "Track statistics", "Per track: samples, start and end, duration, path length and "
        "speeds in frame units (and in metres where the deployment has pixelsPerMetre).", stats)))
    return page


def page_section(page: Page, title: str, **attrs: str) -> Section:
    section = Section(title, attrs=attrs)
    page.sections.append(section)
    return section


def _header(lake: Lake, analysis: CountsAnalysis | TracksAnalysis, rows: pl.DataFrame, keys: list[str],
            header: list[tuple[str, str]]) -> list[tuple[str, str]]:
    runs = sorted(set(rows["run_id"].drop_nulls().to_list())) if rows.height else []
    return [*header, ("analysis", f"{analysis.name} ({analysis.kind}, version {analysis.version})"),
            ("fingerprint", analysis.fingerprint), ("queries", ", ".join(analysis.queries)),
            ("model", "; ".join(data.models(lake, keys)) or "none"),
            ("analyze run", ", ".join(runs) or "none")]


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _clock_name(analysis: CountsAnalysis) -> str:
    return "local time" if analysis.clock == "local" else "UTC"


def _clocks(lake: Lake, clock: str):
    """deployment -> how its bins' times read (its zone, or UTC)."""
    zones = {} if not lake.exists("deployments") else {
        d["deployment_id"]: d["timezone"] for d in lake.read("deployments", columns=["deployment_id", "timezone"])
        .to_pylist()}
    return lambda deployment: "UTC" if clock == "utc" else f"local time ({zones.get(deployment) or 'UTC'})"
