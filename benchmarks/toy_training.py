"""Toy Molmo 2 training runs side by side: their loss curves (one plot) and held-out scores (one table).

    python benchmarks/toy_training.py NAME=FOLDER [NAME=FOLDER ...]

Each FOLDER is the output of ``vidlake model train-toy`` (its ``losses.csv`` and ``vidlake-toy.json``).
Writes benchmarks/results/toy-training.md and toy-training-loss.png; the hand-written findings are in
benchmarks/results/toy-notes.md, appended to the report.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from common import RESULTS, machine_header, score, write_result


def main(runs: list[str]) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 3.5), dpi=100)
    text_ax, probe_ax, attend_ax = figure.subplots(1, 3)
    rows = ["| run | steps | minutes | lr x vision | probe | attention | curriculum | count exact (n) | point F1 | "
            "captions naming all (n) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for i, item in enumerate(runs):
        name, _, folder = item.partition("=")
        meta = json.loads((Path(folder) / "vidlake-toy.json").read_text())
        with open(Path(folder) / "losses.csv") as f:
            losses = list(csv.DictReader(f))
        steps = [int(r["step"]) for r in losses]
        style = {"label": name.split(" (")[0], "color": f"C{i % 10}"}  # the legend names the run (the table
        # below describes it), in one colour in every plot
        text_ax.plot(steps, _smooth([float(r["text_loss"]) for r in losses]), **style)
        probe_ax.plot(steps, _smooth([float(r["probe_loss"]) for r in losses]), **style)
        if "attend_loss" in losses[0]:  # runs from before the attention loss have none
            attend_ax.plot(steps, _smooth([float(r["attend_loss"]) for r in losses]), **style)
        s, t = meta.get("scores") or {}, meta["train"]
        rows.append(f"| {name} | {meta['steps']} | {meta['seconds'] / 60:.1f} | {t['lr']} x {t['vision_lr_scale']} | "
                    f"{t['aux_weight']} | {t.get('attend_weight', 0)} | {t.get('curriculum', 0)} | "
                    f"{score(s.get('count_exact'))} ({s.get('count_windows', '-')}) | "
                    f"{score(s.get('point_f1'))} | {score(s.get('caption_names_all'))} ({s.get('caption_windows', '-')}) |")
    for ax, title in ((text_ax, "text loss (answers)"), (probe_ax, "probe loss (visual tokens)"),
                      (attend_ax, "attention loss (the objects' tokens)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(RESULTS / "toy-training-loss.png")
    report = "\n".join([
        "# Toy Molmo 2 training runs", "", machine_header(__file__), "",
        "Scores on 60 held-out windows of validation worlds (vidlake/models/toy_eval.py; the benchmark's worlds "
        "are never trained on). Losses smoothed over 20 steps:", "", "![loss curves](toy-training-loss.png)", "",
        *rows])
    write_result(RESULTS / "toy-training.md", report, notes=RESULTS / "toy-notes.md")


def _smooth(values: list[float], k: int = 20) -> list[float]:
    return [sum(values[max(0, i - k + 1):i + 1]) / len(values[max(0, i - k + 1):i + 1]) for i in range(len(values))]


if __name__ == "__main__":
    main(sys.argv[1:])
