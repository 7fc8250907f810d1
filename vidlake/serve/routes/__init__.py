"""The search app's routes, one router per concern; ``vidlake.serve.app.create_app`` assembles them.

    common.py      what every router works with: the Service (state, metrics, threads), ApiError, parameters
    search.py      GET /search, GET /counts
    videos.py      GET /videos, /videos/{id}, /videos/{id}/timeline, /videos/{id}/thumbnail
    image_sets.py  GET /sets, /sets/{id}, /sets/{id}/timeline, /sets/{id}/thumbnail
    ops.py         GET /healthz, GET /metrics
    page.py        GET / (the web page) and /static/ (its script and style sheet)

Each module has ``router(service) -> APIRouter``: parameter limits come from the settings, so a router
is built per app.
"""
