"""Typed results of parsing a Molmo 2 answer: grounded points, track points, boxes, counts, spans.

Coordinates are given twice: in pixels of the original video's upright (display) frame, or of the
image an image set's point names (``x``, ``y``; a video's width and height swap for a 90/270 degree
display rotation) and normalized (``x_norm``,
``y_norm``: 0..1 of that frame). Times are absolute seconds in the source video (``t``) next to
what the model wrote (``t_model``, window-relative). All of it converts to plain dicts for Arrow rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["CaptionSpan", "GroundedPoint", "Molmo2Answer", "PARSE_STATUSES"]

PARSE_STATUSES = ("ok", "partial", "empty")


@dataclass(frozen=True)
class GroundedPoint:
    """One object at one moment: a pointed location, a track sample, or a box (``box`` set).

    Field names follow the lake's points/tracks tables (vidlake/platform/lake/schemas.py).
    """

    kind: str  # "point" | "track" | "box"
    label: str  # the tag's text, e.g. "red car"
    object_id: int  # persists across frames (tracks) and across occlusion; 1..N when counting
    t: float | None  # absolute seconds in the source video; snapped to the sampled frame when known
    t_model: float | None  # the time the model wrote (window-relative); None for timeless points
    x: float  # pixels of the original upright frame, from the left
    y: float  # pixels from the top
    x_norm: float  # 0..1 of the upright frame's width
    y_norm: float  # 0..1 of its height
    tag_index: int = 0  # which grounding tag of the answer this came from (0-based)
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in pixels (boxes only)
    image_index: int | None = None  # image sets: which image (1-based, as the model names it); None for video


@dataclass(frozen=True)
class CaptionSpan:
    """A piece of caption text with the time span it talks about (absolute seconds)."""

    start_s: float
    end_s: float | None  # None: until the next span, or the end of the window
    text: str


@dataclass(frozen=True)
class Molmo2Answer:
    """Everything read from one answer. ``status``: ok (all read), partial (some of it could not be
    read: see ``issues``), empty (no text). ``raw`` is the model's text, unchanged."""

    text: str  # free text, grounding tags replaced by their labels
    points: tuple[GroundedPoint, ...] = ()  # from <points> (and boxes)
    tracks: tuple[GroundedPoint, ...] = ()  # from <tracks>
    count: int | None = None
    count_source: str | None = None  # "text" (the answer states it) | "ids" (distinct object ids)
    spans: tuple[CaptionSpan, ...] = ()
    status: str = "ok"
    issues: tuple[str, ...] = ()
    raw: str = ""

    @property
    def object_ids(self) -> list[int]:
        return sorted({p.object_id for p in (*self.points, *self.tracks)})

    @property
    def event_times_s(self) -> list[float]:
        """First time each pointed object (tag, id) appears: the events a count refers to."""
        first: dict[tuple[int, int], float] = {}
        for p in self.points:
            if p.t is not None:
                key = (p.tag_index, p.object_id)
                first[key] = min(first.get(key, p.t), p.t)
        return sorted(first.values())

    def to_dict(self) -> dict:
        """Plain, Arrow-friendly columns (lists of flat dicts for points, tracks and spans)."""
        return {
            "answer": self.text,
            "points": [asdict(p) for p in self.points],
            "tracks": [asdict(p) for p in self.tracks],
            "count": self.count,
            "count_source": self.count_source,
            "event_times_s": self.event_times_s,
            "spans": [asdict(s) for s in self.spans],
            "parse_status": self.status,
            "parse_issues": list(self.issues),
        }
