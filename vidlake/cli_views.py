"""Terminal renderings of lake views for ``vidlake status`` and ``vidlake show``."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

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
        style = {"completed": "green", "failed": "red", "running": "yellow", "abandoned": "red"}.get(r["status"], "")
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
