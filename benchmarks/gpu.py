"""GPU baseline: vidlake's transformers (Hugging Face ``generate``) path at full Molmo 2 size, random weights.

    python benchmarks/gpu.py                 # full size (8B-class, bf16) on cuda:0: 128-frame windows, 256 tokens
    python benchmarks/gpu.py --tiny          # the same code on a small config (CPU fp32 test, seconds)
    python benchmarks/gpu.py --size 4b --batch-sizes 1,4

Throughput does not depend on weight values, so the model is built from ``Molmo2Config`` in code
(no download) with random weights. Inputs go through vidlake's own path: the caption prompt
rendered as BuildPrompt renders it, ``prepare_window`` (processor -> uint8 patches, 378 px, real
Molmo 2 video-processor settings: 81 visual tokens per frame), ``collate`` (left padding, pixel
normalisation on the device) and the ``model.generate`` call RunModel makes (greedy,
``min_new_tokens = max_new_tokens``: EOS ignored, as ``InferConfig(ignore_eos=True)``).

For each batch size (windows per generate call): a warm-up, then prefill seconds (best of
``--prefill-repeats`` calls with ``max_new_tokens=1``), full-answer seconds (best of ``--repeats``
calls), windows/s, decode tokens/s ((full - prefill) over the batch's (new_tokens - 1) steps), peak
GPU memory (``torch.cuda.max_memory_allocated``). A batch size that runs out of memory is recorded
and ends the sweep. Prints a Markdown table; with ``$OUT`` set (the device runner) also writes
``$OUT/gpu.md`` and ``$OUT/gpu.json``; ``--out`` writes the Markdown elsewhere.

The sizes (``--size 8b`` with the adapter fix, ``--size 4b`` with Qwen3-4B's text shape), the tokenizer
and the model builder live in :mod:`vidlake.models.full_size`, which also writes such a model as a
checkpoint folder (``vidlake model make-random``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.append(str(Path(__file__).resolve().parents[1]))  # run from anywhere; PYTHONPATH (a pinned copy) wins

from vidlake.models.full_size import full_config_and_processor, random_model  # noqa: E402
from vidlake.models.molmo2_inputs import collate, pixel_norm, prepare_window, strip_special_tokens  # noqa: E402
from vidlake.models.prompts import PromptRegistry  # noqa: E402

YARDSTICK_PREFILL_S = 0.2  # 8B-class model, ~10k visual tokens of a 128-frame window, H100/H200 at full use


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


def save(res: dict) -> None:
    """Write what is measured so far to $OUT (after every batch size: a run cut short still reports)."""
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu.json").write_text(json.dumps(res, indent=1))
        if res.get("runs"):
            Path(out, "gpu.md").write_text(markdown(res))


def run(args) -> dict:
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
    template = PromptRegistry().get("caption")
    text = strip_special_tokens(template.render(None, 0.0, times[-1] + 0.5), tok)
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

    res["runs"] = []
    for batch in args.batch_sizes:
        entry: dict = {"batch": batch}
        res["runs"].append(entry)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
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
        except Exception as exc:  # noqa: BLE001 - record OOM and stop the sweep; anything else is a bug
            if not is_oom(exc):
                raise
            entry["error"] = f"out of memory: {str(exc).splitlines()[0][:200]}"
            if cuda:
                entry["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1)
            print(f"batch {batch}: {entry['error']}", flush=True)
            save(res)
            inputs = out = None
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
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
        )
        if cuda:
            entry["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1)
        print(f"batch {batch}: {json.dumps(entry)}", flush=True)
        save(res)
        del inputs, out
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small config (CPU test): 16 frames, 8 tokens, batch 1,2")
    parser.add_argument("--size", choices=("8b", "4b"), default="8b")
    parser.add_argument("--device", default=None, help="default: cuda:0 when visible, else cpu")
    parser.add_argument("--frames", type=int, default=None, help="frames per window (default 128; tiny 16)")
    parser.add_argument("--new-tokens", type=int, default=None, help="default 256; tiny 8")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,2,4,8; tiny 1,2)")
    parser.add_argument("--prefill-repeats", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="full-answer calls per batch size (best counts)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    args.frames = args.frames or (16 if args.tiny else 128)
    args.new_tokens = args.new_tokens or (8 if args.tiny else 256)
    args.batch_sizes = [int(b) for b in (args.batch_sizes or ("1,2" if args.tiny else "1,2,4,8")).split(",")]
    began = time.perf_counter()
    res = run(args)
    res["script_s"] = round(time.perf_counter() - began, 1)
    text = markdown(res)
    print(text, flush=True)
    save(res)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
