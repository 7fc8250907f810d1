"""The incremental runs of the analyses: what changed since an analysis last ran, recomputed and written.

An analysis reads which (video, task_key) rows it saw last (``analysis_inputs``, with the version of the
rows' table then) and recomputes only what changed since: for a counts analysis, each touched
deployment's bins from the first touched one to the last (plus ``event_gap_s``, since a new detection can
join or split the events after it), reading only the footage that overlaps them and the events'
look-back; for a tracks analysis, the changed videos' rows (read from the files added since). Results
replace exactly those rows, new footage alone is appended, and the ledger is written last: a run killed
in between does the same work again. A first or ``--full`` run recomputes everything; both give the
same tables (tests/analysis/test_analyze.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import polars as pl

from vidlake.analysis.counts import counts_per_bin, effort_per_bin, place_detections, presence
from vidlake.analysis.deployments import Deployment
from vidlake.analysis.spec import CountsAnalysis, TracksAnalysis
from vidlake.platform.lake import Lake

__all__ = ["binned_extremes", "run_counts", "run_tracks"]


@dataclass
class _Changes:
    inputs: pl.DataFrame  # what the analysis reads now (the ledger's next rows)
    videos: set[str]  # whose rows or placement changed since its last run
    first: bool  # a first or full run: everything
    since: int | None  # the rows' table version the last run read: changed rows lie in files added since
    new_only: bool = False  # every changed video is new to the analysis: its rows are added, nothing replaced


def _changes(lake: Lake, fp: str, keys: dict[str, str], table: str, placements: pl.DataFrame,
             full: bool) -> _Changes:
    inputs = _inputs(lake, list(keys.values()), placements).with_columns(
        table_version=pl.lit(lake.version(table), pl.Int64))
    before = (pl.from_arrow(lake.read("analysis_inputs", filters=[("fingerprint", "=", fp)]))
              if lake.exists("analysis_inputs") and not full else None)
    if before is None or before.is_empty():
        return _Changes(inputs, set(inputs["video_id"].to_list()), True, None)
    rows = ["video_id", "task_key", "output_run_id"]
    now, was = inputs.select(*rows, "placement"), before.select(*rows, "placement")
    changed = set(now.join(was, on=now.columns, how="anti")["video_id"].to_list()) | set(
        was.join(now, on=now.columns, how="anti")["video_id"].to_list())
    rewritten = set(now.select(rows).join(was.select(rows), on=rows, how="anti")["video_id"].to_list())
    moved = changed - rewritten - set(was.join(now, on=rows, how="anti")["video_id"].to_list())
    if moved:  # footage placed elsewhere (an edited deployments file): its old bins and deployments are stale too
        return _Changes(inputs, set(inputs["video_id"].to_list()) | changed, True, None)
    # the newest version in the ledger is what the last run that changed anything read
    since = None if before["table_version"].null_count() else int(before["table_version"].max())
    return _Changes(inputs, changed, False, since, new_only=not changed & set(was["video_id"].to_list()))


def _ledger(lake: Lake, fp: str, changes: _Changes, run_id: str) -> None:
    """What the analysis read, written after its results: a run killed before this redoes the same work.
    The changed videos' rows carry this run's table version (where a next run reads from)."""
    ledger = changes.inputs.with_columns(fingerprint=pl.lit(fp), run_id=pl.lit(run_id))
    if changes.first:
        lake.replace_where("analysis_inputs", ledger.to_arrow(), {"fingerprint": fp})
    elif changes.new_only:  # nothing of theirs is in the ledger yet
        lake.append("analysis_inputs", ledger.filter(pl.col("video_id").is_in(list(changes.videos))).to_arrow())
    else:
        lake.replace_where("analysis_inputs", ledger.filter(pl.col("video_id").is_in(list(changes.videos))).to_arrow(),
                           {"fingerprint": fp, "video_id": sorted(changes.videos)})


def run_tracks(lake: Lake, analysis: TracksAnalysis, keys: dict[str, str], placements: pl.DataFrame,
            deployments: list[Deployment], full: bool, run_id: str) -> dict[str, Any]:
    """One tracks analysis: statistics, line crossings and zone visits of the changed videos' tracks (each
    video's rows depend on that video alone, so they are replaced video by video)."""
    from vidlake.analysis.geometry import line_crossings, load_samples, track_stats, zone_visits

    fp = analysis.fingerprint
    changes = _changes(lake, fp, keys, "tracks", placements, full)
    changed, first = changes.videos, changes.first
    if not changed:
        return {"changed_videos": 0, "deployments": 0, "rows": 0, "mode": "up to date"}
    placed = placements.filter(pl.col("deployment_id").is_not_null() & pl.col("video_id").is_in(list(changed)))
    query_of = {k: q for q, k in keys.items()}
    filters = [("task_key", "in", list(query_of))]
    if not first:  # a first or full run reads every row of its task keys
        filters.append(("video_id", "in", placed["video_id"].to_list()))
    samples = pl.from_arrow(lake.read("tracks", columns=["video_id", "task_key", "object_id", "t", "x", "y", "x_norm",
                                                         "y_norm"], filters=filters, since=changes.since))
    samples = samples.filter(pl.col("object_id").is_not_null() & pl.col("x_norm").is_not_null()).with_columns(
        query=pl.col("task_key").replace_strict(query_of, return_dtype=pl.String))
    samples = load_samples(place_detections(samples, placed).filter(pl.col("deployment_id").is_not_null()))
    calibration = {d.deployment_id: d.pixels_per_metre for d in deployments if d.pixels_per_metre}
    where = {"fingerprint": fp} if first else {"fingerprint": fp, "video_id": sorted(changed)}
    written = 0
    for table, rows in (("analysis_tracks", track_stats(samples, calibration, analysis.max_gap_s)),
                        ("analysis_crossings", line_crossings(samples, analysis.lines)),
                        ("analysis_zone_visits", zone_visits(samples, analysis.zones, analysis.max_gap_s))):
        rows = pl.from_arrow(rows).with_columns(
            analysis=pl.lit(analysis.name), fingerprint=pl.lit(fp), run_id=pl.lit(run_id),
            task_keys=pl.lit(sorted(keys.values()), pl.List(pl.String))).to_arrow()
        if changes.new_only:  # new videos only: nothing of theirs to replace
            written += lake.append(table, rows)
        else:
            written += lake.replace_where(table, rows, where)
    _ledger(lake, fp, changes, run_id)
    return {"changed_videos": len(changed), "deployments": placed["deployment_id"].n_unique(), "rows": written,
            "mode": "full" if first else "incremental"}


