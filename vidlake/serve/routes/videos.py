"""GET /videos, /videos/{id}, /videos/{id}/timeline and /videos/{id}/thumbnail."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from vidlake.serve.models import TimelineResponse, VideoDetail, VideoList
from vidlake.serve.routes.common import ERRORS, T_FROM, T_TO, VID, ApiError, Service, root
from vidlake.serve.routes.common import timeline as timeline_of

__all__ = ["router"]


def router(service: Service) -> APIRouter:
    api = APIRouter(dependencies=service.data, responses=ERRORS)
    state = service.state

    @api.get("/videos", response_model=VideoList)
    async def videos(offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)) -> dict:
        rows = list(state.ready().videos.values())
        return {"total": len(rows), "offset": offset, "videos": rows[offset:offset + limit]}

    @api.get("/videos/{video_id}", response_model=VideoDetail)
    async def video(request: Request, video_id: str = VID) -> dict:
        row = service.video_of(video_id)
        tasks = await service.blocking(state.ready().tasks, video_id)
        return {**row, "tasks": tasks, "thumbnail_url": f"{root(request)}/videos/{video_id}/thumbnail?t=0"}

    @api.get("/videos/{video_id}/timeline", response_model=TimelineResponse)
    async def timeline(video_id: str = VID, t_from: float | None = T_FROM, t_to: float | None = T_TO,
                       limit: int = Query(2000, ge=1, le=20000)) -> dict:
        return await timeline_of(service, video_id, service.video_of(video_id), t_from, t_to, limit)

    @api.get("/videos/{video_id}/thumbnail", response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    async def thumbnail(video_id: str = VID, t: float = Query(0.0, ge=0, allow_inf_nan=False),
                        w: int = Query(service.settings.serve.thumbnail_width, ge=16, le=1920,
                                       description="Width, pixels."),
                        overlay: bool = Query(False, description="Draw the points and boxes near t.")) -> Response:
        row = service.video_of(video_id)
        duration = row.get("duration_s")
        if duration is not None and t > duration:
            raise ApiError(422, f"t={t} is outside the video (0 .. {duration:.3f} s)")
        marks = None
        if overlay:
            tol = 0.5 / row["fps"] if row.get("fps") else 0.25
            marks = await service.blocking(state.ready().samples, [(video_id, t - max(tol, 0.05), t + max(tol, 0.05))])
        return await service.thumbnail(service.thumbs.get, row, t, w, marks)

    return api
