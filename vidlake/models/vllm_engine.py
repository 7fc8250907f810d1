"""Molmo 2 through vLLM (``model.engine: vllm``): the engine check on the driver and the requests.

vLLM (0.15 and later) runs Molmo 2 with its own copy of the checkpoint's Hugging Face processor: a
request is the chat-templated prompt text, which still holds the ``<|video|>`` (or one ``<|image|>`` per
image) placeholder, and the frames with their video metadata; vLLM adds the BOS token, calls the
processor on the frames with ``do_sample_frames=False`` and writes each frame's timestamp,
``frames_indices / fps`` to one decimal, before its tokens, as transformers' processor does. So vidlake
builds the request from the same three things that :func:`vidlake.models.molmo2_inputs.prepare_window`
hands transformers' processor (:func:`vidlake.models.molmo2_inputs.video_request`): the two engines see
the same prompt text, the same frames and the same timestamps, and rows differ only by what they generate.

The engine runs in vidlake's own actor (``vidlake.operators.infer.RunVLLM``), one ``vllm.LLM`` per model
replica, rather than behind Ray Data's ``ray.data.llm`` processor: the model stage stays a step like every
other (the same error rows, retry of a failing batch window by window, counters and columns, on the Ray and
the in-process executor alike), and the request needs none of that processor's chat-template and
tokenize stages. vLLM schedules each batch's requests continuously; batches are ``model.batch_size``
windows (docs/models.md).
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import replace
from typing import Any

import numpy as np

from vidlake.errors import ConfigError
from vidlake.models.molmo2 import ModelRef
from vidlake.models.vllm_layout import in_transformers_layout
from vidlake.platform.config import ModelSettings
from vidlake.platform.storage import is_s3

__all__ = ["REQUEST_COLUMNS", "sampling_kwargs", "vllm_request", "with_engine"]

# What BuildPrompt writes for vLLM, besides ``frames`` (kept for the engine): the prompt text and the
# frames' metadata (JSON); RunVLLM drops them once used.
REQUEST_COLUMNS = ("request_text", "request_metadata")


def with_engine(ref: ModelRef, settings: ModelSettings, gpus: float, where: str) -> ModelRef:
    """``ref`` with the engine ``settings.engine`` names and its version (what enters ``task_key``), or a
    ``ConfigError`` before any work: vLLM needs a GPU (``gpus``: how many ``where`` has), a model folder
    whose config it can read (vidlake/models/vllm_layout.py; folders on this machine are checked, Hub ids and
    S3 folders are not) and the package."""
    if settings.engine == "hf":
        return ref
    if ref.engine == "oracle":
        raise ConfigError("model.engine vllm runs Molmo 2 checkpoints; the oracle answers from ground truth and "
                          "has no engine: leave model.engine at hf")
    if gpus < 1:
        raise ConfigError(f"model.engine is vllm, which runs only on a GPU, but {where} has no GPU: run the job on "
                          "a Ray cluster with GPU nodes, or set model.engine: hf (transformers, CPU or GPU)")
    if ref.is_local and not is_s3(ref.source) and in_transformers_layout(ref.source):
        raise ConfigError(f"model.engine is vllm, but the config.json of {ref.source} is in transformers' layout "
                          "(vision_config), which vLLM's Molmo 2 cannot read: write a copy vLLM loads with "
                          f"`vidlake model to-vllm {ref.source} NEW_DIR` and name NEW_DIR as the model "
                          "(docs/models.md)")
    try:
        version = importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError("model.engine is vllm, but vllm is not installed here: install it on the driver and the "
                          "GPU nodes (`pip install vllm`, which brings its own torch build; docs/models.md)") from None
    return replace(ref, engine="vllm", engine_version=version)


def vllm_request(row: dict[str, Any]) -> dict[str, Any]:
    """The vLLM prompt of one row that BuildPrompt prepared for vLLM: text, and the window's frames with
    their metadata (a video: one ``(frames, metadata)`` tuple) or an image set's images."""
    metadata = json.loads(row["request_metadata"])
    frames = row["frames"]
    if metadata.get("images"):
        data = {"image": [np.asarray(image) for image in frames]}
    else:
        data = {"video": (np.asarray(frames), metadata)}
    return {"prompt": row["request_text"], "multi_modal_data": data,
            "mm_processor_kwargs": {"do_sample_frames": False}}


def sampling_kwargs(max_tokens: int, ignore_eos: bool) -> dict[str, Any]:
    """``vllm.SamplingParams`` of vidlake's decoding: greedy, as transformers' path decodes; ``ignore_eos``
    (benchmarks) generates exactly ``max_tokens``."""
    return {"temperature": 0.0, "max_tokens": int(max_tokens), "ignore_eos": bool(ignore_eos), "seed": 0}
