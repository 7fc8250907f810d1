"""What both decoders share: the result type, output geometry, rotation and nearest-frame choice.

Frame choice: each planned time takes the decoded frame whose timestamp is nearest, the earlier one
on a tie (``2t <= a + b``, within a microsecond, picks ``a``); a frame chosen for several times is kept once, so the
timestamps of a window are strictly increasing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["FrameBatch", "nearest_indices", "output_size", "quarter_turns", "upright"]


@dataclass
class FrameBatch:
    """Frames of one window (N x H x W x 3 uint8, upright), their stream timestamps, and damage."""

    frames: np.ndarray
    timestamps_s: list[float]
    problems: list[str] = field(default_factory=list)  # why the window is partial; empty when whole

    @property
    def partial_reason(self) -> str | None:
        return "; ".join(self.problems) if self.problems else None


def quarter_turns(rotation: float | int | None) -> int:
    """Counter-clockwise quarter turns (0..3) that make a frame upright, from a display rotation."""
    return round((rotation or 0) / 90) % 4


def upright(image: np.ndarray, turns: int) -> np.ndarray:
    """``image`` (H x W x C, or N x H x W x C) rotated counter-clockwise by ``turns`` quarter turns."""
    if not turns:
        return image
    axes = (0, 1) if image.ndim == 3 else (1, 2)
    return np.rot90(image, turns, axes=axes)


def output_size(width: int, height: int, size: int, resize: str) -> tuple[int, int]:
    """(width, height) to scale a coded frame to, before rotation (a quarter turn swaps them).

    ``size == 0`` keeps the coded size; ``square`` gives ``size x size``; ``fit`` gives a longer
    side of ``size`` with the aspect ratio kept.
    """
    if size <= 0:
        return width, height
    if resize == "square":
        return size, size
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def nearest_indices(times: Sequence[float], targets: Sequence[float], tie_s: float = 1e-6) -> list[int]:
    """Index into sorted ``times`` of the entry nearest each sorted target, deduplicated.

    Two entries whose distances differ by less than ``tie_s`` tie; the earlier one wins.
    """
    out: list[int] = []
    for t in targets:
        j = bisect.bisect_left(times, t)
        if j == len(times):
            j -= 1
        elif j > 0 and 2 * t <= times[j - 1] + times[j] + 2 * tie_s:
            j -= 1
        if not out or out[-1] != j:
            out.append(j)
    return out
