"""Full-size Molmo 2 with random weights, built offline in code: the GPU throughput checkpoint.

Throughput does not depend on weight values, so a real-shaped ``Molmo2ForConditionalGeneration``
with random weights measures what a released checkpoint would, with no download. :func:`make_random`
writes one as a ``save_pretrained`` folder (config, generation config, processor files, ``*.safetensors``)
whose config.json is in the layout vLLM loads (:mod:`vidlake.models.vllm_layout`), so the one folder loads
through :mod:`vidlake.models.molmo2` like any checkpoint (``model.engine: hf``) and through vLLM
(``model.engine: vllm``); ``benchmarks/gpu_hf.py`` builds the same model in memory. **Its answers are noise.**

The sizes: ``Molmo2Config()``'s defaults are Molmo2-8B's vision tower (SigLIP so400m, 378 px, 25 of
27 layers used) and an 8B Qwen3 text model (hidden 4096, 36 layers), but its adapter defaults
(``text_hidden_size=3584``, ``intermediate_size=18944``) are the Qwen2-7B-era ones, which do not fit
a 4096-wide text model; ``8b`` sets them to 4096 / 12288 (the text model's width and MLP width).
``4b`` swaps in Qwen3-4B's text shape (:data:`TEXT_4B`). ``tiny`` is :mod:`vidlake.models.tiny`'s
small config on the same path (the benchmark's CPU test; not offered by the CLI).

The tokenizer (:func:`full_tokenizer`) is the tiny BPE padded to Qwen's 151,936 ids, so Molmo 2's
multimodal tokens sit at the real checkpoints' ids (151936 ...); the processor has Molmo 2's real
settings (378 px frames pooled 3x3: 81 visual tokens per frame).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vidlake.errors import ConfigError
from vidlake.models import tiny as tiny_mod

__all__ = ["QWEN_VOCAB", "SIZES", "TEXT_4B", "count_params", "full_config_and_processor", "full_tokenizer",
           "make_random", "random_model"]

QWEN_VOCAB = 151936  # Molmo 2's base vocabulary: its multimodal tokens come right after it (ids 151936...)
SIZES = ("4b", "8b")
TEXT_4B = dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
               num_key_value_heads=8, head_dim=128)
BYTES_PER_PARAM = 2.2  # bf16 weights plus headroom: what building and saving needs in memory
_MARKER = "vidlake-random.json"
_SHARD = "5GB"


def full_tokenizer():
    """vidlake's tiny BPE tokenizer, its table padded to Qwen's 151,936 ids, so Molmo 2's special tokens
    get the real checkpoints' ids (151936 ...) beyond what the LM head can generate."""
    from tokenizers import Tokenizer

    # tiny.build_tokenizer pads with added tokens (slow and bulky at 150k): pad the BPE table instead
    spec = json.loads(tiny_mod.train_bpe().to_str())
    vocab = spec["model"]["vocab"]
    for i in range(len(vocab), QWEN_VOCAB):  # unreachable by merges: never produced, only pad the id range
        vocab[f"<|unused{i}|>"] = i
    core = Tokenizer.from_str(json.dumps(spec))
    core.add_special_tokens(tiny_mod.MM_TOKENS)  # in Molmo 2's order: <im_start> = 151936 ... <|video|> = 151945
    return tiny_mod.wrap_tokenizer(core, QWEN_VOCAB)


def full_config_and_processor(size: str):
    """(``Molmo2Config``, ``Molmo2Processor``) for ``8b`` | ``4b`` (or ``tiny``); see the module docstring."""
    from transformers import Molmo2Config, Molmo2ImageProcessor, Molmo2Processor, Molmo2VideoProcessor

    if size == "tiny":
        tokenizer = tiny_mod.build_tokenizer()
        return tiny_mod.build_config(tokenizer), tiny_mod.build_processor(tokenizer)
    if size not in SIZES:
        raise ConfigError(f"unknown size {size!r}: choose one of {', '.join(SIZES)}")
    tokenizer = full_tokenizer()
    text = TEXT_4B if size == "4b" else {}
    base = Molmo2Config()
    width = text.get("hidden_size", base.text_config.hidden_size)
    mlp = text.get("intermediate_size", base.text_config.intermediate_size)
    tid = dict(zip(tiny_mod.MM_TOKENS, tokenizer.convert_tokens_to_ids(tiny_mod.MM_TOKENS)))
    config = Molmo2Config(
        text_config=text or None, adapter_config={"text_hidden_size": width, "intermediate_size": mlp},
        image_start_token_id=tid["<im_start>"], image_end_token_id=tid["<im_end>"],
        image_patch_id=tid["<im_patch>"], low_res_image_start_token_id=tid["<low_res_im_start>"],
        frame_start_token_id=tid["<frame_start>"], frame_end_token_id=tid["<frame_end>"],
    )
    # Molmo2VideoProcessor() leaves do_rescale/do_normalize unset (None = off): set them as checkpoints do
    flags = dict(do_resize=True, do_rescale=True, do_normalize=True, do_convert_rgb=True)
    processor = Molmo2Processor(image_processor=Molmo2ImageProcessor(), video_processor=Molmo2VideoProcessor(**flags),
                                tokenizer=tokenizer, chat_template=tiny_mod.tiny_chat_template())
    return config, processor


