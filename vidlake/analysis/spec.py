"""Analysis specs: what ``vidlake analyze`` computes over the lake, as pydantic models read from YAML.

An analysis file (or the ``analyses:`` section of a job spec) names the deployments and a list of
analyses. Each analysis is versioned like a prompt: its ``fingerprint`` (``name@version#hash of its
settings``) is on every result row, so results say what produced them and a changed analysis is
recomputed rather than mixed with old rows.

```yaml
deployments:
  file: deployments.csv                 # Camtrap DP deployments (+ timezone, clockOffset, pixelsPerMetre)
  media: media.csv                      # optional: Camtrap DP media rows (a timestamp per file)
  path_pattern: "{locationName}/{cameraID}/**"
  filename_time: "%Y%m%d_%H%M%S"        # optional: capture times in file names
analyses:
  - {name: deer-per-hour, version: 1, kind: counts, queries: [deer], bin: hour, clock: local, event_gap_s: 300}
  - name: stop-line
    version: 1
    kind: tracks
    queries: [cars]
    lines: {crossing-3: [{name: stop, start: [0.1, 0.6], end: [0.9, 0.6]}]}
    zones: {crossing-3: [{name: box, polygon: [[0.3, 0.3], [0.7, 0.3], [0.7, 0.7], [0.3, 0.7]]}]}
```
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vidlake.analysis.shapes import Line, Zone
from vidlake.errors import ConfigError, invalid
from vidlake.platform.config import read_yaml_mapping

__all__ = ["Analysis", "AnalysisFile", "CountsAnalysis", "DeploymentsSpec", "TracksAnalysis", "load_analysis_file"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentsSpec(_Spec):
    """Where the deployments are and how files map to them (vidlake/analysis/deployments.py, placement.py)."""

    file: str = Field(description="Camtrap DP deployments, CSV or YAML (local path or s3:// URI).")
    media: str | None = Field(None, description="Camtrap DP media CSV: a timestamp per file (filePath/fileName).")
    path_pattern: str = Field(description="How a path names its deployment, e.g. '{locationName}/{cameraID}/**'.")
    roots: list[str] = Field(default_factory=list, description="Archive roots the pattern is relative to; "
                             "default: the sources the lake's runs ingested.")
    filename_time: str | None = Field(None, description="strftime codes of a capture time in file names.")


class _Analysis(_Spec):
    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.\-_]+$")
    queries: list[str] = Field(min_length=1, description="The objects, as the tasks' queries name them.")
    task: Literal["count", "point", "track"] = Field("count", description="Whose rows: the task's points or tracks.")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, version: object) -> object:
        return str(version) if isinstance(version, (int, float)) and not isinstance(version, bool) else version

    @property
    def fingerprint(self) -> str:
        """``name@version#hash`` of every setting: on every result row."""
        return f"{self.name}@{self.version}#{hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:8]}"


class CountsAnalysis(_Analysis):
    """Per deployment, query and time bin: detections, individuals (distinct object ids first seen in the
    bin), MaxN (the most objects on one sampled frame), independent events (detections closer than
    ``event_gap_s`` are one event, counted in the bin where it starts), and effort (recorded minutes);
    and per deployment and query, presence with first and last seen (``analysis_presence``)."""

    kind: Literal["counts"] = "counts"
    bin: Literal["minute", "hour", "day"] = "hour"
    clock: Literal["local", "utc"] = Field("local", description="Bins of the deployment's wall clock, or of UTC.")
    event_gap_s: float = Field(300.0, ge=0)


class TracksAnalysis(_Analysis):
    """Per track of the track task: path length, speed and duration (in metres too where the deployment
    has ``pixelsPerMetre``); crossings of ``lines`` (in/out) and visits to ``zones`` (dwell), both given
    per deployment in normalised coordinates (vidlake/analysis/geometry.py)."""

    kind: Literal["tracks"] = "tracks"
    task: Literal["track"] = "track"
    max_gap_s: float | None = Field(None, gt=0, description="A step over a longer gap (the object was away) "
                                    "adds no path and ends a zone visit.")
    lines: dict[str, list[Line]] = Field(default_factory=dict, description="deployment id -> lines.")
    zones: dict[str, list[Zone]] = Field(default_factory=dict, description="deployment id -> zones.")


Analysis = Annotated[Union[CountsAnalysis, TracksAnalysis], Field(discriminator="kind")]


class AnalysisFile(_Spec):
    """An analysis file: the deployments and the analyses (``lake`` may be given here or on the command line)."""

    lake: str | None = None
    deployments: DeploymentsSpec
    analyses: list[Analysis] = Field(min_length=1)

    @field_validator("analyses")
    @classmethod
    def _unique(cls, analyses: list) -> list:
        names = [a.name for a in analyses]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"analysis names must be unique: {twice}")
        return analyses


def load_analysis_file(path: str | Path) -> AnalysisFile:
    """Read and check an analysis file; relative paths in it are taken from its folder. ``ConfigError``
    with every problem, before any work."""
    path = Path(path)
    data = read_yaml_mapping(path, "analysis file", "a mapping with deployments: and analyses:")
    try:
        spec = AnalysisFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {invalid(exc, 'file')}") from None
    return _relative_to(spec, path.parent)


def _relative_to(spec: AnalysisFile, folder: Path) -> AnalysisFile:
    def local(p: str | None) -> str | None:
        if p is None or "://" in p or Path(p).is_absolute():
            return p
        return str(folder / p)

    d = spec.deployments
    deployments = d.model_copy(update={"file": local(d.file), "media": local(d.media)})
    return spec.model_copy(update={"deployments": deployments, "lake": local(spec.lake)})
