"""Read-side views of the lake: runs, table sizes, one video's timeline in time order."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from vidlake.errors import LakeError
from vidlake.platform.lake.tables import Lake

__all__ = ["failing_pairs", "lake_overview", "resolve_video_id", "video_timeline"]

# table -> (time column used for ordering, columns shown as the event's text)
_EVENT_TABLES = {
    "captions": ("start_s", "text"),
    "answers": ("start_s", "text"),
    "points": ("t", "label"),
    "tracks": ("t", "label"),
}


def resolve_video_id(lake: Lake, name: str) -> dict[str, Any]:
    """The ``videos`` row that ``name`` names: its id or the id's first 6+ characters (like git), one of
    its paths (as given, or made absolute), or a file name that only one of its paths ends with."""
    videos = lake.read("videos").to_pylist()
    by_id = [v for v in videos if len(name) >= 6 and v["video_id"].startswith(name.lower())]
    if by_id:
        return _one(by_id, name, "give more characters")
    absolute = str(Path(name).expanduser().absolute()) if "://" not in name else name
    by_path = [v for v in videos if name in v["uris"] or absolute in v["uris"]]
    if by_path:
        return _one(by_path, name, "")
    tail = name.rstrip("/").rsplit("/", 1)[-1]
    by_name = [v for v in videos if any(u.rstrip("/").rsplit("/", 1)[-1] == tail for u in v["uris"])]
    if by_name:
        return _one(by_name, name, "give the whole path")
    raise LakeError(f"no video {name!r} in {lake.uri}: give a video id (6+ characters), a path or a file name "
                    "(`vidlake videos` lists them)")


def _one(matches: list[dict[str, Any]], name: str, hint: str) -> dict[str, Any]:
    if len(matches) > 1:
        raise LakeError(f"{name!r} matches {len(matches)} videos" + (f"; {hint}" if hint else ""))
    return matches[0]


def video_timeline(lake: Lake, video_id: str, t_from: float | None = None, t_to: float | None = None) -> list[dict]:
    """Captions, answers, points and tracks of one video, merged in time order.

    Each event: ``kind`` (table name), ``t`` (start), ``end`` (captions/answers), ``task``,
    ``task_key``, ``text`` and, for points/tracks, ``object_id``, ``x``, ``y``.
    """
    events: list[dict] = []
    for table, (time_col, text_col) in _EVENT_TABLES.items():
        if not lake.exists(table):
            continue
        rows = lake.read(table, filters=[("video_id", "=", video_id)]).to_pylist()
        for row in rows:
            t = row[time_col]
            end = row.get("end_s", t)
            if t_from is not None and (end if end is not None else t) < t_from:
                continue
            if t_to is not None and t is not None and t > t_to:
                continue
            event = {"kind": table, "t": t, "end": end, "task": row["task"], "task_key": row["task_key"],
                     "text": row[text_col]}
            if table in ("points", "tracks"):
                event.update(object_id=row["object_id"], x=row["x"], y=row["y"])
            if table == "answers":
                event["question"] = row["question"]
            events.append(event)
    events.sort(key=lambda e: (e["t"] if e["t"] is not None else -1.0, e["kind"], e.get("object_id") or 0))
    return events


def lake_overview(lake: Lake) -> dict[str, Any]:
    """Runs (newest first; a run whose process died shows as ``abandoned``) and, per existing table, its
    row count and Delta version."""
    from vidlake.platform.lake.schemas import SCHEMAS

    tables = {}
    for name in SCHEMAS:
        if lake.exists(name):
            delta = lake.delta(name)
            tables[name] = {"rows": delta.count(), "version": delta.version()}
    from vidlake.platform.lake.runs import run_state

    runs = [{**r, "status": run_state(r)} for r in lake.read("runs").to_pylist()]
    runs.sort(key=lambda r: r["run_id"], reverse=True)
    return {"tables": tables, "runs": runs, "failing": failing_pairs(lake)}


def failing_pairs(lake: Lake) -> list[dict[str, Any]]:
    """(video, task_key) pairs whose committed windows include failures, with how many and the newest error
    about the video: what later runs retry (``retry_failed``), and what stays failing after that."""
    if not lake.exists("outputs"):
        return []
    failed = lake.read("outputs", columns=["video_id", "task_key", "parse_status"],
                       filters=[("parse_status", "=", "error")]).to_pylist()
    counts: dict[tuple[str, str], int] = {}
    for row in failed:
        counts[(row["video_id"], row["task_key"])] = counts.get((row["video_id"], row["task_key"]), 0) + 1
    last: dict[str, dict] = {}
    for e in lake.read("errors", columns=["video_id", "stage", "error_kind", "message", "at"]).to_pylist():
        if e["stage"] != "probe" and e["video_id"] and (e["video_id"] not in last or e["at"] > last[e["video_id"]]["at"]):
            last[e["video_id"]] = e
    return [{"video_id": v, "task_key": k, "windows_failed": n, "error_kind": last.get(v, {}).get("error_kind"),
             "message": last.get(v, {}).get("message")} for (v, k), n in sorted(counts.items())]