def run_counts(lake: Lake, analysis: CountsAnalysis, keys: dict[str, str], placements: pl.DataFrame,
            deployments: list[Deployment], full: bool, run_id: str) -> dict[str, Any]:
    """One counts analysis: what changed since its last run, recomputed and written."""
    fp = analysis.fingerprint
    table = "tracks" if analysis.task == "track" else "points"
    changes = _changes(lake, fp, keys, table, placements, full)
    changed, first = changes.videos, changes.first
    if not changed:
        return {"changed_videos": 0, "deployments": 0, "rows": 0, "mode": "up to date"}
    gap = timedelta(seconds=analysis.event_gap_s)
    dated = placements.filter(pl.col("dated") & pl.col("deployment_id").is_not_null())
    touched = dated.filter(pl.col("video_id").is_in(list(changed)))
    ranges = None  # per touched deployment, [low, high) of the bins to recompute; None: every bin
    if first:
        footage = dated
        where: dict | list[dict] = {"fingerprint": fp, "dated": True}
    else:
        spans = touched.group_by("deployment_id", "timezone").agg(
            pl.col("start_utc").min().alias("low"), (pl.col("end_utc").max() + gap).alias("high"))
        ranges = _bin_bounds(spans, analysis)
        # the footage overlapping those bins, and the events' look-back before them
        footage = dated.join(ranges, on="deployment_id").filter(
            (pl.col("end_utc") >= pl.col("low") - gap) & (pl.col("start_utc") < pl.col("high"))).drop("low", "high")
        where = [{"fingerprint": fp, "deployment_id": r["deployment_id"], "dated": True,
                  "bin_start_utc": (r["low"], r["high"])} for r in ranges.to_dicts()]
    written = 0
    if ranges is None or not ranges.is_empty():  # (only undated footage changed: no dated bin to redo)
        rows = _deployment_counts(lake, analysis, keys, table, footage, deployments, every=first)
        if ranges is not None:
            rows = rows.join(ranges, on="deployment_id").filter(
                (pl.col("bin_start_utc") >= pl.col("low")) & (pl.col("bin_start_utc") < pl.col("high"))
            ).drop("low", "high")
        written = lake.replace_where("analysis_counts", _count_rows(rows, analysis, keys, run_id), where)
    undated = placements.filter(~pl.col("dated") & pl.col("video_id").is_in(list(changed)))
    if first:
        undated = placements.filter(~pl.col("dated"))
    if not undated.is_empty() or first:
        where = {"fingerprint": fp, "dated": False}
        if not first:
            where["video_id"] = undated["video_id"].to_list()
        rows = (_count_rows(_undated_counts(lake, analysis, keys, table, undated), analysis, keys, run_id)
                if not undated.is_empty() else [])
        written += lake.replace_where("analysis_counts", rows, where)
    if ranges is None:
        deps = None
    else:  # the deployments whose dated bins or undated footage changed
        deps = sorted(set(ranges["deployment_id"].to_list()) | set(undated["deployment_id"].drop_nulls().to_list()))
    _presence(lake, analysis, keys, deployments, deps, run_id)
    _ledger(lake, fp, changes, run_id)
    return {"changed_videos": len(changed), "deployments": touched["deployment_id"].n_unique(), "rows": written,
            "mode": "full" if first else "incremental"}


