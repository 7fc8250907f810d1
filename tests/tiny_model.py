"""Fixtures and helpers for tests that run the tiny Molmo 2 (import the fixtures into a test module).

The checkpoint is built once per test session (``ensure_tiny`` is idempotent) into the session's
temp root; loading it takes about a second.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vidlake.models import resolve_model
from vidlake.models.molmo2 import ModelRef
from vidlake.models.tiny import ensure_tiny
from vidlake.platform.config import ModelSettings

__all__ = ["decode_window", "tiny_ref", "tiny_settings"]


@pytest.fixture(scope="session")
def tiny_settings(tmp_path_factory: pytest.TempPathFactory) -> ModelSettings:
    root = tmp_path_factory.getbasetemp() / "tiny-molmo2-seed0"
    ensure_tiny(root, seed=0)
    return ModelSettings(name="tiny", tiny_dir=str(root), local_files_only=True)


@pytest.fixture(scope="session")
def tiny_ref(tiny_settings: ModelSettings) -> ModelRef:
    return resolve_model(tiny_settings)


def decode_window(path: str | Path, fps: float = 2.0, max_frames: int = 8, start_s: float = 0.0, **extra) -> dict:
    """A window row as SampleFrames makes it: frames at <= ``fps`` from ``start_s`` with their real PTS."""
    frames, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t + 1e-9 < start_s or (times and t - times[-1] < 1.0 / fps - 1e-6):
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(t)
            if len(frames) == max_frames:
                break
    row = {
        "video_id": "v-test", "uri": str(path), "window_id": f"w-{start_s:g}", "window_index": 0,
        "start_s": start_s, "end_s": times[-1] + 1.0 / fps, "frames": np.stack(frames), "timestamps_s": times,
        "width": width, "height": height, "rotation": 0, "status": "ok",
    }
    row.update(extra)
    return row
