"""A tiny, random-weight Molmo 2 built offline in code: the test and demo checkpoint.

It is a real ``Molmo2ForConditionalGeneration`` (a small ``Molmo2Config``) with a real
``Molmo2Processor``: a byte-level BPE tokenizer trained here on a fixed corpus, carrying Molmo 2's
special tokens and a chat template, and a video processor that resizes frames to 126 px (9x9
patches of 14 px, pooled 3x3 -> 9 visual tokens per frame, where real checkpoints use 378 px and
81 tokens). Everything is saved with ``save_pretrained`` and loaded back by exactly the code that
loads real checkpoints (:mod:`vidlake.models.molmo2`). Same seed, same bytes; about 2 MB.

Its answers are noise, which is what the parser's robustness tests want.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "BASE_VOCAB", "CHAT_TOKENS", "FRAME_SIZE", "MM_TOKENS", "TINY_FORMAT", "TINY_MODEL_ID", "build_config", "build_tokenizer",
    "ensure_tiny", "make_tiny", "tiny_chat_template", "tokenizer_corpus", "train_bpe", "wrap_tokenizer",
]

TINY_FORMAT = 2  # bump when the built checkpoint changes; a cached one of another format is rebuilt
TINY_MODEL_ID = "vidlake/tiny-molmo2"
_MARKER = "vidlake-tiny.json"
FRAME_SIZE = 126  # px; must equal vision image_size (the positional table is sized by it)
BASE_VOCAB = 1024
CHAT_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Molmo 2's multimodal tokens: the additional vocabulary, which the LM head never generates.
MM_TOKENS = [
    "<im_start>", "<im_end>", "<im_patch>", "<im_col>", "<low_res_im_start>",
    "<|image|>", "<im_low>", "<frame_start>", "<frame_end>", "<|video|>",
]

_WORDS = (
    "the a an of and in on at to with is are was there what where when how many which who it this that "
    "person people man woman child dog cat car cars bike bikes bicycle ball red blue green white black "
    "yellow left right top bottom front behind near far moving walks runs rides drives jumps falls sits "
    "stands holds opens closes enters leaves appears disappears video frame scene camera street road "
    "building window door sink table chair tree sky water background foreground seconds second time "
    "first last then after before while during unusual nothing none total count counting shows point "
    "track object objects one two three four five six seven eight nine ten yes no"
).split()


def tiny_chat_template() -> str:
    """Molmo 2's chat shape: ``<|im_start|>user``, the video/image placeholders, then the text."""
    nl = "{{ '\\n' }}"
    return (
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'system' -%}"
        "{{ raise_exception('Molmo 2 takes no system message') }}"
        "{%- endif -%}"
        "<|im_start|>{{ message['role'] }}" + nl +
        "{%- if message['content'] is string -%}{{ message['content'] }}{%- else -%}"
        "{%- for item in message['content'] if item['type'] == 'image' -%}<|image|>{%- endfor -%}"
        "{%- for item in message['content'] if item['type'] == 'video' -%}<|video|>{%- endfor -%}"
        "{%- for item in message['content'] if item['type'] == 'text' -%}{{ item['text'] }}{%- endfor -%}"
        "{%- endif -%}"
        "<|im_end|>" + nl +
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}<|im_start|>assistant" + nl + "{%- endif -%}"
    )


def tokenizer_corpus() -> list[str]:
    """Fixed training text: words, numbers, timestamps and Molmo 2's grounding tags."""
    lines = [" ".join(_WORDS[i : i + 8]) for i in range(0, len(_WORDS), 8)]
    for i in range(200):
        t = f"{i * 0.5:.1f}"
        word = _WORDS[i % len(_WORDS)]
        lines.append(f'<points coords="{t} 1 {(i * 37) % 1000:03d} {(i * 91) % 1000:03d}">{word}</points>')
        lines.append(f'<tracks coords="{t} {i % 5 + 1} {(i * 53) % 1000:03d} {(i * 17) % 1000:03d};">car</tracks>')
        lines.append(f"At {t} seconds the {_WORDS[(i * 7) % len(_WORDS)]} {_WORDS[(i * 11) % len(_WORDS)]}.")
        lines.append(f"Counting the dogs shows a total of {i % 12}. There are {i % 7} people.")
    return lines


def train_bpe(corpus: list[str] | None = None, split_digits: bool = False):
    """A byte-level BPE (any text round-trips) of ``BASE_VOCAB`` ids trained on ``corpus`` (default
    ``tokenizer_corpus()``), with the chat tokens; deterministic. ``split_digits``: every digit is its own
    token (a leading space stays on the first), as Qwen's tokenizer splits numbers, so that a coordinate is
    always three tokens instead of whatever merges the corpus happened to make."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if split_digits:
        core.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(r" ?[0-9]"), behavior="isolated"), core.pre_tokenizer])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BASE_VOCAB, special_tokens=CHAT_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(tokenizer_corpus() if corpus is None else corpus, trainer)
    return core


def wrap_tokenizer(core, first_mm_id: int):
    """``core`` as the transformers tokenizer Molmo 2's processor takes: BOS/EOS/pad, the multimodal tokens
    (checked to start at ``first_mm_id``, beyond what the LM head generates) and the chat template."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image|>", "video_token": "<|video|>"},
        model_max_length=36864,  # Molmo2-4B/8B's context
    )
    tokenizer.add_special_tokens({"extra_special_tokens": MM_TOKENS}, replace_extra_special_tokens=False)
    ids = tokenizer.convert_tokens_to_ids(MM_TOKENS)
    assert sorted(ids) == list(range(first_mm_id, first_mm_id + len(MM_TOKENS))), ids  # all non-generable
    tokenizer.chat_template = tiny_chat_template()
    return tokenizer


