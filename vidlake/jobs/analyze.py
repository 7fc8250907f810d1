"""``vidlake analyze SPEC``: science analyses over the lake, incremental and exactly once.

    deployments file -> deployments table; videos and sets -> placements (deployment, UTC start)
    per counts analysis: the task's points -> counts per deployment, query and bin, presence

A run reads which (video, task_key) rows each analysis saw last (``analysis_inputs``) and recomputes
only what changed since: for each deployment touched by new or replaced outputs (or a changed
placement), the bins from the first touched one to the last (plus ``event_gap_s``, since a new detection
can join or split the events after it), reading only the footage that overlaps them and the events'
look-back. Results replace exactly those bins in one commit per deployment, then the ledger is written:
a run killed in between redoes the same bins next time. ``--full`` recomputes everything; both give the
same tables (tests/analysis/test_analyze.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl

from vidlake.analysis.counts import counts_per_bin, effort_per_bin, place_detections, presence
from vidlake.analysis.deployments import Deployment, PathPattern, load_deployments
from vidlake.analysis.placement import FilenameTime, MediaTimes, place
from vidlake.analysis.spec import AnalysisFile, CountsAnalysis, TracksAnalysis
from vidlake.errors import ConfigError
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.runs import RunRecord
from vidlake.platform.storage import storage_for

__all__ = ["AnalyzeResult", "check_analyses", "run_analyze"]

_BIN_S = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class AnalyzeResult:
    run_id: str
    deployments: int = 0
    placed: int = 0  # videos and sets placed this run (the others kept their placement)
    undated: int = 0  # footage without a known start (analysed in its own time)
    unplaced: int = 0  # footage whose path names no deployment
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> what the run did
    seconds: float = 0.0


def check_analyses(spec: AnalysisFile, settings: Settings) -> list[Deployment]:
    """The deployments, once every problem of the files and the analyses' references was ruled out
    (``ConfigError`` otherwise): what runs before any work."""
    deployments = _deployments(spec, settings)
    known = {d.deployment_id for d in deployments}
    for a in spec.analyses:
        unknown = sorted((set(getattr(a, "lines", {})) | set(getattr(a, "zones", {}))) - known)
        if unknown:
            raise ConfigError(f"analysis {a.name!r} has lines or zones for deployments {unknown} that are not in "
                              f"{spec.deployments.file}")
    return deployments


def run_analyze(spec: AnalysisFile, settings: Settings, full: bool = False, show: bool = True) -> AnalyzeResult:
    """Run every analysis of ``spec`` on its lake (``spec.lake`` or the settings' lake)."""
    lake = Lake(spec.lake or settings.lake.uri, settings.storage)
    deployments = check_analyses(spec, settings)  # every problem fails here, before any work
    if not lake.exists("outputs"):
        raise ConfigError(f"{lake.uri} has no model outputs yet: run `vidlake run` with the tasks the analyses need")
    task_keys = {a.name: _task_keys(lake, a) for a in spec.analyses}
    with RunRecord(lake, "analyze", spec_json=spec.model_dump_json()) as record:
        result = AnalyzeResult(run_id=record.run_id, deployments=len(deployments))
        _store_deployments(lake, deployments, record.run_id)
        placements = _placements(lake, spec, settings, deployments, result)
        for analysis in spec.analyses:
            run = _counts if isinstance(analysis, CountsAnalysis) else _tracks
            result.analyses[analysis.name] = run(lake, analysis, task_keys[analysis.name], placements, deployments,
                                                 full, record.run_id)
        result.seconds = record.seconds
        record.finish("completed", metrics={"placed": result.placed, "undated": result.undated,
                                            "unplaced": result.unplaced, "analyses": result.analyses})
    if show:
        _print(result, lake)
    return result


def _store_deployments(lake: Lake, deployments: list[Deployment], run_id: str) -> None:
    """The lake's ``deployments`` table becomes the file's content (no commit when it already is)."""
    rows = [d.row() for d in deployments]
    if lake.exists("deployments"):
        have = [{k: v for k, v in r.items() if k != "run_id"} for r in lake.read("deployments").to_pylist()]
        if sorted(have, key=lambda r: r["deployment_id"]) == sorted(rows, key=lambda r: r["deployment_id"]):
            return
    lake.replace_where("deployments", [{**r, "run_id": run_id} for r in rows], {})


def _deployments(spec: AnalysisFile, settings: Settings) -> list[Deployment]:
    d = spec.deployments
    deployments = load_deployments(_read(d.file, settings), d.file)
    PathPattern(d.path_pattern)  # a bad pattern fails now
    if d.filename_time:
        FilenameTime(d.filename_time)
    if d.media:
        MediaTimes(csv.DictReader(io.StringIO(_read(d.media, settings).decode("utf-8-sig"))), deployments, d.media)
    return deployments


def _read(uri: str, settings: Settings) -> bytes:
    storage = storage_for(uri, settings.storage)
    if not storage.exists(uri):
        raise ConfigError(f"{uri} does not exist")
    with storage.open(uri) as f:
        return f.read()


def _task_keys(lake: Lake, analysis: CountsAnalysis) -> dict[str, str]:
    """query -> the task_key whose rows the analysis reads: of the analysis' task and that query, the one
    a run wrote last. A query no run answered is a ``ConfigError`` saying which task to run."""
    outputs = pl.from_arrow(lake.read("outputs", columns=["task", "query", "task_key", "run_id"])).filter(
        (pl.col("task") == analysis.task) & pl.col("query").is_in(analysis.queries))
    latest = outputs.group_by("query", "task_key").agg(pl.col("run_id").max()).sort("run_id").group_by("query").last()
    keys = dict(zip(latest["query"].to_list(), latest["task_key"].to_list()))
    missing = [q for q in analysis.queries if q not in keys]
    if missing:
        raise ConfigError(f"analysis {analysis.name!r} needs the {analysis.task} task's outputs for {missing} in "
                          f"{lake.uri}: run `vidlake run` with tasks: [{{task: {analysis.task}, queries: {missing}}}]")
    return keys


def _placements(lake: Lake, spec: AnalysisFile, settings: Settings, deployments: list[Deployment],
                result: AnalyzeResult) -> pl.DataFrame:
    """Every video and set placed (deployment, UTC start); footage already placed with this exact setup
    keeps its row, the rest is placed now (reading sidecars and container tags only for it)."""
    d = spec.deployments
    roots = d.roots or _sources(lake)
    setup = hashlib.sha256(json.dumps([[x.row() for x in deployments], d.model_dump(), roots], default=str,
                                      sort_keys=True).encode()).hexdigest()[:16]
    media = _media(lake)
    known = pl.from_arrow(lake.read("placements")) if lake.exists("placements") else None
    done = set(known.filter(pl.col("placed_with") == setup)["video_id"].to_list()) if known is not None else set()
    todo = [m for m in media if m["video_id"] not in done]
    if todo:
        media_times = None
        if d.media:
            rows = csv.DictReader(io.StringIO(_read(d.media, settings).decode("utf-8-sig")))
            media_times = MediaTimes(rows, deployments, d.media)
        rows = place(todo, deployments, PathPattern(d.path_pattern, roots), media_times,
                     FilenameTime(d.filename_time) if d.filename_time else None,
                     read_sidecar=lambda uri: _maybe_read(uri, settings), read_creation_time=_creation_time)
        lake.upsert("placements", [{**r, "placed_with": setup, "run_id": result.run_id} for r in rows],
                    [c for c in ("kind", "uri", "deployment_id", "start_utc", "end_utc", "timezone", "start_source",
                                 "dated", "problem", "placed_with", "run_id")])
        result.placed = len(rows)
    placements = pl.from_arrow(lake.read("placements")).filter(pl.col("video_id").is_in([m["video_id"] for m in media]))
    result.undated = placements.filter(~pl.col("dated")).height
    result.unplaced = placements.filter(pl.col("deployment_id").is_null()).height
    return placements


def _sources(lake: Lake) -> list[str]:
    runs = lake.read("runs", columns=["sources"]).to_pylist() if lake.exists("runs") else []
    return sorted({s for r in runs for s in (r["sources"] or ())})


def _media(lake: Lake) -> list[dict[str, Any]]:
    """Videos and image sets: id, kind, first path, duration; sets with their first capture."""
    from vidlake.jobs.image_sets import capture_time

    media = [{"video_id": v["video_id"], "kind": "video", "uri": v["uris"][0], "duration_s": v["duration_s"]}
             for v in lake.read("videos", columns=["video_id", "uris", "duration_s"]).to_pylist() if v["uris"]]
    if lake.exists("sets"):
        images = {i["image_id"]: i for i in lake.read("images").to_pylist()}
        for s in lake.read("sets").to_pylist():
            first = images[s["image_ids"][0]]
            media.append({"video_id": s["set_id"], "kind": "set", "uri": s["uris"][0], "duration_s": 0.0,
                          "captured": capture_time(first),
                          "captured_source": {"exif_offset": "exif"}.get(first["captured_at_source"],
                                                                          first["captured_at_source"])})
    return media


def _maybe_read(uri: str, settings: Settings) -> str | None:
    storage = storage_for(uri, settings.storage)
    if not storage.exists(uri):
        return None
    with storage.open(uri) as f:
        return f.read().decode("utf-8-sig")


def _creation_time(uri: str) -> datetime | None:
    """The container's creation_time tag (UTC), when it has one."""
    import av

    try:
        with av.open(uri, metadata_errors="ignore") as container:
            tag = container.metadata.get("creation_time")
    except (OSError, av.FFmpegError):
        return None
    if not tag:
        return None
    try:
        when = datetime.fromisoformat(tag.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@dataclass
class _Changes:
    inputs: pl.DataFrame  # what the analysis reads now (the ledger's next rows)
    videos: set[str]  # whose rows or placement changed since its last run
    first: bool  # a first or full run: everything
    since: int | None  # the rows' table version the last run read: changed rows lie in files added since
    # (None when a placement changed: that video's rows may be old)
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
    # the newest version in the ledger is what the last run that changed anything read
    since = None if moved or before["table_version"].null_count() else int(before["table_version"].max())
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


def _tracks(lake: Lake, analysis: TracksAnalysis, keys: dict[str, str], placements: pl.DataFrame,
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


def _counts(lake: Lake, analysis: CountsAnalysis, keys: dict[str, str], placements: pl.DataFrame,
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
    rows = _deployment_counts(lake, analysis, keys, table, footage, deployments, every=first)
    if ranges is not None:
        rows = rows.join(ranges, on="deployment_id").filter(
            (pl.col("bin_start_utc") >= pl.col("low")) & (pl.col("bin_start_utc") < pl.col("high"))).drop("low", "high")
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
    deps = ranges["deployment_id"].to_list() if ranges is not None else [d.deployment_id for d in deployments]
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
    firsts = _binned_extremes(placed, analysis)
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


def _binned_extremes(placed: pl.DataFrame, analysis: CountsAnalysis) -> pl.DataFrame:
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
    parts = []
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
    """Presence per (deployment, query), from the analysis' own count rows (every bin of the deployment)."""
    counts = pl.from_arrow(lake.read("analysis_counts", filters=[("fingerprint", "=", analysis.fingerprint)]))
    counts = counts.filter(pl.col("deployment_id").is_in(deps) | pl.col("deployment_id").is_null())
    frame = pl.DataFrame([{"deployment_id": d.deployment_id, "timezone": d.timezone} for d in deployments
                          if d.deployment_id in deps], schema={"deployment_id": pl.String, "timezone": pl.String})
    rows = presence(counts, frame, analysis.queries)
    lake.replace_where("analysis_presence", rows.with_columns(
        analysis=pl.lit(analysis.name), fingerprint=pl.lit(analysis.fingerprint),
        task_keys=pl.lit(sorted(keys.values()), pl.List(pl.String)), run_id=pl.lit(run_id)).to_arrow(),
        {"fingerprint": analysis.fingerprint, "deployment_id": deps})


def _print(result: AnalyzeResult, lake: Lake) -> None:
    from vidlake.platform.runtime.progress import print_summary

    rows = [("deployments", result.deployments), ("videos and sets placed now", result.placed),
            ("without a known start (video time only)", result.undated),
            ("in no deployment", result.unplaced)]
    for name, done in result.analyses.items():
        rows.append((f"{name}: {done['mode']}", f"{done['changed_videos']} videos changed, "
                                                f"{done['deployments']} deployments, {done['rows']} rows"))
    rows.append(("seconds", result.seconds))
    print_summary(f"analyze {result.run_id} -> {lake.uri}", rows)
