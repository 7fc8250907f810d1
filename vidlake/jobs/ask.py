"""``vidlake ask``: one video (or one image) through the main job's own step list, in this process (no Ray,
no lake). An image goes as an image set of one, through Molmo 2's image path, as the job sends it.

    probe_video -> run_steps() on the LocalExecutor (PlanWindows -> SampleFrames -> ExpandTasks ->
    BuildPrompt -> RunModel -> ParseOutput) -> merge_windows (the writer's per-video merge)
    -> table or JSON (+ overlay MP4)

Because the steps and the merge are the job's, ``ask`` and a one-video job give the same captions,
points, tracks and counts.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vidlake.errors import ConfigError, JobFailed, RowError
from vidlake.jobs.image_sets import set_item
from vidlake.platform.config import Settings
from vidlake.platform.media.images import IMAGE_SUFFIXES

__all__ = ["AskResult", "run_ask"]

AskResult = dict[str, Any]
_MARK_FIELDS = ("window_id", "label", "object_id", "t", "x", "y", "x_norm", "y_norm", "box", "id_scope", "image_id")
_WINDOW_FIELDS = ("window_index", "start_s", "end_s", "status", "error_kind", "error", "error_stage", "prompt",
                  "raw_text", "answer", "count", "parse_status", "parse_issues", "prompt_tokens", "generated_tokens",
                  "finish_reason", "infer_s")


def run_ask(
    settings: Settings, video: str, *, task: str = "qa", question: str | None = None, query: str | None = None,
    template: str | None = None, max_new_tokens: int | None = None, as_json: bool = False,
    overlay: Path | None = None, show: bool = True,
) -> AskResult:
    """Answer one question about one video or image; returns the JSON-able result (and prints it when
    ``show``)."""
    from vidlake.jobs.run import check_prompt_lengths, executor_gpus, fit_sampling, run_steps, video_item
    from vidlake.jobs.spec import parse_job_spec, resolve_tasks
    from vidlake.models.molmo2 import resolve_model
    from vidlake.models.prompts import PromptRegistry
    from vidlake.models.vllm_engine import with_engine
    from vidlake.operators.merge import merge_windows
    from vidlake.operators.write import plain
    from vidlake.platform.runtime.executors import LocalExecutor

    text = query if query is not None else question
    chosen = PromptRegistry.with_user_templates(settings.model.templates).get(template or task)
    if chosen.needs_query and not (text and text.strip()):
        raise ConfigError(f"task {chosen.task!r} needs a question or --query")
    spec = parse_job_spec({
        "name": "ask", "sources": [video], "model": settings.model.model_dump(),
        "sampling": settings.sampling.model_dump(),
        "tasks": [{"task": chosen.task, "prompt": chosen.name, "queries": [text] if text else [],
                   "max_new_tokens": max_new_tokens}],
    }, "question")
    ref = resolve_model(spec.model, settings.storage)  # fails fast, before any decoding
    if spec.model.engine != "hf":  # vLLM without a GPU here or the package: before any decoding too
        ref = with_engine(ref, spec.model, *executor_gpus(LocalExecutor(), settings))
    spec = fit_sampling(spec, ref, show)
    if show:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # keep the terminal for the answer
    image = Path(video).suffix.lower() in IMAGE_SUFFIXES
    if image and overlay is not None:
        raise ConfigError("--overlay draws on video frames; it is not for an image")
    tasks = resolve_tasks(spec.task_runs(), ref, spec.sampling, images=image)
    pending = tasks[-1]  # the one task, as it runs on a video or on an image set
    tasks = (pending,)
    check_prompt_lengths(spec, ref, tasks, set_images=1)  # before any decoding
    if image:
        probe = _probe_image(video, settings)
        item = {**set_item(probe["video_id"], [video], [probe["video_id"]], [(probe["width"], probe["height"])], [0.0]),
                "pending_task_keys": [pending.task_key]}
    else:
        probe = _probe(video, settings)
        item = video_item({**probe, "uris": [video]}, [pending.task_key])
    rows = sorted((plain(r) for r in LocalExecutor().run(run_steps(spec, settings, ref, tasks), [item])),
                  key=lambda r: r.get("start_s") or 0.0)
    if not any(r["status"] == "ok" for r in rows):
        raise JobFailed(f"no window of {video} could be answered: {rows[0].get('error_kind')}: {rows[0].get('error')}")
    tables = merge_windows(rows, "ask", datetime.now(timezone.utc))
    result = _result(rows, tables, video, probe, pending, ref)
    if overlay is not None:
        result["overlay"] = str(_overlay(overlay, settings, item, result, probe))
    if show:
        _print(result, as_json)
    return result


def _probe_image(path: str, settings: Settings) -> dict[str, Any]:
    from vidlake.platform.media.images import probe_image
    from vidlake.platform.storage import storage_for

    try:
        facts = probe_image(path, storage_for(path, settings.storage))
    except RowError as exc:
        raise JobFailed(f"cannot read {path}: {exc.kind}: {exc.message}") from None
    return {**facts, "video_id": facts["media_id"], "duration_s": 0.0}


def _probe(video: str, settings: Settings) -> dict[str, Any]:
    from vidlake.operators.probe import probe_video
    from vidlake.platform.storage import storage_for

    try:
        return probe_video(video, storage_for(video, settings.storage))
    except RowError as exc:
        raise JobFailed(f"cannot read {video}: {exc.kind}: {exc.message}") from None


def _result(rows: list[dict], tables: dict[str, list[dict]], video: str, probe: dict, task: Any, ref: Any) -> AskResult:
    def marks(kind: str) -> list[dict]:
        return [{"kind": kind[:-1], **{k: m[k] for k in _MARK_FIELDS if k in m}} for m in tables.get(kind, ())]

    counts = tables.get("counts") or [{}]
    return {
        "video": video, "video_id": probe["video_id"], "duration_s": probe["duration_s"],
        "model_id": ref.model_id, "model_revision": ref.revision, "task": task.task,
        "template": task.template.fingerprint, "query": task.query, "task_key": task.task_key,
        "windows": [{k: r.get(k) for k in _WINDOW_FIELDS} for r in rows],
        "captions": [{k: c[k] for k in ("window_id", "start_s", "end_s", "text")} for c in tables.get("captions", ())],
        "answers": [{k: a[k] for k in ("window_id", "start_s", "end_s", "text")} for a in tables.get("answers", ())],
        "count": counts[0].get("count"),
        "count_event_times_s": counts[0].get("event_times_s"),
        "points": marks("points"),
        "tracks": marks("tracks"),
    }


def _overlay(out: Path, settings: Settings, item: dict, result: AskResult, probe: dict) -> Path:
    """The sampled frames (the ``vidlake frames`` step list, decoded again) with the marks drawn on them."""
    from vidlake.jobs.frames import frame_steps
    from vidlake.jobs.overlay import write_overlay
    from vidlake.platform.runtime.executors import LocalExecutor

    frames, times = [], []
    for window in LocalExecutor().run(frame_steps(settings), [item]):
        if window["status"] != "ok" or window["kind"] != "slow":
            continue
        for frame, t in zip(window["frames"], window["timestamps_s"]):
            if t not in times:
                frames.append(frame)
                times.append(t)
    rotated = int(probe.get("rotation") or 0) % 180 == 90
    display = (probe["height"], probe["width"]) if rotated else (probe["width"], probe["height"])
    return write_overlay(out, frames, times, [*result["points"], *result["tracks"]], display)


def _print(result: AskResult, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    if as_json:
        console.print_json(json.dumps(result, default=float))
        return
    console.print(f"[bold]{result['model_id']}[/]@{result['model_revision'][:12]}  task {result['task']} "
                  f"({result['template']})  task_key {result['task_key']}")
    for w in result["windows"]:
        head = f"[{w['start_s']:.1f}s - {w['end_s']:.1f}s]"
        if w["status"] != "ok":
            console.print(f"{head} [red]{w['error_kind']}[/]: {w['error']}")
            continue
        console.print(f"{head} {_printable(w['answer'])}")
        if w["parse_status"] != "ok":
            console.print(f"  [yellow]parse {w['parse_status']}[/]: {'; '.join(w['parse_issues'] or [])}")
    if result["count"] is not None:
        console.print(f"count: [bold]{result['count']}[/]")
    marks = [*result["points"], *result["tracks"]]
    if marks:
        table = Table("kind", "label", "id", "t (s)", "x (px)", "y (px)", "x_norm", "y_norm")
        for m in sorted(marks, key=lambda m: (m["t"], m["object_id"] or 0)):
            table.add_row(m["kind"], m["label"], str(m["object_id"]), f"{m['t']:.3f}", f"{m['x']:.1f}",
                          f"{m['y']:.1f}", f"{m['x_norm']:.3f}", f"{m['y_norm']:.3f}")
        console.print(table)
    if result.get("overlay"):
        console.print(f"overlay: {result['overlay']}")


def _printable(text: str | None) -> str:
    """Model text safe for the terminal: control characters shown as U+FFFD, rich markup escaped."""
    from rich.markup import escape

    return escape("".join(ch if ch in "\n\t" or ch.isprintable() else "\ufffd" for ch in text or ""))
