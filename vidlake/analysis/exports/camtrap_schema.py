"""Camtrap DP 1.0 (https://camtrap-dp.tdwg.org): its three tables as Table Schemas, the package's required
metadata, and a validation that needs no network.

A package names its profile and table schemas by URL (``PROFILE_URL``, ``SCHEMA_URLS``), so R's camtrapdp,
frictionless and GBIF read it as Camtrap DP 1.0. ``validate_camtrap_dp`` checks a package folder with
frictionless against vidlake's own rendering of those schemas (types, required, enums, ranges, patterns,
primary and foreign keys) in place of the URLs, and checks the package metadata the profile requires
here rather than by fetching the profile.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "PROFILE_URL", "SCHEMA_URLS", "TABLE_SCHEMAS", "metadata_problems", "report_problems",
           "validate_camtrap_dp"]

_BASE = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0"
PROFILE_URL = f"{_BASE}/camtrap-dp-profile.json"
SCHEMA_URLS = {name: f"{_BASE}/{name}-table-schema.json" for name in ("deployments", "media", "observations")}
_DATETIME = "%Y-%m-%dT%H:%M:%S%z"  # ISO 8601 with a zone designator, no fractions


def _field(name: str, type_: str, required: bool = False, **constraints: Any) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": type_, "constraints": {"required": required, **constraints}}
    if type_ == "datetime":
        field["format"] = _DATETIME
    return field


_DEPLOYMENTS = [
    _field("deploymentID", "string", True, unique=True),
    _field("locationID", "string"),
    _field("locationName", "string"),
    _field("latitude", "number", True, minimum=-90, maximum=90),
    _field("longitude", "number", True, minimum=-180, maximum=180),
    _field("coordinateUncertainty", "integer", minimum=1),
    _field("deploymentStart", "datetime", True),
    _field("deploymentEnd", "datetime", True),
    _field("setupBy", "string"),
    _field("cameraID", "string"),
    _field("cameraModel", "string"),
    _field("cameraDelay", "integer", minimum=0),
    _field("cameraHeight", "number", minimum=0),
    _field("cameraDepth", "number", minimum=0),
    _field("cameraTilt", "integer", minimum=-90, maximum=90),
    _field("cameraHeading", "integer", minimum=0, maximum=360),
    _field("detectionDistance", "number", minimum=0),
    _field("timestampIssues", "boolean"),
    _field("baitUse", "boolean"),
    _field("featureType", "string", enum=["roadPaved", "roadDirt", "trailHiking", "trailGame", "roadUnderpass",
                                          "roadOverpass", "roadBridge", "culvert", "burrow", "nestSite", "carcass",
                                          "waterSource", "fruitingTree"]),
    _field("habitat", "string"),
    _field("deploymentGroups", "string"),
    _field("deploymentTags", "string"),
    _field("deploymentComments", "string"),
]

_MEDIA = [
    _field("mediaID", "string", True, unique=True),
    _field("deploymentID", "string", True),
    _field("captureMethod", "string", enum=["activityDetection", "timeLapse"]),
    _field("timestamp", "datetime", True),
    # a URL, or a path inside the package: never absolute, home-relative or climbing out with ".."
    _field("filePath", "string", True, pattern=r"^(?=^[^./~])(^((?!\.{2}).)*$).*$"),
    _field("filePublic", "boolean", True),
    _field("fileName", "string"),
    _field("fileMediatype", "string", True, pattern=r"^(image|video|audio)/.*$"),
    _field("exifData", "any"),
    _field("favorite", "boolean"),
    _field("mediaComments", "string"),
]

_OBSERVATIONS = [
    _field("observationID", "string", True, unique=True),
    _field("deploymentID", "string", True),
    _field("mediaID", "string"),
    _field("eventID", "string"),
    _field("eventStart", "datetime", True),
    _field("eventEnd", "datetime", True),
    _field("observationLevel", "string", True, enum=["media", "event"]),
    _field("observationType", "string", True,
           enum=["animal", "human", "vehicle", "blank", "unknown", "unclassified"]),
    _field("cameraSetupType", "string", enum=["setup", "calibration"]),
    _field("scientificName", "string"),
    _field("count", "integer", minimum=1),
    _field("lifeStage", "string", enum=["adult", "subadult", "juvenile"]),
    _field("sex", "string", enum=["female", "male"]),
    _field("behavior", "string"),
    _field("individualID", "string"),
    _field("individualPositionRadius", "number", minimum=0),
    _field("individualPositionAngle", "number", minimum=-90, maximum=90),
    _field("individualSpeed", "number", minimum=0),
    _field("bboxX", "number", minimum=0, maximum=1),
    _field("bboxY", "number", minimum=0, maximum=1),
    _field("bboxWidth", "number", minimum=1e-15, maximum=1),
    _field("bboxHeight", "number", minimum=1e-15, maximum=1),
    _field("classificationMethod", "string", enum=["human", "machine"]),
    _field("classifiedBy", "string"),
    _field("classificationTimestamp", "datetime"),
    _field("classificationProbability", "number", minimum=0, maximum=1),
    _field("observationTags", "string"),
    _field("observationComments", "string"),
]


def _foreign(field: str, table: str) -> dict[str, Any]:
    return {"fields": [field], "reference": {"resource": table, "fields": [field]}}


TABLE_SCHEMAS: dict[str, dict[str, Any]] = {
    "deployments": {"fields": _DEPLOYMENTS, "primaryKey": ["deploymentID"], "missingValues": [""]},
    "media": {"fields": _MEDIA, "primaryKey": ["mediaID"], "missingValues": [""],
              "foreignKeys": [_foreign("deploymentID", "deployments")]},
    "observations": {"fields": _OBSERVATIONS, "primaryKey": ["observationID"], "missingValues": [""],
                     "foreignKeys": [_foreign("deploymentID", "deployments"), _foreign("mediaID", "media")]},
}
COLUMNS = {name: [f["name"] for f in schema["fields"]] for name, schema in TABLE_SCHEMAS.items()}

_PROJECT_REQUIRED = ("title", "samplingDesign", "captureMethod", "individualAnimals", "observationLevel")
_SAMPLING_DESIGNS = ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic")
_ROLES = ("contact", "principalInvestigator", "rightsHolder", "publisher", "contributor")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def metadata_problems(package: dict[str, Any]) -> list[str]:
    """What the Camtrap DP 1.0 profile requires of ``datapackage.json`` and ``package`` lacks; [] when fine."""
    required = ("profile", "created", "contributors", "project", "spatial", "temporal", "taxonomic")
    problems = [f"missing the required property {key!r}" for key in required if key not in package]
    if "profile" in package and package["profile"] != PROFILE_URL:
        problems.append(f"profile is {package['profile']!r}, not {PROFILE_URL}")
    contributors = package.get("contributors", [])
    if not isinstance(contributors, list) or any(not isinstance(c, dict) or not c.get("title") for c in contributors):
        problems.append("contributors must be a list of objects, each with a title")
    else:
        problems += [f"contributor {c['title']!r} has the role {c['role']!r}, not one of {list(_ROLES)}"
                     for c in contributors if "role" in c and c["role"] not in _ROLES]
    project = package.get("project", {})
    problems += [f"project lacks {key!r}" for key in _PROJECT_REQUIRED if key not in project]
    if project.get("samplingDesign", "opportunistic") not in _SAMPLING_DESIGNS:
        problems.append(f"project.samplingDesign {project['samplingDesign']!r} is not one of {list(_SAMPLING_DESIGNS)}")
    if not set(project.get("captureMethod", ["activityDetection"])) <= {"activityDetection", "timeLapse"}:
        problems.append("project.captureMethod holds values other than activityDetection, timeLapse")
    if not set(project.get("observationLevel", ["media"])) <= {"media", "event"}:
        problems.append("project.observationLevel holds values other than media, event")
    if not isinstance(project.get("individualAnimals", False), bool):
        problems.append("project.individualAnimals must be true or false")
    if "spatial" in package and not (isinstance(package["spatial"], dict) and "type" in package["spatial"]):
        problems.append("spatial must be a GeoJSON object (with a type)")
    temporal = package.get("temporal", {})
    problems += [f"temporal.{key} must be a date YYYY-MM-DD" for key in ("start", "end")
                 if "temporal" in package and not _DATE.match(str(temporal.get(key, "")))]
    if any(not isinstance(t, dict) or not t.get("scientificName") for t in package.get("taxonomic", [])):
        problems.append("every taxonomic entry needs a scientificName")
    resources = {r.get("name"): r for r in package.get("resources", [])}
    for name, url in SCHEMA_URLS.items():
        r = resources.get(name)
        if r is None:
            problems.append(f"no {name!r} resource")
        elif r.get("profile") != "tabular-data-resource" or r.get("schema") != url or not r.get("path"):
            problems.append(f"resource {name!r} needs a path, profile tabular-data-resource and schema {url}")
    return problems


def validate_camtrap_dp(folder: str | Path):
    """A frictionless ``Report`` of the package in ``folder``: its tables against vidlake's rendering of the
    Camtrap DP 1.0 schemas (keys across tables included), and its metadata against the profile's
    requirements (reported as package errors). ``report.valid`` says whether it is a Camtrap DP 1.0 package."""
    import frictionless

    started = time.monotonic()
    folder = Path(folder)
    descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    errors = [frictionless.errors.PackageError(note=p) for p in metadata_problems(descriptor)]
    offline = {key: value for key, value in descriptor.items() if key != "profile"}
    offline["resources"] = [{**r, "schema": TABLE_SCHEMAS[r["name"]]} if r.get("name") in TABLE_SCHEMAS else r
                            for r in descriptor.get("resources", [])]
    try:
        report = frictionless.Package(offline, basepath=str(folder)).validate()
    except frictionless.FrictionlessException as exc:
        report = frictionless.Report.from_validation(errors=[exc.error])
    if not errors:
        return report
    return frictionless.Report.from_validation(time=time.monotonic() - started, tasks=report.tasks,
                                               errors=[*errors, *report.errors], warnings=report.warnings)


def report_problems(report, most: int = 20) -> list[str]:
    """A frictionless report's errors as lines (``observations: ...``), the first ``most`` of them."""
    lines = [f"package: {e.message}" for e in report.errors]
    lines += [f"{task.name}: {e.message}" for task in report.tasks for e in task.errors]
    return lines[:most] + ([f"... and {len(lines) - most} more"] if len(lines) > most else [])
