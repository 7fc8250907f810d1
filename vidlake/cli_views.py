"""Terminal renderings of lake views for ``vidlake status`` and ``vidlake show``."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vidlake.errors import LakeError
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake
from vidlake.platform.lake.timeline import lake_overview, resolve_video_id, video_timeline

__all__ = ["print_status", "print_timeline"]


def _lake(settings: Settings) -> Lake:
    return Lake(settings.lake.uri, settings.storage)


def print_status(settings: Settings, limit: int = 20) -> None:
    lake = _lake(settings)
    overview = lake_overview(lake)
    out = _console()
    if not overview["tables"]:
        out.print(f"{lake.uri}: no lake tables yet (run `vidlake ingest` or `vidlake caption`)")
        return
    tables = Table(title=f"lake {lake.uri}", title_justify="left")
    for col in ("table", "rows", "version"):
        tables.add_column(col, justify="left" if col == "table" else "right")
    for name, info in overview["tables"].items():
        tables.add_row(name, str(info["rows"]), str(info["version"]))
    out.print(tables)
    runs = Table(title="runs", title_justify="left")
    runs.add_column("run", no_wrap=True)
    runs.add_column("job")
    runs.add_column("status", no_wrap=True)
    for col in ("seconds", "found", "new", "known", "failed"):
        runs.add_column(col, justify="right")
    runs.add_column("message")
    for r in overview["runs"][:limit]:
        style = {"completed": "green", "failed": "red", "running": "yellow", "abandoned": "red", "skipped": "dim"}.get(r["status"], "")
        runs.add_row(
            r["run_id"], r["job"], f"[{style}]{r['status']}[/]" if style else r["status"],
            f"{r['seconds']:.1f}" if r["seconds"] is not None else "-",
            *(str(r[c]) if r[c] is not None else "-" for c in ("files_found", "videos_new", "videos_known", "failed")),
            r["message"] or "",
        )
    out.print(runs)
    if overview["failing"]:
        failing = Table(title="videos with failed windows (retried by the next runs, up to retry_failed)",
                        title_justify="left")
        for col in ("video", "task_key", "windows failed", "error"):
            failing.add_column(col, no_wrap=col != "error")
        for f in overview["failing"][:limit]:
            failing.add_row(f["video_id"][:12], f["task_key"], str(f["windows_failed"]),
                            f"{f['error_kind']}: {f['message']}" if f["error_kind"] else "")
        out.print(failing)


def print_videos(settings: Settings, as_json: bool) -> None:
    """The lake's videos, longest first, with the number of tasks committed for each."""
    lake = _lake(settings)
    videos = sorted(lake.read("videos").to_pylist(), key=lambda v: (-(v["duration_s"] or 0.0), v["video_id"]))
    tasks: dict[str, set] = {}
    if lake.exists("outputs"):
        done = lake.read("outputs", columns=["video_id", "task_key"])
        for video_id, key in zip(done["video_id"].to_pylist(), done["task_key"].to_pylist()):
            tasks.setdefault(video_id, set()).add(key)
    if as_json:
        for v in videos:
            print(json.dumps({**v, "tasks_done": len(tasks.get(v["video_id"], ()))}, default=str))
        return
    table = Table(title=f"videos in {lake.uri} ({len(videos)})", title_justify="left")
    for col in ("video", "duration s", "MB", "size", "codec", "tasks", "paths"):
        table.add_column(col, justify="right" if col in ("duration s", "MB", "tasks") else "left",
                         no_wrap=col != "paths", overflow="fold")
    for v in videos:
        paths = v["uris"][0] + (f" (+{len(v['uris']) - 1})" if len(v["uris"]) > 1 else "") if v["uris"] else "(no file)"
        table.add_row(v["video_id"][:12], f"{v['duration_s'] or 0:.1f}", f"{(v['size'] or 0) / 1e6:.1f}",
                      f"{v['width']}x{v['height']}", v["codec"] or "-", str(len(tasks.get(v["video_id"], ()))),
                      escape(paths))
    _console().print(table)


