"""The whole-job measurement of the GPU benchmark (benchmarks/gpu.py, ``--whole-job``): synthetic videos
rendered in background processes, then ``run_job`` through vLLM on the Ray executor, its model step's batches
timed against the span from the first one's start to the last one's end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from gpu_common import ROOT, end_tree, error_text  # first: the checkout on sys.path
from gpu_vllm import engine_args


def job_plan(args) -> tuple[int, int, int]:
    """(max_num_seqs, windows per generate call, synthetic videos) of the whole job: enough videos of
    ``--job-seconds`` for ``--job-batches`` full batches (windows of ``--frames`` at ``--window-fps``, 2 s
    overlap, as the job plans them), so that there are gaps between batches to measure."""
    seqs = args.job_seqs or (16 if 16 in args.vllm_seqs else max(args.vllm_seqs))
    batch = max(1, args.vllm_requests_per_seq * seqs)
    span, step = args.frames / args.window_fps, args.frames / args.window_fps - 2.0
    per_video = 1 + max(0, -(-(args.job_seconds - span) // step)) if step > 0 else 1
    return seqs, batch, args.job_videos or int(-(-(args.job_batches * batch) // per_video))


def start_synth(args) -> tuple[list[subprocess.Popen], list[Path]]:
    """Render the whole job's synthetic videos (each ``--job-seconds`` long, a world seed per process) in
    background processes, on the CPU, while the GPU measures."""
    videos = job_plan(args)[2]
    parts = max(1, min(8, (os.cpu_count() or 2) // 2, videos))
    root = Path(tempfile.mkdtemp(prefix="vidlake-synth-"))
    code = ("import sys; sys.path.append(sys.argv[5]); from pathlib import Path; "
            "from vidlake.evaluation.synth import make_synthetic; s = float(sys.argv[3]); "
            "make_synthetic(Path(sys.argv[1]), videos=int(sys.argv[2]), seed=int(sys.argv[4]), max_seconds=s, "
            "short_seconds=(s, s), echo=None)")
    procs, folders = [], []
    for k in range(parts):
        count = videos // parts + (k < videos % parts)
        folders.append(root / f"world{k}")
        procs.append(subprocess.Popen([sys.executable, "-c", code, str(folders[-1]), str(count), str(args.job_seconds),
                                       str(k), str(ROOT)], start_new_session=True))
    return procs, folders


def run_whole_job(args, res: dict, synth: tuple[list[subprocess.Popen], list[Path]]) -> None:
    """The real job over synthetic videos on the random checkpoint through vLLM; a failure is recorded."""
    job = res["whole_job"]
    try:
        whole_job(args, res, job, synth)
    except Exception as exc:  # noqa: BLE001 - recorded in the results, the rest of the report stands
        job["error"] = error_text(exc)
        job["traceback"] = traceback.format_exc()[-4000:]
        print(f"whole job: {job['error']}\n{job['traceback']}", flush=True)
    finally:
        for proc in synth[0]:
            if proc.poll() is None:
                end_tree(proc)
        shutil.rmtree(synth[1][0].parent, ignore_errors=True)


def whole_job(args, res: dict, job: dict, synth: tuple[list[subprocess.Popen], list[Path]]) -> None:
    procs, folders = synth
    began = time.perf_counter()
    for proc in procs:
        if proc.wait(timeout=max(1.0, args.job_timeout - (time.perf_counter() - began))) != 0:
            raise RuntimeError(f"make_synthetic exited with status {proc.returncode}")
    job["synth_wait_s"] = round(time.perf_counter() - began, 1)
    import ray

    from vidlake.jobs.run import run_job
    from vidlake.jobs.spec import JobSpec, ResourcesSpec, TaskSpec
    from vidlake.operators.infer import RunVLLM
    from vidlake.platform.config import ModelSettings, SamplingSettings, Settings
    from vidlake.platform.runtime.executors import RayExecutor

    ckpt = res["vllm"]["checkpoint"]
    seqs, batch, _ = job_plan(args)
    options = {k: v for k, v in engine_args(args, seqs, ckpt.get("max_position_embeddings")).items()
               if k not in ("dtype", "trust_remote_code", "limit_mm_per_prompt", "seed")}  # RunVLLM sets those
    lake = folders[0].parent / "lake"  # removed with the videos afterwards
    spec = JobSpec(
        name="gpu-whole-job", sources=[str(f / "videos") for f in folders], lake=str(lake),
        tasks=[TaskSpec(task="caption", max_new_tokens=args.new_tokens)],
        model=ModelSettings(name=ckpt["path"], engine="vllm", batch_size=batch, max_new_tokens=args.new_tokens,
                            local_files_only=True, vllm=options),
        sampling=SamplingSettings(fps=args.window_fps, max_frames=args.frames, size=378),
        resources=ResourcesSpec(gpus_per_replica=1, replicas=1, batch_size=batch),
    )
    job.update(videos=sum(len(list((f / "videos").iterdir())) for f in folders), video_seconds_each=args.job_seconds,
               seqs=seqs,
               batch_size=batch, vllm_options=options)
    arrivals: list[tuple] = []  # per window back on the driver: (status, infer_s, generated, visual, frames)
    calls_log = lake.parent / "model-calls.txt"  # the model actor's batches: wall-clock start, end, windows

    class TimedRayExecutor(RayExecutor):
        """RayExecutor whose model step notes each batch's start and end (the GPU's timeline), and which keeps
        what each window brings back."""

        def run(self, steps, rows, on_planned=None):
            for step in steps:
                if isinstance(step, RunVLLM):
                    step.__class__ = stamped(type(step), calls_log)
            for row in super().run(steps, rows, on_planned):
                times = row.get("timestamps_s")  # an array here (WriteTables makes plain values later)
                arrivals.append((row.get("status"), row.get("infer_s"), row.get("generated_tokens"),
                                 row.get("visual_tokens"), 0 if times is None else len(times)))
                yield row

    settings = Settings()
    print(f"## whole job: {job['videos']} synthetic videos of {args.job_seconds:g} s, max_num_seqs {seqs}, "
          f"batch {batch}", flush=True)
    began = time.monotonic()
    try:
        result = run_job(spec, settings, show=False, executor=TimedRayExecutor(settings.ray))
    finally:
        job["job_s"] = round(time.monotonic() - began, 1)
        ray.shutdown()
    job.update(windows_ok=result.windows_ok, windows_failed=result.windows_failed, frames=result.frames,
               generated_tokens=result.generated_tokens, video_s=round(result.video_s, 1),
               pipeline_s=round(result.pipeline_s or 0, 1), first_window_s=round(result.first_window_s or 0, 1),
               last_window_s=round(result.last_window_s or 0, 1), failed_by_stage=result.failed_by_stage)
    modelled = [a for a in arrivals if a[1]]  # windows that went through a generate call
    if not modelled or not calls_log.is_file():
        raise RuntimeError("no window came back from the model (see failed_by_stage)")
    calls = sorted(tuple(map(float, line.split())) for line in calls_log.read_text().splitlines() if line.strip())
    model_s = sum(end - start for start, end, _ in calls)  # one replica: its batches, back to back at best
    span = max(end for _, end, _ in calls) - calls[0][0]  # the first batch's start to the last one's end
    gaps = [b[0] - a[1] for a, b in zip(calls, calls[1:])]
    tokens = sum(a[2] or 0 for a in modelled)
    n = len(modelled)
    job.update(
        windows=n, batches=len(calls), model_s=round(model_s, 2), span_s=round(span, 2),
        gap_mean_s=round(sum(gaps) / len(gaps), 3) if gaps else None, gap_max_s=round(max(gaps), 3) if gaps else None,
        frames_per_window=round(sum(a[4] for a in modelled) / n, 1),
        visual_tokens_per_window=round(sum(a[3] or 0 for a in modelled) / n, 1),
        generated_tokens_per_window=round(tokens / n, 1),
        whole_windows_s=round(n / span, 4), model_windows_s=round(n / model_s, 4),
        whole_tokens_s=round(tokens / span, 1), model_tokens_s=round(tokens / model_s, 1),
        ratio=round(model_s / span, 3),
    )
    alone = next((r for r in res["vllm"].get("runs", []) if r["seqs"] == seqs and r.get("generated_tokens_s")), None)
    if alone:  # the benchmark's own windows (128 full frames, exactly --new-tokens each), per generated token
        job["standalone_tokens_s"] = alone["generated_tokens_s"]
        job["whole_vs_standalone_per_token"] = round(job["whole_tokens_s"] / alone["generated_tokens_s"], 3)
    print(f"whole job: {json.dumps({k: v for k, v in job.items() if k != 'vllm_options'})}", flush=True)


def stamped(step_class: type, log: Path) -> type:
    """``step_class`` noting each ``process_batch`` call's wall-clock start and end and its windows in ``log``
    (appended by the model actor, a process on this machine)."""

    class Stamped(step_class):
        def process_batch(self, rows):
            began = time.time()
            try:
                return super().process_batch(rows)
            finally:
                with open(log, "a") as f:
                    f.write(f"{began:.6f} {time.time():.6f} {len(rows)}\n")

    return Stamped
