"""Loading Molmo 2 through transformers' built-in classes (no remote code).

A model is named by a Hugging Face id (``allenai/Molmo2-4B``...), a local checkpoint folder, a
folder on S3 (``s3://bucket/prefix``), or ``tiny`` (built once by :mod:`vidlake.models.tiny`).
:func:`resolve_model` runs on the driver: it checks the name, pins the exact revision (the Hub
commit, or a content hash for a folder) and fails fast with a message that says what to do.
Workers check that revision where they run (:func:`on_this_node`: an S3 folder is copied once per
node into ``model.cache_dir``) and load it with :func:`load_processor` / :func:`load_model`, so
every output row names exactly what produced it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidlake.errors import ModelLoadError
from vidlake.models.checkpoints import WEIGHT_SUFFIXES, copy_here, folder_revision, resolve_s3
from vidlake.models.oracle import oracle_folder, truth_revision
from vidlake.platform.config import ModelSettings, StorageSettings
from vidlake.platform.storage import is_s3

__all__ = ["ModelRef", "context_length", "frame_limit", "load_model", "load_processor", "pick_device", "pick_dtype", "resolve_model"]

_HINT_OFFLINE = (
    "download it on a machine with network access (`hf download {id}` then copy the Hugging Face cache, "
    "or `hf download {id} --local-dir DIR` and pass DIR as the model), or use `--model tiny` offline"
)


@dataclass(frozen=True)
class ModelRef:
    """What to load and what to record: ``model_id`` + ``revision`` enter every output's ``task_key``."""

    model_id: str  # Hub id, "local:<folder name>", the s3:// URI of a folder, or "vidlake/tiny-molmo2-seedN"
    revision: str  # Hub commit sha, or "local-<content hash>" for a folder (see checkpoints.content_revision)
    source: str  # the Hub id, the folder path, or the folder's s3:// URI
    is_local: bool  # a folder (here or on S3), pinned by content, not a Hub id
    storage: StorageSettings | None = field(default=None, compare=False)  # how an s3:// folder is reached
    engine: str = "transformers"  # what answers: Molmo 2 through transformers or "vllm", or "oracle" (models/oracle.py)
    engine_version: str = ""  # the serving engine's version (vllm's); "" for transformers and the oracle

    @property
    def engine_key(self) -> str:
        """What the engine adds to ``task_key``: "" for transformers (the reference) and the oracle."""
        return f"{self.engine}=={self.engine_version}" if self.engine == "vllm" else ""


def resolve_model(settings: ModelSettings, storage: StorageSettings | None = None) -> ModelRef:
    """Pin ``settings.name`` to an exact revision; raises ``ModelLoadError`` saying what to do.
    ``storage``: how an ``s3://`` model folder is reached (the job's storage settings)."""
    name = settings.name.strip()
    if truth := oracle_folder(name):
        if not truth.is_dir():
            raise ModelLoadError(f"the oracle's truth folder {truth} does not exist: name a folder written by "
                                 "`vidlake synth` or holding your annotations (points.csv), as oracle:DIR")
        return ModelRef(f"oracle:{truth.name}", truth_revision(truth), str(truth), True, engine="oracle")
    if is_s3(name):
        storage = storage or StorageSettings()
        model_id, revision = resolve_s3(name.rstrip("/"), storage, _check_molmo2)
        return ModelRef(model_id, revision, model_id, True, storage)
    if name == "tiny":
        from vidlake.models.tiny import TINY_MODEL_ID, ensure_tiny

        folder = ensure_tiny(settings.tiny_dir, settings.tiny_seed)
        return ModelRef(f"{TINY_MODEL_ID}-seed{settings.tiny_seed}", folder_revision(folder), str(folder), True)
    if name == "toy":
        from vidlake.models.toy import TOY_MODEL_ID, toy_folder

        folder = toy_folder()
        return ModelRef(TOY_MODEL_ID, folder_revision(folder), str(folder), True)
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        return _resolve_folder(path)
    return _resolve_hub(name, settings)


def _resolve_folder(path: Path) -> ModelRef:
    if path.is_file():
        raise ModelLoadError(f"model {path} is a file: point --model at the folder that holds config.json and the "
                             "weights (written by save_pretrained or `hf download --local-dir`)")
    if not path.is_dir():
        raise ModelLoadError(f"model folder {path} does not exist")
    config = path / "config.json"
    if not config.is_file():
        raise ModelLoadError(f"{path} has no config.json: point --model at a folder written by save_pretrained")
    _check_molmo2(json.loads(config.read_text()), str(path))
    if not any(f.name.endswith(WEIGHT_SUFFIXES) for f in path.iterdir()):
        raise ModelLoadError(f"{path} holds no weight files (*.safetensors): the download is incomplete")
    return ModelRef(f"local:{path.resolve().name}", folder_revision(path), str(path.resolve()), True)


