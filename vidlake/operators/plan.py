"""PlanWindows: a probed video becomes one row per window of at most ``max_frames`` sampled frames.

The plan is arithmetic only (no file is opened), so fan-out happens before any decoding and an
hours-long video never sits in one task. Sampling grid: ``t_i = i / r`` for ``t_i < duration``
with ``r = min(fps, source fps)``. A video of at most ``max_frames`` grid samples is one window; a
longer one is cut into the fewest windows of at most ``max_frames`` samples that share exactly
``O = min(round(overlap_s * r), (max_frames - 1) // 2)`` samples with their neighbour, lengths
balanced (never a short tail window). Spans: a window starts at its first sample and ends where
its last sample's interval ends (the last window at the video's end), so consecutive windows
overlap by ``O / r`` seconds and together cover ``[0, duration]`` without gaps.

The optional fast pass (``fast_pass``, videos longer than one window) adds one ``kind="fast"``
window: ``fast_max_frames`` times spread evenly over the whole video, decoded at ``fast_size``.

An image set (``media="set"``: docs/images.md) is one ``kind="set"`` window: its images at their
capture times in seconds after the first (``set_times_s``), each loaded at ``image_size``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from vidlake.errors import RowError
from vidlake.operators.step import Resources, Step
from vidlake.platform.config import SamplingSettings
from vidlake.platform.lake.ids import stable_hash, window_id

__all__ = ["PlanWindows", "Window", "WINDOW_COLUMNS", "plan_windows", "sample_rate", "sampling_spec"]

WINDOW_COLUMNS = (
    "window_id", "window_index", "window_count", "kind", "start_s", "end_s", "sample_times_s", "sample_fps",
    "sample_size", "resize", "sampling_json", "sampling_key",
)


@dataclass(frozen=True)
class Window:
    """One planned window: which times to sample, in seconds from the stream's first frame."""

    kind: str  # "slow" (dense) | "fast" (sparse sweep of the whole video)
    index: int
    start_s: float
    end_s: float
    times_s: tuple[float, ...]
    fps: float  # effective sampling rate of this window


def sampling_spec(settings: SamplingSettings, kind: str = "slow") -> dict[str, Any]:
    """The settings that decide a window's frames; part of window ids (and of task keys)."""
    if kind == "set":
        return {"kind": "set", "image_size": settings.image_size}
    if kind == "fast":
        return {"kind": "fast", "max_frames": settings.fast_max_frames, "size": settings.fast_size,
                "resize": settings.resize, "fast_deblock": settings.fast_deblock}
    return {"kind": "slow", "fps": settings.fps, "max_frames": settings.max_frames, "overlap_s": settings.overlap_s,
            "size": settings.size, "resize": settings.resize, "fast_deblock": settings.fast_deblock}


def sample_rate(settings: SamplingSettings, source_fps: float | None) -> float:
    """Sampling rate in frames per second: the setting, never above the source's average rate."""
    if source_fps and source_fps > 0 and math.isfinite(source_fps):
        return min(settings.fps, source_fps)
    return settings.fps


