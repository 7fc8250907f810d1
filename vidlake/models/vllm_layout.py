"""The Molmo 2 checkpoint layout vLLM loads, written from a transformers-saved folder (``vidlake model to-vllm``).

Only the config differs from what transformers' ``save_pretrained`` writes:

* **Weights: used as saved.** transformers (>= 5.20, and vidlake pins >= 5.23) saves Molmo 2 under allenai's
  original weight names by default (``model.transformer.blocks.N.self_attn.att_proj``,
  ``model.transformer.wte.embedding`` and ``new_embedding``, ``model.vision_backbone.image_vit...``), the names
  vLLM's Molmo2 maps onto its modules. Its two embedding tables come out as equal halves of transformers' one
  table instead of being split at ``vocab_size``; vLLM concatenates them again before loading, so they are
  left as they are. A folder saved with ``save_original_format=False`` (``model.language_model.*`` names) is
  refused, not renamed: saving it again with transformers' defaults is the one way to that layout. vLLM builds
  only the ViT blocks up to the deepest one the adapter reads and refuses weights of others; vidlake's
  checkpoints have no blocks past it, and a folder that has is refused rather than trimmed.
* **Config: rewritten.** vLLM reads allenai's remote-code config names, which transformers' built-in
  ``Molmo2Config`` does not keep (:mod:`vidlake.models.molmo2_remote_config` says which). config.json is
  rewritten in that layout (:func:`vllm_config`) with an ``auto_map`` to those classes, copied next to it as
  ``configuration_molmo2.py``; vLLM runs them (``trust_remote_code=True``). transformers' built-in class
  still reads this config.json (it accepts the original names), so the same folder serves ``model.engine: hf``
  and ``vllm``.

:func:`write_vllm_layout` writes a new folder rather than rewriting ``src``: a local folder's revision is
the hash of its files, so rewriting a folder in place would change the revision every lake row made with
it records; the weight files are hard links (copies across file systems), so the new folder costs no disk.
``vidlake model make-random`` writes its checkpoints in this layout directly (:func:`rewrite_config` on the
folder it is writing).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vidlake.errors import ConfigError

__all__ = ["ORIGINAL_PREFIXES", "REMOTE_CONFIG_FILE", "in_transformers_layout", "rewrite_config", "vit_layers",
           "vllm_config", "write_vllm_layout"]

REMOTE_CONFIG_FILE = "configuration_molmo2.py"  # the name config.json's auto_map points at
# copied in as REMOTE_CONFIG_FILE; found by path, as importing it would import transformers
_REMOTE_CONFIG_SOURCE = Path(__file__).with_name("molmo2_remote_config.py")
# Weight names in allenai's original layout (what vLLM's Molmo2 maps); save_original_format=False writes
# model.language_model.*, model.vision_tower.* and model.multi_modal_projector.* instead.
ORIGINAL_PREFIXES = ("model.transformer.", "model.vision_backbone.", "lm_head.")


def vllm_config(cfg, token_ids: Mapping[str, int]) -> dict[str, Any]:
    """config.json in allenai's remote-code layout for the transformers ``Molmo2Config`` ``cfg``. ``token_ids``
    maps the checkpoint tokenizer's tokens to ids: vLLM needs those of ``<im_col>`` and ``<im_low>``, which
    transformers' config does not hold."""
    vis, ada, txt = cfg.vision_config, cfg.adapter_config, cfg.text_config
    for token in ("<im_col>", "<im_low>"):
        if token not in token_ids:
            raise ConfigError(f"the tokenizer has no {token} token: not a Molmo 2 tokenizer")
    rope = dict(txt.rope_parameters)
    out = {
        "architectures": ["Molmo2ForConditionalGeneration"],
        "model_type": "molmo2",
        "auto_map": {"AutoConfig": f"{REMOTE_CONFIG_FILE.removesuffix('.py')}.Molmo2Config"},
        "vit_config": {
            "hidden_size": vis.hidden_size, "intermediate_size": vis.intermediate_size,
            "num_hidden_layers": vis.num_hidden_layers, "num_attention_heads": vis.num_attention_heads,
            "num_key_value_heads": vis.num_key_value_heads, "head_dim": vis.head_dim,
            "hidden_act": vis.hidden_act, "layer_norm_eps": vis.layer_norm_eps,
            "image_default_input_size": list(vis.image_size), "image_patch_size": vis.patch_size,
            "image_num_pos": vis.num_position_embeddings,
        },
        "adapter_config": {
            "vit_layers": vit_layers(cfg),
            # transformers' adapter always pools over the valid patches only, with a mask: vLLM's does so when set
            "pooling_attention_mask": True,
            "hidden_size": ada.hidden_size, "num_attention_heads": ada.num_attention_heads,
            "num_key_value_heads": ada.num_key_value_heads, "head_dim": ada.head_dim, "hidden_act": ada.hidden_act,
            "intermediate_size": ada.intermediate_size, "text_hidden_size": ada.text_hidden_size,
        },
        "text_config": {
            "hidden_size": txt.hidden_size, "num_attention_heads": txt.num_attention_heads,
            "num_key_value_heads": txt.num_key_value_heads, "head_dim": txt.head_dim,
            "vocab_size": txt.vocab_size, "additional_vocab_size": txt.additional_vocab_size,
            "qkv_bias": txt.attention_bias, "num_hidden_layers": txt.num_hidden_layers,
            "intermediate_size": txt.intermediate_size, "hidden_act": txt.hidden_act,
            "max_position_embeddings": txt.max_position_embeddings,
            "rope_theta": rope["rope_theta"], "rope_parameters": rope,
            "rope_scaling_layers": list(txt.rope_scaling_layers),
            "use_qk_norm": True,  # transformers' Molmo 2 attention always normalises queries and keys
            "qk_norm_type": txt.qk_norm_type, "layer_norm_eps": txt.rms_norm_eps, "norm_after": txt.norm_after,
            "tie_word_embeddings": txt.tie_word_embeddings,
        },
        "image_start_token_id": cfg.image_start_token_id, "image_end_token_id": cfg.image_end_token_id,
        "image_patch_id": cfg.image_patch_id, "image_col_id": token_ids["<im_col>"],
        "low_res_image_start_token_id": cfg.low_res_image_start_token_id, "image_low_res_id": token_ids["<im_low>"],
        "frame_start_token_id": cfg.frame_start_token_id, "frame_end_token_id": cfg.frame_end_token_id,
        "tie_word_embeddings": cfg.tie_word_embeddings,
    }
    if cfg.dtype is not None:
        out["dtype"] = str(cfg.dtype).removeprefix("torch.")
    return out


