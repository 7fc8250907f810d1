"""The toy Molmo 2: a small ``Molmo2ForConditionalGeneration`` trained from scratch on the synthetic world.

It is trained ONLY on coloured shapes moving over a textured background (``vidlake synth``): on real
footage its answers mean nothing. It exists so that a machine without a GPU or a download can see the
platform work end to end with answers that depend on the pixels (docs/models.md, toy model).

Architecture (:func:`build_toy`): Molmo 2's own, small: a 3-layer ViT of width 128 on 112 px frames (8 x 8
patches of 14 px), Molmo 2's attention pooling over 2 x 2 patches (16 visual tokens per frame) and its
projector, and a 4-layer language model of width 256, on its own tokenizer (:func:`toy_corpus`). Training:
vidlake/models/toy_train.py (``vidlake model train-toy``). A checkpoint trained by it ships with the package
(:data:`TOY_CHECKPOINT`, its model card beside the weights) and is what ``--model toy`` loads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vidlake.errors import ModelLoadError

__all__ = ["TOY_CHECKPOINT", "TOY_FRAME_SIZE", "TOY_MODEL_ID", "TOY_POOLING", "build_toy", "toy_corpus", "toy_folder"]

TOY_MODEL_ID = "vidlake/toy-molmo2"
TOY_CHECKPOINT = Path(__file__).parent / "toy_checkpoint"  # `vidlake model train-toy` output, shipped as package data
TOY_FRAME_SIZE = 112
TOY_POOLING = 2
TOY_SIZES = dict(vision_width=128, vision_layers=3, text_width=256, text_layers=4)


def toy_corpus() -> list[str]:
    """The tokenizer's training text: the tiny model's, plus the synthetic world's words in vidlake's prompts
    and the oracle's answer shapes, so that "triangle" or "appears" is one token instead of five."""
    from vidlake.evaluation.world import COLOURS, QUERIES, SHAPES
    from vidlake.models.oracle import oracle_answer
    from vidlake.models.prompts import PromptRegistry
    from vidlake.models.tiny import tokenizer_corpus

    templates = PromptRegistry()
    lines = [templates.get(task).render(query) for task in ("count", "point", "track") for query in QUERIES]
    lines.append(templates.get("caption").render(None))
    kinds = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    for i, kind in enumerate(kinds):
        other = kinds[(i * 5 + 3) % len(kinds)]
        seen = [(0.0, [(1, kind, 10.0 * i, 20.0), (2, other, 50.0, 40.0)]), (0.5, [(1, kind, 12.0 * i, 22.0)]), (1.0, [])]
        lines += [oracle_answer(task, query, seen, 100, 100) for task in ("caption", "count", "point", "track")
                  for query in (f"{kind}s", f"{kind.split()[1]}s", "shapes")]
    return tokenizer_corpus() + lines


def _sincos(table):
    """2-D sine-cosine position embeddings (as in ViT-MAE) for a square grid of patches, the shape of ``table``:
    half the width codes the row, half the column, at geometrically spaced frequencies."""
    import torch

    side, width = math.isqrt(table.shape[0]), table.shape[1]
    frequencies = 1.0 / 10000 ** (torch.arange(width // 4) / (width // 4))
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    angles = [c.reshape(-1, 1).float() * frequencies for c in (rows, cols)]
    return torch.cat([f(a) for a in angles for f in (torch.sin, torch.cos)], dim=1)


def build_toy(seed: int = 0) -> tuple[Any, Any]:
    """An untrained toy model (Molmo 2's default initialisation under ``seed``, but for the ViT's position
    table: :func:`_sincos`) and its processor."""
    import torch
    from transformers import GenerationConfig, Molmo2ForConditionalGeneration

    from vidlake.models.tiny import build_config, build_processor, build_tokenizer

    tokenizer = build_tokenizer(toy_corpus(), split_digits=True)
    config = build_config(tokenizer, frame_size=TOY_FRAME_SIZE, **TOY_SIZES)
    processor = build_processor(tokenizer, TOY_FRAME_SIZE, TOY_POOLING)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Molmo2ForConditionalGeneration(config)
    # Molmo 2's default position table (normal, std 0.02) is small beside the patch embeddings, and from it the
    # visual tokens never learned where they are (toy-notes.md): start from a 2-D sine-cosine table instead
    with torch.no_grad():
        model.model.vision_tower.positional_embedding.copy_(_sincos(model.model.vision_tower.positional_embedding))
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]),
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, do_sample=False,
    )
    return model, processor


def toy_folder() -> Path:
    """This installation's shipped toy checkpoint (``--model toy``), or ``ModelLoadError`` when it is missing."""
    if not (TOY_CHECKPOINT / "config.json").is_file():
        raise ModelLoadError(f"the toy checkpoint is missing from this installation ({TOY_CHECKPOINT}): reinstall "
                             "vidlake, or train one with `vidlake model train-toy DIR` and name it with --model DIR")
    return TOY_CHECKPOINT