def plan_windows(duration_s: float, source_fps: float | None, settings: SamplingSettings) -> list[Window]:
    """Slow windows (and the fast one when enabled) of a video of ``duration_s`` seconds."""
    duration = max(0.0, float(duration_s))
    r = sample_rate(settings, source_fps)
    n_samples = max(1, math.ceil(round(duration * r, 6)))
    m = settings.max_frames
    overlap = min(round(settings.overlap_s * r), (m - 1) // 2)
    count = 1 if n_samples <= m else math.ceil((n_samples - overlap) / (m - overlap))
    windows = []
    for k in range(count):
        lo = k * (n_samples - overlap) // count
        hi = n_samples if count == 1 else (k + 1) * (n_samples - overlap) // count + overlap
        times = tuple(round(i / r, 6) for i in range(lo, hi))
        end = duration if k == count - 1 else min(duration, round(hi / r, 6))
        windows.append(Window("slow", k, times[0], max(end, times[-1]), times, r))
    if settings.fast_pass and n_samples > m:
        n = min(settings.fast_max_frames, n_samples)
        times = tuple(round(j * duration / n, 6) for j in range(n))
        windows.append(Window("fast", 0, 0.0, duration, times, n / duration))
    return windows


class PlanWindows(Step):
    """Reads ``video_id``, ``duration_s``, ``fps``, ``frames``; fan-out 1 -> n windows (driver: arithmetic only).

    Each output row carries the video's columns (its frame count renamed ``video_frames``, so that
    ``frames`` can hold the sampled frames later) plus ``window_id``, ``window_index``,
    ``window_count``, ``kind`` ("slow" | "fast" | "set"), ``start_s``, ``end_s``, ``sample_times_s``
    (planned times, seconds from the first frame), ``sample_fps``, ``sample_size`` (decoded frame
    side, 0 = source size), ``resize``, ``sampling_json`` and ``sampling_key``. A row already in
    error passes as one row with those columns null; a video without a usable duration becomes an
    error row (``error_kind="no_duration"``). ``fast=False`` leaves the fast window out (no task
    of the job runs on it).
    """

    stage = "plan"
    fanout = "flat"
    outputs = WINDOW_COLUMNS
    sees_errors = True  # error rows are renamed like the others (``frames`` -> ``video_frames``)
    default_resources = Resources(num_cpus=0.25, placement="driver")

    def __init__(self, sampling: SamplingSettings = SamplingSettings(), fast: bool = True,
                 resources: Resources | None = None):
        super().__init__(resources)
        self.sampling, self.fast = sampling, fast

    def process(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        base = {k: v for k, v in row.items() if k != "frames"}
        base["video_frames"] = row.get("frames")
        if row["status"] != "ok":
            return [base]
        if row.get("media") == "set":
            return [self._set_window(row, base)]
        duration = _duration(row)
        if duration is None:
            return [self.fail(base, RowError(
                "no_duration", "the probe found neither a duration nor a frame count and rate"))]
        out = []
        windows = [w for w in plan_windows(duration, row.get("fps"), self.sampling) if self.fast or w.kind == "slow"]
        slow_count = sum(w.kind == "slow" for w in windows)
        for w in windows:
            spec = sampling_spec(self.sampling, w.kind)
            out.append({
                **base,
                "window_id": window_id(row["video_id"], w.start_s, w.end_s, spec),
                "window_index": w.index,
                "window_count": slow_count if w.kind == "slow" else 1,
                "kind": w.kind,
                "start_s": w.start_s,
                "end_s": w.end_s,
                "sample_times_s": list(w.times_s),
                "sample_fps": w.fps,
                "sample_size": spec["size"],
                "resize": spec["resize"],
                "sampling_json": json.dumps(spec, sort_keys=True),
                "sampling_key": stable_hash(spec),
            })
        return out


    def _set_window(self, row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        """An image set is one window: its images at their capture times (seconds after the first)."""
        spec = sampling_spec(self.sampling, "set")
        times = [float(t) for t in row["set_times_s"]]
        end = max(times)
        return {
            **base, "window_id": window_id(row["video_id"], 0.0, end, spec), "window_index": 0, "window_count": 1,
            "kind": "set", "start_s": 0.0, "end_s": end, "sample_times_s": times, "sample_fps": None,
            "sample_size": spec["image_size"], "resize": "fit", "sampling_json": json.dumps(spec, sort_keys=True),
            "sampling_key": stable_hash(spec),
        }


def _duration(row: dict[str, Any]) -> float | None:
    duration, fps, frames = row.get("duration_s"), row.get("fps"), row.get("frames")
    if duration is not None and math.isfinite(duration) and duration > 0:
        return float(duration)
    if frames and fps and fps > 0:
        return frames / fps
    if frames == 1 or duration == 0:
        return 0.0
    return None
