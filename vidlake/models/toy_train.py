"""``vidlake model train-toy OUT``: train the toy Molmo 2 (vidlake/models/toy.py) on the synthetic world.

Plain PyTorch on the CPU: AdamW with warm-up and cosine decay, batches of windows made on the fly
(vidlake/models/toy_data.py), the language-model loss on the oracle's answers, plus training-only
auxiliary losses (their small heads are not saved: the checkpoint is a plain
``Molmo2ForConditionalGeneration``):

* a linear probe on the visual tokens (the projector's output, what the language model receives)
  predicts which object classes have their centre in each token's cell, and where in the frame. From
  scratch, the language model's loss reaches the vision tower only weakly (it learns the answers'
  format and priors long before it looks); the probe gives every visual token a target at once.
* an attention loss: at every position that predicts a token naming an object (a digit of a point's x
  or y, the colour or shape word of an object a caption says appears or leaves), head 0 of one
  language-model layer is asked to look at the visual token whose cell holds that object, a linear
  readout of the state after that layer to hold its x and y, and the state to predict that token through
  the model's own norm and output layer (``deep_weight``). Without it the language model did not learn,
  in the steps these machines give, to find the object and copy its position into digits
  (benchmarks/results/toy-notes.md). Captions name objects left to right (the oracle's order), so which
  object comes next is something the model can see.
* a curriculum: the first ``vision_steps`` train the vision side on the probe alone (the language model
  waits: the visual tokens first learn what is where), the next ``curriculum`` steps are 1-2 frame
  windows asking to point at one "colour shape", the shortest way from pixels to coordinates; then every
  task on 2-8 frames.

The vision tower and projector learn at ``vision_lr_scale`` times the language model's rate, and each
part's gradient is clipped on its own, so that the language model's much larger gradient does not shrink
the vision side's steps. With the language model's losses from the first step, the visual tokens did not
learn where things are; after the vision side's own start they did, and kept it (toy-notes.md).

Data-parallel over ``processes`` processes (:func:`train_toy`). Deterministic per seed and number of
processes on one machine (the same steps give the same weights); ``minutes`` bounds the time, ``steps``
the steps. Progress (loss, steps/s, time left) is printed as it goes; the output
folder gets the checkpoint, ``losses.csv`` and a model card (``README.md``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vidlake.models.toy_data import TASKS

__all__ = ["TrainConfig", "TrainResult", "train_toy"]


def _say(line: str) -> None:
    print(line, flush=True)  # progress reaches a log file as it happens, not when a buffer fills


@dataclass(frozen=True)
class TrainConfig:
    minutes: float = 30.0
    steps: int | None = None  # stop after this many steps (else when minutes are up)
    seed: int = 0
    batch_size: int = 8
    lr: float = 6e-4
    vision_lr_scale: float = 3.0
    warmup: int = 100
    aux_weight: float = 1.0
    position_weight: float = 40.0  # weight of the probe's position error (squared, in frame units) beside its classes
    text_weight: float = 1.0  # 0: train the vision side on the probe alone (a diagnosis)
    digit_weight: float = 1.0  # weight of the answers' digit tokens (coordinates, counts, times) in the text loss
    frames: tuple[int, int] = (2, 8)
    tasks: tuple[str, ...] = TASKS  # after the curriculum, windows of these tasks, drawn evenly (fewer than
    # all: a diagnosis of what one task reaches when it gets every step)
    attend_weight: float = 1.0  # weight of the attention loss: one head looks where each coordinate is
    attend_layer: int = 1  # ... that head: head 0 of this language-model layer
    deep_weight: float = 1.0  # weight of the next token at those positions predicted from that layer's state
    vision_steps: int = 200  # first steps train the vision side on the probe alone (the language model waits)
    curriculum: int = 800  # first steps on 1-2 frames, pointing at one "colour shape" only (a step count, so that
    # the same steps give the same weights however fast the machine is)
    seeds: tuple[int, int] = (1000, 100_000)  # the worlds trained on (toy_data.FIRST_SEED and up)
    processes: int = 2  # data-parallel processes, one thread each (the same seed and processes give the same weights)
    save_every: int = 0  # also save the weights every this many steps, into OUT/step-N (0: only at the end)

    def __post_init__(self) -> None:
        if self.minutes <= 0 or (self.steps is not None and self.steps < 1) or self.batch_size < 1:
            raise ValueError(f"minutes must be > 0, steps and batch_size >= 1 (got {self})")
        if self.processes < 1 or self.batch_size % self.processes:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of processes ({self.processes})")
        if self.save_every < 0:
            raise ValueError(f"save_every must be >= 0 (got {self.save_every})")
        if not self.tasks or set(self.tasks) - set(TASKS):
            raise ValueError(f"tasks must be some of {', '.join(TASKS)} (got {self.tasks})")
        if self.seeds[0] < 1000:
            raise ValueError("training worlds start at seed 1000: lower seeds are the benchmark's and validation's")


@dataclass
class TrainResult:
    out: Path
    steps: int
    seconds: float
    losses: list[tuple[int, float, float, float, float]] = field(default_factory=list)  # step, text, probe, digit,
    # attention loss
    scores: dict = field(default_factory=dict)  # toy_eval.evaluate_toy's, on held-out windows


def train_toy(out: str | Path, config: TrainConfig = TrainConfig(), echo: Callable[[str], None] = _say,
              eval_windows: int = 60) -> TrainResult:
    """Train, save into ``out``, evaluate on ``eval_windows`` held-out windows, and write the model card.
    With ``config.processes`` > 1, this process and ``processes - 1`` spawned ones train data-parallel (one
    thread each, each its share of every batch, gradients averaged over loopback): on the two-core machines
    two processes make more steps than one process with two threads (toy-notes.md)."""
    import torch

    from vidlake.platform.runtime.cluster import free_port

    followers = []
    port = free_port() if config.processes > 1 else 0
    threads = torch.get_num_threads()
    context = torch.multiprocessing.get_context("spawn")
    for rank in range(1, config.processes):
        followers.append(context.Process(target=_follow, args=(config, rank, port), daemon=True))
        followers[-1].start()

    def snapshot(model, processor, steps: int) -> None:  # how far the run had got: scored afterwards
        _save_weights(model, processor, Path(out) / f"step-{steps}")
        echo(f"saved {Path(out) / f'step-{steps}'}")

    try:
        model, processor, result = _train(config, 0, port, echo, snapshot)
    finally:
        for follower in followers:
            follower.join(timeout=60)
        torch.set_num_threads(threads)
    failed = [f.exitcode for f in followers if f.exitcode != 0]
    if failed:
        raise RuntimeError(f"a training process ended with exit code {failed[0]}")
    result.out = Path(out)
    _save(model, processor, result)
    if eval_windows:  # the saved checkpoint, as vidlake loads it: what the card's scores are about
        from transformers import Molmo2ForConditionalGeneration

        from vidlake.models.toy_eval import evaluate_toy

        echo(f"evaluating on {eval_windows} held-out windows ...")
        saved = Molmo2ForConditionalGeneration.from_pretrained(result.out, dtype=torch.float32)
        result.scores = evaluate_toy(saved, processor, eval_windows, tasks=config.tasks)  # the tasks it was trained on
    _describe(model, result, config)
    echo(f"wrote {result.out}: {result.steps} steps in {result.seconds / 60:.1f} min; {result.scores}")
    return result


def _follow(config: TrainConfig, rank: int, port: int) -> None:
    _train(config, rank, port, lambda _: None)


def _train(config: TrainConfig, rank: int, port: int, echo: Callable[[str], None], snapshot: Callable | None = None):
    """The training loop of one process (``rank`` of ``config.processes``); returns the model, its processor
    and the run's steps, time and losses (rank 0's, averaged over the processes)."""
    import torch
    import torch.distributed as dist

    from vidlake.models.molmo2_inputs import collate, pixel_norm
    from vidlake.models.toy import TOY_FRAME_SIZE, TOY_POOLING, build_toy
    from vidlake.models.toy_data import CLASSES, WorldWindows, training_row

    world = config.processes
    if world > 1:
        from datetime import timedelta

        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=timedelta(minutes=2))
    torch.manual_seed(config.seed)
    model, processor = build_toy(config.seed)  # the same start on every process
    grid = math.ceil(TOY_FRAME_SIZE / 14 / TOY_POOLING)
    probe = torch.nn.Linear(model.config.text_config.hidden_size, 3 * len(CLASSES))
    readout = torch.nn.Linear(model.config.text_config.hidden_size, 2)  # training-only, like the probe
    vision = [*model.model.vision_tower.parameters(), *model.model.multi_modal_projector.parameters()]
    seen = {id(p) for p in vision}
    groups = [{"params": [p for p in model.parameters() if id(p) not in seen], "lr": config.lr},
              {"params": [*vision, *probe.parameters()], "lr": config.lr * config.vision_lr_scale},
              {"params": [*readout.parameters()], "lr": config.lr}]
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    peak = [g["lr"] for g in groups]
    windows = WorldWindows(range(*config.seeds), frames=config.frames, tasks=config.tasks)
    first = WorldWindows(range(*config.seeds), frames=(1, 2), tasks=("point",), exact_queries=True)
    rng = np.random.default_rng(config.seed if world == 1 else (config.seed, rank))  # each process its windows
    share = config.batch_size // world
    norm, pad = pixel_norm(processor.video_processor), processor.tokenizer.pad_token_id
    weight = torch.full((len(CLASSES),), float(len(CLASSES)))  # a class is in few cells: weigh its presence up
    vocab = processor.tokenizer.convert_ids_to_tokens(list(range(model.config.text_config.vocab_size)))
    digits = torch.tensor([t is not None and t.lstrip("Ġ").isdigit() for t in vocab])
    result = TrainResult(Path(), 0, 0.0)
    budget = config.minutes * 60
    if world > 1:
        dist.barrier()  # the clock starts when every process has its model
    started = last = time.monotonic()

    def head(state):  # a language-model state to next-token logits: the model's own norm and output layer
        return model.lm_head(model.model.language_model.norm(state))

    if config.attend_weight:
        model.set_attn_implementation("eager")  # the attention loss reads attention weights (sdpa has none)
    model.train()
    while True:
        spent = time.monotonic() - started
        go = (config.steps is None or result.steps < config.steps) and spent < budget
        if world > 1:  # rank 0's clock decides for all, so that every process stops at the same step
            control = torch.tensor([float(go), spent], dtype=torch.float64)
            dist.broadcast(control, 0)
            go, spent = bool(control[0]), float(control[1])
        if not go:
            break
        looking = result.steps >= config.vision_steps  # after the vision side's own start, everything trains
        source = first if result.steps < config.vision_steps + config.curriculum else windows
        rows = [training_row(processor, source.sample(rng), grid) for _ in range(share)]
        _schedule(optimizer, peak, result.steps, config, spent, budget)
        sums: dict = {}  # each loss term's sum and count over the rows: the batch's mean, however it is split
        for group in _groups(rows) if looking else [rows]:  # the vision side alone: no text, no padding
            inputs, labels = _batch(group, collate, pad, norm)
            video = model.model.get_video_features(inputs["pixel_values_videos"], inputs["video_token_pooling"],
                                                   inputs["video_grids"])
            cells = torch.from_numpy(np.concatenate([r["cells"] for r in group]))
            _probe_loss(probe(torch.cat(video.pooler_output)), cells, weight, sums)
            if looking:
                del inputs["pixel_values_videos"], inputs["video_token_pooling"], inputs["video_grids"]
                output = model(**inputs, mm_encoder_outputs={"video": video}, output_attentions=bool(config.attend_weight),
                               output_hidden_states=bool(config.attend_weight))
                _text_loss(output.logits, labels, digits, config.digit_weight, sums)
                if config.attend_weight:
                    _attend_loss(output.attentions[config.attend_layer][:, 0],
                                 output.hidden_states[config.attend_layer + 1], readout, group,
                                 inputs["input_ids"].shape[1], head, config.deep_weight, sums)
        mean = {name: total / max(count, 1) for name, (total, count) in sums.items()}
        zero = torch.zeros(())
        aux = mean["classes"] + config.position_weight * mean["where"]
        text, digit = mean.get("text", zero), mean.get("digit", zero).detach()
        attend = mean.get("look", zero) + 4.0 * mean.get("readout", zero) + config.deep_weight * mean.get("deep", zero)
        loss = config.aux_weight * aux + config.text_weight * text + config.attend_weight * attend
        optimizer.zero_grad()
        loss.backward()
        logged = torch.tensor([text.item(), aux.item(), digit.item(), attend.item()])
        if world > 1:
            _average(params, logged, world)
        for group in optimizer.param_groups:  # each part on its own (the module docstring says why)
            torch.nn.utils.clip_grad_norm_(group["params"], 1.0)
        optimizer.step()
        result.steps += 1
        result.losses.append((result.steps, *logged.tolist()))
        if snapshot and config.save_every and result.steps % config.save_every == 0 and result.steps != config.steps:
            snapshot(model, processor, result.steps)
        if time.monotonic() - last > 15 or result.steps == config.steps:
            last = time.monotonic()
            spent = last - started
            rate = result.steps / spent
            left = budget - spent if config.steps is None else (config.steps - result.steps) / rate
            recent = result.losses[-20:]
            text = (f"loss {np.mean([r[1] for r in recent]):.3f} (digits {np.mean([r[3] for r in recent]):.3f}), "
                    if looking else "vision side alone, ")
            echo(f"step {result.steps}: {text}probe {np.mean([r[2] for r in recent]):.3f}, attend "
                 f"{np.mean([r[4] for r in recent]):.3f}, {rate:.2f} steps/s, {max(0.0, left) / 60:.1f} min left")
    result.seconds = time.monotonic() - started
    if world > 1:
        dist.destroy_process_group()
    model.set_attn_implementation("sdpa")  # what vidlake loads it with; eager was for the attention loss
    return model, processor, result


def _groups(rows: list[dict], slack: float = 1.15) -> list[list[dict]]:
    """The rows in batches of similar length (shortest first): a row joins the batch before it while padding
    every row to the longest costs at most ``slack`` times their own tokens. One batch of every task spends
    much of its work on padding, and one row at a time is slower for short rows (toy-notes.md measures both)."""
    order = sorted(rows, key=lambda r: len(r["input_ids"]))
    groups = [order[:1]]
    for row in order[1:]:
        group = [*groups[-1], row]
        if len(row["input_ids"]) * len(group) <= slack * sum(len(r["input_ids"]) for r in group):
            groups[-1] = group
        else:
            groups.append([row])
    return groups


def _average(params: list, logged, world: int) -> None:
    """Every process's gradients replaced by their mean over the processes, in one message with the logged
    losses (also averaged). A parameter no process has a gradient for keeps none (AdamW then leaves it)."""
    import torch
    import torch.distributed as dist

    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
                     + [torch.tensor([float(p.grad is not None) for p in params]), logged])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p, has in zip(params, flat[-len(params) - len(logged):-len(logged)]):
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone() if has > 0 else None
        offset += p.numel()
    logged.copy_(flat[-len(logged):])


def _add(sums: dict, name: str, total, count) -> None:
    """Add to a loss term's running sum and count (:func:`_train` divides one by the other)."""
    before = sums.get(name, (0.0, 0))
    sums[name] = (before[0] + total, before[1] + float(count))


