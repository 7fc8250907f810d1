"""Ground truth a user already has, read into typed Arrow tables; a bad file raises ``ConfigError``.

Formats (one row per line, comma separated; blank lines are not rows; other columns are ignored):

* MOTChallenge tracks ``<name>.txt``, no header: ``frame,id,bb_left,bb_top,bb_width,bb_height`` then up to
  four optional numbers (``conf,x,y,z``, or MOT16/17 gt's ``conf,class,visibility``). Frames are 1-based;
  a frame's time comes from a ``frames/<name>.csv`` (``frame,time_s``) or a frame rate, (frame-1)/fps.
  Rows are kept as written (MOT16/17 gt rows with conf 0, "ignore", too); the box centre is the point.
* counts CSV: ``video,query,count`` with optional ``start_s,end_s`` (both or neither; empty = whole video).
* points CSV: ``video,time_s,x,y,label`` with an optional ``object_id`` (empty = null).
* events CSV ``video,object_id,label,event,time_s``; objects CSV ``video,object_id,label,shape,colour``.

``load_truth(dir)`` reads whichever of ``counts.csv``, ``points.csv``, ``events.csv``, ``objects.csv``,
``mot/*.txt`` (+ ``frames/*.csv``) a folder holds, the names ``vidlake synth`` writes. Each row is checked
with a pydantic model, so an error names the file, the line and what is wrong; nothing is skipped.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vidlake.errors import ConfigError
from vidlake.platform.lake.ids import hash_stream

__all__ = ["COUNTS", "EVENTS", "OBJECTS", "POINTS", "TRACKS", "Truth", "load_truth", "read_counts", "read_events",
           "read_frame_times", "read_mot", "read_objects", "read_points", "video_hashes"]

Name = Annotated[str, Field(min_length=1)]
Seconds = Annotated[float, Field(ge=0)]
Id = Annotated[int, Field(ge=0)]


class _Row(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)  # "nan" and "inf" are not values


class _Count(_Row):
    video: Name
    query: Name
    start_s: Seconds | None = None
    end_s: Seconds | None = None
    count: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _span(self):
        if (self.start_s is None) != (self.end_s is None):
            raise ValueError("give both start_s and end_s, or leave both empty for the whole video")
        if self.start_s is not None and self.start_s > self.end_s:
            raise ValueError(f"start_s {self.start_s} is after end_s {self.end_s}")
        return self


class _Point(_Row):
    video: Name
    time_s: Seconds
    x: float
    y: float
    label: Name
    object_id: Id | None = None


class _Event(_Row):
    video: Name
    object_id: Id
    label: Name
    event: Name
    time_s: Seconds


class _Object(_Row):
    video: Name
    object_id: Id
    label: Name
    shape: Name
    colour: Name


class _Frame(_Row):
    frame: Annotated[int, Field(ge=1)]
    time_s: Seconds


class _Box(_Row):
    frame: Annotated[int, Field(ge=1)]
    object_id: Id  # a detection file's id -1 is refused: it is not a track
    left: float
    top: float
    width: Annotated[float, Field(ge=0)]
    height: Annotated[float, Field(ge=0)]
    conf: float = 1.0
    col8: float | None = None  # columns 8-10 (x,y,z or class,visibility): checked as numbers, not kept
    col9: float | None = None
    col10: float | None = None


_MOT_COLUMNS = {name: f"column {i} ({name})" if i <= 7 else f"column {i}"
                for i, name in enumerate(_Box.model_fields, start=1)}

_STR, _F64, _I64 = pa.string(), pa.float64(), pa.int64()
COUNTS = pa.schema([("video", _STR), ("query", _STR), ("start_s", _F64), ("end_s", _F64), ("count", _I64)])
POINTS = pa.schema([("video", _STR), ("time_s", _F64), ("x", _F64), ("y", _F64), ("label", _STR),
                    ("object_id", _I64)])
EVENTS = pa.schema([("video", _STR), ("object_id", _I64), ("label", _STR), ("event", _STR), ("time_s", _F64)])
OBJECTS = pa.schema([("video", _STR), ("object_id", _I64), ("label", _STR), ("shape", _STR), ("colour", _STR)])
TRACKS = pa.schema([("video", _STR), ("frame", _I64), ("time_s", _F64), ("object_id", _I64), ("left", _F64),
                    ("top", _F64), ("width", _F64), ("height", _F64), ("conf", _F64), ("x", _F64), ("y", _F64)])


def _problem(error: ValidationError, names: Mapping[str, str] | None = None) -> str:
    """pydantic's errors as one short clause each: ``count: Input should be ... (got 'x')``."""
    parts = []
    for e in error.errors():
        where = ".".join((names or {}).get(str(p), str(p)) for p in e["loc"])
        got = f" (got {e['input']!r})" if isinstance(e["input"], str) else ""
        parts.append(f"{where + ': ' if where else ''}{e['msg'].removeprefix('Value error, ')}{got}")
    return "; ".join(parts)


