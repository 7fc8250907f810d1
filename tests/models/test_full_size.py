"""Full-size random Molmo 2: real shapes (counted on the meta device), real token ids, and a written folder
that loads and generates through the real-checkpoint path (at the tiny size: this machine cannot hold 8B)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidlake.errors import ConfigError
from vidlake.models.full_size import (
    QWEN_VOCAB, _check_room, count_params, full_config_and_processor, make_random,
)
from vidlake.models.molmo2 import load_model, load_processor, resolve_model
from vidlake.models.molmo2_inputs import collate, pixel_norm, prepare_window
from vidlake.models.tiny import FRAME_SIZE, MM_TOKENS
from vidlake.platform.config import ModelSettings


@pytest.mark.parametrize("size", ["8b", "4b"])
def test_full_shapes_parameter_counts_and_multimodal_token_ids(size):
    config, processor = full_config_and_processor(size)
    params = count_params(config)
    if size == "8b":
        assert params == 8_661_703_120  # benchmarks/results/gpu.md
    else:
        assert 4.5e9 < params < 5.0e9
    text = config.text_config
    assert config.adapter_config.text_hidden_size == text.hidden_size  # the 8B adapter fix, the 4B text width
    assert config.adapter_config.intermediate_size == text.intermediate_size
    assert text.hidden_size == (4096 if size == "8b" else 2560)
    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids(MM_TOKENS)
    assert ids == list(range(QWEN_VOCAB, QWEN_VOCAB + len(MM_TOKENS)))  # the released checkpoints' ids
    assert text.vocab_size == QWEN_VOCAB and len(ids) <= text.additional_vocab_size
    assert config.image_patch_id == tok.convert_tokens_to_ids("<im_patch>") == QWEN_VOCAB + 2
    assert config.frame_start_token_id == QWEN_VOCAB + 7 and config.frame_end_token_id == QWEN_VOCAB + 8
    frames = np.random.default_rng(0).integers(0, 256, (2, 378, 378, 3), dtype=np.uint8)
    row = prepare_window(processor, frames, [0.0, 0.5], 0.0, "What happens?")
    assert row["visual_tokens"] == 2 * 81  # 378 px pooled 3x3, as released


def test_make_random_writes_a_folder_that_loads_and_generates(tmp_path):
    lines: list[str] = []
    folder = make_random(tmp_path / "ck", size="tiny", seed=1, device="cpu", echo=lines.append)
    assert folder == tmp_path / "ck"
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # the staging folder is gone
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "configuration_molmo2.py", "generation_config.json", "tokenizer.json",
            "processor_config.json", "README.md", "vidlake-random.json"} <= names
    assert any(n.endswith(".safetensors") for n in names)
    config = json.loads((folder / "config.json").read_text())
    assert config["dtype"] == "bfloat16"
    # the layout vLLM loads (tests/models/test_vllm_layout.py), which transformers loads below
    assert "vit_config" in config and "vision_config" not in config
    assert config["auto_map"] == {"AutoConfig": "configuration_molmo2.Molmo2Config"}
    assert config["image_col_id"] == 1029 and config["adapter_config"]["vit_layers"] == [1, 0]  # the tiny size's
    assert "random" in (folder / "README.md").read_text().lower()
    assert json.loads((folder / "vidlake-random.json").read_text())["seed"] == 1
    assert any("parameters" in line for line in lines) and any(line.startswith("wrote ") for line in lines)

    settings = ModelSettings(name=str(folder), local_files_only=True, device="cpu")
    ref = resolve_model(settings)
    assert ref.is_local and ref.model_id == "local:ck"
    processor, model = load_processor(ref, settings), load_model(ref, settings)
    assert type(model).__name__ == "Molmo2ForConditionalGeneration" and type(processor).__name__ == "Molmo2Processor"
    tok = processor.tokenizer
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert model.generation_config.pad_token_id == tok.pad_token_id and not model.generation_config.do_sample

    frames = np.random.default_rng(0).integers(0, 256, (2, FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8)
    row = prepare_window(processor, frames, [0.0, 0.5], 0.0, "What happens?")
    inputs = collate([row, row], tok.pad_token_id, pixel_norm(processor.video_processor), "cpu", model.dtype)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out.shape == (2, inputs["input_ids"].shape[1] + 3)


def test_make_random_refuses_bad_input_and_leaves_nothing(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty folder"):
        make_random(busy, size="tiny", device="cpu", echo=None)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    with pytest.raises(ConfigError, match="unknown size"):
        make_random(tmp_path / "a", size="2b", echo=None)
    with pytest.raises(ConfigError, match="unknown device"):
        make_random(tmp_path / "a", size="tiny", device="tpu", echo=None)
    with pytest.raises(ConfigError, match="GiB of free RAM"):
        _check_room(10**12, "cpu", tmp_path)  # 2.2 TB: more than this machine has
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_make_random_command_errors(tmp_path):
    from vidlake.cli import main

    assert main(["model", "make-random", str(tmp_path / "a"), "--size", "tiny"]) == 2  # not offered by the CLI
    assert main(["model", "make-random", str(tmp_path / "a"), "--size", "2b"]) == 2
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    assert main(["model", "make-random", str(tmp_path / "b"), "--size", "4b", "--device", "cpu"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
