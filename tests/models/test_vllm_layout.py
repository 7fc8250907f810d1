"""The checkpoint layout vLLM's Molmo 2 loads, checked without vllm: what vLLM reads is written below as facts
(read from vllm 0.33.0's vllm/model_executor/models/molmo2.py; 0.15.0's reads the same), and the converted
tiny checkpoint is held to them. transformers still loads the converted folder to the same logits; what the
layout cannot serve is refused before anything is written."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_model import tiny_ref, tiny_settings  # noqa: F401 - fixtures

from vidlake.errors import ConfigError
from vidlake.models import molmo2_remote_config
from vidlake.models.checkpoints import folder_revision
from vidlake.models.molmo2 import ModelRef, load_model, load_processor, resolve_model
from vidlake.models.molmo2_inputs import collate, pixel_norm, prepare_window
from vidlake.models.tiny import FRAME_SIZE
from vidlake.models.vllm_engine import with_engine
from vidlake.models.vllm_layout import vllm_config, write_vllm_layout
from vidlake.platform.config import ModelSettings, load_settings

# vLLM's Molmo2ForConditionalGeneration copies every field of its VitConfig, AdapterConfig and TextConfig
# dataclasses with getattr from config.vit_config, config.adapter_config and config.text_config (a missing
# one is an AttributeError), reads text_config.rope_parameters, and the token ids below from the config.
VIT_FIELDS = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "hidden_act", "layer_norm_eps", "image_default_input_size",
              "image_patch_size", "image_num_pos"]
ADAPTER_FIELDS = ["vit_layers", "pooling_attention_mask", "hidden_size", "num_attention_heads",
                  "num_key_value_heads", "head_dim", "hidden_act", "intermediate_size", "text_hidden_size"]
TEXT_FIELDS = ["hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
               "additional_vocab_size", "qkv_bias", "num_hidden_layers", "intermediate_size", "hidden_act",
               "max_position_embeddings", "rope_theta", "use_qk_norm", "qk_norm_type", "layer_norm_eps",
               "norm_after", "rope_scaling_layers", "rope_parameters"]
TOKEN_ID_FIELDS = ["image_patch_id", "image_col_id", "image_start_token_id", "image_end_token_id",
                   "low_res_image_start_token_id", "frame_start_token_id", "frame_end_token_id", "image_low_res_id"]

# The checkpoint names vLLM's loader takes: its hf_to_vllm_mapper (prefixes model.transformer.blocks.,
# model.transformer.ln_f., model.vision_backbone.; the substrings att_proj, attn_out, ff_proj, ff_out, attn_norm,
# ff_norm, image_pooling_2d.w[qkvo], image_projector.w[123]), the vision backbone's stacked wq/wk/wv, and the two
# embedding tables it concatenates itself. Any other name is an error in vLLM's AutoWeightsLoader.
VLLM_WEIGHT_NAMES = [
    r"model\.transformer\.wte\.(embedding|new_embedding)",
    r"model\.transformer\.blocks\.\d+\.self_attn\.(att_proj|attn_out|q_norm|k_norm)\.weight",
    r"model\.transformer\.blocks\.\d+\.mlp\.(ff_proj|ff_out)\.weight",
    r"model\.transformer\.blocks\.\d+\.(attn_norm|ff_norm)\.weight",
    r"model\.transformer\.ln_f\.weight",
    r"lm_head\.weight",
    r"model\.vision_backbone\.image_vit\.positional_embedding",
    r"model\.vision_backbone\.image_vit\.patch_embedding\.(weight|bias)",
    r"model\.vision_backbone\.image_vit\.transformer\.resblocks\.\d+\.attention\.(wq|wk|wv|wo)\.(weight|bias)",
    r"model\.vision_backbone\.image_vit\.transformer\.resblocks\.\d+\.feed_forward\.(w1|w2)\.(weight|bias)",
    r"model\.vision_backbone\.image_vit\.transformer\.resblocks\.\d+\.(attention_norm|ffn_norm)\.(weight|bias)",
    r"model\.vision_backbone\.image_pooling_2d\.(wq|wk|wv|wo)\.(weight|bias)",
    r"model\.vision_backbone\.image_projector\.(w1|w2|w3)\.weight",
]


@pytest.fixture(scope="module")
def converted(tiny_ref, tmp_path_factory):  # noqa: F811
    return write_vllm_layout(tiny_ref.source, tmp_path_factory.mktemp("vllm") / "tiny-vllm")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(f).items()}


def test_the_converted_config_parses_into_the_remote_classes_with_all_vllm_reads(tiny_ref, converted):  # noqa: F811
    from transformers import AutoConfig

    assert (converted / "configuration_molmo2.py").read_bytes() == Path(molmo2_remote_config.__file__).read_bytes()
    cfg = AutoConfig.from_pretrained(converted, trust_remote_code=True)
    assert type(cfg).__module__.endswith(".configuration_molmo2")  # the copied module, not transformers' class
    assert [type(c).__name__ for c in (cfg, cfg.vit_config, cfg.adapter_config, cfg.text_config)] == \
        ["Molmo2Config", "Molmo2VitConfig", "Molmo2AdapterConfig", "Molmo2TextConfig"]
    assert cfg.model_type == "molmo2" and cfg.architectures == ["Molmo2ForConditionalGeneration"]
    for sub, names in (("vit_config", VIT_FIELDS), ("adapter_config", ADAPTER_FIELDS), ("text_config", TEXT_FIELDS)):
        missing = [n for n in names if getattr(getattr(cfg, sub), n, None) is None]
        assert not missing, (sub, missing)
    assert [n for n in TOKEN_ID_FIELDS if not isinstance(getattr(cfg, n, None), int)] == []

    source = AutoConfig.from_pretrained(tiny_ref.source)  # transformers' own layout and class
    tok = load_processor(tiny_ref, ModelSettings(name=tiny_ref.source, local_files_only=True)).tokenizer
    assert cfg.image_col_id == tok.convert_tokens_to_ids("<im_col>")
    assert cfg.image_low_res_id == tok.convert_tokens_to_ids("<im_low>")
    assert cfg.image_patch_id == source.image_patch_id and cfg.frame_start_token_id == source.frame_start_token_id
    assert cfg.adapter_config.vit_layers == [1, 0]  # the tiny model's [-1, 0] of 2 blocks, counted from 0
    assert cfg.vit_config.num_hidden_layers == source.vision_config.num_hidden_layers == 2
    assert cfg.vit_config.image_default_input_size == [FRAME_SIZE, FRAME_SIZE]
    assert cfg.text_config.rope_theta == source.text_config.rope_parameters["rope_theta"]
    assert cfg.text_config.use_qk_norm and cfg.adapter_config.pooling_attention_mask


def test_the_remote_config_defaults_are_vidlakes_8b_config():
    from vidlake.models.full_size import full_config_and_processor

    config, processor = full_config_and_processor("8b")
    tokens = ["<im_col>", "<im_low>"]
    expected = vllm_config(config, dict(zip(tokens, processor.tokenizer.convert_tokens_to_ids(tokens))))
    default = molmo2_remote_config.Molmo2Config()
    for sub in ("vit_config", "adapter_config", "text_config"):
        assert {k: getattr(getattr(default, sub), k) for k in expected[sub]} == expected[sub], sub
    assert {k: getattr(default, k) for k in TOKEN_ID_FIELDS} == {k: expected[k] for k in TOKEN_ID_FIELDS}


def test_the_weights_are_the_saved_files_under_names_vllm_maps(tiny_ref, converted):  # noqa: F811
    source = Path(tiny_ref.source)
    (weights,) = converted.glob("*.safetensors")
    original = source / weights.name
    assert weights.read_bytes() == original.read_bytes()
    if os.stat(weights).st_dev == os.stat(original).st_dev:
        assert os.path.samefile(weights, original)  # a hard link: no second copy on disk
    assert "vision_config" in json.loads((source / "config.json").read_text())  # the source is left as it was

    names = list(_weights(converted))
    unmatched = [n for n in names if not any(re.fullmatch(p, n) for p in VLLM_WEIGHT_NAMES)]
    assert unmatched == []
    assert [p for p in VLLM_WEIGHT_NAMES if not any(re.fullmatch(p, n) for n in names)] == []
    cfg = json.loads((converted / "config.json").read_text())
    vit = {int(m[1]) for n in names if (m := re.search(r"resblocks\.(\d+)\.", n))}
    text = {int(m[1]) for n in names if (m := re.search(r"blocks\.(\d+)\.", n)) and "resblocks" not in n}
    assert vit == set(range(max(cfg["adapter_config"]["vit_layers"]) + 1))  # vLLM builds these blocks only
    assert text == set(range(cfg["text_config"]["num_hidden_layers"]))
    tensors = _weights(converted)
    rows = sum(tensors[f"model.transformer.wte.{t}"].shape[0] for t in ("embedding", "new_embedding"))
    assert rows == cfg["text_config"]["vocab_size"] + cfg["text_config"]["additional_vocab_size"]  # vLLM's cat


def test_the_converted_checkpoint_loads_in_vidlake_to_the_same_logits(tiny_ref, converted):  # noqa: F811
    outputs = []
    for folder in (tiny_ref.source, converted):
        settings = ModelSettings(name=str(folder), local_files_only=True, device="cpu")
        ref = resolve_model(settings)
        processor, model = load_processor(ref, settings), load_model(ref, settings)
        assert type(model.config).__module__.startswith("transformers.models.molmo2")  # no remote code here
        frames = np.random.default_rng(0).integers(0, 256, (2, FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8)
        row = prepare_window(processor, frames, [0.0, 0.5], 0.0, "What happens?")
        inputs = collate([row], processor.tokenizer.pad_token_id, pixel_norm(processor.video_processor), "cpu",
                         model.dtype)
        with torch.inference_mode():
            outputs.append(model(**inputs).logits)
    assert torch.equal(*outputs)  # the vision tower, adapter and text model all read the same weights


def test_what_the_layout_cannot_serve_is_refused_and_nothing_is_left(tiny_ref, converted, tmp_path):  # noqa: F811
    from transformers import Molmo2ForConditionalGeneration

    native = tmp_path / "native"
    Molmo2ForConditionalGeneration.from_pretrained(tiny_ref.source).save_pretrained(native, save_original_format=False)
    with pytest.raises(ConfigError, match="save_original_format=False"):
        write_vllm_layout(native, tmp_path / "out")

    deeper = tmp_path / "deeper"
    deeper.mkdir()
    for file in Path(tiny_ref.source).iterdir():
        (deeper / file.name).write_bytes(file.read_bytes())
    config = json.loads((deeper / "config.json").read_text())
    config["vision_config"]["num_hidden_layers"] = 3
    config["adapter_config"]["vision_feature_layer"] = [1, 0]
    (deeper / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="vision tower has 3 blocks"):
        write_vllm_layout(deeper, tmp_path / "out")

    with pytest.raises(ConfigError, match="in the layout vLLM loads already"):
        write_vllm_layout(converted, tmp_path / "out")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty folder"):
        write_vllm_layout(tiny_ref.source, busy)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "deeper", "native"]  # no out, no staging folder
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]


def test_vllm_refuses_a_folder_in_transformers_layout_and_names_the_command(tiny_ref, converted):  # noqa: F811
    settings = load_settings(model={"engine": "vllm"}).model
    before = folder_revision(Path(tiny_ref.source))
    with pytest.raises(ConfigError, match=f"vidlake model to-vllm {re.escape(tiny_ref.source)} NEW_DIR"):
        with_engine(tiny_ref, settings, 1, "here")
    assert folder_revision(Path(tiny_ref.source)) == before
    hub = ModelRef("allenai/Molmo2-4B", "0" * 40, "allenai/Molmo2-4B", False)
    ready = replace(tiny_ref, source=str(converted))
    for ref in (ready, hub):  # past the layout check: only the package is missing here
        if importlib.util.find_spec("vllm") is None:
            with pytest.raises(ConfigError, match="vllm is not installed"):
                with_engine(ref, settings, 1, "here")
        else:
            assert with_engine(ref, settings, 1, "here").engine == "vllm"


def test_the_to_vllm_command(tiny_ref, tmp_path, capsys):  # noqa: F811
    from vidlake.cli import main

    assert main(["model", "to-vllm", tiny_ref.source, str(tmp_path / "v")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "v")
    assert "vit_config" in json.loads((tmp_path / "v" / "config.json").read_text())
    assert main(["model", "to-vllm", tiny_ref.source, str(tmp_path / "v")]) == 2  # not empty now
    assert main(["model", "to-vllm", str(tmp_path / "nothing"), str(tmp_path / "w")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]
