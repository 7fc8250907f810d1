"""Inference benchmark: RunModel throughput against batch size, and the visual-token cost of a window.

    .venv/bin/python benchmarks/inference.py [--windows 16] [--new-tokens 32] [--threads 1]

1. Windows/s and generated tokens/s for batch sizes 1, 2, 4, 8 (tiny Molmo 2, this machine's
   device: CPU fp32 here, cuda bf16 where a GPU is visible), every window generating exactly
   ``--new-tokens`` tokens (EOS ignored) so batch sizes compare like for like. Each generate call is
   split into prefill (a 1-token call) and decode to show where the time goes.
2. Visual tokens, prompt tokens, CPU preparation time (``prepare_window``, what BuildPrompt runs per
   window) and bytes shipped per window for 16/64/128 frames, at the tiny checkpoint's 126 px and at
   released Molmo 2's 378 px (81 tokens per frame; same processor code, real video-processor
   settings). The 378 px prefill is what dominates on GPU.

Writes benchmarks/results/inference.md (tables, then benchmarks/results/inference-notes.md, the analysis).
Not part of the test run. Numbers depend on the machine: compare ratios, not absolute values.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# benchmarks/ is on sys.path when a script runs
from common import RESULTS, machine_header, write_result
from vidlake.models.molmo2 import load_processor, resolve_model
from vidlake.models.molmo2_inputs import prepare_window
from vidlake.models.prompts import PromptRegistry
from vidlake.operators.infer import InferConfig, RunModel
from vidlake.operators.prompt import BuildPrompt, PromptConfig, window_time_offset
from vidlake.platform.config import ModelSettings

QUERIES = ["the dog", "the red car on the left", "every person who enters through the door", "the ball"]


def window(i: int, frames: int, side: int = 378) -> dict:
    rng = np.random.default_rng(i)
    times = [round(10.0 * i + k * 0.5, 3) for k in range(frames)]
    return {"video_id": "bench", "window_id": f"w{i}", "window_index": i, "start_s": times[0], "end_s": times[-1] + 0.5,
            "frames": rng.integers(0, 256, (frames, side, side, 3), dtype=np.uint8), "timestamps_s": times,
            "width": 1280, "height": 720, "rotation": 0, "status": "ok"}


def prepare(ref, settings, rows, task="track"):
    registry = PromptRegistry()
    out = []
    for i, row in enumerate(rows):
        op = BuildPrompt(PromptConfig(model=ref, template=registry.get(task), query=QUERIES[i % len(QUERIES)],
                                      settings=settings))
        out.append(op(row))
    return out


def columns(rows):
    return {k: [r[k] for r in rows] for k in rows[0]}


def run(op: RunModel, rows) -> float:
    began = time.perf_counter()
    op(columns(rows))
    return time.perf_counter() - began


def throughput(ref, settings, prepared, new_tokens: int, repeats: int) -> list[dict]:
    """Rounds interleave the batch sizes and the best round counts: on a shared machine a neighbour's
    burst then slows one round of every size, not all rounds of one size."""
    sizes = (1, 2, 4, 8)
    ops = {}
    for batch in sizes:
        for limit in (new_tokens, 1):  # full answer, and prefill + 1 token
            op = RunModel(InferConfig(model=ref, settings=settings, batch_size=batch, max_new_tokens=limit,
                                      ignore_eos=True))
            op.ensure_setup()
            run(op, prepared[:batch])  # warm-up
            ops[batch, limit] = op
    best: dict[tuple[int, int], float] = {}
    for _ in range(repeats):
        for key, op in ops.items():
            best[key] = min(best.get(key, float("inf")), run(op, prepared))
    n, results = len(prepared), []
    for batch in sizes:
        total, first = best[batch, new_tokens], best[batch, 1]
        results.append({"batch": batch, "seconds": total, "windows_s": n / total, "tokens_s": n * new_tokens / total,
                        "prefill_ms_per_window": 1000 * first / n,
                        "decode_ms_per_step": 1000 * max(0.0, total - first) / (n / batch) / (new_tokens - 1),
                        "pad_share": pad_share(prepared, batch)})
    return results


def pad_share(prepared, batch: int) -> float:
    """Fraction of prefill positions that are padding when windows are sorted by length and chunked."""
    lengths = sorted(r["prompt_tokens"] for r in prepared)
    padded = sum(max(lengths[i : i + batch]) * len(lengths[i : i + batch]) for i in range(0, len(lengths), batch))
    return 1 - sum(lengths) / padded


def token_costs(ref, settings) -> list[dict]:
    from transformers import Molmo2ImageProcessor, Molmo2Processor, Molmo2VideoProcessor

    tiny = load_processor(ref, settings)
    real = Molmo2Processor(image_processor=Molmo2ImageProcessor(),
                           video_processor=Molmo2VideoProcessor(do_rescale=True, do_normalize=True),
                           tokenizer=tiny.tokenizer, chat_template=tiny.chat_template)
    model = RunModel(InferConfig(model=ref, settings=settings, batch_size=1, max_new_tokens=1, ignore_eos=True))
    model.ensure_setup()
    template = PromptRegistry().get("caption")
    out = []
    for frames in (16, 64, 128):
        row = window(0, frames)
        offset = window_time_offset(row)
        text = template.render(None, 0.0, row["end_s"] - offset)
        for name, processor in (("tiny 126 px", tiny), ("Molmo 2 378 px", real)):
            prep = float("inf")
            for _ in range(3):  # best of 3 (shared machine)
                began = time.perf_counter()
                inputs = prepare_window(processor, row["frames"], row["timestamps_s"], offset, text)
                prep = min(prep, time.perf_counter() - began)
            shipped = inputs["pixel_values_videos"].nbytes
            prefill = None
            if name.startswith("tiny"):  # BuildPrompt's row (the tiny checkpoint's processor) through RunModel
                prepared = BuildPrompt(PromptConfig(model=ref, template=template, settings=settings))(dict(row))
                prefill = min(run(model, [prepared]) for _ in range(3))
            out.append({"frames": frames, "geometry": name, "visual": inputs["visual_tokens"],
                        "prompt": inputs["prompt_tokens"], "prep_ms": 1000 * prep, "mb_uint8": shipped / 2**20,
                        "mb_fp32": 4 * shipped / 2**20, "prefill_ms": None if prefill is None else 1000 * prefill})
    return out


def _throughput_table(rows) -> list[str]:
    lines = [
        "| batch | windows/s | generated tokens/s | per-window speed-up vs batch 1 | prefill ms/window | decode ms/step | padding share |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = rows[0]["windows_s"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['windows_s']:.2f} | {r['tokens_s']:.1f} | {r['windows_s'] / base:.2f}x | "
                     f"{r['prefill_ms_per_window']:.1f} | {r['decode_ms_per_step']:.1f} | {100 * r['pad_share']:.1f}% |")
    return lines


def report(args, ref, rows, heavy_rows, costs) -> str:
    dev = ("cuda " + torch.cuda.get_device_name(0) if torch.cuda.is_available()
           else f"cpu, {torch.get_num_threads()} torch thread(s)")
    lines = [
        "# Inference benchmark (benchmarks/inference.py)", "",
        f"{machine_header(__file__)} Model {ref.model_id}@{ref.revision}; device {dev}; torch {torch.__version__}.",
        f"{args.windows} windows of 8 frames (378 px in, tiny processor resizes to 126 px: 9 visual tokens/frame), "
        f"track prompts of 4 lengths, greedy, exactly {args.new_tokens} new tokens each (EOS ignored); "
        f"best of {args.repeats} interleaved rounds after a warm-up.", "",
        "## Throughput against batch size (8-frame windows: decode-heavy)", "",
        *_throughput_table(rows), "",
        "## Throughput against batch size (128-frame windows, 8 new tokens: prefill-heavy)", "",
        "8 windows of 128 frames (1152 visual tokens, ~2000 prompt tokens each).", "",
        *_throughput_table(heavy_rows),
    ]
    lines += ["", "## Visual tokens per window (the prefill cost)", "",
              "| frames | geometry | visual tokens | prompt tokens | prepare_window CPU ms | uint8 patches shipped (MB) | same as fp32 (MB) | tiny prefill ms |",
              "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for c in costs:
        prefill = "-" if c["prefill_ms"] is None else f"{c['prefill_ms']:.0f}"
        lines.append(f"| {c['frames']} | {c['geometry']} | {c['visual']} | {c['prompt']} | {c['prep_ms']:.0f} | "
                     f"{c['mb_uint8']:.1f} | {c['mb_fp32']:.1f} | {prefill} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "inference.md")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: stable numbers on a shared machine; see the notes)")
    parser.add_argument("--notes", type=Path, default=RESULTS / "inference-notes.md",
                        help="Markdown appended to the report (the analysis).")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        settings = ModelSettings(name="tiny", tiny_dir=str(Path(tmp) / "tiny"), local_files_only=True)
        ref = resolve_model(settings)
        prepared = prepare(ref, settings, [window(i, 8) for i in range(args.windows)])
        rows = throughput(ref, settings, prepared, args.new_tokens, args.repeats)
        heavy = prepare(ref, settings, [window(i, 128, side=126) for i in range(8)])
        heavy_rows = throughput(ref, settings, heavy, 8, args.repeats)
        costs = token_costs(ref, settings)
    write_result(args.out, report(args, ref, rows, heavy_rows, costs), notes=args.notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
