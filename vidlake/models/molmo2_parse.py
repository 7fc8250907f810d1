"""``parse_molmo2``: Molmo 2's answer text -> typed points, tracks, boxes, counts and caption spans.

A pure function that never raises on model output. Formats read (docs/molmo2.md):

* ``<points coords="T ID X Y [ID X Y ...];T ...">label</points>`` and the same with ``<tracks>``;
  groups separated by ``;`` (also tab, ``:`` or ``,``), each a timestamp then ``id x y`` triples,
  x and y integers on a 0-1000 scale; attributes such as ``alt="..."`` in any order.
* ``<boxes coords="T ID X1 Y1 X2 Y2;...">label</boxes>`` (not in Molmo 2's documented outputs; read
  when a fine-tune emits it).
* Molmo 1 style ``<point x="61.5" y="40.2" alt="..">label</point>`` / ``<points x1=.. y1=.. x2=..>``
  (percent of the frame, no time).
* Image sets: the same tags, each group's prefix the 1-based index of the image instead of a time
  (``images``: each image's time and upright size; a single image's groups may have no prefix).
* Counts: "... a total of N", "There are N ...", a bare "N", "There are none", number words.
* Caption times in prose: "At 2.5 seconds, ...", "From 1.0 to 3.5 seconds ...", "(4.0s)".

What cannot be read (a cut-off tag, a broken group, coordinates off the 0-1000 scale) is reported in
``issues`` with status ``partial``; what can be read still comes out.
"""

from __future__ import annotations

import bisect
import math
import re
from typing import Sequence

from vidlake.models.grounding import CaptionSpan, GroundedPoint, Molmo2Answer

__all__ = ["parse_molmo2"]