def _lines(path: Path):
    """(line number, cells) of every non-blank record; a file that cannot be read is a ConfigError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for cells in reader:
                if any(c.strip() for c in cells):
                    yield reader.line_num, [c.strip() for c in cells]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def _rows(path: Path, model: type[_Row], columns: list[str]):
    """(line, checked row) of a headed CSV; columns the model lacks are ignored, empty optional ones are None."""
    header = None
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    for line, cells in _lines(path):
        if header is None:
            header = cells
            if missing := sorted(required - set(header)):
                raise ConfigError(f"{path}, line {line}: the header {','.join(header)} lacks the columns "
                                  f"{','.join(missing)} (expected {','.join(columns)})")
            continue
        if len(cells) != len(header):
            raise ConfigError(f"{path}, line {line}: {len(cells)} values for {len(header)} columns")
        record = {k: v for k, v in zip(header, cells) if k in model.model_fields and (v or k in required)}
        try:
            yield line, model.model_validate(record)
        except ValidationError as exc:
            raise ConfigError(f"{path}, line {line}: {_problem(exc)}") from None
    if header is None:
        raise ConfigError(f"{path} is empty: expected a header {','.join(columns)}")


def _read_csv(path: Path, model: type[_Row], schema: pa.Schema) -> pa.Table:
    rows = [row.model_dump() for _, row in _rows(path, model, schema.names)]
    return pa.Table.from_pylist(rows, schema=schema)


def read_counts(path: Path) -> pa.Table:
    """``video,query,count`` (+ ``start_s,end_s``; null = the whole video) -> the COUNTS schema."""
    return _read_csv(Path(path), _Count, COUNTS)


def read_points(path: Path) -> pa.Table:
    """``video,time_s,x,y,label`` (+ ``object_id``; null when absent or empty) -> the POINTS schema."""
    return _read_csv(Path(path), _Point, POINTS)


def read_events(path: Path) -> pa.Table:
    """``video,object_id,label,event,time_s`` -> the EVENTS schema."""
    return _read_csv(Path(path), _Event, EVENTS)


def read_objects(path: Path) -> pa.Table:
    """``video,object_id,label,shape,colour`` -> the OBJECTS schema."""
    return _read_csv(Path(path), _Object, OBJECTS)


def read_frame_times(path: Path) -> dict[int, float]:
    """A ``frame,time_s`` CSV (1-based frames, each once) -> frame -> time in seconds."""
    path = Path(path)
    times: dict[int, float] = {}
    for line, row in _rows(path, _Frame, ["frame", "time_s"]):
        if row.frame in times:
            raise ConfigError(f"{path}, line {line}: frame {row.frame} is listed twice")
        times[row.frame] = row.time_s
    return times


def read_mot(path: Path, *, frames: Path | Mapping[int, float] | None = None, fps: float | None = None,
             video: str | None = None) -> pa.Table:
    """A MOTChallenge txt -> the TRACKS schema, ``x, y`` the box centre, ``video`` the file's stem by default.

    Frame times come from ``frames`` (a ``frame,time_s`` CSV or its mapping) when given, else ``fps``.
    """
    path = Path(path)
    if frames is not None and not isinstance(frames, Mapping):
        frames = read_frame_times(Path(frames))
    if frames is None and not (fps and fps > 0):
        raise ConfigError(f"{path}: frame times unknown: add frames/{path.stem}.csv (frame,time_s) or give a "
                          f"frame rate (got fps={fps})")
    rows = []
    for line, cells in _lines(path):
        if not 6 <= len(cells) <= 10:
            raise ConfigError(f"{path}, line {line}: {len(cells)} values; a MOTChallenge row has 6 to 10 "
                              "(frame,id,bb_left,bb_top,bb_width,bb_height[,conf,x,y,z])")
        try:
            box = _Box.model_validate(dict(zip(_Box.model_fields, cells)))
        except ValidationError as exc:
            raise ConfigError(f"{path}, line {line}: {_problem(exc, _MOT_COLUMNS)}") from None
        if frames is None:
            time_s = (box.frame - 1) / fps
        elif (time_s := frames.get(box.frame)) is None:
            raise ConfigError(f"{path}, line {line}: frame {box.frame} has no time in the frames file")
        rows.append({"video": video or path.stem, "time_s": time_s, **box.model_dump(exclude={"col8", "col9", "col10"}),
                     "x": box.left + box.width / 2, "y": box.top + box.height / 2})
    return pa.Table.from_pylist(rows, schema=TRACKS)


@dataclass(frozen=True)
class Truth:
    """The truth tables found in a folder (None where absent) and a fingerprint of their files."""

    root: Path
    fingerprint: str  # sha256 over the files read, by relative path: which truth an evaluation used
    counts: pa.Table | None = None
    points: pa.Table | None = None
    tracks: pa.Table | None = None  # every mot/*.txt, concatenated
    events: pa.Table | None = None
    objects: pa.Table | None = None


_READERS = {"counts": read_counts, "points": read_points, "events": read_events, "objects": read_objects}


def load_truth(root: Path, fps: float | None = None) -> Truth:
    """Read the truth files in ``root``; ``fps`` times a mot/*.txt that has no frames/<stem>.csv.

    A MOT file's ``video`` is the file in ``root/videos`` with the txt's stem (the stem itself when there
    is no videos/ folder). The fingerprint covers the files read here, never videos/.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"the truth folder {root} does not exist")
    read: list[Path] = []
    tables: dict[str, pa.Table | None] = {}
    for name, reader in _READERS.items():
        path = root / f"{name}.csv"
        tables[name] = reader(path) if path.is_file() else None
        read += [path] if path.is_file() else []
    names = _videos_by_stem(root / "videos")
    tracks = []
    for mot in sorted((root / "mot").glob("*.txt")):
        frames = root / "frames" / f"{mot.stem}.csv"
        if names is not None and mot.stem not in names:
            raise ConfigError(f"{mot}: no video named {mot.stem}.* in {root / 'videos'}")
        tracks.append(read_mot(mot, frames=frames if frames.is_file() else None, fps=fps,
                               video=names[mot.stem] if names is not None else mot.stem))
        read += [mot] + ([frames] if frames.is_file() else [])
    tables["tracks"] = pa.concat_tables(tracks) if tracks else None
    if not read:
        raise ConfigError(f"{root} holds no truth: expected counts.csv, points.csv, events.csv, objects.csv "
                          "or mot/*.txt")
    return Truth(root=root, fingerprint=_fingerprint(root, read), **tables)


def video_hashes(root: Path, names: set[str] | None = None) -> dict[str, str]:
    """sha256 of each file in ``root/videos`` (those in ``names``, when given) -> its file name: how truth
    files name a video, matched to the lake's content-addressed ``video_id``."""
    folder = Path(root) / "videos"
    out: dict[str, str] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_file() and (names is None or path.name in names):
            with path.open("rb") as stream:
                out[hash_stream(stream)[0]] = path.name
    return out


def _videos_by_stem(folder: Path) -> dict[str, str] | None:
    if not folder.is_dir():
        return None
    names: dict[str, str] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.stem in names:
            raise ConfigError(f"{folder} holds both {names[path.stem]} and {path.name}: a MOT file "
                              f"{path.stem}.txt cannot tell which one it describes")
        names[path.stem] = path.name
    return names


def _fingerprint(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