def _text_loss(logits, labels, digits, digit_weight: float, sums: dict) -> None:
    """Next-token cross-entropy on the answer tokens, digits weighted by ``digit_weight`` (term ``text``, a
    weighted mean), and over the digit tokens alone (``digit``, for the log)."""
    import torch

    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != -100
    loss = torch.nn.functional.cross_entropy(logits[mask], labels[mask], reduction="none")
    is_digit = digits[labels[mask]]
    weights = torch.where(is_digit, digit_weight, 1.0)
    _add(sums, "text", (loss * weights).sum(), weights.sum().item())
    _add(sums, "digit", loss[is_digit].sum(), is_digit.sum().item())


def _attend_loss(weights, hidden, readout, rows: list[dict], length: int, head, deep_weight: float, sums: dict) -> None:
    """At each position that predicts a token naming an object (a coordinate digit, a caption's colour or
    shape), three terms (:func:`_train` weighs them 1, 4 and ``deep_weight``): how far one head's attention
    is from the visual token where that object is (``look``: the negative log of the weight it gives that
    token), how far a linear readout of the language model's state after that layer is from the object's x
    and y (``readout``: squared error per coordinate), and the cross-entropy of the next token predicted
    from that state through ``head`` (``deep``: the model's own norm and output layer, the shortest path
    from the object's token to the word or digit; only with ``deep_weight``). Rows' ``attend`` entries,
    shifted by each row's left padding."""
    import torch

    index = [(i, q + length - len(r["input_ids"]), k + length - len(r["input_ids"]), x, y, int(r["input_ids"][q + 1]))
             for i, r in enumerate(rows) for q, k, x, y in r["attend"]]
    if not index:
        return
    b, q, k, following = (torch.tensor([entry[j] for entry in index]) for j in (0, 1, 2, 5))
    where = torch.tensor([entry[3:5] for entry in index], dtype=torch.float32)
    _add(sums, "look", -torch.log(weights[b, q, k].float() + 1e-6).sum(), len(index))
    _add(sums, "readout", (torch.sigmoid(readout(hidden[b, q].float())) - where).square().sum(), 2 * len(index))
    if deep_weight:
        deep = torch.nn.functional.cross_entropy(head(hidden[b, q]).float(), following, reduction="sum")
        _add(sums, "deep", deep, len(index))


