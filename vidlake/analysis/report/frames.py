"""Representative frames: the picture a report draws points, tracks, lines and zones over.

For some footage (a deployment's videos, or one video) and its detections (``points`` or ``tracks`` rows),
the frame is the middle of the window with the most detections, in the video that has it; footage without
detections shows the middle of its first video. An image set shows its image with the most detections.
Frames are decoded upright (``vidlake.platform.media.frame_at.decode_frame``) and shrunk to ``max_side``.

A file that cannot be read (moved, deleted, damaged) is no reason to fail a report: the frame is then
None, its size comes from the ``videos`` row, and ``note`` says why it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from vidlake.platform.config import StorageSettings
from vidlake.platform.lake import Lake
from vidlake.platform.storage import storage_for

__all__ = ["Frame", "Frames"]


@dataclass(frozen=True)
class Frame:
    """An upright picture of the footage (None when unreadable) and its upright size in pixels."""

    image: np.ndarray | None  # H x W x 3 uint8
    width: int
    height: int
    video_id: str | None
    t: float | None  # video seconds (None for an image of a set, or no footage)
    note: str  # where the picture comes from, or why there is none


class Frames:
    """Picks and decodes representative frames of one lake; the lake's ``videos``, ``windows`` and ``sets``
    are read once, when first needed."""

    def __init__(self, lake: Lake, storage: StorageSettings, max_side: int = 480):
        self.lake, self.storage, self.max_side = lake, storage, max_side
        self._videos: dict[str, dict] | None = None
        self._windows: dict[str, tuple[float, float]] | None = None
        self._sets: dict[str, dict] | None = None

    def pick(self, detections: pl.DataFrame, video_ids: list[str]) -> Frame:
        """The frame for footage ``video_ids`` whose ``detections`` (video_id, window_id, t, image_id) are given."""
        if detections.height:
            windows = detections.group_by("video_id", "window_id", "image_id").agg(pl.len(), pl.col("t").median())
            busiest = windows.sort(["len", "video_id", "window_id"], descending=[True, False, False],
                                   nulls_last=True).row(0, named=True)
            video_id, image_id = busiest["video_id"], busiest["image_id"]
            span = self.windows().get(busiest["window_id"])
            t = (span[0] + span[1]) / 2 if span else busiest["t"]
        else:
            video_id, image_id = sorted(video_ids)[0] if video_ids else None, None
            t = None
        if video_id is None:
            return Frame(None, 16, 9, None, None, "no footage")
        if video_id in self.sets():
            return self._image(self.sets()[video_id], image_id)
        video = self.videos().get(video_id)
        if video is None:
            return Frame(None, 16, 9, video_id, None, f"video {video_id[:12]} is not in the lake's videos table")
        if t is None:
            t = (video["duration_s"] or 0.0) / 2
        return self._decode(video, t)

    def videos(self) -> dict[str, dict]:
        if self._videos is None:
            rows = self.lake.read("videos", columns=["video_id", "uris", "duration_s", "width", "height", "rotation"])
            self._videos = {v["video_id"]: v for v in rows.to_pylist()}
        return self._videos

    def windows(self) -> dict[str, tuple[float, float]]:
        if self._windows is None:
            rows = self.lake.read("windows", columns=["window_id", "start_s", "end_s"]).to_pylist()
            self._windows = {w["window_id"]: (w["start_s"], w["end_s"]) for w in rows}
        return self._windows

    def sets(self) -> dict[str, dict]:
        if self._sets is None:
            rows = self.lake.read("sets", columns=["set_id", "image_ids", "uris"]) if self.lake.exists("sets") else None
            self._sets = {s["set_id"]: s for s in rows.to_pylist()} if rows is not None else {}
        return self._sets

    def _decode(self, video: dict, t: float) -> Frame:
        from vidlake.platform.media.frame_at import frame_of_any_copy

        turned = round((video["rotation"] or 0) / 90) % 2 == 1
        width, height = (video["height"], video["width"]) if turned else (video["width"], video["height"])
        try:
            image, uri = frame_of_any_copy(video["uris"] or [], t, video["rotation"], self.storage)
        except FileNotFoundError as exc:
            return Frame(None, width or 16, height or 9, video["video_id"], t,
                         f"no readable copy of video {video['video_id'][:12]} ({exc})")
        width, height = image.size
        return Frame(self._shrink(image), width, height, video["video_id"], t,
                     f"{_name(uri)} at {t:.1f} s")

    def _image(self, image_set: dict, image_id: str | None) -> Frame:
        from vidlake.errors import RowError
        from vidlake.platform.media.images import load_image

        ids = image_set["image_ids"]
        index = ids.index(image_id) if image_id in ids else 0
        uri = image_set["uris"][index]
        try:
            pixels = load_image(uri, storage_for(uri, self.storage), self.max_side)
        except (RowError, OSError, ValueError) as exc:
            return Frame(None, 4, 3, image_set["set_id"], None, f"image {_name(uri)} is not readable ({exc})")
        return Frame(pixels, pixels.shape[1], pixels.shape[0], image_set["set_id"], None, f"image {_name(uri)}")

    def _shrink(self, image: Any) -> np.ndarray:
        scale = min(1.0, self.max_side / max(image.size))
        if scale < 1.0:
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        return np.asarray(image.convert("RGB"))


def _name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]