def vit_layers(cfg) -> list[int]:
    """The ViT blocks whose outputs the adapter reads, counted from 0 (transformers also takes negatives)."""
    blocks = cfg.vision_config.num_hidden_layers
    return [layer % blocks for layer in cfg.adapter_config.vision_feature_layer]


def in_transformers_layout(folder: str | os.PathLike) -> bool:
    """Whether ``folder``'s config.json is transformers' ``Molmo2Config`` (it has ``vision_config``), which
    vLLM's Molmo2 cannot read."""
    config = Path(folder) / "config.json"
    return config.is_file() and "vision_config" in json.loads(config.read_text())


def rewrite_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Put the transformers-saved Molmo 2 folder ``folder`` in the layout vLLM loads, in place: config.json
    rewritten (:func:`vllm_config`) and ``configuration_molmo2.py`` added; the weights are not touched. Meant
    for a folder being written (make_random's, :func:`write_vllm_layout`'s). Raises ``ConfigError``, having
    changed nothing, for a folder this layout cannot serve. Returns the new config."""
    from transformers import Molmo2Config

    folder = Path(folder)
    raw = _read_json(folder / "config.json")
    if raw.get("model_type") != "molmo2":
        raise ConfigError(f"{folder} holds a {raw.get('model_type')!r} model, not Molmo 2 (model_type 'molmo2')")
    if "vision_config" not in raw:
        raise ConfigError(f"{folder}'s config.json is not transformers' Molmo2Config (no vision_config): if it has "
                          "vit_config it is in the layout vLLM loads already; use the folder as it is")
    cfg = Molmo2Config.from_dict(raw)
    _check_weights(folder, cfg)
    tokens = _read_json(folder / "tokenizer.json").get("added_tokens", [])
    new = vllm_config(cfg, {t["content"]: t["id"] for t in tokens})
    shutil.copyfile(_REMOTE_CONFIG_SOURCE, folder / REMOTE_CONFIG_FILE)
    # a new file renamed over the old one: config.json may be a hard link shared with another folder
    staged = folder / ".config.json.new"
    staged.write_text(json.dumps(new, indent=2) + "\n")
    staged.replace(folder / "config.json")
    return new


def write_vllm_layout(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write the transformers-saved Molmo 2 folder ``src`` into the new or empty folder ``dst`` in the layout
    vLLM loads and return ``dst``. ``src`` is not changed (see the module docstring); the weight files are hard
    links where ``dst`` is on the same file system, else copies, and every other top-level file is copied. Built
    in a hidden sibling folder and renamed into place: a failure leaves nothing behind. Raises ``ConfigError``
    for a missing ``src``, a non-empty ``dst``, or a folder :func:`rewrite_config` refuses."""
    source, target = Path(src).expanduser().absolute(), Path(dst).expanduser().absolute()
    if not (source / "config.json").is_file():
        raise ConfigError(f"{source} holds no config.json: name a folder written by save_pretrained")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} exists and is not an empty folder: name a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for file in sorted(p for p in source.iterdir() if p.is_file()):
            if file.suffix == ".safetensors":
                _link_or_copy(file, staging / file.name)
            else:
                shutil.copy2(file, staging / file.name)
        rewrite_config(staging)
        if target.exists():
            target.rmdir()  # checked empty above
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _check_weights(folder: Path, cfg) -> None:
    from safetensors import safe_open

    names: list[str] = []
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), "pt") as weights:
            names += weights.keys()
    if not names:
        raise ConfigError(f"{folder} holds no weights (*.safetensors)")
    other = sorted(n for n in names if not n.startswith(ORIGINAL_PREFIXES))
    if other:
        raise ConfigError(
            f"{folder} holds weights under transformers' in-memory names ({other[0]}, ...), written by "
            "save_pretrained(save_original_format=False); vLLM reads only the original names: load the model with "
            "transformers (>= 5.23) and save_pretrained it again with the default settings"
        )
    blocks, used = cfg.vision_config.num_hidden_layers, max(vit_layers(cfg)) + 1
    if used < blocks:
        raise ConfigError(
            f"{folder}'s vision tower has {blocks} blocks, but the adapter reads none past block {used - 1}: vLLM "
            "builds only the blocks it reads and refuses the weights of the others, and vidlake does not trim "
            f"checkpoints: load the model with transformers with a config whose vision_config.num_hidden_layers is "
            f"{used} and adapter_config.vision_feature_layer {vit_layers(cfg)}, and save_pretrained it again"
        )


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(src, dst)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path.parent} has no {path.name}: name a Molmo 2 folder written by save_pretrained")
    return json.loads(path.read_text())
