"""The GPU benchmark's report (benchmarks/gpu.py): the decode rate per CPU core, stored transformers numbers,
what follows from windows/s (frames/s, decode CPUs), the headline ratio, and the combined Markdown and JSON
(``gpu-vllm.md``, ``gpu-vllm.json``) written after every step."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from gpu_common import RESULTS, ROOT, num


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


def best(runs: list[dict]) -> dict | None:
    done = [r for r in runs if r.get("windows_s")]
    return max(done, key=lambda r: r["windows_s"]) if done else None


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