_KINDS = {"points": "point", "point": "point", "tracks": "track", "track": "track", "boxes": "box", "box": "box"}
_NAMES = r"(?:points|point|tracks|track|boxes|box)\b"
_TAG = re.compile(  # name, attributes, label (which may not open another tag), closing tag
    r"<(points|point|tracks|track|boxes|box)\b([^<>]*)>((?:(?!<" + _NAMES + r").)*?)</\1\s*>", re.S | re.I
)
_OPEN = re.compile(r"<(points|point|tracks|track|boxes|box)\b", re.I)
_STRAY = re.compile(r"</?(points|point|tracks|track|boxes|box)\b[^<>]*>?", re.I)
_ATTR = re.compile(r"([A-Za-z_][\w\-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_NUM = re.compile(r"^-?\d+(\.\d+)?$")
_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_N = r"(\d+|" + "|".join(_WORDS) + r")"
_COUNT_PATTERNS = (
    re.compile(r"\btotal(?: count)? (?:of|is|=)\s*" + _N + r"\b", re.I),
    re.compile(r"\bthere (?:are|is|were|was) " + _N + r"\b", re.I),
    re.compile(r"\b(?:count|number)(?: of [\w\s]+?)? (?:is|=)\s*" + _N + r"\b", re.I),
    re.compile(r"^\s*" + _N + r"\s*\.?\s*$", re.I),
)
_NONE = re.compile(r"\bthere (?:are|is|were|was) (?:none|no\b|not any)|^\s*none\.?\s*$", re.I)
_UNIT = r"\s*(?:s|secs?|seconds?)\b"
_T = r"(\d+(?:\.\d+)?)"
_RANGE = re.compile(
    r"(?:from\s+|between\s+)?" + _T + r"(?:" + _UNIT + r")?\s*(?:-|–|to|and|until)\s*" + _T + _UNIT, re.I
)
_POINT_T = re.compile(r"(?:\bat\s+)?" + _T + _UNIT, re.I)
_SNAP_S = 0.051  # the processor prints frame times with one decimal: the model's times are +-0.05 s


def parse_molmo2(
    text: str | None, *, width: int, height: int, time_offset_s: float = 0.0, rotation: int = 0,
    frame_times_s: Sequence[float] | None = None, images: Sequence[tuple[float, int, int]] | None = None,
) -> Molmo2Answer:
    """Parse one answer. ``width``/``height``: the original frame size as stored (coded, before rotation);
    ``rotation``: display rotation in degrees (90/270 swap the upright frame's sides); ``time_offset_s``:
    absolute time of the model's 0.0 (the window start); ``frame_times_s``: absolute times of the frames
    the model saw, to snap times onto them. ``images``: an image set's answer: (time, upright width,
    height) of each image in the order the model saw them; a point's prefix is then its image's 1-based
    index, and it gets that image's time and pixels. Never raises on any ``text``."""
    raw = text if isinstance(text, str) else ""
    if not raw.strip():
        return Molmo2Answer(text="", status="empty", raw=raw)
    w, h = (height, width) if int(rotation) % 180 == 90 else (width, height)
    times = sorted(float(t) for t in frame_times_s) if frame_times_s is not None else []
    ctx = _Ctx(float(w), float(h), float(time_offset_s), times,
               [(float(t), float(iw), float(ih)) for t, iw, ih in images] if images is not None else None)
    pieces, pos = [], 0
    while opening := _OPEN.search(raw, pos):
        pieces.append(raw[pos : opening.start()])
        index, name = len(ctx.tags), opening.group(1)
        whole = _TAG.match(raw, opening.start())
        if whole:
            label = _tidy(_STRAY.sub(" ", whole.group(3)))
            ctx.read_tag(name, whole.group(2), label, index)
            pos = whole.end()
        else:  # no closing tag before the next one or the end: cut off (max_new_tokens) or malformed
            following = _OPEN.search(raw, opening.end())
            pos = following.start() if following else len(raw)
            attrs, closed, tail = raw[opening.end() : pos].partition(">")
            label = _tidy(_STRAY.sub(" ", tail))
            ctx.issues.append(f"tag #{index}: <{name}> is not closed (cut-off output?)")
            ctx.read_tag(name, attrs, label, index, truncated=not closed)
            label += " "
        pieces.append(label)
    pieces.append(raw[pos:])
    clean = _tidy(_STRAY.sub(" ", "".join(pieces)))
    points = tuple(p for p in ctx.out if p.kind != "track")
    tracks = tuple(p for p in ctx.out if p.kind == "track")
    count, source = _count(clean, ctx.out)
    return Molmo2Answer(
        text=clean, points=points, tracks=tracks, count=count, count_source=source,
        spans=_spans(clean, ctx.time_offset_s), status="partial" if ctx.issues else "ok",
        issues=tuple(ctx.issues), raw=raw,
    )


class _Ctx:
    def __init__(self, w: float, h: float, offset: float, frame_times: list[float],
                 images: list[tuple[float, float, float]] | None = None):
        self.w, self.h, self.time_offset_s, self.frame_times = w, h, offset, frame_times
        self.images = images
        self.out: list[GroundedPoint] = []
        self.issues: list[str] = []
        self.tags: list[int] = []

    def read_tag(self, name: str, attr_text: str, label: str, index: int, truncated: bool = False) -> None:
        self.tags.append(index)
        kind = _KINDS[name.lower()]
        attrs = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                 for m in _ATTR.finditer(attr_text)}
        label = label or (attrs.get("alt") or "").strip()
        if "coords" in attrs:
            self._coords(kind, attrs["coords"], label, index, cut=False)
        elif start := re.search(r"coords\s*=\s*[\"']", attr_text, re.I):
            # the value's closing quote never came: read the complete groups before the cut
            if not truncated:
                self.issues.append(f"tag #{index}: coords value is not closed")
            self._coords(kind, attr_text[start.end() :], label, index, cut=True)
        elif "x" in attrs or "x1" in attrs:
            self._percent(kind, attrs, label, index)
        elif not truncated:
            self.issues.append(f"tag #{index}: <{name}> has no coordinates")

    def _coords(self, kind: str, coords: str, label: str, index: int, cut: bool) -> None:
        width = 5 if kind == "box" else 3
        groups = [g.split() for g in re.split(r"[;\t:,]", coords)]
        if cut and groups and groups[-1]:  # keep the last group's time and its complete tuples only
            last = groups[-1][:-1] if coords[-1:].isdigit() else groups[-1]  # "30" may be a cut "300"
            groups[-1] = last[: 1 + (len(last) - 1) // width * width] if last else []
        current: float | None = None
        for group in groups:
            if not group:
                continue
            if not all(_NUM.match(tok) for tok in group):
                self.issues.append(f"tag #{index}: unreadable group {' '.join(group)[:40]!r}")
                continue
            if "." in group[0] or (len(group) - 1) % width == 0:
                current, values = float(group[0]), group[1:]
            else:
                values = group  # more tuples for the current time (a ',' or ':' used inside a frame)
            if len(values) % width:
                self.issues.append(f"tag #{index}: incomplete {width}-tuple in {' '.join(group)[:40]!r}")
            for i in range(0, len(values) - width + 1, width):
                self._add(kind, label, index, current, [float(v) for v in values[i : i + width]], 1000.0)

    def _percent(self, kind: str, attrs: dict, label: str, index: int) -> None:
        pairs = [("x", "y")] if "x" in attrs else [(f"x{i}", f"y{i}") for i in range(1, 1000) if f"x{i}" in attrs]
        for n, (kx, ky) in enumerate(pairs, start=1):
            try:
                x, y = float(attrs[kx]), float(attrs.get(ky, ""))
            except ValueError:
                self.issues.append(f"tag #{index}: unreadable {kx}/{ky}")
                continue
            self._add(kind, label, index, None, [n, x, y], 100.0)

    def _add(self, kind: str, label: str, index: int, t: float | None, v: list[float], scale: float) -> None:
        obj, coords = v[0], v[1:]
        finite = all(math.isfinite(c) for c in v) and (t is None or math.isfinite(t))
        if not finite or obj < 0 or obj != int(obj) or any(c < 0 or c > scale for c in coords):
            self.issues.append(f"tag #{index}: point {' '.join(f'{c:g}' for c in v)} is off the 0-{scale:g} scale")
            return
        n = [c / scale for c in coords]
        w, h, when, image = self.w, self.h, self._time(t), None
        if self.images is not None:  # an image set: the prefix names the image
            image = int(t) if t is not None and t == int(t) else 1 if t is None and len(self.images) == 1 else None
            if image is None or not 1 <= image <= len(self.images):
                named = "no image" if t is None else f"image {t:g}"
                self.issues.append(f"tag #{index}: point {' '.join(f'{c:g}' for c in v)} names {named} "
                                   f"(the set has {len(self.images)})")
                return
            when, w, h = self.images[image - 1]
        box = None
        if kind == "box":
            box = (n[0] * w, n[1] * h, n[2] * w, n[3] * h)
        self.out.append(GroundedPoint(
            kind=kind, label=label, object_id=int(obj), t=when, t_model=t, x=n[0] * w,
            y=n[1] * h, x_norm=n[0], y_norm=n[1], tag_index=index, box=box, image_index=image,
        ))

    def _time(self, t: float | None) -> float | None:
        if t is None:
            return None
        absolute = t + self.time_offset_s
        times = self.frame_times
        if times:
            i = bisect.bisect_left(times, absolute)
            near = min(times[max(0, i - 1) : i + 1], key=lambda f: abs(f - absolute))
            if abs(near - absolute) <= _SNAP_S:
                return near
        return round(absolute, 6)


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\s+([.,;:!?])", r"\1", "\n".join(line for line in lines if line)).strip()


def _count(text: str, found: list[GroundedPoint]) -> tuple[int | None, str | None]:
    for pattern in _COUNT_PATTERNS:
        match = pattern.search(text)
        if match:
            word = match.group(1).lower()
            return (int(word) if word.isdigit() else _WORDS[word]), "text"
    if _NONE.search(text):
        return 0, "text"
    ids = {(p.tag_index, p.object_id) for p in found if p.kind != "track"}
    return (len(ids), "ids") if ids else (None, None)


def _spans(text: str, offset: float) -> tuple[CaptionSpan, ...]:
    """The text cut at time mentions: a sentence naming a time (``At 2.5 seconds``, ``from 1 to 3 s``) opens
    a span, sentences without one extend it; text before the first mention starts at the model's 0.0."""
    spans: list[list] = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        if not sentence.strip():
            continue
        ranged, single = _RANGE.search(sentence), _POINT_T.search(sentence)
        if ranged:
            spans.append([float(ranged.group(1)) + offset, float(ranged.group(2)) + offset, sentence.strip()])
        elif single:
            spans.append([float(single.group(1)) + offset, None, sentence.strip()])
        elif spans:
            spans[-1][2] += " " + sentence.strip()
        else:  # text before the first time mention starts at the model's 0.0
            spans.append([offset, None, sentence.strip()])
    return tuple(CaptionSpan(round(a, 6), None if b is None else round(b, 6), t) for a, b, t in spans)
