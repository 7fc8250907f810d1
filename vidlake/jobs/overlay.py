"""Draw parsed points and track ids on the sampled frames and write them as a small MP4."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["write_overlay"]

_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190)]


def write_overlay(
    out: str | Path, frames: Sequence[np.ndarray], times_s: Sequence[float], marks: Sequence[dict[str, Any]],
    display: tuple[int, int], max_side: int = 640,
) -> Path:
    """Write ``frames`` (upright, any size) resized to the video's display aspect, with every mark whose
    time is the frame's drawn on it. ``marks``: dicts with t, x_norm, y_norm, object_id, label, kind.
    Frame times are kept (millisecond PTS), so the overlay plays at the real pace of the samples."""
    import av
    from PIL import Image, ImageDraw

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    scale = min(1.0, max_side / max(display))
    width, height = (max(2, round(display[0] * scale / 2) * 2), max(2, round(display[1] * scale / 2) * 2))
    order = sorted(range(len(times_s)), key=lambda i: times_s[i])
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=max(1, round(_rate(times_s))))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        last_pts = -1
        for i in order:
            image = Image.fromarray(np.asarray(frames[i], dtype=np.uint8)).resize((width, height))
            draw = ImageDraw.Draw(image)
            draw.text((4, 4), f"t={times_s[i]:.2f}s", fill=(255, 255, 255))
            for mark in marks:
                if mark.get("t") is not None and abs(float(mark["t"]) - float(times_s[i])) < 1e-3:
                    _draw_mark(draw, mark, width, height, display)
            frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            frame.pts = max(last_pts + 1, round(float(times_s[i]) * 1000))
            frame.time_base = Fraction(1, 1000)
            last_pts = frame.pts
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _draw_mark(draw: Any, mark: dict[str, Any], width: int, height: int, display: tuple[int, int]) -> None:
    x, y = mark["x_norm"] * width, mark["y_norm"] * height
    oid = int(mark.get("object_id") or 0)
    colour = _COLOURS[oid % len(_COLOURS)]
    radius = max(3, width // 80)
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=2)
    box = mark.get("box")  # pixels of the original upright frame
    if box is not None:
        sx, sy = width / display[0], height / display[1]
        draw.rectangle((box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy), outline=colour, width=2)
    draw.text((x + radius + 2, y - radius - 2), f"#{oid} {mark.get('label') or ''}".strip(), fill=colour)


def _rate(times: Sequence[float]) -> float:
    if len(times) < 2:
        return 1.0
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else 1.0
