"""The synthetic world: coloured shapes moving over a textured background, and exactly what is visible when.

Everything here is pure geometry (numpy, no video): ``synth.py`` renders it, encodes it and writes the
truth files. One rule defines visibility for every truth file: an object is visible in a frame when its
centre lies inside the display frame (``0 <= x < width``, ``0 <= y < height``) and the centre's pixel is
not covered by an object drawn above it (a higher ``object_id``; objects are drawn in id order). A pixel
is covered by a shape when the pixel's centre ``(i + 0.5, j + 0.5)`` lies inside the shape, the same test
the renderer uses, so the truth and the pixels agree exactly.

Paths: each object moves through 2-4 waypoints at one speed per segment, then back again (ping-pong), with
a per-object phase; waypoints outside the frame make it enter and leave, again and again in long videos.
All coordinates are display pixels (what a player shows after the display rotation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

__all__ = ["COLOURS", "KINDS", "QUERIES", "SHAPES", "Kind", "Shape", "VideoSpec", "covers", "match_query",
           "plan_video", "visibility"]

SHAPES = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {  # saturated RGB, far from the muted background
    "red": (220, 30, 30), "green": (30, 190, 50), "blue": (30, 70, 235), "yellow": (240, 215, 20),
}
QUERIES = ("shapes", *(f"{s}s" for s in SHAPES), *(f"{c} {s}s" for c in COLOURS for s in SHAPES))
_ANY = ("shape", "object")  # nouns that match every label


def match_query(query: str, label: str) -> bool | None:
    """Whether an object labelled ``label`` ("red circle") answers ``query`` ("red circles", "circle",
    "shapes", "objects", "red shapes"; any case); None when the query is outside the world's vocabulary."""
    words = query.lower().split()
    if not 1 <= len(words) <= 2:
        return None
    noun = words[-1].removesuffix("s")
    colour = words[0] if len(words) == 2 else None
    if (colour is not None and colour not in COLOURS) or (noun not in SHAPES and noun not in _ANY):
        return None
    have = label.lower().split()
    return (colour is None or have[:1] == [colour]) and (noun in _ANY or have[-1:] == [noun])


@dataclass(frozen=True)
class Kind:
    """How one video is stored: codec, display size, frame rate (None: variable) and display rotation."""

    codec: str  # "h264" (MP4) or "vp9" (WebM)
    width: int  # display size
    height: int
    fps: int | None
    rotation: int = 0  # degrees counter-clockwise, as ffmpeg's -display_rotation

    @property
    def tag(self) -> str:
        return self.codec + "-" + (f"rot{self.rotation}" if self.rotation else "vfr" if self.fps is None
                                   else f"{self.fps}fps")

    @property
    def suffix(self) -> str:
        return ".mp4" if self.codec == "h264" else ".webm"


# Cycled over the video index; index % 4 == 0 is the long one. WebM keeps milliseconds, so its rates divide 1000.
KINDS = (
    Kind("h264", 320, 240, 15), Kind("vp9", 384, 216, 10), Kind("h264", 256, 256, None),
    Kind("vp9", 320, 240, None), Kind("h264", 240, 320, 12, 270), Kind("h264", 216, 384, 15, 90),
    Kind("h264", 384, 216, 10, 180), Kind("vp9", 256, 256, 20),
)


