"""``vidlake synth DIR``: render the synthetic world (world.py), encode it, and write its exact truth.

Each video is rendered in display coordinates (numpy on a precomputed background), turned against its
display rotation when it has one (a player's display matrix turns it back), and encoded with PyAV:
H.264 in MP4 or VP9 in WebM, one thread, settings that read no uninitialised memory and a bit-exact
muxer, so the same seed gives the same files. Every frame's PTS is an exact multiple of the stream's
time base (checked after muxing), so the times in the truth files are exactly what a decoder reports.
File formats: docs/evaluation.md.
"""

from __future__ import annotations

import csv
import json
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from vidlake.errors import ConfigError
from vidlake.evaluation.world import COLOURS, QUERIES, VideoSpec, covers, match_query, plan_video, visibility

__all__ = ["background", "draw_frame", "make_synthetic"]

# mbtree=0: x264's macroblock-tree pass reads memory nobody wrote (run with MALLOC_PERTURB_=1 to see the
# output change), so with it the same frames encode differently from one run to the next.
_CODECS = {"h264": ("libx264", {"preset": "veryfast", "crf": "18", "x264-params": "mbtree=0"}),
           "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0"})}
_TONES = ((118, 116, 112), (126, 112, 94), (112, 104, 98))  # muted grey / brown backgrounds


