"""The search index beside the lake: built by ``vidlake index``, read by ``vidlake.serve`` (see docs/search.md).

    documents.py  lake rows -> index rows (pure)
    changes.py    what changed in the lake since a build (Delta file lists at pinned versions)
    embed.py      sentence embeddings (packaged MiniLM default; ONNX Runtime or PyTorch)
    store.py      where the index is, its meta file, staleness
    build.py      BuildIndex: build / update the LanceDB index (generations, incremental updates)

Importing this package imports nothing heavy; import the modules you need.
"""
