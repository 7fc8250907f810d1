"""The search service's FastAPI app, built by ``create_app(settings)``; read-only.

Routes (``vidlake.serve.routes``): ``/search``, ``/counts``, ``/videos``, ``/videos/{id}``,
``/videos/{id}/timeline``, ``/videos/{id}/thumbnail``, the same four under ``/sets`` for image sets,
``/healthz``, ``/metrics``, the web page at ``/``
and OpenAPI docs at ``/docs``. Every error is JSON ``{"error": ..., "detail"?: [...], "run"?: ...}``:
4xx for bad input, 503 (with the command to run) when there is no index. An index older than the lake
still answers, flagged: the ``X-Vidlake-Index: stale`` header on every answer and ``index.stale`` (with
the reason) in search answers; ``serve.allow_stale=false`` answers 503 instead. Blocking work (LanceDB,
decoding) runs on the app's own threads.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from vidlake import __version__
from vidlake.platform.config import Settings
from vidlake.serve.metrics import Metrics
from vidlake.serve.models import ErrorBody
from vidlake.serve.routes import image_sets, ops, page, search, videos
from vidlake.serve.routes.common import ApiError, Service
from vidlake.serve.state import IndexUnavailable, ServiceState
from vidlake.serve.thumbnails import Thumbnails
from vidlake.serve.tuning import blocking_pool

__all__ = ["create_app"]

log = logging.getLogger("vidlake.serve")


def create_app(settings: Settings, state: ServiceState | None = None) -> FastAPI:
    """The app for ``settings``; ``state`` may be given to share an opened index (benchmarks)."""
    service = Service(settings, state or ServiceState(settings), Metrics(),
                      Thumbnails(settings.storage, settings.serve.thumbnail_cache), blocking_pool(settings.serve))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await service.state.start()
        yield
        service.pool.shutdown(wait=False, cancel_futures=True)

    # /docs and /redoc with their Swagger UI and ReDoc assets served by the app itself, not from a CDN
    app = FastAPIOffline(title="vidlake search", version=__version__, lifespan=lifespan,
                         description="Timestamped search over a vidlake lake, videos and image sets: captions, "
                                     "answers, points, tracks, counts.")
    app.state.vidlake = service.state
    for module in (search, videos, image_sets, ops):
        app.include_router(module.router(service))
    app.include_router(page.router())
    app.mount("/static", page.PageAssets(), name="static")
    _handle_errors(app)
    app.add_middleware(_AsgiMiddleware, wrap=_index_state_header(service.state))
    app.add_middleware(_AsgiMiddleware, wrap=service.metrics.middleware)
    return app


def _index_state_header(state: ServiceState):
    """ASGI middleware: every answer says whether it came from a current index, ``X-Vidlake-Index:
    ready`` or ``stale`` (as ``/healthz`` says), so a client of any route can tell an answer that
    misses the lake's newest rows."""

    def wrap(app):
        async def wrapped(scope, receive, send):
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_with_header(message: dict) -> None:
                if message["type"] == "http.response.start" and state.meta is not None:
                    value = b"stale" if state.stale_reason else b"ready"
                    message["headers"] = [*message.get("headers", ()), (b"x-vidlake-index", value)]
                await send(message)

            await app(scope, receive, send_with_header)

        return wrapped

    return wrap


def _error(status: int, message: str, **extra) -> JSONResponse:
    body = ErrorBody(error=message, **extra).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers={"Retry-After": "30"} if status == 503 else None)


def _handle_errors(app: FastAPI) -> None:
    """Every error as ``ErrorBody`` JSON."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _error(422, "invalid request parameters", detail=detail)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(IndexUnavailable)
    async def _unavailable(_: Request, exc: IndexUnavailable) -> JSONResponse:
        return _error(503, exc.message, run=exc.run)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the service log")


class _AsgiMiddleware:
    """Adapts a plain ASGI wrapper function to Starlette's middleware stack."""

    def __init__(self, app, wrap):
        self._call = wrap(app)

    async def __call__(self, scope, receive, send):
        await self._call(scope, receive, send)
