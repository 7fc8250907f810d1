"""The transformers measurements of the GPU benchmark (benchmarks/gpu.py, ``--engine hf``): the model built in
memory, one window through vidlake's own input path, prefill and full-answer seconds per batch size, and the
transformers table (``$OUT/gpu.md``, ``gpu.json``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

import torch

from gpu_common import caption_text, error_text, free_cuda, num, timed, window  # first: the checkout on sys.path
from vidlake.models.full_size import full_config_and_processor, random_model
from vidlake.models.molmo2_inputs import collate, pixel_norm, prepare_window

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


def generate(model, inputs, pad: int, new_tokens: int):
    """RunModel._generate's call (greedy; min_new_tokens as with ignore_eos=True)."""
    with torch.inference_mode():
        return model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, min_new_tokens=new_tokens,
                              pad_token_id=pad)


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


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
