"""Training windows for the toy Molmo 2, made on the fly from the synthetic world (vidlake/evaluation/world.py).

A window is what the job gives the model: 2-8 upright frames sampled at 2 fps from a video of the world,
their timestamps, one task's prompt from vidlake's own templates, and as the target the oracle engine's
answer to that window (vidlake/models/oracle.py): captions, counts by pointing, points and tracks with
ids, in Molmo 2's formats. Worlds come from seeds >= ``FIRST_SEED``: the accuracy benchmark's worlds (seed
0 and the development seeds 1 and 2) are never trained on. Besides the text, each window carries a dense
target for every visual token (which object classes have their centre in that token's cell, and where in
the frame that centre is), used by the training's probe loss, and for every coordinate digit of the answer
the visual token that holds its point (the attention loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["CLASSES", "FIRST_SEED", "TASKS", "ToyWindow", "WorldWindows", "training_row"]

FIRST_SEED = 1000
TASKS = ("caption", "count", "point", "track")
FPS = 2.0


def _classes() -> list[str]:
    from vidlake.evaluation.world import COLOURS, SHAPES

    return [f"{c} {s}" for c in COLOURS for s in SHAPES]


CLASSES = _classes()


@dataclass
class ToyWindow:
    frames: np.ndarray  # N x H x W x 3 uint8, upright
    timestamps_s: list[float]
    task: str
    query: str | None
    prompt: str
    answer: str
    objects: list[list[tuple[str, float, float]]]  # per frame: (label, x_norm, y_norm) of every visible object
    size: tuple[int, int]  # the video's upright width and height
    seen: list = field(default_factory=list)  # what the oracle was given: (time in the window, visible objects)


class WorldWindows:
    """Random windows of the synthetic worlds ``seeds`` (a range); ``rng`` draws everything."""

    def __init__(self, seeds: range, frames: tuple[int, int] = (2, 8), tasks: tuple[str, ...] = TASKS,
                 cache: int = 48, exact_queries: bool = False):
        from vidlake.models.prompts import PromptRegistry

        self.seeds, self.frames, self.tasks, self.cache = seeds, frames, tasks, cache
        self.exact_queries = exact_queries  # only "colour shapes" of an object in the window (a curriculum's start)
        self.templates = PromptRegistry()
        self._videos: dict[tuple[int, int], Any] = {}

    def _video(self, seed: int, index: int) -> Any:
        from vidlake.evaluation.synth import background
        from vidlake.evaluation.world import plan_video, visibility

        key = (seed, index)
        if key not in self._videos:
            video = plan_video(seed, index, 60.0, (20, 60))
            video = replace(video, kind=replace(video.kind, rotation=0))  # frames as the decoders give them: upright
            times = np.array([float(t) for t in video.times])  # once per video (the plan's times are fractions)
            self._videos[key] = (video, times, *visibility(video), background(seed, video))
            if len(self._videos) > self.cache:
                self._videos.pop(next(iter(self._videos)))
        return self._videos[key]

    def sample(self, rng: np.random.Generator) -> ToyWindow:
        from vidlake.evaluation.synth import draw_frame
        from vidlake.evaluation.world import QUERIES
        from vidlake.models.oracle import oracle_answer

        video, times, xs, ys, visible, back = self._video(int(rng.choice(self.seeds)), int(rng.integers(0, 40)))
        count = int(rng.integers(self.frames[0], self.frames[1] + 1))
        start = float(rng.uniform(0.0, max(0.0, times[-1] - (count - 1) / FPS)))
        picked = sorted({int(np.argmin(np.abs(times - (start + j / FPS)))) for j in range(count)})
        w, h = video.kind.width, video.kind.height
        frames, seen, objects = [], [], []
        for f in picked:
            frames.append(draw_frame(video, xs[:, f], ys[:, f], back))
            here = [(k + 1, f"{o.colour} {o.shape}", float(xs[k, f]), float(ys[k, f]))
                    for k, o in enumerate(video.objects) if visible[k, f]]
            seen.append((round(times[f] - times[picked[0]], 1), here))
            objects.append([(label, x / w, y / h) for _, label, x, y in here])
        task = self.tasks[int(rng.integers(len(self.tasks)))]
        query = None
        if task != "caption":
            present = sorted({o[1] for _, objs in seen for o in objs})
            if present and (self.exact_queries or rng.random() < 0.75):  # mostly about what is there; else any
                colour, shape = present[int(rng.integers(len(present)))].split()  # query (often "none")
                query = (f"{colour} {shape}s", f"{shape}s", "shapes")[0 if self.exact_queries else int(rng.integers(3))]
            else:
                query = QUERIES[int(rng.integers(len(QUERIES)))]
        return ToyWindow(np.stack(frames), [float(times[f]) for f in picked], task, query,
                         self.templates.get(task).render(query), oracle_answer(task, query, seen, w, h), objects,
                         (w, h), seen)


def training_row(processor: Any, window: ToyWindow, grid: int) -> dict[str, Any]:
    """The window as model inputs (vidlake's own ``prepare_window``) with the answer and end token
    appended, where the loss starts, the probe's target ``cells`` (frames x grid x grid cells by presence, x
    and y of each class) and the attention loss's ``attend`` pairs (:func:`_attention_targets`)."""
    from vidlake.models.molmo2_inputs import prepare_window

    row = prepare_window(processor, window.frames, window.timestamps_s, window.timestamps_s[0], window.prompt)
    answer = processor.tokenizer(window.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    row["labels_from"] = len(row["input_ids"])
    row["input_ids"] = np.concatenate([row["input_ids"], np.asarray(answer, dtype=np.int32)])
    row["mm_token_type_ids"] = np.concatenate([row["mm_token_type_ids"], np.zeros(len(answer), dtype=np.int8)])
    n = len(CLASSES)
    cells = np.zeros((len(window.objects), grid, grid, 3 * n), dtype=np.float32)  # presence, x and y in the frame
    for f, objects in enumerate(window.objects):
        for label, x, y in objects:
            row_, col = _cell(x, y, grid)
            k = CLASSES.index(label)
            cells[f, row_, col, [k, n + k, 2 * n + k]] = (1.0, x, y)
    row["cells"] = cells.reshape(-1, 3 * n)
    row["attend"] = _attention_targets(processor, window, row, grid)
    return row


def _cell(x: float, y: float, grid: int) -> tuple[int, int]:
    """The (row, column) of the visual token whose cell holds the point (x, y), both in 0-1."""
    return min(grid - 1, math.floor(y * grid)), min(grid - 1, math.floor(x * grid))


def _attention_targets(processor: Any, window: ToyWindow, row: dict[str, Any],
                       grid: int) -> list[tuple[int, int, float, float]]:
    """Where the answer's objects are: (position that predicts a token naming an object, position of the
    visual token whose cell holds that object in that frame, the object's x and y in 0-1). The tokens are
    the digits of every ``id x y`` triple of the answer's ``coords``, and a caption's colour and shape words
    of every object it says appears or leaves. The training asks one attention head to look there, and the
    language model's state after that layer to hold x and y."""
    encoded = processor.tokenizer(window.answer, add_special_tokens=False, return_offsets_mapping=True)
    patch = processor.tokenizer.convert_tokens_to_ids("<im_patch>")
    visual = np.flatnonzero(row["input_ids"][: row["labels_from"]] == patch)
    per_frame = len(visual) // len(window.timestamps_s)
    mentions = (_caption_mentions(window) if window.task == "caption" else _coordinate_mentions(window))
    pairs = []
    for begin, end, frame, x, y in mentions:
        row_, col = _cell(x, y, grid)
        target = int(visual[frame * per_frame + row_ * grid + col])
        for i, (a, b) in enumerate(encoded["offset_mapping"]):
            if a < end and b > begin:  # a token of this mention
                pairs.append((row["labels_from"] + i - 1, target, x, y))
    return pairs


def _coordinate_mentions(window: ToyWindow) -> list[tuple[int, int, int, float, float]]:
    """(start and end of the characters of a point's x and y in the answer, its frame, x, y in 0-1)."""
    import re

    answer, mentions = window.answer, []
    shown = [round(t - window.timestamps_s[0], 1) for t in window.timestamps_s]
    for span in (m.span(1) for m in re.finditer(r'coords="([^"]*)"', answer)):
        at = span[0]
        for group in answer[span[0]:span[1]].split(";"):
            numbers = [(m.start() + at, m.end() + at, m.group()) for m in re.finditer(r"[0-9.]+", group)]
            at += len(group) + 1
            if not numbers or float(numbers[0][2]) not in shown:
                continue
            frame = shown.index(float(numbers[0][2]))
            for k in range(1, len(numbers) - 2, 3):
                (xs, _, x), (_, ye, y) = numbers[k + 1], numbers[k + 2]
                mentions.append((xs, ye, frame, int(x) / 1000, int(y) / 1000))
    return mentions


def _caption_mentions(window: ToyWindow) -> list[tuple[int, int, int, float, float]]:
    """(start and end of the characters of an object's "colour shape" in a caption, the frame it is seen on,
    its x and y in 0-1), in the order the oracle's caption names them (oracle.caption_events)."""
    import re

    from vidlake.models.oracle import caption_events

    w, h = window.size
    objects = [(f, o) for _, came, went in caption_events(window.seen) for f, o in (*came, *went)]
    spans = [m.span(1) for m in re.finditer(r"\ba ([a-z]+ [a-z]+)", window.answer)]
    if len(spans) != len(objects):  # not the oracle's caption: nothing to point at
        return []
    return [(b, e, f, o[2] / w, o[3] / h) for (b, e), (f, o) in zip(spans, objects)]