def _resolve_hub(repo_id: str, settings: ModelSettings) -> ModelRef:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError, HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError,
    )

    rev = settings.revision or "main"
    offline = settings.local_files_only or not _hub_resolvable()  # no DNS: use the cache now, no retries
    try:
        config_path = hf_hub_download(
            repo_id, "config.json", revision=rev, cache_dir=settings.hf_cache_dir, local_files_only=offline,
        )
    except HFValidationError:
        raise ModelLoadError(f"{repo_id!r} is neither a folder nor a Hugging Face id (owner/name)") from None
    except GatedRepoError:
        raise ModelLoadError(
            f"{repo_id} is gated: accept its licence on the Hub and log in (`hf auth login`)"
        ) from None
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"no model {repo_id!r} on the Hub (or it is private): check the id, e.g. allenai/Molmo2-4B"
        ) from None
    except RevisionNotFoundError:
        raise ModelLoadError(f"{repo_id} has no revision {rev!r}: use a branch, tag or commit it has") from None
    except (LocalEntryNotFoundError, OSError) as exc:
        hint = _HINT_OFFLINE.format(id=repo_id)
        raise ModelLoadError(
            f"cannot find {repo_id} (revision {rev}) in the local Hugging Face cache and the Hub is not reachable"
            f" ({type(exc).__name__}): {hint}"
        ) from None
    commit = Path(config_path).parent.name
    _check_molmo2(json.loads(Path(config_path).read_text()), repo_id)
    return ModelRef(repo_id, commit, repo_id, False)


@functools.lru_cache(maxsize=1)
def _hub_resolvable() -> bool:
    """Whether the Hub's host name resolves (fails at once offline, where a download would retry ~20 s).
    Asked once per process: the config, processor and model loads of one worker all need the answer."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname or "huggingface.co", 443)
        return True
    except OSError:
        return False


def _check_molmo2(config: dict[str, Any], where: str) -> None:
    kind = config.get("model_type")
    if kind != "molmo2":
        raise ModelLoadError(
            f"{where} is a {kind!r} model, not Molmo 2 (model_type 'molmo2'): vidlake runs allenai/Molmo2-* "
            "checkpoints and their fine-tunes"
        )


_checked_here: set[tuple[ModelRef, str, int]] = set()  # refs this process checked already (on_this_node)


def on_this_node(ref: ModelRef, settings: ModelSettings) -> None:
    """Check that this process (a worker, maybe on another node than the driver) has ``ref`` at the
    revision the driver resolved, or raise ``ModelLoadError`` naming what differs and the fix. Once per
    process: the prompt builder and the model, fused in one actor, both call it.

    The tiny model is built here when this node does not have it (at the same path; it is deterministic,
    so its content hash matches the driver's). A local folder must exist here with the same content hash.
    An S3 folder is copied to this node's ``model.cache_dir`` (once) and checked. A Hub id is loaded at the
    driver's exact commit (see ``_pretrained_kwargs``)."""
    key = (ref, settings.name.strip(), settings.tiny_seed)
    if not ref.is_local or key in _checked_here:
        return
    node = socket.gethostname()
    if is_s3(ref.source):
        copy_here(ref, settings)
        _checked_here.add(key)
        return
    if ref.engine == "oracle":
        if truth_revision(Path(ref.source)) != ref.revision:
            raise ModelLoadError(f"the oracle's truth in {ref.source} on node {node} differs from the driver's: give "
                                 "every node the same folder")
        _checked_here.add(key)
        return
    folder = Path(_load_from(ref, settings))  # the folder, or this node's installed toy checkpoint
    if settings.name.strip() == "tiny":
        from vidlake.models.tiny import ensure_tiny

        try:
            folder = ensure_tiny(folder, settings.tiny_seed)
        except OSError as exc:
            raise ModelLoadError(f"cannot build the tiny model at {folder} on node {node}: {exc}") from exc
    elif not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"model folder {folder} does not exist on node {node}: every node that runs the model needs it at the "
            "same path (a volume mounted on every node), or name a Hub id")
    revision = folder_revision(folder)
    if revision != ref.revision:
        raise ModelLoadError(
            f"model folder {folder} on node {node} is revision {revision}, but the driver resolved {ref.revision}: "
            "the nodes hold different copies of the model; give every node the same files")
    _checked_here.add(key)