def random_model(config, tokenizer, device: str, dtype, seed: int = 0, attn_implementation: str = "sdpa"):
    """Random-weight ``Molmo2ForConditionalGeneration`` built in place on ``device`` in ``dtype`` (no CPU copy,
    no fp32 copy), in eval mode, with a greedy generation config on ``tokenizer``'s ids."""
    import torch
    from transformers import GenerationConfig, Molmo2ForConditionalGeneration

    torch.manual_seed(seed)
    with torch.device(device):
        model = Molmo2ForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    model = model.to(device=device, dtype=dtype).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]),
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, do_sample=False,
    )
    return model


def count_params(config) -> int:
    """The model's parameter count, from a weightless build on the ``meta`` device (seconds, no memory)."""
    import torch
    from transformers import Molmo2ForConditionalGeneration

    with torch.device("meta"):
        model = Molmo2ForConditionalGeneration._from_config(config)
    return sum(p.numel() for p in model.parameters())


def make_random(out: str | os.PathLike, size: str = "8b", seed: int = 0, device: str = "auto",
                echo: Callable[[str], None] | None = print) -> Path:
    """Write a random-weight Molmo 2 of ``size`` into the new or empty folder ``out`` and return it (its
    config.json in the layout both engines load). Built in bf16 directly on ``device`` (auto: cuda:0 when a GPU
    is visible, else cpu), written into a hidden sibling folder and renamed into place: a failure leaves
    nothing behind. Raises ``ConfigError`` for a bad size or device, a non-empty ``out``, or a device, RAM or
    disk that clearly cannot hold the model."""
    import torch

    from vidlake.models.molmo2 import pick_device
    from vidlake.models.vllm_layout import rewrite_config
    from vidlake.platform.config import ModelSettings

    say = echo or (lambda _: None)
    target = Path(out).expanduser().absolute()
    if size not in (*SIZES, "tiny"):
        raise ConfigError(f"unknown size {size!r}: choose one of {', '.join(SIZES)}")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r}: choose auto, cpu or cuda")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} exists and is not an empty folder: name a new folder")
    device = pick_device(ModelSettings(device=device))
    config, processor = full_config_and_processor(size)
    params = count_params(config)
    _check_room(params, device, target.parent)

    say(f"building a {size} Molmo 2 with random weights: {params / 1e9:.3f} B parameters, "
        f"{params * 2 / 2**30:.1f} GiB in bf16, on {device}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        began = time.perf_counter()
        model = random_model(config, processor.tokenizer, device, torch.bfloat16, seed)
        say(f"built in {time.perf_counter() - began:.1f} s; saving to {target}")
        began = time.perf_counter()
        model.save_pretrained(staging, max_shard_size=_SHARD)
        del model
        processor.save_pretrained(staging)
        rewrite_config(staging)  # the config vLLM reads, which transformers reads too
        meta = {"size": size, "seed": seed, "parameters": params, "dtype": "bfloat16", "random_weights": True}
        (staging / _MARKER).write_text(json.dumps(meta, indent=1))
        (staging / "README.md").write_text(_card(size, seed, params))
        if target.exists():
            target.rmdir()  # checked empty above
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [p for p in target.iterdir() if p.is_file()]
    say(f"wrote {target}: {len(files)} files, {sum(p.stat().st_size for p in files) / 2**30:.2f} GiB, "
        f"in {time.perf_counter() - began:.1f} s")
    return target


def _check_room(params: int, device: str, parent: Path) -> None:
    """Refuse up front when the device or the disk clearly cannot hold the model (psutil: RAM, when installed)."""
    import torch

    need = params * BYTES_PER_PARAM
    if device == "cpu":
        try:
            import psutil
        except ImportError:
            psutil = None
        free = psutil.virtual_memory().available if psutil else None
        where = "free RAM"
    else:
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        where = f"free memory on {device}"
    if free is not None and free < need:
        raise ConfigError(f"{params / 1e9:.2f} B parameters need about {need / 2**30:.0f} GiB, but there are "
                          f"{free / 2**30:.1f} GiB of {where}: use a machine with more memory, or a smaller --size")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    disk = shutil.disk_usage(probe).free
    if disk < params * 2 * 1.05:
        raise ConfigError(f"the weights take about {params * 2 / 2**30:.0f} GiB on disk, but {probe} has "
                          f"{disk / 2**30:.1f} GiB free")


def _card(size: str, seed: int, params: int) -> str:
    return (
        f"# Random-weight Molmo 2 ({size}), for throughput only\n\n"
        "**The weights are random: every answer is noise.** Written by `vidlake model make-random` "
        "(vidlake/models/full_size.py) to measure speed and memory at full size without a download; "
        "never use it for results.\n\n"
        f"- {params:,} parameters, bfloat16, seed {seed}\n"
        "- real Molmo 2 shapes and processor settings (378 px frames, 81 visual tokens per frame); the tokenizer "
        "is vidlake's small BPE padded to Qwen's ids, so token counts of text differ from a released checkpoint's\n"
        "- config.json in allenai's original layout (with configuration_molmo2.py), which vLLM loads "
        "(`trust_remote_code=True`) and transformers loads too\n"
    )