def build_tokenizer(corpus: list[str] | None = None, split_digits: bool = False):
    """The tiny (and toy) models' tokenizer: :func:`train_bpe`'s, its table padded to ``BASE_VOCAB`` so every
    config id is in range and fixed, wrapped by :func:`wrap_tokenizer`."""
    core = train_bpe(corpus, split_digits)
    base = core.get_vocab_size()
    if base < BASE_VOCAB:
        core.add_tokens([f"<|unused{i}|>" for i in range(BASE_VOCAB - base)])
    return wrap_tokenizer(core, BASE_VOCAB)


def build_config(tokenizer, vision_width: int = 64, vision_layers: int = 2, text_width: int = 64,
                 text_layers: int = 2, frame_size: int = FRAME_SIZE):
    """A small ``Molmo2Config`` on ``tokenizer``'s ids: 4 attention heads everywhere, MLPs twice as wide."""
    from transformers import Molmo2Config

    tid = dict(zip(MM_TOKENS, tokenizer.convert_tokens_to_ids(MM_TOKENS)))
    vision = dict(
        hidden_size=vision_width, intermediate_size=2 * vision_width, num_hidden_layers=vision_layers,
        num_attention_heads=4, num_key_value_heads=4, head_dim=vision_width // 4, image_size=[frame_size, frame_size],
        patch_size=14,
    )
    adapter = dict(
        vision_feature_layer=[-1, 0], hidden_size=vision_width, num_attention_heads=4, num_key_value_heads=4,
        head_dim=vision_width // 4, intermediate_size=2 * vision_width, text_hidden_size=text_width,
    )
    text = dict(
        hidden_size=text_width, num_attention_heads=4, num_key_value_heads=2, head_dim=text_width // 4,
        vocab_size=BASE_VOCAB, additional_vocab_size=16, num_hidden_layers=text_layers,
        intermediate_size=2 * text_width, max_position_embeddings=36864,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    return Molmo2Config(
        vision_config=vision, adapter_config=adapter, text_config=text,
        image_start_token_id=tid["<im_start>"], image_end_token_id=tid["<im_end>"],
        image_patch_id=tid["<im_patch>"], low_res_image_start_token_id=tid["<low_res_im_start>"],
        frame_start_token_id=tid["<frame_start>"], frame_end_token_id=tid["<frame_end>"],
    )


def build_processor(tokenizer, frame_size: int = FRAME_SIZE, pooling: int | None = None):
    """Molmo 2's processor for ``frame_size`` px frames; ``pooling``: patches per visual token along each
    side (None: the processors' defaults, 3 for video frames and 2 for images)."""
    from transformers import Molmo2ImageProcessor, Molmo2Processor, Molmo2VideoProcessor

    size = {"height": frame_size, "width": frame_size}
    pool = {} if pooling is None else {"pooling_size": [pooling, pooling]}
    # Molmo2VideoProcessor() leaves do_rescale/do_normalize unset (None = off): set them as checkpoints do.
    flags = dict(do_resize=True, do_rescale=True, do_normalize=True, do_convert_rgb=True)
    return Molmo2Processor(
        image_processor=Molmo2ImageProcessor(size=size, max_crops=2, **pool),
        video_processor=Molmo2VideoProcessor(size=size, num_frames=16, **pool, **flags),
        tokenizer=tokenizer,
        chat_template=tiny_chat_template(),
    )


def make_tiny(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write the tiny checkpoint (model, processor, generation config) into ``out_dir``."""
    import torch
    from transformers import GenerationConfig, Molmo2ForConditionalGeneration

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = build_config(tokenizer)
    processor = build_processor(tokenizer)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Molmo2ForConditionalGeneration(config).eval()
        with torch.no_grad():  # wider than the 0.02 init, so greedy answers vary with the input
            for param in model.parameters():
                if param.dim() > 1:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    eos = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, do_sample=False
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / _MARKER).write_text(json.dumps({"format": TINY_FORMAT, "seed": seed, "model_id": TINY_MODEL_ID}))
    return out


def ensure_tiny(cache_dir: str | os.PathLike, seed: int = 0) -> Path:
    """The tiny checkpoint in ``cache_dir``, built there first if missing or stale. Safe to race:
    it is built in a sibling temp folder and renamed into place."""
    target = Path(cache_dir).expanduser()
    if _is_current(target, seed):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        make_tiny(staging, seed)
        if target.exists() and not _is_current(target, seed):
            shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:  # another process won the race
            if not _is_current(target, seed):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _is_current(folder: Path, seed: int) -> bool:
    try:
        meta = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("format") == TINY_FORMAT and meta.get("seed") == seed and (folder / "config.json").is_file()
