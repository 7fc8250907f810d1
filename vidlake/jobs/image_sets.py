"""The ingest's last step for stills: the images under the sources grouped into sets, committed to ``sets``.

A set is the image analogue of a video window (docs/images.md), made as ``ingest.image_sets`` says:
camera-trap bursts (each folder's images closer in capture time than ``ingest.burst_gap_s``, at most
``ingest.set_max_images`` per set, longer runs split evenly), time-lapse groups of
``ingest.timelapse_every``, or the sets a CSV manifest names (vidlake.platform.media.sets). Set ids hash
their members and the grouping parameters, so a re-run finds every set in the lake and writes nothing; a
burst that gains an image is a new set beside the old one.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.media.images import utc_offset_zone
from vidlake.platform.media.sets import burst_sets, capture_offsets, manifest_sets, timelapse_sets
from vidlake.platform.storage import storage_for

__all__ = ["capture_time", "commit_sets", "set_item", "set_items"]


def commit_sets(lake: Lake, settings: Settings, listed: set[str], run_id: str) -> tuple[int, list[str]]:
    """Group the lake's images that lie under this ingest's files (``listed`` paths) into sets and add the
    sets the lake does not have yet; returns how many were new and the ids of every set under the
    sources (new or known). A bad manifest raises ``ConfigError``."""
    ingest = settings.ingest
    if not lake.exists("images"):
        return 0, []
    images = []
    for image in lake.read("images").to_pylist():
        uri = next((u for u in image["uris"] if u in listed), None)
        if uri is None:
            continue
        images.append({"uri": uri, "media_id": image["image_id"], "captured_at": capture_time(image)})
    if not images:
        return 0, []
    if ingest.image_sets == "timelapse":
        sets, params = timelapse_sets(images, ingest.timelapse_every), {"every": ingest.timelapse_every}
    elif ingest.image_sets == "manifest":
        manifest = ingest.set_manifest
        sets = manifest_sets(manifest, images, ingest.set_max_images, storage=storage_for(manifest, settings.storage))
        params = {"manifest": manifest}
    else:
        sets = burst_sets(images, gap_s=ingest.burst_gap_s, max_per_set=ingest.set_max_images)
        params = {"gap_s": ingest.burst_gap_s, "max_per_set": ingest.set_max_images}
    params = json.dumps(params)
    now = datetime.now(timezone.utc)
    rows = [{
        "set_id": s["set_id"], "kind": s["kind"], "label": s.get("label"), "image_ids": list(s["members"]),
        "uris": list(s["uris"]), "folder": s["folder"], "start_local": _wall_clock(s["start"]), "end_local": _wall_clock(s["end"]),
        "params_json": params, "first_seen": now, "run_id": run_id,
    } for s in sets]
    return lake.insert_missing("sets", rows), [s["set_id"] for s in sets]


def set_items(lake: Lake, set_ids: set[str]) -> list[dict]:
    """The step list's input rows for these image sets (``media="set"``), as ``run.video_item`` is for a
    video: ``video_id`` is the set's id (the lake's rows of a set carry it there), ``set_uris``,
    ``set_image_ids`` and ``set_sizes`` (upright width, height) in set order, ``set_times_s`` (capture
    times in seconds after the set's first), the first image's ``width``/``height``, ``duration_s``
    the set's time span."""
    if not set_ids or not lake.exists("sets"):
        return []
    images = {i["image_id"]: i for i in lake.read("images").to_pylist()}
    items = []
    for s in lake.read("sets").to_pylist():
        if s["set_id"] not in set_ids:
            continue
        members = [images[i] for i in s["image_ids"]]
        items.append(set_item(s["set_id"], s["uris"], s["image_ids"], [(m["width"], m["height"]) for m in members],
                              capture_offsets([capture_time(m) for m in members])))
    return items


def set_item(set_id: str, uris: list[str], image_ids: list[str], sizes: list[tuple[int, int]],
             times: list[float]) -> dict:
    """The step list's input row for one image set (or one image: ``vidlake ask photo.jpg``)."""
    return {
        "video_id": set_id, "media": "set", "uri": uris[0], "uris": [uris[0]], "set_uris": list(uris),
        "set_image_ids": list(image_ids), "set_sizes": [list(s) for s in sizes], "set_times_s": list(times),
        "width": sizes[0][0], "height": sizes[0][1], "rotation": 0, "duration_s": max(times),
        "frames": len(uris), "status": "ok",
    }


def capture_time(image: dict) -> datetime:
    """An image's capture time as probed: aware in the camera's own zone (EXIF with offset), naive (EXIF
    without one: compared as wall-clock, see sets.py), or the file's time in UTC."""
    source, local = image["captured_at_source"], image["captured_local"]
    if source == "exif_offset":
        return local.replace(tzinfo=utc_offset_zone(image["utc_offset"]))
    return local if source == "exif_local" else image["captured_at"]


def _wall_clock(when: datetime) -> datetime:
    """A capture time as the wall-clock time it shows (its own zone's clock; UTC for a file time)."""
    return when.replace(tzinfo=None)
