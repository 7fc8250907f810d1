"""Ingest: list the video and image files under some sources, probe new ones on Ray, commit them to the lake.

    ListMedia (driver) -> skip known files -> ProbeMedia (Ray Data tasks) -> videos / images / errors / runs
    -> image sets (bursts of each folder's images: vidlake.jobs.image_sets)

One ``videos`` (or ``images``) row per distinct content (sha256); the same bytes under two names are one
video with both URIs. A file already in the lake with the same size, or already recorded as bad with the same
size and mtime, is not read again, so a re-run over the same sources writes nothing new.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from vidlake.errors import ConfigError, JobFailed
from vidlake.jobs.image_sets import commit_sets
from vidlake.operators.list import ListMedia
from vidlake.operators.probe import ProbeMedia
from vidlake.operators.step import Resources
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.lease import Lease
from vidlake.platform.lake.runs import RunRecord
from vidlake.platform.runtime import check_local_sources, print_summary, progress_bar
from vidlake.platform.runtime.executors import Executor, RayExecutor
from vidlake.platform.storage import check_lake_reachable, storage_for

__all__ = ["IngestResult", "run_ingest"]


@dataclass
class IngestResult:
    run_id: str
    found: int = 0
    new: int = 0  # new distinct videos
    known: int = 0  # files whose content was already in the lake (or listed twice in this run)
    changed: int = 0  # known paths that now hold other content (re-identified; the old content keeps its rows)
    damaged: int = 0  # readable only in part (committed, with an errors row)
    failed: int = 0  # unusable files recorded in errors this run
    skipped_failed: int = 0  # files already recorded as bad, unchanged since
    seconds: float = 0.0
    bytes_probed: int = 0
    video_ids: list[str] = field(default_factory=list)  # new videos
    source_video_ids: set[str] = field(default_factory=set)  # every readable video under the sources
    images_new: int = 0  # new distinct images
    images_known: int = 0  # image files whose content was already in the lake
    sets_new: int = 0  # image sets not in the lake before
    source_set_ids: set[str] = field(default_factory=set)  # every image set under the sources


def run_ingest(settings: Settings, sources: list[str], show: bool = True, executor: Executor | None = None) -> IngestResult:
    """Run one ingest. Raises ``StorageError`` for unreachable sources/lake, ``JobFailed`` when
    the sources hold no readable video at all. ``executor``: RayExecutor (default) or LocalExecutor."""
    lake = Lake(settings.lake.uri, settings.storage)
    check_lake_reachable(lake.uri, settings.storage)
    if executor is None or isinstance(executor, RayExecutor):
        check_local_sources(sources, settings.ray)
    manifest = settings.ingest.set_manifest if settings.ingest.image_sets == "manifest" else None
    if manifest and not storage_for(manifest, settings.storage).exists(manifest):
        raise ConfigError(f"the image set manifest {manifest} does not exist (ingest.set_manifest)")
    files = list(ListMedia(settings.ingest, settings.storage)(sources))
    if not files:
        endings = " ".join((*settings.ingest.extensions, *settings.ingest.image_extensions))
        raise JobFailed(f"no video or image files under {', '.join(sources)} (extensions: {endings})")

    record = RunRecord(lake, "ingest", sources=list(sources), spec_json=settings.model_dump_json(), files_found=len(files))
    result = IngestResult(run_id=record.run_id, found=len(files))
    with record:
        known = _known_content(lake)
        seen = {f["uri"]: f for f in lake.read("files").to_pylist()}
        errors = lake.read("errors", columns=["uri", "stage", "size", "mtime"])
        todo, unchanged = _unprocessed(files, known, seen, errors, settings.ingest.verify, result)
        probed = _probe(todo, settings, executor or RayExecutor(settings.ray), show)
        result = _commit_videos(lake, probed, unchanged, result)  # merged with what is there now
        listed = {f["uri"] for f in files}
        result.source_video_ids = {v["video_id"] for v in lake.read("videos", columns=["video_id", "uris"]).to_pylist()
                                   if listed.intersection(v["uris"])}
        result.sets_new, set_ids = commit_sets(lake, settings, listed, result.run_id)
        result.source_set_ids = set(set_ids)
        readable = result.new + result.known + result.images_new + result.images_known
        result.seconds = record.seconds
        record.finish("completed" if readable else "failed",
                      None if readable else "no readable video or image in the sources",
                      metrics={"damaged": result.damaged, "skipped_failed": result.skipped_failed,
                               "changed": result.changed, "bytes_probed": result.bytes_probed,
                               "images_new": result.images_new, "images_known": result.images_known,
                               "sets_new": result.sets_new},
                      videos_new=result.new, videos_known=result.known, failed=result.failed)
    if show:
        _print(result, lake)
    if not readable:
        raise JobFailed(f"no readable video or image among {result.found} files ({result.failed} failed); see `errors` "
                        f"in {lake.uri}")
    return result


def _known_content(lake: Lake) -> list[dict]:
    """Every known content with its paths and size: videos, and images (their id as ``video_id``)."""
    return lake.read("videos", columns=["video_id", "uris", "size"]).to_pylist() + _known_images(lake)


def _known_images(lake: Lake) -> list[dict]:
    """The ``images`` rows shaped as ``videos`` rows (id in ``video_id``, ``uris``, ``size``)."""
    if not lake.exists("images"):
        return []
    return [{"video_id": i["image_id"], "uris": i["uris"], "size": i["size"]}
            for i in lake.read("images", columns=["image_id", "uris", "size"]).to_pylist()]


def _unprocessed(files: list[dict], known_videos: list[dict], seen: dict[str, dict], errors: Any, verify: str,
                 result: IngestResult) -> tuple[list[dict], list[dict]]:
    """(files to probe: new, changed, or never seen; known files not read again, with their video_id).

    A path is known when the ``files`` table saw it with the same size and modification time (and
    ``verify`` is not ``hash``). A lake written before ``files`` existed knows paths by size alone, once:
    this ingest records their times."""
    video_of_uri = {uri: v for v in known_videos for uri in v["uris"]}
    bad = {(e["uri"], e["size"], e["mtime"]) for e in errors.to_pylist() if e["stage"] == "probe"}
    todo, unchanged = [], []
    for f in files:
        record, video = seen.get(f["uri"]), video_of_uri.get(f["uri"])
        if record is not None:
            same = (record["size"], record["mtime"]) == (f["size"], f["mtime"]) and record["video_id"] is not None
        else:  # a lake from before the files table
            same = video is not None and video["size"] == f["size"]
        if same and verify != "hash" and video is not None:
            if f.get("kind") == "image":
                result.images_known += 1
            else:
                result.known += 1
            unchanged.append({**f, "video_id": video["video_id"]})
        elif (f["uri"], f["size"], f["mtime"]) in bad:
            result.skipped_failed += 1
        else:
            todo.append(f)
    return todo, unchanged


def _probe(files: list[dict], settings: Settings, executor: Executor, show: bool) -> list[dict]:
    """The ingest's step list, ``[ProbeMedia]``, over ``files``, streamed back to the driver."""
    if not files:
        return []
    probe = ProbeMedia(settings.storage, settings.ingest, Resources(num_cpus=settings.ingest.probe_cpus))
    out: list[dict] = []
    with progress_bar("probing", total=len(files)) as bar:
        failed = 0
        for row in executor.run([probe], files):
            out.append(dict(row))
            failed += row["status"] != "ok"
            bar.advance(1, f"{failed} failed" if failed else "")
    return out