def print_timeline(settings: Settings, video_id: str, t_from: float | None, t_to: float | None, as_json: bool) -> None:
    lake = _lake(settings)
    image_set = _find_set(lake, video_id)
    if image_set is not None:
        _print_set(lake, image_set, t_from, t_to, as_json)
        return
    video = resolve_video_id(lake, video_id)
    events = video_timeline(lake, video["video_id"], t_from, t_to)
    if as_json:
        print(json.dumps({"video": video, "timeline": events}, default=str, indent=2))
        return
    out = _console()
    out.print(
        f"[bold]{video['video_id']}[/]  {video['duration_s']:.1f} s  {video['width']}x{video['height']}"
        f"  {video['fps']:.2f} fps  {video['codec']}  rotation {video['rotation']}"
    )
    for uri in video["uris"]:
        out.print(f"  {uri}")
    if not events:
        out.print("no captions, answers, points or tracks yet (run `vidlake caption` or `vidlake run JOB.yaml`)")
        return
    table = Table(show_lines=False)
    for col in ("time", "kind", "task", "object", "x,y", "text"):
        table.add_column(col)
    for e in events:
        span = f"{e['t']:.1f}-{e['end']:.1f}" if e["kind"] in ("captions", "answers") else f"{e['t']:.1f}"
        xy = f"{e['x']:.0f},{e['y']:.0f}" if e.get("x") is not None else ""
        text = e["text"] or ""
        if e.get("question"):
            text = f"Q: {e['question']}  A: {text}"
        table.add_row(span, e["kind"], e["task"], str(e.get("object_id") or ""), xy, text)
    out.print(table)


def _find_set(lake: Lake, name: str) -> dict | None:
    """The ``sets`` row that ``name`` names (its id or the id's first 6+ characters, or a manifest's own name for
    it), or None when no set does (``name`` may be a video)."""
    if not lake.exists("sets"):
        return None
    sets = lake.read("sets").to_pylist()
    found = [s for s in sets if len(name) >= 6 and s["set_id"].startswith(name.lower())] or [
        s for s in sets if s["label"] is not None and s["label"] == name]
    if len(found) > 1:
        raise LakeError(f"{name!r} matches {len(found)} image sets; give more characters of the set id")
    return found[0] if found else None


