"""Placing footage in wall-clock time: which deployment recorded each video or image set, and when it began.

A video's recording start comes from the first of these that exists, and ``start_source`` says which:

1. ``sidecar``: a JSON file beside the video, named after it plus ``.json`` (``clip.mp4.json``), with
   ``{"start": "2026-06-01T08:00:00+02:00"}``;
2. ``media``: a Camtrap DP media row for the file (``timestamp``; matched by ``filePath`` or, when
   unique, ``fileName``);
3. ``filename``: the file name read with ``filename_time`` (strftime codes, e.g. ``%Y%m%d_%H%M%S``),
   the camera's clock;
4. ``container``: the container's ``creation_time`` tag (MP4, MOV, MKV), the camera's clock, in UTC;
5. none: the video is analysed in video time only, ``dated`` false and ``problem`` saying why; never
   given a guessed date.

An image set starts at its first image's capture time (EXIF with or without an offset, else the file
time: ``exif``, ``exif_local``, ``file_mtime``). A time without a zone is read in the deployment's
``timezone``; times the camera wrote get the deployment's ``clockOffset``. The deployment is the one
whose fields the path names (``PathPattern``) and whose period holds the start; a path that names none,
or a start outside every named deployment's period, leaves the footage without a deployment (flagged).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any, Iterable

from vidlake.analysis.deployments import Deployment, PathPattern, parse_time
from vidlake.errors import ConfigError

__all__ = ["FilenameTime", "MediaTimes", "place"]

_CAMERA = {"filename", "container", "exif", "exif_local"}  # times the camera's clock wrote


class FilenameTime:
    """A capture time written in file names, as strftime codes (``%Y%m%d_%H%M%S``), found anywhere in the name."""

    _CODES = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}",
              "S": r"\d{2}", "f": r"\d{1,6}", "j": r"\d{3}", "%": "%"}

    def __init__(self, fmt: str):
        self.fmt = fmt
        regex, i = "", 0
        while i < len(fmt):
            if fmt[i] == "%":
                code = fmt[i + 1: i + 2]
                if code not in self._CODES:
                    raise ConfigError(f"filename_time {fmt!r}: %{code} is not supported (use %Y %y %m %d %H %M %S %f %j)")
                regex += self._CODES[code]
                i += 2
            else:
                regex += re.escape(fmt[i])
                i += 1
        if "%" not in fmt:
            raise ConfigError(f"filename_time {fmt!r} has no strftime codes")
        self._regex = re.compile(regex)

    def read(self, name: str) -> datetime | None:
        for found in self._regex.finditer(name):
            try:
                return datetime.strptime(found.group(0), self.fmt)
            except ValueError:
                continue
        return None


class MediaTimes:
    """Camtrap DP media rows (``timestamp`` per ``filePath``/``fileName``): times a person gave per file."""

    def __init__(self, rows: Iterable[dict[str, Any]], deployments: Iterable[Deployment], name: str = "media"):
        known = {d.deployment_id for d in deployments}
        self.by_path: dict[str, datetime] = {}
        names: dict[str, list[datetime]] = {}
        for i, row in enumerate(rows, start=2):
            dep = (row.get("deploymentID") or "").strip()
            if dep and dep not in known:
                raise ConfigError(f"{name}, line {i}: deploymentID {dep!r} is not in the deployments")
            try:
                when = parse_time(row.get("timestamp") or "")
            except ValueError as exc:
                raise ConfigError(f"{name}, line {i}: timestamp: {exc}") from None
            path = (row.get("filePath") or "").replace("\\", "/").strip("/")
            if path:
                self.by_path[path] = when
            file = (row.get("fileName") or (PurePosixPath(path).name if path else "")).strip()
            if file:
                names.setdefault(file, []).append(when)
        self.by_name = {k: v[0] for k, v in names.items() if len(v) == 1}  # a name used twice says nothing

    def get(self, uri: str) -> datetime | None:
        path = uri.replace("\\", "/")
        for known, when in self.by_path.items():
            if path == known or path.endswith("/" + known):
                return when
        return self.by_name.get(PurePosixPath(path).name)


def place(media: list[dict[str, Any]], deployments: list[Deployment], pattern: PathPattern,
          media_times: MediaTimes | None = None, filename_time: FilenameTime | None = None,
          read_sidecar=None, read_creation_time=None) -> list[dict[str, Any]]:
    """One ``placements`` row per video or set. ``media`` rows: ``video_id``, ``kind`` (video | set),
    ``uri``, ``duration_s`` and, for sets, ``captured`` (the first image's time, aware or naive) and
    ``captured_source``. ``read_sidecar(uri)`` and ``read_creation_time(uri)`` give a sidecar's content and a
    container's creation time (None when absent); both are only called when the sources before them gave
    nothing."""
    out = []
    for m in media:
        candidates = pattern.candidates(m["uri"], deployments)
        source, raw = _start(m, media_times, filename_time, read_sidecar, read_creation_time)
        row = {"video_id": m["video_id"], "kind": m["kind"], "uri": m["uri"], "deployment_id": None,
               "start_utc": None, "end_utc": None, "timezone": None, "start_source": source, "dated": False,
               "problem": None}
        chosen, start = _choose(candidates, raw, source)
        if not candidates:
            row["problem"] = f"the path matches no deployment ({pattern.pattern})"
        elif chosen is None:
            row["problem"] = ("no start time: no sidecar, media row, file-name time or container time" if raw is None
                              else f"the start {raw.isoformat()} is outside the periods of deployments "
                                   + ", ".join(d.deployment_id for d in candidates))
        if chosen is not None:
            row.update(deployment_id=chosen.deployment_id, timezone=chosen.timezone)
        elif len(candidates) == 1:  # the place is known even when the time is not
            row.update(deployment_id=candidates[0].deployment_id, timezone=candidates[0].timezone)
        if start is not None and chosen is not None:
            row.update(start_utc=start, end_utc=start + timedelta(seconds=float(m.get("duration_s") or 0.0)),
                       dated=True)
        out.append(row)
    return out


def _start(m: dict, media_times, filename_time, read_sidecar, read_creation_time) -> tuple[str | None, datetime | None]:
    """(source, time as written: aware, or naive in the deployment's zone) of the first source that has one."""
    uri = m["uri"]
    if read_sidecar is not None and (text := read_sidecar(uri + ".json")) is not None:
        try:
            return "sidecar", parse_time(str(json.loads(text)["start"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"sidecar {uri}.json: expected {{\"start\": \"<ISO 8601 time>\"}} ({exc})") from None
    if media_times is not None and (when := media_times.get(uri)) is not None:
        return "media", when
    if filename_time is not None and (when := filename_time.read(PurePosixPath(uri).name)) is not None:
        return "filename", when
    if m["kind"] == "set":
        return m.get("captured_source"), m.get("captured")
    if read_creation_time is not None and (when := read_creation_time(uri)) is not None:
        return "container", when
    return None, None


def _choose(candidates: list[Deployment], raw: datetime | None, source: str | None) -> tuple[Deployment | None, datetime | None]:
    """The candidate whose period holds the start (read in its zone, its clock offset applied), and that start in UTC."""
    if raw is None:
        return None, None
    for d in candidates:
        when = raw if raw.tzinfo is not None else raw.replace(tzinfo=d.zone)
        if source in _CAMERA:
            when = when + timedelta(seconds=d.clock_offset_s)
        when = when.astimezone(timezone.utc)
        if d.start <= when <= d.end:
            return d, when
    return None, None
