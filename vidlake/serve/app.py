"""The search service's FastAPI app, built by ``create_app(settings)``; read-only.

Routes: ``/search``, ``/videos``, ``/videos/{id}``, ``/videos/{id}/timeline``, ``/videos/{id}/thumbnail``,
``/counts``, ``/healthz``, ``/metrics``, the web page at ``/`` and OpenAPI docs at ``/docs``. Every error
is JSON ``{"error": ..., "detail"?: [...], "run"?: ...}``: 4xx for bad input, 503 (with the command
to run) when the index is missing or stale. Blocking work (LanceDB, decoding) runs in threads.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import html
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic_core import to_json
from starlette.exceptions import HTTPException

from vidlake import __version__
from vidlake.platform.config import Settings
from vidlake.serve.metrics import Metrics
from vidlake.serve.models import (
    TASK_OR_KEY, VIDEO_ID, CountRow, ErrorBody, Health, Hit, Mode, SearchResponse, TimelineResponse, VideoDetail,
    VideoList,
)
from vidlake.serve.state import IndexUnavailable, ServiceState
from vidlake.serve.thumbnails import Thumbnails

__all__ = ["ApiError", "create_app"]

log = logging.getLogger("vidlake.serve")
_STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
_ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 422, 503)}
_HIT_FIELDS = tuple(Hit.model_fields)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str, **extra) -> JSONResponse:
    body = ErrorBody(error=message, **extra).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers={"Retry-After": "30"} if status == 503 else None)


def create_app(settings: Settings, state: ServiceState | None = None) -> FastAPI:
    """The app for ``settings``; ``state`` may be given to share an opened index (benchmarks)."""
    state = state or ServiceState(settings)
    metrics = Metrics()
    thumbs = Thumbnails(settings.storage, settings.serve.thumbnail_cache)
    search_cfg, api_key = settings.search, settings.serve.api_key

    # Blocking work (LanceDB, decoding) runs on this app's own threads. Starlette's run_in_threadpool
    # (anyio) ties its worker threads to the root task, which under Ray Serve is each request: it
    # started a thread per request (7.6% of a replica's py-spy samples at ~230 requests/s).
    pool = ThreadPoolExecutor(max_workers=min(32, settings.serve.max_ongoing_requests), thread_name_prefix="vidlake")

    async def blocking(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await state.start()
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="vidlake search", version=__version__, lifespan=lifespan,
                  description="Timestamped search over a vidlake lake: captions, answers, points, tracks, counts.")
    app.state.vidlake = state

    async def require_key(x_api_key: str | None = Header(None, description="Needed when the service has a key.")):
        if api_key is not None and not (x_api_key and hmac.compare_digest(x_api_key, api_key.get_secret_value())):
            raise ApiError(401, "missing or wrong X-API-Key header")

    data = [Depends(require_key)] if api_key is not None else []  # no key: no per-request dependency

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

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def video_of(video_id: str) -> dict:
        video = state.ready().videos.get(video_id)
        if video is None:
            raise ApiError(404, f"unknown video {video_id}")
        return video

    def time_range(t_from: float | None, t_to: float | None, video: dict | None = None) -> None:
        if t_from is not None and t_to is not None and t_from > t_to:
            raise ApiError(422, f"t_from ({t_from}) is after t_to ({t_to})")
        duration = (video or {}).get("duration_s")
        if duration is not None and t_from is not None and t_from > duration:
            raise ApiError(422, f"t_from={t_from} is past the end of the video ({duration:.3f} s)")

    Vid = Path(pattern=VIDEO_ID, description="sha256 of the video's bytes (64 hex).")
    TFrom = Query(None, ge=0, allow_inf_nan=False, description="Range start, seconds.")
    TTo = Query(None, ge=0, allow_inf_nan=False, description="Range end, seconds.")

    @app.get("/search", response_model=SearchResponse, responses=_ERRORS, dependencies=data)
    async def search(
        request: Request,
        q: str = Query(..., min_length=1, max_length=search_cfg.max_query_chars, description="What to find."),
        k: int = Query(10, ge=1, le=search_cfg.max_k, description="How many hits."),
        mode: Mode = Query(Mode.hybrid, description="bm25 (full text), semantic (embeddings) or hybrid (fused)."),
        video_id: str | None = Query(None, pattern=VIDEO_ID, description="Only this video."),
        t_from: float | None = TFrom, t_to: float | None = TTo,
        task: str | None = Query(None, pattern=TASK_OR_KEY, description="A task (caption, qa...) or a task_key."),
    ) -> Response:
        text = q.strip()
        if not text:
            raise ApiError(422, "q is blank: give words to search for")
        time_range(t_from, t_to, video_of(video_id) if video_id else None)
        searcher = state.ready()
        task_key = task if task and len(task) == 16 and all(c in "0123456789abcdef" for c in task) else None
        started = time.perf_counter()
        hits = await blocking(searcher.search, text, k, mode.value, video_id,
                              None if task_key else task, task_key, t_from, t_to)
        took = time.perf_counter() - started
        metrics.searches.labels(mode.value).observe(took)
        root = base(request)
        for h in hits:
            t = (h["start_s"] + h["end_s"]) / 2
            h["thumbnail_url"] = f"{root}/videos/{h['video_id']}/thumbnail?t={t:.3f}"
            h["timeline_url"] = f"{root}/videos/{h['video_id']}/timeline?t_from={h['start_s']:.3f}&t_to={h['end_s']:.3f}"
        # the hot path: serialized straight to JSON in the models' field order (pydantic-core), without
        # validating the response again; tests check it against SearchResponse
        body = {"query": text, "mode": mode.value, "k": k, "took_ms": took * 1000,
                "hits": [{key: h[key] for key in _HIT_FIELDS} for h in hits], "index": state.info()}
        return Response(to_json(body), media_type="application/json")

    @app.get("/videos", response_model=VideoList, responses=_ERRORS, dependencies=data)
    async def videos(offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)) -> dict:
        rows = list(state.ready().videos.values())
        return {"total": len(rows), "offset": offset, "videos": rows[offset:offset + limit]}

    @app.get("/videos/{video_id}", response_model=VideoDetail, responses=_ERRORS, dependencies=data)
    async def video(request: Request, video_id: str = Vid) -> dict:
        row = video_of(video_id)
        tasks = await blocking(state.ready().tasks, video_id)
        return {**row, "tasks": tasks, "thumbnail_url": f"{base(request)}/videos/{video_id}/thumbnail?t=0"}

    @app.get("/videos/{video_id}/timeline", response_model=TimelineResponse, responses=_ERRORS, dependencies=data)
    async def timeline(video_id: str = Vid, t_from: float | None = TFrom, t_to: float | None = TTo,
                       limit: int = Query(2000, ge=1, le=20000)) -> dict:
        row = video_of(video_id)
        time_range(t_from, t_to, row)
        events, truncated = await blocking(state.ready().timeline, video_id, t_from, t_to, limit)
        return {"video_id": video_id, "duration_s": row["duration_s"], "t_from": t_from, "t_to": t_to,
                "events": events, "truncated": truncated}

    @app.get("/videos/{video_id}/thumbnail", response_class=Response, responses={
        200: {"content": {"image/jpeg": {}}}, **_ERRORS}, dependencies=data)
    async def thumbnail(video_id: str = Vid, t: float = Query(0.0, ge=0, allow_inf_nan=False),
                        w: int = Query(settings.serve.thumbnail_width, ge=16, le=1920, description="Width, pixels."),
                        overlay: bool = Query(False, description="Draw the points and boxes near t.")) -> Response:
        row = video_of(video_id)
        duration = row.get("duration_s")
        if duration is not None and t > duration:
            raise ApiError(422, f"t={t} is outside the video (0 .. {duration:.3f} s)")
        marks = None
        if overlay:
            tol = 0.5 / row["fps"] if row.get("fps") else 0.25
            marks = await blocking(state.ready().samples, [(video_id, t - max(tol, 0.05), t + max(tol, 0.05))])
        try:
            jpeg, cached = await blocking(thumbs.get, row, t, w, marks)
        except FileNotFoundError as exc:
            raise ApiError(404, str(exc)) from None
        metrics.thumbnails.labels("hit" if cached else "miss").inc()
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/counts", response_model=list[CountRow], responses=_ERRORS, dependencies=data)
    async def counts(query: str | None = Query(None, max_length=search_cfg.max_query_chars,
                                               description="Substring of the counted phrase, any case."),
                     video_id: str | None = Query(None, pattern=VIDEO_ID),
                     limit: int = Query(100, ge=1, le=10000)) -> list[dict]:
        if video_id:
            video_of(video_id)
        return await blocking(state.ready().counts, (query or "").strip() or None, video_id, limit)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> dict:
        state.maybe_refresh()
        if state.missing_reason:
            return {"status": "degraded", "index": "missing", "message": state.missing_reason}
        if state.stale_reason:
            return {"status": "degraded" if not settings.serve.allow_stale else "ok", "index": "stale",
                    "message": state.stale_reason}
        return {"status": "ok", "index": "ready"}

    @app.get("/metrics", response_class=Response, dependencies=data)
    async def prometheus() -> Response:
        metrics.index_stale.set(1 if state.stale_reason else 0)
        for table, rows in (state.meta.rows if state.meta else {}).items():
            metrics.index_rows.labels(table).set(rows)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request) -> HTMLResponse:
        href = html.escape(base(request) + "/", quote=True)
        return HTMLResponse(_static_text("index.html").replace("<head>", f'<head><base href="{href}">', 1))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in _STATIC:  # a fixed list: request paths never reach the filesystem
            raise ApiError(404, f"no static file {name!r}")
        return Response(_static_text(name), media_type=_STATIC[name])

    app.add_middleware(_AsgiMiddleware, wrap=metrics.middleware)
    return app


def _static_text(name: str) -> str:
    return resources.files("vidlake.serve").joinpath("static", name).read_text(encoding="utf-8")


class _AsgiMiddleware:
    """Adapts a plain ASGI wrapper function to Starlette's middleware stack."""

    def __init__(self, app, wrap):
        self._call = wrap(app)

    async def __call__(self, scope, receive, send):
        await self._call(scope, receive, send)
