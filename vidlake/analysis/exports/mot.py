"""The lake's ``tracks`` as MOTChallenge files, in the layout vidlake/evaluation/formats.py reads as truth.

    <out>/sequences.csv                     one row per file: video or set, query, task key, model, size
    <out>/<query>/mot/<name>.txt            frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z
    <out>/<query>/frames/<name>.csv         frame,time_s: the time of each frame number

One file per (video or image set, query), with the task key a run wrote last for it. ``<name>`` is the
video's file name (``s001.mp4``: the reader takes the txt's stem as the video's name, and ``vidlake eval``
matches that to the lake's videos by file name), with the first 8 characters of its id when two videos
of a query share a name, or ``set-<id>`` for an image set. Frame numbers (1-based) count the frames the
model saw (every timestamp of the windows the task ran on, and of the tracks), so a frame with no object
is a frame where the model found none. A track sample with a box writes the box; a point writes a
zero-size box at the point, whose centre the reader takes as the point. ``conf`` is 1 (Molmo 2's tracks
carry no score); ``x,y,z`` are -1. Each ``<out>/<query>`` folder is a truth folder:
``load_truth(<out>/<query>)`` reads it back.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import unquote

import polars as pl

from vidlake.analysis.exports.common import Exported, Skipped, read_table, slug, stable_id, write_csv
from vidlake.platform.lake import Lake

__all__ = ["SEQUENCE_COLUMNS", "export_mot"]

SEQUENCE_COLUMNS = ["folder", "name", "video_id", "kind", "uri", "task", "query", "task_key", "model_id",
                    "model_revision", "width", "height", "frames", "objects", "rows"]


def export_mot(lake: Lake, folder: Path) -> Exported:
    """Write every (video or set, query) of ``tracks`` into ``folder`` (a local folder)."""
    result = Exported()
    tracks = pl.from_arrow(read_table(lake, "tracks")).with_columns(pl.col("query").fill_null(""))
    keys = (tracks.group_by("video_id", "task", "query", "task_key").agg(pl.col("run_id").max())
            .sort("run_id", "task_key").group_by("video_id", "task", "query", maintain_order=True).last()
            .sort("task", "query", "video_id"))
    outputs = pl.from_arrow(read_table(lake, "outputs", ["video_id", "task_key", "window_id", "model_id",
                                                         "model_revision"]))
    windows = pl.from_arrow(read_table(lake, "windows", ["window_id", "timestamps_s"]))
    seen = outputs.join(windows, on="window_id").explode("timestamps_s").partition_by(
        "video_id", "task_key", as_dict=True)
    by_key = tracks.partition_by("video_id", "task_key", as_dict=True)
    media = _media(lake)
    folders = _folders(keys)
    names = _names(keys, media)
    sequences = []
    for key in keys.iter_rows(named=True):
        video_id, task_key, m = key["video_id"], key["task_key"], media.get(key["video_id"], {})
        where, name = folders[(key["task"], key["query"])], names[(video_id, key["task"], key["query"])]
        rows = by_key[(video_id, task_key)]
        bad = rows.filter(pl.col("object_id").is_null() | (pl.col("object_id") < 0))
        if bad.height:
            result.skipped.append(Skipped(f"tracks of {m.get('uri') or video_id} ({key['query']})",
                                          f"{bad.height} samples without an object id (MOT needs one) left out"))
            rows = rows.filter(pl.col("object_id").is_not_null() & (pl.col("object_id") >= 0))
        mine = seen.get((video_id, task_key))
        shown = mine["timestamps_s"].drop_nulls().to_list() if mine is not None else []
        lines, frames = _write_sequence(folder / where, name, rows, shown)
        result.rows[f"{where}/mot/{name}.txt"], result.rows[f"{where}/frames/{name}.csv"] = lines, frames
        model = mine.select("model_id", "model_revision").row(0, named=True) if mine is not None else {}
        sequences.append({"folder": where, "name": name, "video_id": video_id, "kind": m.get("kind"),
                          "uri": m.get("uri"), "task": key["task"], "query": key["query"], "task_key": task_key,
                          **model, "width": m.get("width"), "height": m.get("height"), "frames": frames,
                          "objects": rows["object_id"].n_unique(), "rows": lines})
    result.rows["sequences.csv"] = write_csv(folder / "sequences.csv", SEQUENCE_COLUMNS, sequences)
    return result


def _write_sequence(folder: Path, name: str, rows: pl.DataFrame, shown: list[float]) -> tuple[int, int]:
    """``mot/<name>.txt`` of ``rows`` and ``frames/<name>.csv`` numbering the frames the model saw (``shown``)
    and those of the rows; (MOT lines, frames)."""
    times = sorted({round(float(t), 6) for t in [*shown, *rows["t"]]})
    frame_of = {t: i + 1 for i, t in enumerate(times)}
    write_csv(folder / "frames" / f"{name}.csv", ["frame", "time_s"],
              ({"frame": i + 1, "time_s": f"{t:.6f}"} for i, t in enumerate(times)))
    lines = sorted(_mot_line(frame_of[round(float(r["t"]), 6)], r) for r in rows.iter_rows(named=True))
    (folder / "mot").mkdir(parents=True, exist_ok=True)
    (folder / "mot" / f"{name}.txt").write_text("".join(",".join(map(str, line)) + "\n" for line in lines))
    return len(lines), len(times)


def _mot_line(frame: int, r: dict) -> tuple:
    """frame, id, left, top, width, height, conf, x, y, z: the sample's box, or a zero-size box at its point."""
    box = r.get("box")
    if box is not None and len(box) == 4 and all(v is not None for v in box):
        left, top, width, height = box[0], box[1], box[2] - box[0], box[3] - box[1]
    else:
        left, top, width, height = r["x"], r["y"], 0.0, 0.0
    return (frame, int(r["object_id"]), *(f"{v:.3f}" for v in (left, top, width, height)), 1, -1, -1, -1)


