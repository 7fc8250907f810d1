"""How well the toy Molmo 2 answers held-out windows of the synthetic world, per task, with vidlake's own
parser and metrics: count exact accuracy, point F1 (matched within 5% of the frame diagonal), the share of
captions that name every kind of object in the window, and the share of the windows' kinds they name. The
window is compared with the oracle's answer to it, parsed the same way. (The full job and ``vidlake eval``,
with tracks and HOTA, are benchmarks/accuracy.py's.)"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["VALIDATION_SEEDS", "evaluate_toy"]

VALIDATION_SEEDS = range(500, 1000)  # neither trained on (toy_data.FIRST_SEED and up) nor the benchmark's


def evaluate_toy(model: Any, processor: Any, windows: int = 60, seed: int = 0, max_new_tokens: int = 256,
                 tasks: tuple[str, ...] | None = None) -> dict:
    """The scores of ``windows`` held-out windows drawn with ``seed``, of every task (or of ``tasks``)."""
    import torch

    from vidlake.evaluation.metrics import count_metrics, point_metrics
    from vidlake.models.molmo2_inputs import collate, pixel_norm, prepare_window
    from vidlake.models.molmo2_parse import parse_molmo2
    from vidlake.models.toy_data import TASKS, WorldWindows

    source = WorldWindows(VALIDATION_SEEDS, tasks=tasks or TASKS)
    rng = np.random.default_rng(seed)
    norm, pad = pixel_norm(processor.video_processor), processor.tokenizer.pad_token_id
    counts, pred_points, true_points, named, kinds_named = [], [], [], [], []
    sizes = {}
    model.eval()
    for i in range(windows):
        window = source.sample(rng)
        row = prepare_window(processor, window.frames, window.timestamps_s, window.timestamps_s[0], window.prompt)
        inputs = collate([row], pad, norm)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens)
        text = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        w, h = window.size
        sizes[str(i)] = (w, h)
        said, truth = (parse_molmo2(t, width=w, height=h, frame_times_s=window.timestamps_s,
                                    time_offset_s=window.timestamps_s[0]) for t in (text, window.answer))
        if window.task == "count":
            counts.append((said.count, truth.count or 0))
        elif window.task in ("point", "track"):
            for answer, into in ((said, pred_points), (truth, true_points)):
                into += [(str(i), window.query, p.t, p.x, p.y) for p in (*answer.points, *answer.tracks)
                         if p.t is not None]  # a point without a time (a broken group) matches nothing
        elif window.task == "caption":
            kinds = {label for objects in window.objects for label, _, _ in objects}
            named.append(all(kind in text for kind in kinds))
            kinds_named += [kind in text for kind in kinds]
    points = point_metrics(pred_points, true_points, sizes)
    return {"windows": windows, "count_exact": count_metrics(counts).exact if counts else None,
            "count_windows": len(counts), "point_f1": points.f1, "point_precision": points.precision,
            "point_recall": points.recall, "caption_names_all": float(np.mean(named)) if named else None,
            "caption_windows": len(named), "caption_kinds_named": float(np.mean(kinds_named)) if kinds_named else None}
