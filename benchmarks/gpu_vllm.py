"""The vLLM measurements of the GPU benchmark (benchmarks/gpu.py, ``--engine vllm``): whether vLLM can run
here, the random checkpoint it loads, its engine arguments and requests, one worker process per
``max_num_seqs`` setting (``gpu.py --vllm-worker``, the code it runs is here) and GPU memory polled meanwhile."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from gpu_common import caption_text, end_tree, error_text, free_cuda, timed, window  # first: the checkout on sys.path
from gpu_report import derive
from vidlake.models.molmo2_inputs import video_request


def vllm_missing() -> str | None:
    """Why vLLM cannot run here (no CUDA device, no vllm package, or ``import vllm`` failing), or None."""
    reasons = []
    if not torch.cuda.is_available():
        reasons.append("no CUDA device is visible (vLLM runs Molmo 2 only on a GPU)")
    if importlib.util.find_spec("vllm") is None:
        reasons.append(f"vllm is not installed for {sys.executable} (it pins its own torch, so it usually lives in "
                       "an environment of its own: run this script with that environment's python)")
    if reasons:
        return "; ".join(reasons)
    try:
        probe = subprocess.run([sys.executable, "-c", "import vllm; print(vllm.__version__)"], capture_output=True,
                               text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return f"`import vllm` did not finish in 300 s with {sys.executable}"
    if probe.returncode != 0:
        tail = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return f"`import vllm` fails with {sys.executable}: {tail[:300]}"
    return None


def default_checkpoint(size: str) -> Path:
    return Path(tempfile.gettempdir()) / f"vidlake-random-{size}-seed0"


def ensure_checkpoint(folder: Path, size: str) -> dict:
    """The random checkpoint folder vLLM loads: written once by ``make_random`` (on the GPU), reused when a
    folder it wrote for the same size is already there."""
    from vidlake.models.full_size import make_random

    marker = folder / "vidlake-random.json"
    info: dict = {"path": str(folder)}
    if marker.is_file():
        meta = json.loads(marker.read_text())
        if meta.get("size") != size:
            raise RuntimeError(f"{folder} holds a random {meta.get('size')} checkpoint, not {size}: name another "
                               "--checkpoint folder")
        info.update(reused=True, **meta)
    else:
        began = time.perf_counter()
        make_random(folder, size=size, seed=0, device="cuda:0" if torch.cuda.is_available() else "cpu")
        free_cuda()  # make_random's model is gone; hand its cached blocks back before vLLM starts
        info.update(reused=False, write_s=round(time.perf_counter() - began, 1),
                    **json.loads(marker.read_text()))
    from vidlake.models.vllm_layout import in_transformers_layout, rewrite_config

    if in_transformers_layout(folder):  # written before make_random wrote vLLM's config layout: a random
        rewrite_config(folder)  # checkpoint's revision does not matter, so rewrite it in place
        info["config_rewritten"] = True
    config = json.loads((folder / "config.json").read_text())
    info["layout"] = "original (vit_config)" if "vit_config" in config else "transformers (vision_config)"
    text = config.get("text_config") or {}
    info["max_position_embeddings"] = text.get("max_position_embeddings") or config.get("max_position_embeddings")
    return info


def engine_args(args, seqs: int, max_positions: int | None) -> dict:
    """``vllm.LLM`` arguments of one setting: what RunVLLM passes (dtype, seed, one video per prompt, trust
    remote code) plus the limits 128-frame windows need (vLLM profiles with the processor's 64 frames)."""
    out = {"dtype": "bfloat16", "trust_remote_code": True, "limit_mm_per_prompt": {"video": 1}, "seed": 0,
           "max_model_len": min(args.vllm_max_model_len, max_positions or args.vllm_max_model_len),
           "max_num_batched_tokens": args.vllm_batched_tokens, "max_num_seqs": seqs,
           "gpu_memory_utilization": args.vllm_memory}
    out.update(args.vllm_arg)
    return out


def build_requests(processor, count: int, frames: int, first: int = 0) -> list[dict]:
    """``count`` windows as vLLM requests, built as BuildRequest and RunVLLM build them (``video_request``,
    then ``vllm_request`` on the row). Each window differs from the others in its first pixels: vLLM's
    caches key on content, and a real job never sends the same window twice."""
    from vidlake.models.vllm_engine import vllm_request

    base, times = window(frames)
    text = caption_text(processor.tokenizer, times)
    requests = []
    for i in range(first, first + count):
        pixels = base.copy()
        pixels[:, 0, 0, :] = np.frombuffer(i.to_bytes(3, "little"), np.uint8)
        request_text, pixels, metadata = video_request(processor, pixels, times, 0.0, text)
        requests.append(vllm_request({"request_text": request_text, "request_metadata": json.dumps(metadata),
                                      "frames": pixels}))
    return requests


def vllm_worker(args) -> int:
    """One vLLM setting, in its own process (run_vllm starts it): writes ``args.worker_out`` (JSON)."""
    out: dict = {"seqs": args.worker_seqs, "requests": args.worker_requests}
    try:
        measure_vllm(args, out)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which records it
        out["error"] = error_text(exc)
        out["traceback"] = traceback.format_exc()[-4000:]
        print(out["traceback"], file=sys.stderr, flush=True)
    Path(args.worker_out).write_text(json.dumps(out, indent=1))
    return 1 if "error" in out else 0


def measure_vllm(args, out: dict) -> None:
    import vllm
    from vllm import LLM, SamplingParams

    from vidlake.models.molmo2 import load_processor, resolve_model
    from vidlake.models.vllm_engine import sampling_kwargs
    from vidlake.platform.config import ModelSettings

    out.update(vllm=vllm.__version__, torch=torch.__version__)
    settings = ModelSettings(name=str(args.checkpoint), local_files_only=True, engine="vllm")
    processor = load_processor(resolve_model(settings), settings)  # the checkpoint's own, as BuildRequest loads it
    patch_id = processor.tokenizer.convert_tokens_to_ids("<im_patch>")
    options = json.loads(args.worker_engine_args)
    began = time.perf_counter()
    llm = LLM(model=str(args.checkpoint), **options)
    out["engine_start_s"] = round(time.perf_counter() - began, 1)
    try:
        cache = llm.llm_engine.vllm_config.cache_config
        out.update(kv_blocks=cache.num_gpu_blocks, kv_block_size=cache.block_size)
    except Exception:  # noqa: BLE001 - informative only; engine internals move between versions
        pass
    print(f"vLLM {vllm.__version__}: engine up in {out['engine_start_s']} s ({options})", flush=True)

    n = args.worker_requests
    out["build_s"], requests = timed(lambda: build_requests(processor, n + 1, args.frames), "cpu")
    warm, requests = requests[:1], requests[1:]
    out["warmup_s"], _ = timed(lambda: llm.generate(warm, SamplingParams(**sampling_kwargs(2, True)),
                                                    use_tqdm=False), "cpu")
    params = SamplingParams(**sampling_kwargs(args.new_tokens, True))
    seconds, outputs = timed(lambda: llm.generate(requests, params, use_tqdm=False), "cpu")
    prompt_ids = [list(o.prompt_token_ids or []) for o in outputs]
    generated = [len(o.outputs[0].token_ids) for o in outputs]
    visual = [sum(t == patch_id for t in ids) for ids in prompt_ids]
    out.update(wall_s=round(seconds, 3), windows=len(outputs), prompt_tokens=max(map(len, prompt_ids)),
               visual_tokens=max(visual), generated_tokens=sum(generated),
               exact_length=all(g == args.new_tokens for g in generated))
    print(f"max_num_seqs {args.worker_seqs}: {n} windows in {seconds:.1f} s", flush=True)
    requests = outputs = None  # noqa: F841 - the windows' frames, before the prefill set
    if args.vllm_prefill:  # the same number of other windows, one token each: prefill (vision + text) alone
        fresh = build_requests(processor, n, args.frames, first=n + 1)
        seconds, _ = timed(lambda: llm.generate(fresh, SamplingParams(**sampling_kwargs(1, True)),
                                                use_tqdm=False), "cpu")
        out["prefill_s"] = round(seconds, 3)


def gpu_memory_probe():
    """(name of the method, a function giving the device's used bytes) for the first visible GPU."""
    index = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0].strip() or "0"
    if shutil.which("nvidia-smi"):
        def used() -> int | None:
            try:
                text = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                       "-i", index], capture_output=True, text=True, timeout=10).stdout
                return int(float(text.strip().splitlines()[0])) * 2**20
            except (subprocess.SubprocessError, ValueError, IndexError, OSError):
                return None
        return "nvidia-smi memory.used (whole device)", used

    def used_torch() -> int | None:
        try:
            free, total = torch.cuda.mem_get_info(0)
        except RuntimeError:  # no device
            return None
        return total - free
    return "torch.cuda.mem_get_info (whole device)", used_torch