def _print_set(lake: Lake, image_set: dict, t_from: float | None, t_to: float | None, as_json: bool) -> None:
    """An image set: its kind and images (path, capture time, upright size, time in the set), then its outputs:
    captions and answers in time order, counts (with how they were counted), and the points and track
    samples on each image. Times are seconds after the set's first capture."""
    import pyarrow as pa

    from vidlake.index.documents import set_images, set_rows
    from vidlake.jobs.image_sets import set_items
    from vidlake.platform.lake.schemas import SETS

    set_id = image_set["set_id"]
    row = set_rows(pa.Table.from_pylist([image_set], schema=SETS), set_items(lake, {set_id})).to_pylist()[0]
    images = set_images(row)
    position = {image["image_id"]: n for n, image in enumerate(images, start=1)}
    events = [e for e in video_timeline(lake, set_id, t_from, t_to) if e["kind"] in ("captions", "answers")]
    where = [("video_id", "=", set_id)]
    counts = lake.read("counts", filters=where).to_pylist()
    marks = [{**r, "kind": table, "image": position.get(r["image_id"])} for table in ("points", "tracks")
             for r in lake.read(table, filters=where).to_pylist()
             if (t_from is None or r["t"] >= t_from) and (t_to is None or r["t"] <= t_to)]
    marks.sort(key=lambda m: (m["image"] or 0, m["kind"], m["task_key"], m["object_id"] or 0))
    if as_json:
        facts = {k: row[k] for k in ("set_id", "kind", "label", "folder", "start_local", "end_local", "duration_s")}
        points = [{k: m.get(k) for k in ("kind", "image", "image_id", "t", "task", "task_key", "label", "object_id",
                                         "x", "y", "box")} for m in marks]
        counts = [{k: c.get(k) for k in ("task", "task_key", "query", "count", "method", "event_times_s")} for c in counts]
        print(json.dumps({"set": facts, "images": images, "timeline": events, "counts": counts, "points": points},
                         default=str, indent=2))
        return
    out = _console()
    label = f" {escape(row['label'])}" if row["label"] else ""
    count = f"{len(images)} image" + ("s" if len(images) != 1 else "")
    out.print(f"[bold]{set_id}[/]  image set ({row['kind']}){label}  {count}  "
              f"{row['start_local']} .. {row['end_local']}  {escape(row['folder'] or '')}")
    table = Table(title="images", title_justify="left")
    for col in ("#", "image", "captured", "t s", "size", "marks", "path"):
        table.add_column(col, justify="right" if col in ("#", "t s", "marks") else "left", no_wrap=col != "path",
                         overflow="fold")
    for n, image in enumerate(images, start=1):
        on = sum(1 for m in marks if m["image"] == n)
        table.add_row(str(n), image["image_id"][:12], str(image["captured_local"] or "-"), f"{image['t']:.1f}",
                      f"{image['width']}x{image['height']}", str(on), escape(image["uri"]))
    out.print(table)
    if not (events or counts or marks):
        out.print("no captions, answers, counts or points yet (run `vidlake run JOB.yaml` over its folder)")
        return
    if events:
        timeline = Table(title="captions and answers", title_justify="left")
        for col in ("time s", "kind", "task", "text"):
            timeline.add_column(col)
        for e in events:
            text = f"Q: {e['question']}  A: {e['text']}" if e.get("question") else (e["text"] or "")
            timeline.add_row(f"{e['t']:.1f}-{e['end']:.1f}", e["kind"], e["task"], escape(text))
        out.print(timeline)
    if counts:
        table = Table(title="counts", title_justify="left")
        for col in ("task", "query", "count", "method"):
            table.add_column(col, justify="right" if col == "count" else "left")
        for c in counts:
            table.add_row(c["task"], escape(c["query"] or ""), str(c["count"]), c.get("method") or "-")
        out.print(table)
    if marks:
        table = Table(title="points per image (x, y: its pixels)", title_justify="left")
        for col in ("image", "kind", "task", "label", "object", "x,y"):
            table.add_column(col, justify="right" if col == "image" else "left")
        for m in marks:
            xy = f"{m['x']:.0f},{m['y']:.0f}" if m["x"] is not None else ""
            table.add_row(str(m["image"] or "?"), m["kind"], m["task"], escape(m["label"] or m["query"] or ""),
                          str(m["object_id"] if m["object_id"] is not None else ""), xy)
        out.print(table)


def _console() -> Console:
    """stdout; off a terminal (a pipe, a log) as wide as the lines need, instead of rich's 80 columns."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 240)


_SHARES = ("exact", "off_by_one", "precision", "recall", "f1", "hota", "deta", "assa", "loca", "idf1", "mota",
           "recall_at_k", "occurrences_at_k", "mrr")  # metrics shown with 3 decimals even when whole


def print_eval(result, as_json: bool) -> None:
    """``vidlake eval``'s report: one table row per task, query and metric, then the notes."""
    if as_json:
        print(result.to_json())
        return
    out = _console()
    table = Table(title=f"evaluation {result.run_id} against {result.truth} (truth {result.fingerprint[:12]}; "
                        f"{result.videos_matched} of {result.videos_in_truth} videos in the lake)", title_justify="left")
    for name, justify in (("task", "left"), ("windows", "left"), ("task_key", "left"), ("query", "left"), ("metric", "left"),
                          ("value", "right"), ("n", "right"), ("model", "left")):
        table.add_column(name, justify=justify)
    for r in result.rows:
        value = r["value"]
        share = r["metric"].removesuffix("_all_frames").endswith(_SHARES)
        shown = f"{value:.0f}" if value == int(value) and not share else f"{value:.3f}"
        table.add_row(r["task"] or "", r["windows"] or "", (r["task_key"] or "")[:10], escape(r["query"] or "(all)"), r["metric"], shown,
                      str(r["n"]), escape(r["model_id"] or ""))
    out.print(table)
    for note in result.notes:
        out.print(f"- {escape(note)}")
    out.print(f"{len(result.rows)} metrics appended to the lake's `evals` table in {result.seconds:.1f} s")
