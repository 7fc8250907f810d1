"""The search service: Ray Serve + FastAPI over the index that ``vidlake.index`` builds (see docs/search.md).

    ranking.py    terms, highlight, RRF, time ranges (pure)   search.py   Searcher: queries over one index
    state.py      the service's refreshing view of the index  models.py   request/response models
    app.py        create_app(settings): assembles the app     routes/     its routers (search, videos, ops, page)
    tuning.py     ingress, niceness, threads, GC (settings)   deployment.py  the Ray Serve deployment, run_service
    thumbnails.py frames at t, overlays, cache                metrics.py  Prometheus metrics
    static/       the web page (plain HTML/JS)

Importing this package imports nothing heavy; import the modules you need.
"""