def _commit_videos(lake: Lake, probed: list[dict], unchanged: list[dict], result: IngestResult) -> IngestResult:
    """Merge the probed files into ``videos`` and record every listed path in ``files`` (then the
    ``errors``), against the tables as they are at commit time, under the lake's ``videos`` lease (and, should a commit still lose a race, read and merge
    again), so that two ingests at once never lose a path. Returns the result with this ingest's counts."""
    from deltalake.exceptions import CommitFailedError
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

    @retry(retry=retry_if_exception_type(CommitFailedError), stop=stop_after_attempt(10),
           wait=wait_random_exponential(multiplier=0.1, max=3.0), reraise=True)
    def commit() -> tuple[IngestResult, list[dict]]:
        attempt = copy.deepcopy(result)
        with Lease(lake.uri, "videos", lake.storage):  # one ingest at a time reads, merges and commits paths
            known = lake.read("videos", columns=["video_id", "uris", "size"]).to_pylist()
            seen = {f["uri"]: f for f in lake.read("files").to_pylist()}
            videos, errors = _plan_writes([r for r in probed if r.get("kind") != "image"], known, seen, attempt)
            lake.upsert("videos", videos, update_columns=["uris"], retry_conflicts=False)
            stills = [r for r in probed if r.get("kind") == "image"]
            if stills:
                images, image_errors = _plan_image_writes(stills, lake, seen, attempt)
                lake.upsert("images", images, update_columns=["uris"], retry_conflicts=False)
                errors += image_errors
            now = datetime.now(timezone.utc)
            lake.upsert("files", [{**{k: f[k] for k in ("uri", "size", "mtime", "video_id")}, "run_id": result.run_id,
                                   "seen_at": now} for f in [*unchanged, *probed]],
                        update_columns=["size", "mtime", "video_id", "run_id", "seen_at"])
        return attempt, errors

    attempt, errors = commit()
    lake.append("errors", errors)  # errors are appended: two ingests that find one bad file both say so
    return attempt