def _probe_loss(guess, cells, weight, sums: dict) -> None:
    """Which classes are in each token's cell (weighted cross-entropy, term ``classes``), and where in the
    frame (squared error of the position, counted only where the class is: ``where``)."""
    import torch

    n = weight.shape[0]
    present = cells[:, :n]
    classes = torch.nn.functional.binary_cross_entropy_with_logits(guess[:, :n], present, pos_weight=weight,
                                                                   reduction="sum")
    _add(sums, "classes", classes, present.numel())
    mask = torch.cat([present, present], dim=1)
    _add(sums, "where", ((torch.sigmoid(guess[:, n:]) - cells[:, n:]).square() * mask).sum(), mask.sum().item())


def _batch(rows: list[dict], collate: Callable, pad: int, norm: tuple) -> tuple[dict, object]:
    """Collated inputs, and labels: the answer tokens, -100 elsewhere (left padding shifts each row)."""
    import torch

    inputs = collate(rows, pad, norm)
    labels = torch.full_like(inputs["input_ids"], -100)
    length = inputs["input_ids"].shape[1]
    for i, row in enumerate(rows):
        begin = length - len(row["input_ids"]) + row["labels_from"]
        labels[i, begin:] = inputs["input_ids"][i, begin:]
    return inputs, labels


