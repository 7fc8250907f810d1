"""``vidlake analyze SPEC``: science analyses over the lake, incremental and exactly once.

    deployments file -> deployments table; videos and sets -> placements (deployment, UTC start)
    per analysis: what changed since its last run, recomputed (vidlake/analysis/incremental.py)

Every problem of the files fails before any work; a run ends with a summary and a ``runs`` row (job
``analyze``). See docs/analysis.md.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl

from vidlake.analysis.deployments import Deployment, PathPattern, load_deployments
from vidlake.analysis.incremental import run_counts, run_tracks
from vidlake.analysis.placement import FilenameTime, MediaTimes, place
from vidlake.analysis.spec import AnalysisFile, CountsAnalysis
from vidlake.errors import ConfigError
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.runs import RunRecord
from vidlake.platform.storage import storage_for

__all__ = ["AnalyzeResult", "check_analyses", "run_analyze"]


@dataclass
class AnalyzeResult:
    run_id: str
    deployments: int = 0
    placed: int = 0  # videos and sets placed this run (the others kept their placement)
    undated: int = 0  # footage without a known start (analysed in its own time)
    unplaced: int = 0  # footage whose path names no deployment
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> what the run did
    seconds: float = 0.0


def check_analyses(spec: AnalysisFile, settings: Settings) -> tuple[list[Deployment], MediaTimes | None]:
    """The deployments and the media rows' times, once every problem of the files and the analyses'
    references was ruled out (``ConfigError`` otherwise): what runs before any work."""
    deployments, media_times = _deployments(spec, settings)
    known = {d.deployment_id for d in deployments}
    for a in spec.analyses:
        unknown = sorted((set(getattr(a, "lines", {})) | set(getattr(a, "zones", {}))) - known)
        if unknown:
            raise ConfigError(f"analysis {a.name!r} has lines or zones for deployments {unknown} that are not in "
                              f"{spec.deployments.file}")
    return deployments, media_times


def run_analyze(spec: AnalysisFile, settings: Settings, full: bool = False, show: bool = True) -> AnalyzeResult:
    """Run every analysis of ``spec`` on its lake (``spec.lake`` or the settings' lake)."""
    lake = Lake(spec.lake or settings.lake.uri, settings.storage)
    deployments, media_times = check_analyses(spec, settings)  # every problem fails here, before any work
    if not lake.exists("outputs"):
        raise ConfigError(f"{lake.uri} has no model outputs yet: run `vidlake run` with the tasks the analyses need")
    task_keys = {a.name: _task_keys(lake, a) for a in spec.analyses}
    with RunRecord(lake, "analyze", spec_json=spec.model_dump_json()) as record:
        result = AnalyzeResult(run_id=record.run_id, deployments=len(deployments))
        _store_deployments(lake, deployments, record.run_id)
        placements = _placements(lake, spec, settings, deployments, media_times, result)
        for analysis in spec.analyses:
            run = run_counts if isinstance(analysis, CountsAnalysis) else run_tracks
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


def _deployments(spec: AnalysisFile, settings: Settings) -> tuple[list[Deployment], MediaTimes | None]:
    d = spec.deployments
    deployments = load_deployments(_read(d.file, settings), d.file)
    PathPattern(d.path_pattern)  # a bad pattern fails now
    if d.filename_time:
        FilenameTime(d.filename_time)
    media_times = None
    if d.media:
        rows = csv.DictReader(io.StringIO(_read(d.media, settings).decode("utf-8-sig")))
        media_times = MediaTimes(rows, deployments, d.media)
    return deployments, media_times


def _read(uri: str, settings: Settings) -> bytes:
    data = _maybe_read(uri, settings)
    if data is None:
        raise ConfigError(f"{uri} does not exist")
    return data


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
                media_times: MediaTimes | None, result: AnalyzeResult) -> pl.DataFrame:
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
        rows = place(todo, deployments, PathPattern(d.path_pattern, roots), media_times,
                     FilenameTime(d.filename_time) if d.filename_time else None,
                     read_sidecar=lambda uri: _maybe_read(uri, settings),
                     read_creation_time=lambda uri: _creation_time(uri, settings))
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


def _maybe_read(uri: str, settings: Settings) -> bytes | None:
    """A small file's bytes (local or S3), or None when it does not exist."""
    storage = storage_for(uri, settings.storage)
    if not storage.exists(uri):
        return None
    with storage.open(uri) as f:
        return f.read()


def _creation_time(uri: str, settings: Settings) -> datetime | None:
    """The container's creation_time tag (UTC), when it has one; the file local or on S3."""
    import av

    storage = storage_for(uri, settings.storage)
    try:
        with contextlib.ExitStack() as stack:
            source = storage.local_path(uri) or stack.enter_context(storage.open(uri))
            with av.open(source, metadata_errors="ignore") as container:
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