def _inputs(lake: Lake, task_keys: list[str], placements: pl.DataFrame) -> pl.DataFrame:
    """(video_id, task_key, output_run_id, placement) of every (video, task_key) the analysis reads."""
    outputs = pl.from_arrow(lake.read("outputs", columns=["video_id", "task_key", "run_id"],
                                      filters=[("task_key", "in", task_keys)]))
    latest = outputs.group_by("video_id", "task_key").agg(pl.col("run_id").max().alias("output_run_id"))
    where = placements.select("video_id", placement=pl.concat_str(
        pl.col("deployment_id").fill_null(""), pl.col("start_utc").cast(pl.String).fill_null(""), separator="@"))
    return latest.join(where, on="video_id", how="left").with_columns(pl.col("placement").fill_null(""))


def _detections(lake: Lake, table: str, keys: dict[str, str], videos: list[str] | None) -> pl.DataFrame:
    """The task keys' rows of these videos (None: of every video) with their query."""
    query_of = {k: q for q, k in keys.items()}
    filters = [("task_key", "in", list(query_of))] + ([("video_id", "in", videos)] if videos is not None else [])
    if videos is not None and not videos:
        filters = [("task_key", "in", [])]
    frame = pl.from_arrow(lake.read(table, columns=["video_id", "task_key", "object_id", "t"], filters=filters))
    return frame.with_columns(query=pl.col("task_key").replace_strict(query_of, return_dtype=pl.String)).filter(
        pl.col("object_id").is_not_null() & pl.col("t").is_not_null())


def _effort(dated: pl.DataFrame, deployments: list[Deployment]) -> pl.DataFrame:
    """Recorded intervals: each video's, and the whole period of a deployment that has image sets (a trap
    is armed all along)."""
    videos = dated.filter(pl.col("kind") == "video").select("deployment_id", "timezone", "start_utc", "end_utc")
    trapped = set(dated.filter(pl.col("kind") == "set")["deployment_id"].to_list())
    periods = pl.DataFrame([{"deployment_id": d.deployment_id, "timezone": d.timezone, "start_utc": d.start,
                             "end_utc": d.end} for d in deployments if d.deployment_id in trapped],
                           schema=videos.schema)
    return pl.concat([videos, periods])


def _deployment_counts(lake, analysis, keys, table, footage, deployments, every: bool = False) -> pl.DataFrame:
    """Counts of this footage (dated, placed): one read of its rows (``every``: of all rows, the footage
    being all there is), every deployment at once."""
    detections = _detections(lake, table, keys, None if every else footage["video_id"].to_list())
    placed = place_detections(detections, footage).filter(pl.col("dated").fill_null(False))
    effort = effort_per_bin(_effort(footage, deployments), analysis.bin, analysis.clock)
    effort = effort.filter(pl.col("deployment_id").is_in(footage["deployment_id"].unique().to_list()))
    rows = counts_per_bin(placed.with_columns(pl.col("query").cast(pl.String)), effort, analysis.bin, analysis.clock,
                          analysis.event_gap_s)
    rows = _with_queries(rows, analysis)
    firsts = binned_extremes(placed, analysis)
    return rows.join(firsts, on=["deployment_id", "query", "bin_start_utc"], how="left")


