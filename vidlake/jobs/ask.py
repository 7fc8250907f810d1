"""``vidlake ask``: one video through sampling, Molmo 2 and the parser, in this process (no Ray, no lake).

    probe_video -> PlanWindows -> SampleFrames -> BuildPrompt -> RunModel -> ParseOutput
    -> windows merged (overlaps owned once, track ids linked) -> table or JSON (+ overlay MP4)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidlake.errors import ConfigError, JobFailed, RowError
from vidlake.platform.config import Settings

__all__ = ["AskResult", "run_ask"]

AskResult = dict[str, Any]


def run_ask(
    settings: Settings, video: str, *, task: str = "qa", question: str | None = None, query: str | None = None,
    template: str | None = None, max_new_tokens: int | None = None, as_json: bool = False,
    overlay: Path | None = None, show: bool = True,
) -> AskResult:
    """Answer one question about one video; returns the JSON-able result (and prints it when ``show``)."""
    from vidlake.models.molmo2 import resolve_model
    from vidlake.models.prompts import PromptRegistry
    from vidlake.operators.infer import InferConfig, RunModel
    from vidlake.operators.parse import ParseOutput
    from vidlake.operators.plan import PlanWindows, sampling_spec
    from vidlake.operators.prompt import BuildPrompt, PromptConfig
    from vidlake.platform.lake.ids import task_key

    registry = PromptRegistry.with_user_templates(settings.model.templates)
    chosen = registry.get(template or task)
    if template is None and chosen.task != task:
        raise ConfigError(f"template {chosen.name!r} is for task {chosen.task!r}")
    text = query if query is not None else question
    if chosen.needs_query and not (text and text.strip()):
        raise ConfigError(f"task {chosen.task!r} needs a question or --query")
    ref = resolve_model(settings.model)  # fails fast, before any decoding
    if show:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # keep the terminal for the answer
    probe = _probe(video, settings)

    planned = PlanWindows(settings.sampling)({"uri": video, **probe, "status": "ok"})
    windows = [_sample(settings, w) for w in planned if w.get("kind", "slow") == "slow"]
    kept = {w["window_id"]: (w["frames"], list(w["timestamps_s"])) for w in windows if w["status"] == "ok"}
    build = BuildPrompt(PromptConfig(model=ref, template=chosen, query=text, max_new_tokens=max_new_tokens,
                                     settings=settings.model))
    prepared = [build(w) for w in windows]
    infer = RunModel(InferConfig(model=ref, settings=settings.model, batch_size=settings.model.batch_size or 4,
                                 max_new_tokens=settings.model.max_new_tokens))
    batch = infer({k: [r.get(k) for r in prepared] for k in prepared[0]})
    parse = ParseOutput()
    rows = [parse(dict(zip(batch, values))) for values in zip(*batch.values())]

    result = _result(rows, video, probe, chosen, text, ref)
    result["task_key"] = task_key(chosen.task, chosen.fingerprint, text, ref.model_id, ref.revision,
                                  sampling_spec(settings.sampling, "slow"))
    if overlay is not None:
        result["overlay"] = str(_overlay(overlay, kept, result, probe))
    if show:
        _print(result, as_json)
    if not any(r["status"] == "ok" for r in rows):
        raise JobFailed(f"no window of {video} could be answered: {rows[0].get('error_kind')}: {rows[0].get('error')}")
    return result


def _probe(video: str, settings: Settings) -> dict[str, Any]:
    from vidlake.operators.probe import probe_video
    from vidlake.platform.storage import storage_for

    try:
        return probe_video(video, storage_for(video, settings.storage))
    except RowError as exc:
        raise JobFailed(f"cannot read {video}: {exc.kind}: {exc.message}") from None


def _sample(settings: Settings, window: dict[str, Any]) -> dict[str, Any]:
    from vidlake.operators.sample import SampleConfig, SampleFrames

    return SampleFrames(SampleConfig(sampling=settings.sampling, storage=settings.storage))(window)


def _result(rows: list[dict], video: str, probe: dict, template: Any, query: str | None, ref: Any) -> AskResult:
    from vidlake.operators.merge import keep_owned, link_track_ids, owned_spans

    rows = sorted(rows, key=lambda r: r.get("start_s") or 0.0)
    timed = [r for r in rows if r.get("start_s") is not None]
    spans = owned_spans([(r["start_s"], r["end_s"]) for r in timed])
    points, tracks = [], []
    for i, (row, span) in enumerate(zip(timed, spans)):
        last = i == len(timed) - 1
        points += keep_owned([p for p in row.get("points") or () if p["t"] is not None], span, last)
        tracks.append(keep_owned([p for p in row.get("tracks") or () if p["t"] is not None], span, last))
    linked = link_track_ids(tracks, [(r["start_s"], r["end_s"]) for r in timed]) if tracks else []
    counts = [r["count"] for r in rows if r.get("count") is not None]
    return {
        "video": video, "video_id": probe["video_id"], "duration_s": probe["duration_s"],
        "model_id": ref.model_id, "model_revision": ref.revision, "task": template.task,
        "template": template.fingerprint, "query": query,
        "windows": [{k: r.get(k) for k in ("window_index", "start_s", "end_s", "status", "error_kind", "error",
                                           "prompt", "raw_text", "answer", "count", "parse_status", "parse_issues",
                                           "prompt_tokens", "generated_tokens", "finish_reason", "infer_s")}
                    for r in rows],
        "count": max(counts) if counts else None,
        "points": points,
        "tracks": linked,
    }


def _overlay(out: Path, kept: dict, result: AskResult, probe: dict) -> Path:
    from vidlake.jobs.overlay import write_overlay

    frames, times = [], []
    for window_frames, window_times in kept.values():
        for frame, t in zip(window_frames, window_times):
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
        console.print(f"{head} {w['answer']}")
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
