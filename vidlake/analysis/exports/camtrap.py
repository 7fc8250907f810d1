"""The lake as a Camtrap DP 1.0 package: ``deployments.csv``, ``media.csv``, ``observations.csv`` and
``datapackage.json`` (docs/exports.md).

    deployments            -> deployments.csv (times on the deployment's clock, with its offset)
    placements + videos    -> media.csv: one row per dated, placed video
    placements + sets      -> media.csv: one row per image of a dated, placed image set
    points, tracks, counts -> observations.csv: per media and detection task (count, point, track) and
                              query, one machine observation; one blank observation for media a detection
                              task ran on and found nothing in

Footage without a deployment or a start cannot be in Camtrap DP (``deploymentID`` and ``timestamp`` are
required): it is left out and listed in ``Exported.skipped`` with the reason.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import polars as pl

from vidlake import __version__
from vidlake.analysis.exports.camtrap_observations import DETECTION_TASKS, observations
from vidlake.analysis.exports.camtrap_schema import COLUMNS, PROFILE_URL, SCHEMA_URLS
from vidlake.analysis.exports.common import Exported, Skipped, iso_seconds, read_table, slug, write_csv
from vidlake.platform.lake import Lake

__all__ = ["DETECTION_TASKS", "export_camtrap_dp", "media_rows", "package_descriptor"]

_IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "TIFF": "image/tiff", "WEBP": "image/webp",
                "HEIF": "image/heif"}


def export_camtrap_dp(lake: Lake, folder: Path, taxa: dict[str, str] | None = None) -> Exported:
    """Write the package of ``lake`` into ``folder`` (a local folder); ``taxa``: query -> scientific name."""
    result = Exported()
    deployments = _deployment_rows(read_table(lake, "deployments").to_pylist(), result.skipped)
    zones = {d["deploymentID"]: z for d, z in deployments}
    images = read_table(lake, "images").to_pylist() if lake.exists("sets") else []
    sets = read_table(lake, "sets").to_pylist() if lake.exists("sets") else []
    media = media_rows(read_table(lake, "placements").to_pylist(), read_table(lake, "videos").to_pylist(), sets,
                       images, zones, result.skipped)
    detections = pl.concat([
        pl.from_arrow(read_table(lake, table, ["video_id", "task", "task_key", "query", "t", "object_id", "image_id"]))
        for table in ("points", "tracks")], how="vertical_relaxed")
    runs = {r["run_id"]: r["ended_at"] or r["started_at"]
            for r in read_table(lake, "runs", ["run_id", "started_at", "ended_at"]).to_pylist()}
    outputs = pl.from_arrow(read_table(lake, "outputs", ["video_id", "task", "task_key", "query", "model_id",
                                                         "model_revision", "run_id"]))
    counts = pl.from_arrow(read_table(lake, "counts", ["video_id", "task_key", "query", "count", "method"]))
    rows = observations(media, detections, outputs, counts, runs, taxa or {}, result.skipped)
    tables = {"deployments": [d for d, _ in deployments], "media": [m["row"] for m in media], "observations": rows}
    for name, table in tables.items():
        result.rows[f"{name}.csv"] = write_csv(folder / f"{name}.csv", COLUMNS[name], table)
    descriptor = package_descriptor(lake.uri, tables)
    (folder / "datapackage.json").write_text(json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    result.rows["datapackage.json"] = 1
    return result


def _deployment_rows(deployments: list[dict], skipped: list[Skipped]) -> list[tuple[dict[str, Any], str]]:
    """(Camtrap DP row, IANA zone) of each deployment that has coordinates (Camtrap DP requires them)."""
    out = []
    for d in sorted(deployments, key=lambda d: d["deployment_id"]):
        if d["latitude"] is None or d["longitude"] is None:
            skipped.append(Skipped(f"deployment {d['deployment_id']}",
                                   "no latitude/longitude (required by Camtrap DP); its media are left out too"))
            continue
        zone = d["timezone"] or "UTC"
        out.append(({"deploymentID": d["deployment_id"], "locationID": d["location_id"],
                     "locationName": d["location_name"], "latitude": d["latitude"], "longitude": d["longitude"],
                     "deploymentStart": iso_seconds(d["start"], zone),
                     "deploymentEnd": iso_seconds(d["end"], zone, up=True),
                     "cameraID": d["camera_id"], "deploymentTags": f"timezone:{zone}"}, zone))
    return out


def media_rows(placements: list[dict], videos: list[dict], sets: list[dict], images: list[dict],
               zones: dict[str, str], skipped: list[Skipped]) -> list[dict[str, Any]]:
    """One media entry per dated, placed video and per image of a dated, placed set: its Camtrap DP ``row``
    and what the observations need (``source``: the lake's video or set id, ``image_id``, ``start``, ``end``,
    ``zone``). Footage that cannot be placed in time and space is added to ``skipped``."""
    from vidlake.jobs.image_sets import capture_time
    from vidlake.platform.media.sets import capture_offsets

    placed = {p["video_id"]: p for p in placements}
    by_image = {i["image_id"]: i for i in images}
    footage = [("video", v["video_id"], v["uris"][0], None) for v in videos if v["uris"]]  # no path: gone
    footage += [("set", s["set_id"], s["folder"] or s["set_id"], s) for s in sets]
    out, seen = [], set()
    for kind, source, name, image_set in footage:
        p = placed.get(source)
        why = _unusable(p, zones)
        if why:
            skipped.append(Skipped(f"{kind} {name}", why))
            continue
        start, end, deployment = p["start_utc"], p["end_utc"] or p["start_utc"], p["deployment_id"]
        zone = zones[deployment]
        if image_set is None:
            out.append(_media(source, None, p["uri"], _video_type(p["uri"]), deployment, zone, start, end))
            continue
        missing = [i for i in image_set["image_ids"] if i not in by_image]
        if missing:
            skipped.append(Skipped(f"set {name}", f"{len(missing)} of its images are not in the images table"))
            continue
        members = [by_image[i] for i in image_set["image_ids"]]
        offsets = capture_offsets([capture_time(m) for m in members])
        for image, uri, offset in zip(members, image_set["uris"] or [m["uris"][0] for m in members], offsets):
            if image["image_id"] in seen:  # an image in two sets is one media file
                continue
            seen.add(image["image_id"])
            when = start + timedelta(seconds=offset - offsets[0])
            kind_of = image["format"] or "unknown"
            out.append(_media(image["image_id"], image["image_id"], uri,
                              _IMAGE_TYPES.get(kind_of, f"image/{kind_of.lower()}"), deployment, zone, when, when,
                              source=source))
    return sorted(out, key=lambda m: (m["row"]["deploymentID"], m["start"], m["row"]["fileName"]))


def _unusable(p: dict | None, zones: dict[str, str]) -> str | None:
    if p is None:
        return "not placed: run `vidlake analyze` (it came after the last analysis)"
    if p["deployment_id"] is None:
        return f"in no deployment ({p['problem'] or 'its path matches none'}): Camtrap DP needs a deploymentID"
    if not p["dated"] or p["start_utc"] is None:
        return f"undated ({p['problem'] or 'no start time'}): Camtrap DP needs a timestamp"
    if p["deployment_id"] not in zones:
        return f"its deployment {p['deployment_id']} is not in the package"
    return None


def _media(media_id: str, image_id: str | None, uri: str, mediatype: str, deployment: str, zone: str,
           start: datetime, end: datetime, source: str | None = None) -> dict[str, Any]:
    row = {"mediaID": media_id, "deploymentID": deployment, "captureMethod": "activityDetection",
           "timestamp": iso_seconds(start, zone), "filePath": _file_url(uri),
           "fileName": PurePosixPath(unquote(uri)).name, "fileMediatype": mediatype, "filePublic": False}
    return {"row": row, "source": source or media_id, "image_id": image_id, "start": start, "end": end, "zone": zone}


def _file_url(uri: str) -> str:
    """A URL for ``filePath`` (Camtrap DP takes a URL, or a path inside the package): local paths become
    ``file://`` URLs; ``..`` (refused by the schema's pattern) is written as ``.%2E``."""
    url = uri if "://" in uri else Path(uri).absolute().as_uri()
    return url.replace("..", ".%2E")