def run_vllm_setting(args, seqs: int, ckpt: dict, probe) -> dict:
    """Start a worker for ``max_num_seqs = seqs``; poll GPU memory while it runs; read its JSON."""
    requests = max(1, args.vllm_requests_per_seq * seqs)
    options = engine_args(args, seqs, ckpt.get("max_position_embeddings"))
    work = Path(tempfile.mkdtemp(prefix="vidlake-vllm-"))
    result = work / "result.json"
    cmd = [sys.executable, str(Path(__file__).resolve().with_name("gpu.py")), "--vllm-worker", "--checkpoint", ckpt["path"],
           "--worker-seqs", str(seqs), "--worker-requests", str(requests), "--worker-out", str(result),
           "--worker-engine-args", json.dumps(options), "--frames", str(args.frames),
           "--new-tokens", str(args.new_tokens), *(["--vllm-prefill"] if args.vllm_prefill else [])]
    entry: dict = {"seqs": seqs, "requests": requests, "engine_args": options}
    before = probe() or 0
    peak = before
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True)  # a group of its own: end_tree ends all of it
    try:
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                peak = max(peak, probe() or 0)
                if time.perf_counter() - began > args.vllm_timeout:
                    entry["error"] = f"timed out after {args.vllm_timeout} s (--vllm-timeout)"
                    break
    finally:
        end_tree(proc)
    entry["worker_s"] = round(time.perf_counter() - began, 1)
    if result.is_file():
        entry.update(json.loads(result.read_text()))
    elif "error" not in entry:
        entry["error"] = f"the worker exited with status {proc.returncode} without a result (see the log above)"
    shutil.rmtree(work, ignore_errors=True)
    if peak > before:
        entry["peak_gib"] = round((peak - before) / 2**30, 1)
    for _ in range(60):  # wait until the worker's memory is back before the next engine sizes itself
        now = probe()
        if now is None or now <= before + 2**30:
            break
        time.sleep(0.5)
    return entry


def run_vllm(args, res: dict, report) -> None:
    """Every ``--vllm-seqs`` setting, largest first (the one the ratio most likely rests on, should the run
    be cut short)."""
    method, probe = gpu_memory_probe()
    part = res["vllm"]
    part.update(memory_method=method, runs=[])
    for seqs in sorted(args.vllm_seqs, reverse=True):
        print(f"## vLLM, max_num_seqs {seqs}", flush=True)
        entry = run_vllm_setting(args, seqs, part["checkpoint"], probe)
        derive(entry, args.frames, args.frames / args.window_fps, res["decode"].get("frames_s_per_core"))
        part["runs"].append(entry)
        shown = {k: v for k, v in entry.items() if k not in ("traceback", "engine_args")}
        print(f"vLLM max_num_seqs {seqs}: {json.dumps(shown)}", flush=True)
        report(res)
