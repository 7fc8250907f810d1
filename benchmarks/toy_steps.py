"""How the toy Molmo 2's held-out scores grow with its training steps.

    python benchmarks/toy_steps.py [--windows N] NAME=FOLDER [NAME=FOLDER ...]

Each FOLDER is the output of ``vidlake model train-toy``; with ``--save-every``, its ``step-N`` snapshots are
scored too. Every checkpoint is scored on the same held-out windows of validation worlds (one seed of
vidlake/models/toy_eval.py), so the rows differ only in their weights. A snapshot is a point on the way
of a longer schedule (its learning rate had not decayed yet), the folder itself the end of one. Writes
benchmarks/results/toy-steps.md and toy-steps.png; the hand-written findings are in toy-steps-notes.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from common import RESULTS, machine_header, score, write_result

GOALS = {"count_exact": 0.8, "point_f1": 0.7, "caption_names_all": 0.8}  # issue 20's (HOTA: accuracy.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=FOLDER")
    parser.add_argument("--windows", type=int, default=240, help="held-out windows per checkpoint")
    parser.add_argument("--processes", type=int, default=2, help="checkpoints scored at once, one thread each "
                        "(generation of a model this small gains little from a second thread)")
    args = parser.parse_args()

    rows = ["| run | step | of | count exact ± s.e. (n) | point F1 (precision, recall) | captions naming all (n) | "
            "kinds named | scoring s |", "|---|---|---|---|---|---|---|---|"]
    jobs = []
    for item in args.runs:
        name, _, folder = item.partition("=")
        total = json.loads((Path(folder) / "vidlake-toy.json").read_text())["steps"]
        checkpoints = sorted((int(p.name.split("-")[1]), p) for p in Path(folder).glob("step-*"))
        jobs += [(name, step, total, path) for step, path in [*checkpoints, (total, Path(folder))]]
    with ProcessPoolExecutor(args.processes, mp_context=get_context("spawn")) as pool:
        scored = list(pool.map(_evaluate, [path for *_, path in jobs], [args.windows] * len(jobs)))
    curves = {}
    for (name, step, total, _), (s, seconds) in zip(jobs, scored):
        curves.setdefault(name, []).append((step, s))
        c, n = s["count_exact"], s["count_windows"]
        error = score(math.sqrt(c * (1 - c) / n)) if n else "-"
        rows.append(f"| {name} | {step} | {total} | {score(c)} ± {error} ({n}) | {score(s['point_f1'])} "
                    f"({score(s['point_precision'])}, {score(s['point_recall'])}) | {score(s['caption_names_all'])} "
                    f"({s['caption_windows']}) | {score(s['caption_kinds_named'])} | {seconds:.0f} |")
    _plot(curves)
    report = "\n".join([
        "# Toy Molmo 2: held-out scores by training step", "", machine_header(__file__), "",
        f"Each checkpoint scored on the same {args.windows} held-out windows of validation worlds "
        "(vidlake/models/toy_eval.py). *of*: the steps of the run's schedule (a snapshot before its end was "
        "taken at a higher learning rate). Dashed lines: issue 20's goals.", "",
        "![scores by step](toy-steps.png)", "", *rows])
    write_result(RESULTS / "toy-steps.md", report, notes=RESULTS / "toy-steps-notes.md")


def _evaluate(path: Path, windows: int) -> tuple[dict, float]:
    import torch
    from transformers import AutoProcessor, Molmo2ForConditionalGeneration

    from vidlake.models.toy_eval import evaluate_toy

    torch.set_num_threads(1)
    processor = AutoProcessor.from_pretrained(path)
    model = Molmo2ForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    started = time.monotonic()
    scores = evaluate_toy(model, processor, windows)
    print(f"scored {path}: {scores}", flush=True)
    return scores, time.monotonic() - started


def _plot(curves: dict) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 3.5), dpi=100)
    for ax, (key, title) in zip(figure.subplots(1, 3), (("count_exact", "count exact"), ("point_f1", "point F1"),
                                                         ("caption_kinds_named", "caption: kinds named"))):
        for i, (name, points) in enumerate(curves.items()):
            ax.plot([p[0] for p in points], [p[1][key] or 0.0 for p in points], "o-", color=f"C{i % 10}", label=name)
        if key in GOALS:
            ax.axhline(GOALS[key], color="grey", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(RESULTS / "toy-steps.png")


if __name__ == "__main__":
    main()