def _video_type(uri: str) -> str:
    guessed, _ = mimetypes.guess_type(PurePosixPath(unquote(uri)).name)
    if guessed and guessed.startswith("video/"):
        return guessed
    return "video/" + (PurePosixPath(uri).suffix.lstrip(".").lower() or "unknown")


def package_descriptor(lake_uri: str, tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """``datapackage.json``: the resources by the Camtrap DP 1.0 schema URLs and the metadata the profile
    requires. Project, contributors and sampling design are what vidlake can know; a publisher edits them."""
    deployments = tables["deployments"]
    lats = [d["latitude"] for d in deployments]
    lons = [d["longitude"] for d in deployments]
    names = sorted({o["scientificName"] for o in tables["observations"] if o.get("scientificName")})
    lake_name = slug(PurePosixPath(lake_uri.rstrip("/")).name)
    return {
        "resources": [{"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource", "format": "csv",
                       "mediatype": "text/csv", "encoding": "utf-8", "schema": url}
                      for name, url in SCHEMA_URLS.items()],
        "profile": PROFILE_URL,
        "name": f"{lake_name}-camtrap-dp",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, lake_uri)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "title": f"Machine observations from the vidlake lake {lake_uri}",
        "contributors": [{"title": "vidlake (machine classifications)", "role": "contributor"}],
        "sources": [{"title": "vidlake", "version": __version__}],
        "project": {"id": lake_name, "title": f"vidlake lake {lake_uri}", "samplingDesign": "opportunistic",
                    "captureMethod": ["activityDetection"], "individualAnimals": False, "observationLevel": ["media"]},
        "spatial": _spatial(lats, lons),
        "temporal": {"start": min(d["deploymentStart"][:10] for d in deployments),
                     "end": max(d["deploymentEnd"][:10] for d in deployments)},
        "taxonomic": [{"scientificName": name} for name in names],
    }


def _spatial(lats: list[float], lons: list[float]) -> dict[str, Any]:
    """GeoJSON of the deployments: their bounding box as a polygon, or a point when they are all at one place."""
    west, south, east, north = min(lons), min(lats), max(lons), max(lats)
    if west == east and south == north:
        return {"type": "Point", "coordinates": [west, south]}
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "bbox": [west, south, east, north], "coordinates": [ring]}
