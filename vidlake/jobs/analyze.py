"""The main job: sources -> videos -> windows -> frames -> Molmo 2 -> parsed rows -> the lake.

    ingest (list, probe new files)                                   Ray Data tasks, committed first
    SkipDone -> PlanWindows  (video, task_key) pairs already in `outputs` drop out   driver
    SampleFrames -> ExpandTasks                                                   CPU tasks, a window each
    BuildPrompt -> RunModel                                                       actor pool (GPUs)
    ParseOutput -> WriteTables                                                    driver

One streaming Ray Data pipeline: windows are the unit of work, frames are dropped once the prompt
is built, and only parsed rows (never frames) wait on the driver until a video is complete.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from vidlake import __version__
from vidlake.errors import JobFailed
from vidlake.jobs.ingest import run_ingest
from vidlake.jobs.spec import JobSpec
from vidlake.models.prompts import PromptRegistry
from vidlake.operators.parse import ParseOutput
from vidlake.operators.plan import PlanWindows, sampling_spec
from vidlake.operators.tasks import PendingTask, runs_on
from vidlake.operators.write import WriteTables, plain
from vidlake.platform.config import LakeSettings, Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.ids import new_run_id, task_key
from vidlake.platform.runtime import print_summary, progress_bar

__all__ = ["JobResult", "pending_work", "plan_rows", "run_job"]


@dataclass
class JobResult:
    run_id: str
    videos: int = 0  # videos under the sources
    videos_todo: int = 0  # videos with at least one task to run
    windows_planned: int = 0  # (window, task) pairs
    windows_ok: int = 0
    windows_failed: int = 0
    frames: int = 0
    generated_tokens: int = 0
    model_s: float = 0.0  # seconds of generate() work, summed over replicas
    gpus_per_replica: float = 0.0
    video_s: float = 0.0  # seconds of video processed
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    task_keys: list[str] = field(default_factory=list)


def run_job(spec: JobSpec, settings: Settings, show: bool = True) -> JobResult:
    """Run ``spec``; safe to re-run or to kill at any point (see docs/jobs.md, Exactly once)."""
    from vidlake.models.molmo2 import resolve_model

    started = time.monotonic()
    settings = settings.model_copy(update={"lake": LakeSettings(uri=spec.lake), "model": spec.model,
                                           "sampling": spec.sampling})
    ingest = run_ingest(settings, spec.sources, show=show)
    lake = Lake(settings.lake.uri, settings.storage)
    ref = resolve_model(spec.model)  # fails fast (ModelLoadError) before any cluster work
    tasks = resolve_tasks(spec, ref.model_id, ref.revision)
    videos = [v for v in lake.read("videos").to_pylist() if v["video_id"] in ingest.source_video_ids]
    items = pending_work(videos, tasks, lake)

    result = JobResult(run_id=new_run_id(), videos=len(videos), videos_todo=len(items),
                       task_keys=[t.task_key for t in tasks])
    windows = plan_rows(items, spec)
    for row in windows:
        pending = set(row["pending_task_keys"])
        result.windows_planned += sum(t.task_key in pending and runs_on(t, row) for t in tasks)
    result.video_s = sum(item["duration_s"] or 0.0 for item in items)
    lake.append("runs", [{
        "run_id": result.run_id, "job": spec.name, "status": "running", "started_at": datetime.now(timezone.utc),
        "sources": spec.sources, "spec_json": spec.model_dump_json(), "task_keys": result.task_keys,
        "model_id": ref.model_id, "model_revision": ref.revision, "vidlake_version": __version__,
        "files_found": ingest.found,
    }])
    writer = WriteTables(lake, result.run_id, flush_every=spec.commit_every)
    try:
        if windows:
            _stream(spec, settings, ref, tasks, windows, writer, result)
        writer.flush()
        if writer.incomplete:
            raise JobFailed(f"{len(writer.incomplete)} (video, task) pairs did not get all their windows back")
    except BaseException as exc:
        _finish(lake, result, started, writer, "failed", f"{type(exc).__name__}: {exc}")
        raise
    failed_share = result.windows_failed / result.windows_planned if result.windows_planned else 0.0
    message = None
    if items and result.windows_ok == 0:
        message = f"no window produced output ({result.windows_failed} failed); see `errors` in {lake.uri}"
    elif failed_share > spec.failure_budget:
        message = (f"{result.windows_failed} of {result.windows_planned} windows failed "
                   f"({failed_share:.0%} > failure budget {spec.failure_budget:.0%}); see `errors` in {lake.uri}")
    _finish(lake, result, started, writer, "failed" if message else "completed", message)
    if show:
        _print(result, lake)
    if message:
        raise JobFailed(message)
    return result


def resolve_tasks(spec: JobSpec, model_id: str, revision: str) -> list[PendingTask]:
    """Each (task, template, query) of the spec with its task_key for this model and sampling."""
    registry = PromptRegistry.with_user_templates(spec.model.templates)
    out = []
    for run in spec.task_runs():
        template = registry.get(run.template)
        key = task_key(run.task, template.fingerprint, run.query, model_id, revision,
                       sampling_spec(spec.sampling, run.windows))
        out.append(PendingTask(key, run.task, run.template, run.query, run.windows, run.max_new_tokens))
    return out


def pending_work(videos: list[dict], tasks: list[PendingTask], lake: Lake) -> list[dict]:
    """SkipDone: one row per video that still has tasks to run, with ``pending_task_keys``.

    A (video, task_key) is done when its rows are in ``outputs``, the table WriteTables commits last.
    """
    keys = [t.task_key for t in tasks]
    done: set[tuple[str, str]] = set()
    if lake.exists("outputs"):
        table = lake.read("outputs", columns=["video_id", "task_key"], filters=[("task_key", "in", keys)])
        done = set(zip(table["video_id"].to_pylist(), table["task_key"].to_pylist()))
    items = []
    for v in sorted(videos, key=lambda v: v["video_id"]):
        pending = [k for k in keys if (v["video_id"], k) not in done]
        if pending:
            items.append({**{k: v[k] for k in ("video_id", "size", "duration_s", "fps", "frames", "width", "height",
                                               "codec", "rotation")},
                          "uri": v["uris"][0], "status": "ok", "pending_task_keys": pending})
    return items


def plan_rows(items: list[dict], spec: JobSpec) -> list[dict]:
    """PlanWindows on the driver: the pending videos' window rows, in video order (arithmetic only)."""
    plan = PlanWindows(spec.sampling)
    return [row for item in items for row in plan(item)]


