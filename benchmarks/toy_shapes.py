"""What the toy Molmo 2's vision side knows about an object: its colour and its shape, read by a linear model.

    python benchmarks/toy_shapes.py [--windows 300] NAME=FOLDER [NAME=FOLDER ...]

For one-frame held-out windows of validation worlds, every object alone in its visual token's cell gives
three feature vectors per checkpoint: the visual token of that cell (what the language model receives),
the ViT's last-layer patch that holds the object's centre, and the ViT's patch embedding there. A logistic
regression (features standardised, fitted on half the objects, scored on the other half) reads the
object's colour (4 classes) and its shape (3: circle, square, triangle) from each. Two pixel baselines,
with no model, show what the frames themselves offer at the toy's frame size: a crop centred on the
object, and the cell-aligned crop a visual token pools (2 x 2 patches of 14 px), each as its silhouette
(distance from the crop's median colour; for colour, the mean RGB of the crop is added). Writes
benchmarks/results/toy-shapes.md; the hand-written findings are in toy-shapes-notes.md.
"""

from __future__ import annotations

import argparse

import numpy as np

from common import RESULTS, machine_header, write_result


def _objects(windows: int):
    """One-frame validation windows and, per window, the objects alone in their 4 x 4 cell."""
    from vidlake.models.toy_data import WorldWindows, _cell
    from vidlake.models.toy_eval import VALIDATION_SEEDS

    source = WorldWindows(VALIDATION_SEEDS, frames=(1, 1), tasks=("point",))
    rng = np.random.default_rng(1)
    for _ in range(windows):
        window = source.sample(rng)
        cells: dict = {}
        for label, x, y in window.objects[0]:
            cells.setdefault(_cell(x, y, 4), []).append((label, x, y))
        yield window, [found[0] for found in cells.values() if len(found) == 1]


def _read(features: np.ndarray, labels: list[str]) -> float:
    """Held-out accuracy of a logistic regression from ``features`` to ``labels`` (first half fits)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    half = len(labels) // 2
    x = StandardScaler().fit(features[:half]).transform(features)
    y = np.asarray(labels)
    return float(LogisticRegression(max_iter=3000).fit(x[:half], y[:half]).score(x[half:], y[half:]))


def _checkpoint(folder: str, windows: int) -> tuple[dict[str, tuple[float, float]], int]:
    """(colour and shape accuracy per kind of feature, held-out objects)."""
    import torch
    from transformers import AutoProcessor, Molmo2ForConditionalGeneration

    from vidlake.models.molmo2_inputs import collate, pixel_norm, prepare_window
    from vidlake.models.toy_data import _cell

    model = Molmo2ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(folder)
    side = model.config.vision_config.image_size[0] // model.config.vision_config.patch_size
    norm, pad = pixel_norm(processor.video_processor), processor.tokenizer.pad_token_id
    features: dict[str, list] = {"visual token": [], "ViT last layer (patch)": [], "patch embedding": []}
    colours, shapes = [], []
    for window, objects in _objects(windows):
        row = prepare_window(processor, window.frames, window.timestamps_s, window.timestamps_s[0], window.prompt)
        inputs = collate([row], pad, norm)
        with torch.no_grad():
            tokens = model.model.get_video_features(inputs["pixel_values_videos"], inputs["video_token_pooling"],
                                                    inputs["video_grids"]).pooler_output[0].numpy()
            pixels = inputs["pixel_values_videos"]
            vit = model.model.vision_tower(pixels.reshape(-1, *pixels.shape[-2:]), output_hidden_states=True)
        first, last = vit.hidden_states[0][0].numpy(), vit.hidden_states[-1][0].numpy()
        for label, x, y in objects:
            (r, c), (pr, pc) = _cell(x, y, 4), _cell(x, y, side)
            features["visual token"].append(tokens[r * 4 + c])
            features["ViT last layer (patch)"].append(last[pr * side + pc])
            features["patch embedding"].append(first[pr * side + pc])
            colour, shape = label.split()
            colours.append(colour)
            shapes.append(shape)
    read = {name: (_read(np.array(f), colours), _read(np.array(f), shapes)) for name, f in features.items()}
    return read, len(colours) - len(colours) // 2


def _pixels(windows: int, size: int) -> dict[str, tuple[float, float]]:
    """The two pixel baselines at ``size`` px frames (the toy's), resized as its processor does (bicubic)."""
    from PIL import Image

    half_crop = 8  # a 16 px crop: most objects (7-18 px at 112 px) fit
    cell = 28
    crops: dict[str, list] = {"pixels, crop centred on the object": [], "pixels, the token's cell (aligned)": []}
    colours, shapes = [], []
    for window, objects in _objects(windows):
        frame = np.asarray(Image.fromarray(window.frames[0]).resize((size, size), Image.BICUBIC), np.float32) / 255
        padded = np.pad(frame, ((half_crop, half_crop), (half_crop, half_crop), (0, 0)), mode="edge")
        for label, x, y in objects:
            cx, cy = int(x * size), int(y * size)
            centred = padded[cy:cy + 2 * half_crop, cx:cx + 2 * half_crop]
            r, c = min(size // cell - 1, cy // cell), min(size // cell - 1, cx // cell)
            aligned = frame[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell]
            crops["pixels, crop centred on the object"].append(_silhouette(centred))
            crops["pixels, the token's cell (aligned)"].append(_silhouette(aligned))
            colour, shape = label.split()
            colours.append(colour)
            shapes.append(shape)
    return {name: (_read(np.array(f), colours), _read(np.array(f), shapes)) for name, f in crops.items()}


def _silhouette(crop: np.ndarray) -> np.ndarray:
    """A crop as its distance from its own median colour (the background, mostly), summed over the channels
    (where something is, whatever its colour: shape is a linear function of this, not of the RGB values),
    and its mean colour."""
    return np.concatenate([np.abs(crop - np.median(crop, axis=(0, 1))).sum(-1).ravel(), crop.mean(axis=(0, 1))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=FOLDER")
    parser.add_argument("--windows", type=int, default=300, help="one-frame held-out windows")
    args = parser.parse_args()
    from vidlake.models.toy import TOY_FRAME_SIZE

    rows = ["| checkpoint | features | colour (4 classes) | shape (3 classes) |", "|---|---|---:|---:|"]
    baseline = _pixels(args.windows, TOY_FRAME_SIZE)
    rows += [f"| (no model) | {name} | {c:.3f} | {s:.3f} |" for name, (c, s) in baseline.items()]
    objects = 0
    for item in args.runs:
        name, _, folder = item.partition("=")
        read, objects = _checkpoint(folder, args.windows)
        rows += [f"| {name} | {feature} | {c:.3f} | {s:.3f} |" for feature, (c, s) in read.items()]
        print(rows[-1], flush=True)
    report = "\n".join([
        "# Toy Molmo 2: colour and shape in its vision side", "", machine_header(__file__), "",
        f"{args.windows} one-frame held-out windows of validation worlds; {objects} held-out objects (alone in "
        "their visual token's cell), read by a logistic regression fitted on as many others. The most common "
        "shape is about 36% of the held-out objects, the most common colour about 27%.", "", *rows])
    write_result(RESULTS / "toy-shapes.md", report, notes=RESULTS / "toy-shapes-notes.md")


if __name__ == "__main__":
    main()