def _with_queries(rows: pl.DataFrame, analysis: CountsAnalysis) -> pl.DataFrame:
    """Zero rows for the queries that had no detection where there was effort."""
    effort = rows.filter(pl.col("dated")).select("deployment_id", "bin_start_utc", "bin_start_local", "effort_min").unique(
        ["deployment_id", "bin_start_utc"])
    grid = effort.join(pl.DataFrame({"query": analysis.queries}), how="cross")
    have = rows.filter(pl.col("dated"))
    missing = grid.join(have, on=["deployment_id", "query", "bin_start_utc"], how="anti").with_columns(
        dated=pl.lit(True), video_id=pl.lit(None, pl.String), bin_offset_s=pl.lit(None, pl.Float64),
        detections=pl.lit(0, pl.Int64), individuals=pl.lit(0, pl.Int64), max_n=pl.lit(0, pl.Int64),
        events=pl.lit(0, pl.Int64))
    return pl.concat([rows, missing.select(rows.columns)], how="vertical_relaxed")


def binned_extremes(placed: pl.DataFrame, analysis: CountsAnalysis) -> pl.DataFrame:
    from vidlake.analysis.counts import bin_starts

    dated = placed.filter(pl.col("dated"))
    binned = bin_starts(dated, "t_utc", analysis.bin, analysis.clock)
    return binned.group_by("deployment_id", "query", "bin_start_utc").agg(
        pl.col("t_utc").min().alias("first_utc"), pl.col("t_utc").max().alias("last_utc"))


def _bin_bounds(spans: pl.DataFrame, analysis: CountsAnalysis) -> pl.DataFrame:
    """Per deployment, [low, high) widened to whole bins of the analysis' clock: from the start of the bin
    holding ``low`` to the end of the bin holding ``high``."""
    from vidlake.analysis.counts import BIN_EVERY

    every = BIN_EVERY[analysis.bin]
    parts = [pl.DataFrame(schema={"deployment_id": pl.String, "low": pl.Datetime("us", "UTC"),
                                  "high": pl.Datetime("us", "UTC")})]
    for (zone,), group in spans.group_by(["timezone"]):
        zone = zone if analysis.clock == "local" else "UTC"
        parts.append(group.select(
            "deployment_id",
            low=pl.col("low").dt.convert_time_zone(zone).dt.truncate(every).dt.convert_time_zone("UTC"),
            high=pl.col("high").dt.convert_time_zone(zone).dt.truncate(every).dt.offset_by(every)
            .dt.convert_time_zone("UTC")))
    return pl.concat(parts)


def _undated_counts(lake, analysis, keys, table, undated) -> pl.DataFrame:
    detections = _detections(lake, table, keys, undated["video_id"].to_list())
    placed = place_detections(detections, undated)
    rows = counts_per_bin(placed, effort_per_bin(pl.DataFrame(), analysis.bin, analysis.clock), analysis.bin,
                          analysis.clock, analysis.event_gap_s)
    return rows.filter(~pl.col("dated")).with_columns(first_utc=pl.lit(None, pl.Datetime("us", "UTC")),
                                                      last_utc=pl.lit(None, pl.Datetime("us", "UTC")))


def _count_rows(rows: pl.DataFrame, analysis: CountsAnalysis, keys: dict[str, str], run_id: str):
    return rows.with_columns(
        analysis=pl.lit(analysis.name), fingerprint=pl.lit(analysis.fingerprint), bin=pl.lit(analysis.bin),
        clock=pl.lit(analysis.clock), task_keys=pl.lit(sorted(keys.values()), pl.List(pl.String)),
        run_id=pl.lit(run_id)).to_arrow()


def _presence(lake, analysis, keys, deployments, deps, run_id) -> None:
    """Presence per (deployment, query), from the analysis' own count rows (every bin of the deployment),
    for the deployments ``deps`` (None: every deployment, and rows of deployments no longer in the file go)."""
    counts = pl.from_arrow(lake.read("analysis_counts", filters=[("fingerprint", "=", analysis.fingerprint)]))
    if deps is not None:
        counts = counts.filter(pl.col("deployment_id").is_in(deps) | pl.col("deployment_id").is_null())
    frame = pl.DataFrame([{"deployment_id": d.deployment_id, "timezone": d.timezone} for d in deployments
                          if deps is None or d.deployment_id in deps],
                         schema={"deployment_id": pl.String, "timezone": pl.String})
    rows = presence(counts, frame, analysis.queries)
    where = {"fingerprint": analysis.fingerprint} | ({"deployment_id": deps} if deps is not None else {})
    lake.replace_where("analysis_presence", rows.with_columns(
        analysis=pl.lit(analysis.name), fingerprint=pl.lit(analysis.fingerprint),
        task_keys=pl.lit(sorted(keys.values()), pl.List(pl.String)), run_id=pl.lit(run_id)).to_arrow(), where)
