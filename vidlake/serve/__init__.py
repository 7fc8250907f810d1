"""Search: the index over the lake and the Ray Serve service around it (see docs/search.md).

    documents.py  lake rows -> index rows (pure)         ranking.py  terms, highlight, RRF, time ranges (pure)
    changes.py    what changed in the lake since a build  index.py    BuildIndex: build / update the LanceDB index
    store.py      where the index is, its meta, staleness embed.py    sentence embeddings (packaged MiniLM default)
    search.py     Searcher: queries over one index        state.py    the service's refreshing view of the index
    models.py     request/response models                 app.py      create_app(settings): the FastAPI app
    thumbnails.py frames at t, overlays, cache            deployment.py  the Ray Serve deployment, run_service
    metrics.py    Prometheus metrics                      static/     the web page (plain HTML/JS)

Importing this package imports nothing heavy; import the modules you need.
"""