def _load_from(ref: ModelRef, settings: ModelSettings, weights: bool = True) -> str:
    """What ``from_pretrained`` opens: the Hub id, the folder, this node's copy of an S3 folder, or this node's
    installed toy checkpoint."""
    if is_s3(ref.source):
        return str(copy_here(ref, settings, weights))
    if settings.name.strip() == "toy":  # this node's installation: its path may differ from the driver's
        from vidlake.models.toy import toy_folder

        return str(toy_folder())
    return ref.source


def _pretrained_kwargs(ref: ModelRef, settings: ModelSettings) -> dict[str, Any]:
    if ref.is_local:
        return {"local_files_only": True}
    # decided where it loads: a worker without a route to the Hub reads its cache at the driver's commit
    offline = settings.local_files_only or not _hub_resolvable()
    return {"revision": ref.revision, "cache_dir": settings.hf_cache_dir, "local_files_only": offline}


def context_length(ref: ModelRef, settings: ModelSettings) -> int:
    """The most tokens (prompt and answer) the checkpoint's language model takes, from its config."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(_load_from(ref, settings, weights=False), **_pretrained_kwargs(ref, settings))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the config of {ref.model_id}@{ref.revision}: {exc}") from exc
    text = getattr(config, "text_config", None) or config
    return int(getattr(text, "max_position_embeddings", None) or getattr(config, "max_position_embeddings"))


def frame_limit(ref: ModelRef, settings: ModelSettings) -> int | None:
    """The most frames per window the checkpoint was trained on, where its folder says so: a toy Molmo 2
    trained by ``vidlake model train-toy`` records its windows' frames in ``vidlake-toy.json`` (the toy
    answers nothing useful on more frames than it saw). ``None``: no limit declared (Molmo 2's own
    checkpoints, the oracle), ``sampling.max_frames`` is the user's."""
    if not ref.is_local or ref.engine == "oracle":
        return None
    card = Path(_load_from(ref, settings, weights=False)) / "vidlake-toy.json"
    if not card.is_file():
        return None
    try:
        return int(json.loads(card.read_text())["train"]["frames"][1])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelLoadError(f"{card} does not say the frames the model was trained on (train.frames): {exc}") from exc


def load_processor(ref: ModelRef, settings: ModelSettings):
    """The checkpoint's ``Molmo2Processor`` (tokenizer, chat template, video processor); CPU only."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(_load_from(ref, settings, weights=False), **_pretrained_kwargs(ref, settings))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the processor of {ref.model_id}@{ref.revision}: {exc}") from exc


def pick_device(settings: ModelSettings) -> str:
    """Resolve ``device``: auto -> cuda:0 when a GPU is visible, else cpu. Call it in the worker."""
    import torch

    if settings.device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {settings.device!r} asked for, but no CUDA GPU is visible to this worker")
    return "cuda:0" if settings.device == "cuda" else settings.device


def pick_dtype(settings: ModelSettings, device: str):
    """``auto`` is bf16 on CUDA (released weights are fp32: never load them as-is on GPU), fp32 on CPU."""
    import torch

    named = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if settings.dtype != "auto":
        return named[settings.dtype]
    return torch.bfloat16 if device != "cpu" else torch.float32


def load_model(ref: ModelRef, settings: ModelSettings):
    """``Molmo2ForConditionalGeneration`` in eval mode on the configured device and dtype."""
    import torch
    from transformers import AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per worker would interleave with the job's progress

    device = pick_device(settings)
    has_accelerate = importlib.util.find_spec("accelerate") is not None
    if device == "shard" and not has_accelerate:
        raise ModelLoadError("device 'shard' (spread over GPUs) needs accelerate: pip install accelerate")
    kwargs = {
        **_pretrained_kwargs(ref, settings),
        "dtype": pick_dtype(settings, device),
        "attn_implementation": settings.attn_implementation,
    }
    if has_accelerate and device != "cpu":
        kwargs["device_map"] = "auto" if device == "shard" else device
    try:
        model = AutoModelForImageTextToText.from_pretrained(_load_from(ref, settings), **kwargs)
        if "device_map" not in kwargs and device != "cpu":
            model = model.to(device)
    except torch.cuda.OutOfMemoryError as exc:
        raise ModelLoadError(_oom_message(ref, device)) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise ModelLoadError(_oom_message(ref, device)) from exc
        raise ModelLoadError(f"cannot load {ref.model_id}@{ref.revision}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {ref.model_id}@{ref.revision}: {exc}") from exc
    return model.eval()


def _oom_message(ref: ModelRef, device: str) -> str:
    return (
        f"{ref.model_id} does not fit in memory on {device}: load it as bf16 (model.dtype), pick a smaller model "
        "(allenai/Molmo2-4B), give the worker a bigger GPU, or spread it with model.device=shard"
    )
