"""What a pointed object looks like: a small colour descriptor per object of a window, for re-identification.

Molmo 2 numbers the objects of one answer; across windows the merge joins ids by position in the overlap
both windows saw (vidlake/operators/merge.py). An object that is away for a whole overlap and comes back
in a later window has no such evidence, so the merge also compares how the objects look. SampleFrames
keeps small copies of the sampled frames (``thumbs``, once per window, when a task of the job points),
ExpandTasks keeps them on the rows of tasks that point, and ParseOutput describes each pointed object from
the pixels around its points and drops the copies.

The descriptor is two colour histograms around each point (a disc and the ring around it, the radius a
fixed share of the frame's short side), averaged over the object's points in the window: the disc says
what colour the object is, the ring how much of it there is beyond the disc (its size and shape). It
needs no model and is cheap; it cannot tell apart two objects that look alike (between look-alikes the
merge takes the closest, which keeps a count right but may give an object its twin's id).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["THUMB_SIDE", "GROUNDED_TASKS", "appearance_distance", "describe_objects", "pack", "thumbnails", "unpack"]

THUMB_SIDE = 96  # short side of the kept frame copies, in pixels
GROUNDED_TASKS = ("point", "track", "count")  # tasks whose answers point at objects
RADIUS = 0.08  # the histograms' outer radius, as a share of the frame's short side
BINS = 4  # levels per RGB channel
MAX_DT_S = 0.05  # a point is described from the sampled frame at its time (PTS), or not at all


def thumbnails(frames: Any, side: int = THUMB_SIDE) -> np.ndarray:
    """The sampled frames (uint8 N x H x W x 3, upright) with the short side at most ``side`` pixels."""
    from PIL import Image

    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    scale = side / min(h, w)
    if scale >= 1:
        return np.ascontiguousarray(frames)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BOX)) for f in frames])


def describe_objects(thumbs: Any, times: Any, samples: list[dict]) -> list[dict]:
    """One descriptor per object id: ``[{"object_id", "vector"}]`` from the samples (``t``, ``x_norm``,
    ``y_norm``, ``object_id``) that fall on a sampled frame; objects with no such sample are left out.
    ``thumbs``: :func:`thumbnails`' array, or :func:`pack`'s bytes of it."""
    if thumbs is None or not samples:
        return []
    thumbs, times = unpack(thumbs), np.asarray([float(t) for t in times])
    if thumbs.ndim != 4 or len(times) != len(thumbs):
        return []
    h, w = thumbs.shape[1:3]
    radius = max(2.0, RADIUS * min(h, w))
    reach = int(np.ceil(radius))
    codes: dict[int, np.ndarray] = {}
    acc: dict[int, list[np.ndarray]] = {}
    for s in samples:
        if s.get("object_id") is None or s.get("x_norm") is None or s.get("t") is None:
            continue
        k = int(np.argmin(np.abs(times - float(s["t"]))))
        if abs(times[k] - float(s["t"])) > MAX_DT_S:
            continue
        if k not in codes:
            codes[k] = _codes(thumbs[k])
        cx, cy = float(s["x_norm"]) * w, float(s["y_norm"]) * h
        x0, x1 = max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
        y0, y1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
        patch = codes[k][y0:y1, x0:x1]
        disc, ring = patch[d <= radius / 2], patch[(d > radius / 2) & (d <= radius)]
        if len(disc) == 0:
            continue
        acc.setdefault(int(s["object_id"]), []).append(np.concatenate([_hist(disc), _hist(ring)]))
    return [{"object_id": oid, "vector": [round(float(v), 5) for v in np.mean(vs, axis=0)]}
            for oid, vs in sorted(acc.items())]


def pack(thumbs: np.ndarray) -> bytes:
    """The frame copies as one bytes value (a plain binary column: Arrow takes it, null or not)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(thumbs, dtype=np.uint8), allow_pickle=False)
    return buf.getvalue()


def unpack(thumbs: Any) -> np.ndarray:
    if isinstance(thumbs, (bytes, bytearray, memoryview)):
        return np.load(io.BytesIO(bytes(thumbs)), allow_pickle=False)
    return np.asarray(thumbs)


def appearance_distance(a: Any, b: Any) -> float:
    """0 (identical) .. 1: the Hellinger distance of the two histograms, averaged over disc and ring."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = BINS ** 3
    parts = []
    for p, q in ((a[:n], b[:n]), (a[n:], b[n:])):
        if p.sum() <= 0 or q.sum() <= 0:
            continue
        p, q = p / p.sum(), q / q.sum()
        parts.append(np.sqrt(max(0.0, 1.0 - float(np.sqrt(p * q).sum()))))
    return float(np.mean(parts)) if parts else 1.0


def _codes(frame: np.ndarray) -> np.ndarray:
    q = (frame.astype(np.int32) * BINS) // 256
    return (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]


def _hist(codes: np.ndarray) -> np.ndarray:
    h = np.bincount(codes, minlength=BINS ** 3).astype(np.float64)
    return h / h.sum() if h.sum() else h