def _stream(spec, settings, ref, tasks, windows, writer: WriteTables, result: JobResult) -> None:
    """Build and drain the Ray Data pipeline, parsing and writing windows as they come back."""
    from vidlake.jobs.pipeline import build_pipeline, model_gpus

    ds = build_pipeline(spec, settings, ref, tasks, windows)
    result.gpus_per_replica = model_gpus(spec)
    parse = ParseOutput()
    videos = len({row["video_id"] for row in windows})
    with progress_bar("windows", total=result.windows_planned) as bar:
        began = time.monotonic()
        for row in ds.iter_rows():
            row = parse(plain(dict(row)))
            writer.add(row)
            result.windows_ok, result.windows_failed = writer.stats.windows_ok, writer.stats.windows_failed
            result.frames += len(row.get("timestamps_s") or ())
            result.generated_tokens += row.get("generated_tokens") or 0
            if row.get("infer_s") and row.get("infer_batch"):
                result.model_s += row["infer_s"] / row["infer_batch"]
            elapsed = max(time.monotonic() - began, 1e-9)
            bar.advance(1, f"videos {writer.stats.videos_committed}/{videos * len(tasks)} "
                           f"{result.frames / elapsed:.1f} frames/s {result.generated_tokens / elapsed:.1f} tok/s "
                           f"{result.windows_failed} failed")


def _finish(lake: Lake, result: JobResult, started: float, writer: WriteTables, status: str, message: str | None):
    result.seconds = time.monotonic() - started
    result.rows = dict(writer.stats.rows)
    hours = result.video_s / 3600
    metrics: dict[str, Any] = {
        "videos_todo": result.videos_todo, "windows_planned": result.windows_planned,
        "windows_ok": result.windows_ok, "windows_failed": result.windows_failed, "frames": result.frames,
        "generated_tokens": result.generated_tokens, "video_s": result.video_s, "model_s": result.model_s,
        "windows_per_s": result.windows_ok / result.seconds if result.seconds else 0.0,
        "model_s_per_video_hour": result.model_s / hours if hours else None,
        "gpu_s_per_video_hour": result.model_s * result.gpus_per_replica / hours if hours else None,
        "rows": result.rows,
    }
    values: dict[str, Any] = {"status": status, "ended_at": datetime.now(timezone.utc), "seconds": result.seconds,
                              "videos_new": result.videos_todo, "videos_known": result.videos - result.videos_todo,
                              "failed": result.windows_failed, "metrics_json": json.dumps(metrics)}
    if message:
        values["message"] = message
    lake.update("runs", f"run_id = '{result.run_id}'", values)


def _print(result: JobResult, lake: Lake) -> None:
    rows = [
        ("videos under the sources", result.videos),
        ("videos with work to do", result.videos_todo),
        ("windows x tasks planned", result.windows_planned),
        ("windows ok", result.windows_ok),
        ("windows failed", result.windows_failed),
        ("frames decoded", result.frames),
        ("tokens generated", result.generated_tokens),
        ("seconds", result.seconds),
        ("windows per second", result.windows_ok / result.seconds if result.seconds else 0.0),
        ("model seconds per video hour", result.model_s / (result.video_s / 3600) if result.video_s else 0.0),
        ("GPU seconds per video hour",
         result.model_s * result.gpus_per_replica / (result.video_s / 3600) if result.video_s else 0.0),
    ]
    rows += [(f"rows -> {table}", n) for table, n in sorted(result.rows.items())]
    print_summary(f"run {result.run_id} -> {lake.uri}", rows)