def _schedule(optimizer, peak: list[float], step: int, config: TrainConfig, spent: float, budget: float) -> None:
    """Linear warm-up, then cosine decay to a tenth over the steps (or the time) the run has."""
    done = step / config.steps if config.steps else spent / budget
    scale = min(1.0, (step + 1) / config.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))
    for group, lr in zip(optimizer.param_groups, peak):
        group["lr"] = lr * scale


def _save(model, processor, result: TrainResult) -> None:
    """The checkpoint (weights in float16: half the size, and what a GPU loads anyway; vidlake loads them as
    float32 on a CPU) and the losses."""
    out = result.out
    model.eval()
    _save_weights(model, processor, out)
    with open(out / "losses.csv", "w") as f:
        f.write("step,text_loss,probe_loss,digit_loss,attend_loss\n")
        f.writelines(f"{s},{a:.5f},{b:.5f},{d:.5f},{e:.5f}\n" for s, a, b, d, e in result.losses)


def _save_weights(model, processor, out: Path) -> None:
    """A float16 copy of ``model`` with its processor, loadable as a checkpoint; ``model`` stays as it was."""
    import copy

    import torch

    out.mkdir(parents=True, exist_ok=True)
    saved = copy.deepcopy(model).to(torch.float16)
    saved.set_attn_implementation("sdpa")  # what vidlake loads it with (training may read attention weights)
    saved.save_pretrained(out)
    processor.save_pretrained(out)


