"""GPU throughput at full Molmo 2 size, random weights: vidlake's transformers path against its vLLM path.

    benchmarks/gpu_run.sh                    # on a GPU machine: checks the machine, then runs this script
    python benchmarks/gpu.py                 # both engines, full size (8B-class, bf16) on cuda:0
    python benchmarks/gpu.py --engine hf     # transformers only (the baseline of benchmarks/results/gpu.md)
    python benchmarks/gpu.py --engine vllm --vllm-seqs 16,32 --whole-job
    python benchmarks/gpu.py --tiny          # the transformers path on a small config (CPU fp32 test, seconds)

Throughput does not depend on weight values, so the models have random weights (no download); the sizes,
the tokenizer and the model builder live in :mod:`vidlake.models.full_size`. Windows are 128 random uint8
frames at 378 px with 2 fps timestamps (64 s of video) and the built-in caption prompt; answers are greedy
and exactly ``--new-tokens`` long (EOS ignored).

transformers (``--engine hf``): the model is built in memory from ``Molmo2Config``. Inputs go through
vidlake's own path: ``prepare_window`` (processor -> uint8 patches, 81 visual tokens per frame), ``collate``
and the ``model.generate`` call RunModel makes (``min_new_tokens = max_new_tokens``, as
``InferConfig(ignore_eos=True)``). Per batch size (windows per generate call): a warm-up, prefill seconds
(best of ``--prefill-repeats`` calls with ``max_new_tokens=1``), full-answer seconds, windows/s, decode
tokens/s, peak ``torch.cuda.max_memory_allocated``. A batch size that fails (out of memory, or batch 8's
cuDNN error of results/gpu.md) is recorded and ends the sweep. With ``$OUT`` set it writes ``$OUT/gpu.md``
and ``$OUT/gpu.json`` as before; ``--out`` writes that Markdown elsewhere.

vLLM (``--engine vllm``): vLLM loads a checkpoint folder, so ``make_random`` writes the random model once
(``--checkpoint``; an existing folder it wrote is reused). Requests are built as BuildRequest + RunVLLM build
them (``video_request`` -> ``vllm_request``; ``sampling_kwargs(new_tokens, ignore_eos=True)``), every window
distinct (vLLM caches processor outputs, encoder outputs and prompt prefixes by content: identical windows
would skip their vision encoder and prefill). Each ``--vllm-seqs`` setting runs in a process of its own
(a fresh engine with that ``max_num_seqs``; its memory is freed when it exits): engine start, one short
warm-up request, then one timed ``llm.generate`` over ``--vllm-requests-per-seq`` x seqs windows. Peak GPU
memory is the device's ``memory.used`` from nvidia-smi (else ``torch.cuda.mem_get_info``), polled every
0.5 s over the worker's life, less what was in use before it started: it includes the KV cache that vLLM
reserves up front (``gpu_memory_utilization``), so it is a reservation, not what the windows needed.
``torch.cuda.max_memory_allocated`` cannot see vLLM's engine process.

Derived for both engines: windows/s, visual tokens/s (visual tokens per window x windows/s), generated
tokens/s, video-seconds per GPU-second (windows/s x 64 s) and the frames/s the GPU consumes, with the CPUs
needed to decode them at the frames/s per core that benchmarks/results/decode.md measured (or
``--decode-fps-per-core``). The ratio vLLM / transformers compares the best windows/s of each (goal >= 3x);
with ``--engine vllm`` the transformers numbers come from ``--hf-json`` (results/gpu.json), said so.

``--whole-job`` (needs vLLM and Ray): synthetic videos (``make_synthetic``, what ``vidlake synth`` writes,
every video ``--job-seconds`` long; rendered in background processes while the GPU works; enough for
``--job-batches`` generate calls), then the real job (``run_job`` on the Ray executor: ingest, windows,
decoding, BuildRequest, RunVLLM, parsing, the lake) on the random checkpoint with ``model.engine: vllm``
and a caption task capped at ``--new-tokens``. A job cannot ignore EOS, so generated tokens are counted and
compared per token too. The model step notes each batch's wall-clock start and end (a subclass swapped in
by the executor, writing to a file), so "the model stage alone" is the sum of its batches on the job's own
windows, against the span from the first batch's start to the last one's end (goal >= 0.8): the time the
GPU waited for windows between batches. Engine start and ingest come before the span. A failure anywhere
in it is recorded, not raised.

Results of both engines go to ``$OUT/gpu-vllm.md`` and ``$OUT/gpu-vllm.json`` when ``$OUT`` is set (the
device runner), else benchmarks/results/ (``--results-dir``; ``--tiny`` writes none unless asked), after
every step, so a run cut short still reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import torch

from gpu_common import RESULTS, end_tree, error_text, free_cuda  # first: the checkout on sys.path
from gpu_hf import markdown, run
from gpu_job import run_whole_job, start_synth
from gpu_report import best, decode_rate, report_markdown, results_dir, stored_hf, summarize, write_report
from gpu_vllm import default_checkpoint, ensure_checkpoint, run_vllm, vllm_missing, vllm_worker


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("hf", "vllm", "both"), default="both",
                        help="hf: transformers; vllm; both (default; without vLLM here, hf alone, said so)")
    parser.add_argument("--tiny", action="store_true", help="small config (CPU test): 16 frames, 8 tokens, batch 1,2")
    parser.add_argument("--size", choices=("8b", "4b"), default="8b")
    parser.add_argument("--device", default=None, help="transformers: default cuda:0 when visible, else cpu")
    parser.add_argument("--frames", type=int, default=None, help="frames per window (default 128; tiny 16)")
    parser.add_argument("--new-tokens", type=int, default=None, help="default 256; tiny 8")
    parser.add_argument("--window-fps", type=float, default=2.0, help="timestamps' rate (a window's video seconds)")
    hf = parser.add_argument_group("transformers")
    hf.add_argument("--batch-sizes", default=None,
                    help="comma-separated (default 1,2,4: batch 8 fails on transformers 5.24 / torch 2.11; tiny 1,2)")
    hf.add_argument("--prefill-repeats", type=int, default=2)
    hf.add_argument("--repeats", type=int, default=1, help="full-answer calls per batch size (best counts)")
    hf.add_argument("--out", type=Path, default=None, help="also write the transformers Markdown table here")
    hf.add_argument("--hf-json", type=Path, default=RESULTS / "gpu.json",
                    help="with --engine vllm: the transformers numbers the ratio uses (default results/gpu.json)")
    vl = parser.add_argument_group("vLLM")
    vl.add_argument("--checkpoint", type=Path, default=None,
                    help="random checkpoint folder (written once by make_random; default "
                    "<tmp>/vidlake-random-SIZE-seed0)")
    vl.add_argument("--vllm-seqs", default=None, help="max_num_seqs settings, comma-separated (default 1,4,16,32; "
                    "tiny 1,2); each in a fresh engine, largest first")
    vl.add_argument("--vllm-requests-per-seq", type=int, default=2,
                    help="windows per timed generate call = this x max_num_seqs (also the whole job's batch_size)")
    vl.add_argument("--vllm-max-model-len", type=int, default=16384)
    vl.add_argument("--vllm-batched-tokens", type=int, default=16384, help="max_num_batched_tokens")
    vl.add_argument("--vllm-memory", type=float, default=0.9, help="gpu_memory_utilization")
    vl.add_argument("--vllm-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="another vllm.LLM argument (VALUE as JSON, else a string); repeatable")
    vl.add_argument("--vllm-timeout", type=float, default=480, help="seconds per setting, engine start included")
    vl.add_argument("--vllm-prefill", action="store_true", help="also time prefill alone (one-token answers)")
    vl.add_argument("--decode-fps-per-core", type=float, default=None,
                    help="decoded frames per CPU-second (default: results/decode.md's vidlake row)")
    job = parser.add_argument_group("whole job")
    job.add_argument("--whole-job", action="store_true", help="also run the real job through vLLM (needs Ray)")
    job.add_argument("--job-videos", type=int, default=None,
                     help="synthetic videos (default: enough for --job-batches batches)")
    job.add_argument("--job-batches", type=int, default=3, help="generate calls the job's windows fill")
    job.add_argument("--job-seconds", type=float, default=250, help="length of every synthetic video")
    job.add_argument("--job-seqs", type=int, default=None,
                     help="max_num_seqs (default 16 when measured, else the largest --vllm-seqs); a generate call "
                     "takes --vllm-requests-per-seq x that")
    job.add_argument("--job-timeout", type=float, default=600, help="seconds to wait for the synthetic videos")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where gpu-vllm.md/json go without $OUT (default benchmarks/results/; --tiny: nowhere)")
    for name, kind in (("--vllm-worker", None), ("--worker-seqs", int), ("--worker-requests", int),
                       ("--worker-out", Path), ("--worker-engine-args", str)):  # run_vllm's worker processes
        if kind is None:
            parser.add_argument(name, action="store_true", help=argparse.SUPPRESS)
        else:
            parser.add_argument(name, type=kind, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.frames = args.frames or (16 if args.tiny else 128)
    args.new_tokens = args.new_tokens or (8 if args.tiny else 256)
    args.batch_sizes = [int(b) for b in (args.batch_sizes or ("1,2" if args.tiny else "1,2,4")).split(",")]
    args.vllm_seqs = [int(s) for s in (args.vllm_seqs or ("1,2" if args.tiny else "1,4,16,32")).split(",")]
    extra = {}
    for item in args.vllm_arg:
        key, _, value = item.partition("=")
        try:
            extra[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            extra[key.strip()] = value
    args.vllm_arg = extra
    size = "tiny" if args.tiny else args.size
    args.checkpoint = (args.checkpoint or default_checkpoint(size)).expanduser().absolute()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.vllm_worker:
        return vllm_worker(args)
    began = time.perf_counter()
    engines = {"hf", "vllm"} if args.engine == "both" else {args.engine}
    import transformers

    res: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "engine": args.engine,
                 "size": "tiny" if args.tiny else args.size, "frames": args.frames, "new_tokens": args.new_tokens,
                 "window_fps": args.window_fps, "python": platform.python_version(), "torch": torch.__version__,
                 "transformers": transformers.__version__, "decode": decode_rate(args.decode_fps_per_core)}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        res["gpu"] = f"{props.name} ({props.total_memory / 2**30:.1f} GiB, CUDA {torch.version.cuda})"
    if "vllm" in engines:
        missing = vllm_missing()
        if missing and args.engine == "vllm":
            print(f"vLLM cannot run here: {missing}.", file=sys.stderr, flush=True)
            return 2
        if missing:
            print(f"vLLM skipped: {missing}. Measuring transformers only.", flush=True)
            res["vllm"] = {"skipped": missing}
            engines.discard("vllm")
        else:
            res["vllm"] = {}
    if args.engine == "hf":
        res["vllm"] = {"skipped": "--engine hf (benchmarks/gpu_run.sh passes it where `import vllm` fails; its log "
                                  "says why)"}
    if args.whole_job and "vllm" not in engines:
        res["whole_job"] = {"skipped": "the whole job runs through vLLM, which does not run here"}
    folder = results_dir(args)
    synth = start_synth(args) if args.whole_job and "vllm" in engines else None
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # run the finally blocks
    status = 0

    def hf_progress(hf: dict) -> None:
        res["hf"] = hf
        write_report(res, folder)

    try:
        if "hf" in engines:
            try:
                res["hf"] = run(args, report=hf_progress)
            except Exception as exc:  # noqa: BLE001 - recorded; vLLM still runs
                res["hf"] = {**(res.get("hf") or {}), "error": error_text(exc), "traceback": traceback.format_exc()}
                print(res["hf"]["traceback"], file=sys.stderr, flush=True)
                status = 1
            free_cuda()
        else:
            res["hf"] = stored_hf(args.hf_json, args)
        if "vllm" in engines:
            try:
                res["vllm"]["checkpoint"] = ensure_checkpoint(args.checkpoint, res["size"])
            except Exception as exc:  # noqa: BLE001
                res["vllm"]["error"] = f"writing the random checkpoint failed: {error_text(exc)}"
                print(traceback.format_exc(), file=sys.stderr, flush=True)
                status = 1
            write_report(res, folder)
            if "checkpoint" in res["vllm"]:
                run_vllm(args, res, lambda r: write_report(r, folder))
                if synth and best(res["vllm"]["runs"]):
                    res["whole_job"] = {}
                    run_whole_job(args, res, synth)
                elif synth:
                    res["whole_job"] = {"skipped": "no vLLM setting ran (above)"}
            if not best(res["vllm"].get("runs", [])):
                status = 1
    finally:
        if synth:
            for proc in synth[0]:
                if proc.poll() is None:
                    end_tree(proc)
            shutil.rmtree(synth[1][0].parent, ignore_errors=True)
        res["script_s"] = round(time.perf_counter() - began, 1)
        write_report(res, folder)
    summarize(res)
    if res.get("hf", {}).get("runs") and "source" not in res["hf"]:
        text = markdown(res["hf"])
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
        if "vllm" not in engines:
            print(text, flush=True)
    if "vllm" in engines or "vllm" in res:
        print(report_markdown(res), flush=True)
    if folder is not None:
        print(f"results: {folder / 'gpu-vllm.md'}, {folder / 'gpu-vllm.json'}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