_FACTS = {  # what a new row of each table takes from its first probe row
    "videos": ("size", "duration_s", "fps", "frames", "width", "height", "codec", "rotation", "has_audio", "damage"),
    "images": ("size", "format", "width", "height", "orientation", "mode", "bit_depth", "has_alpha", "captured_at",
               "captured_local", "utc_offset", "captured_at_source"),
}


def _plan_image_writes(probed: list[dict], lake: Lake, seen: dict[str, dict],
                       result: IngestResult) -> tuple[list[dict], list[dict]]:
    """``_plan_writes`` for the probed images, against the ``images`` table; counts go to ``images_*``."""
    counts = IngestResult(run_id=result.run_id)
    rows, errors = _plan_writes(probed, _known_images(lake), seen, counts, table="images")
    result.images_new += counts.new
    result.images_known += counts.known
    result.changed += counts.changed
    result.failed += counts.failed
    result.bytes_probed += counts.bytes_probed
    return rows, errors


def _plan_writes(probed: list[dict], known_videos: list[dict], seen: dict[str, dict],
                 result: IngestResult, table: str = "videos") -> tuple[list[dict], list[dict]]:
    """Group probe rows by content: new videos (or images), new URIs of known ones, and error rows. A known
    path that now holds other content is counted as ``changed``. Rows of ``images`` name the content
    ``image_id``."""
    now = datetime.now(timezone.utc)
    known = {v["video_id"]: v for v in known_videos}
    before = {uri: v["video_id"] for v in known_videos for uri in v["uris"]}
    before.update({uri: f["video_id"] for uri, f in seen.items() if f["video_id"] is not None})
    reprobed = {row["uri"] for row in probed}
    errors: list[dict] = []
    by_id: dict[str, list[dict]] = defaultdict(list)
    for row in probed:
        result.bytes_probed += row["size"] or 0
        if row["status"] != "ok":
            result.failed += 1
            errors.append(_error_row(row, result.run_id, now, row["error_kind"], row["error"]))
            continue
        by_id[row["video_id"]].append(row)
        if before.get(row["uri"]) not in (None, row["video_id"]):
            result.changed += 1
        if row.get("damage"):
            result.damaged += 1
            kind = "truncated" if row["damage"].startswith("truncated") else "corrupt"
            errors.append(_error_row(row, result.run_id, now, kind, row["damage"]))

    key = "video_id" if table == "videos" else "image_id"
    videos: list[dict] = []
    for video_id, rows in by_id.items():
        uris = sorted({r["uri"] for r in rows})
        if video_id in known:
            result.known += len(uris)
            old = [u for u in known[video_id]["uris"] if u not in reprobed]
            videos.append({key: video_id, "uris": sorted(set(old) | set(uris))})
            continue
        result.new += 1
        result.known += len(uris) - 1
        result.video_ids.append(video_id)
        facts = {k: rows[0][k] for k in _FACTS[table]}
        videos.append({key: video_id, "uris": uris, **facts, "first_seen": now, "run_id": result.run_id})
    # a URI whose bytes changed no longer belongs to the video it used to show
    for video_id, video in known.items():
        if video_id not in by_id and reprobed.intersection(video["uris"]):
            videos.append({key: video_id, "uris": sorted(set(video["uris"]) - reprobed)})
    return videos, errors


def _error_row(row: dict, run_id: str, now: datetime, kind: str, message: str) -> dict:
    return {
        "uri": row["uri"], "video_id": row.get("video_id"), "stage": "probe", "error_kind": kind,
        "message": message, "size": row["size"], "mtime": row["mtime"], "run_id": run_id, "at": now,
    }


def _print(result: IngestResult, lake: Lake) -> None:
    rate = result.bytes_probed / 1e6 / result.seconds if result.seconds else 0.0
    print_summary(
        f"ingest {result.run_id} -> {lake.uri}",
        [
            ("files found", result.found),
            ("new videos", result.new),
            ("already known", result.known),
            *((("new images", result.images_new), ("images already known", result.images_known),
               ("new image sets", result.sets_new)) if result.images_new or result.images_known else ()),
            ("changed (new content at a known path)", result.changed),
            ("damaged (partly readable)", result.damaged),
            ("failed", result.failed),
            ("skipped (known bad, unchanged)", result.skipped_failed),
            ("seconds", result.seconds),
            ("throughput (MB/s probed)", rate),
        ],
    )
