"""Deployments: where and when footage was recorded, read from Camtrap DP style CSV or YAML.

A deployment is one camera at one place for one period (Camtrap DP's deployments table). vidlake reads
Camtrap DP's column names, plus three of its own:

* ``timezone``: the IANA zone of the camera's clock and of local-time bins ("Europe/Berlin");
* ``clockOffset``: seconds to add to the camera's clock to get the true time (a camera 5 minutes slow
  has +300); applied to times the camera wrote (file names, container tags, EXIF), not to times a person
  gave (sidecars, media rows);
* ``pixelsPerMetre``: a calibration for track statistics in metres.

``deploymentStart``/``deploymentEnd`` are ISO 8601; without an offset they are read in the deployment's
own ``timezone``. Everything wrong with the file fails at once, with the line and what is wrong: a
missing column, a duplicate id, an unknown zone, an end before its start, two deployments of one camera
(or one location, when no camera is named) that overlap in time.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vidlake.errors import ConfigError, invalid

__all__ = ["Deployment", "PathPattern", "load_deployments", "parse_time"]


class Deployment(BaseModel):
    """One deployment (Camtrap DP names; times aware, in UTC once loaded)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    deployment_id: str = Field(alias="deploymentID", min_length=1)
    location_id: str | None = Field(None, alias="locationID")
    location_name: str | None = Field(None, alias="locationName")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    camera_id: str | None = Field(None, alias="cameraID")
    start: datetime = Field(alias="deploymentStart")
    end: datetime = Field(alias="deploymentEnd")
    timezone: str = "UTC"
    clock_offset_s: float = Field(0.0, alias="clockOffset")
    pixels_per_metre: float | None = Field(None, alias="pixelsPerMetre", gt=0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as 'Europe/Berlin')") from None
        return value

    @field_validator("location_id", "location_name", "camera_id", "latitude", "longitude", "pixels_per_metre",
                     mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_time(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _in_utc(self) -> "Deployment":
        zone = ZoneInfo(self.timezone)
        start, end = (_aware(t, zone).astimezone(timezone.utc) for t in (self.start, self.end))
        if end <= start:
            raise ValueError(f"deploymentEnd {self.end.isoformat()} is not after deploymentStart {self.start.isoformat()}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def fields(self) -> dict[str, str | None]:
        """What a path pattern can name, by Camtrap DP name."""
        return {"deploymentID": self.deployment_id, "locationID": self.location_id,
                "locationName": self.location_name, "cameraID": self.camera_id}

    def row(self) -> dict[str, Any]:
        """The lake's ``deployments`` row."""
        return {"deployment_id": self.deployment_id, "location_id": self.location_id,
                "location_name": self.location_name, "latitude": self.latitude, "longitude": self.longitude,
                "camera_id": self.camera_id, "start": self.start, "end": self.end, "timezone": self.timezone,
                "clock_offset_s": self.clock_offset_s, "pixels_per_metre": self.pixels_per_metre}


def parse_time(text: str) -> datetime:
    """ISO 8601 (``2026-06-01T08:00:00+02:00``, ``Z``, or naive); a clear error otherwise."""
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (2026-06-01T08:00:00+02:00)") from None


def _aware(when: datetime, zone: ZoneInfo) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def load_deployments(source: str | bytes, name: str = "deployments") -> list[Deployment]:
    """Deployments from CSV text (a header row of Camtrap DP names) or YAML (a list of mappings, or
    ``{deployments: [...]}``); ``source`` is the file's content, ``name`` its name for messages. Raises
    ``ConfigError`` naming the row and the problem."""
    text = source.decode("utf-8-sig") if isinstance(source, bytes) else source.lstrip("\ufeff")
    if name.lower().endswith((".yaml", ".yml")):
        rows = _yaml_rows(text, name)
    else:
        reader = csv.DictReader(io.StringIO(text))
        missing = {"deploymentID", "deploymentStart", "deploymentEnd"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{name}: missing columns {sorted(missing)} (Camtrap DP deployments)")
        rows = [(f"line {reader.line_num}", row) for row in reader if any((v or "").strip() for v in row.values())]
    deployments = []
    for where, row in rows:
        try:
            deployments.append(Deployment.model_validate({k: v for k, v in row.items() if k is not None}))
        except ValidationError as exc:
            raise ConfigError(f"{name}, {where}: {invalid(exc, 'row')}") from None
    _check_unique_and_apart(deployments, name)
    return deployments


def _yaml_rows(text: str, name: str) -> list[tuple[str, dict]]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not YAML: {exc}") from None
    if isinstance(data, dict):
        data = data.get("deployments")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ConfigError(f"{name}: expected a list of deployments (or deployments: [...])")
    return [(f"deployment #{i + 1}", {k: str(v) if isinstance(v, datetime) else v for k, v in d.items()})
            for i, d in enumerate(data)]


def _check_unique_and_apart(deployments: list[Deployment], name: str) -> None:
    seen: set[str] = set()
    for d in deployments:
        if d.deployment_id in seen:
            raise ConfigError(f"{name}: deploymentID {d.deployment_id!r} appears twice")
        seen.add(d.deployment_id)
    by_device: dict[tuple[str, str], list[Deployment]] = {}
    for d in deployments:
        key = ("camera", d.camera_id) if d.camera_id else ("location", d.location_id or d.location_name or d.deployment_id)
        by_device.setdefault(key, []).append(d)
    for (kind, value), group in by_device.items():
        group.sort(key=lambda d: d.start)
        for a, b in zip(group, group[1:]):
            if b.start < a.end:
                raise ConfigError(f"{name}: deployments {a.deployment_id!r} and {b.deployment_id!r} of {kind} "
                                  f"{value!r} overlap ({a.end.isoformat()} > {b.start.isoformat()})")


class PathPattern:
    """Maps a file path to the deployment fields it names. The pattern is matched against the path
    relative to the archive's root (one of ``roots``: the sources the footage was ingested from):
    ``{locationName}/{cameraID}/**`` matches ``<root>/site-3/cam-7/2026/clip.mp4`` giving locationName
    site-3 and cameraID cam-7. ``{field}`` is (part of) one path part, ``*`` any text within a part,
    ``**`` any number of parts."""

    FIELDS = ("deploymentID", "locationID", "locationName", "cameraID")

    def __init__(self, pattern: str, roots: Iterable[str] = ()):
        self.pattern = pattern.strip().strip("/")
        self.roots = sorted({r.replace("\\", "/").rstrip("/") + "/" for r in roots}, key=len, reverse=True)
        names = re.findall(r"\{([^{}]*)\}", self.pattern)
        unknown = [n for n in names if n not in self.FIELDS]
        if not names or unknown:
            raise ConfigError(f"path pattern {pattern!r} must name fields among {', '.join(self.FIELDS)} in braces"
                              + (f"; unknown: {unknown}" if unknown else ""))
        regex = ""
        for token in re.split(r"(\{[^{}]*\}|\*\*/?|\*)", self.pattern):
            if token.startswith("{"):
                regex += f"(?P<{token[1:-1]}>[^/]+)"
            elif token.startswith("**"):
                regex += "(?:.*/)?" if token.endswith("/") else ".*"
            elif token == "*":
                regex += "[^/]*"
            else:
                regex += re.escape(token)
        self._regex = re.compile(regex)

    def relative(self, uri: str) -> str:
        """The path under the longest root that holds it (the path itself under none)."""
        path = uri.replace("\\", "/")
        return next((path[len(r):] for r in self.roots if path.startswith(r)), path.lstrip("/"))

    def fields(self, uri: str) -> dict[str, str] | None:
        """The fields ``uri`` names, or None when it does not match."""
        found = self._regex.fullmatch(self.relative(uri))
        return found.groupdict() if found else None

    def candidates(self, uri: str, deployments: Iterable[Deployment]) -> list[Deployment]:
        """The deployments whose fields equal what the path names (any time)."""
        named = self.fields(uri)
        if named is None:
            return []
        return [d for d in deployments if all(d.fields.get(k) == v for k, v in named.items())]
