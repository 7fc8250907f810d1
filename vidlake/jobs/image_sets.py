"""The ingest's last step for stills: the images under the sources grouped into sets, committed to ``sets``.

A set is the image analogue of a video window (docs/images.md): camera-trap bursts (each folder's images
closer in capture time than ``ingest.burst_gap_s``, at most ``ingest.set_max_images`` per set, longer
runs split evenly; vidlake.platform.media.sets). Set ids hash their members and the grouping
parameters, so a re-run finds every set in the lake and writes nothing; a burst that gains an image is
a new set beside the old one.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from vidlake.platform.config import IngestSettings
from vidlake.platform.lake import Lake
from vidlake.platform.media.sets import burst_sets

__all__ = ["commit_sets"]


def commit_sets(lake: Lake, ingest: IngestSettings, listed: set[str], run_id: str) -> int:
    """Group the lake's images that lie under this ingest's files (``listed`` paths) into bursts and add
    the sets the lake does not have yet; returns how many were new."""
    if not lake.exists("images"):
        return 0
    images = []
    for image in lake.read("images").to_pylist():
        uri = next((u for u in image["uris"] if u in listed), None)
        if uri is None:
            continue
        images.append({"uri": uri, "media_id": image["image_id"], "captured_at": _capture_time(image)})
    if not images:
        return 0
    sets = burst_sets(images, gap_s=ingest.burst_gap_s, max_per_set=ingest.set_max_images)
    params = json.dumps({"gap_s": ingest.burst_gap_s, "max_per_set": ingest.set_max_images})
    now = datetime.now(timezone.utc)
    rows = [{
        "set_id": s["set_id"], "kind": s["kind"], "image_ids": list(s["members"]), "uris": list(s["uris"]),
        "folder": s["folder"], "start_local": _wall_clock(s["start"]), "end_local": _wall_clock(s["end"]),
        "params_json": params, "first_seen": now, "run_id": run_id,
    } for s in sets]
    return lake.insert_missing("sets", rows)


def _capture_time(image: dict) -> datetime:
    """An image's capture time as probed: aware in the camera's own zone (EXIF with offset), naive (EXIF
    without one: compared as wall-clock, see sets.py), or the file's time in UTC."""
    source, local = image["captured_at_source"], image["captured_local"]
    if source == "exif_offset":
        sign = -1 if image["utc_offset"].startswith("-") else 1
        hours, minutes = (int(x) for x in image["utc_offset"][1:].split(":"))
        return local.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return local if source == "exif_local" else image["captured_at"]


def _wall_clock(when: datetime) -> datetime:
    """A capture time as the wall-clock time it shows (its own zone's clock; UTC for a file time)."""
    return when.replace(tzinfo=None)
