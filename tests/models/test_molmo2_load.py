"""Resolving and loading models: pinned revisions, one code path for Hub ids and folders, clear failures."""

from __future__ import annotations

import shutil
from pathlib import Path
import time

import pytest
import torch
from tiny_model import tiny_ref, tiny_settings  # noqa: F401 - fixtures

from vidlake.errors import ModelLoadError
from vidlake.models.checkpoints import folder_revision
from vidlake.models.molmo2 import load_model, pick_device, pick_dtype, resolve_model
from vidlake.models.tiny import make_tiny
from vidlake.platform.config import ModelSettings

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_tiny_resolves_to_a_stable_content_revision(tiny_ref, tiny_settings, tmp_path):  # noqa: F811
    assert tiny_ref.model_id == "vidlake/tiny-molmo2-seed0" and tiny_ref.is_local
    assert tiny_ref.revision.startswith("local-")
    copy = make_tiny(tmp_path / "again", seed=0)
    assert folder_revision(copy) == tiny_ref.revision  # same bytes, same revision, wherever built
    assert folder_revision(make_tiny(tmp_path / "seed1", seed=1)) != tiny_ref.revision  # same sizes, other weights
    local = resolve_model(ModelSettings(name=str(copy)))
    assert local.model_id == "local:again" and local.revision == tiny_ref.revision


def test_local_folder_with_hub_download_metadata_records_the_commit(tiny_ref, tmp_path):  # noqa: F811
    folder = tmp_path / "Molmo2-4B"
    shutil.copytree(tiny_ref.source, folder)
    meta = folder / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text(f"{SHA}\netag\n1.0\n")
    assert resolve_model(ModelSettings(name=str(folder))).revision == SHA


def test_hub_id_from_the_cache_pins_the_commit_and_loads(tiny_ref, tmp_path):  # noqa: F811
    repo = tmp_path / "hub" / "models--allenai--Molmo2-Tiny"
    shutil.copytree(tiny_ref.source, repo / "snapshots" / SHA)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    settings = ModelSettings(name="allenai/Molmo2-Tiny", hf_cache_dir=str(tmp_path / "hub"), local_files_only=True)
    ref = resolve_model(settings)
    assert (ref.model_id, ref.revision, ref.is_local) == ("allenai/Molmo2-Tiny", SHA, False)
    model = load_model(ref, settings)
    assert type(model).__name__ == "Molmo2ForConditionalGeneration"


def test_missing_weights_offline_fail_fast_with_what_to_do(tmp_path):
    began = time.monotonic()
    with pytest.raises(ModelLoadError) as err:
        resolve_model(ModelSettings(name="allenai/Molmo2-4B", hf_cache_dir=str(tmp_path), local_files_only=True))
    assert time.monotonic() - began < 10
    message = str(err.value)
    assert "allenai/Molmo2-4B" in message and "hf download" in message and "--model tiny" in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [("/no/such/folder", "does not exist"), ("not a valid id!!", "neither a folder nor a Hugging Face id")],
)
def test_bad_names(name, expected):
    with pytest.raises(ModelLoadError, match=expected):
        resolve_model(ModelSettings(name=name, local_files_only=True))


def test_folders_that_are_not_molmo2_checkpoints(tiny_ref, tmp_path):  # noqa: F811
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model(ModelSettings(name=str(empty)))
    other = tmp_path / "other"
    shutil.copytree(tiny_ref.source, other)
    (other / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelLoadError, match="'llama' model, not Molmo 2"):
        resolve_model(ModelSettings(name=str(other)))
    partial = tmp_path / "partial"
    shutil.copytree(tiny_ref.source, partial)
    (partial / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weight files"):
        resolve_model(ModelSettings(name=str(partial)))
    with pytest.raises(ModelLoadError, match="is a file: point --model at the folder"):
        resolve_model(ModelSettings(name=str(Path(tiny_ref.source) / "model.safetensors")))


def test_dtype_device_and_attention_settings(tiny_ref, tiny_settings):  # noqa: F811
    assert pick_dtype(ModelSettings(), "cpu") == torch.float32
    assert pick_dtype(ModelSettings(), "cuda:0") == torch.bfloat16
    assert pick_dtype(ModelSettings(dtype="fp16"), "cpu") == torch.float16
    if not torch.cuda.is_available():
        assert pick_device(ModelSettings()) == "cpu"
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            pick_device(ModelSettings(device="cuda"))
    settings = tiny_settings.model_copy(update={"dtype": "bf16", "attn_implementation": "eager"})
    model = load_model(tiny_ref, settings)
    assert model.dtype == torch.bfloat16 and model.config._attn_implementation == "eager"
