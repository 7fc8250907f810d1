"""``vidlake frames``: the window plan of one video, and optionally the very frames the model gets.

Works on any local or s3:// video, ingested or not (it is probed inline); no Ray, no lake.

    probe_video -> frame_steps() on the LocalExecutor: PlanWindows (-> SampleFrames, with an output
    folder) -> JPEG files or .npy arrays

The steps are the main job's first two, with the same settings, so the frames are the ones it decodes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from vidlake.errors import ConfigError, JobFailed, RowError, StorageError
from vidlake.operators.plan import PlanWindows
from vidlake.operators.probe import probe_video
from vidlake.operators.sample import SampleConfig, SampleFrames
from vidlake.operators.step import Step
from vidlake.platform.config import Settings
from vidlake.platform.runtime.executors import LocalExecutor
from vidlake.platform.storage import storage_for

__all__ = ["frame_steps", "run_frames"]


def frame_steps(settings: Settings, decode: bool = True) -> list[Step]:
    """The ``frames`` step list: plan the windows, then (``decode``) sample their frames."""
    steps: list[Step] = [PlanWindows(settings.sampling)]
    if decode:
        steps.append(SampleFrames(SampleConfig(sampling=settings.sampling, storage=settings.storage)))
    return steps


def _probe(video: str, settings: Settings) -> dict[str, Any]:
    try:
        storage = storage_for(video, settings.storage)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        size = storage.stat(video).size
    except FileNotFoundError:
        raise StorageError(f"{video} does not exist") from None
    try:
        return {"uri": video, "size": size, "status": "ok", **probe_video(video, storage)}
    except RowError as exc:
        raise JobFailed(f"cannot read {video}: {exc.kind}: {exc.message}") from None


def run_frames(
    settings: Settings, video: str, out: Path | None = None, fmt: str = "jpg", as_json: bool = False,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Print the plan (``as_json``: one JSON object per window per line); with ``out``, decode and write.

    Without ``out`` the timestamps are the planned ones; with it, they are the decoded frames' PTS.
    Raises ``JobFailed`` when a window decodes no frame at all (the others are still written).
    """
    if fmt not in ("jpg", "npy"):
        raise ConfigError(f"--format must be jpg or npy, not {fmt!r}")
    row = _probe(video, settings)
    if out:
        out.mkdir(parents=True, exist_ok=True)

    def header(windows: list[dict[str, Any]]) -> None:
        if not as_json:
            s = settings.sampling
            fast = ", fast pass" if s.fast_pass else ""
            echo(f"{video}: {row['duration_s']:.3f} s, {row['fps']:.3f} fps, {row['width']}x{row['height']} "
                 f"{row['codec']}, rotation {row['rotation']} -> {len(windows)} window(s) "
                 f"({s.fps:g} fps, <= {s.max_frames} frames, {s.overlap_s:g} s overlap{fast})")

    entries, failed = [], 0
    for w in LocalExecutor().run(frame_steps(settings, decode=out is not None), [row], on_planned=header):
        entry: dict[str, Any] = {"id": w["window_id"], "kind": w["kind"], "index": w["window_index"],
                                 "start": w["start_s"], "end": w["end_s"], "timestamps": w["sample_times_s"],
                                 "decoded": False}
        if out is not None:
            entry.update(decoded=True, status=w["status"], decoder=w["decoder"], partial=w["partial"],
                         partial_reason=w["partial_reason"], error=w["error"])
            if w["status"] == "ok":
                entry["timestamps"] = w["timestamps_s"]
                entry["path"] = str(_write(out, w, fmt))
            else:
                failed += 1
            w["frames"] = None  # dropped as soon as written
        entries.append(entry)
        echo(json.dumps(entry) if as_json else _human(entry))
    if out:
        (out / "windows.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    if failed:
        raise JobFailed(f"{failed} of {len(entries)} window(s) of {video} decoded no frame (see 'error' above)")
    return entries


def _write(out: Path, window: dict[str, Any], fmt: str) -> Path:
    name = f"{window['kind']}-{window['window_index']:03d}-{window['window_id']}"
    if fmt == "npy":
        import numpy as np

        path = out / f"{name}.npy"
        np.save(path, window["frames"])
        return path
    from PIL import Image

    folder = out / name
    folder.mkdir(exist_ok=True)
    for i, (frame, t) in enumerate(zip(window["frames"], window["timestamps_s"])):
        Image.fromarray(frame).save(folder / f"{i:04d}-{t:010.3f}s.jpg", quality=92)
    return folder


def _human(e: dict[str, Any]) -> str:
    head = (f"window {e['index']} {e['kind']} {e['id']}  {e['start']:.3f}-{e['end']:.3f} s  "
            f"{len(e['timestamps'])} frame(s)")
    if e["decoded"]:
        head += f"  [{e['decoder'] or 'failed'}]" + (f" -> {e['path']}" if e.get("path") else "")
        if e.get("partial"):
            head += f"\n  partial: {e['partial_reason']}"
        if e.get("error"):
            head += f"\n  error: {e['error']}"
    stamps = " ".join(f"{t:.3f}" for t in e["timestamps"])
    return f"{head}\n  {stamps}"
