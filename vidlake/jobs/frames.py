"""``vidlake frames``: the window plan of one video, and optionally the very frames the model gets.

Works on any local or s3:// video, ingested or not (it is probed inline); no Ray, no lake.

    probe_video -> PlanWindows -> (with an output folder) SampleFrames -> JPEG files or .npy arrays
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from vidlake.errors import ConfigError, JobFailed, RowError, StorageError
from vidlake.operators.plan import PlanWindows
from vidlake.operators.probe import probe_video
from vidlake.operators.sample import SampleConfig, SampleFrames
from vidlake.platform.config import Settings
from vidlake.platform.storage import storage_for

__all__ = ["describe_windows", "run_frames"]


def describe_windows(video: str, settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Probe ``video`` and plan its windows: (video row, window rows)."""
    try:
        storage = storage_for(video, settings.storage)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        size = storage.stat(video).size
    except FileNotFoundError:
        raise StorageError(f"{video} does not exist") from None
    try:
        row = {"uri": video, "size": size, "status": "ok", **probe_video(video, storage)}
    except RowError as exc:
        raise JobFailed(f"cannot read {video}: {exc.kind}: {exc.message}") from None
    return row, PlanWindows(settings.sampling)(row)


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
    row, windows = describe_windows(video, settings)
    if not as_json:
        s = settings.sampling
        fast = ", fast pass" if s.fast_pass else ""
        echo(f"{video}: {row['duration_s']:.3f} s, {row['fps']:.3f} fps, {row['width']}x{row['height']} "
             f"{row['codec']}, rotation {row['rotation']} -> {len(windows)} window(s) "
             f"({s.fps:g} fps, <= {s.max_frames} frames, {s.overlap_s:g} s overlap{fast})")
    sampler = SampleFrames(SampleConfig(sampling=settings.sampling, storage=settings.storage)) if out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    entries, failed = [], 0
    for w in windows:
        entry: dict[str, Any] = {"id": w["window_id"], "kind": w["kind"], "index": w["window_index"],
                                 "start": w["start_s"], "end": w["end_s"], "timestamps": w["sample_times_s"],
                                 "decoded": False}
        if sampler is not None:
            done = sampler(w)
            entry.update(decoded=True, status=done["status"], decoder=done["decoder"], partial=done["partial"],
                         partial_reason=done["partial_reason"], error=done["error"])
            if done["status"] == "ok":
                entry["timestamps"] = done["timestamps_s"]
                entry["path"] = str(_write(out, w, done, fmt))  # type: ignore[arg-type]
            else:
                failed += 1
            done["frames"] = None  # dropped as soon as written
        entries.append(entry)
        echo(json.dumps(entry) if as_json else _human(entry))
    if out:
        (out / "windows.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    if failed:
        raise JobFailed(f"{failed} of {len(windows)} window(s) of {video} decoded no frame (see 'error' above)")
    return entries


def _write(out: Path, window: dict[str, Any], done: dict[str, Any], fmt: str) -> Path:
    name = f"{window['kind']}-{window['window_index']:03d}-{window['window_id']}"
    if fmt == "npy":
        import numpy as np

        path = out / f"{name}.npy"
        np.save(path, done["frames"])
        return path
    from PIL import Image

    folder = out / name
    folder.mkdir(exist_ok=True)
    for i, (frame, t) in enumerate(zip(done["frames"], done["timestamps_s"])):
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
