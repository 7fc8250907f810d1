"""The embedding engines (ONNX Runtime int8 / float32, sentence-transformers on PyTorch)."""

import numpy as np

from vidlake.index.embed import Embedder


def test_onnx_engines_agree_with_torch(embedder):
    """The ONNX Runtime engines (default int8, float32) give the vectors sentence-transformers gives."""
    texts = ["A forklift drops a cardboard box in a warehouse.", "cells dividing", "onions", "x " * 400,
             "A forklift drops a cardboard box in a warehouse."]
    ref = Embedder(backend="torch").embed(texts)
    assert embedder.engine == "onnx-int8"
    for backend, floor in (("onnx-int8", 0.97), ("onnx", 0.9999)):
        got = Embedder(backend=backend).embed(texts)
        assert got.shape == (5, 384) and got.dtype == np.float32
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (got * ref).sum(axis=1).min() > floor, backend
