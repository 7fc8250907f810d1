"""Camtrap DP media-level observations from the detection tasks' rows (Polars over ``points`` and ``tracks``).

For each media file and each (detection task, query) that ran on it, with the task key a run wrote last
for that footage, task and query:

* detections -> one ``animal`` observation: ``count`` the distinct object ids (the most objects on one
  frame where an id is missing; for an image, the points on it), ``eventStart``/``eventEnd`` the first and
  last detection;
* no detections, but a count stated in the answer (``counts.method = stated``) -> an ``animal``
  observation of that count over the whole video;
* nothing found by any of them -> one ``blank`` observation for the media file.

Media no detection task ran on get no observation: they were not looked at, which is not blank. Every
observation is a machine classification naming the model, its revision and the task key (which fixes the
prompt version, query and sampling).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from vidlake.analysis.exports.common import Skipped, iso_seconds, stable_id

__all__ = ["DETECTION_TASKS", "latest_keys", "observations"]

DETECTION_TASKS = ("count", "point", "track")
_KEY = ["video_id", "task_key", "image_id"]


def latest_keys(outputs: pl.DataFrame) -> pl.DataFrame:
    """Per footage (``video_id``: a video or a set), detection task and query: the task key a run wrote
    last, its model and revision, and that run."""
    return (outputs.filter(pl.col("task").is_in(DETECTION_TASKS)).with_columns(pl.col("query").fill_null(""))
            .group_by("video_id", "task", "query", "task_key")
            .agg(pl.col("run_id").max(), pl.col("model_id").first(), pl.col("model_revision").first())
            .sort("run_id", "task_key")
            .group_by("video_id", "task", "query", maintain_order=True).last())


def _summaries(detections: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """Per (footage, task key, image or "" for a video): first and last time and the count."""
    rows = detections.join(keys.select("video_id", "task_key"), on=["video_id", "task_key"], how="semi")
    rows = rows.with_columns(pl.col("image_id").fill_null(""))
    most = rows.group_by(*_KEY, "t").len().group_by(_KEY).agg(max_n=pl.col("len").max())
    summary = rows.group_by(_KEY).agg(
        first_t=pl.col("t").min(), last_t=pl.col("t").max(), n=pl.len(),
        ids=pl.col("object_id").drop_nulls().n_unique(), null_ids=pl.col("object_id").is_null().any())
    summary = summary.join(most, on=_KEY).with_columns(
        count=pl.when(pl.col("image_id") != "").then("n").when("null_ids").then("max_n").otherwise("ids"),
        method=pl.when(pl.col("image_id") != "").then(pl.lit("points_on_image"))
        .when("null_ids").then(pl.lit("max_per_frame")).otherwise(pl.lit("distinct_ids")))
    return summary.join(keys, on=["video_id", "task_key"])


def observations(media: list[dict[str, Any]], detections: pl.DataFrame, outputs: pl.DataFrame,
                 counts: pl.DataFrame, runs: dict[str, datetime], taxa: dict[str, str],
                 skipped: list[Skipped]) -> list[dict[str, Any]]:
    """observations.csv rows for ``media`` (camtrap.media_rows' entries). ``detections``: the rows of
    ``points`` and ``tracks`` (``video_id, task, task_key, query, t, object_id, image_id``); ``outputs``:
    ``video_id, task, task_key, query, model_id, model_revision, run_id``; ``counts``: ``video_id, task_key,
    query, count, method``; ``runs``: run id -> when it ended; ``taxa``: query -> scientific name."""
    keys = latest_keys(outputs)
    by_key = {(m["source"], m["image_id"] or ""): m for m in media}
    sets = {m["source"] for m in media if m["image_id"]}
    unattached = set()  # sets with findings that name no image: no media file to put them on, yet not blank
    out = []
    summaries = _summaries(detections, keys)
    for s in summaries.iter_rows(named=True):
        m = by_key.get((s["video_id"], s["image_id"]))
        if m is None and s["video_id"] in sets:
            unattached.add(s["video_id"])
            skipped.append(Skipped(f"set {s['video_id']}", f"{s['n']} {s['query']!r} detections name no image of "
                                                           "the set: no media file to attach them to"))
        elif m is not None and s["image_id"]:
            out.append(_animal(m, s, s["count"], m["start"], m["start"], s["method"], runs, taxa))
        elif m is not None:
            out.append(_animal(m, s, s["count"], m["start"] + _seconds(s["first_t"]),
                               m["start"] + _seconds(s["last_t"]), s["method"], runs, taxa))
        # else: footage left out of the package, listed in skipped already
    stated = (counts.filter((pl.col("method") == "stated") & (pl.col("count") > 0))
              .select("video_id", "task_key", "count").join(keys, on=["video_id", "task_key"])
              .join(summaries.select("video_id", "task_key"), on=["video_id", "task_key"], how="anti"))
    for s in stated.iter_rows(named=True):
        if (m := by_key.get((s["video_id"], ""))) is not None:
            out.append(_animal(m, s, s["count"], m["start"], m["end"], "stated", runs, taxa))
        elif s["video_id"] in sets:
            unattached.add(s["video_id"])
            skipped.append(Skipped(f"set {s['video_id']}", f"the {s['query']!r} count {s['count']} is stated without "
                                                           "points: no image of the set to attach it to"))
    found = {o["mediaID"] for o in out}
    out += _blanks([m for m in media if m["row"]["mediaID"] not in found and m["source"] not in unattached], keys, runs)
    return sorted(out, key=lambda o: (o["deploymentID"], o["eventStart"], o["mediaID"], o["observationID"]))


def _animal(m: dict, k: dict, count: int, start: datetime, end: datetime, method: str, runs: dict[str, datetime],
            taxa: dict[str, str]) -> dict[str, Any]:
    """The observation of ``count`` objects of the key ``k``'s query on the media ``m``."""
    query = k["query"]
    tags = "|".join(f"{name}:{str(v).replace('|', '/')}" for name, v in
                    (("query", query), ("task", k["task"]), ("taskKey", k["task_key"]), ("countMethod", method)))
    return {**_base(m, stable_id(m["row"]["mediaID"], query, k["task_key"]), start, end),
            "observationType": "animal", "scientificName": taxa.get(query, query), "count": int(count),
            "classifiedBy": _by(k), "classificationTimestamp": _when(runs.get(k["run_id"])), "observationTags": tags}


def _blanks(media: list[dict[str, Any]], keys: pl.DataFrame, runs: dict[str, datetime]) -> list[dict[str, Any]]:
    """A blank observation for each of ``media`` (none found anything on them) that a detection task ran on."""
    ran: dict[str, list[dict]] = {}
    for k in keys.sort("task", "query").iter_rows(named=True):
        ran.setdefault(k["video_id"], []).append(k)
    out = []
    for m in media:
        done = ran.get(m["source"])
        if not done:  # never looked at: not blank
            continue
        tags = (f"queries:{','.join(sorted({k['query'].replace('|', '/') for k in done}))}"
                f"|taskKeys:{','.join(sorted({k['task_key'] for k in done}))}")
        last = max((runs[k["run_id"]] for k in done if runs.get(k["run_id"])), default=None)
        out.append({**_base(m, stable_id(m["row"]["mediaID"], "blank"), m["start"], m["end"]),
                    "observationType": "blank", "classifiedBy": "; ".join(sorted({_by(k) for k in done})),
                    "classificationTimestamp": _when(last), "observationTags": tags})
    return out


def _base(m: dict, observation_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"observationID": observation_id, "deploymentID": m["row"]["deploymentID"], "mediaID": m["row"]["mediaID"],
            "eventStart": iso_seconds(start, m["zone"]), "eventEnd": iso_seconds(max(start, end), m["zone"], up=True),
            "observationLevel": "media", "classificationMethod": "machine"}


def _by(k: dict) -> str:
    """Who classified: the model at its revision, and the task key that fixes the prompt version."""
    return f"{k['model_id']}@{k['model_revision']} (vidlake {k['task']} task, task_key {k['task_key']})"


def _when(at: datetime | None) -> str | None:
    return iso_seconds(at, "UTC") if at is not None else None


def _seconds(t: float) -> timedelta:
    return timedelta(microseconds=round(float(t) * 1e6))
