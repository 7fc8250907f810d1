"""The oracle engine: every window answered from ground truth, as a perfect Molmo 2 would answer it.

``model.name: "oracle:DIR"`` (``--model oracle:DIR``) names a ground-truth folder with a ``points.csv``
(video, time_s, x, y, label, object_id: the centre of every visible object in every frame, display
pixels; ``vidlake synth`` writes one). For a window it is given, the oracle looks only at the frames of
that window (their exact PTS) and writes what Molmo 2 writes, in Molmo 2's formats: points and tracks as
``<points coords="t id x y ...">`` tags (times window-relative with one decimal, as the processor shows
them; coordinates 0-1000 of the upright frame), counts by pointing, captions that say when each object is
seen. Everything after the model (parsing, time shifting, coordinate mapping, window merging, id linking,
the lake) runs unchanged, so comparing the lake with the truth (``vidlake eval``) measures what the
platform itself loses. Videos are matched to the truth by content (the sha256 of ``DIR/videos/*``, the
lake's ``video_id``), else by file name.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from vidlake.errors import ModelLoadError

__all__ = ["ORACLE_PREFIX", "OracleTruth", "caption_events", "oracle_answer", "oracle_folder"]

ORACLE_PREFIX = "oracle:"

Visible = tuple[int, str, float, float]  # object_id, label, x, y (display pixels)


def oracle_folder(name: str) -> Path | None:
    """The truth folder named by ``oracle:DIR``, or None when ``name`` is not an oracle."""
    if not name.startswith(ORACLE_PREFIX):
        return None
    return Path(name.removeprefix(ORACLE_PREFIX)).expanduser().resolve()


def truth_revision(folder: Path) -> str:
    """What the oracle's output rows name as ``model_revision``: a hash of the truth it answers from."""
    points = folder / "points.csv"
    if not points.is_file():
        raise ModelLoadError(f"the oracle's truth folder {folder} has no points.csv (video,time_s,x,y,label,"
                             "object_id): make one with `vidlake synth DIR` or write your annotations in that format")
    return "truth-" + hashlib.sha256(points.read_bytes()).hexdigest()[:16]


@dataclass
class OracleTruth:
    """Every visible object per (video file name, frame time), and which content hash names which file."""

    frames: dict[str, dict[int, list[Visible]]]  # name -> PTS in ms -> visible objects
    names: dict[str, str]  # video_id (sha256 of the file) -> name

    @classmethod
    def load(cls, folder: Path) -> "OracleTruth":
        from vidlake.errors import ConfigError
        from vidlake.evaluation.formats import read_points, video_hashes

        try:
            table = read_points(folder / "points.csv").to_pylist()  # the truth reader of `vidlake eval`
        except ConfigError as exc:  # a bad line: the engine cannot start
            raise ModelLoadError(f"the oracle cannot read its truth: {exc}") from exc
        unnamed = next((r for r in table if r["object_id"] is None), None)
        if unnamed is not None:
            raise ModelLoadError(f"{folder / 'points.csv'} gives a point of {unnamed['video']} at {unnamed['time_s']} s "
                                 "no object_id: the oracle needs every object's id (tracks, counts)")
        frames: dict[str, dict[int, list[Visible]]] = defaultdict(lambda: defaultdict(list))
        for r in table:
            frames[r["video"]][round(r["time_s"] * 1000)].append((r["object_id"], r["label"], r["x"], r["y"]))
        return cls({k: dict(v) for k, v in frames.items()}, video_hashes(folder))

    def video(self, video_id: str, uri: str) -> dict[int, list[Visible]] | None:
        """The truth frames of one video: by content hash, else by the file's name; None when unknown."""
        name = self.names.get(video_id) or uri.rstrip("/").rsplit("/", 1)[-1]
        return self.frames.get(name)

    @staticmethod
    def at(frames: dict[int, list[Visible]], t: float) -> list[Visible]:
        """The objects visible on the frame shown at ``t`` (none when no truth frame has that PTS)."""
        ms = round(t * 1000)
        for key in (ms, ms - 1, ms + 1):  # PTS rounding: a frame time never moves by more than a millisecond
            if key in frames:
                return frames[key]
        return []


def oracle_answer(task: str, query: str | None, seen: list[tuple[float, list[Visible]]], width: int,
                  height: int) -> str:
    """The answer to one window: ``seen`` holds (window-relative time, visible objects) per sampled frame;
    ``width``/``height``: the upright frame's size in pixels (the truth's coordinates)."""
    from vidlake.evaluation.world import match_query

    if task == "caption" or (task in ("qa", "anomaly")):
        return _caption(seen)
    wanted = [(t, [o for o in objs if query and match_query(query, o[1])]) for t, objs in seen]
    wanted = [(t, objs) for t, objs in wanted if objs]
    if not wanted:
        return "There are none."
    ids: dict[int, int] = {}  # truth id -> 1..N by first appearance in this window
    for _, objs in wanted:
        for o in sorted(objs, key=lambda o: (o[2], o[3])):
            ids.setdefault(o[0], len(ids) + 1)
    groups = ";".join(
        f"{t:.1f} " + " ".join(f"{ids[o[0]]} {_norm(o[2], width):03d} {_norm(o[3], height):03d}"
                               for o in sorted(objs, key=lambda o: ids[o[0]]))
        for t, objs in wanted)
    tag = "tracks" if task == "track" else "points"
    grounded = f'<{tag} coords="{groups}">{query}</{tag}>'
    if task == "count":
        return f"Counting the {grounded} shows a total of {len(ids)}."
    return grounded


def _norm(value: float, size: int) -> int:
    return min(1000, max(0, round(value / size * 1000)))


def caption_events(seen: list[tuple[float, list[Visible]]]) -> list[tuple[float, list[tuple[int, Visible]], list[tuple[int, Visible]]]]:
    """The moments the set of visible objects changes, as (time, objects that appear, objects that leave), each
    object with the index of the frame it is seen on (a leaving one: where it was last seen), listed left to
    right (then top to bottom), as :func:`_caption` names them."""
    events, before = [], {}
    for f, (t, objs) in enumerate(seen):
        now = {o[0]: (f, o) for o in objs}
        came = sorted((now[i] for i in now.keys() - before.keys()), key=lambda e: (e[1][2], e[1][3]))
        went = sorted((before[i] for i in before.keys() - now.keys()), key=lambda e: (e[1][2], e[1][3]))
        if came or went:
            events.append((t, came, went))
        before = now
    return events


def _caption(seen: list[tuple[float, list[Visible]]]) -> str:
    """One sentence per moment the set of visible objects changes: which objects appear and leave (left to
    right, so that the order is one a model can see)."""
    sentences = []
    for t, came, went in caption_events(seen):
        parts = []
        if came:
            parts.append(_listing([o[1] for _, o in came]) + (" appears" if len(came) == 1 else " appear"))
        if went:
            parts.append(_listing([o[1] for _, o in went]) + (" leaves" if len(went) == 1 else " leave"))
        sentences.append(f"At {t:.1f} seconds, " + " and ".join(parts) + ".")
    if not sentences:
        return "A textured background with no shapes on it."
    return " ".join(sentences)


def _listing(labels: list[str]) -> str:
    named = [f"a {label}" for label in labels]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
