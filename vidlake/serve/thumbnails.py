"""Thumbnails: the frame shown at time t, or one image of an image set, decoded on demand, upright,
scaled to a width, optionally annotated.

The file comes from the lake's ``videos.uris`` or the set's image paths (never from a request): a local
path or an s3:// URI read through vidlake's storage. t counts from the stream's first frame, as every lake
time does. An image is read with ``load_image`` (EXIF orientation applied). Results are cached in memory
(LRU) per (video, t in ms, width, overlay) or (set, image, width, overlay); decodes run in the caller's
thread and at most ``max_decodes`` at a time.
"""

from __future__ import annotations

import io
import threading
from typing import Any, Callable, Sequence

from cachetools import LRUCache

from vidlake.errors import RowError
from vidlake.platform.config import StorageSettings
from vidlake.platform.media.frame_at import frame_of_any_copy
from vidlake.platform.media.images import load_image
from vidlake.platform.storage import storage_for

__all__ = ["Thumbnails", "draw_marks"]

_COLORS = ("#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500", "#5ac8fa")


def draw_marks(image: Any, marks: Sequence[dict], width: int, height: int) -> None:
    """Draw points (circles) and boxes onto ``image``; coordinates are pixels of the upright original
    frame of size ``width`` x ``height`` (normalised coordinates are used when present)."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    sx, sy = image.width / max(width, 1), image.height / max(height, 1)
    r = max(3, image.width // 80)
    for m in marks:
        color = _COLORS[(m.get("object_id") or 0) % len(_COLORS)]
        box = m.get("box")
        if box:
            x0, y0, x1, y1 = box
            draw.rectangle([x0 * sx, y0 * sy, x1 * sx, y1 * sy], outline=color, width=max(2, r // 2))
        x = m["x_norm"] * image.width if m.get("x_norm") is not None else (m.get("x") or 0) * sx
        y = m["y_norm"] * image.height if m.get("y_norm") is not None else (m.get("y") or 0) * sy
        if m.get("x") is not None or m.get("x_norm") is not None:
            draw.ellipse([x - r, y - r, x + r, y + r], outline="white", fill=color, width=1)
        label = m.get("label") or ""
        if m.get("object_id") is not None:
            label = f"{label} #{m['object_id']}".strip()
        if label:
            draw.text((x + r + 2, y - r - 2), label, fill=color)


class Thumbnails:
    def __init__(self, storage: StorageSettings, cache_size: int = 512, max_decodes: int = 2):
        self.storage = storage
        self._cache: LRUCache[tuple, bytes] | None = LRUCache(cache_size) if cache_size else None
        self._lock = threading.Lock()
        self._decodes = threading.Semaphore(max_decodes)

    def get(self, video: dict, t: float, width: int, marks: Sequence[dict] | None = None) -> tuple[bytes, bool]:
        """JPEG bytes of ``video`` (a ``videos`` row) at ``t``, and whether they came from the cache."""
        key = (video["video_id"], round(t * 1000), width, _overlay(marks))
        return self._cached(key, lambda: self._render(video, t, width, marks or ()))

    def get_image(self, image_set: dict, index: int, width: int,
                  marks: Sequence[dict] | None = None) -> tuple[bytes, bool]:
        """JPEG bytes of the image at ``index`` of ``image_set`` (an index ``sets`` row; marks are pixels of
        that image), and whether they came from the cache."""
        key = (image_set["set_id"], image_set["image_ids"][index], width, _overlay(marks))
        return self._cached(key, lambda: self._render_image(image_set, index, width, marks or ()))

    def _cached(self, key: tuple, render: Callable[[], bytes]) -> tuple[bytes, bool]:
        if self._cache is not None:
            with self._lock:
                data = self._cache.get(key)
            if data is not None:
                return data, True
        with self._decodes:
            data = render()
        if self._cache is not None:
            with self._lock:
                self._cache[key] = data
        return data, False

    def _render(self, video: dict, t: float, width: int, marks: Sequence[dict]) -> bytes:
        try:
            image, _ = frame_of_any_copy(video.get("uris") or [video.get("uri")], t, video.get("rotation"), self.storage)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"no readable copy of video {video['video_id']}: {exc}") from None
        upright_w, upright_h = image.size
        height = max(1, round(upright_h * width / upright_w))
        image = image.convert("RGB").resize((width, height))
        return _jpeg(image, marks, upright_w, upright_h)

    def _render_image(self, image_set: dict, index: int, width: int, marks: Sequence[dict]) -> bytes:
        from PIL import Image

        uri = image_set["image_uris"][index]
        upright_w, upright_h = image_set["image_widths"][index], image_set["image_heights"][index]
        height = max(1, round(upright_h * width / upright_w))
        try:  # read at the size it is shown (a JPEG is shrunk while it is decoded), upright
            pixels = load_image(uri, storage_for(uri, self.storage), max(width, height))
        except (RowError, ValueError) as exc:  # gone, unreadable, damaged, an unsupported location
            raise FileNotFoundError(f"image {image_set['image_ids'][index]} of set {image_set['set_id']} "
                                    f"({uri}) is not readable: {exc}") from None
        image = Image.fromarray(pixels)
        if image.size != (width, height):  # the longer side was fitted: the width may be a pixel off
            image = image.resize((width, height))
        return _jpeg(image, marks, upright_w, upright_h)


def _overlay(marks: Sequence[dict] | None) -> tuple:
    """What of ``marks`` a cached picture depends on."""
    return tuple(sorted((m["t"], m.get("object_id") or 0, m.get("x"), m.get("y")) for m in marks or ()))


def _jpeg(image: Any, marks: Sequence[dict], upright_w: int, upright_h: int) -> bytes:
    """``image`` (scaled from an upright picture of ``upright_w`` x ``upright_h``) with ``marks`` drawn, as JPEG."""
    if marks:
        draw_marks(image, marks, upright_w, upright_h)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()
