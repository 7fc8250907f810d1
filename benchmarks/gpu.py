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
import gc
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.append(str(ROOT))  # run from anywhere; PYTHONPATH (a pinned copy) wins

from vidlake.models.full_size import full_config_and_processor, random_model  # noqa: E402
from vidlake.models.molmo2_inputs import (  # noqa: E402
    collate, pixel_norm, prepare_window, strip_special_tokens, video_request,
)
from vidlake.models.prompts import PromptRegistry  # noqa: E402

YARDSTICK_PREFILL_S = 0.2  # 8B-class model, ~10k visual tokens of a 128-frame window, H100/H200 at full use


# ---------------------------------------------------------------------------------------------- shared


def param_counts(model) -> dict[str, int]:
    parts = {"total": 0, "vision": 0, "adapter": 0, "text": 0, "lm_head": 0}
    for name, p in model.named_parameters():
        n = p.numel()
        parts["total"] += n
        if ".vision_tower." in f".{name}":
            parts["vision"] += n
        elif "multi_modal_projector" in name or "adapter" in name:
            parts["adapter"] += n
        elif name.startswith("lm_head"):
            parts["lm_head"] += n
        else:
            parts["text"] += n
    return parts


def prefill_flops(config, counts: dict[str, int], prompt_tokens: int, frames: int, patches_per_frame: int) -> float:
    """Rough matmul FLOPs of one window's prefill: 2 x params x tokens (text without embeddings, vision tower
    per patch, adapter per visual token approximated by its MLP) + attention (causal text, per-frame ViT)."""
    t, v = config.text_config, config.vision_config
    emb = (t.vocab_size + t.additional_vocab_size) * t.hidden_size
    attention = 2 * t.num_hidden_layers * prompt_tokens**2 * t.num_attention_heads * t.head_dim  # causal: half
    text = 2 * (counts["text"] - emb) * prompt_tokens + attention
    patches = frames * patches_per_frame
    vit = 2 * counts["vision"] * patches + 4 * v.num_hidden_layers * frames * patches_per_frame ** 2 * v.hidden_size
    head = 2 * t.hidden_size * t.vocab_size  # logits of the last position only
    return float(text + vit + head + 2 * counts["adapter"] * (patches // 9))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def window(frames: int, side: int = 378, seed: int = 0):
    """Random uint8 frames and 2 fps timestamps 0.0, 0.5, ... (one window at the start of a video)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (frames, side, side, 3), dtype=np.uint8), [k * 0.5 for k in range(frames)]


def caption_text(tokenizer, times: list[float]) -> str:
    """The caption prompt as BuildPrompt renders it for a window starting at 0.0 (window-relative times)."""
    return strip_special_tokens(PromptRegistry().get("caption").render(None, 0.0, times[-1] + 0.5), tokenizer)


def generate(model, inputs, pad: int, new_tokens: int):
    """RunModel._generate's call (greedy; min_new_tokens as with ignore_eos=True)."""
    with torch.inference_mode():
        return model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, min_new_tokens=new_tokens,
                              pad_token_id=pad)


def timed(fn, device: str) -> tuple[float, object]:
    sync(device)
    began = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - began, out


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def free_cuda() -> None:
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        try:
            torch.cuda.empty_cache()
        except RuntimeError as exc:  # a CUDA error left by a failed batch: what comes next reports its own
            print(f"empty_cache: {error_text(exc)}", file=sys.stderr, flush=True)


def error_text(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


# ---------------------------------------------------------------------------------------------- transformers


def save(res: dict) -> None:
    """Write the transformers numbers so far to $OUT/gpu.md and gpu.json (after every batch size)."""
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu.json").write_text(json.dumps(res, indent=1))
        if res.get("runs"):
            Path(out, "gpu.md").write_text(markdown(res))


def run(args, report=None) -> dict:
    """The transformers measurements; ``report(res)`` is called after each step (the combined report)."""
    report = report or (lambda _: None)
    device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    size = "tiny" if args.tiny else args.size
    res: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "size": size,
                 "device": device, "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__,
                 "python": platform.python_version(), "frames": args.frames, "new_tokens": args.new_tokens,
                 "attn_implementation": "sdpa"}
    import transformers

    res["transformers"] = transformers.__version__
    if cuda:
        props = torch.cuda.get_device_properties(device)
        res.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   cuda=torch.version.cuda)
    print(f"# {size} Molmo 2 on {res.get('gpu', device)} ({res['dtype']}), torch {res['torch']}, "
          f"transformers {res['transformers']}", flush=True)

    config, processor = full_config_and_processor(size)
    tok = processor.tokenizer
    pad = tok.pad_token_id
    norm = pixel_norm(processor.video_processor)

    # One window, prepared on the CPU exactly as BuildPrompt does (caption template, window-relative times).
    frames, times = window(args.frames)
    text = caption_text(tok, times)
    res["prep_s"], row = timed(lambda: prepare_window(processor, frames, times, 0.0, text), "cpu")
    patches = row["pixel_values_videos"]
    res.update(visual_tokens=row["visual_tokens"], prompt_tokens=row["prompt_tokens"],
               patches_per_frame=int(patches.shape[1]), patch_mb_uint8=round(patches.nbytes / 2**20, 1))
    print(f"window: {args.frames} frames -> {row['visual_tokens']} visual / {row['prompt_tokens']} prompt tokens, "
          f"prepared in {res['prep_s']:.2f} s (CPU)", flush=True)

    res["build_s"], model = timed(lambda: random_model(config, tok, device, dtype), device)
    counts = param_counts(model)
    res["params"] = counts
    res["weights_gib"] = round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30, 2)
    res["config"] = {"text": {k: getattr(config.text_config, k) for k in (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "head_dim", "vocab_size", "additional_vocab_size")},
        "vision": {k: getattr(config.vision_config, k) for k in (
            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size")},
        "adapter": {k: getattr(config.adapter_config, k) for k in (
            "hidden_size", "intermediate_size", "text_hidden_size", "vision_feature_layer")}}
    flops = prefill_flops(config, counts, row["prompt_tokens"], args.frames, res["patches_per_frame"])
    res["prefill_tflop_per_window"] = round(flops / 1e12, 1)
    print(f"model: {counts['total'] / 1e9:.3f} B parameters ({res['weights_gib']} GiB), built in "
          f"{res['build_s']:.1f} s; ~{flops / 1e12:.0f} TFLOP per window prefill", flush=True)

    # Warm-up (kernels, cuBLAS handles, the allocator's first blocks): one short generate at batch 1.
    res["warmup_s"], _ = timed(lambda: generate(model, collate([row], pad, norm, device, dtype), pad, 2), device)
    print(f"warm-up {res['warmup_s']:.1f} s", flush=True)
    save(res)
    report(res)

    res["runs"] = []
    window_s = args.frames / args.window_fps
    for batch in args.batch_sizes:
        entry: dict = {"batch": batch}
        res["runs"].append(entry)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        inputs = out = None
        try:
            entry["collate_s"], inputs = timed(lambda: collate([row] * batch, pad, norm, device, dtype), device)
            prefill = []
            for _ in range(args.prefill_repeats):  # the first call at a new batch size also grows the allocator
                prefill.append(timed(lambda: generate(model, inputs, pad, 1), device)[0])
            full = []
            for _ in range(args.repeats):
                seconds, out = timed(lambda: generate(model, inputs, pad, args.new_tokens), device)
                full.append(seconds)
            generated = int(out.shape[1] - inputs["input_ids"].shape[1])
            assert generated == args.new_tokens, (generated, args.new_tokens)
        except Exception as exc:  # noqa: BLE001 - record it and end the sweep (results/gpu.md: batch 8 fails)
            entry["error"] = (f"out of memory: {str(exc).splitlines()[0][:200]}" if is_oom(exc)
                              else error_text(exc))
            if cuda:
                entry["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1)
            print(f"batch {batch}: {entry['error']}", flush=True)
            inputs = out = None
            free_cuda()
            break
        p, f = min(prefill), min(full)
        decode = f - p if f > p else None  # None: noise (full not slower than prefill: tiny runs only)
        entry.update(
            prefill_s=round(p, 4), prefill_all_s=[round(x, 4) for x in prefill], full_s=round(f, 4),
            full_all_s=[round(x, 4) for x in full], windows_s=round(batch / f, 4),
            windows_s_with_collate=round(batch / (f + entry["collate_s"]), 4),
            prefill_s_per_window=round(p / batch, 4),
            prefill_tflops=round(flops * batch / p / 1e12, 1),
            decode_tokens_s=round(batch * (args.new_tokens - 1) / decode, 1) if decode else None,
            decode_ms_per_step=round(1000 * decode / (args.new_tokens - 1), 2) if decode else None,
            generated_tokens_s=round(batch * args.new_tokens / f, 1),
            visual_tokens_s=round(batch * res["visual_tokens"] / f, 1),
            video_s_per_gpu_s=round(batch * window_s / f, 3),
        )
        if cuda:
            entry["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1)
        print(f"batch {batch}: {json.dumps(entry)}", flush=True)
        save(res)
        report(res)
        inputs = out = None
    save(res)
    model = None  # noqa: F841 - frees the GPU memory before vLLM starts
    free_cuda()
    return res


def num(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(res: dict) -> str:
    c = res["params"]
    gpu = f"{res['gpu']} ({res['gpu_memory_gib']} GiB, CUDA {res['cuda']})" if "gpu" in res else res["device"]
    lines = [
        f"Date {res['date']}; {gpu}; torch {res['torch']}; transformers {res['transformers']}; "
        f"python {res['python']}; {res['dtype']}, attention sdpa.",
        f"Model: Molmo 2 `{res['size']}` from `Molmo2Config` with random weights: {c['total'] / 1e9:.3f} B parameters "
        f"(vision {c['vision'] / 1e9:.3f} B, adapter {c['adapter'] / 1e9:.3f} B, text {c['text'] / 1e9:.3f} B, "
        f"LM head {c['lm_head'] / 1e9:.3f} B; {res['weights_gib']} GiB), built on the device in {res['build_s']:.1f} s.",
        f"Window: {res['frames']} frames (random uint8, 2 fps timestamps), caption prompt -> {res['visual_tokens']} "
        f"visual / {res['prompt_tokens']} prompt tokens ({res['patch_mb_uint8']} MB of uint8 patches; CPU "
        f"preparation {res['prep_s']:.2f} s, not in the table); ~{res['prefill_tflop_per_window']} TFLOP per window "
        f"prefill (estimate). Greedy, exactly {res['new_tokens']} new tokens per window (EOS ignored); the batch "
        "repeats one window (no padding).",
        "",
        "| batch | windows/s | prefill s (batch) | prefill s / window | prefill TFLOP/s | decode tokens/s | "
        "decode ms/step | full generate s | collate s | peak GPU GiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["runs"]:
        peak = f"{r['peak_gib']}" if "peak_gib" in r else "-"
        if "error" in r:
            lines.append(f"| {r['batch']} | {r['error']} | | | | | | | | {peak} |")
            continue
        lines.append(
            f"| {r['batch']} | {r['windows_s']:.3f} | {r['prefill_s']:.3f} | {r['prefill_s_per_window']:.3f} | "
            f"{r['prefill_tflops']:.0f} | {num(r['decode_tokens_s'])} | {num(r['decode_ms_per_step'])} | "
            f"{r['full_s']:.2f} | {r['collate_s']:.3f} | {peak} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- vLLM


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
    config = json.loads((folder / "config.json").read_text())
    # vLLM's Molmo2 class (as read in its source) loads allenai's original layout (config ``vit_config``,
    # ``model.transformer.wte.*``); save_pretrained of transformers' own Molmo2 writes ``vision_config`` and
    # ``model.language_model.*``. Recorded, so a load failure can be read against it.
    info["layout"] = "transformers (vision_config)" if "vision_config" in config else "original (vit_config)"
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


def end_tree(proc: subprocess.Popen) -> None:
    """End a process started in a session of its own and everything in it (a vLLM worker's engine-core
    process, even once the worker has exited), so its GPU memory is freed."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def run_vllm_setting(args, seqs: int, ckpt: dict, probe) -> dict:
    """Start a worker for ``max_num_seqs = seqs``; poll GPU memory while it runs; read its JSON."""
    requests = max(1, args.vllm_requests_per_seq * seqs)
    options = engine_args(args, seqs, ckpt.get("max_position_embeddings"))
    work = Path(tempfile.mkdtemp(prefix="vidlake-vllm-"))
    result = work / "result.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--vllm-worker", "--checkpoint", ckpt["path"],
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


def derive(entry: dict, frames: int, window_s: float, fps_per_core: float | None) -> None:
    """windows/s and what follows from it, for one setting of either engine (``entry`` holds windows/s or
    windows and wall seconds)."""
    if "wall_s" in entry and entry.get("windows"):
        wall = entry["wall_s"]
        entry.update(windows_s=round(entry["windows"] / wall, 4),
                     visual_tokens_s=round(entry["windows"] * entry["visual_tokens"] / wall, 1),
                     generated_tokens_s=round(entry["generated_tokens"] / wall, 1),
                     video_s_per_gpu_s=round(entry["windows"] * window_s / wall, 3))
        if entry.get("prefill_s"):
            entry["prefill_s_per_window"] = round(entry["prefill_s"] / entry["windows"], 4)
    if entry.get("windows_s"):
        entry["frames_s"] = round(entry["windows_s"] * frames, 2)
        if fps_per_core:
            entry["decode_cpus"] = round(entry["frames_s"] / fps_per_core, 2)


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


# ---------------------------------------------------------------------------------------------- whole job


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


def best(runs: list[dict]) -> dict | None:
    done = [r for r in runs if r.get("windows_s")]
    return max(done, key=lambda r: r["windows_s"]) if done else None


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


# ---------------------------------------------------------------------------------------------- report


def decode_rate(given: float | None, path: Path = RESULTS / "decode.md") -> dict:
    """Frames per CPU-second of one decoding core: ``given``, else the ``vidlake`` row of
    benchmarks/results/decode.md's table (its "frames per CPU-second" column)."""
    if given:
        return {"frames_s_per_core": given, "source": "--decode-fps-per-core"}
    try:
        text = path.read_text()
    except OSError:
        return {"frames_s_per_core": None, "source": f"{path} is missing: give --decode-fps-per-core"}
    header = None
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            continue
        cells = [c.strip().lower() for c in line.strip().strip("|").split("|")]
        if any("frames per cpu-second" in c for c in cells):
            header = cells
        elif header and cells[0] == "vidlake" and len(cells) == len(header):
            column = next(i for i, c in enumerate(header) if "frames per cpu-second" in c)
            try:
                value = float(cells[column])
            except ValueError:
                break
            written = re.search(r"Written by .*? on (\S+ \S+ UTC)", text)
            task = re.search(r"^Input: (.*)$", text, re.MULTILINE)
            when = f" (written {written[1]})" if written else ""
            return {"frames_s_per_core": value, "source": f"{path.relative_to(ROOT)}, row `vidlake`{when}",
                    "input": task[1][:300].rstrip(". ") if task else None}
    return {"frames_s_per_core": None, "source": f"no `vidlake` row with frames per CPU-second in {path}: "
            "give --decode-fps-per-core"}


def stored_hf(path: Path, args) -> dict:
    """transformers numbers measured earlier (results/gpu.json), for the ratio when this run measures vLLM only."""
    if not path.is_file():
        return {"skipped": f"not measured in this run and {path} is missing"}
    hf = json.loads(path.read_text())
    size = "tiny" if args.tiny else args.size
    if (hf.get("size"), hf.get("frames"), hf.get("new_tokens")) != (size, args.frames, args.new_tokens):
        return {"skipped": f"{path} holds size {hf.get('size')}, {hf.get('frames')} frames, {hf.get('new_tokens')} "
                "tokens, not this run's"}
    hf["source"] = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} (measured {hf.get('date')}, " \
                   "not in this run)"
    return hf


def summarize(res: dict) -> None:
    """Fill in what the stored transformers runs lack, and the two headline numbers."""
    window_s = res["frames"] / res["window_fps"]
    fps = res["decode"].get("frames_s_per_core")
    hf = res.get("hf") or {}
    for r in hf.get("runs", []):
        if r.get("windows_s"):
            r.setdefault("visual_tokens_s", round(r["windows_s"] * hf["visual_tokens"], 1))
            r.setdefault("video_s_per_gpu_s", round(r["windows_s"] * window_s, 3))
            derive(r, res["frames"], window_s, fps)
    top_hf, top_vllm = best(hf.get("runs", [])), best((res.get("vllm") or {}).get("runs", []))
    summary: dict = {}
    if top_hf and top_vllm:
        summary["ratio"] = round(top_vllm["windows_s"] / top_hf["windows_s"], 2)
        summary["ratio_goal_met"] = summary["ratio"] >= 3
    if top_vllm and fps:
        summary["decode_cpus"] = top_vllm["decode_cpus"]
    res["summary"] = summary


def table_row(engine: str, setting: str, r: dict) -> str:
    if r.get("error") or not r.get("windows_s"):
        return f"| {engine} | {setting} | {r.get('error', 'no result')} | | | | | | | |"
    peak = r.get("peak_gib", "-")
    seconds = r.get("wall_s", r.get("full_s"))
    return (f"| {engine} | {setting} | {r['windows_s']:.3f} | {r['visual_tokens_s']:,.0f} | "
            f"{r['generated_tokens_s']:,.1f} | {r['video_s_per_gpu_s']:.2f} | {r['frames_s']:.1f} | "
            f"{num(r.get('decode_cpus'))} | {peak} | {num(seconds, 2)} |")


def report_markdown(res: dict) -> str:
    hf, vl, job = res.get("hf") or {}, res.get("vllm") or {}, res.get("whole_job")
    ckpt, summary, decode = vl.get("checkpoint") or {}, res.get("summary") or {}, res["decode"]
    window_s = res["frames"] / res["window_fps"]
    engines = sorted({f"vLLM {r['vllm']} (torch {r['torch']})" for r in vl.get("runs", []) if "vllm" in r})
    params = f" ({ckpt['parameters'] / 1e9:.3f} B parameters)" if ckpt.get("parameters") else ""
    visual = f" -> {hf['visual_tokens']} visual tokens (transformers' count)" if hf.get("visual_tokens") else ""
    lines = [
        "# GPU throughput: transformers against vLLM (benchmarks/gpu.py)", "",
        f"Date {res['date']}; {res.get('gpu', 'no GPU')}; torch {res['torch']}, transformers {res['transformers']}"
        f"{'; ' + ', '.join(engines) if engines else ''}; python {res['python']}. Molmo 2 `{res['size']}` with "
        f"random weights{params}. Window: {res['frames']} random uint8 frames at 378 px, {res['window_fps']:g} fps "
        f"timestamps ({window_s:g} s of video), caption prompt{visual}; greedy, exactly {res['new_tokens']} new "
        "tokens per window (EOS ignored).", "",
        "| engine | setting | windows/s | visual tokens/s | generated tokens/s | video-s per GPU-s | frames/s | "
        "decode CPUs | peak GPU GiB | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in hf.get("runs", []):
        lines.append(table_row("transformers", f"batch {r['batch']}", r))
    for r in sorted(vl.get("runs", []), key=lambda r: r["seqs"]):
        lines.append(table_row("vLLM", f"max_num_seqs {r['seqs']}, {r['requests']} requests", r))
    lines.append("")
    top_hf, top_vllm = best(hf.get("runs", [])), best(vl.get("runs", []))
    if "ratio" in summary:
        lines.append(f"- **vLLM / transformers: {summary['ratio']:.2f}x windows/s** at the best setting of each "
                     f"(goal >= 3x: {'met' if summary['ratio_goal_met'] else 'not met'}): vLLM max_num_seqs "
                     f"{top_vllm['seqs']} {top_vllm['windows_s']:.3f} windows/s, transformers batch {top_hf['batch']} "
                     f"{top_hf['windows_s']:.3f}.")
    if hf.get("source"):
        lines.append(f"- transformers numbers from {hf['source']}.")
    for name, part in (("transformers", hf), ("vLLM", vl), ("whole job", job or {})):
        if part.get("skipped"):
            lines.append(f"- {name}: not run: {part['skipped']}")
        elif part.get("error"):
            lines.append(f"- {name}: failed: {part['error']}")
    if top_vllm and summary.get("decode_cpus") is not None:
        lines.append(f"- **Decode CPUs per GPU: {summary['decode_cpus']:.1f}** = the {top_vllm['frames_s']:.1f} "
                     f"frames/s the best vLLM setting consumes / {decode['frames_s_per_core']:g} frames per "
                     f"CPU-second ({decode['source']}; {decode.get('input') or 'its input'}).")
    elif not decode.get("frames_s_per_core"):
        lines.append(f"- Decode CPUs per GPU: no rate: {decode['source']}.")
    if vl.get("runs"):
        lines.append(f"- Peak GPU GiB: transformers, `torch.cuda.max_memory_allocated` in its process; vLLM, "
                     f"{vl.get('memory_method')} polled every 0.5 s over the worker's life, less the memory in use "
                     "before it started: it includes the KV cache vLLM reserves up front (gpu_memory_utilization "
                     f"{vl['runs'][0]['engine_args'].get('gpu_memory_utilization')}), a reservation, not a need.")
        counts = sorted({(r["visual_tokens"], r["prompt_tokens"]) for r in vl["runs"] if "visual_tokens" in r})
        for v, p in counts:
            lines.append(f"- vLLM counted {v} visual / {p} prompt tokens per window (BOS included).")
        short = [r["seqs"] for r in vl["runs"] if r.get("exact_length") is False]
        if short:
            lines.append(f"- Some answers were not exactly {res['new_tokens']} tokens (max_num_seqs {short}).")
        starts = ", ".join(f"{r['seqs']}: {r['engine_start_s']} s" for r in vl["runs"] if "engine_start_s" in r)
        if starts:
            lines.append(f"- vLLM engine start (not in the table), by max_num_seqs: {starts}.")
    if ckpt:
        lines.append(f"- Checkpoint: {ckpt.get('path')} ({'reused' if ckpt.get('reused') else 'written'}"
                     f"{', ' + str(ckpt['write_s']) + ' s' if ckpt.get('write_s') else ''}), "
                     f"{ckpt.get('layout')} layout.")
    if job and "ratio" in job:
        lines += [
            "", "## Whole job against the model stage alone", "",
            f"`run_job` over {job['videos']} synthetic videos of {job['video_seconds_each']:g} s (`make_synthetic`: "
            f"small H.264 / VP9 files, cheap to decode), model.engine vllm, max_num_seqs {job['seqs']}, "
            f"batch_size {job['batch_size']}: {job['windows']} windows ({job['windows_failed']} failed) of "
            f"{job['frames_per_window']} frames on average, {job['visual_tokens_per_window']} visual tokens and "
            f"{job['generated_tokens_per_window']} generated tokens per window (caption, max_new_tokens "
            f"{res['new_tokens']}; a job cannot ignore EOS).", "",
            f"- **Whole job / model stage: {job['ratio']:.2f}** (goal >= 0.8): the model actor's {job['batches']} "
            f"batches took {job['model_s']:.1f} s of the {job['span_s']:.1f} s from the first one's start to the "
            f"last one's end (between batches: {num(job['gap_mean_s'], 2)} s on average, {num(job['gap_max_s'], 2)} "
            f"s at most): {job['whole_windows_s']:.3f} windows/s in the job against {job['model_windows_s']:.3f} "
            f"in its batches alone, {job['whole_tokens_s']:.0f} against {job['model_tokens_s']:.0f} generated "
            "tokens/s. Engine start and ingest come before the first batch and are not in the span.",
            f"- Whole run {job['job_s']} s (ingest, Ray and engine start: first window back at "
            f"{job['first_window_s']} s, last at {job['last_window_s']} s).",
        ]
        if "whole_vs_standalone_per_token" in job:
            lines.append(f"- Per generated token against this benchmark's own vLLM run at max_num_seqs {job['seqs']} "
                         f"(full 128-frame windows): {job['whole_tokens_s']:.0f} / {job['standalone_tokens_s']:.0f} "
                         f"= {job['whole_vs_standalone_per_token']:.2f}.")
    return "\n".join(lines) + "\n"


def results_dir(args) -> Path | None:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"])
    if args.results_dir:
        return args.results_dir
    return None if args.tiny else RESULTS


def write_report(res: dict, folder: Path | None) -> None:
    """The combined results so far: ``folder``/gpu-vllm.json and gpu-vllm.md (after every step)."""
    if folder is None:
        return
    summarize(res)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpu-vllm.json").write_text(json.dumps(res, indent=1, default=str))
    (folder / "gpu-vllm.md").write_text(report_markdown(res))


# ---------------------------------------------------------------------------------------------- main


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
