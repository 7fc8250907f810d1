"""Sample frames at planned times with decord (decord2): the fallback decoder, local files only.

decord resizes in its decoder and ``get_batch`` decodes forward from the keyframe before each
requested index, but it decodes every frame on the way (no skipping of unneeded non-reference
frames). decord2 applies the display rotation itself, and its width/height name the upright
output. Its timestamps are the stream's PTS relative to the first frame, kept as float32 by
decord (exact to about 0.25 ms at one hour). Some output sizes come back malformed from decord
(e.g. 32 or 96 pixels wide); they are refused here so that the caller falls back to PyAV.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vidlake.platform.media.frames import FrameBatch, nearest_indices, output_size, quarter_turns

__all__ = ["import_decord", "read_decord"]


def import_decord():
    """``decord``, imported without its CUDA preload. On import, decord2 dlopens every library of the
    nvidia-* wheels (torch's CUDA runtime) with RTLD_GLOBAL, libnvblas among them, and libnvblas then
    takes over sgemm for the whole process: torch's CPU matmuls crash afterwards (in a worker that
    decoded with decord, or ``vidlake ask``). vidlake decodes on the CPU (``decord.cpu``), which needs
    none of them, so the preload is skipped by hiding the ``nvidia`` package from it while decord loads."""
    import sys

    if "decord" in sys.modules:
        return sys.modules["decord"]
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "nvidia" else real(name, *args, **kwargs)

    importlib.util.find_spec = find_spec
    try:
        import decord
    finally:
        importlib.util.find_spec = real
    return decord


def read_decord(
    path: str,
    times_s: Sequence[float],
    size: int,
    resize: str = "square",
    *,
    rotation: int | None = 0,
    coded_size: tuple[int, int] | None = None,
    threads: int = 1,
) -> FrameBatch:
    """Frames nearest ``times_s`` (seconds from the first frame, sorted) from the file at ``path``.

    ``rotation`` and ``coded_size`` (the stream's width, height before rotation) are the probe's;
    without a size the stream header is read to learn it. Raises when the file defeats decord.
    """
    decord = import_decord()

    if coded_size is None or not all(coded_size):
        import av

        with av.open(path) as container:
            ctx = container.streams.video[0].codec_context
            coded_size = (ctx.width, ctx.height)
    width, height = output_size(coded_size[0], coded_size[1], size, resize)
    if quarter_turns(rotation) % 2:
        width, height = height, width
    reader = decord.VideoReader(path, ctx=decord.cpu(0), width=width, height=height, num_threads=threads)
    count = len(reader)
    # decord keeps float32 seconds: round to microseconds so ties break as in the PyAV reader
    stamps = np.round(reader.get_frame_timestamp(np.arange(count))[:, 0].astype(np.float64), 6)
    order = np.argsort(stamps, kind="stable")
    picked = [int(order[i]) for i in nearest_indices(stamps[order].tolist(), [float(t) for t in times_s])]
    if not picked:
        return FrameBatch(np.zeros((0, height, width, 3), np.uint8), [], [])
    frames = reader.get_batch(picked).asnumpy()
    if frames.shape != (len(picked), height, width, 3):
        raise ValueError(f"decord returned frames of shape {frames.shape}, expected {(len(picked), height, width, 3)}")
    return FrameBatch(np.ascontiguousarray(frames), [round(float(stamps[i]), 6) for i in picked], [])