@dataclass(frozen=True)
class Shape:
    """One moving object. ``size``: diameter / side / triangle base and height, in pixels."""

    object_id: int
    shape: str
    colour: str
    size: float
    waypoints: tuple[tuple[float, float], ...]
    speeds: tuple[float, ...]  # pixels per second, one per segment
    phase_s: float  # where on its ping-pong cycle the object is at t = 0

    @property
    def label(self) -> str:
        return f"{self.colour} {self.shape}"

    def knots(self) -> np.ndarray:
        """Time (s) at which the object reaches each waypoint on its way out."""
        legs = np.hypot(*np.diff(np.asarray(self.waypoints), axis=0).T) / np.asarray(self.speeds)
        return np.concatenate([[0.0], np.cumsum(legs)])

    def positions(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre (x, y) at each time: along the waypoints and back, one cycle after another."""
        pts, knots = np.asarray(self.waypoints, dtype=np.float64), self.knots()
        period = max(float(knots[-1]), 1e-9)  # (identical waypoints: the object stands still)
        tau = np.mod(np.asarray(times, dtype=np.float64) + self.phase_s, 2 * period)
        tau = np.where(tau > period, 2 * period - tau, tau)
        return np.interp(tau, knots, pts[:, 0]), np.interp(tau, knots, pts[:, 1])


def covers(shape: str, size: float, cx, cy, px, py):
    """Whether points (px, py) lie inside a shape centred at (cx, cy); numpy arrays or scalars.

    The triangle points up, its bounding box centred on the centre (which lies inside it)."""
    dx, dy, half = px - cx, py - cy, size / 2
    if shape == "circle":
        return dx * dx + dy * dy <= half * half
    if shape == "square":
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    return (dy >= -half) & (dy <= half) & (np.abs(dx) <= (dy + half) / 2)


@dataclass(frozen=True)
class VideoSpec:
    """One video of the world: its file, how it is stored, its frames' PTS and its objects."""

    index: int
    kind: Kind
    times: tuple[Fraction, ...]  # every frame's PTS (seconds), presentation order, first 0
    duration: Fraction  # last PTS plus the last frame's interval
    objects: tuple[Shape, ...]

    @property
    def file(self) -> str:
        return f"s{self.index:03d}-{self.kind.tag}{self.kind.suffix}"


def plan_video(seed: int, index: int, max_seconds: float, short_seconds: tuple[float, float] = (8, 30)) -> VideoSpec:
    """Video ``index`` of the world ``seed``: the same arguments always give the same video. Every 4th lasts
    ``max_seconds``, the others a length drawn from ``short_seconds`` (at most ``max_seconds``)."""
    rng = np.random.default_rng([seed, index])
    kind = KINDS[index % len(KINDS)]
    seconds = max_seconds if index % 4 == 0 else min(max_seconds, round(float(rng.uniform(*short_seconds)), 1))
    if kind.fps:
        times = [Fraction(i, kind.fps) for i in range(max(1, round(seconds * kind.fps)))]
        duration = len(times) * Fraction(1, kind.fps)
    else:  # irregular intervals of 40-140 ms, in whole milliseconds
        steps = rng.integers(40, 141, size=int(seconds * 25) + 1)
        ms = np.concatenate([[0], np.cumsum(steps)])
        count = max(1, int(np.searchsorted(ms, seconds * 1000)))
        times = [Fraction(int(m), 1000) for m in ms[:count]]
        duration = Fraction(int(ms[count]), 1000)
    objects = tuple(_shape(rng, k, kind.width, kind.height) for k in range(1, int(rng.integers(1, 7)) + 1))
    return VideoSpec(index, kind, tuple(times), duration, objects)


def _shape(rng: np.random.Generator, object_id: int, width: int, height: int) -> Shape:
    side = min(width, height)
    size = round(float(rng.uniform(0.06, 0.16)) * side, 1)
    n = int(rng.integers(2, 5))
    points = [(float(rng.uniform(0.1, 0.9)) * width, float(rng.uniform(0.1, 0.9)) * height) for _ in range(n)]
    mode = rng.random()  # enters (first waypoint outside), leaves (last outside), both, or stays inside
    if mode < 0.7:
        points[0 if mode < 0.35 else -1] = _outside(rng, width, height, size)
    elif mode < 0.85:
        points[0], points[-1] = _outside(rng, width, height, size), _outside(rng, width, height, size)
    waypoints = tuple((round(x, 1), round(y, 1)) for x, y in points)
    speeds = tuple(round(float(rng.uniform(0.15, 0.6)) * side, 1) for _ in range(n - 1))
    shape, colour = SHAPES[int(rng.integers(len(SHAPES)))], list(COLOURS)[int(rng.integers(len(COLOURS)))]
    still = Shape(object_id, shape, colour, size, waypoints, speeds, 0.0)
    return replace(still, phase_s=round(float(rng.uniform(0, 2 * still.knots()[-1])), 3))


def _outside(rng: np.random.Generator, width: int, height: int, size: float) -> tuple[float, float]:
    """A point beyond one edge of the frame, far enough that the whole shape is out of sight."""
    away = size * float(rng.uniform(0.6, 1.5))
    along = float(rng.uniform(0.15, 0.85))
    return [(-away, along * height), (width + away, along * height),
            (along * width, -away), (along * width, height + away)][int(rng.integers(4))]


def visibility(video: VideoSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres and visibility of every object in every frame: (xs, ys, visible), each objects x frames."""
    times = np.array([float(t) for t in video.times])
    paths = [o.positions(times) for o in video.objects]
    xs, ys = np.array([p[0] for p in paths]), np.array([p[1] for p in paths])
    w, h = video.kind.width, video.kind.height
    visible = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    for k in range(len(video.objects)):
        px, py = np.floor(xs[k]) + 0.5, np.floor(ys[k]) + 0.5  # the centre's pixel
        for j, above in enumerate(video.objects[k + 1:], start=k + 1):
            visible[k] &= ~covers(above.shape, above.size, xs[j], ys[j], px, py)
    return xs, ys, visible