def _media(lake: Lake) -> dict[str, dict]:
    """video or set id -> kind, first path, upright width and height."""
    out = {}
    for v in read_table(lake, "videos", ["video_id", "uris", "width", "height", "rotation"]).to_pylist():
        w, h = v["width"], v["height"]
        if (v["rotation"] or 0) % 180 == 90:
            w, h = h, w
        out[v["video_id"]] = {"kind": "video", "uri": v["uris"][0] if v["uris"] else None, "width": w, "height": h}
    if lake.exists("sets"):
        images = {i["image_id"]: i for i in read_table(lake, "images", ["image_id", "width", "height"]).to_pylist()}
        for s in read_table(lake, "sets", ["set_id", "image_ids", "uris"]).to_pylist():
            first = images.get(s["image_ids"][0], {})
            out[s["set_id"]] = {"kind": "set", "uri": (s["uris"] or [None])[0], "width": first.get("width"),
                                "height": first.get("height")}
    return out


def _folders(keys: pl.DataFrame) -> dict[tuple[str, str], str]:
    """(task, query) -> its folder: the query as a file name (the task first when several tasks have
    tracks); a name two queries would share gets a hash of the query."""
    pairs = sorted(set(keys.select("task", "query").iter_rows()))
    tasks = {t for t, _ in pairs}
    out: dict[tuple[str, str], str] = {}
    for task, query in pairs:
        name = slug(query) if len(tasks) == 1 else f"{slug(task)}-{slug(query)}"
        if name in out.values():
            name = f"{name}-{stable_id(task, query)[:6]}"
        out[(task, query)] = name
    return out


def _names(keys: pl.DataFrame, media: dict[str, dict]) -> dict[tuple[str, str, str], str]:
    """(video, task, query) -> the name (``<name>.txt``): the video's file name, unique within its folder."""
    def stem(video_id: str) -> str:
        m = media.get(video_id, {})
        if m.get("kind") == "set" or not m.get("uri"):
            return f"set-{video_id[:12]}" if m.get("kind") == "set" else video_id[:16]
        return PurePosixPath(unquote(m["uri"])).name

    out = {}
    for (task, query), group in keys.group_by("task", "query"):
        stems = {v: stem(v) for v in group["video_id"]}
        shared = {s for s in stems.values() if list(stems.values()).count(s) > 1}
        for v, s in stems.items():
            out[(v, task, query)] = f"{s}-{v[:8]}" if s in shared else s
    return out