def _describe(model, result: TrainResult, config: TrainConfig) -> None:
    """``vidlake-toy.json`` (steps, time, settings, scores) and the model card."""
    from vidlake.models.toy import TOY_MODEL_ID

    meta = {"model_id": TOY_MODEL_ID, "steps": result.steps, "seconds": round(result.seconds, 1),
            "train": asdict(config), "scores": result.scores}
    (result.out / "vidlake-toy.json").write_text(json.dumps(meta, indent=1))
    (result.out / "README.md").write_text(_card(model, meta))


def _card(model, meta: dict) -> str:
    """The model card: what it is (and is not), its configuration, data, training and scores."""
    c = model.config
    params = sum(p.numel() for p in model.parameters())
    train = meta["train"]
    scores = "\n".join(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |"
                       for k, v in meta["scores"].items()) or "| (not evaluated) | |"
    return f"""# {meta['model_id']}: a toy Molmo 2 trained on synthetic shapes

**Trained only on the synthetic world of `vidlake synth` (coloured circles, squares and triangles moving
over a textured background). On real footage its answers mean nothing.** It exists to show the platform
working end to end on a machine without a GPU or a model download.

## Model
A `Molmo2ForConditionalGeneration`, {params / 1e6:.1f}M parameters: ViT {c.vision_config.num_hidden_layers} layers
x {c.vision_config.hidden_size} on {c.vision_config.image_size[0]} px frames (patches of
{c.vision_config.patch_size} px, pooled 2 x 2: {(c.vision_config.image_size[0] // c.vision_config.patch_size // 2) ** 2}
visual tokens per frame), language model {c.text_config.num_hidden_layers} layers x {c.text_config.hidden_size},
its own byte-level BPE tokenizer ({c.text_config.vocab_size} tokens, digits one token each). Weights stored in
float16.

## Data
Windows made on the fly from synthetic worlds with seeds {train['seeds'][0]} to {train['seeds'][1] - 1} (never the
accuracy benchmark's seeds 0-2, nor the validation seeds 500-999): {train['frames'][0]}-{train['frames'][1]}
upright frames at 2 fps, a task drawn from {', '.join(train['tasks'])}, with vidlake's own prompt templates,
and the oracle engine's answer as the target.

## Training
Plain PyTorch on CPU (vidlake/models/toy_train.py): AdamW, learning rate {train['lr']} (vision tower and
projector x{train['vision_lr_scale']}), {train['warmup']} warm-up steps then cosine decay, batches of
{train['batch_size']} windows shared over {train['processes']} data-parallel processes, seed {train['seed']}; the text loss plus training-only auxiliary losses: {train['aux_weight']} x
a linear probe on the visual tokens (which object classes are in each token's cell, and {train['position_weight']} x the
squared error of where), and {train['attend_weight']} x an attention loss (head 0 of language-model layer {train['attend_layer']} looks at the
visual token of each object it names, by a coordinate digit or a caption's colour and shape words; the state after
that layer holds the object's x and y, and predicts the next token through the model's own output layer,
weight {train['deep_weight']}). The first
{train['vision_steps']} steps train the vision side alone on the probe; the next {train['curriculum']} point at one "colour shape" in 1-2
frames. The vision tower starts from a 2-D sine-cosine position table. {meta['steps']} steps in {meta['seconds'] / 60:.1f} minutes. Loss per step: `losses.csv`.

## Scores on held-out windows (vidlake/models/toy_eval.py)
| metric | value |
|---|---|
{scores}
"""
