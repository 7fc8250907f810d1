"""One frame of a video at a time t, upright, as a PIL image: for thumbnails and report backgrounds."""

from __future__ import annotations

from typing import Any

__all__ = ["decode_frame"]


def decode_frame(source: Any, t: float, rotation: int | None = 0) -> Any:
    """The PIL image of the frame on screen at ``t`` seconds (the last frame starting at or before t)."""
    import av

    with av.open(source) as container:
        stream = container.streams.video[0]
        base = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        target = base + max(0.0, t)
        best = None
        for seek_to in (target, 0.0):
            container.seek(int(seek_to / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if frame.time > target + 1e-6:
                    if best is None and seek_to == 0.0:
                        best = frame  # t before the first frame: show the first one
                    break
                best = frame
            if best is not None:
                break
        if best is None:
            raise ValueError(f"no frame at t={t:.3f}s")
        image = best.to_image()
    turns = round((rotation or 0) / 90) % 4
    return image.rotate(90 * turns, expand=True) if turns else image