def make_synthetic(dir: Path, videos: int = 6, seed: int = 0, max_seconds: float = 240,
                   echo: Callable[[str], None] | None = print, short_seconds: tuple[float, float] = (8, 30)) -> list[Path]:
    """Write ``videos`` videos of the world ``seed`` and their truth files into ``dir``; return the videos.

    Every 4th video (index 0, 4, ...) lasts ``max_seconds``, the others a length drawn from ``short_seconds``
    (8-30 s by default; at most ``max_seconds``).
    ``dir`` must be empty, new, or an earlier output of this function (whose files are replaced).
    """
    if videos < 1:
        raise ConfigError(f"videos must be at least 1 (got {videos})")
    if not max_seconds >= 1:
        raise ConfigError(f"max-seconds must be at least 1 (got {max_seconds})")
    out = Path(dir)
    _clear(out)
    for sub in ("videos", "mot", "frames"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    specs, paths = [], []
    for index in range(videos):
        began = time.perf_counter()
        video = plan_video(seed, index, max_seconds, short_seconds)
        xs, ys, visible = visibility(video)
        path = out / "videos" / video.file
        _encode(path, video, _render(video, xs, ys, background(seed, video)))
        _write_video_truth(out, video, xs, ys, visible)
        specs.append((video, xs, ys, visible))
        paths.append(path)
        if echo:
            echo(f"{path.name}: {len(video.times)} frames, {float(video.duration):.1f} s, "
                 f"{len(video.objects)} objects ({time.perf_counter() - began:.1f} s)")
    _write_world_truth(out, seed, max_seconds, specs)
    return paths


def _clear(out: Path) -> None:
    """Remove an earlier world's files (named in its world.json); refuse a folder holding anything else."""
    world = out / "world.json"
    if world.is_file():
        for v in json.loads(world.read_text())["videos"]:
            stem = Path(v["file"]).stem
            for stale in (out / "videos" / v["file"], out / "mot" / f"{stem}.txt", out / "frames" / f"{stem}.csv"):
                stale.unlink(missing_ok=True)
    elif out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no world.json: name a new or empty folder")


def background(seed: int, video: VideoSpec) -> np.ndarray:
    """The video's background, the same on every frame: smooth blotches plus grain in one muted tone
    (H x W x 3 uint8, display orientation)."""
    from PIL import Image

    rng = np.random.default_rng([seed, video.index, 1])
    w, h = video.kind.width, video.kind.height
    coarse = Image.fromarray(rng.integers(0, 256, (h // 20 + 2, w // 20 + 2), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64) / 255
    shade = 0.72 + 0.4 * smooth + rng.normal(0, 0.04, (h, w))
    tone = np.array(_TONES[int(rng.integers(len(_TONES)))], dtype=np.float64)
    return np.clip(shade[..., None] * tone, 0, 255).astype(np.uint8)


def _render(video: VideoSpec, xs: np.ndarray, ys: np.ndarray, background: np.ndarray) -> Iterator[np.ndarray]:
    """Each frame as stored: shapes drawn in id order (higher ids on top), turned against the rotation."""
    turns = video.kind.rotation // 90
    for f in range(len(video.times)):
        frame = draw_frame(video, xs[:, f], ys[:, f], background)
        yield np.ascontiguousarray(np.rot90(frame, -turns)) if turns else frame


def draw_frame(video: VideoSpec, xs: np.ndarray, ys: np.ndarray, background: np.ndarray) -> np.ndarray:
    """One frame as a player shows it (display orientation): the objects, centred at ``xs``/``ys``
    (one entry per object), drawn over ``background`` in id order (higher ids on top)."""
    h, w = background.shape[:2]
    grid_x, grid_y = np.arange(w) + 0.5, np.arange(h) + 0.5  # pixel centres, as covers() is asked in world.py
    frame = background.copy()
    for k, obj in enumerate(video.objects):
        cx, cy, half = xs[k], ys[k], obj.size / 2
        x0, x1 = max(0, int(np.floor(cx - half))), min(w, int(np.ceil(cx + half)) + 1)
        y0, y1 = max(0, int(np.floor(cy - half))), min(h, int(np.ceil(cy + half)) + 1)
        if x0 < x1 and y0 < y1:
            mask = covers(obj.shape, obj.size, cx, cy, grid_x[None, x0:x1], grid_y[y0:y1, None])
            frame[y0:y1, x0:x1][mask] = COLOURS[obj.colour]
    return frame


def _encode(path: Path, video: VideoSpec, frames: Iterator[np.ndarray]) -> None:
    """Encode ``frames`` (stored orientation) at the planned PTS; a rotated video gets its display matrix."""
    import av

    kind = video.kind
    codec, options = _CODECS[kind.codec]
    time_base = Fraction(1, kind.fps or 1000)
    with av.open(str(path), mode="w", container_options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=kind.fps or round(len(video.times) / video.duration))
        stream.width, stream.height = (kind.height, kind.width) if kind.rotation % 180 else (kind.width, kind.height)
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        stream.codec_context.thread_count = 1  # one thread: the same frames on every run
        stream.codec_context.options = dict(options)
        if kind.rotation:
            stream.set_display_rotation(kind.rotation)
        for t, image in zip(video.times, frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(t / time_base), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        muxed = stream.time_base  # the container's own, fixed once the header is written
    if any((t / muxed).denominator != 1 for t in video.times):
        raise RuntimeError(f"{path.name}: time base {muxed} cannot hold the planned PTS exactly")


def _seconds(t: Fraction) -> str:
    return f"{float(t):.6f}"


def _write_video_truth(out: Path, video: VideoSpec, xs: np.ndarray, ys: np.ndarray, visible: np.ndarray) -> None:
    """frames/<stem>.csv (every frame's PTS) and mot/<stem>.txt (a clipped box per visible object per frame)."""
    stem, w, h = Path(video.file).stem, video.kind.width, video.kind.height
    with open(out / "frames" / f"{stem}.csv", "w", newline="") as f:
        rows = csv.writer(f, lineterminator="\n")
        rows.writerow(["frame", "time_s"])
        rows.writerows((i + 1, _seconds(t)) for i, t in enumerate(video.times))
    with open(out / "mot" / f"{stem}.txt", "w", newline="") as f:
        rows = csv.writer(f, lineterminator="\n")
        for frame, k in zip(*np.nonzero(visible.T)):
            half = video.objects[k].size / 2
            left, top = max(0.0, xs[k, frame] - half), max(0.0, ys[k, frame] - half)
            right, bottom = min(w, xs[k, frame] + half), min(h, ys[k, frame] + half)
            rows.writerow([frame + 1, k + 1, f"{left:.2f}", f"{top:.2f}", f"{right - left:.2f}",
                           f"{bottom - top:.2f}", 1, -1, -1, -1])


def _write_world_truth(out: Path, seed: int, max_seconds: float, videos: list[tuple]) -> None:
    """points.csv, counts.csv, events.csv, objects.csv and world.json; ``videos``: (spec, xs, ys, visible)."""
    tables = {name: [header] for name, header in (
        ("points", ["video", "time_s", "x", "y", "label", "object_id"]),
        ("counts", ["video", "query", "start_s", "end_s", "count"]),
        ("events", ["video", "object_id", "label", "event", "time_s"]),
        ("objects", ["video", "object_id", "label", "shape", "colour"]),
    )}
    for video, xs, ys, visible in videos:
        times = [_seconds(t) for t in video.times]
        labels = [o.label for o in video.objects]
        tables["points"] += [[video.file, times[f], f"{xs[k, f]:.2f}", f"{ys[k, f]:.2f}", labels[k], k + 1]
                             for f, k in zip(*np.nonzero(visible.T))]
        seen = [labels[k] for k in range(len(labels)) if visible[k].any()]
        tables["counts"] += [[video.file, q, _seconds(Fraction(0)), _seconds(video.duration),
                              sum(bool(match_query(q, label)) for label in seen)] for q in QUERIES]
        events = []
        for k, row in enumerate(visible):
            edges = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
            events += [(f, k, 0) for f in np.flatnonzero(edges == 1)]  # first frame of each visible run
            events += [(f - 1, k, 1) for f in np.flatnonzero(edges == -1)]  # and its last frame
        tables["events"] += [[video.file, k + 1, labels[k], ("enter", "leave")[e], times[f]]
                             for f, k, e in sorted(events)]
        tables["objects"] += [[video.file, o.object_id, o.label, o.shape, o.colour] for o in video.objects]
    for name, rows in tables.items():
        with open(out / f"{name}.csv", "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
    world = {"seed": seed, "max_seconds": float(max_seconds), "videos": [_describe(v[0]) for v in videos]}
    (out / "world.json").write_text(json.dumps(world, indent=1) + "\n")


def _describe(video: VideoSpec) -> dict:
    kind = video.kind
    return {
        "file": video.file, "kind": kind.tag, "codec": kind.codec, "width": kind.width, "height": kind.height,
        "rotation": kind.rotation, "fps": kind.fps or "vfr", "duration_s": float(video.duration),
        "frames": len(video.times),
        "objects": [{"object_id": o.object_id, "label": o.label, "shape": o.shape, "colour": o.colour,
                     "size": o.size, "waypoints": [list(p) for p in o.waypoints], "speeds": list(o.speeds),
                     "phase_s": o.phase_s} for o in video.objects],
    }
