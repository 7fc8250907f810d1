"""GET /search (ranked hits of videos and image sets) and GET /counts (counts rows by phrase)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query, Request, Response
from pydantic_core import to_json

from vidlake.serve.models import MEDIA_ID, TASK_OR_KEY, CountRow, Hit, Mode, SearchResponse
from vidlake.serve.routes.common import ERRORS, T_FROM, T_TO, ApiError, Service, root, time_range

__all__ = ["router"]

_HIT_FIELDS = tuple(Hit.model_fields)


def router(service: Service) -> APIRouter:
    api = APIRouter(dependencies=service.data, responses=ERRORS)
    state, limits = service.state, service.settings.search

    @api.get("/search", response_model=SearchResponse)
    async def search(
        request: Request,
        q: str = Query(..., min_length=1, max_length=limits.max_query_chars, description="What to find."),
        k: int = Query(10, ge=1, le=limits.max_k, description="How many hits."),
        mode: Mode = Query(Mode.hybrid, description="bm25 (full text), semantic (embeddings) or hybrid (fused)."),
        video_id: str | None = Query(None, pattern=MEDIA_ID, description="Only this video or image set (its id)."),
        t_from: float | None = T_FROM, t_to: float | None = T_TO,
        task: str | None = Query(None, pattern=TASK_OR_KEY, description="A task (caption, qa...) or a task_key."),
    ) -> Response:
        text = q.strip()
        if not text:
            raise ApiError(422, "q is blank: give words to search for")
        time_range(t_from, t_to, service.media_of(video_id) if video_id else None)
        searcher = state.ready()
        task_key = task if task and len(task) == 16 and all(c in "0123456789abcdef" for c in task) else None
        started = time.perf_counter()
        hits = await service.blocking(searcher.search, text, k, mode.value, video_id,
                                      None if task_key else task, task_key, t_from, t_to)
        took = time.perf_counter() - started
        service.metrics.searches.labels(mode.value).observe(took)
        base = root(request)
        for h in hits:
            t = (h["start_s"] + h["end_s"]) / 2
            path = f"{base}/{'sets' if h['media'] == 'set' else 'videos'}/{h['video_id']}"
            h["thumbnail_url"] = f"{path}/thumbnail?t={t:.3f}"
            h["timeline_url"] = f"{path}/timeline?t_from={h['start_s']:.3f}&t_to={h['end_s']:.3f}"
            for image in (h["image_set"] or {}).get("images", ()):
                image["thumbnail_url"] = f"{path}/thumbnail?image={image['image_id']}"
        # the hot path: serialized straight to JSON in the models' field order (pydantic-core), without
        # validating the response again; tests check it against SearchResponse
        body = {"query": text, "mode": mode.value, "k": k, "took_ms": took * 1000,
                "hits": [{key: h[key] for key in _HIT_FIELDS} for h in hits], "index": state.info()}
        return Response(to_json(body), media_type="application/json")

    @api.get("/counts", response_model=list[CountRow])
    async def counts(query: str | None = Query(None, max_length=limits.max_query_chars,
                                               description="Substring of the counted phrase, any case."),
                     video_id: str | None = Query(None, pattern=MEDIA_ID, description="A video's or image set's id."),
                     limit: int = Query(100, ge=1, le=10000)) -> list[dict]:
        if video_id:
            service.media_of(video_id)
        return await service.blocking(state.ready().counts, (query or "").strip() or None, video_id, limit)

    return api
