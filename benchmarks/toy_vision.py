"""How fast the toy Molmo 2's ViT learns an object's shape, by the object's size in patches.

    python benchmarks/toy_vision.py [--steps 1500] [--cnn-steps 500]

The simplest shape task there is: one frame of 112 px, a noisy plain background of a random colour, one
object of the synthetic world (vidlake/evaluation/world.py: its shapes, its colours, drawn by its
``covers``) anywhere in the frame; which shape is it (circle, square or triangle)? Each model is trained
from its initialisation, side by side in one run, on batches of 32 fresh frames (AdamW at the toy's vision
rate, 1.8e-3, 100 warm-up steps then cosine decay), and scored on the same 600 held-out frames:

* the toy's ViT (Molmo 2's ``Molmo2VisionModel`` with the toy's sizes: 3 layers of width 128, 14 px patches,
  the sine-cosine position table), a linear head on the mean of its last-layer patches, with the objects
  at the world's sizes at the toy's 112 px frames (6-16% of the frame: 7-18 px, about one patch), and the
  same with objects 2x and 3x as large, which is what the world's objects are at 224 and 336 px frames;
* for scale, a small CNN (3 convolutions of 64 channels, max-pooling; not Molmo 2's architecture) at the
  world's sizes.

Writes benchmarks/results/toy-vision.md; the hand-written findings are in toy-vision-notes.md.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from common import RESULTS, machine_header, write_result

SIDE = 112
SIZES = {"1x": (0.06, 0.16), "2x": (0.12, 0.32), "3x": (0.18, 0.48)}  # object size / frame side (world.py: 0.06-0.16)


def _frames(rng: np.random.Generator, n: int, sizes: tuple[float, float]):
    """``n`` frames of one object each, scaled to [-1, 1], and their shapes' indices."""
    import torch

    from vidlake.evaluation.world import COLOURS, SHAPES, covers

    colours = np.array(list(COLOURS.values()), np.float32)
    ys, xs = np.mgrid[0:SIDE, 0:SIDE] + 0.5  # pixel centres, as synth.draw_frame asks covers()
    frames, shapes = np.empty((n, SIDE, SIDE, 3), np.float32), np.empty(n, np.int64)
    for i in range(n):
        frame = rng.uniform(60, 160, 3).astype(np.float32) + rng.normal(0, 12, (SIDE, SIDE, 3)).astype(np.float32)
        size = rng.uniform(*sizes) * SIDE
        cx, cy = rng.uniform(size / 2, SIDE - size / 2, 2)
        shapes[i] = rng.integers(len(SHAPES))
        frame[covers(SHAPES[shapes[i]], size, cx, cy, xs, ys)] = colours[rng.integers(len(colours))]
        frames[i] = frame
    return torch.from_numpy(np.clip(frames, 0, 255) / 127.5 - 1), torch.from_numpy(shapes)


def _vit():
    """The toy's ViT (its vision config, its position table) and a linear head on its mean patch."""
    import torch
    from transformers.models.molmo2.modeling_molmo2 import Molmo2VisionModel

    from vidlake.models.toy import build_toy

    toy, _ = build_toy(0)
    vit = Molmo2VisionModel(toy.config.vision_config)
    vit.load_state_dict(toy.model.vision_tower.state_dict())  # Molmo 2's initialisation, the toy's position table
    patch, side = vit.config.patch_size, SIDE // vit.config.patch_size

    class Reader(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.vit, self.head = vit, torch.nn.Linear(vit.config.hidden_size, 3)

        def forward(self, x):  # N x H x W x 3 -> patches of 14 x 14 x 3, rows of patches (the processor's order)
            n = x.shape[0]
            patches = x.reshape(n, side, patch, side, patch, 3).permute(0, 1, 3, 2, 4, 5).reshape(n, side * side, -1)
            return self.head(self.vit(patches).last_hidden_state.mean(1))

    return Reader()


def _cnn():
    import torch

    nn = torch.nn

    class Cnn(nn.Module):
        def __init__(self, width: int = 64):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
                                     nn.Conv2d(width, width, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
                                     nn.Conv2d(width, width, 3, padding=1), nn.GELU(), nn.AdaptiveMaxPool2d(1))
            self.head = nn.Linear(width, 3)

        def forward(self, x):
            return self.head(self.net(x.permute(0, 3, 1, 2)).flatten(1))

    return Cnn()


def _train(model, sizes, steps: int, every: int) -> tuple[dict[int, float], float]:
    """Held-out accuracy every ``every`` steps, and seconds per step."""
    import torch

    rng, (held_x, held_y) = np.random.default_rng(1), _frames(np.random.default_rng(999), 600, sizes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.8e-3, weight_decay=0.01)
    scores, spent = {}, 0.0
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = 1.8e-3 * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))
        x, y = _frames(rng, 32, sizes)
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        spent += time.perf_counter() - started
        if step % every == 0 or step == steps:
            with torch.no_grad():
                scores[step] = float((model(held_x).argmax(1) == held_y).float().mean())
            print(f"  step {step}: held-out {scores[step]:.3f}", flush=True)
    return scores, spent / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500, help="steps of each ViT")
    parser.add_argument("--cnn-steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=250, help="score every this many steps")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    runs = [(f"toy ViT, objects {scale} ({lo * SIDE:.0f}-{hi * SIDE:.0f} px at 112 px)", _vit, (lo, hi), args.steps)
            for scale, (lo, hi) in SIZES.items()]
    runs.append((f"CNN, objects 1x ({SIZES['1x'][0] * SIDE:.0f}-{SIZES['1x'][1] * SIDE:.0f} px)", _cnn, SIZES["1x"],
                 args.cnn_steps))
    results = []
    for name, make, sizes, steps in runs:
        print(name, flush=True)
        torch.manual_seed(0)  # the same start for every run, the heads included, whatever ran before
        results.append((name, *_train(make(), sizes, steps, args.every)))
    marks = sorted({step for _, scores, _ in results for step in scores})
    rows = ["| model, objects | s / step | " + " | ".join(f"step {s:,}" for s in marks) + " |",
            "|---|---:|" + "---:|" * len(marks)]
    rows += [f"| {name} | {per:.3f} | " + " | ".join(f"{scores[s]:.3f}" if s in scores else "" for s in marks) + " |"
             for name, scores, per in results]
    report = "\n".join([
        "# Toy Molmo 2's ViT: how fast it learns an object's shape", "", machine_header(__file__), "",
        "One object on a noisy plain 112 px frame; which of 3 shapes (chance 0.33)? Held-out accuracy on 600 "
        "frames after each number of steps of 32 frames, and the seconds per step (forward and backward). The "
        "world's objects at 224 px frames are the 2x row's size in patches, at 336 px the 3x row's.", "", *rows])
    write_result(RESULTS / "toy-vision.md", report, notes=RESULTS / "toy-vision-notes.md")


if __name__ == "__main__":
    main()
